"""Start-up and shutdown: contexts in order, a broken channel does not stop the rest, and the
dispatcher stops before the connectors it sends through."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

import pytest
from aiohttp.test_utils import TestClient, TestServer

from inbox.accounts import add_channel
from inbox.app import build
from inbox.config import load_settings
from inbox.errors import DeliveryError
from storage.sqlite import SqliteStore
from tests.fakes import RecordingConnector

events: list[str] = []


class BrokenConnector(RecordingConnector):
    kind: ClassVar[str] = "broken"

    async def start(self) -> None:
        raise ConnectionError("mailbox refused the login")


class TracingConnector(RecordingConnector):
    async def start(self) -> None:
        events.append(f"start {self.context.channel.name}")

    async def stop(self) -> None:
        events.append(f"stop {self.context.channel.name}")


async def test_a_broken_channel_does_not_stop_the_others_or_the_api(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "inbox.sqlite3")
    await store.open()
    await add_channel(store, kind="broken", name="bad mailbox")
    await add_channel(store, kind="test", name="good")
    await add_channel(store, kind="nonexistent", name="unknown kind")
    await store.close()
    events.clear()
    settings = load_settings(overrides={"data_dir": tmp_path, "smtp_port": 0}, environ={})
    inbox = build(settings, connectors={"test": TracingConnector, "broken": BrokenConnector})
    async with TestClient(TestServer(inbox.web)) as client:
        assert (await client.get("/healthz")).status == 200
        assert events == ["start good"]
        unknown = next(c for c in await inbox.store.list_channels() if c.kind == "nonexistent")
        with pytest.raises(DeliveryError) as refused:
            await inbox.hub.connector(unknown)
        assert refused.value.retryable is False
    assert events == ["start good", "stop good"]
    with pytest.raises(DeliveryError):  # after shutdown nothing starts again
        await inbox.hub.connector(unknown)
