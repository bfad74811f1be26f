"""Web UI benchmark: prints figures, asserts nothing.

``python -m bench.webui`` (``--quick``: a smoke run of a minute or two) measures, on 127.0.0.1 only,
the web UI issue's figures against the real server (``python -m inbox serve``, its own process, so
it gets a core of its own) on a data dir filled before it starts:

1. The inbox page ``GET /`` over 100,000 conversations / 1,000,000 messages (``bench.ingest``'s
   filler: every conversation has 10 messages), signed in through the login form as an admin
   (cookie session): the default view, ``?view=unassigned``, ``?status=any`` and ``?q=<common
   word>`` (full-text search), sequential requests in rounds of blocks. Target: p95 ≤ 50 ms, judged
   per view. The time is the client's, from sending the request to the last byte of the page: the
   server's access log is off, and on loopback the difference is the client's own parsing. Next to
   it, the server's CPU time per request (its process's CPU over the block / requests), which is
   the server's own cost whatever else the machine runs.
2. The ceiling: ``GET /healthz`` the same way, in the same rounds (framework, routing and
   middlewares, no store, no template).
3. Live latency: 100 operators (each with their own API token) keep ``/api/v1/ws`` open, having
   said hello and heard ready; 500 inbound messages go through ``POST /api/v1/inbound`` at a steady
   20/s. For every (message, socket) pair: from just before the POST to that socket receiving the
   ``message.created`` frame carrying the message's external id. Target: p99 ≤ 100 ms. Missed
   frames (a pair with no frame 10 s after the last answer) are counted.

The filler's 20 agents are offline while pages are measured (so the waiting queue, and with it the
unassigned view, is not emptied at start-up), then online for the live part, after a restart:
every message then starts or joins a conversation routing assigns as it arrives, so the sockets
carry routing's frames too, the real traffic a page sees.

Figures come with the CPU share of the server, this client and other processes: on two cores,
anything else running skews them. Every loop is bounded in count and in time.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import random
import re
import sqlite3
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import psutil
from argon2 import PasswordHasher
from yarl import URL

from bench.ingest import COMMON_WORDS, MB, _busy, inbox_server, percentile, populate, server, text
from inbox import passwords
from inbox.accounts import add_channel, add_operator
from inbox.domain import Role
from storage.sqlite import SqliteStore

TARGET_PAGE_P95_MS, TARGET_LIVE_P99_MS = 50.0, 100.0
PHASE_LIMIT = 600.0  # seconds; each phase gives up past this
FRAME_GRACE = 10.0  # seconds after the last post for frames still on their way
ROUNDS = 3  # page requests run in this many rounds of one block per view, so drift hits every view
ADMIN_EMAIL, ADMIN_PASSWORD = "admin@bench.example", "bench-admin-password"
ROW_MARK = 'data-testid="conversation-row"'
_FRAME_HEAD = re.compile(r'\{"seq":\d+,"type":"([^"]+)"')  # the hub writes seq and type first, compactly


def agents_presence(path: Path, presence: str) -> None:
    """The filler's 20 agents are online with no cap, so at start-up routing hands every waiting
    conversation to them and ``?view=unassigned`` would be measured empty. Offline while pages
    are measured, the queue stays; online for the live run, each new conversation is assigned as
    it arrives, and that write happens before the hub sees the message (routing subscribes first)."""
    db = sqlite3.connect(path)
    try:
        with db:
            db.execute("UPDATE operators SET presence = ? WHERE email LIKE 'agent%@bench.example'", (presence,))
    finally:
        db.close()


@dataclass(frozen=True)
class Accounts:
    channel_key: str
    tokens: list[str]  # one per operator who keeps a page open


async def add_accounts(path: Path, operators: int) -> Accounts:
    """Through the same functions as the CLI, in one process: a hundred CLI runs would take minutes."""
    store = SqliteStore(path)
    await store.open()
    try:
        key = (await add_channel(store, kind="api", name="Bench live")).key
        assert key is not None
        await add_operator(store, email=ADMIN_EMAIL, name="Bench Admin", role=Role.ADMIN, password=ADMIN_PASSWORD)
        tokens = []
        for k in range(operators):
            created = await add_operator(store, email=f"page{k}@bench.example", name=f"Page {k}")
            tokens.append(created.api_token)
        return Accounts(key, tokens)
    finally:
        await store.close()


# 1 + 2: page times


@dataclass
class Timing:
    latencies_ms: list[float] = field(default_factory=list)
    server_cpu_s: float = 0.0
    rows: int = 0
    size: int = 0

    def cpu_ms(self) -> float:
        return self.server_cpu_s * 1000 / len(self.latencies_ms) if self.latencies_ms else float("nan")


def _cpu(proc: psutil.Process) -> float:
    times = proc.cpu_times()
    return times.user + times.system


async def page_times(
    base: str, proc: psutil.Process, paths: dict[str, str], requests: int
) -> tuple[dict[str, Timing], float]:
    """Sequential: one request at a time is what a page's server time means. Returns the timings
    and the CPU share (of one core) other processes took meanwhile."""
    timings = {name: Timing() for name in paths}
    jar = aiohttp.CookieJar(unsafe=True)  # the default jar refuses cookies from an IP address
    async with aiohttp.ClientSession(base, cookie_jar=jar) as session:
        form = {"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD, "next": "/"}
        async with session.post("/login", data=form, headers={"Origin": base}, allow_redirects=False) as response:
            if response.status != 303 or not jar.filter_cookies(URL(base)):
                raise RuntimeError(f"sign-in failed: {response.status} {await response.text()}")
        for path in paths.values():  # warm-up: templates compiled, caches and SQLite pages loaded
            for _ in range(5):
                async with session.get(path, allow_redirects=False) as response:
                    await response.read()
        per_round = max(1, requests // ROUNDS)
        deadline = time.monotonic() + PHASE_LIMIT
        busy, client, started = _busy(), time.process_time(), time.perf_counter()
        for _ in range(ROUNDS):
            for name, path in paths.items():
                timing, cpu = timings[name], _cpu(proc)
                for _ in range(per_round):
                    if time.monotonic() > deadline:
                        break
                    t0 = time.perf_counter()
                    async with session.get(path, allow_redirects=False) as response:
                        body = await response.read()
                    timing.latencies_ms.append((time.perf_counter() - t0) * 1000)
                    if response.status != 200:
                        raise RuntimeError(f"GET {path} → {response.status}")
                timing.server_cpu_s += _cpu(proc) - cpu
                timing.rows, timing.size = body.count(ROW_MARK.encode()), len(body)
    wall = time.perf_counter() - started
    ours = sum(t.server_cpu_s for t in timings.values()) + time.process_time() - client
    return timings, max(0.0, (_busy() - busy - ours) / wall)


# 3: live latency


@dataclass
class Live:
    latencies_ms: list[float]  # every (message, socket) pair that arrived
    first_ms: list[float]  # per message: its first socket
    spread_ms: list[float]  # per message: last socket - first socket
    post_ms: list[float]  # POST round trips
    missed: int
    post_errors: Counter[str]
    frames: Counter[str]  # every frame type the sockets received, summed over sockets
    seconds: float
    server_cpu: float  # shares of one core over the posting window
    client_cpu: float
    other_cpu: float


@dataclass
class _Pairs:
    """Lets the wait for late frames end as soon as every socket has every message."""

    received: int = 0
    expected: float = float("inf")  # known once the posts are done
    all_in: asyncio.Event = field(default_factory=asyncio.Event)


async def live_latency(base: str, proc: psutil.Process, accounts: Accounts, messages: int, rate: float) -> Live:
    """Posts run as tasks on a fixed schedule, so a slow answer delays no later message (an open
    loop: the latency is what a steady stream meets, not what a waiting client allows). One client
    process holds every socket; its CPU share is printed, as a busy client delays its own clock."""
    ws_url = base + "/api/v1/ws"
    sockets = len(accounts.tokens)
    sent: dict[str, float] = {}  # external id → perf_counter just before its POST
    arrived: dict[str, list[float]] = {}  # external id → arrival time at each socket that saw it
    frames: Counter[str] = Counter()
    pairs = _Pairs()

    # no pool limit for the sockets (aiohttp's default of 100 connections would be exactly used up by
    # them), and the posts on their own session, as a separate system would send them
    sockets_session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0))
    async with sockets_session as session, aiohttp.ClientSession() as poster:

        async def connect(token: str) -> aiohttp.ClientWebSocketResponse:
            ws = await session.ws_connect(ws_url, headers={"Authorization": f"Bearer {token}"}, heartbeat=None)
            await ws.send_json({"type": "hello", "after": None})
            while True:
                message = await ws.receive(timeout=30)
                if message.type is not aiohttp.WSMsgType.TEXT:
                    raise RuntimeError(f"socket closed before ready: {message}")
                if json.loads(message.data)["type"] == "ready":
                    return ws

        async def read(ws: aiohttp.ClientWebSocketResponse) -> None:
            """Time first, parse later: only message.created frames are decoded at all."""
            async for message in ws:
                at = time.perf_counter()
                if message.type is not aiohttp.WSMsgType.TEXT:
                    continue
                head = _FRAME_HEAD.match(message.data)
                kind = head[1] if head else "unrecognized"
                frames[kind] += 1
                if kind == "message.created":
                    external_id = json.loads(message.data)["message"]["external_id"]
                    if external_id in sent:
                        arrived.setdefault(external_id, []).append(at)
                        pairs.received += 1
                        if pairs.received >= pairs.expected:
                            pairs.all_in.set()

        async with asyncio.timeout(120):
            connections = []
            for start in range(0, sockets, 20):  # in batches: a page-load storm is not what is measured
                connections += await asyncio.gather(*(connect(t) for t in accounts.tokens[start : start + 20]))
        readers = [asyncio.create_task(read(ws)) for ws in connections]
        print(f"   {len(connections)} sockets open, each heard ready")

        rng = random.Random(11)
        post_ms: list[float] = []
        post_errors: Counter[str] = Counter()
        auth = {"Authorization": f"Bearer {accounts.channel_key}"}
        payloads = []
        for i in range(messages):  # 1 in 5 from a returning contact, as in bench.ingest
            contact = rng.randrange(i) if i and rng.random() < 0.2 else i
            payloads.append(
                {
                    "external_id": f"live-m{i}",
                    "contact": {"external_id": f"live-c{contact}", "name": f"Клиент {contact} Live"},
                    "text": text(rng),
                }
            )

        async def post(payload: dict[str, Any]) -> None:
            t0 = time.perf_counter()
            sent[payload["external_id"]] = t0
            try:
                async with poster.post(base + "/api/v1/inbound", json=payload, headers=auth) as response:
                    await response.read()
                    if response.status in (200, 201):
                        post_ms.append((time.perf_counter() - t0) * 1000)
                    else:
                        post_errors[f"HTTP {response.status}"] += 1
            except (aiohttp.ClientError, OSError) as exc:
                post_errors[type(exc).__name__] += 1

        cpu_client, cpu_server, busy, started = time.process_time(), _cpu(proc), _busy(), time.perf_counter()
        posts = []
        for i, payload in enumerate(payloads):
            delay = started + i / rate - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            if time.perf_counter() - started > PHASE_LIMIT:
                post_errors["time limit"] += len(payloads) - i
                break
            posts.append(asyncio.create_task(post(payload)))
        _, late = await asyncio.wait(posts, timeout=60)
        for task in late:
            task.cancel()
        if late:
            post_errors["no answer in 60 s"] += len(late)
        window = time.perf_counter() - started
        shares = (
            (_cpu(proc) - cpu_server) / window,
            (time.process_time() - cpu_client) / window,
            (_busy() - busy) / window,
        )
        pairs.expected = len(post_ms) * sockets
        if pairs.received >= pairs.expected:
            pairs.all_in.set()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(pairs.all_in.wait(), FRAME_GRACE)
        for ws in connections:
            await ws.close()
        for reader in readers:
            reader.cancel()
        await asyncio.gather(*readers, return_exceptions=True)

    latencies, first, spread = [], [], []
    for external_id, times in arrived.items():
        t0 = sent[external_id]
        latencies += [(t - t0) * 1000 for t in times]
        first.append((min(times) - t0) * 1000)
        spread.append((max(times) - min(times)) * 1000)
    delivered = len(post_ms)
    return Live(
        latencies_ms=latencies,
        first_ms=first,
        spread_ms=spread,
        post_ms=post_ms,
        missed=delivered * sockets - len(latencies),
        post_errors=post_errors,
        frames=frames,
        seconds=window,
        server_cpu=shares[0],
        client_cpu=shares[1],
        other_cpu=max(0.0, shares[2] - shares[0] - shares[1]),
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--conversations", type=int, default=100_000)
    parser.add_argument("--messages-per-conversation", type=int, default=10)
    parser.add_argument("--page-requests", type=int, default=300, help="per view, and for /healthz")
    parser.add_argument("--sockets", type=int, default=100, help="operators with the page open")
    parser.add_argument("--messages", type=int, default=500, help="inbound messages posted while they listen")
    parser.add_argument("--rate", type=float, default=20.0, help="inbound messages per second")
    parser.add_argument("--quick", action="store_true", help="10,000 conversations, 10 sockets, 100 messages")
    args = parser.parse_args()
    if args.quick:
        args.conversations, args.sockets, args.messages, args.page_requests = 10_000, 10, 100, 60
    # set-up only: 101 operators with production argon2 parameters would take seconds and 64 MiB each
    passwords.use_hasher(PasswordHasher(time_cost=1, memory_cost=64, parallelism=1))
    total = args.conversations * args.messages_per_conversation
    with tempfile.TemporaryDirectory(prefix="inbox-bench-webui-") as tmp:
        data = Path(tmp)
        print(f"store: {args.conversations:,} conversations / {total:,} messages (bench.ingest's filler)")
        t0 = time.perf_counter()
        populate(data / "inbox.sqlite3", args.conversations, args.messages_per_conversation)
        accounts = asyncio.run(add_accounts(data / "inbox.sqlite3", args.sockets))
        size = (data / "inbox.sqlite3").stat().st_size / MB
        print(f"   filled in {time.perf_counter() - t0:.1f} s ({size:,.0f} MB), {args.sockets} operators, an admin")
        word = COMMON_WORDS[0]
        paths = {
            "GET /healthz (ceiling)": "/healthz",
            "GET / (open, all)": "/",
            "GET /?view=unassigned": "/?view=unassigned",
            "GET /?status=any": "/?status=any",
            f"GET /?q={word}": "/?q=" + word,
        }
        agents_presence(data / "inbox.sqlite3", "offline")
        with server(inbox_server(data)) as (base, proc):
            print(f"1+2. pages: {args.page_requests} sequential GETs each, signed in as an admin, {ROUNDS} rounds")
            timings, page_other = asyncio.run(page_times(base, proc, paths, args.page_requests))
            print(f"   {'':<28}{'n':>5}{'p50 ms':>9}{'p95 ms':>9}{'p99 ms':>9}{'max ms':>9}{'server CPU ms':>15}  rows")
            for name, t in timings.items():
                values = t.latencies_ms
                print(
                    f"   {name:<28}{len(values):>5}{percentile(values, 50):>9.1f}{percentile(values, 95):>9.1f}"
                    f"{percentile(values, 99):>9.1f}{max(values):>9.1f}{t.cpu_ms():>15.1f}  {t.rows}"
                    f" ({t.size / 1024:.0f} KB)"
                )
            print(f"   CPU of other processes: {page_other:.0%} of one core")
        agents_presence(data / "inbox.sqlite3", "online")
        t0 = time.perf_counter()
        with server(inbox_server(data)) as (base, proc):
            print(
                f"3. live: {args.sockets} operators' sockets, {args.messages} inbound messages at {args.rate:g}/s;"
                f" the server restarted with the filler's 20 agents online, so routing assigns each new"
                f" conversation (start-up, incl. assigning the waiting queue: {time.perf_counter() - t0:.1f} s)"
            )
            live = asyncio.run(live_latency(base, proc, accounts, args.messages, args.rate))
            rss = proc.memory_info().rss / MB
        lat = live.latencies_ms
        print(
            f"   {len(lat):,} (message, socket) pairs; latency p50 {percentile(lat, 50):.1f} ms, p95 "
            f"{percentile(lat, 95):.1f}, p99 {percentile(lat, 99):.1f}, max {max(lat, default=float('nan')):.1f}; "
            f"missed {live.missed}\n   first socket p50 {percentile(live.first_ms, 50):.1f} ms / p99 "
            f"{percentile(live.first_ms, 99):.1f}; last − first socket p50 {percentile(live.spread_ms, 50):.1f} ms / "
            f"p99 {percentile(live.spread_ms, 99):.1f}; POST round trip p50 {percentile(live.post_ms, 50):.1f} ms / "
            f"p99 {percentile(live.post_ms, 99):.1f}; POST errors: {dict(live.post_errors) or 'none'}"
            f"\n   frames per socket: "
            + ", ".join(f"{kind} {n / max(1, args.sockets):,.0f}" for kind, n in live.frames.most_common())
            + f"\n   CPU over {live.seconds:.1f} s, share of one core: server {live.server_cpu:.0%}, "
            f"client {live.client_cpu:.0%}, other processes {live.other_cpu:.0%}; server RSS {rss:.0f} MB"
        )

    pages = [v for name, t in timings.items() if "healthz" not in name for v in t.latencies_ms]
    ceiling = timings["GET /healthz (ceiling)"].latencies_ms

    def spread(values: list[float], *ps: float) -> str:
        return " / ".join(f"{percentile(values, p):.1f}" for p in ps)

    def goal(value: float, target: float) -> str:
        return f"≤ {target:g}  {'MET' if value <= target else 'MISSED'}"

    print(f"\nsummary ({psutil.cpu_count()} CPUs; times measured by the client on loopback)")
    rows = [("store", f"{args.conversations:,} / {total:,}", "conversations / messages")]
    for name, t in timings.items():
        if "healthz" not in name:
            rows.append(
                (
                    f"{name} p50/p95/p99 ms",
                    spread(t.latencies_ms, 50, 95, 99),
                    f"{goal(percentile(t.latencies_ms, 95), TARGET_PAGE_P95_MS)} (p95); server CPU {t.cpu_ms():.1f} ms",
                )
            )
    rows.append(("all four views together", spread(pages, 50, 95, 99), ""))
    rows += [
        ("ceiling /healthz p50/p95/p99 ms", spread(ceiling, 50, 95, 99), "same client, same rounds"),
        ("CPU of other processes, pages", f"{page_other:.0%}", "of one core"),
        (
            f"live p50/p95/p99 ms, {args.sockets} sockets",
            spread(lat, 50, 95, 99),
            goal(percentile(lat, 99), TARGET_LIVE_P99_MS),
        ),
        ("live max ms", f"{max(lat, default=float('nan')):.1f}", ""),
        ("missed frames", str(live.missed), f"of {len(live.post_ms) * args.sockets:,} (message, socket) pairs"),
        ("POST errors", str(sum(live.post_errors.values())), ""),
        ("CPU of other processes, live", f"{live.other_cpu:.0%}", "of one core"),
    ]
    for name, value, note in rows:
        print(f"  {name:<38}{value:>22}   {note}")


if __name__ == "__main__":
    main()
