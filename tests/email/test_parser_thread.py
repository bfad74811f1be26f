"""The parser thread: mail is parsed off the loop, in order, failures handed to the caller."""

from __future__ import annotations

import asyncio
import threading

import pytest

from connectors.email.parser_thread import MailParser
from inbox.errors import PayloadError


async def test_parses_off_the_loop_in_order_and_hands_failures_back() -> None:
    loop_thread = threading.current_thread()
    seen: list[tuple[bytes, bool]] = []

    def parse(raw: bytes) -> bytes:  # type: ignore[return-value]  # a stand-in: the parser's own outcome
        seen.append((raw, threading.current_thread() is loop_thread))
        if raw == b"bad":
            raise PayloadError("no header block")
        return raw.upper()

    parser = MailParser(parse)  # type: ignore[arg-type]
    futures = [parser.parse(raw) for raw in (b"a", b"bad", b"c", b"d")]
    futures[3].cancel()  # its caller gave up: the thread still works through the queue
    outcomes = await asyncio.gather(*futures[:3], return_exceptions=True)
    assert outcomes[0] == b"A" and outcomes[2] == b"C"
    assert isinstance(outcomes[1], PayloadError)
    for _ in range(100):  # the cancelled one is parsed too, then dropped
        if len(seen) == 4:
            break
        await asyncio.sleep(0.01)
    assert seen == [(b"a", False), (b"bad", False), (b"c", False), (b"d", False)]


async def test_a_burst_comes_back_complete() -> None:
    parser = MailParser(lambda raw: raw)  # type: ignore[arg-type,return-value]
    raws = [str(n).encode() for n in range(2_000)]
    assert await asyncio.gather(*(parser.parse(raw) for raw in raws)) == raws


def test_each_event_loop_gets_its_own_results() -> None:
    parser = MailParser(lambda raw: raw)  # type: ignore[arg-type,return-value]

    async def one(raw: bytes) -> bytes:
        return await parser.parse(raw)

    assert asyncio.run(one(b"first")) == b"first"
    assert asyncio.run(one(b"second")) == b"second"  # a later loop, the same thread


@pytest.mark.parametrize("size", [0, 1, 64 * 1024])
async def test_real_mail_parses(size: int) -> None:
    raw = b"From: a@example.org\r\nSubject: x\r\n\r\n" + b"y" * size + b"\r\n"
    parsed = await MailParser().parse(raw)
    assert parsed.sender is not None and parsed.sender.email == "a@example.org"


async def test_the_thread_survives_a_parser_that_raises_anything() -> None:
    def parse(raw: bytes) -> bytes:  # type: ignore[return-value]
        if raw == b"exit":
            raise SystemExit(1)
        return raw

    parser = MailParser(parse)  # type: ignore[arg-type]
    with pytest.raises(SystemExit):
        await parser.parse(b"exit")
    assert await parser.parse(b"next") == b"next"


async def test_mail_a_sender_waits_on_goes_before_a_batch_parsed_ahead() -> None:
    order: list[bytes] = []
    started, release = threading.Event(), threading.Event()

    def parse(raw: bytes) -> bytes:  # type: ignore[return-value]
        if raw == b"first":
            started.set()
            release.wait(5)  # the thread is busy while the rest is queued
        order.append(raw)
        return raw

    parser = MailParser(parse)  # type: ignore[arg-type]
    busy = parser.parse(b"first", ahead=True)
    assert await asyncio.to_thread(started.wait, 5)
    batch = [parser.parse(f"imap-{n}".encode(), ahead=True) for n in range(3)]
    smtp = parser.parse(b"smtp")
    release.set()
    await asyncio.gather(busy, smtp, *batch)
    assert order == [b"first", b"smtp", b"imap-0", b"imap-1", b"imap-2"]


async def test_a_large_message_does_not_hold_up_the_small_ones_behind_it() -> None:
    release = threading.Event()

    def parse(raw: bytes) -> bytes:  # type: ignore[return-value]  # a stand-in: the parser's own outcome
        if len(raw) >= 100:
            release.wait(30)  # a 20 MB message taking its time
        return raw.upper()

    parser = MailParser(parse, large=100)  # type: ignore[arg-type]
    large = parser.parse(b"x" * 100)
    small = [parser.parse(b"small"), parser.parse(b"later", ahead=True)]
    try:
        assert await asyncio.wait_for(asyncio.gather(*small), timeout=10) == [b"SMALL", b"LATER"]
        assert not large.done()
    finally:
        release.set()
    assert await large == b"X" * 100
