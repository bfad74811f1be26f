"""Typed events and the in-process bus that carries them.

An event carries ids and the new state, never a connector or a callback. Subscribers are
awaited in subscription order, so routing sees a conversation before the web layer pushes it;
a failing subscriber is logged and does not stop the others (the state change already happened).
Every published event gets a sequence number, which the live web page will resume from.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import ClassVar

from inbox.domain import Conversation, Message, Operator

__all__ = [
    "ConversationCreated",
    "ConversationUpdated",
    "DeliveryUpdated",
    "Event",
    "EventBus",
    "MessageCreated",
    "OperatorUpdated",
    "Subscriber",
]

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True, kw_only=True)
class Event:
    type: ClassVar[str] = "event"


@dataclass(frozen=True, slots=True, kw_only=True)
class ConversationCreated(Event):
    type: ClassVar[str] = "conversation.created"
    conversation: Conversation


@dataclass(frozen=True, slots=True, kw_only=True)
class ConversationUpdated(Event):
    type: ClassVar[str] = "conversation.updated"
    conversation: Conversation
    changed: tuple[str, ...]
    actor_id: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class MessageCreated(Event):
    """``new_conversation`` and ``new_contact`` say what a customer's message started, for rules
    that look at first contact."""

    type: ClassVar[str] = "message.created"
    conversation: Conversation
    message: Message
    new_conversation: bool = False
    new_contact: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class DeliveryUpdated(Event):
    type: ClassVar[str] = "delivery.updated"
    message: Message


@dataclass(frozen=True, slots=True, kw_only=True)
class OperatorUpdated(Event):
    """Presence, cap, focus mode or teams changed: routing rebalances, pages show presence."""

    type: ClassVar[str] = "operator.updated"
    operator: Operator
    previous: Operator


Subscriber = Callable[[int, Event], Awaitable[None]]


class EventBus:
    def __init__(self) -> None:
        self._subscribers: list[Subscriber] = []
        self._sequence = 0

    @property
    def sequence(self) -> int:
        return self._sequence

    def subscribe(self, subscriber: Subscriber) -> Callable[[], None]:
        """Adds a subscriber; returns the function that removes it."""
        self._subscribers.append(subscriber)
        return lambda: self._subscribers.remove(subscriber)

    async def publish(self, event: Event) -> int:
        self._sequence += 1
        sequence = self._sequence
        for subscriber in tuple(self._subscribers):
            try:
                await subscriber(sequence, event)
            except Exception:
                log.exception("subscriber %r failed on %s #%d", subscriber, event.type, sequence)
        return sequence
