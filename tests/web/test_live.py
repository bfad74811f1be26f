"""The live WebSocket over a real server: frames for every change in sequence order, resuming
after a dropped connection with exactly what was missed, focus mode, presence from the page,
authentication, bad input, and a page that stops reading."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import os
import re
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import WSMsgType
from aiohttp.test_utils import TestClient, TestServer

from inbox.accounts import add_channel, add_operator
from inbox.app import Inbox, build
from inbox.config import load_settings
from inbox.domain import Operator, Role
from inbox.events import Event, EventBus, OperatorUpdated
from inbox.passwords import hash_password
from tests.fakes import RecordingConnector
from webui.live import CLOSE_LAGGING, LIVE, PATH, LiveHub

WAIT = 5.0  # seconds a frame may take before the test fails (a bound, never an assertion)


@dataclass
class Page:
    """One open page: the socket and every frame it has read."""

    ws: aiohttp.ClientWebSocketResponse
    frames: list[dict[str, Any]]

    async def send(self, message: dict[str, Any]) -> None:
        await self.ws.send_json(message)

    async def receive(self) -> dict[str, Any]:
        message = await asyncio.wait_for(self.ws.receive(), WAIT)
        assert message.type is WSMsgType.TEXT, (message.type, message.data, message.extra)
        data = json.loads(message.data)
        if "seq" in data and data["type"] not in ("ready", "reset"):
            self.frames.append(data)
        return data

    async def hello(self, after: int | None = None, **extra: Any) -> dict[str, Any]:
        """Returns ready or reset; the replayed frames are in ``frames``."""
        await self.send({"type": "hello", "after": after, **extra})
        while (data := await self.receive())["type"] not in ("ready", "reset"):
            pass
        return data

    async def until(self, done: Callable[[dict[str, Any]], bool]) -> list[dict[str, Any]]:
        """Reads until a frame matches; returns the frames read, that one included."""
        start = len(self.frames)
        while not done(await self.receive()):
            pass
        return self.frames[start:]

    @property
    def seqs(self) -> list[int]:
        return [f["seq"] for f in self.frames]

    @property
    def messages(self) -> list[str]:
        return [f["message"]["text"] for f in self.frames if f["type"] == "message.created"]


@dataclass
class Live:
    client: TestClient
    inbox: Inbox
    hub: LiveHub
    admin_token: str
    admin_id: str
    operator_token: str
    operator_id: str
    channel_key: str

    def auth(self, token: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {token}"}

    async def page(self, token: str | None = None, after: int | None = None) -> Page:
        ws = await self.client.ws_connect(PATH, headers=self.auth(token or self.admin_token))
        page = Page(ws, [])
        await page.hello(after)
        return page

    async def push(self, external_id: str, text: str = "Hello", contact: str = "c1") -> dict[str, Any]:
        response = await self.client.post(
            "/api/v1/inbound",
            json={"external_id": external_id, "contact": {"external_id": contact, "name": "Ivan"}, "text": text},
            headers=self.auth(self.channel_key),
        )
        assert response.status == 201, await response.text()
        return await response.json()


Start = Callable[..., Awaitable[Live]]


@pytest.fixture
async def start(tmp_path: Path) -> AsyncIterator[Start]:
    """The whole instance plus the live hub, wired the way the composition root will do it."""
    async with contextlib.AsyncExitStack() as stack:

        async def start(**options: Any) -> Live:
            RecordingConnector.reset()
            overrides = {"data_dir": tmp_path, "max_body_bytes": 64 * 1024, "smtp_port": 0}
            settings = load_settings(overrides=overrides, environ={})
            inbox = build(settings, connectors={"test": RecordingConnector}, live_options=options)
            hub = inbox.web[LIVE]
            client = await stack.enter_async_context(TestClient(TestServer(inbox.web)))
            admin = await add_operator(inbox.store, email="boss@example.com", name="Boss", role=Role.ADMIN)
            operator = await add_operator(inbox.store, email="olga@example.com", name="Olga")
            channel = await add_channel(inbox.store, kind="api", name="Shop")
            assert channel.key
            return Live(
                client,
                inbox,
                hub,
                admin.api_token,
                admin.operator.id,
                operator.api_token,
                operator.operator.id,
                channel.key,
            )

        yield start


@pytest.fixture
async def live(start: Start) -> Live:
    return await start()


def _is_message(text: str) -> Callable[[dict[str, Any]], bool]:
    return lambda f: f["type"] == "message.created" and f["message"]["text"] == text


def _about(frame: dict[str, Any]) -> str | None:
    if "conversation" in frame:
        return frame["conversation"]["id"]
    return frame["message"]["conversation_id"] if "message" in frame else None


async def test_an_inbound_message_reaches_every_open_page(live: Live) -> None:
    boss, olga = await live.page(), await live.page(live.operator_token)
    pushed = await live.push("m1", "Где мой заказ?")
    for page in (boss, olga):
        frames = await page.until(_is_message("Где мой заказ?"))
        created = next(f for f in frames if f["type"] == "conversation.created")
        assert created["conversation"]["id"] == pushed["conversation_id"]
        assert created["conversation"]["contact"]["name"] == "Ivan"
        message = frames[-1]
        assert message["message"]["id"] == pushed["message_id"]
        assert message["message"]["direction"] == "in"
        assert message["conversation"]["id"] == pushed["conversation_id"]
        assert page.seqs == sorted(set(page.seqs)) and page.seqs[0] >= 1
    assert boss.seqs == olga.seqs  # neither is in focus mode: both see everything


async def test_reconnect_replays_exactly_what_was_missed_then_goes_live(live: Live) -> None:
    page = await live.page()
    await live.push("m1", "one")
    await page.until(_is_message("one"))
    last = page.seqs[-1]
    await page.ws.close()

    for n, text in enumerate(("two", "three", "four")):
        await live.push(f"m{n + 2}", text)
    again = Page(await live.client.ws_connect(PATH, headers=live.auth(live.admin_token)), [])
    ready = await again.hello(after=last, stream=live.hub.stream)
    assert ready == {"type": "ready", "seq": live.inbox.bus.sequence, "stream": live.hub.stream}
    assert again.seqs == list(range(last + 1, ready["seq"] + 1))  # every missed frame, once, in order
    assert again.messages == ["two", "three", "four"]

    await live.push("m5", "five")
    live_frames = await again.until(_is_message("five"))
    assert live_frames[0]["seq"] == ready["seq"] + 1
    assert again.seqs == list(range(last + 1, again.seqs[-1] + 1))


async def test_reconnecting_while_messages_keep_arriving_loses_and_doubles_nothing(live: Live) -> None:
    async def keep_pushing() -> None:
        for n in range(30):
            await live.push(f"m{n}", f"text {n}", contact=f"c{n % 4}")

    pusher = asyncio.create_task(keep_pushing())
    seen: list[int] = []
    while True:
        finished = pusher.done()
        page = Page(await live.client.ws_connect(PATH, headers=live.auth(live.admin_token)), [])
        ready = await page.hello(after=seen[-1] if seen else 0)
        assert ready["type"] == "ready"
        if not finished:
            with contextlib.suppress(TimeoutError):  # a few live frames, then drop the connection
                await asyncio.wait_for(page.until(lambda f, end=ready["seq"] + 3: f["seq"] >= end), 0.5)
        seen += page.seqs
        await page.ws.close()
        if finished:
            break
    await pusher
    assert seen == list(range(1, live.inbox.bus.sequence + 1))


async def test_after_older_than_the_buffer_or_from_another_stream_resets(start: Start) -> None:
    live = await start(buffer_size=3)
    await live.push("m1", "one")
    await live.push("m2", "two", contact="c2")
    seq = live.inbox.bus.sequence
    assert seq >= 4  # so the buffer holds #2..#4 and #1 is gone
    page = Page(await live.client.ws_connect(PATH, headers=live.auth(live.admin_token)), [])
    assert await page.hello(after=0) == {"type": "reset", "seq": seq, "stream": live.hub.stream}
    assert page.frames == []
    await live.push("m3", "three")
    frames = await page.until(_is_message("three"))
    assert frames[0]["seq"] == seq + 1  # live frames follow a reset
    await live.push("m4", "four")  # the buffer (3) now holds only frames built while a page was open
    await page.until(_is_message("four"))

    for hello in ({"after": live.hub.seq + 10}, {"after": live.hub.seq, "stream": "before-a-restart"}):
        other = Page(await live.client.ws_connect(PATH, headers=live.auth(live.admin_token)), [])
        assert (await other.hello(**hello))["type"] == "reset"
    within = Page(await live.client.ws_connect(PATH, headers=live.auth(live.admin_token)), [])
    assert (await within.hello(after=live.hub.seq - 3))["type"] == "ready"
    assert within.seqs == [live.hub.seq - 2, live.hub.seq - 1, live.hub.seq]


async def test_focus_mode_pages_see_only_their_conversations(live: Live) -> None:
    boss_headers, olga_headers = live.auth(live.admin_token), live.auth(live.operator_token)
    me = f"/api/v1/operators/{live.operator_id}"
    boss, olga = await live.page(), await live.page(live.operator_token)
    assert (await live.client.patch(me, json={"max_open": 1, "focus_mode": True}, headers=boss_headers)).status == 200
    assert (await live.client.patch(me, json={"presence": "online"}, headers=olga_headers)).status == 200

    first = await live.push("m1", "first", contact="c1")  # assigned to olga at once
    second = await live.push("m2", "second", contact="c2")  # she is at her cap: it waits
    await boss.until(_is_message("second"))
    handover = await live.client.patch(
        f"/api/v1/conversations/{first['conversation_id']}", json={"assignee_id": live.admin_id}, headers=boss_headers
    )
    assert handover.status == 200, await handover.text()

    def handed_over(frame: dict[str, Any]) -> bool:
        return frame["type"] == "conversation.updated" and frame["conversation"]["assignee_id"] == live.admin_id

    def second_is_hers(frame: dict[str, Any]) -> bool:
        return (
            frame["type"] == "conversation.updated"
            and _about(frame) == second["conversation_id"]
            and frame["conversation"]["assignee_id"] == live.operator_id
        )

    frames = await olga.until(handed_over)
    frames += await olga.until(second_is_hers) if not any(map(second_is_hers, frames)) else []
    # the first arrived hers; handing it over freed her slot, so the waiting second one is hers now;
    # nothing else (and nothing of the second before it was hers) reached her page
    assert any(f["type"] == "conversation.created" and _about(f) == first["conversation_id"] for f in frames)
    mine = {first["conversation_id"], second["conversation_id"], None}
    assert {_about(f) for f in frames} <= mine
    assert all(
        f["conversation"]["assignee_id"] == live.operator_id for f in frames if _about(f) == second["conversation_id"]
    )
    assert second["conversation_id"] in {_about(f) for f in boss.frames}

    replayed = Page(await live.client.ws_connect(PATH, headers=olga_headers), [])
    await replayed.hello(after=0)
    assert replayed.frames and {_about(f) for f in replayed.frames} <= mine
    assert {f["operator"]["id"] for f in replayed.frames if f["type"] == "operator.updated"} == {live.operator_id}


async def test_presence_from_the_page_and_bad_messages_keep_the_connection(live: Live) -> None:
    boss, olga = await live.page(), await live.page(live.operator_token)
    await olga.send({"type": "presence", "presence": "online"})
    frames = await boss.until(lambda f: f["type"] == "operator.updated")
    assert frames[-1]["operator"]["id"] == live.operator_id and frames[-1]["operator"]["presence"] == "online"
    operators = await (await live.client.get("/api/v1/operators", headers=live.auth(live.admin_token))).json()
    assert {o["id"]: o["presence"] for o in operators["items"]}[live.operator_id] == "online"
    assert (await olga.until(lambda f: f["type"] == "operator.updated"))[-1]["operator"]["presence"] == "online"

    bad = [
        ({"type": "presence", "presence": "busy"}, "invalid_message"),
        ({"type": "presence", "presence": "online", "operator_id": live.admin_id}, "invalid_message"),
        ({"type": "hello", "after": "5"}, "invalid_message"),
        ({"type": "subscribe"}, "unknown_type"),
        ({"type": ["hello"]}, "unknown_type"),
        ({"type": "hello"}, "already_subscribed"),
    ]
    for message, code in bad:
        await olga.send(message)
        answer = await olga.receive()
        assert answer["type"] == "error" and answer["code"] == code, (message, answer)
    await olga.ws.send_str("{not json")
    assert (await olga.receive())["code"] == "invalid_json"
    await olga.ws.send_bytes(b"\x00")
    assert (await olga.receive())["code"] == "text_required"
    await olga.send({"type": "ping"})
    assert await olga.receive() == {"type": "pong"}

    await olga.ws.send_str(json.dumps({"type": "ping", "padding": "x" * 5000}))  # over max_msg_size
    closing = await asyncio.wait_for(olga.ws.receive(), WAIT)
    assert closing.type is WSMsgType.CLOSE and closing.data == aiohttp.WSCloseCode.MESSAGE_TOO_BIG


async def test_connecting_needs_a_valid_operator_from_an_allowed_origin(live: Live) -> None:
    for headers in ({}, live.auth("not-a-token"), live.auth(live.channel_key)):
        with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
            await live.client.ws_connect(PATH, headers=headers)
        assert refused.value.status == 401
    with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
        await live.client.ws_connect(PATH, headers=live.auth(live.admin_token), origin="https://evil.example")
    assert refused.value.status == 403
    own = f"http://{live.client.host}:{live.client.port}"
    ws = await live.client.ws_connect(PATH, headers=live.auth(live.admin_token), origin=own)
    await ws.close()
    plain = await live.client.get(PATH, headers=live.auth(live.admin_token))
    assert plain.status == 400 and (await plain.json())["error"]["code"] == "websocket_required"
    assert (await live.client.get(f"{PATH}?token={live.admin_token}")).status == 401  # no tokens in URLs


async def test_a_page_that_stops_reading_is_closed_and_holds_up_nobody(start: Start) -> None:
    live = await start(send_queue=32, close_timeout=0.5)
    reader, writer = await _raw_socket(live)  # says hello, then never reads
    fast = await live.page()
    for _ in range(int(WAIT / 0.01)):
        if live.hub.connections == 2:
            break
        await asyncio.sleep(0.01)
    assert live.hub.connections == 2
    reading = asyncio.create_task(fast.until(_is_message("the end")))
    texts = []
    for n in range(400):  # until the kernel's and aiohttp's buffers are full and the queue overflows
        if live.hub.connections == 1:
            break
        texts.append(f"{n:03} " + "x" * 50_000)
        await live.push(f"m{n}", texts[-1], contact=f"c{n % 3}")
    assert live.hub.connections == 1  # the slow page was let go
    await live.push("end", "the end")
    await reading
    assert fast.messages == [*texts, "the end"]
    assert fast.seqs == list(range(fast.seqs[0], fast.seqs[-1] + 1))  # nothing skipped for the fast page
    with contextlib.suppress(ConnectionError):
        while await asyncio.wait_for(reader.read(65536), WAIT):
            pass  # what was already on its way, then the end of the connection
    writer.close()


async def test_shutdown_closes_pages_with_going_away(live: Live) -> None:
    page = await live.page()
    await live.client.server.close()
    closing = await asyncio.wait_for(page.ws.receive(), WAIT)
    assert closing.type is WSMsgType.CLOSE and closing.data == aiohttp.WSCloseCode.GOING_AWAY


async def _raw_socket(live: Live) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """A WebSocket client with a tiny receive buffer that reads nothing after the handshake, so
    the server's writes really back up (aiohttp's client would keep reading into memory)."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.setblocking(False)
    await asyncio.get_running_loop().sock_connect(sock, (live.client.host, live.client.port))
    reader, writer = await asyncio.open_connection(sock=sock, limit=1024)
    key = base64.b64encode(os.urandom(16)).decode()
    writer.write(
        f"GET {PATH} HTTP/1.1\r\nHost: {live.client.host}:{live.client.port}\r\nUpgrade: websocket\r\n"
        f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
        f"Authorization: Bearer {live.admin_token}\r\n\r\n".encode()
    )
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), WAIT)
    assert head.startswith(b"HTTP/1.1 101"), head
    payload, mask = json.dumps({"type": "hello", "after": None}).encode(), os.urandom(4)
    writer.write(bytes([0x81, 0x80 | len(payload)]) + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload)))
    await writer.drain()
    return reader, writer


