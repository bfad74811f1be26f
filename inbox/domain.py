"""Domain types of the inbox: plain, immutable values that every other package speaks.

They import nothing of the project, so storage adapters, connectors, routing and the web layer
can all depend on them without depending on each other. State changes go through
:class:`inbox.service.InboxService`, which returns new values (``dataclasses.replace``).
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

__all__ = [
    "Attachment",
    "Channel",
    "ChannelKind",
    "Contact",
    "Conversation",
    "ConversationStatus",
    "DeliveryReceipt",
    "DeliveryStatus",
    "Direction",
    "Identity",
    "InboundContact",
    "InboundMessage",
    "Message",
    "MessageKind",
    "Operator",
    "OutboundMessage",
    "OutboxItem",
    "Presence",
    "Priority",
    "Role",
    "Session",
    "Team",
    "Timer",
    "Unparsed",
    "conversation_thread_key",
    "participant_key",
]


class ConversationStatus(enum.StrEnum):
    OPEN = "open"
    PENDING = "pending"
    SNOOZED = "snoozed"
    RESOLVED = "resolved"


class Priority(enum.StrEnum):
    LOW = "low"
    NORMAL = "normal"
    HIGH = "high"
    URGENT = "urgent"


class Direction(enum.StrEnum):
    IN = "in"
    OUT = "out"


class MessageKind(enum.StrEnum):
    MESSAGE = "message"
    NOTE = "note"
    AUTO_REPLY = "auto_reply"
    SYSTEM = "system"


class DeliveryStatus(enum.StrEnum):
    """Lifecycle of an outbound message; inbound messages carry ``RECEIVED``, notes none."""

    RECEIVED = "received"
    QUEUED = "queued"
    SENT = "sent"
    DELIVERED = "delivered"
    READ = "read"
    FAILED = "failed"


class Role(enum.StrEnum):
    OPERATOR = "operator"
    SUPERVISOR = "supervisor"
    ADMIN = "admin"

    def at_least(self, other: Role) -> bool:
        order = (Role.OPERATOR, Role.SUPERVISOR, Role.ADMIN)
        return order.index(self) >= order.index(other)


class Presence(enum.StrEnum):
    ONLINE = "online"
    AWAY = "away"
    OFFLINE = "offline"


class ChannelKind(enum.StrEnum):
    API = "api"
    EMAIL = "email"
    WIDGET = "widget"
    TELEGRAM = "telegram"
    WHATSAPP = "whatsapp"


@dataclass(frozen=True, slots=True, kw_only=True)
class Channel:
    """A configured way in and out: one mailbox, one bot, one widget, one API key."""

    id: str
    kind: str
    name: str
    settings: Mapping[str, Any] = field(default_factory=dict)
    created_at: datetime


@dataclass(frozen=True, slots=True, kw_only=True)
class Identity:
    """How a channel knows a contact: an email address, a Telegram user id, an API system's id."""

    channel_kind: str
    external_id: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Contact:
    id: str
    name: str | None
    email: str | None = None
    phone: str | None = None
    identities: tuple[Identity, ...] = ()
    attributes: Mapping[str, Any] = field(default_factory=dict)
    created_at: datetime


@dataclass(frozen=True, slots=True, kw_only=True)
class Conversation:
    id: str
    number: int
    channel_id: str
    contact_id: str
    subject: str | None
    status: ConversationStatus = ConversationStatus.OPEN
    priority: Priority = Priority.NORMAL
    assignee_id: str | None = None
    team_id: str | None = None
    tags: tuple[str, ...] = ()
    created_at: datetime
    updated_at: datetime
    last_message_at: datetime
    last_inbound_at: datetime | None = None
    first_response_at: datetime | None = None
    waiting_since: datetime | None = None
    snoozed_until: datetime | None = None
    resolved_at: datetime | None = None


def conversation_thread_key(conversation_id: str) -> str:
    """The thread key every conversation has: a channel that can carry it on what we send (an
    email Message-ID, say) lets answers find their conversation by it."""
    return f"conversation:{conversation_id}"


def participant_key(scope: str, external_id: str) -> str:
    """How a conversation remembers who else may write into it (an address in To or Cc of the
    thread): by the same (scope, external id) that identifies a contact, so a participant need
    not be a contact yet."""
    return f"{scope}:{external_id}"


