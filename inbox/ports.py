"""Where routing plugs into the inbox. The inbox cannot import routing (dependencies point from
routing to the inbox), so it declares what it asks of routing here and routing implements it."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from inbox.domain import Channel, Contact, Conversation, Message, Operator

__all__ = ["Arrival", "AssignmentGate", "AutoReply", "Routed", "Triage"]


class AssignmentGate(Protocol):
    """Routing's say on a manual assignment, asked before it is stored: it may refuse (focus
    mode, a cap) and it keeps its own bookkeeping of who holds what. Returns True when the
    assignment exceeds a cap, which is allowed only when asked for (``over_cap``) and is then
    recorded on the conversation."""

    def admit(
        self, actor: Operator, conversation: Conversation, assignee_id: str | None, *, over_cap: bool
    ) -> bool: ...


@dataclass(frozen=True, slots=True, kw_only=True)
class Arrival:
    """A customer message as routing sees it: before it is stored (``conversation`` as it would
    be stored without routing), then after (the stored conversation, with its number)."""

    conversation: Conversation
    message: Message
    contact: Contact
    channel: Channel
    new_conversation: bool
    new_contact: bool


@dataclass(frozen=True, slots=True, kw_only=True)
class Routed:
    """Routing's decision on an arrival, stored in the same unit of work as the message: the
    conversation fields to change (``team_id``, ``assignee_id``, ``status``, ``priority``,
    ``tags``, ``snoozed_until``) and, when anything changed, why (a system event)."""

    changes: Mapping[str, Any] = field(default_factory=dict)
    reason: str = ""
    details: Mapping[str, Any] = field(default_factory=dict)
    plan: Any = None
    """Routing's own notes for :meth:`Triage.answer`; the inbox passes them back untouched."""


@dataclass(frozen=True, slots=True)
class AutoReply:
    text: str
    trigger: str


class Triage(Protocol):
    """Routing on the intake path. A customer message, routing's changes, their system event and
    the automatic answers are written in one unit of work, so the conversation never shows up
    unrouted, and a crash keeps all of them or none."""

    async def route(self, arrival: Arrival, *, plain: bool = False) -> Routed:
        """Rules and assignment, before the message is stored. May take a roster slot. ``plain``:
        without rules (the inbox refused what they asked), assignment and default replies only."""
        ...

    def unroute(self, arrival: Arrival, routed: Routed) -> None:
        """The message was not stored after all (a duplicate won, the store or its commit
        failed): put back what :meth:`route` changed."""
        ...

    async def answer(self, arrival: Arrival, routed: Routed) -> Sequence[AutoReply]:
        """After the message is written (``arrival.conversation`` is the stored one), before it is
        durable: the auto-replies to send, already counted against their limits, and timers."""
        ...
