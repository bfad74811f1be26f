"""Email intake benchmark: prints figures, asserts nothing.

``python -m bench.email`` (``--quick`` for a smoke run) measures on 127.0.0.1 only:

1. Messages/s accepted over SMTP by the real ``inbox serve`` (5 KB messages, 10 concurrent client
   connections, each message durably stored before its ``250``), and in the same run a bare
   aiosmtpd server whose handler only counts: the ceiling, and the ratio.
2. Messages/s parsed by ``parse-email``'s function over the corpus in ``tests/data/email``.
3. A Dovecot mailbox (needs ``dovecot-imapd``; ``--no-imap`` skips it) of 5,000 varied messages
   (the corpus, each made unique) imported by ``inbox serve``'s IMAP poller, messages/s.

The load client runs in this process; the servers are subprocesses, so each gets a core.
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
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from email.message import EmailMessage
from pathlib import Path

import aiosmtplib

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
        with process([*args, "--smtp-port", str(smtp_port)], smtp_port):
            healthy(http_port)
            seconds, errors = asyncio.run(smtp_load(smtp_port, messages, connections))
        stored = stored_messages(data_dir)
    bare_port = free_port()
    with process(["-c", BARE_SERVER, str(bare_port)], bare_port):
        bare_seconds, bare_errors = asyncio.run(smtp_load(bare_port, messages, connections))
    rate, ceiling = count / seconds, count / bare_seconds
    print(f"1. SMTP intake: {count:,} messages of ~5 KB over {connections} connections")
    print(f"   inbox serve: {rate:,.0f} msgs/s, {errors} errors, {stored:,} stored")
    print(f"   bare aiosmtpd (counts only): {ceiling:,.0f} msgs/s, {bare_errors} errors")
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
