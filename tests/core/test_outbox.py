"""The outbox: replies are delivered through the channel's connector, retried with backoff,
and survive a restart between being written and being sent."""

from __future__ import annotations

import tempfile
from datetime import timedelta
from pathlib import Path

import aiohttp
import pytest

from connectors.base import ConnectorContext
from connectors.hub import ConnectorHub
from inbox.accounts import add_channel, add_operator
from inbox.clock import ManualClock
from inbox.domain import Channel, DeliveryStatus, Operator
from inbox.events import DeliveryUpdated, EventBus
from inbox.outbox import OutboxDispatcher, backoff
from inbox.service import InboxService
from storage.blobs import FileBlobStore
from storage.sqlite import SqliteStore
from tests.conftest import EventLog
from tests.fakes import RecordingConnector, inbound


async def _no_unparsed(**_: object) -> None:
    raise AssertionError("the test connector never sees unparsable input")


class _NoState:
    async def get(self, key: str) -> str | None:
        return None

    async def set(self, key: str, value: str) -> None:
        raise AssertionError("the test connector keeps no sync state")


@pytest.fixture(autouse=True)
def _reset_connector() -> None:
    RecordingConnector.reset()


def _dispatcher(service: InboxService, clock: ManualClock, session: aiohttp.ClientSession) -> OutboxDispatcher:
    def context_for(channel: Channel) -> ConnectorContext:
        return ConnectorContext(
            channel=channel,
            http=session,
            on_inbound=service.receive,
            on_delivery=service.record_delivery,
            on_unparsed=_no_unparsed,
            blobs=FileBlobStore(Path(tempfile.mkdtemp())),
            state=_NoState(),
        )

    hub = ConnectorHub(context_for, overrides={"test": RecordingConnector})
    return OutboxDispatcher(
        service.store,
        service.bus,
        hub.deliver,
        clock=clock,
        jitter=0.0,
        base_delay=timedelta(seconds=2),
        max_attempts=4,
    )


async def test_reply_is_delivered_and_status_recorded(
    service: InboxService, channel: Channel, operator: Operator, clock: ManualClock, events: EventLog
) -> None:
    received = await service.receive(inbound(channel.id, "m1", contact="c-7"))
    sent = await service.reply(received.conversation.id, operator, "Ваш заказ в пути")
    async with aiohttp.ClientSession() as session:
        assert await _dispatcher(service, clock, session).run_once() == 1
    (outbound,) = RecordingConnector.sent
    assert outbound.message.id == sent.message.id and outbound.message.text == "Ваш заказ в пути"
    assert outbound.contact.id == received.conversation.contact_id and outbound.author == operator
    assert outbound.channel == channel
    stored = await service.store.get_message(sent.message.id)
    assert stored.delivery_status is DeliveryStatus.DELIVERED
    assert stored.extras["delivery_external_id"].startswith("remote-")
    assert isinstance(events.events[-1][1], DeliveryUpdated)
    assert await service.store.pending_outbox_count() == 0


async def test_failures_back_off_exponentially_then_succeed(
    service: InboxService, channel: Channel, operator: Operator, clock: ManualClock
) -> None:
    received = await service.receive(inbound(channel.id, "m1"))
    sent = await service.reply(received.conversation.id, operator, "retry me")
    RecordingConnector.failures = 2
    async with aiohttp.ClientSession() as session:
        dispatcher = _dispatcher(service, clock, session)
        assert await dispatcher.run_once() == 1  # fails, next try in 2 s
        assert await dispatcher.run_once() == 0
        assert await service.store.next_outbox_due() == clock.now() + timedelta(seconds=2)
        clock.advance(2)
        assert await dispatcher.run_once() == 1  # fails, next try in 4 s
        clock.advance(3)
        assert await dispatcher.run_once() == 0
        clock.advance(1)
        assert await dispatcher.run_once() == 1
    assert [o.message.id for o in RecordingConnector.sent] == [sent.message.id]
    assert (await service.store.get_message(sent.message.id)).delivery_status is DeliveryStatus.DELIVERED


async def test_gives_up_after_max_attempts_and_records_the_reason(
    service: InboxService, channel: Channel, operator: Operator, clock: ManualClock
) -> None:
    received = await service.receive(inbound(channel.id, "m1"))
    sent = await service.reply(received.conversation.id, operator, "never arrives")
    RecordingConnector.failures = 100
    async with aiohttp.ClientSession() as session:
        dispatcher = _dispatcher(service, clock, session)
        for _ in range(4):
            await dispatcher.run_once()
            clock.advance(timedelta(hours=1))
    failed = await service.store.get_message(sent.message.id)
    assert failed.delivery_status is DeliveryStatus.FAILED and failed.delivery_error == "peer unavailable"
    assert RecordingConnector.sent == [] and await service.store.pending_outbox_count() == 0


async def test_permanent_failure_is_not_retried(
    service: InboxService, channel: Channel, operator: Operator, clock: ManualClock
) -> None:
    received = await service.receive(inbound(channel.id, "m1"))
    sent = await service.reply(received.conversation.id, operator, "bad address")
    RecordingConnector.failures, RecordingConnector.permanent = 1, True
    async with aiohttp.ClientSession() as session:
        await _dispatcher(service, clock, session).run_once()
    assert (await service.store.get_message(sent.message.id)).delivery_status is DeliveryStatus.FAILED
    assert RecordingConnector.failures == 0


def test_backoff_doubles_up_to_the_cap() -> None:
    delays = [backoff(n, base=timedelta(seconds=2), cap=timedelta(minutes=1), jitter=0) for n in range(7)]
    assert [d.total_seconds() for d in delays] == [2, 4, 8, 16, 32, 60, 60]
    jittered = backoff(3, base=timedelta(seconds=2), cap=timedelta(minutes=1), jitter=0.25)
    assert timedelta(seconds=12) <= jittered <= timedelta(seconds=16)


async def test_reply_written_before_a_restart_is_delivered_after_it(tmp_path: Path, clock: ManualClock) -> None:
    path = tmp_path / "inbox.sqlite3"
    store = SqliteStore(path)
    await store.open()
    channel = (await add_channel(store, kind="test", name="T", clock=clock)).channel
    operator = (await add_operator(store, email="o@example.com", name="O", password="x", clock=clock)).operator
    service = InboxService(store, EventBus(), clock=clock)
    received = await service.receive(inbound(channel.id, "m1"))
    sent = await service.reply(received.conversation.id, operator, "survives restarts")
    await store.close()  # the process "dies" before any dispatcher ran

    reopened = SqliteStore(path)
    await reopened.open()
    try:
        assert await reopened.pending_outbox_count() == 1
        service = InboxService(reopened, EventBus(), clock=clock)
        async with aiohttp.ClientSession() as session:
            assert await _dispatcher(service, clock, session).run_once() == 1
        assert [o.message.id for o in RecordingConnector.sent] == [sent.message.id]
        assert (await reopened.get_message(sent.message.id)).delivery_status is DeliveryStatus.DELIVERED
    finally:
        await reopened.close()
