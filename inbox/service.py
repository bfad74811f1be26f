"""The inbox service: the one place where conversations change state.

Connectors call :meth:`InboxService.receive`; the web layer and routing call the rest. Every
change is stored first and published on the bus second, so a subscriber never sees state that
a crash could take back.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any, Final
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from inbox.clock import Clock, SystemClock
from inbox.domain import (
    Channel,
    Contact,
    Conversation,
    ConversationStatus,
    DeliveryStatus,
    Direction,
    Identity,
    InboundMessage,
    Message,
    MessageKind,
    Operator,
    OutboxItem,
    Presence,
    Priority,
    Role,
    conversation_thread_key,
    participant_key,
)
from inbox.errors import Conflict, NotFound, PermissionDenied, Unavailable, ValidationError
from inbox.events import (
    ConversationCreated,
    ConversationUpdated,
    DeliveryUpdated,
    Event,
    EventBus,
    MessageCreated,
    OperatorUpdated,
)
from inbox.ids import new_id
from inbox.locks import KeyedLocks
from inbox.ports import Arrival, AssignmentGate, AutoReply, Routed, Triage
from inbox.reads import InboxReads
from storage.base import Store

__all__ = ["InboxService", "Received", "Sent", "UNCHANGED"]

log = logging.getLogger(__name__)


class _Unchanged:
    def __repr__(self) -> str:
        return "UNCHANGED"


UNCHANGED: Final = _Unchanged()
"""Marks a field :meth:`InboxService.update` should leave as it is (``None`` is a real value)."""


@dataclass(frozen=True, slots=True)
class Received:
    conversation: Conversation
    message: Message
    duplicate: bool
    new_conversation: bool


@dataclass(frozen=True, slots=True)
class Sent:
    conversation: Conversation
    message: Message
    duplicate: bool


_ANSWERED: Final = ("last_message_at", "first_response_at", "waiting_since")
"""What an operator's reply changes on its conversation."""


