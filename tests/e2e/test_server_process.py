"""The real ``inbox serve`` process: the quick-start flow with curl-like calls, and no
acknowledged message lost when the process is killed with SIGKILL mid-burst."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys

import aiohttp
import pytest

from inbox.domain import DeliveryStatus
from storage.sqlite import SqliteStore
from tests.e2e.conftest import Server, cli_env, run_cli

pytestmark = pytest.mark.slow


async def test_quick_start_flow(server: Server) -> None:
    server.start()
    admin_lines = server.log.read_text()
    assert "API token:" in admin_lines and "password:" in admin_lines
    token = next(line.split()[-1] for line in admin_lines.splitlines() if "API token:" in line)
    channel = run_cli(server.data_dir, "channel", "add", "api", "--name", "Shop")
    assert set(channel) == {"id", "kind", "name", "key"} and channel["kind"] == "api"
    operator = run_cli(server.data_dir, "operator", "add", "ivan@example.com", "--name", "Иван", "--max-open", "5")
    assert set(operator) == {"id", "email", "role", "api_token", "password"} and operator["role"] == "operator"

    async with aiohttp.ClientSession(server.url) as http:
        pushed = await http.post(
            "/api/v1/inbound",
            json={"external_id": "x1", "contact": {"external_id": "c1", "name": "Клиент"}, "text": "Помогите"},
            headers={"Authorization": f"Bearer {channel['key']}"},
        )
        assert pushed.status == 201
        conversation_id = (await pushed.json())["conversation_id"]
        for bearer in (token, operator["api_token"]):
            listed = await (
                await http.get("/api/v1/conversations", headers={"Authorization": f"Bearer {bearer}"})
            ).json()
            assert [c["id"] for c in listed["items"]] == [conversation_id]
        reply = await http.post(
            f"/api/v1/conversations/{conversation_id}/messages",
            json={"text": "Уже помогаем"},
            headers={"Authorization": f"Bearer {operator['api_token']}"},
        )
        assert reply.status == 201
        message_id = (await reply.json())["id"]
    listed = subprocess.run(  # noqa: ASYNC221 - a short CLI call in a test
        [sys.executable, "-m", "inbox", "channel", "list"],
        env=cli_env(server.data_dir),
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert channel["id"] in listed and "Shop" in listed
    server.stop()
    store = SqliteStore(server.data_dir / "inbox.sqlite3")
    await store.open()
    try:
        assert (await store.get_message(message_id)).delivery_status is DeliveryStatus.SENT
    finally:
        await store.close()


async def test_sigkill_during_a_burst_loses_no_acknowledged_message(server: Server) -> None:
    server.start()
    key = run_cli(server.data_dir, "channel", "add", "api")["key"]
    acknowledged: list[str] = []
    killed = asyncio.Event()

    async def post(http: aiohttp.ClientSession, index: int) -> None:
        body = {
            "external_id": f"burst-{index}",
            "contact": {"external_id": f"c{index % 50}"},
            "text": f"message {index}",
        }
        try:
            async with http.post("/api/v1/inbound", json=body, headers={"Authorization": f"Bearer {key}"}) as response:
                if response.status in (200, 201):
                    await response.read()
                    acknowledged.append(body["external_id"])
        except (TimeoutError, aiohttp.ClientError):
            pass
        if len(acknowledged) >= 400 and not killed.is_set():
            killed.set()
            server.kill()

    connector = aiohttp.TCPConnector(limit=32)
    async with aiohttp.ClientSession(server.url, connector=connector, timeout=aiohttp.ClientTimeout(total=10)) as http:
        await asyncio.gather(*(post(http, index) for index in range(3000)))
    assert killed.is_set(), "the burst finished before the kill"
    assert 400 <= len(acknowledged) < 3000

    channel_id = _channel_id(server)
    store = SqliteStore(server.data_dir / "inbox.sqlite3")
    await store.open()
    try:
        missing = [e for e in acknowledged if await store.message_by_external_id(channel_id, e) is None]
    finally:
        await store.close()
    assert missing == []

    server.start()  # the killed store opens again and keeps serving
    async with aiohttp.ClientSession(server.url) as http:
        assert (await http.get("/healthz")).status == 200


def _channel_id(server: Server) -> str:
    listed = subprocess.run(
        [sys.executable, "-m", "inbox", "channel", "list", "--json"],
        env=cli_env(server.data_dir),
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return json.loads(listed.splitlines()[0])["id"]
