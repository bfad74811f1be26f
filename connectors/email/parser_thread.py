"""Mail parsing off the event loop, in one thread that works ahead.

``asyncio.to_thread`` per message cost the SMTP intake about a tenth of its time: a context copy,
a pool submit and a loop wake-up each. Here a single thread parses every message in arrival
order, so an IMAP batch can be parsed ahead of the store while the loop writes the previous
message, and mail a sender waits on (SMTP) goes before such a batch; results come back through
one wake-up for whatever finished while the loop was busy. A large message (1 MiB and over:
attachments) is parsed in a pool thread of its own instead, so a 20 MB mail taking a second does
not hold up the small ones behind it. Parsing never runs on the loop, whatever the message.
"""

from __future__ import annotations

import asyncio
import threading
from collections import deque
from collections.abc import Callable
from typing import Any

from connectors.email.parsing import ParsedEmail, parse_email

__all__ = ["MailParser", "parse_off_loop"]

_Job = tuple[bytes, asyncio.AbstractEventLoop, asyncio.Future[ParsedEmail]]
LARGE = 1 << 20


class MailParser:
    def __init__(self, parse: Callable[[bytes], ParsedEmail] = parse_email, *, large: int = LARGE) -> None:
        self._parse = parse
        self._large = large
        self._now: deque[_Job] = deque()  # mail a sender waits on (SMTP)
        self._ahead: deque[_Job] = deque()  # mail parsed ahead of the store (an IMAP batch)
        self._ready = threading.Condition(threading.Lock())
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._settled: dict[asyncio.AbstractEventLoop, list[tuple[asyncio.Future[ParsedEmail], Any, bool]]] = {}

    def parse(self, raw: bytes, *, ahead: bool = False) -> asyncio.Future[ParsedEmail]:
        """The parsed message, or the parser's exception (``PayloadError`` for unparsable mail).
        Call from a running loop. Futures resolve in the order they were asked for, except that
        mail parsed ``ahead`` (an IMAP batch) waits while mail a sender is waiting on goes first,
        and a large message resolves whenever its own thread is done."""
        loop = asyncio.get_running_loop()
        if len(raw) >= self._large:
            return loop.run_in_executor(None, self._parse, raw)
        future: asyncio.Future[ParsedEmail] = loop.create_future()
        self._ensure_thread()
        with self._ready:
            (self._ahead if ahead else self._now).append((raw, loop, future))
            self._ready.notify()
        return future

    def _ensure_thread(self) -> None:
        if self._thread is None:
            with self._lock:
                if self._thread is None:
                    self._thread = threading.Thread(target=self._work, name="mail-parser", daemon=True)
                    self._thread.start()

    def _work(self) -> None:
        while True:
            with self._ready:
                while not (self._now or self._ahead):
                    self._ready.wait()
                raw, loop, future = (self._now or self._ahead).popleft()
            outcome: ParsedEmail | BaseException
            try:
                outcome, failed = self._parse(raw), False
            except BaseException as exc:  # handed to the awaiting task, which decides; the thread goes on
                outcome, failed = exc, True
            with self._lock:
                pending = self._settled.setdefault(loop, [])
                pending.append((future, outcome, failed))
                wake = len(pending) == 1  # else a wake-up is on its way and will take this too
            if wake:
                try:
                    loop.call_soon_threadsafe(self._deliver, loop)
                except RuntimeError:  # that loop is closed: nobody waits for these any more
                    with self._lock:
                        self._settled.pop(loop, None)

    def _deliver(self, loop: asyncio.AbstractEventLoop) -> None:
        with self._lock:
            settled = self._settled.pop(loop, [])
        for future, outcome, failed in settled:
            if future.cancelled():
                continue
            if failed:
                future.set_exception(outcome)
            else:
                future.set_result(outcome)


_shared = MailParser()


def parse_off_loop(raw: bytes, *, ahead: bool = False) -> asyncio.Future[ParsedEmail]:
    """The process's parser thread, shared by SMTP and IMAP intake."""
    return _shared.parse(raw, ahead=ahead)
