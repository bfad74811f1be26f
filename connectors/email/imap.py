"""IMAP intake: follows one folder by UIDVALIDITY and a UID high-water mark, with IDLE if offered.

Why a high-water mark and never UNSEEN or SINCE: mail that someone read in another client, or that
is older than any look-back window, must still be imported. The mark ("UIDVALIDITY:LAST_UID") is
advanced only after :meth:`EmailIntake.accept` returned (the message, or its quarantine record, is
durable) and the message was marked on the server, so a crash anywhere re-fetches at most a batch,
which is harmless: intake is idempotent. A new UIDVALIDITY means the server renumbered the folder;
the poller then starts over from UID 0 and intake recognises what it already stored.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import re
import ssl
from collections.abc import AsyncIterator, Awaitable
from datetime import date, timedelta
from typing import Any, TypeVar

import aioimaplib

from connectors.base import SyncState
from connectors.email.intake import EmailIntake
from connectors.email.parser_thread import parse_off_loop
from connectors.email.settings import EmailSettings
from inbox.errors import AuthError, ConnectorError, InboxError, ValidationError

__all__ = ["ImapPoller"]

log = logging.getLogger(__name__)

T = TypeVar("T")

BATCH_MESSAGES = 50
BATCH_BYTES = 16 * 1024 * 1024
"""A batch is held in memory whole: this bounds it when mail carries big attachments."""
IDLE_MAX_SECONDS = 29 * 60  # RFC 2177: renew IDLE before the server's 30-minute inactivity logout

_UIDVALIDITY = re.compile(rb"\[UIDVALIDITY (\d+)\]")
_FETCH_START = re.compile(rb"^\d+ FETCH \(")
_UID = re.compile(rb"\bUID (\d+)")
_SIZE = re.compile(rb"\bRFC822\.SIZE (\d+)")
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


class ImapPoller:
    """Imports one folder of one mailbox into the inbox until cancelled."""

    def __init__(
        self,
        settings: EmailSettings,
        intake: EmailIntake,
        state: SyncState,
        *,
        channel_id: str,
        timeout: float = 30.0,
        min_backoff: float = 1.0,
        max_backoff: float = 60.0,
    ) -> None:
        if not settings.imap_host or not settings.imap_user or settings.imap_password is None:
            raise ValidationError("email channel settings: IMAP needs imap_host, imap_user and imap_password")
        self.settings = settings
        self.intake = intake
        self.state = state
        self.folder = settings.imap_folder
        self.key = f"imap:{channel_id}:{self.folder}"
        self.timeout = timeout
        self.min_backoff, self.max_backoff = min_backoff, max_backoff
        self._backoff = min_backoff

    async def run(self) -> None:
        """Follows the folder until cancelled. Any failure (server gone, store unavailable) means:
        back off, reconnect, resume from the stored mark."""
        while True:
            try:
                async with _Session.open(self.settings, self.timeout) as session:
                    await self._follow(session)
            except Exception as exc:  # the poller outlives every single failure
                delay = self._backoff * random.uniform(0.5, 1.0)
                self._backoff = min(self._backoff * 2, self.max_backoff)
                expected = isinstance(exc, OSError | InboxError | aioimaplib.AioImapException)
                log.warning("IMAP %s: %r; reconnecting in %.2g s", self.key, exc, delay, exc_info=not expected)
                await asyncio.sleep(delay)

    async def backfill(self, since: date, until: date) -> int:
        """Passes every message whose INTERNALDATE is within ``since``..``until`` (both included)
        to intake again, from the processed folder too: stored mail is recognised, so this only
        fills gaps. The high-water mark is left alone. Returns how many went to intake."""
        if since > until:
            raise ValidationError("backfill: since is after until")
        count = 0
        async with _Session.open(self.settings, self.timeout) as session:
            folders = [self.folder]
            if self.settings.imap_processed_folder:
                await session.create(self.settings.imap_processed_folder)
                folders.insert(0, self.settings.imap_processed_folder)  # older mail first, so threads form in order
            for folder in folders:
                uidvalidity = await session.select(folder)
                uids = await session.search("SINCE", _imap_date(since), "BEFORE", _imap_date(until + timedelta(1)))
                async for group in _groups(session, uids):
                    for uid, raw in sorted((await session.bodies(group)).items()):
                        await self.intake.accept(raw, source="imap", origin=f"imap:{folder}:{uidvalidity}:{uid}")
                        count += 1
        return count

    async def _follow(self, session: _Session) -> None:
        uidvalidity = await session.select(self.folder)
        last = await self._resume(uidvalidity)
        if self.settings.imap_processed_folder:
            await session.create(self.settings.imap_processed_folder)
        log.info("IMAP %s: following (UIDVALIDITY %d) after UID %d", self.key, uidvalidity, last)
        while True:
            last = await self._catch_up(session, uidvalidity, last)
            self._backoff = self.min_backoff
            if session.has("IDLE"):
                await session.idle(min(self.settings.imap_poll_seconds, IDLE_MAX_SECONDS))
            else:
                await asyncio.sleep(self.settings.imap_poll_seconds)
                await session.noop()  # lets the server tell this session about new mail

    async def _resume(self, uidvalidity: int) -> int:
        stored = await self.state.get(self.key)
        if stored is None:
            return 0
        old_validity, _, old_last = stored.partition(":")
        if old_validity == str(uidvalidity) and old_last.isdigit():
            return int(old_last)
        log.warning(
            "IMAP %s: UIDVALIDITY is %d, was %s: the folder was renumbered; importing it again from the start"
            " (stored mail is recognised and skipped)",
            self.key,
            uidvalidity,
            old_validity,
        )
        await self.state.set(self.key, f"{uidvalidity}:0")  # so that this is said once
        return 0

    async def _catch_up(self, session: _Session, uidvalidity: int, last: int) -> int:
        """Imports everything above ``last``, searching again until nothing new is left.
        (``UID SEARCH UID n:*`` always answers the highest UID, even one below n: filtered.)"""
        while uids := [uid for uid in await session.search("UID", f"{last + 1}:*") if uid > last]:
            async for group in _groups(session, uids):
                last = await self._import(session, uidvalidity, group, last)
        return last

    async def _import(self, session: _Session, uidvalidity: int, group: list[int], last: int) -> int:
        """Accepts the group in UID order, then marks and records what intake took; a failure
        stops the group there, and that message is fetched again after reconnecting."""
        bodies = await session.bodies(group)
        parsing = {uid: parse_off_loop(raw, ahead=True) for uid, raw in bodies.items()}  # stored in UID order
        accepted: list[int] = []
        reached, failure = last, None
        for uid in group:
            if (raw := bodies.get(uid)) is not None:  # else expunged by someone meanwhile: nothing to import
                try:
                    origin = f"imap:{self.folder}:{uidvalidity}:{uid}"
                    await self.intake.accept(raw, source="imap", origin=origin, parsing=parsing.pop(uid))
                except Exception as exc:  # re-raised below, once what got in is marked and recorded
                    failure = exc
                    break
                accepted.append(uid)
            reached = uid
        for ahead in parsing.values():  # after a failure: fetched and parsed again next time
            if not ahead.cancel() and not ahead.cancelled():
                ahead.exception()  # already failed: retrieved, so asyncio does not log it as lost
        if accepted:
            await session.mark(accepted, self.settings.imap_processed_folder)
        if reached > last:
            await self.state.set(self.key, f"{uidvalidity}:{reached}")
        if failure is not None:
            raise failure
        return reached


class _Session:
    """One logged-in connection. aioimaplib leaves a command waiting forever when the server goes
    away, so every call here also ends when the connection is lost or the answer is late."""

    def __init__(self, client: aioimaplib.IMAP4, lost: asyncio.Future[None], timeout: float) -> None:
        self.client = client
        self.lost = lost
        self.timeout = timeout

    @classmethod
    @contextlib.asynccontextmanager
    async def open(cls, settings: EmailSettings, answer_within: float) -> AsyncIterator[_Session]:
        lost: asyncio.Future[None] = asyncio.get_running_loop().create_future()

        def on_lost(_: Exception | None) -> None:
            if not lost.done():
                lost.set_result(None)

        # what IMAP4_SSL builds, except that IMAP4_SSL cannot report a lost connection
        client = aioimaplib.IMAP4(
            settings.imap_host,
            settings.imap_port,
            timeout=answer_within,
            conn_lost_cb=on_lost,
            ssl_context=ssl.create_default_context() if settings.imap_ssl else None,
        )
        session = cls(client, lost, answer_within)
        try:
            await session.call(client.wait_hello_from_server())
            user, password = aioimaplib.quoted(settings.imap_user or ""), settings.imap_password or ""
            response = await session.call(client.login(user, password))  # aioimaplib quotes only the password
            if response.result != "OK":
                raise AuthError(f"IMAP login as {settings.imap_user} refused: {_text(response)}")
            await session.call(client.protocol.capability())  # they may change at login (RFC 3501 7.2.1)
            yield session
        finally:
            client._client_task.cancel()
            if client.protocol.transport is not None:
                client.protocol.transport.close()
            for task in (*client.tasks, *client.protocol.tasks):
                task.cancel()

    def has(self, capability: str) -> bool:
        return self.client.has_capability(capability)

    async def call(self, awaitable: Awaitable[T], *, bounded: bool = True) -> T:
        task = asyncio.ensure_future(awaitable)
        either: set[asyncio.Future[Any]] = {task, self.lost}
        try:
            await asyncio.wait(either, timeout=self.timeout if bounded else None, return_when=asyncio.FIRST_COMPLETED)
        finally:
            task.cancel()  # a no-op once it is done
        if task.done() and not task.cancelled():
            return task.result()
        if self.lost.done():
            raise ConnectionResetError("the IMAP server closed the connection")
        raise TimeoutError(f"no answer from the IMAP server within {self.timeout} s")

    async def check(
        self, awaitable: Awaitable[aioimaplib.Response], what: str, *, bounded: bool = True
    ) -> list[bytes | bytearray]:
        response = await self.call(awaitable, bounded=bounded)
        if response.result != "OK":
            raise ConnectorError(f"IMAP {what} failed: {response.result} {_text(response)}")
        return response.lines

    async def select(self, folder: str) -> int:
        for line in await self.check(self.client.select(aioimaplib.quoted(folder)), f"SELECT {folder}"):
            if isinstance(line, bytes) and (match := _UIDVALIDITY.search(line)):
                return int(match.group(1))
        raise ConnectorError(f"IMAP SELECT {folder}: the server sent no UIDVALIDITY")

    async def create(self, folder: str) -> None:
        """Creates the folder if it is missing (the usual answer is NO, it exists)."""
        await self.call(self.client.create(aioimaplib.quoted(folder)))

    async def noop(self) -> None:
        await self.check(self.client.noop(), "NOOP")

    async def search(self, *criteria: str) -> list[int]:
        """UIDs, ascending. No CHARSET: the criteria are ASCII, and some servers refuse one."""
        lines = await self.check(self.client.uid_search(*criteria, charset=None), "UID SEARCH")
        words = b" ".join(line for line in lines[:-1] if isinstance(line, bytes)).split()
        return sorted({int(word) for word in words if word.isdigit()})

    async def bodies(self, uids: list[int]) -> dict[int, bytes]:
        """Raw messages by UID, without those no longer there. PEEK: fetching must not flag mail
        seen before intake has stored it."""
        return {uid: literal for uid, _, literal in await self._fetch(uids, "BODY.PEEK[]") if literal is not None}

    async def sizes(self, uids: list[int]) -> dict[int, int]:
        found = await self._fetch(uids, "RFC822.SIZE")
        return {uid: int(match.group(1)) for uid, text, _ in found if (match := _SIZE.search(text))}

    async def _fetch(self, uids: list[int], items: str) -> list[tuple[int, bytes, bytes | None]]:
        """(UID, response text, literal) per FETCH response: the UID may come before or after the
        literal, and unsolicited FETCH responses (flag changes) without a UID are dropped."""
        # unbounded: aioimaplib times a FETCH out itself, only when data stops arriving
        fetch = self.client.uid("fetch", ",".join(map(str, uids)), f"(UID {items})")
        texts: list[bytes] = []
        literals: list[bytes | None] = []
        for line in (await self.check(fetch, "UID FETCH", bounded=False))[:-1]:
            if isinstance(line, bytearray):
                if literals:
                    literals[-1] = bytes(line)
            elif _FETCH_START.match(line):
                texts.append(line)
                literals.append(None)
            elif texts:
                texts[-1] += line
        return [
            (int(m.group(1)), text, literal)
            for text, literal in zip(texts, literals, strict=True)
            if (m := _UID.search(text))
        ]

    async def mark(self, uids: list[int], processed_folder: str | None) -> None:
        """Moves the messages to the processed folder, or flags them seen. A refusal is logged,
        not raised: the messages are stored, and the high-water mark, not this mark, keeps them
        from being imported twice."""
        uid_set, client = ",".join(map(str, uids)), self.client
        try:
            if processed_folder is None:
                await self.check(client.uid("store", uid_set, "+FLAGS.SILENT", r"(\Seen)"), "UID STORE")
                return
            folder = aioimaplib.quoted(processed_folder)
            if self.has("MOVE"):
                await self.check(client.uid("move", uid_set, folder), "UID MOVE")
                return
            await self.check(client.uid("copy", uid_set, folder), "UID COPY")
            await self.check(client.uid("store", uid_set, "+FLAGS.SILENT", r"(\Deleted)"), "UID STORE")
            if self.has("UIDPLUS"):  # a plain EXPUNGE would also remove mail others flagged \Deleted
                await self.check(client.uid("expunge", uid_set), "UID EXPUNGE")
        except ConnectorError as exc:
            log.warning("IMAP: could not mark UIDs %s as processed: %s", uid_set, exc)

    async def idle(self, seconds: float) -> None:
        """Returns when the server reports a change in the folder, or after ``seconds``."""
        idle = await self.call(self.client.idle_start(timeout=seconds))  # it pushes a stop after that
        with contextlib.suppress(TimeoutError):
            await self.call(self.client.wait_server_push(timeout=seconds + self.timeout), bounded=False)
        self.client.idle_done()
        await self.check(idle, "IDLE")


async def _groups(session: _Session, uids: list[int]) -> AsyncIterator[list[int]]:
    """Fetch batches of at most BATCH_MESSAGES and, unless one message alone is bigger,
    BATCH_BYTES; the sizes cost one round trip per BATCH_MESSAGES."""
    for start in range(0, len(uids), BATCH_MESSAGES):
        chunk = uids[start : start + BATCH_MESSAGES]
        sizes = await session.sizes(chunk)
        group: list[int] = []
        total = 0
        for uid in chunk:
            if group and total + sizes.get(uid, 0) > BATCH_BYTES:
                yield group
                group, total = [], 0
            group.append(uid)
            total += sizes.get(uid, 0)
        yield group


def _imap_date(day: date) -> str:
    return f"{day.day}-{_MONTHS[day.month - 1]}-{day.year}"


def _text(response: aioimaplib.Response) -> str:
    last = response.lines[-1] if response.lines else b""
    return bytes(last).decode("utf-8", "replace")
