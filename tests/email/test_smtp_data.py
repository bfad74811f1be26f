"""The intake's own DATA and address reading against aiosmtpd's: two real servers on sockets, one
stock aiosmtpd, one the intake's SMTP class, each with a handler that only records; the same bytes,
cut into the same pieces, must get the same answers and leave the same message on both."""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator, Sequence
from typing import Any

import pytest
from aiosmtpd.smtp import SMTP
from hypothesis import assume, example, given, settings
from hypothesis import strategies as st

from connectors.email.smtp_server import _DataLines, _LimitedSMTP

SIZE_LIMIT = 4000


class Recorder:
    def __init__(self) -> None:
        self.contents: list[bytes] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        self.contents.append(envelope.original_content)
        return "250 OK"


class Peer:
    def __init__(self, server: asyncio.Server, recorder: Recorder) -> None:
        self.port = server.sockets[0].getsockname()[1]
        self.recorder = recorder


@pytest.fixture
async def peers() -> AsyncIterator[tuple[Peer, Peer]]:
    loop = asyncio.get_running_loop()
    stock_recorder, ours_recorder = Recorder(), Recorder()
    stock = await loop.create_server(
        lambda: SMTP(stock_recorder, data_size_limit=SIZE_LIMIT, hostname="x", ident="x"), "127.0.0.1", 0
    )
    ours = await loop.create_server(
        lambda: _LimitedSMTP(
            ours_recorder,
            sessions=[0],
            max_sessions=100,
            credentials=None,
            max_auth_failures=3,
            auth_failure_delay=0,
            data_size_limit=SIZE_LIMIT,
            hostname="x",
            ident="x",
        ),
        "127.0.0.1",
        0,
    )
    try:
        yield Peer(stock, stock_recorder), Peer(ours, ours_recorder)
    finally:
        for server in (stock, ours):
            server.close()
            await server.wait_closed()


async def _answer(reader: asyncio.StreamReader) -> str:
    lines = []
    while True:
        line = (await asyncio.wait_for(reader.readline(), 10)).decode()
        lines.append(line.rstrip("\r\n"))
        if line[3:4] != "-":
            return "\n".join(lines)


