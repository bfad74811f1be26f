"""Every list the inbox pages through is read from an index in its order, never sorted in memory:
a page of the newest 50 costs the same with a thousand conversations or ten million."""

from __future__ import annotations

import itertools
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from inbox.domain import ConversationStatus
from storage.base import UNASSIGNED, ConversationFilter, Cursor
from storage.sqlite import SqliteStore

_FILTERS = {
    "status": ConversationStatus.OPEN,
    "assignee_id": "operator",
    "channel_id": "channel",
    "team_id": "team",
    "tag": "vip",
    "contact_id": "contact",
}
_CURSOR = Cursor(1_700_000_000_000_000, "01JBQZ0000000000000000000").encode()


@pytest.fixture
async def traced(tmp_path: Path) -> AsyncIterator[tuple[SqliteStore, list[str]]]:
    store = SqliteStore(tmp_path / "inbox.sqlite3")
    await store.open()
    statements: list[str] = []
    store._database.connection.set_trace_callback(statements.append)
    try:
        yield store, statements
    finally:
        store._database.connection.set_trace_callback(None)
        await store.close()


def _plan(connection: sqlite3.Connection, statement: str) -> list[str]:
    return [row[3] for row in connection.execute("EXPLAIN QUERY PLAN " + statement)]


def _views() -> list[ConversationFilter]:
    """No filter, each filter alone, each pair of them, and the unassigned queue."""
    views = [
        ConversationFilter(**{name: _FILTERS[name] for name in names})
        for size in (0, 1, 2)
        for names in itertools.combinations(_FILTERS, size)
    ]
    return [*views, ConversationFilter(assignee_id=UNASSIGNED)]


async def test_every_page_of_every_list_is_read_in_order_from_an_index(
    traced: tuple[SqliteStore, list[str]],
) -> None:
    store, statements = traced
    for cursor in (None, _CURSOR):
        for view in _views():
            await store.list_conversations(view, limit=50, cursor=cursor)
        await store.list_contacts(limit=50, cursor=cursor)
        await store.list_quarantine(limit=50, cursor=cursor)
        await store.list_messages("conversation", limit=50, cursor=cursor)
    pages = [s for s in statements if s.lstrip().upper().startswith("SELECT") and "LIMIT" in s.upper()]
    assert len(pages) >= 2 * (len(_views()) + 3)
    connection = store._database.connection
    connection.set_trace_callback(None)
    for statement in pages:
        plan = _plan(connection, statement)
        assert not any("TEMP B-TREE" in step for step in plan), (statement, plan)
        assert not any(step.startswith("SCAN") and "INDEX" not in step for step in plan), (statement, plan)
