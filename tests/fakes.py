"""The one recording fake connector used by core tests (the real connectors are tested against
real peers or contract-faithful local servers)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from dataclasses import replace
from itertools import count
from typing import Any, ClassVar

from aiohttp import web

from connectors.base import Capabilities, ConnectorContext
from inbox.clock import ManualClock
from inbox.domain import (
    Channel,
    Contact,
    Conversation,
    DeliveryReceipt,
    DeliveryStatus,
    Direction,
    InboundContact,
    InboundMessage,
    Message,
    MessageKind,
    OutboundMessage,
)
from inbox.errors import DeliveryError
from inbox.ids import new_id


class RecordingConnector:
    """Records every send; ``failures`` makes the next N sends raise a retryable DeliveryError,
    ``permanent`` makes them fail for good."""

    kind: ClassVar[str] = "test"
    capabilities: ClassVar[Capabilities] = Capabilities()
    sent: ClassVar[list[OutboundMessage]] = []
    failures: ClassVar[int] = 0
    permanent: ClassVar[bool] = False
    _ids = count(1)

    def __init__(self, context: ConnectorContext) -> None:
        self.context = context
        self.started = False

    @classmethod
    def reset(cls) -> None:
        cls.sent = []
        cls.failures = 0
        cls.permanent = False

    def routes(self) -> Sequence[web.RouteDef]:
        return ()

    async def start(self) -> None:
        self.started = True

    async def stop(self) -> None:
        self.started = False

    async def send(self, outbound: OutboundMessage) -> DeliveryReceipt:
        if RecordingConnector.failures > 0:
            RecordingConnector.failures -= 1
            raise DeliveryError("peer unavailable", retryable=not RecordingConnector.permanent)
        RecordingConnector.sent.append(outbound)
        return DeliveryReceipt(status=DeliveryStatus.DELIVERED, external_id=f"remote-{next(self._ids)}")


def inbound(
    channel_id: str,
    external_id: str,
    *,
    contact: str = "customer-1",
    text: str = "Hello, my order has not arrived",
    subject: str | None = "Order",
    thread_keys: tuple[str, ...] = (),
    own_thread_key: str | None = None,
    name: str | None = "Ivan",
) -> InboundMessage:
    return InboundMessage(
        channel_id=channel_id,
        external_id=external_id,
        contact=InboundContact(external_id=contact, name=name),
        text=text,
        subject=subject,
        thread_keys=thread_keys or (f"chat:{contact}",),
        own_thread_key=own_thread_key,
    )


def make_conversation(clock: ManualClock, channel: Channel, contact: Contact, **changes: Any) -> Conversation:
    """An unsaved conversation of ``contact`` on ``channel``, started now."""
    now = clock.now()
    conversation = Conversation(
        id=new_id(),
        number=0,
        channel_id=channel.id,
        contact_id=contact.id,
        subject="Заказ №5",
        created_at=now,
        updated_at=now,
        last_message_at=now,
        last_inbound_at=now,
        waiting_since=now,
    )
    return replace(conversation, **changes)


def make_message(
    clock: ManualClock, conversation: Conversation, text: str = "Где мой заказ?", **changes: Any
) -> Message:
    """An unsaved customer message in ``conversation``, sent now."""
    message = Message(
        id=new_id(),
        conversation_id=conversation.id,
        channel_id=conversation.channel_id,
        direction=Direction.IN,
        kind=MessageKind.MESSAGE,
        text=text,
        external_id=new_id(),
        delivery_status=DeliveryStatus.RECEIVED,
        created_at=clock.now(),
    )
    return replace(message, **changes)


def make_auto_reply(clock: ManualClock, conversation: Conversation, trigger: str | None) -> Message:
    """An unsaved auto-reply in ``conversation``, sent now for ``trigger`` (None: a reply that names none)."""
    return make_message(
        clock,
        conversation,
        "auto",
        direction=Direction.OUT,
        kind=MessageKind.AUTO_REPLY,
        external_id=None,
        delivery_status=DeliveryStatus.QUEUED,
        extras={} if trigger is None else {"trigger": trigger},
    )


@contextlib.contextmanager
def failing_commits(store: Any, monkeypatch: Any) -> Iterator[None]:
    """Messages are written, then their group commit fails (and rolls them back)."""
    original = store.append_message

    async def poisoned(*args: Any, **kwargs: Any) -> Any:
        stored = await original(*args, **kwargs)
        store._database.defer("INSERT INTO no_such_table VALUES (?)", (1,))  # type: ignore[attr-defined]
        return stored

    monkeypatch.setattr(store, "append_message", poisoned)
    try:
        yield
    finally:
        monkeypatch.setattr(store, "append_message", original)
