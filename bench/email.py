"""Email intake benchmark: prints figures, asserts nothing.

``python -m bench.email`` (``--quick`` for a smoke run) measures on 127.0.0.1 only:

1. Messages/s accepted over SMTP by the real ``inbox serve`` (5 KB messages, 10 concurrent client
   connections, each message durably stored before its ``250``), and in the same run a bare
   aiosmtpd server whose handler only counts: the ceiling, and the ratio.
2. Messages/s parsed by ``parse-email``'s function over the corpus in ``tests/data/email``.
3. A Dovecot mailbox (needs ``dovecot-imapd``; ``--no-imap`` skips it) of 5,000 varied messages
   (the corpus, each made unique) imported by ``inbox serve``'s IMAP poller, messages/s.

The load client runs in this process; the servers are subprocesses, so each gets a core. For each
SMTP server it also prints where the CPU went, in ms a message: the server's event loop thread,
its other threads (the mail parser), and the load client (with the sampler below); and, on Linux,
the share of the run the loop's thread spent on a core and waiting for one (the scheduler's own
figures), and asleep on a futex (the GIL, a lock) or in epoll (idle), sampled every 10 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from email.message import EmailMessage
from pathlib import Path

import aiosmtplib
import psutil

from connectors.email.parsing import parse_email

TARGET_SMTP, TARGET_RATIO, TARGET_IMAP = 400.0, 0.4, 250.0
CORPUS = Path(__file__).parents[1] / "tests" / "data" / "email"
ENV = {k: v for k, v in os.environ.items() if not k.startswith("INBOX_")} | {"INBOX_LOG_LEVEL": "WARNING"}
TEXT = (
    "Здравствуйте! Заказ №{n} так и не пришёл, курьер не звонил. Hello, my order {n} has not arrived yet, "
    "could you please check the tracking number and the delivery address? Спасибо. "
) * 16


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def message(n: int) -> bytes:
    mail = EmailMessage()
    mail["From"] = f"Клиент {n % 200} <customer{n % 200}@example.org>"
    mail["To"] = "support@example.com"
    mail["Subject"] = f"Заказ №{n}"
    mail["Message-ID"] = f"<bench-{n}-{os.getpid()}@example.org>"
    mail.set_content(TEXT.format(n=n)[:5000])
    return mail.as_bytes()


BARE_SERVER = """
import asyncio, sys
from aiosmtpd.smtp import SMTP

class Count:
    async def handle_RCPT(self, server, session, envelope, address, options):
        envelope.rcpt_tos.append(address)
        return "250 OK"
    async def handle_DATA(self, server, session, envelope):
        return "250 OK"

async def main():
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: SMTP(Count()), "127.0.0.1", int(sys.argv[1]))
    await server.serve_forever()