async def _dialogue(port: int, pieces: Sequence[bytes], after: bytes = b"QUIT\r\n") -> list[str]:
    """EHLO, MAIL, RCPT, DATA, then ``pieces`` written one by one, then ``after``: every answer."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        answers = [await _answer(reader)]
        for command in (
            b"EHLO client\r\n",
            b"MAIL FROM:<a@example.org>\r\n",
            b"RCPT TO:<b@example.com>\r\n",
            b"DATA\r\n",
        ):
            writer.write(command)
            answers.append(await _answer(reader))
        for piece in pieces:
            writer.write(piece)
            await writer.drain()
            await asyncio.sleep(0.001)  # so that the pieces arrive as separate reads
        answers.append(await _answer(reader))
        writer.write(after)
        answers.append(await _answer(reader))
        while after.count(b"\r\n") > 1 and not answers[-1].startswith("221"):
            answers.append(await _answer(reader))
        return answers
    finally:
        writer.close()


def _cuts(data: bytes, rng: random.Random, count: int) -> list[bytes]:
    points = sorted(rng.sample(range(1, len(data)), min(count, len(data) - 1))) if len(data) > 1 else []
    return [data[a:b] for a, b in zip([0, *points], [*points, len(data)], strict=True)]


LINE = b"x" * 60
STREAMS = {
    "plain": b"Subject: hi\r\n\r\nHello.\r\nBye.\r\n.\r\n",
    "empty": b".\r\n",
    "one dot-stuffed line": b"..hidden\r\n.\r\n",
    "dot-stuffed lines and dots": b"a\r\n..\r\n...\r\n.x\r\nend.\r\n.\r\n",
    "lines ending in dots": b"one.\r\ntwo..\r\n. \r\n .\r\n.\r\n",
    "bare line feeds": b"a\nb\n.\nc\r\n.\r\n",
    "bare carriage returns": b"a\rb\r.\r\nc\r\n.\r\n",
    "line of 999": b"y" * 999 + b"\r\n.\r\n",
    "line of 1000": b"y" * 1000 + b"\r\n.\r\n",
    "line of 1001": b"y" * 1001 + b"\r\n.\r\n",
    "line of 1002": b"y" * 1002 + b"\r\n.\r\n",
    "line ending in a dot, too long": b"y" * 1500 + b".\r\n.\r\n",
    "very long line": b"z" * 5000 + b"\r\nafter\r\n.\r\n",
    "too much": (LINE + b"\r\n") * 80 + b".\r\n",
    "too much, then a long line": (LINE + b"\r\n") * 70 + b"q" * 3000 + b"\r\n.\r\n",
    "a long line, then too much": b"q" * 1200 + b"\r\n" + (LINE + b"\r\n") * 80 + b".\r\n",
    "just at the size limit": (b"w" * 38 + b"\r\n") * 100 + b".\r\n",
    "one byte over the size limit": (b"w" * 38 + b"\r\n") * 99 + b"w" * 39 + b"\r\n.\r\n",
    "non-ASCII": "Тема: привет\r\n\r\nЗдравствуйте.\r\n.\r\n".encode(),
}


@pytest.mark.parametrize("name", list(STREAMS))
async def test_data_is_read_as_aiosmtpd_reads_it(peers: tuple[Peer, Peer], name: str) -> None:
    stock, ours = peers
    data = STREAMS[name]
    rng = random.Random(name)
    cuttings = [[data], [data[i : i + 1] for i in range(len(data))] if len(data) < 300 else _cuts(data, rng, 200)]
    cuttings += [_cuts(data, rng, rng.randint(1, 12)) for _ in range(6)]
    for pieces in cuttings:
        expected = await _dialogue(stock.port, pieces)
        assert await _dialogue(ours.port, pieces) == expected, pieces
    assert ours.recorder.contents == stock.recorder.contents


async def test_a_command_right_after_the_end_of_data_is_answered_as_aiosmtpd_does(peers: tuple[Peer, Peer]) -> None:
    stock, ours = peers
    for pieces in ([b"Hi.\r\n.\r\nNOOP\r\n"], [b"Hi.\r\n.\r\nMAIL FROM:<c@example.org>\r\n"], [b".\r\nRSET\r\n"]):
        expected = await _dialogue(stock.port, pieces)
        assert await _dialogue(ours.port, pieces) == expected
    assert ours.recorder.contents == stock.recorder.contents == [b"Hi.\r\n", b"Hi.\r\n", b""]


async def test_two_messages_on_one_connection(peers: tuple[Peer, Peer]) -> None:
    stock, ours = peers
    second = b"MAIL FROM:<a@example.org>\r\nRCPT TO:<b@example.com>\r\nDATA\r\n..second\r\n.\r\nQUIT\r\n"
    for peer in (stock, ours):
        answers = await _dialogue(peer.port, [b"first\r\n.\r\n"], after=second)
        assert [answer[:3] for answer in answers[-5:]] == ["250", "250", "354", "250", "221"]
    assert ours.recorder.contents == stock.recorder.contents == [b"first\r\n", b".second\r\n"]


async def test_addresses_are_read_as_aiosmtpd_reads_them(peers: tuple[Peer, Peer]) -> None:
    stock, ours = peers
    addresses = [
        "<a@example.org>",
        "<a@example.org> SIZE=100",
        " <a.b+c@Example.ORG>  BODY=8BITMIME",
        "<a@example.org>\tSIZE=100",
        "<a@example.org> (comment) SIZE=100",
        "<a@example.org>SIZE=100",
        "<a..b@example.org>",
        "<.a@example.org>",
        "<a@[127.0.0.1]>",
        '<"a b"@example.org>',
        "<@relay.example:a@example.org>",
        "<a@example.org",
        "<ivan@@example.ru>",
        "<>",
        "a@example.org",
        "<ё@example.org>",
    ]

    async def talk(port: int) -> list[str]:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            answers = [await _answer(reader)]
            writer.write(b"EHLO client\r\n")
            answers.append(await _answer(reader))
            for address in addresses:
                for command in (f"MAIL FROM:{address}", "RSET"):
                    writer.write(command.encode() + b"\r\n")
                    answers.append(await _answer(reader))
            return answers
        finally:
            writer.close()

    assert await talk(ours.port) == await talk(stock.port)


@settings(max_examples=400, deadline=None)
@given(
    body=st.binary(max_size=120).map(lambda raw: bytes(b"ab.\r\n"[byte % 5] for byte in raw)),
    cut_seeds=st.lists(st.integers(min_value=1), max_size=12),
)
@example(body=b"a" * 12 + b".\r\n", cut_seeds=[13, 15])  # an overrunning line's last byte is a dot
def test_data_lines_do_not_depend_on_how_the_stream_is_cut(body: bytes, cut_seeds: list[int]) -> None:
    """The server hands ``_DataLines`` whatever the socket gave; the verdict, the size and the
    message must be the same however the stream was cut (small limits, so every rule is met)."""
    if body and not body.endswith(b"\r\n"):
        body += b"\r\n"
    assume(b"\r\n.\r\n" not in b"\r\n" + body)
    stream = body + b".\r\n"
    whole = _DataLines(size_limit=60, line_limit=10, reader_limit=10)
    assert whole.feed(stream)
    points = sorted({seed % len(stream) for seed in cut_seeds} - {0})
    cut = _DataLines(size_limit=60, line_limit=10, reader_limit=10)
    pieces = [stream[a:b] for a, b in zip([0, *points], [*points, len(stream)], strict=True)]
    assert [cut.feed(piece) for piece in pieces] == [False] * (len(pieces) - 1) + [True]
    assert (cut.verdict, cut.size, cut.content()) == (whole.verdict, whole.size, whole.content())
    if whole.verdict is None:
        assert whole.content() == b"".join(
            line[1:] + b"\r\n" if line.startswith(b".") else line + b"\r\n" for line in body.split(b"\r\n")[:-1]
        )


def test_the_address_shortcut_agrees_with_aiosmtpds_parser_on_random_input() -> None:
    def parsed(parse: Any, arg: str) -> Any:
        try:
            return parse(arg)
        except Exception as exc:  # aiosmtpd's parser raises on some garbage; ours must raise alike
            return type(exc).__name__

    stock = SMTP(Recorder(), loop=asyncio.new_event_loop())
    ours = _LimitedSMTP(
        Recorder(),
        sessions=[0],
        max_sessions=1,
        credentials=None,
        max_auth_failures=1,
        auth_failure_delay=0,
        loop=stock.loop,
    )
    rng = random.Random(7)
    for _ in range(10_000):
        local = "".join(rng.choice("ab.-+_'\"(é") for _ in range(rng.randint(0, 5)))
        domain = "".join(rng.choice("ab.-_[]") for _ in range(rng.randint(0, 5)))
        arg = rng.choice(["", " ", "\t"]) + f"<{local}@{domain}>" + "".join(rng.choice(" \tX=(") for _ in range(4))
        assert parsed(ours._getaddr, arg) == parsed(stock._getaddr, arg), arg
    stock.loop.close()
