"""A whole instance (composition root, SQLite, outbox, connectors) served on a local port."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from inbox.accounts import add_channel, add_operator
from inbox.app import Inbox, build
from inbox.config import load_settings
from inbox.domain import Role
from tests.fakes import RecordingConnector


@dataclass
class Api:
    client: TestClient
    inbox: Inbox
    admin_token: str
    operator_token: str
    operator_id: str
    channel_key: str
    channel_id: str

    def auth(self, token: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {token}"}

    async def push(self, external_id: str, text: str = "Hello", contact: str = "c1", **extra: Any) -> dict[str, Any]:
        response = await self.client.post(
            "/api/v1/inbound",
            json={
                "external_id": external_id,
                "contact": {"external_id": contact, "name": "Ivan"},
                "text": text,
                **extra,
            },
            headers=self.auth(self.channel_key),
        )
        assert response.status in (200, 201), await response.text()
        return await response.json()


@pytest.fixture
async def api(tmp_path: Path) -> AsyncIterator[Api]:
    RecordingConnector.reset()
    settings = load_settings(overrides={"data_dir": tmp_path, "max_body_bytes": 64 * 1024, "smtp_port": 0}, environ={})
    inbox = build(settings, connectors={"test": RecordingConnector})
    async with TestClient(TestServer(inbox.web)) as client:
        store = inbox.store
        admin = await add_operator(store, email="boss@example.com", name="Boss", role=Role.ADMIN, password="x")
        operator = await add_operator(store, email="olga@example.com", name="Olga", password="x")
        api_channel = await add_channel(store, kind="api", name="Shop")
        assert api_channel.key
        yield Api(
            client,
            inbox,
            admin.api_token,
            operator.api_token,
            operator.operator.id,
            api_channel.key,
            api_channel.channel.id,
        )
