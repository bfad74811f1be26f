"""The inbox service: idempotent intake, threading, replies, notes and conversation changes."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest

from inbox.clock import ManualClock
from inbox.domain import (
    Channel,
    ConversationStatus,
    DeliveryStatus,
    Direction,
    MessageKind,
    Operator,
    Priority,
)
from inbox.errors import Conflict, NotFound, PermissionDenied, ValidationError
from inbox.events import ConversationCreated, ConversationUpdated, MessageCreated
from inbox.service import InboxService
from storage.base import ConversationFilter, Store
from tests.conftest import EventLog
from tests.fakes import failing_commits, inbound


async def test_receive_creates_contact_conversation_and_message(
    service: InboxService, channel: Channel, events: EventLog, clock: ManualClock
) -> None:
    received = await service.receive(inbound(channel.id, "m1", text="Привет!"))
    assert not received.duplicate and received.new_conversation
    conversation, message = received.conversation, received.message
    assert conversation.number >= 1001 and conversation.status is ConversationStatus.OPEN
    assert conversation.waiting_since == clock.now() and conversation.last_inbound_at == clock.now()
    assert message.direction is Direction.IN and message.delivery_status is DeliveryStatus.RECEIVED
    contact = await service.store.get_contact(conversation.contact_id)
    assert contact.name == "Ivan"
    assert [i.channel_kind for i in contact.identities] == [channel.kind]
    assert events.types() == ["conversation.created", "message.created"]
    assert [seq for seq, _ in events.events] == [1, 2]


async def test_same_external_id_twice_stores_one_message(
    service: InboxService, channel: Channel, events: EventLog
) -> None:
    first = await service.receive(inbound(channel.id, "m1"))
    second = await service.receive(inbound(channel.id, "m1", text="changed text is ignored"))
    assert second.duplicate and second.message == first.message
    page = await service.store.list_messages(first.conversation.id, limit=10)
    assert len(page.items) == 1
    assert events.types() == ["conversation.created", "message.created"]


async def test_concurrent_redeliveries_store_one_message(service: InboxService, channel: Channel) -> None:
    results = await asyncio.gather(*(service.receive(inbound(channel.id, "same")) for _ in range(10)))
    assert sum(not r.duplicate for r in results) == 1
    assert len({r.message.id for r in results}) == 1


async def test_concurrent_messages_of_one_new_chat_share_one_conversation(
    service: InboxService, channel: Channel
) -> None:
    results = await asyncio.gather(*(service.receive(inbound(channel.id, f"burst-{i}")) for i in range(10)))
    assert len({r.conversation.id for r in results}) == 1
    assert sum(r.new_conversation for r in results) == 1
    page = await service.store.list_messages(results[0].conversation.id, limit=20)
    assert len(page.items) == 10


async def test_messages_with_matching_thread_keys_join_one_conversation(
    service: InboxService, channel: Channel
) -> None:
    first = await service.receive(inbound(channel.id, "m1", thread_keys=("<a@x>",), own_thread_key="<a@x>"))
    reply = await service.receive(inbound(channel.id, "m2", thread_keys=("<a@x>",), own_thread_key="<b@x>"))
    by_new_key = await service.receive(inbound(channel.id, "m3", thread_keys=("<b@x>",)))
    unrelated = await service.receive(inbound(channel.id, "m4", thread_keys=("<zzz@x>",)))
    assert reply.conversation.id == first.conversation.id == by_new_key.conversation.id
    assert unrelated.conversation.id != first.conversation.id and unrelated.new_conversation


async def test_a_stranger_with_the_same_thread_key_starts_a_new_conversation(
    service: InboxService, channel: Channel
) -> None:
    first = await service.receive(inbound(channel.id, "m1", contact="alice", thread_keys=("<a@x>",)))
    stranger = await service.receive(inbound(channel.id, "m2", contact="mallory", thread_keys=("<a@x>",)))
    assert stranger.conversation.id != first.conversation.id


async def test_customer_message_reopens_resolved_conversation_within_window(
    service: InboxService, channel: Channel, operator: Operator, clock: ManualClock
) -> None:
    first = await service.receive(inbound(channel.id, "m1"))
    await service.set_status(first.conversation.id, operator, ConversationStatus.RESOLVED)
    clock.advance(timedelta(days=6))
    again = await service.receive(inbound(channel.id, "m2"))
    assert again.conversation.id == first.conversation.id
    assert again.conversation.status is ConversationStatus.OPEN and again.conversation.resolved_at is None

    await service.set_status(first.conversation.id, operator, ConversationStatus.RESOLVED)
    clock.advance(timedelta(days=8))
    late = await service.receive(inbound(channel.id, "m3"))
    assert late.new_conversation and late.conversation.id != first.conversation.id


async def test_reply_queues_delivery_and_records_first_response(
    service: InboxService, channel: Channel, operator: Operator, clock: ManualClock, events: EventLog
) -> None:
    received = await service.receive(inbound(channel.id, "m1"))
    clock.advance(60)
    sent = await service.reply(received.conversation.id, operator, "Здравствуйте!")
    assert sent.message.delivery_status is DeliveryStatus.QUEUED
    assert sent.message.author_id == operator.id and sent.message.direction is Direction.OUT
    assert sent.conversation.first_response_at == clock.now() and sent.conversation.waiting_since is None
    assert await service.store.pending_outbox_count() == 1
    assert isinstance(events.events[-1][1], MessageCreated)
    assert isinstance(events.events[-2][1], ConversationUpdated)


async def test_reply_with_same_idempotency_key_creates_one_message(
    service: InboxService, channel: Channel, operator: Operator
) -> None:
    received = await service.receive(inbound(channel.id, "m1"))
    first = await service.reply(received.conversation.id, operator, "Ответ", idempotency_key="k-1")
    second = await service.reply(received.conversation.id, operator, "Ответ", idempotency_key="k-1")
    assert second.duplicate and second.message.id == first.message.id
    assert await service.store.pending_outbox_count() == 1
    other = await service.receive(inbound(channel.id, "m2", contact="someone-else"))
    with pytest.raises(Conflict):
        await service.reply(other.conversation.id, operator, "Ответ", idempotency_key="k-1")


async def test_note_is_never_delivered(service: InboxService, channel: Channel, operator: Operator) -> None:
    received = await service.receive(inbound(channel.id, "m1"))
    sent = await service.note(received.conversation.id, operator, "check the warehouse")
    assert sent.message.kind is MessageKind.NOTE and sent.message.delivery_status is None
    assert await service.store.pending_outbox_count() == 0
    assert sent.conversation.first_response_at is None


async def test_empty_reply_is_refused(service: InboxService, channel: Channel, operator: Operator) -> None:
    received = await service.receive(inbound(channel.id, "m1"))
    with pytest.raises(ValidationError):
        await service.reply(received.conversation.id, operator, "   ")


async def test_update_applies_changes_as_one_event(
    service: InboxService, channel: Channel, operator: Operator, events: EventLog, clock: ManualClock
) -> None:
    received = await service.receive(inbound(channel.id, "m1"))
    updated = await service.update(
        received.conversation.id, operator, assignee_id=operator.id, priority=Priority.HIGH, tags=("vip", "vip", "b")
    )
    assert updated.assignee_id == operator.id and updated.priority is Priority.HIGH and updated.tags == ("vip", "b")
    event = events.events[-1][1]
    assert isinstance(event, ConversationUpdated)
    assert set(event.changed) == {"assignee_id", "priority", "tags"} and event.actor_id == operator.id
    assert await service.store.get_conversation(updated.id) == updated
    count = len(events.events)
    assert await service.update(received.conversation.id, operator, priority=Priority.HIGH) == updated
    assert len(events.events) == count  # nothing changed, nothing published


async def test_tag_adds_and_removes(service: InboxService, channel: Channel, operator: Operator) -> None:
    received = await service.receive(inbound(channel.id, "m1"))
    await service.tag(received.conversation.id, operator, add=("a", "b"))
    tagged = await service.tag(received.conversation.id, operator, add=("c",), remove=("a",))
    assert tagged.tags == ("b", "c")
    page = await service.store.list_conversations(ConversationFilter(tag="c"), limit=5)
    assert [c.id for c in page.items] == [tagged.id]


async def test_snooze_needs_a_future_time_and_resolve_records_when(
    service: InboxService, channel: Channel, operator: Operator, clock: ManualClock
) -> None:
    received = await service.receive(inbound(channel.id, "m1"))
    with pytest.raises(ValidationError):
        await service.snooze(received.conversation.id, operator, clock.now() - timedelta(minutes=1))
    snoozed = await service.snooze(received.conversation.id, operator, clock.now() + timedelta(hours=2))
    assert snoozed.status is ConversationStatus.SNOOZED and snoozed.snoozed_until == clock.now() + timedelta(hours=2)
    resolved = await service.set_status(received.conversation.id, operator, ConversationStatus.RESOLVED)
    assert resolved.snoozed_until is None and resolved.resolved_at == clock.now()


async def test_operators_assign_only_themselves_supervisors_anyone(
    service: InboxService, channel: Channel, operator: Operator, supervisor: Operator
) -> None:
    received = await service.receive(inbound(channel.id, "m1"))
    conversation_id = received.conversation.id
    with pytest.raises(PermissionDenied):
        await service.assign(conversation_id, operator, supervisor.id)
    assert (await service.assign(conversation_id, operator, operator.id)).assignee_id == operator.id
    assert (await service.assign(conversation_id, supervisor, supervisor.id)).assignee_id == supervisor.id
    with pytest.raises(PermissionDenied):
        await service.assign(conversation_id, operator, operator.id)  # taking someone else's
    with pytest.raises(PermissionDenied):
        await service.assign(conversation_id, operator, None)  # unassigning someone else
    with pytest.raises(ValidationError):
        await service.assign(conversation_id, supervisor, "0" * 26)  # no such operator
    assert (await service.assign(conversation_id, supervisor, None)).assignee_id is None


async def test_unknown_conversation_is_not_found(service: InboxService, operator: Operator) -> None:
    with pytest.raises(NotFound):
        await service.reply("0" * 26, operator, "hello")


async def test_events_carry_the_stored_state(
    service: InboxService, store: Store, channel: Channel, events: EventLog
) -> None:
    await service.receive(inbound(channel.id, "m1"))
    created = events.events[0][1]
    assert isinstance(created, ConversationCreated)
    assert created.conversation == await store.get_conversation(created.conversation.id)


async def test_receive_locks_are_released(service: InboxService, channel: Channel) -> None:
    await asyncio.gather(*(service.receive(inbound(channel.id, f"m{i}", contact=f"c{i % 3}")) for i in range(9)))
    assert len(service._receiving) == 0


async def _receive_cancelled_while_committing(
    service: InboxService, store: Store, channel: Channel, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Receives one message and cancels the receiving task as it starts waiting for the commit,
    then lets the loop run on without it."""
    committing = asyncio.Event()
    durable = store.durable

    async def signalling() -> None:
        committing.set()
        await durable()

    monkeypatch.setattr(store, "durable", signalling)
    receiving = asyncio.create_task(service.receive(inbound(channel.id, "m1", text="Алло?")))
    await committing.wait()
    receiving.cancel()
    with pytest.raises(asyncio.CancelledError):
        await receiving
    for _ in range(20):  # whatever finishes without the cancelled caller does so now
        await asyncio.sleep(0)


async def test_a_receive_cancelled_while_its_message_commits_still_publishes_its_events(
    service: InboxService, store: Store, channel: Channel, events: EventLog, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An SMTP client that hangs up while its message is committed cancels the handler: the message
    is stored all the same, so the live inbox and the router must still hear of it."""
    await _receive_cancelled_while_committing(service, store, channel, monkeypatch)
    [conversation] = (await store.list_conversations(ConversationFilter(), limit=10)).items
    assert [m.text for m in (await store.list_messages(conversation.id, limit=10)).items] == ["Алло?"]
    assert events.types() == ["conversation.created", "message.created"]


async def test_a_receive_cancelled_while_its_commit_fails_announces_nothing(
    service: InboxService, store: Store, channel: Channel, events: EventLog, monkeypatch: pytest.MonkeyPatch
) -> None:
    with failing_commits(store, monkeypatch):
        await _receive_cancelled_while_committing(service, store, channel, monkeypatch)
    assert (await store.list_conversations(ConversationFilter(), limit=10)).items == []
    assert events.types() == []  # the batch was rolled back: nothing to announce