class InboxService:
    def __init__(
        self,
        store: Store,
        bus: EventBus,
        *,
        clock: Clock | None = None,
        reopen_window: timedelta = timedelta(days=7),
    ) -> None:
        self.store = store
        self.bus = bus
        self.clock = clock or SystemClock()
        self.reopen_window = reopen_window
        self._channels: dict[str, Channel] = {}
        self._receiving = KeyedLocks()
        self.reads = InboxReads(store)
        self.assignment_gate: AssignmentGate | None = None
        self.triage: Triage | None = None
        self._announcing: set[asyncio.Task[None]] = set()

    async def channel(self, channel_id: str) -> Channel:
        """Channels are read on every message and change rarely, so they are cached."""
        channel = self._channels.get(channel_id)
        if channel is None:
            channel = self._channels[channel_id] = await self.store.get_channel(channel_id)
        return channel

    async def _announce(self, *events: Event, if_lost: Callable[[], None] | None = None) -> None:
        """Waits for the caller's writes to commit, then publishes ``events``. ``if_lost`` runs if
        the commit failed (nothing was stored), before ``Unavailable`` reaches the caller.

        A caller cancelled while it waits (an SMTP client hanging up during the group commit) is
        let go, and the wait and the events go on in a task of their own: what was stored is
        announced all the same. Only then is a task made, so the usual path costs nothing more."""
        try:
            await self.store.durable()
        except Unavailable:
            if if_lost is not None:
                if_lost()
            raise
        except asyncio.CancelledError:
            task = asyncio.create_task(self._announce(*events, if_lost=if_lost))
            self._announcing.add(task)  # kept until it ends: nobody awaits it
            task.add_done_callback(self._announced)
            raise
        for event in events:
            await self.bus.publish(event)

    def _announced(self, task: asyncio.Task[None]) -> None:
        self._announcing.discard(task)
        failure = None if task.cancelled() else task.exception()
        if failure is not None:
            log.warning("changes of a cancelled caller not announced: %s", failure, exc_info=failure)

    # inbound

    async def receive(self, inbound: InboundMessage) -> Received:
        """Stores one customer message, threading it into a conversation; idempotent by
        (channel, external id): a redelivery returns what was stored the first time.

        Messages of one contact on one channel are received one at a time, so two arriving
        together cannot both decide to start a new conversation (within this process)."""
        async with self._receiving.hold((inbound.channel_id, inbound.contact.scope, inbound.contact.external_id)):
            return await self._receive(inbound)

    async def _receive(self, inbound: InboundMessage) -> Received:
        existing = await self.store.message_by_external_id(inbound.channel_id, inbound.external_id)
        if existing is not None:
            return await self._duplicate(existing)
        channel = await self.channel(inbound.channel_id)
        contact, new_contact = await self._contact_for(channel, inbound)
        now = self.clock.now()
        thread_keys = _unique((*inbound.thread_keys, inbound.own_thread_key))
        scope = inbound.contact.scope or channel.kind
        sender = participant_key(scope, inbound.contact.external_id)
        participants = _unique(
            tuple(
                participant_key(scope, other) for other in inbound.participants if other != inbound.contact.external_id
            )
        )
        conversation = await self.store.find_thread(
            contact_id=contact.id,
            channel_id=channel.id,
            thread_keys=thread_keys,
            resolved_since=now - self.reopen_window,
            participant=sender,
            number=inbound.conversation_number,
        )
        new_conversation = conversation is None
        if conversation is None:
            conversation = Conversation(
                id=new_id(),
                number=0,
                channel_id=channel.id,
                contact_id=contact.id,
                subject=inbound.subject,
                created_at=now,
                updated_at=now,
                last_message_at=now,
                last_inbound_at=now,
                waiting_since=now,
            )
            thread_keys = (*thread_keys, conversation_thread_key(conversation.id))
            changed: tuple[str, ...] = ()
        else:
            conversation, changed = _reopened_by_customer(conversation, now)
        message = Message(
            id=new_id(),
            conversation_id=conversation.id,
            channel_id=channel.id,
            direction=Direction.IN,
            kind=MessageKind.MESSAGE,
            text=inbound.text,
            html=inbound.html,
            attachments=inbound.attachments,
            external_id=inbound.external_id,
            delivery_status=DeliveryStatus.RECEIVED,
            extras=_inbound_extras(inbound, contact, conversation),
            created_at=now,
        )
        arrival = Arrival(
            conversation=conversation,
            message=message,
            contact=contact,
            channel=channel,
            new_conversation=new_conversation,
            new_contact=new_contact,
        )
        routed = await self._route(arrival)
        try:
            routed_conversation, routing_changed = _changed(conversation, now, **routed.changes)
        except ValidationError:  # the rules asked for what the inbox refuses: routed without them
            log.exception("routing's changes refused for message %s; routed without rules", message.id)
            self._unroute(arrival, routed)
            routed = await self._route(arrival, plain=True)
            routed_conversation, routing_changed = _changed(conversation, now, **routed.changes)
        conversation, changed = routed_conversation, _unique((*changed, *routing_changed))
        events = (
            [_system_event(conversation, routed.reason, routed.details, routing_changed, now)]
            if routing_changed or routed.reason
            else []
        )
        try:
            conversation = await self.store.append_message(
                conversation,
                message,
                new_conversation=new_conversation,
                thread_keys=thread_keys,
                participants=participants,
                events=events,
                tags_changed="tags" in routing_changed,
            )
        except BaseException as exc:
            self._unroute(arrival, routed)
            if not isinstance(exc, Conflict):
                raise
            existing = await self.store.message_by_external_id(inbound.channel_id, inbound.external_id)
            if existing is None:
                raise
            return await self._duplicate(existing)
        replies = await self._answer(replace(arrival, conversation=conversation), routed)
        automatic = []
        for reply in replies:
            conversation, sent, job = _outgoing(
                conversation, None, reply.text, MessageKind.AUTO_REPLY, None, {"trigger": reply.trigger}, now
            )
            conversation = await self.store.append_message(conversation, sent, new_conversation=False, outbox=job)
            automatic.append(sent)
        await self._announce(
            ConversationCreated(conversation=conversation)
            if new_conversation
            else ConversationUpdated(conversation=conversation, changed=changed),
            MessageCreated(
                conversation=conversation, message=message, new_conversation=new_conversation, new_contact=new_contact
            ),
            *(MessageCreated(conversation=conversation, message=record) for record in (*events, *automatic)),
            if_lost=lambda: self._unroute(arrival, routed),  # the batch was rolled back: nothing was stored
        )
        return Received(conversation, message, duplicate=False, new_conversation=new_conversation)

    async def _route(self, arrival: Arrival, *, plain: bool = False) -> Routed:
        """Routing's changes, or none when there is no routing or it failed: the customer's
        message is stored either way (the failure is logged, the conversation left as it is)."""
        if self.triage is None:
            return _UNROUTED
        try:
            return await self.triage.route(arrival, plain=plain)
        except Exception:
            log.exception("routing failed for message %s; stored unrouted", arrival.message.id)
            return _UNROUTED

    def _unroute(self, arrival: Arrival, routed: Routed) -> None:
        if self.triage is not None and routed is not _UNROUTED:
            self.triage.unroute(arrival, routed)

    async def _answer(self, arrival: Arrival, routed: Routed) -> Sequence[AutoReply]:
        if self.triage is None:
            return ()
        try:
            return await self.triage.answer(arrival, routed)
        except Exception:
            log.exception("auto-replies failed for message %s; none sent", arrival.message.id)
            return ()

    async def _duplicate(self, message: Message) -> Received:
        await self.store.durable()  # the first delivery may still be committing
        try:
            conversation = await self.store.get_conversation(message.conversation_id)
        except NotFound as exc:  # a store without transactions may not have written it yet
            raise Unavailable("the first delivery of this message is still being stored; retry") from exc
        return Received(conversation, message, duplicate=True, new_conversation=False)

    async def _contact_for(self, channel: Channel, inbound: InboundMessage) -> tuple[Contact, bool]:
        """The sender's contact, and whether it was created just now."""
        identity = Identity(channel_kind=inbound.contact.scope or channel.kind, external_id=inbound.contact.external_id)
        contact = await self.store.contact_by_identity(identity)
        if contact is not None:
            return contact, False
        try:
            created = await self._new_contact(
                name=inbound.contact.name,
                email=inbound.contact.email,
                phone=inbound.contact.phone,
                identities=(identity,),
            )
            return created, True
        except Conflict:
            contact = await self.store.contact_by_identity(identity)
            if contact is None:
                raise
            return contact, False

    # contacts

    async def create_contact(
        self,
        *,
        name: str | None,
        email: str | None = None,
        phone: str | None = None,
        identities: tuple[Identity, ...] = (),
        attributes: dict[str, Any] | None = None,
    ) -> Contact:
        contact = await self._new_contact(
            name=name, email=email, phone=phone, identities=identities, attributes=attributes
        )
        await self.store.durable()
        return contact

    async def _new_contact(
        self,
        *,
        name: str | None,
        email: str | None,
        phone: str | None,
        identities: tuple[Identity, ...],
        attributes: dict[str, Any] | None = None,
    ) -> Contact:
        """Stored, not yet durable: the caller's own barrier covers it."""
        contact = Contact(
            id=new_id(),
            name=name,
            email=email,
            phone=phone,
            identities=tuple(sorted(set(identities), key=lambda i: (i.channel_kind, i.external_id))),
            attributes=attributes or {},
            created_at=self.clock.now(),
        )
        await self.store.create_contact(contact)
        return contact

    # operator actions

    async def reply(
        self, conversation_id: str, author: Operator, text: str, *, idempotency_key: str | None = None
    ) -> Sent:
        """Stores a reply and its delivery job together; the outbox dispatcher sends it."""
        return await self._post(conversation_id, author, text, MessageKind.MESSAGE, idempotency_key)

    async def note(
        self, conversation_id: str, author: Operator, text: str, *, idempotency_key: str | None = None
    ) -> Sent:
        """A private note: stored and shown to operators, never sent to the customer."""
        return await self._post(conversation_id, author, text, MessageKind.NOTE, idempotency_key)

    async def auto_reply(self, conversation_id: str, text: str, *, trigger: str) -> Sent:
        """An automatic answer (acknowledgement, outside business hours, no answer yet), sent like
        a reply; it is not a first response, the conversation still waits for a person, and it
        stays marked automatic so nothing answers it in turn."""
        return await self._post(conversation_id, None, text, MessageKind.AUTO_REPLY, None, {"trigger": trigger})

    async def _post(
        self,
        conversation_id: str,
        author: Operator | None,
        text: str,
        kind: MessageKind,
        idempotency_key: str | None,
        extras: Mapping[str, Any] | None = None,
    ) -> Sent:
        if not text.strip():
            raise ValidationError("text must not be empty")
        if idempotency_key is not None and author is not None:
            existing = await self.store.message_by_idempotency_key(author.id, idempotency_key)
            if existing is not None:
                return await self._replayed(existing, conversation_id, kind, text)
        conversation, message, outbox = _outgoing(
            await self.store.get_conversation(conversation_id),
            author,
            text,
            kind,
            idempotency_key,
            extras,
            self.clock.now(),
        )
        try:
            conversation = await self.store.append_message(conversation, message, new_conversation=False, outbox=outbox)
        except Conflict:
            if idempotency_key is None or author is None:
                raise
            existing = await self.store.message_by_idempotency_key(author.id, idempotency_key)
            if existing is None:
                raise
            return await self._replayed(existing, conversation_id, kind, text)
        answered = (
            [ConversationUpdated(conversation=conversation, changed=_ANSWERED, actor_id=author.id)]
            if kind is MessageKind.MESSAGE and author is not None
            else []
        )
        await self._announce(*answered, MessageCreated(conversation=conversation, message=message))
        return Sent(conversation, message, duplicate=False)

    async def _replayed(self, message: Message, conversation_id: str, kind: MessageKind, text: str) -> Sent:
        """A retry of the same request gets the first answer; a different request reusing the key
        is refused rather than silently answered with someone else's message."""
        await self.store.durable()
        if (message.conversation_id, message.kind, message.text) != (conversation_id, kind, text):
            raise Conflict("this Idempotency-Key was already used for a different message")
        return Sent(await self.store.get_conversation(conversation_id), message, duplicate=True)

    async def resend(self, message_id: str) -> Message:
        """Queues a failed reply again (the operator's one-click resend): a new delivery job, the
        status back to queued; a message that has not failed is a ``Conflict``, so a double click
        sends once."""
        message = await self.store.get_message(message_id)
        if message.direction is not Direction.OUT or message.kind not in (MessageKind.MESSAGE, MessageKind.AUTO_REPLY):
            raise ValidationError("only replies are sent, so only replies can be resent")
        now = self.clock.now()
        job = OutboxItem(
            id=new_id(), message_id=message.id, channel_id=message.channel_id, next_attempt_at=now, created_at=now
        )
        queued = await self.store.requeue_message(job)
        await self._announce(DeliveryUpdated(message=queued))
        return queued

    async def record_delivery(self, message_id: str, status: DeliveryStatus, error: str | None = None) -> Message:
        """A channel's later word on a message we sent: a bounce, a delivery or read receipt."""
        message = await self.store.set_delivery_status(message_id, status, error)
        await self._announce(DeliveryUpdated(message=message))
        return message

    async def update(
        self,
        conversation_id: str,
        actor: Operator,
        *,
        status: ConversationStatus | _Unchanged = UNCHANGED,
        assignee_id: str | None | _Unchanged = UNCHANGED,
        priority: Priority | _Unchanged = UNCHANGED,
        tags: tuple[str, ...] | _Unchanged = UNCHANGED,
        snoozed_until: datetime | None | _Unchanged = UNCHANGED,
        over_cap: bool = False,
    ) -> Conversation:
        """Applies several changes as one stored state and one ``conversation.updated`` event.
        ``over_cap`` lets a supervisor assign past an operator's cap, on the record."""
        conversation = await self.store.get_conversation(conversation_id)
        exceeded = False
        if not isinstance(assignee_id, _Unchanged) and assignee_id != conversation.assignee_id:
            await self._check_may_assign(actor, conversation, assignee_id)
            if self.assignment_gate is not None:
                exceeded = self.assignment_gate.admit(actor, conversation, assignee_id, over_cap=over_cap)
        updated, changed = _changed(
            conversation,
            self.clock.now(),
            status=status,
            assignee_id=assignee_id,
            priority=priority,
            tags=tags,
            snoozed_until=snoozed_until,
        )
        if not changed:
            return conversation
        await self.store.save_conversation(updated)
        record = None
        if exceeded:
            reason = f"assigned over the operator's cap by {actor.name}"
            record = _system_event(updated, reason, {"over_cap": True, "actor_id": actor.id}, changed, self.clock.now())
            updated = await self.store.append_message(updated, record, new_conversation=False)
        await self._announce(
            ConversationUpdated(conversation=updated, changed=changed, actor_id=actor.id),
            *([] if record is None else [MessageCreated(conversation=updated, message=record)]),
        )
        return updated

    async def decide(
        self,
        conversation_id: str,
        *,
        reason: str,
        details: Mapping[str, Any] | None = None,
        team_id: str | None | _Unchanged = UNCHANGED,
        assignee_id: str | None | _Unchanged = UNCHANGED,
        status: ConversationStatus | _Unchanged = UNCHANGED,
        priority: Priority | _Unchanged = UNCHANGED,
        tags: tuple[str, ...] | _Unchanged = UNCHANGED,
        snoozed_until: datetime | None | _Unchanged = UNCHANGED,
    ) -> Conversation:
        """A routing decision: the change, and why, as a system event on the conversation that
        operators and the API see. Routing has checked what it may do; no operator's rights apply."""
        conversation = await self.store.get_conversation(conversation_id)
        now = self.clock.now()
        updated, changed = _changed(
            conversation,
            now,
            team_id=team_id,
            status=status,
            assignee_id=assignee_id,
            priority=priority,
            tags=tags,
            snoozed_until=snoozed_until,
        )
        event = _system_event(updated, reason, details or {}, changed, now)
        updated = await self.store.append_message(
            updated, event, new_conversation=False, tags_changed="tags" in changed
        )
        await self._announce(
            *([ConversationUpdated(conversation=updated, changed=changed)] if changed else []),
            MessageCreated(conversation=updated, message=event),
        )
        return updated

    async def assign(self, conversation_id: str, actor: Operator, assignee_id: str | None) -> Conversation:
        return await self.update(conversation_id, actor, assignee_id=assignee_id)

    async def set_status(self, conversation_id: str, actor: Operator, status: ConversationStatus) -> Conversation:
        return await self.update(conversation_id, actor, status=status)

    async def snooze(self, conversation_id: str, actor: Operator, until: datetime) -> Conversation:
        return await self.update(conversation_id, actor, status=ConversationStatus.SNOOZED, snoozed_until=until)

    async def tag(
        self,
        conversation_id: str,
        actor: Operator,
        *,
        add: tuple[str, ...] = (),
        remove: tuple[str, ...] = (),
    ) -> Conversation:
        conversation = await self.store.get_conversation(conversation_id)
        tags = tuple(t for t in (*conversation.tags, *add) if t not in remove)
        return await self.update(conversation_id, actor, tags=tags)

    # operators

    async def update_operator(
        self,
        operator_id: str,
        actor: Operator,
        *,
        presence: Presence | _Unchanged = UNCHANGED,
        max_open: int | None | _Unchanged = UNCHANGED,
        focus_mode: bool | _Unchanged = UNCHANGED,
        teams: tuple[str, ...] | _Unchanged = UNCHANGED,
        locale: str | None | _Unchanged = UNCHANGED,
        time_zone: str | None | _Unchanged = UNCHANGED,
    ) -> Operator:
        """Operators set their own presence, focus mode, language and time zone; caps and teams
        are a supervisor's to set."""
        operator = await self.store.get_operator(operator_id)
        own_settings = actor.id == operator_id and isinstance(max_open, _Unchanged) and isinstance(teams, _Unchanged)
        if not (own_settings or actor.role.at_least(Role.SUPERVISOR)):
            raise PermissionDenied("only supervisors change other operators, caps and teams")
        updated = operator
        if not isinstance(time_zone, _Unchanged) and time_zone is not None:
            _check_time_zone(time_zone)
        settings: dict[str, Any] = {
            "presence": presence,
            "max_open": max_open,
            "focus_mode": focus_mode,
            "locale": locale,
            "time_zone": time_zone,
        }
        for name, value in settings.items():
            if not isinstance(value, _Unchanged):
                updated = replace(updated, **{name: value})
        if not isinstance(teams, _Unchanged):
            updated = replace(updated, teams=_unique(teams))
        if updated == operator:
            return operator
        await self.store.save_operator(updated)
        await self._announce(OperatorUpdated(operator=updated, previous=operator))
        return updated

    async def _check_may_assign(self, actor: Operator, conversation: Conversation, assignee_id: str | None) -> None:
        """Operators take conversations for themselves or hand back their own; supervisors and
        admins assign anyone."""
        if actor.role.at_least(Role.SUPERVISOR):
            pass
        elif assignee_id not in (actor.id, None) or (assignee_id is None and conversation.assignee_id != actor.id):
            raise PermissionDenied("operators can only assign conversations to themselves")
        elif conversation.assignee_id not in (None, actor.id):
            raise PermissionDenied("this conversation is assigned to someone else")
        if assignee_id is not None:
            try:
                await self.store.get_operator(assignee_id)
            except NotFound as exc:
                raise ValidationError(f"no operator {assignee_id}") from exc