class _Watcher:
    """An open page as far as the hub's fan-out goes."""

    def __init__(self, operator: Operator) -> None:
        self.operator, self.frames, self.kicked = operator, [], []

    def push(self, frame: Any) -> None:
        self.frames.append(frame)

    def kick(self, code: int, reason: str) -> None:
        self.kicked.append(code)


def _held_back(live: Live, **options: Any) -> tuple[EventBus, asyncio.Event, LiveHub]:
    """A bus whose event #1 is held up in an earlier subscriber, as routing's own are."""
    bus, gate = EventBus(), asyncio.Event()

    async def slow(seq: int, event: Event) -> None:
        if seq == 1:
            await gate.wait()

    bus.subscribe(slow)
    hub = LiveHub(bus, live.inbox.service.reads, live.inbox.router, **options)
    hub.start()
    return bus, gate, hub


async def test_a_page_opened_while_an_unbuilt_frame_waits_is_told_to_reload(live: Live) -> None:
    bus, gate, hub = _held_back(live, gap_timeout=5.0)
    olga = await live.inbox.store.get_operator(live.operator_id)
    update = OperatorUpdated(operator=olga, previous=olga)
    first = asyncio.create_task(bus.publish(update))
    await asyncio.sleep(0)
    await bus.publish(update)  # #2, with nobody watching: not built, waiting behind #1
    page = _Watcher(olga)
    hub.attach(page, None, None)  # type: ignore[arg-type]
    gate.set()
    await first
    hub.stop()
    assert [f.seq for f in page.frames] == [1] and page.kicked == [CLOSE_LAGGING]  # it reconnects and reloads


