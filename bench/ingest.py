"""Ingest and conversation-list benchmark: prints figures, asserts nothing.

``python -m bench.ingest`` (``--quick``: a smoke run under a minute) measures, on 127.0.0.1 only:

1. Inbound msgs/s through ``POST /api/v1/inbound`` end to end (HTTP → SQLite → event bus): the real
   server (``python -m inbox serve``) on a temp data dir with an api channel; a load client in a
   *separate* process (each gets a core) keeps 64 requests in flight over keep-alive connections,
   every message unique, 1 in 5 from a returning contact (so threading happens). Only 201s count.
2. The ceiling: the same client against a bare aiohttp app (reads the JSON body, answers a small
   JSON 201, access log off); the ingest/ceiling ratio.
3. ``GET /api/v1/conversations`` latency over 100,000 conversations / 1,000,000 messages written
   straight into a fresh SQLite file through the store's schema, then served by the real server:
   filters, next_cursor pages and, reported apart, ``q=`` text search.
4. Server RSS (psutil) idle after start-up and after the ingest run.

Each load figure comes with the CPU share of server, client and *other* processes: on two cores,
anything else running skews it. Every loop is bounded in count and in time.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import random
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import psutil
from aiohttp import web

from inbox.ids import new_id
from storage.sqlite.schema import migrate

TARGET_INGEST, TARGET_RATIO, TARGET_LIST_P95_MS, TARGET_IDLE_RSS_MB = 3000.0, 0.3, 20.0, 150.0
LOAD_TIME_LIMIT = 300.0  # seconds; a load run stops sending past this
MB = 1024 * 1024
WORDS = (
    "заказ доставка оплата возврат товар счёт помогите пожалуйста спасибо проблема не работает "
    "приложение карта адрес курьер здравствуйте срочно order delivery payment refund invoice "
    "account password login error please thanks help shipping tracking app card hello urgent"
).split()
TAGS = ("billing", "vip", "bug", "delivery", "refund", "feedback", "sales", "spam", "urgent", "b2b")
COMMON_WORDS = ("доставка", "refund", "курьер", "invoice")


def text(rng: random.Random, length: int = 200) -> str:
    words: list[str] = []
    while sum(len(w) + 1 for w in words) < length:
        words.append(rng.choice(WORDS))
    return " ".join(words)


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))] if ordered else float("nan")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


NO_PROXY = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # 127.0.0.1 stays direct
ENV = {k: v for k, v in os.environ.items() if not k.startswith("INBOX_")} | {"INBOX_LOG_LEVEL": "WARNING"}


def inbox_cli(data_dir: Path, *args: str) -> dict[str, str]:
    done = subprocess.run(
        [sys.executable, "-m", "inbox", *args, "--json", "--data-dir", str(data_dir)],
        env=ENV,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


def inbox_server(data_dir: Path) -> list[str]:
    return ["-m", "inbox", "serve", "--data-dir", str(data_dir), "--http-port", "PORT", "--smtp-port", str(free_port())]


@contextmanager
def server(args: list[str]) -> Iterator[tuple[str, psutil.Process]]:
    """Starts ``python ARGS`` (PORT replaced by a free port), waits for /healthz; at the end
    terminates it, then kills it if it lingers."""
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, *[a.replace("PORT", str(port)) for a in args]], env=ENV, stdout=subprocess.DEVNULL
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"server exited with {proc.returncode}: {args}")
            try:
                with NO_PROXY.open(base + "/healthz", timeout=2):
                    break
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError("server did not become healthy in 60 s") from None
                time.sleep(0.05)
        yield base, psutil.Process(proc.pid)
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)


def serve_bare(port: int) -> None:
    """The ceiling: what aiohttp alone does with a JSON POST."""

    async def post(request: web.Request) -> web.Response:
        body = await request.json()
        return web.json_response({"id": body.get("external_id"), "duplicate": False}, status=201)

    async def health(request: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    app = web.Application()
    app.add_routes([web.post("/api/v1/inbound", post), web.get("/healthz", health)])
    web.run_app(app, host="127.0.0.1", port=port, access_log=None, print=None)


# load client: runs in its own process (a one-worker pool, so the same client serves both runs)


@dataclass(frozen=True)
class Load:
    latencies_ms: list[float]  # of the 201 responses
    errors: Counter[str]
    rate: float  # 201s per second
    seconds: float
    client_cpu: float  # share of one core the client used


_PAYLOADS: list[bytes] = []  # built by prepare() in the client process, before the clock starts


def prepare(n: int, run: str) -> None:
    rng, contacts = random.Random(7), 0
    _PAYLOADS.clear()
    for i in range(n):
        if contacts and rng.random() < 0.2:
            contact = rng.randrange(contacts)  # a returning contact: threads into their conversation
        else:
            contact, contacts = contacts, contacts + 1
        _PAYLOADS.append(
            json.dumps(
                {
                    "external_id": f"{run}-m{i}",
                    "contact": {"external_id": f"{run}-c{contact}", "name": f"Клиент {contact} Customer"},
                    "text": text(rng),
                    "subject": f"Вопрос по заказу #{i} / order question",
                },
                ensure_ascii=False,
            ).encode()
        )


def run_load(base: str, key: str, concurrency: int) -> Load:
    return asyncio.run(_load(base, key, concurrency))


async def _load(base: str, key: str, concurrency: int) -> Load:
    """A pool of raw keep-alive HTTP/1.1 connections. aiohttp's client saturated its own core near
    5k req/s here, which would have measured the client instead of the server."""
    port = int(base.rsplit(":", 1)[1])
    head = (
        f"POST /api/v1/inbound HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nAuthorization: Bearer {key}"
        "\r\nContent-Type: application/json\r\nContent-Length: "
    ).encode()
    latencies: list[float] = []
    errors: Counter[str] = Counter()
    queue = iter(_PAYLOADS)
    started, cpu = time.perf_counter(), time.process_time()

    async def worker() -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        for body in queue:
            if time.perf_counter() - started > LOAD_TIME_LIMIT:
                errors["time limit"] += 1
                break
            t0 = time.perf_counter()
            try:
                writer.write(b"%s%d\r\n\r\n%s" % (head, len(body), body))
                header = (await reader.readuntil(b"\r\n\r\n")).lower()
                at = header.index(b"\r\ncontent-length:") + 17
                await reader.readexactly(int(header[at : header.index(b"\r\n", at)]))
                if (status := int(header[9:12])) == 201:
                    latencies.append((time.perf_counter() - t0) * 1000)
                else:
                    errors[f"HTTP {status}"] += 1
                if b"\r\nconnection: close" not in header:
                    continue
            except (OSError, ValueError, asyncio.IncompleteReadError) as exc:
                errors[type(exc).__name__] += 1
            writer.close()
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.close()

    async with asyncio.timeout(LOAD_TIME_LIMIT + 60):
        await asyncio.gather(*(worker() for _ in range(concurrency)))
    seconds = time.perf_counter() - started
    return Load(latencies, errors, len(latencies) / seconds, seconds, (time.process_time() - cpu) / seconds)


def _busy() -> float:  # machine-wide CPU seconds not idle
    return sum(getattr(psutil.cpu_times(), f, 0.0) for f in ("user", "nice", "system", "irq", "softirq"))


def measure(
    pool: ProcessPoolExecutor, base: str, key: str, n: int, server: psutil.Process, run: str
) -> tuple[Load, float]:
    """Runs the client once; returns its figures and the CPU share other processes took meanwhile."""
    pool.submit(prepare, n, run).result(300)
    cpu, busy, t0 = sum(server.cpu_times()[:2]), _busy(), time.perf_counter()
    load = pool.submit(run_load, base, key, 64).result(LOAD_TIME_LIMIT + 120)
    wall = time.perf_counter() - t0
    server_cpu = (sum(server.cpu_times()[:2]) - cpu) / wall
    other = (_busy() - busy) / wall - server_cpu - load.client_cpu * load.seconds / wall
    print(
        f"   {len(load.latencies_ms):,} × 201 in {load.seconds:.2f} s = {load.rate:,.0f}/s; latency p50 "
        f"{percentile(load.latencies_ms, 50):.1f} ms, p99 {percentile(load.latencies_ms, 99):.1f} ms; "
        f"errors: {dict(load.errors) or 'none'}\n   CPU, share of one core: server {server_cpu:.0%}, "
        f"client {load.client_cpu:.0%}, other processes {max(other, 0):.0%}"
    )
    return load, max(other, 0)


# a large store, written directly through the schema


def populate(path: Path, conversations: int, per_conversation: int) -> dict[str, list[str]]:
    db = sqlite3.connect(path, isolation_level=None)
    migrate(db)
    db.executescript("PRAGMA journal_mode = OFF; PRAGMA synchronous = OFF; PRAGMA cache_size = -262144;")
    rng, now, minute, day = random.Random(42), time.time_ns() // 1000, 60_000_000, 86_400_000_000
    # api channels only: other kinds would make the server start their connectors (IMAP, bots, …)
    channels = [(new_id(), "api", f"API {k}", "{}", None, now - 400 * day) for k in range(5)]
    operators = [
        (
            new_id(),
            f"agent{k}@bench.example",
            f"Agent {k}",
            "operator",
            "online",
            0,
            None,
            "[]",
            None,
            os.urandom(32).hex(),
            now - 400 * day,
        )
        for k in range(20)
    ]
    channel_ids, operator_ids = [c[0] for c in channels], [o[0] for o in operators]
    rare = [f"z{rng.randrange(10**6):06d}" for _ in range(2000)]  # order numbers: a few hits each
    bodies = [f"{text(rng)} {rng.choice(rare)}" for _ in range(20_000)]
    db.execute("BEGIN")
    db.executemany("INSERT INTO channels VALUES (?, ?, ?, ?, ?, ?)", channels)
    db.executemany(
        "INSERT INTO operators (id, email, name, role, presence, focus_mode, max_open, teams, password_hash,"
        " token_hash, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        operators,
    )
    db.execute("UPDATE counters SET value = ? WHERE name = 'conversation_number'", (1000 + conversations,))
    db.execute("COMMIT")
    n_contacts = max(1, conversations * 4 // 5)  # the last fifth of the conversations reuse contacts
    contact_ids: list[str] = []
    search_id = 0
    for start in range(0, conversations, 2000):
        rows: dict[str, list[tuple[object, ...]]] = {
            t: []
            for t in (
                "contacts",
                "contact_identities",
                "conversations",
                "conversation_tags",
                "thread_keys",
                "messages",
                "search_rows",
                "message_search",
            )
        }
        for i in range(start, min(start + 2000, conversations)):
            if i < n_contacts:
                contact_ids.append(new_id())
                rows["contacts"].append(
                    (contact_ids[i], f"Клиент Customer {i}", f"c{i}@example.com", None, "{}", now - 300 * day + i)
                )
                rows["contact_identities"].append(("api", f"cust-{i}", contact_ids[i]))
            cid, channel = new_id(), rng.choice(channel_ids)
            searchable: list[str] = []  # the conversation's texts for the search index
            status = rng.choices(("open", "pending", "snoozed", "resolved"), (25, 10, 5, 60))[0]
            assignee = rng.choice(operator_ids) if rng.random() < 0.8 else None
            tags = rng.sample(TAGS, rng.choice((0, 0, 1, 1, 2, 3)))
            at = created = last_in = now - rng.randrange(180 * day)
            for j in range(per_conversation):
                at += rng.randrange(1, 30) * minute
                inbound, body = j % 2 == 0, bodies[rng.randrange(len(bodies))]
                last_in = at if inbound else last_in
                rows["messages"].append(
                    (
                        new_id(),
                        cid,
                        channel,
                        "in" if inbound else "out",
                        "message",
                        body,
                        None,
                        None if inbound else assignee or operator_ids[0],
                        "[]",
                        f"ext-{i}-{j}" if inbound else None,
                        None,
                        "received" if inbound else "sent",
                        None,
                        "{}",
                        at,
                    )
                )
                searchable.append(body)
            subject = f"Заказ #{i}: {rng.choice(WORDS)} {rng.choice(WORDS)}"
            searchable.append(f"{subject} Клиент Customer {i % n_contacts}")
            for searched in searchable:
                search_id += 1
                rows["search_rows"].append((search_id, cid))
                rows["message_search"].append((search_id, searched))
            rows["conversations"].append(
                (
                    cid,
                    1001 + i,
                    channel,
                    contact_ids[i % n_contacts],
                    subject,
                    status,
                    rng.choice(("low", "normal", "normal", "high", "urgent")),
                    assignee,
                    None,
                    json.dumps(tags),
                    created,
                    at,
                    at,
                    last_in,
                    created + 5 * minute if per_conversation > 1 else None,
                    last_in if status == "open" else None,
                    now + day if status == "snoozed" else None,
                    at if status == "resolved" else None,
                )
            )
            rows["conversation_tags"].extend((tag, cid, at) for tag in tags)
            rows["thread_keys"].append((f"contact:cust-{i % n_contacts}", cid))
        db.execute("BEGIN")
        for table, values in rows.items():
            if values:  # tuples follow the schema's column order
                columns = [r[1] for r in db.execute(f"PRAGMA table_info({table})")][: len(values[0])]
                if table == "message_search":  # the index keeps no content: its rowid is the search_rows id
                    columns = ["rowid", "text"]
                marks = ", ".join("?" * len(columns))
                db.executemany(f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks})", values)
        db.execute("COMMIT")
    db.close()
    return {"channels": channel_ids, "operators": operator_ids, "rare": rng.sample(rare, 4)}


async def list_latencies(
    base: str, token: str, ids: dict[str, list[str]], requests: int, searches: int
) -> dict[str, list[float]]:
    """Sequential GETs; every fourth filter query is followed by three next_cursor pages."""
    rng, deadline = random.Random(3), time.monotonic() + 300
    kinds: dict[str, list[float]] = {}
    filters = [
        ("no filter", lambda: {}),
        ("status=open", lambda: {"status": "open"}),
        ("assignee=<id>", lambda: {"assignee": rng.choice(ids["operators"])}),
        ("tag=<tag>", lambda: {"tag": rng.choice(TAGS)}),
        ("channel=<id>", lambda: {"channel": rng.choice(ids["channels"])}),
    ]
    async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {token}"}) as session:

        async def get(kind: str, params: dict[str, str]) -> str | None:
            t0 = time.perf_counter()
            async with session.get(base + "/api/v1/conversations", params=params) as response:
                page = await response.json()
                if response.status != 200:
                    raise RuntimeError(f"GET {params} → {response.status}: {page}")
            kinds.setdefault(kind, []).append((time.perf_counter() - t0) * 1000)
            return page["next_cursor"]

        for _ in range(5):
            await get("warm-up", {})
        done, first = 0, 0
        while done < requests and time.monotonic() < deadline:
            kind, make = filters[first % len(filters)]
            chosen = make()
            cursor = await get(kind, chosen)
            done, first = done + 1, first + 1
            for _ in range(3 if first % 4 == 0 else 0):
                if cursor is not None and done < requests:
                    cursor, done = await get("next_cursor pages", chosen | {"cursor": cursor}), done + 1
        words = [*COMMON_WORDS, *ids["rare"]]
        for k in range(searches):
            if time.monotonic() < deadline + 120:
                word = words[k % len(words)]
                await get("q=common word" if word in COMMON_WORDS else "q=rare word", {"q": word})
    kinds.pop("warm-up")
    return kinds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=20_000, help="inbound messages to post")
    parser.add_argument("--conversations", type=int, default=100_000, help="for the list latency store")
    parser.add_argument("--messages-per-conversation", type=int, default=10)
    parser.add_argument("--list-requests", type=int, default=300, help="GETs without q=")
    parser.add_argument("--searches", type=int, default=40, help="GETs with q= (reported apart)")
    parser.add_argument("--quick", action="store_true", help="small sizes: a smoke run under a minute")
    parser.add_argument("--bare-server", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.bare_server:
        return serve_bare(args.bare_server)
    if args.quick:
        args.messages, args.conversations, args.messages_per_conversation = 2000, 5000, 5
        args.list_requests, args.searches = 100, 16
    total = args.conversations * args.messages_per_conversation
    pool = ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn"))
    with pool, tempfile.TemporaryDirectory(prefix="inbox-bench-") as tmp:
        pool.submit(int).result()  # the client process starts before anything is timed
        print(f"1. ingest: {args.messages:,} messages through POST /api/v1/inbound, 64 in flight")
        channel = inbox_cli(Path(tmp, "ingest"), "channel", "add", "api")
        with server(inbox_server(Path(tmp, "ingest"))) as (base, proc):
            time.sleep(1)
            idle_rss = proc.memory_info().rss / MB
            ingest, other_ingest = measure(pool, base, channel["key"], args.messages, proc, "run1")
            time.sleep(2)
            after_rss = proc.memory_info().rss / MB
        print(f"2. ceiling: bare aiohttp JSON POST → 201, same client, {args.messages:,} requests")
        with server(["-m", "bench.ingest", "--bare-server", "PORT"]) as (base, proc):
            ceiling, other_ceiling = measure(pool, base, "-", args.messages, proc, "run2")
        ratio = ingest.rate / ceiling.rate if ceiling.rate else float("nan")
        print(f"   ratio ingest/ceiling: {ratio:.2f}")
        print(f"3. conversation list: {args.conversations:,} conversations / {total:,} messages")
        big = Path(tmp, "big")
        big.mkdir()
        t0 = time.perf_counter()
        ids = populate(big / "inbox.sqlite3", args.conversations, args.messages_per_conversation)
        populate_s = time.perf_counter() - t0
        print(f"   populated in {populate_s:.1f} s ({(big / 'inbox.sqlite3').stat().st_size / MB:,.0f} MB)")
        token = inbox_cli(big, "operator", "add", "bench@example.com", "--role", "admin")["api_token"]
        with server(inbox_server(big)) as (base, proc):
            kinds = asyncio.run(list_latencies(base, token, ids, args.list_requests, args.searches))
            big_rss = proc.memory_info().rss / MB
        print(f"   {'GET /api/v1/conversations':<28}{'n':>5}{'p50 ms':>9}{'p95 ms':>9}{'max ms':>9}")
        for kind, values in kinds.items():
            print(
                f"   {kind:<28}{len(values):>5}{percentile(values, 50):>9.1f}"
                f"{percentile(values, 95):>9.1f}{max(values):>9.1f}"
            )
        print(
            f"4. server RSS: idle after start-up {idle_rss:.0f} MB, after ingest {after_rss:.0f} MB, "
            f"after the list run on the big store {big_rss:.0f} MB"
        )
    plain = [v for k, vs in kinds.items() if not k.startswith("q=") for v in vs]
    search = [v for k, vs in kinds.items() if k.startswith("q=") for v in vs]

    def pair(values: list[float], low: float, high: float) -> str:
        return f"{percentile(values, low):.1f} / {percentile(values, high):.1f}"

    def goal(value: float, target: float, higher: bool) -> str:
        met = value >= target if higher else value <= target
        return f"{'≥' if higher else '≤'} {target:g}  {'met' if met else 'MISSED'}"

    print("\nsummary")
    for name, value, target in (
        ("ingest msgs/s", f"{ingest.rate:,.0f}", goal(ingest.rate, TARGET_INGEST, True)),
        ("ingest latency p50 / p99 ms", pair(ingest.latencies_ms, 50, 99), ""),
        ("ingest errors", str(sum(ingest.errors.values())), ""),
        ("ceiling req/s (bare aiohttp)", f"{ceiling.rate:,.0f}", ""),
        ("ratio ingest/ceiling", f"{ratio:.2f}", goal(ratio, TARGET_RATIO, True)),
        ("CPU of other processes", f"{other_ingest:.0%} / {other_ceiling:.0%}", "of one core, during ingest / ceiling"),
        ("list p50 / p95 ms (no q)", pair(plain, 50, 95), goal(percentile(plain, 95), TARGET_LIST_P95_MS, False)),
        ("text search p50 / p95 ms", pair(search, 50, 95), ""),
        ("store populate s", f"{populate_s:.1f}", f"{args.conversations:,} conv. / {total:,} msgs"),
        ("idle RSS MB after start-up", f"{idle_rss:.0f}", goal(idle_rss, TARGET_IDLE_RSS_MB, False)),
        ("idle RSS MB after ingest", f"{after_rss:.0f}", goal(after_rss, TARGET_IDLE_RSS_MB, False)),
    ):
        print(f"  {name:<30}{value:>16}   {target}")


if __name__ == "__main__":
    main()