_CHANGE_TRACKED = ("status", "assignee_id", "team_id", "priority", "tags", "snoozed_until", "resolved_at")


def _changed(
    conversation: Conversation,
    now: datetime,
    *,
    status: ConversationStatus | _Unchanged = UNCHANGED,
    assignee_id: str | None | _Unchanged = UNCHANGED,
    team_id: str | None | _Unchanged = UNCHANGED,
    priority: Priority | _Unchanged = UNCHANGED,
    tags: tuple[str, ...] | _Unchanged = UNCHANGED,
    snoozed_until: datetime | None | _Unchanged = UNCHANGED,
) -> tuple[Conversation, tuple[str, ...]]:
    """The conversation with the given fields changed, and the names of those that did change."""
    fields: dict[str, Any] = {}
    for name, value in (("assignee_id", assignee_id), ("team_id", team_id), ("priority", priority)):
        if not isinstance(value, _Unchanged):
            fields[name] = value
    if not isinstance(tags, _Unchanged):
        fields["tags"] = _unique(tags)
    if not isinstance(status, _Unchanged) or not isinstance(snoozed_until, _Unchanged):
        fields |= _status_fields(
            conversation,
            conversation.status if isinstance(status, _Unchanged) else status,
            None if isinstance(snoozed_until, _Unchanged) else snoozed_until,
            now,
        )
    changed = tuple(name for name in _CHANGE_TRACKED if name in fields and fields[name] != getattr(conversation, name))
    return (replace(conversation, **fields, updated_at=now), changed) if changed else (conversation, ())