async def test_a_late_unbuilt_frame_leaves_no_resume_across_what_it_dropped(live: Live) -> None:
    bus, gate, hub = _held_back(live, gap_timeout=0.05, idle_grace=0.0)
    olga = await live.inbox.store.get_operator(live.operator_id)
    update = OperatorUpdated(operator=olga, previous=olga)
    page = _Watcher(olga)
    hub.attach(page, None, None)  # type: ignore[arg-type]
    first = asyncio.create_task(bus.publish(update))  # #1 is late
    await asyncio.sleep(0)
    await bus.publish(update)
    await bus.publish(update)
    for _ in range(int(WAIT / 0.01)):
        if hub.seq == 3:  # #1 skipped after the gap timeout, #2 and #3 released
            break
        await asyncio.sleep(0.01)
    hub.detach(page)  # type: ignore[arg-type]
    gate.set()
    await first  # arrives with nobody watching: built nothing, the buffer dropped
    hub.stop()
    assert hub.frames_after(2) is None  # a page resuming from #2 must reload: #3 is gone


async def test_nothing_is_built_while_no_page_watches_and_a_late_page_reloads(start: Start) -> None:
    live = await start(idle_grace=0.0)
    await live.push("m1", "one")
    assert live.hub.seq == live.inbox.bus.sequence and live.hub.frames_after(0) is None  # numbered, not built
    page = Page(await live.client.ws_connect(PATH, headers=live.auth(live.admin_token)), [])
    assert (await page.hello(after=0))["type"] == "reset"
    await live.push("m2", "two")
    frames = await page.until(_is_message("two"))
    assert frames[0]["seq"] == live.hub.seq - len(frames) + 1
    await page.ws.close()
    for _ in range(int(WAIT / 0.01)):
        if not live.hub.connections:
            break
        await asyncio.sleep(0.01)
    await live.push("m3", "three")  # the last page closed with no grace: nothing built again
    assert live.hub.frames_after(live.hub.seq - 1) is None


