"""Shared fixtures: a real store per adapter, a manual clock, the service, a recording connector."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from argon2 import PasswordHasher

from inbox import passwords
from inbox.accounts import add_channel, add_operator
from inbox.clock import ManualClock
from inbox.domain import Channel, Operator, Role
from inbox.events import Event, EventBus
from inbox.service import InboxService
from storage.base import Store
from tests.fakes import RecordingConnector

MONGODB_URL = os.environ.get("INBOX_TEST_MONGODB_URL")

passwords.use_hasher(PasswordHasher(time_cost=1, memory_cost=64, parallelism=1))

STORE_KINDS = [
    "sqlite",
    pytest.param(
        "mongodb",
        marks=[
            pytest.mark.mongodb,
            pytest.mark.skipif(
                not MONGODB_URL,
                reason="MongoDB adapter: set INBOX_TEST_MONGODB_URL to run the contract suite against it",
            ),
        ],
    ),
]


async def make_store(kind: str, tmp_path: Path) -> Store:
    if kind == "sqlite":
        from storage.sqlite import SqliteStore

        return SqliteStore(tmp_path / "inbox.sqlite3")
    from storage.mongo import MongoStore

    assert MONGODB_URL
    database = f"inbox_test_{os.getpid()}_{abs(hash(str(tmp_path))) % 10**8}"
    return MongoStore(MONGODB_URL, database=database)


@pytest.fixture(params=STORE_KINDS)
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Store]:
    store = await make_store(request.param, tmp_path)
    await store.open()
    try:
        yield store
    finally:
        if request.param == "mongodb":
            await store.drop_database()  # type: ignore[attr-defined]
        await store.close()


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


class EventLog:
    def __init__(self, bus: EventBus) -> None:
        self.events: list[tuple[int, Event]] = []
        bus.subscribe(self._record)

    async def _record(self, sequence: int, event: Event) -> None:
        self.events.append((sequence, event))

    def types(self) -> list[str]:
        return [event.type for _, event in self.events]


@pytest.fixture
def bus() -> EventBus:
    return EventBus()


@pytest.fixture
def events(bus: EventBus) -> EventLog:
    return EventLog(bus)


@pytest.fixture
def service(store: Store, bus: EventBus, clock: ManualClock) -> InboxService:
    return InboxService(store, bus, clock=clock)


@pytest.fixture
async def channel(store: Store, clock: ManualClock) -> Channel:
    return (await add_channel(store, kind=RecordingConnector.kind, name="Test", clock=clock)).channel


@pytest.fixture
async def operator(store: Store, clock: ManualClock) -> Operator:
    return (await add_operator(store, email="olga@example.com", name="Olga", password="pw", clock=clock)).operator


@pytest.fixture
async def supervisor(store: Store, clock: ManualClock) -> Operator:
    created = await add_operator(
        store, email="sam@example.com", name="Sam", role=Role.SUPERVISOR, password="pw", clock=clock
    )
    return created.operator


def pytest_report_header() -> str:
    if MONGODB_URL:
        return "store contract suite: SQLite and MongoDB (INBOX_TEST_MONGODB_URL)"
    return "store contract suite: SQLite only; MongoDB cases skip (set INBOX_TEST_MONGODB_URL to run them)"