asyncio.run(main())
"""


@contextmanager
def process(args: list[str], port: int) -> Iterator[subprocess.Popen[bytes]]:
    proc = subprocess.Popen([sys.executable, *args], env=ENV, stdout=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"server exited with {proc.returncode}: {args}")
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1):
                    break
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError("server did not listen in 60 s") from None
                time.sleep(0.05)
        yield proc
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()


def healthy(port: int, seconds: float = 30.0) -> None:
    """The SMTP intake listens before the HTTP site does (it starts with the app's contexts), so
    the health check is retried until HTTP answers too."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=10).read()
            return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


@dataclass
class CpuAccount:
    """Where the CPU went while a server took ``messages``; ``None`` where this OS does not tell."""

    messages: int
    loop_thread_ms: float
    other_threads_ms: float
    client_ms: float
    on_core: float | None  # shares of the run, for the loop's thread
    waiting_for_core: float | None
    on_futex: float | None  # sampled shares of the run: asleep on a futex (the GIL, a lock), in epoll (idle)
    in_epoll: float | None

    def describe(self) -> str:
        line = (
            f"      CPU ms a message: event loop thread {self.loop_thread_ms:.2f}, other threads"
            f" {self.other_threads_ms:.2f}, load client {self.client_ms:.2f}"
        )
        if self.on_core is not None and self.waiting_for_core is not None:
            asleep = max(0.0, 1 - self.on_core - self.waiting_for_core)
            line += (
                f"\n      event loop thread: on a core {self.on_core:.0%} of the run, waiting for one"
                f" {self.waiting_for_core:.0%}, asleep {asleep:.0%}"
            )
            if self.on_futex is not None and self.in_epoll is not None:
                line += f": on a futex (the GIL, a lock) {self.on_futex:.0%}, in epoll (idle) {self.in_epoll:.0%}"
        return line


def _schedstat(pid: int) -> tuple[int, int] | None:
    """Nanoseconds the thread ``pid`` has run and waited to run (Linux), or None."""
    try:
        run, wait, _ = Path(f"/proc/{pid}/schedstat").read_text().split()
    except (OSError, ValueError):
        return None
    return int(run), int(wait)


class _SleepSampler(threading.Thread):
    """Reads every 10 ms where the kernel has a thread asleep (Linux's ``wchan``): on a futex (the
    GIL, or a lock) or in epoll (the event loop with nothing to do)."""

    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self._stat, self._wchan = Path(f"/proc/{pid}/stat"), Path(f"/proc/{pid}/wchan")
        self.samples = self.on_futex = self.in_epoll = 0
        self.readable = True
        self._done = threading.Event()

    def run(self) -> None:
        while not self._done.wait(0.01):
            try:
                state = self._stat.read_text().rsplit(")", 1)[1].split()[0]
                where = self._wchan.read_text()
            except (OSError, IndexError):
                self.readable = False
                return
            self.samples += 1
            if state == "S":
                self.on_futex += "futex" in where
                self.in_epoll += "epoll" in where
        if self.samples and self.on_futex + self.in_epoll == 0:
            self.readable = False  # the kernel hides wchan here ("0")

    def shares(self) -> tuple[float | None, float | None]:
        self._done.set()
        self.join()
        if not (self.readable and self.samples):
            return None, None
        return self.on_futex / self.samples, self.in_epoll / self.samples


@contextmanager
def cpu_account(server_pid: int, messages: int) -> Iterator[list[CpuAccount]]:
    """Measures the block; the account is in the yielded list afterwards. The server's main thread
    (thread id = process id) runs its event loop."""
    server, client = psutil.Process(server_pid), psutil.Process()
    sampler = _SleepSampler(server_pid)
    sampler.start()

    def threads() -> dict[int, float]:
        return {t.id: t.user_time + t.system_time for t in server.threads()}

    before, client_before, sched_before = threads(), sum(client.cpu_times()[:2]), _schedstat(server_pid)
    started = time.perf_counter()
    result: list[CpuAccount] = []
    yield result
    wall = time.perf_counter() - started
    after, client_after, sched_after = threads(), sum(client.cpu_times()[:2]), _schedstat(server_pid)
    on_futex, in_epoll = sampler.shares()
    spent = {tid: seconds - before.get(tid, 0.0) for tid, seconds in after.items()}
    loop = spent.pop(server_pid, 0.0)
    shares = (
        [(b - a) / 1e9 / wall for a, b in zip(sched_before, sched_after, strict=True)]
        if sched_before and sched_after
        else [None, None]
    )
    per = 1000 / messages
    result.append(
        CpuAccount(
            messages,
            loop * per,
            sum(spent.values()) * per,
            (client_after - client_before) * per,
            shares[0],
            shares[1],
            on_futex,
            in_epoll,
        )
    )


async def smtp_load(port: int, messages: list[bytes], connections: int) -> tuple[float, int]:
    """Sends every message once over ``connections`` concurrent SMTP sessions; returns (seconds, errors)."""
    queue: asyncio.Queue[bytes] = asyncio.Queue()
    for raw in messages:
        queue.put_nowait(raw)
    errors = 0

    async def session() -> None:
        nonlocal errors
        client = aiosmtplib.SMTP(hostname="127.0.0.1", port=port, timeout=60)
        await client.connect()
        try:
            while not queue.empty():
                raw = queue.get_nowait()
                try:
                    await client.sendmail("customer@example.org", ["support@example.com"], raw)
                except aiosmtplib.SMTPException:
                    errors += 1
        finally:
            await client.quit()

    started = time.perf_counter()
    await asyncio.wait_for(asyncio.gather(*(session() for _ in range(connections))), timeout=600)
    return time.perf_counter() - started, errors


def inbox_cli(data_dir: Path, *args: str) -> dict[str, str]:
    done = subprocess.run(
        [sys.executable, "-m", "inbox", *args, "--json", "--data-dir", str(data_dir)],
        env=ENV,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    return json.loads(done.stdout)


def stored_messages(data_dir: Path) -> int:
    import sqlite3

    with sqlite3.connect(data_dir / "inbox.sqlite3") as db:
        return int(db.execute("SELECT count(*) FROM messages").fetchone()[0])


def bench_smtp(count: int, connections: int) -> dict[str, float]:
    messages = [message(n) for n in range(count)]
    with tempfile.TemporaryDirectory() as tmp:
        data_dir = Path(tmp)
        inbox_cli(data_dir, "channel", "add", "email", "--address", "support@example.com")
        http_port, smtp_port = free_port(), free_port()
        args = ["-m", "inbox", "serve", "--data-dir", str(data_dir), "--http-port", str(http_port)]
        with process([*args, "--smtp-port", str(smtp_port)], smtp_port) as server:
            healthy(http_port)
            with cpu_account(server.pid, count) as ours:
                seconds, errors = asyncio.run(smtp_load(smtp_port, messages, connections))
        stored = stored_messages(data_dir)
    bare_port = free_port()
    with process(["-c", BARE_SERVER, str(bare_port)], bare_port) as server, cpu_account(server.pid, count) as bare:
        bare_seconds, bare_errors = asyncio.run(smtp_load(bare_port, messages, connections))
    rate, ceiling = count / seconds, count / bare_seconds
    print(f"1. SMTP intake: {count:,} messages of ~5 KB over {connections} connections")
    print(f"   inbox serve: {rate:,.0f} msgs/s, {errors} errors, {stored:,} stored")
    print(ours[0].describe())
    print(f"   bare aiosmtpd (counts only): {ceiling:,.0f} msgs/s, {bare_errors} errors")
    print(bare[0].describe())
    print(f"   ratio: {rate / ceiling:.2f}")
    return {"smtp": rate, "ceiling": ceiling, "ratio": rate / ceiling, "stored": stored, "errors": errors}


def bench_parse(rounds: int) -> float:
    corpus = [p.read_bytes() for p in sorted(CORPUS.glob("*.eml"))]
    started = time.perf_counter()
    for _ in range(rounds):
        for raw in corpus:
            parse_email(raw)
    rate = rounds * len(corpus) / (time.perf_counter() - started)
    print(f"2. parsing: {len(corpus)} corpus messages x {rounds}: {rate:,.0f} msgs/s")
    return rate


def varied(n: int) -> bytes:
    """A corpus message (cycling through them) made unique: its own Message-ID and a sequence header."""
    corpus = sorted(p for p in CORPUS.glob("*.eml") if p.name != "truncated.eml")
    raw = corpus[n % len(corpus)].read_bytes()
    raw = re.sub(rb"(?im)^message-id:[^\r\n]*\r?\n", b"", raw, count=1)
    return f"X-Bench-Seq: {n}\r\nMessage-ID: <imap-bench-{n}@example.org>\r\n".encode() + raw


def bench_imap(count: int) -> float:
    """Imports a Dovecot mailbox of ``count`` varied messages through ``inbox serve``."""
    from tests.email.dovecot import PASSWORD, USER, running_dovecot

    async def fill(dovecot) -> None:  # type: ignore[no-untyped-def]
        for start in range(0, count, 500):
            await dovecot.append([varied(n) for n in range(start, min(start + 500, count))])

    async def run() -> float:
        async with running_dovecot() as dovecot:
            await fill(dovecot)
            with tempfile.TemporaryDirectory() as tmp:
                data_dir = Path(tmp)
                inbox_cli(
                    data_dir,
                    "channel",
                    "add",
                    "email",
                    "--address",
                    "support@example.com",
                    "--imap-host",
                    "127.0.0.1",
                    "--imap-port",
                    str(dovecot.port),
                    "--imap-user",
                    USER,
                    "--imap-password",
                    PASSWORD,
                    "--no-imap-ssl",
                )
                http_port, smtp_port = free_port(), free_port()
                args = ["-m", "inbox", "serve", "--data-dir", str(data_dir), "--http-port", str(http_port)]
                started = time.perf_counter()
                first: tuple[float, int] | None = None  # when the first messages were seen stored, and how many
                with process([*args, "--smtp-port", str(smtp_port)], http_port):
                    deadline = time.monotonic() + 600
                    while (stored := stored_messages(data_dir)) < count and time.monotonic() < deadline:
                        if first is None and stored:
                            first = (time.perf_counter(), stored)
                        await asyncio.sleep(0.05)
                    seconds = time.perf_counter() - started
        steady = (stored - first[1]) / (started + seconds - first[0]) if first else float("nan")
        print(
            f"3. IMAP import: {count:,} varied messages from Dovecot: {stored:,} stored in {seconds:.1f} s"
            f" = {stored / seconds:,.0f} msgs/s including server start-up; {steady:,.0f} msgs/s once importing"
        )
        return stored / seconds

    return asyncio.run(run())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--messages", type=int, default=5000)
    parser.add_argument("--connections", type=int, default=10)
    parser.add_argument("--imap-messages", type=int, default=5000)
    parser.add_argument("--no-imap", action="store_true", help="skip the Dovecot import")
    args = parser.parse_args()
    count = 500 if args.quick else args.messages
    smtp = bench_smtp(count, args.connections)
    parse_rate = bench_parse(5 if args.quick else 40)
    imap_rate = None if args.no_imap else bench_imap(500 if args.quick else args.imap_messages)
    print("\nsummary")
    print(
        f"  SMTP msgs/s (stored)       {smtp['smtp']:8,.0f}   target >= {TARGET_SMTP:,.0f}"
        f"  {'met' if smtp['smtp'] >= TARGET_SMTP else 'MISSED'}"
    )
    print(f"  ceiling (bare aiosmtpd)    {smtp['ceiling']:8,.0f}")
    print(
        f"  ratio                      {smtp['ratio']:8.2f}   target >= {TARGET_RATIO}"
        f"  {'met' if smtp['ratio'] >= TARGET_RATIO else 'MISSED'}"
    )
    print(f"  parse msgs/s (corpus)      {parse_rate:8,.0f}")
    if imap_rate is not None:
        print(
            f"  IMAP import msgs/s         {imap_rate:8,.0f}   target >= {TARGET_IMAP:,.0f}"
            f"  {'met' if imap_rate >= TARGET_IMAP else 'MISSED'}"
        )


if __name__ == "__main__":
    main()