async def test_frames_are_released_in_sequence_order_and_a_lost_number_is_skipped(live: Live) -> None:
    """Routing publishes from inside its subscriber call, so the hub hears #2 before #1; a
    publisher cancelled before reaching the hub leaves a number that never comes."""
    bus, gates = EventBus(), {1: asyncio.Event(), 3: asyncio.Event()}

    async def slow(seq: int, event: Event) -> None:
        if seq in gates:
            await gates[seq].wait()

    bus.subscribe(slow)
    hub = LiveHub(bus, live.inbox.service.reads, live.inbox.router, gap_timeout=0.05)
    hub.start()
    olga = await live.inbox.store.get_operator(live.operator_id)
    hub.attach(_Watcher(olga), None, None)  # type: ignore[arg-type]  # frames are built for open pages only
    update = OperatorUpdated(operator=olga, previous=olga)
    first = asyncio.create_task(bus.publish(update))
    await asyncio.sleep(0)
    await bus.publish(update)
    assert hub.seq == 0 and hub.frames_after(0) == []  # #2 waits for #1
    gates[1].set()
    await first
    assert hub.seq == 2

    lost = asyncio.create_task(bus.publish(update))
    await asyncio.sleep(0)
    await bus.publish(update)
    lost.cancel()
    for _ in range(int(WAIT / 0.01)):
        if hub.seq == 4:
            break
        await asyncio.sleep(0.01)
    frames = hub.frames_after(0)
    assert frames is not None and [f.seq for f in frames] == [1, 2, 4]
    assert [json.loads(f.text)["operator"]["id"] for f in frames] == [live.operator_id] * 3
    assert hub.frames_after(hub.seq + 1) is None  # a number from before a restart
    hub.stop()