def _status_fields(
    conversation: Conversation,
    status: ConversationStatus,
    snoozed_until: datetime | None,
    now: datetime,
) -> dict[str, Any]:
    if status is ConversationStatus.SNOOZED:
        if snoozed_until is None or snoozed_until <= now:
            raise ValidationError("snoozing needs a snoozed_until in the future")
        return {"status": status, "snoozed_until": snoozed_until, "resolved_at": None}
    if snoozed_until is not None:
        raise ValidationError("snoozed_until goes only with status 'snoozed'")
    if status is ConversationStatus.RESOLVED:
        resolved_at = conversation.resolved_at if conversation.status is status else now
        return {"status": status, "snoozed_until": None, "resolved_at": resolved_at}
    return {"status": status, "snoozed_until": None, "resolved_at": None}


def _reopened_by_customer(conversation: Conversation, now: datetime) -> tuple[Conversation, tuple[str, ...]]:
    """A customer's new message makes a conversation need an answer again."""
    updated = replace(
        conversation,
        status=ConversationStatus.OPEN,
        snoozed_until=None,
        resolved_at=None,
        updated_at=now,
        last_message_at=now,
        last_inbound_at=now,
        waiting_since=conversation.waiting_since or now,
    )
    changed = tuple(
        name
        for name in ("status", "snoozed_until", "resolved_at", "waiting_since")
        if getattr(updated, name) != getattr(conversation, name)
    )
    return updated, (*changed, "last_message_at", "last_inbound_at")


