"""IMAP intake against a real Dovecot, into a real SQLite store through the real service.

What must hold: every message arrives exactly once, whatever happens in between (the poller
restarts, the server goes away mid-batch, the store refuses a message, the folder is renumbered,
a backfill runs over mail already stored); mail read in another client or long ago still arrives;
unparsable mail is quarantined once and never fetched again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest
from aiohttp import ClientSession

from connectors.base import ConnectorContext
from connectors.email.imap import ImapPoller
from connectors.email.intake import EmailIntake
from connectors.email.parsing import parse_email
from connectors.email.settings import EmailSettings
from inbox.accounts import add_channel
from inbox.clock import SystemClock
from inbox.domain import Channel, InboundMessage, Message, Unparsed
from inbox.errors import Unavailable
from inbox.events import EventBus
from inbox.ids import new_id
from inbox.service import InboxService
from storage.base import ConversationFilter
from storage.blobs import FileBlobStore
from storage.sqlite import SqliteStore
from tests.email.corpus import corpus_bytes
from tests.email.dovecot import PASSWORD, USER, Dovecot, running_dovecot

NO_IDLE_NO_MOVE = "protocol imap {\n  imap_capability = IMAP4rev1 LITERAL+ UIDPLUS\n}\n"


def simple(tag: str, n: int) -> bytes:
    return (
        f"From: Customer {n} <customer{n}@example.org>\r\n"
        f"To: support@example.com\r\n"
        f"Subject: Question {tag} {n}\r\n"
        f"Message-ID: <{tag}-{n}@example.org>\r\n"
        f"Date: Mon, 05 Jan 2026 10:00:00 +0000\r\n"
        f"\r\n"
        f"Hello, this is question {n} ({tag}).\r\n"
    ).encode()


def message_id(raw: bytes) -> str:
    found = parse_email(raw).message_id
    assert found
    return found


class RecordingIntake(EmailIntake):
    """The real intake; records what the poller passed, and lets a test act before it stores."""

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.calls: list[str] = []
        self.before: Callable[[str], Awaitable[None]] | None = None

    async def accept(self, raw: bytes, *, source: str, origin: str, parsing: Any = None) -> InboundMessage | None:
        self.calls.append(origin)
        if self.before is not None:
            await self.before(origin)
        return await super().accept(raw, source=source, origin=origin, parsing=parsing)

    def uids(self) -> list[int]:
        return [int(call.rpartition(":")[2]) for call in self.calls]


@dataclass
class Harness:
    dovecot: Dovecot
    store: SqliteStore
    channel: Channel
    settings: EmailSettings
    context: ConnectorContext
    intake: RecordingIntake

    @property
    def key(self) -> str:
        return f"imap:{self.channel.id}:{self.settings.imap_folder}"

    def poller(self) -> ImapPoller:
        return ImapPoller(
            self.settings,
            self.intake,
            self.context.state,
            channel_id=self.channel.id,
            timeout=5,
            min_backoff=0.05,
            max_backoff=0.5,
        )

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[None]:
        task = asyncio.create_task(self.poller().run())
        try:
            yield
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def messages(self) -> list[Message]:
        conversations = (await self.store.list_conversations(ConversationFilter(), limit=1000)).items
        return [m for c in conversations for m in (await self.store.list_messages(c.id, limit=1000)).items]

    async def external_ids(self) -> Counter[str | None]:
        return Counter(m.external_id for m in await self.messages())

    async def quarantined(self) -> list[Unparsed]:
        return (await self.store.list_quarantine(limit=100)).items

    async def mark(self) -> str | None:
        return await self.store.get_sync_state(self.key)

    async def wait_for_ids(self, expected: set[str], seconds: float = 5) -> None:
        async def arrived() -> bool:
            return set(await self.external_ids()) >= expected

        await eventually(arrived, f"messages {sorted(expected)}", seconds)


async def eventually(check: Callable[[], Awaitable[bool]], what: str, seconds: float = 5) -> None:
    deadline = asyncio.get_running_loop().time() + seconds
    while not await check():
        if asyncio.get_running_loop().time() > deadline:
            pytest.fail(f"timed out after {seconds} s waiting for {what}")
        await asyncio.sleep(0.02)


@contextlib.asynccontextmanager
async def make_harness(dovecot: Dovecot, tmp_path: Path, **settings: Any) -> AsyncIterator[Harness]:
    """Wired as ``inbox.app._connector_context`` wires a connector, minus the web application."""
    store = SqliteStore(tmp_path / "inbox.sqlite3")
    await store.open()
    blobs = FileBlobStore(tmp_path / "blobs")
    service = InboxService(store, EventBus(), clock=SystemClock())
    channel_settings = {
        "address": "support@example.com",
        "imap_host": "127.0.0.1",
        "imap_port": dovecot.port,
        "imap_user": USER,
        "imap_password": PASSWORD,
        "imap_ssl": False,
        "imap_poll_seconds": 0.2,
        **settings,
    }
    channel = (await add_channel(store, kind="email", name="Support", settings=channel_settings)).channel

    async def on_unparsed(*, channel_id: str, external_id: str, source: str, reason: str, raw: bytes) -> None:
        digest = await blobs.put(raw)
        record = Unparsed(
            id=new_id(),
            channel_id=channel_id,
            external_id=external_id,
            source=source,
            reason=reason,
            raw_sha256=digest,
            size=len(raw),
            created_at=service.clock.now(),
        )
        await store.quarantine(record)
        await store.durable()

    class State:
        async def get(self, key: str) -> str | None:
            return await store.get_sync_state(key)

        async def set(self, key: str, value: str) -> None:
            await store.set_sync_state(key, value)
            await store.durable()

    async with ClientSession() as http:
        context = ConnectorContext(
            channel=channel,
            http=http,
            on_inbound=service.receive,
            on_delivery=service.record_delivery,
            on_unparsed=on_unparsed,
            blobs=blobs,
            state=State(),
        )
        email_settings = EmailSettings.of(channel.settings)
        try:
            yield Harness(dovecot, store, channel, email_settings, context, RecordingIntake(context, email_settings))
        finally:
            await store.close()


@pytest.fixture
async def dovecot() -> AsyncIterator[Dovecot]:
    async with running_dovecot() as server:
        yield server


@pytest.fixture
async def harness(dovecot: Dovecot, tmp_path: Path) -> AsyncIterator[Harness]:
    async with make_harness(dovecot, tmp_path) as built:
        yield built


async def test_imports_every_message_once_quarantines_garbage_once_and_flags_all_seen(harness: Harness) -> None:
    mail = [corpus_bytes("koi8r.eml"), corpus_bytes("gmail_reply_ru.eml"), *(simple("first", n) for n in range(3))]
    await harness.dovecot.append([mail[0], corpus_bytes("garbage.bin"), *mail[1:]])
    uidvalidity = await harness.dovecot.uidvalidity()

    async with harness.running():
        await harness.wait_for_ids({message_id(raw) for raw in mail})
        await eventually(lambda: _equals(harness.mark(), f"{uidvalidity}:6"), "the high-water mark")
        assert all("\\Seen" in flags for flags in (await harness.dovecot.flags()).values())
        # new mail while the poller idles: IDLE wakes it; nothing before is fetched again
        later = simple("later", 1)
        await harness.dovecot.append([later])
        await harness.wait_for_ids({message_id(later)}, seconds=3)
        await eventually(lambda: _equals(harness.mark(), f"{uidvalidity}:7"), "the high-water mark")

    assert Counter((await harness.external_ids()).values()) == {1: 6}
    [quarantined] = await harness.quarantined()
    assert quarantined.external_id == f"sha256:{quarantined.raw_sha256}"  # keyed by content, not by UID
    assert quarantined.source == "imap" and f"imap:INBOX:{uidvalidity}:2" in quarantined.reason
    assert await harness.context.blobs.get(quarantined.raw_sha256)  # the raw bytes are kept
    assert sorted(harness.intake.uids()) == [1, 2, 3, 4, 5, 6, 7]  # each fetched once, garbage included
    assert (await harness.dovecot.flags())[2] == {"\\Seen"}


async def test_mail_read_in_another_client_and_old_mail_are_imported(harness: Harness) -> None:
    """Proves the sync is by UID, not UNSEEN nor SINCE."""
    read = simple("read-elsewhere", 1)
    old = simple("from-2019", 2)
    await harness.dovecot.append([read], flags="\\Seen")
    await harness.dovecot.append([old], flags="\\Seen", date=datetime(2019, 3, 1, 12, tzinfo=UTC))

    async with harness.running():
        await harness.wait_for_ids({message_id(read), message_id(old)})


async def test_a_restarted_poller_imports_only_new_mail(harness: Harness) -> None:
    first = [simple("before", n) for n in range(3)]
    await harness.dovecot.append(first)
    async with harness.running():
        await harness.wait_for_ids({message_id(raw) for raw in first})
        await eventually(lambda: _endswith(harness.mark(), ":3"), "the high-water mark")

    second = [simple("after", n) for n in range(2)]
    await harness.dovecot.append(second)
    harness.intake.calls.clear()
    async with harness.running():
        await harness.wait_for_ids({message_id(raw) for raw in second})
        await eventually(lambda: _endswith(harness.mark(), ":5"), "the high-water mark")

    assert harness.intake.uids() == [4, 5]
    assert Counter((await harness.external_ids()).values()) == {1: 5}


async def test_survives_the_server_going_away_mid_batch_and_while_idle(harness: Harness) -> None:
    mail = [simple("batch", n) for n in range(6)]
    await harness.dovecot.append(mail)
    restarted = False

    async def restart_dovecot_on_the_third(origin: str) -> None:
        nonlocal restarted
        if origin.endswith(":3") and not restarted:
            restarted = True
            await harness.dovecot.restart()  # intake still stores it; marking it then fails

    harness.intake.before = restart_dovecot_on_the_third
    async with harness.running():
        await harness.wait_for_ids({message_id(raw) for raw in mail})
        await eventually(lambda: _endswith(harness.mark(), ":6"), "the high-water mark")
        assert restarted
        # the batch was stored but could not be marked, so the mark stayed put and the whole batch
        # came again after reconnecting; intake recognised every message
        assert harness.intake.uids() == [1, 2, 3, 4, 5, 6, 1, 2, 3, 4, 5, 6]
        assert all("\\Seen" in flags for flags in (await harness.dovecot.flags()).values())

        await harness.dovecot.restart()  # now while the poller idles
        later = simple("after-restart", 1)
        await harness.dovecot.append([later])
        await harness.wait_for_ids({message_id(later)}, seconds=5)

    assert Counter((await harness.external_ids()).values()) == {1: 7}


async def test_a_message_the_store_refuses_is_retried_and_nothing_after_it_is_skipped(harness: Harness) -> None:
    mail = [simple("retry", n) for n in range(5)]
    await harness.dovecot.append(mail)
    refused = asyncio.Event()

    async def refuse_the_third_once(origin: str) -> None:
        if origin.endswith(":3") and not refused.is_set():
            refused.set()
            flags = await harness.dovecot.flags()
            assert "\\Seen" not in flags[3]
            raise Unavailable("database is locked")

    harness.intake.before = refuse_the_third_once
    async with harness.running():
        await harness.wait_for_ids({message_id(raw) for raw in mail})
        await eventually(lambda: _endswith(harness.mark(), ":5"), "the high-water mark")

    calls = Counter(harness.intake.uids())
    assert calls[1] == calls[2] == 1  # accepted before the failure: marked and not fetched again
    assert calls[3] == 2  # refused once, fetched again
    assert Counter((await harness.external_ids()).values()) == {1: 5}
    assert all("\\Seen" in flags for flags in (await harness.dovecot.flags()).values())


async def test_a_new_uidvalidity_reimports_without_duplicates(
    harness: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    mail = [simple("renumbered", n) for n in range(3)]
    no_message_id = corpus_bytes("no_message_id.eml")  # identified by its content hash instead
    await harness.dovecot.append([*mail, no_message_id, corpus_bytes("garbage.bin")])
    async with harness.running():
        await eventually(lambda: _endswith(harness.mark(), ":5"), "the high-water mark")
    before = await harness.external_ids()
    old_validity = await harness.dovecot.uidvalidity()

    await harness.dovecot.renumber()
    new_validity = await harness.dovecot.uidvalidity()
    assert new_validity != old_validity
    extra = simple("renumbered", 99)
    await harness.dovecot.append([extra])
    harness.intake.calls.clear()
    with caplog.at_level(logging.WARNING, logger="connectors.email.imap"):
        async with harness.running():
            await harness.wait_for_ids({message_id(extra)})
            await eventually(lambda: _equals(harness.mark(), f"{new_validity}:6"), "the new high-water mark")

    assert sorted(harness.intake.uids()) == [1, 2, 3, 4, 5, 6]  # all again, under the new numbering
    assert len(await harness.quarantined()) == 1  # the garbage met twice is kept once
    assert await harness.external_ids() == before + Counter([message_id(extra)])
    assert any("UIDVALIDITY" in record.getMessage() for record in caplog.records)


async def test_backfill_by_date_imports_nothing_twice(harness: Harness) -> None:
    dated = {
        date(2025, 1, 4): simple("backfill", 4),
        date(2025, 1, 5): simple("backfill", 5),
        date(2025, 1, 10): simple("backfill", 10),
        date(2025, 1, 11): simple("backfill", 11),
    }
    for day, raw in dated.items():
        await harness.dovecot.append([raw], date=datetime(day.year, day.month, day.day, 12, tzinfo=UTC))
    poller = harness.poller()

    # into an empty store: the range only, both ends included, and the mark is left alone
    assert await poller.backfill(date(2025, 1, 5), date(2025, 1, 10)) == 2
    assert set(await harness.external_ids()) == {
        message_id(dated[date(2025, 1, 5)]),
        message_id(dated[date(2025, 1, 10)]),
    }
    assert await harness.mark() is None
    assert not any("\\Seen" in flags for flags in (await harness.dovecot.flags()).values())

    async with harness.running():  # the poller then takes everything, recognising what is stored
        await harness.wait_for_ids({message_id(raw) for raw in dated.values()})
        await eventually(lambda: _endswith(harness.mark(), ":4"), "the high-water mark")
        mark = await harness.mark()
        assert await poller.backfill(date(2025, 1, 1), date(2025, 1, 31)) == 4  # alongside the running poller
        assert await harness.mark() == mark

    assert Counter((await harness.external_ids()).values()) == {1: 4}


async def test_processed_mail_is_moved_and_backfill_finds_it_there(dovecot: Dovecot, tmp_path: Path) -> None:
    mail = [simple("moved", n) for n in range(4)]
    await dovecot.append(mail, date=datetime(2025, 6, 1, 12, tzinfo=UTC))
    async with make_harness(dovecot, tmp_path, imap_processed_folder="Processed") as harness:
        async with harness.running():
            await harness.wait_for_ids({message_id(raw) for raw in mail})
            await eventually(lambda: _endswith(harness.mark(), ":4"), "the high-water mark")
            await eventually(lambda: _equals(_count(dovecot.flags("INBOX")), 0), "INBOX to be emptied")
            assert len(await dovecot.flags("Processed")) == 4
            later = simple("moved", 99)
            await dovecot.append([later])
            await harness.wait_for_ids({message_id(later)})
            await eventually(lambda: _equals(_count(dovecot.flags("Processed")), 5), "all mail in Processed")

        # the June mail is in Processed now; the later one has today's date
        assert await harness.poller().backfill(date(2025, 6, 1), date(2025, 6, 1)) == 4
        assert Counter((await harness.external_ids()).values()) == {1: 5}


async def test_without_idle_or_move_it_polls_and_copies(tmp_path: Path) -> None:
    async with running_dovecot(extra_config=NO_IDLE_NO_MOVE) as dovecot:
        mail = [simple("polled", n) for n in range(3)]
        await dovecot.append(mail)
        async with make_harness(dovecot, tmp_path, imap_processed_folder="Done") as harness:
            async with harness.running():
                await harness.wait_for_ids({message_id(raw) for raw in mail})
                await eventually(lambda: _equals(_count(dovecot.flags("INBOX")), 0), "INBOX to be emptied")
                later = simple("polled", 99)
                await dovecot.append([later])
                await harness.wait_for_ids({message_id(later)})  # found by the next poll (0.2 s)
                # stored first, copied after: the copy may still be on its way
                await eventually(lambda: _equals(_count(dovecot.flags("Done")), 4), "all mail in Done")
            assert Counter((await harness.external_ids()).values()) == {1: 4}


async def test_a_refused_login_is_logged_and_not_fatal(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    async def refused() -> bool:
        return any("login as support refused" in r.getMessage() for r in caplog.records)

    # Dovecot answers a wrong password after 2 s unless told otherwise (and later ones 4.5 s late
    # whatever it is told, so this waits for one refusal only)
    async with running_dovecot(extra_config="auth_failure_delay = 0") as dovecot:
        async with make_harness(dovecot, tmp_path, imap_password="wrong") as harness:
            with caplog.at_level(logging.WARNING, logger="connectors.email.imap"):
                task = asyncio.create_task(harness.poller().run())
                await eventually(refused, "the refused login")
                await asyncio.sleep(0.1)
                assert not task.done()  # backing off, then trying again
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
    assert not any(record.exc_info for record in caplog.records)  # an expected failure: no traceback


async def _equals(value: Awaitable[Any], expected: Any) -> bool:
    return await value == expected


async def _endswith(value: Awaitable[str | None], suffix: str) -> bool:
    found = await value
    return found is not None and found.endswith(suffix)


async def _count(value: Awaitable[dict[int, set[str]]]) -> int:
    return len(await value)


async def test_backfill_command_reimports_a_date_range_once(dovecot: Dovecot, tmp_path: Path) -> None:
    import json
    import os
    import sys

    env = {k: v for k, v in os.environ.items() if not k.startswith("INBOX_")} | {"INBOX_DATA_DIR": str(tmp_path)}

    async def inbox(*args: str) -> dict[str, object]:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "inbox",
            *args,
            "--json",
            env=env,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        out, err = await process.communicate()
        assert process.returncode == 0, err.decode()
        return json.loads(out)

    channel = await inbox(
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
    old = [simple("old", n) for n in range(3)]
    await dovecot.append(old, date=datetime(2025, 3, 10, 12, 0, tzinfo=UTC))
    await dovecot.append([simple("outside", 9)], date=datetime(2025, 5, 1, 12, 0, tzinfo=UTC))
    arguments = ("email", "backfill", str(channel["id"]), "--since", "2025-03-01", "--until", "2025-03-31")
    assert await inbox(*arguments) == {"channel": channel["id"], "passed_to_intake": 3}
    assert (await inbox(*arguments))["passed_to_intake"] == 3  # again: recognised, nothing doubled

    store = SqliteStore(tmp_path / "inbox.sqlite3")
    await store.open()
    try:
        stored = [await store.message_by_external_id(str(channel["id"]), message_id(raw)) for raw in old]
        assert all(stored) and len({m.id for m in stored if m}) == 3
        outside = await store.message_by_external_id(str(channel["id"]), message_id(simple("outside", 9)))
        assert outside is None  # not in the range
        conversations = await store.list_conversations(ConversationFilter(), limit=10)
        assert len(conversations.items) == 3
    finally:
        await store.close()
