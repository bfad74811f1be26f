"""The router's auto-reply marks: written through to the store, read from it once."""

from __future__ import annotations

from typing import Any

from routing.marks import Marks
from storage.base import Store


async def test_marks_are_written_through_and_read_once(store: Store, monkeypatch: Any) -> None:
    reads: list[str] = []
    original = store.get_sync_state

    async def counting(key: str) -> str | None:
        reads.append(key)
        return await original(key)

    monkeypatch.setattr(store, "get_sync_state", counting)
    await store.set_sync_state("old", "1")
    await store.durable()
    marks = Marks(store)
    assert [await marks.get("old"), await marks.get("old"), await marks.get("none"), await marks.get("none")] == [
        "1",
        "1",
        None,
        None,
    ]
    assert reads == ["old", "none"]
    await marks.set("new", "2")
    await store.durable()
    assert await original("new") == "2" and await marks.get("new") == "2"
    assert reads == ["old", "none"]
    marks.forget(["new", "never-kept"])  # its unit of work was not stored, say: ask the store again
    assert await marks.get("new") == "2" and reads[-1] == "new"
    assert await Marks(store).get("new") == "2"  # a router started afresh reads what was stored


async def test_marks_keep_the_latest_only(store: Store) -> None:
    marks = Marks(store, kept=4)
    for n in range(6):
        await marks.set(f"k{n}", str(n))
    await marks.get("k3")  # read lately: kept
    await marks.set("k6", "6")
    assert len(marks._values) <= 4 and "k6" in marks._values and "k3" in marks._values
    assert [await marks.get(f"k{n}") for n in range(7)] == [str(n) for n in range(7)]  # the store has them all