def _check_time_zone(name: str) -> None:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):  # OSError: a tzdata folder name, such as "America"
        raise ValidationError(f"unknown time zone {name!r}") from None


def _outgoing(
    conversation: Conversation,
    author: Operator | None,
    text: str,
    kind: MessageKind,
    idempotency_key: str | None,
    extras: Mapping[str, Any] | None,
    now: datetime,
) -> tuple[Conversation, Message, OutboxItem | None]:
    """A reply, note or auto-reply, its delivery job (notes have none) and the conversation as it
    becomes: an operator's reply is a first response and ends the wait; an auto-reply is neither."""
    sends = kind is not MessageKind.NOTE
    message = Message(
        id=new_id(),
        conversation_id=conversation.id,
        channel_id=conversation.channel_id,
        direction=Direction.OUT,
        kind=kind,
        text=text,
        author_id=author.id if author else None,
        idempotency_key=idempotency_key,
        delivery_status=DeliveryStatus.QUEUED if sends else None,
        extras=dict(extras or {}),
        created_at=now,
    )
    if kind is MessageKind.MESSAGE:
        conversation = replace(
            conversation,
            updated_at=now,
            last_message_at=now,
            waiting_since=None,
            first_response_at=conversation.first_response_at or now,
        )
    elif kind is MessageKind.AUTO_REPLY:
        conversation = replace(conversation, updated_at=now, last_message_at=now)
    else:
        conversation = replace(conversation, updated_at=now)
    outbox = (
        OutboxItem(
            id=new_id(), message_id=message.id, channel_id=conversation.channel_id, next_attempt_at=now, created_at=now
        )
        if sends
        else None
    )
    return conversation, message, outbox


def _system_event(
    conversation: Conversation, reason: str, details: Mapping[str, Any], changed: tuple[str, ...], now: datetime
) -> Message:
    """A decision on the record: what changed and why, shown among the conversation's messages."""
    return Message(
        id=new_id(),
        conversation_id=conversation.id,
        channel_id=conversation.channel_id,
        direction=Direction.OUT,
        kind=MessageKind.SYSTEM,
        text=reason,
        extras={"routing": dict(details), "changed": list(changed)},
        created_at=now,
    )


def _inbound_extras(inbound: InboundMessage, sender: Contact, conversation: Conversation) -> dict[str, Any]:
    """The channel's extras, plus the flags routing reads and, when a participant rather than the
    conversation's contact wrote, who that was."""
    extras = dict(inbound.extras)
    if inbound.auto_reply:
        extras["auto_reply"] = True
    if sender.id != conversation.contact_id:
        extras["sender"] = {"contact_id": sender.id, "name": sender.name}
    return extras


_UNROUTED: Final = Routed()


def _unique(values: tuple[str | None, ...]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(v for v in values if v))
