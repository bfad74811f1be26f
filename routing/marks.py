"""What auto-replies a conversation and a contact have had, read from the stored auto-replies
once and then kept in memory.

The stored auto-reply messages are the record (each carries its trigger), so "once per trigger"
and the per-contact limit write nothing of their own: the reply itself, stored in the message's
unit of work, is the mark. What is kept in memory only spares a read for a conversation or
contact seen lately, and knows what a reply just written but not yet committed said. If that
unit of work is not stored after all, :meth:`Marks.forget` drops what was kept, so the next
read goes to the store.
"""

from __future__ import annotations

from datetime import datetime
from typing import TypeVar

from storage.base import Store

__all__ = ["Marks"]

_Value = TypeVar("_Value")


class Marks:
    def __init__(self, store: Store, *, kept: int = 20_000) -> None:
        self._store = store
        self._kept = kept
        self._triggers: dict[str, dict[str, datetime]] = {}  # conversation -> trigger -> last sent
        self._contacts: dict[str, tuple[datetime, list[datetime]]] = {}  # contact -> (read since, sent since)

    async def last_sent(self, conversation_id: str, trigger: str, *, fresh: bool = False) -> datetime | None:
        """When ``trigger`` last answered in the conversation; ``fresh``: the conversation is new,
        so nothing has, and the store is not asked."""
        return (await self._triggers_of(conversation_id, fresh)).get(trigger)

    async def sent_to(self, contact_id: str, since: datetime, *, fresh: bool = False) -> int:
        """How many auto-replies the contact has had since ``since``; ``fresh``: a new contact."""
        kept = self._contacts.pop(contact_id, None)
        if kept is None or kept[0] > since:
            moments = [] if fresh else await self._store.auto_replies_to(contact_id, since)
            kept = self._contacts.pop(contact_id, None) or (since, moments)  # one read meanwhile wins
        moments = [moment for moment in kept[1] if moment >= since]
        _keep(self._contacts, contact_id, (since, moments), self._kept)
        return len(moments)

    def record(self, conversation_id: str, contact_id: str, trigger: str, at: datetime) -> None:
        """An auto-reply written now (its unit of work not committed yet): counted from here on.
        Call it after :meth:`last_sent` and :meth:`sent_to` asked about the same conversation and
        contact, so both are kept."""
        triggers = self._triggers.get(conversation_id)
        if triggers is not None:
            triggers[trigger] = at
        contact = self._contacts.get(contact_id)
        if contact is not None:
            contact[1].append(at)

    def forget(self, conversation_id: str, contact_id: str) -> None:
        self._triggers.pop(conversation_id, None)
        self._contacts.pop(contact_id, None)

    async def _triggers_of(self, conversation_id: str, fresh: bool) -> dict[str, datetime]:
        triggers = self._triggers.pop(conversation_id, None)
        if triggers is None:
            triggers = {} if fresh else await self._store.auto_replies_in(conversation_id)
            triggers = self._triggers.pop(conversation_id, None) or triggers  # one read meanwhile wins
        _keep(self._triggers, conversation_id, triggers, self._kept)
        return triggers


def _keep(table: dict[str, _Value], key: str, value: _Value, kept: int) -> None:
    """(Re-)inserted last, so the least recently used go first when the table is full."""
    table[key] = value
    if len(table) > kept:
        for old in list(table)[: kept // 2]:
            del table[old]