@dataclass(frozen=True, slots=True, kw_only=True)
class Attachment:
    """Metadata only; the bytes live in the blob store under ``sha256``."""

    filename: str
    content_type: str
    size: int
    sha256: str
    inline: bool = False
    content_id: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Message:
    id: str
    conversation_id: str
    channel_id: str
    direction: Direction
    kind: MessageKind
    text: str
    html: str | None = None
    author_id: str | None = None
    attachments: tuple[Attachment, ...] = ()
    external_id: str | None = None
    idempotency_key: str | None = None
    delivery_status: DeliveryStatus | None = None
    delivery_error: str | None = None
    extras: Mapping[str, Any] = field(default_factory=dict)
    created_at: datetime


@dataclass(frozen=True, slots=True, kw_only=True)
class Operator:
    id: str
    email: str
    name: str
    role: Role = Role.OPERATOR
    presence: Presence = Presence.OFFLINE
    focus_mode: bool = False
    max_open: int | None = None
    teams: tuple[str, ...] = ()
    password_hash: str | None = None
    locale: str | None = None
    """The web UI's language; None follows the browser."""
    time_zone: str | None = None
    """An IANA name for showing times; None follows the browser."""
    created_at: datetime


@dataclass(frozen=True, slots=True, kw_only=True)
class Session:
    """A signed-in browser. The cookie holds a random token; the store keeps only its hash as the
    id, so a copy of the database signs nobody in. Revoked by deleting it."""

    id: str
    operator_id: str
    csrf_token: str
    created_at: datetime
    expires_at: datetime
    last_seen_at: datetime


@dataclass(frozen=True, slots=True, kw_only=True)
class Team:
    id: str
    name: str
    created_at: datetime


@dataclass(frozen=True, slots=True, kw_only=True)
class InboundContact:
    """Who wrote, as the channel tells it.

    ``scope`` is where ``external_id`` is unique: by default the channel kind (an email address
    or a Telegram user id means the same person on every channel of that kind); an integration
    whose ids mean something only inside itself, such as an ``api`` channel, scopes them to the
    channel, so two shops' "cust-7" stay two contacts."""

    external_id: str
    scope: str | None = None
    name: str | None = None
    email: str | None = None
    phone: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class InboundMessage:
    """What a connector hands to :meth:`InboxService.receive`: one customer message, normalized.

    ``external_id`` is unique within the channel (an email Message-ID, a Telegram update id) and is
    what makes redelivery a no-op. ``thread_keys`` are the channel's hints for threading (email
    Message-ID / In-Reply-To / References, a chat id); ``own_thread_key`` is the key later messages
    will refer to this one by; ``conversation_number`` is a number the sender quoted (an email
    subject's ``[#1042]``), the fallback when a client dropped the references. Both only find a
    conversation the sender belongs to: its contact, or one of its ``participants`` — external ids
    in the contact's scope of others the message was addressed to (email To and Cc).
    """

    channel_id: str
    external_id: str
    contact: InboundContact
    text: str
    subject: str | None = None
    html: str | None = None
    thread_keys: tuple[str, ...] = ()
    own_thread_key: str | None = None
    conversation_number: int | None = None
    participants: tuple[str, ...] = ()
    attachments: tuple[Attachment, ...] = ()
    auto_reply: bool = False
    extras: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True, kw_only=True)
class Unparsed:
    """Inbound traffic that could not become a message: kept raw (a blob) with the reason, for
    admins to inspect, so bad input is never silently dropped. ``external_id`` (e.g. the IMAP
    UID or the SMTP queue id) makes quarantining idempotent per channel."""

    id: str
    channel_id: str
    external_id: str
    source: str
    reason: str
    raw_sha256: str
    size: int
    created_at: datetime


@dataclass(frozen=True, slots=True, kw_only=True)
class Timer:
    """A durable deadline on a conversation (a "no answer yet" auto-reply, a snooze to wake, an
    SLA): at most one per (``kind``, ``conversation_id``), so setting one again moves it."""

    id: str
    kind: str
    conversation_id: str
    due_at: datetime
    payload: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True, kw_only=True)
class OutboxItem:
    """A durable delivery job, written in the same transaction as its message."""

    id: str
    message_id: str
    channel_id: str
    attempts: int = 0
    next_attempt_at: datetime
    last_error: str | None = None
    created_at: datetime


@dataclass(frozen=True, slots=True, kw_only=True)
class OutboundMessage:
    """What a connector's ``send`` receives: everything needed to deliver one reply."""

    channel: Channel
    conversation: Conversation
    contact: Contact
    message: Message
    author: Operator | None = None
    in_reply_to: Message | None = None
    """The customer's latest message in the conversation, which channels that thread by
    reference (email's In-Reply-To / References) answer to."""


@dataclass(frozen=True, slots=True, kw_only=True)
class DeliveryReceipt:
    status: DeliveryStatus
    external_id: str | None = None
    detail: str | None = None
