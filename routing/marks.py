"""The marks auto-replies leave in the store's sync state (which trigger a conversation has had,
when a contact was last answered), read once and then kept in memory.

The store stays the truth: every mark is written through, in the caller's unit of work, and a
router that starts afresh reads them again. What is kept in memory only spares a read (and its
decoding) for a conversation or contact seen lately. A mark whose unit of work was not stored
after all must be forgotten (:meth:`Marks.forget`), so the next read goes to the store.
"""

from __future__ import annotations

from collections.abc import Iterable

from storage.base import Store

__all__ = ["Marks"]


class Marks:
    def __init__(self, store: Store, *, kept: int = 20_000) -> None:
        self._store = store
        self._kept = kept
        self._values: dict[str, str | None] = {}  # None: the store has none

    async def get(self, key: str) -> str | None:
        try:
            value = self._values.pop(key)
        except KeyError:
            value = await self._store.get_sync_state(key)
        self._keep(key, value)
        return value

    async def set(self, key: str, value: str) -> None:
        await self._store.set_sync_state(key, value)
        self._keep(key, value)

    def forget(self, keys: Iterable[str]) -> None:
        for key in keys:
            self._values.pop(key, None)

    def _keep(self, key: str, value: str | None) -> None:
        self._values.pop(key, None)  # (re-)inserted last: the least recently used go first
        self._values[key] = value
        if len(self._values) > self._kept:
            for old in list(self._values)[: self._kept // 2]:
                del self._values[old]