async def test_signing_out_ends_the_pages_socket_at_its_next_message(live: Live) -> None:
    olga = await live.inbox.store.get_operator(live.operator_id)
    await live.inbox.store.save_operator(replace(olga, password_hash=hash_password("a long password 1")))
    await live.inbox.store.durable()
    origin = str(live.client.make_url("/")).rstrip("/")
    signed = await live.client.post(
        "/login",
        data={"email": "olga@example.com", "password": "a long password 1", "next": "/"},
        headers={"Origin": origin},
        allow_redirects=False,
    )
    assert signed.status == 303
    page = Page(await live.client.ws_connect(PATH, headers={"Origin": origin}), [])  # the cookie, as a browser
    assert (await page.hello())["type"] == "ready"
    settings = await (await live.client.get("/settings")).text()
    csrf = re.search(r'name="csrf-token" content="([^"]+)"', settings)
    assert csrf is not None
    out = await live.client.post(
        "/logout", data={"csrf": csrf.group(1)}, headers={"Origin": origin}, allow_redirects=False
    )
    assert out.status == 303
    await page.send({"type": "ping"})
    closing = await asyncio.wait_for(page.ws.receive(), WAIT)
    assert closing.type in (WSMsgType.CLOSE, WSMsgType.CLOSED, WSMsgType.CLOSING)
    assert page.ws.close_code == 4001
