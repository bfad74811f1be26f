"""The storage port: what the inbox needs from a database, and nothing about how.

Adapters (:mod:`storage.sqlite`, :mod:`storage.mongo`) implement :class:`Store`; one contract
suite in ``tests/storage/`` runs against each. Every method either succeeds or raises an error
from :mod:`inbox.errors` (``NotFound``, ``Conflict``, ``Unavailable``); driver errors never leak.

Durability: a write is atomic when its method returns, but may become durable a moment later
(the SQLite adapter commits writes in groups). Whoever acknowledges something to the outside
world (a channel, an API client, the event bus) first awaits :meth:`Store.durable`.

Two methods are units of work that must be atomic, because the product's promises rest on them:
:meth:`Store.append_message` (the message, its conversation's new state and, for replies, the
outbox job are stored together or not at all) and :meth:`Store.claim_outbox` (one job goes to one
dispatcher at a time, across processes).
"""

from __future__ import annotations

import base64
import json
from abc import ABC, abstractmethod
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Generic, TypeVar

from inbox.domain import (
    Channel,
    Contact,
    Conversation,
    ConversationStatus,
    DeliveryStatus,
    Identity,
    Message,
    MessageKind,
    Operator,
    OutboxItem,
    Session,
    Timer,
    Unparsed,
)
from inbox.errors import ValidationError

__all__ = ["SEARCHABLE_KINDS", "UNASSIGNED", "ConversationFilter", "Cursor", "Page", "Store"]

T = TypeVar("T")

UNASSIGNED = "none"
"""``ConversationFilter.assignee_id`` value that selects conversations nobody is assigned to."""


@dataclass(frozen=True, slots=True, kw_only=True)
class ConversationFilter:
    status: ConversationStatus | None = None
    assignee_id: str | None = None
    channel_id: str | None = None
    team_id: str | None = None
    tag: str | None = None
    text: str | None = None
    contact_id: str | None = None


@dataclass(frozen=True, slots=True)
class Page(Generic[T]):
    items: list[T]
    next_cursor: str | None


@dataclass(frozen=True, slots=True)
class Cursor:
    """A keyset position: the sort value and id of the last item a page returned.

    Encoded as opaque URL-safe text so clients cannot (and need not) build one.
    """

    sort_value: int
    id: str

    def encode(self) -> str:
        raw = json.dumps([self.sort_value, self.id], separators=(",", ":")).encode()
        return base64.urlsafe_b64encode(raw).decode().rstrip("=")

    @classmethod
    def decode(cls, text: str) -> Cursor:
        try:
            raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
            sort_value, item_id = json.loads(raw)
            if type(sort_value) is not int or not 0 <= sort_value < 2**63 or not isinstance(item_id, str):
                raise TypeError
        except (ValueError, TypeError) as exc:
            raise ValidationError("invalid cursor") from exc
        return cls(sort_value, item_id)


SEARCHABLE_KINDS = frozenset({MessageKind.MESSAGE, MessageKind.NOTE})
"""Text search finds what people wrote; routing's system events and auto-replies would only
make every conversation match the words of a rule's name or a template."""


class Store(ABC):
    """Persistence for channels, operators, contacts, conversations, messages and the outbox."""

    # lifecycle

    @abstractmethod
    async def open(self) -> None:
        """Connects and brings the schema or indexes up to date."""

    @abstractmethod
    async def close(self) -> None: ...

    @abstractmethod
    async def ping(self) -> None:
        """Raises ``Unavailable`` when the database does not answer (for /healthz)."""

    async def durable(self) -> None:
        """Returns once every write made and every row read so far is durable; raises
        ``Unavailable`` if the commit they are part of failed (and was rolled back). Cancelled
        while it waits, it may be asked again (or from a task started in the caller's context)
        and waits for the same writes.

        Adapters that commit every write when it is made need not override it."""
        return None

    # channels

    @abstractmethod
    async def create_channel(self, channel: Channel, secret_hash: str | None = None) -> None: ...

    @abstractmethod
    async def get_channel(self, channel_id: str) -> Channel: ...

    @abstractmethod
    async def channel_by_secret(self, secret_hash: str) -> Channel | None: ...

    @abstractmethod
    async def list_channels(self) -> list[Channel]: ...

    # operators

    @abstractmethod
    async def create_operator(self, operator: Operator, token_hash: str) -> None:
        """Raises ``Conflict`` when the email is taken."""

    @abstractmethod
    async def get_operator(self, operator_id: str) -> Operator: ...

    @abstractmethod
    async def operator_by_email(self, email: str) -> Operator | None: ...

    @abstractmethod
    async def operator_by_token(self, token_hash: str) -> Operator | None: ...

    @abstractmethod
    async def list_operators(self) -> list[Operator]: ...

    @abstractmethod
    async def count_operators(self) -> int: ...

    @abstractmethod
    async def save_operator(self, operator: Operator) -> None: ...

    # web UI sessions

    @abstractmethod
    async def create_session(self, session: Session) -> None:
        """``Conflict`` when the id (the token's hash) exists already."""

    @abstractmethod
    async def session_by_token_hash(self, token_hash: str) -> Session | None:
        """The session even when it has expired: the store has no clock, so expiry is the caller's
        to judge (and to clean up with :meth:`delete_session`)."""

    @abstractmethod
    async def touch_session(self, session_id: str, *, last_seen_at: datetime, expires_at: datetime) -> bool:
        """Slides the expiry; False when the session is gone (signed out or revoked meanwhile)."""

    @abstractmethod
    async def delete_session(self, session_id: str) -> bool: ...

    @abstractmethod
    async def delete_sessions_of(self, operator_id: str, *, keep: str | None = None) -> int:
        """Signs the operator out everywhere (after a password change), except session ``keep``."""

    @abstractmethod
    async def delete_expired_sessions(self, now: datetime) -> int:
        """Housekeeping: sessions nobody presents again would otherwise stay forever."""

    # contacts

    @abstractmethod
    async def create_contact(self, contact: Contact) -> None:
        """Stores the contact with its identities; ``Conflict`` when an identity is taken.
        Stores return identities ordered by (channel kind, external id)."""

    @abstractmethod
    async def get_contact(self, contact_id: str) -> Contact: ...

    @abstractmethod
    async def contact_by_identity(self, identity: Identity) -> Contact | None: ...

    @abstractmethod
    async def contact_names(self, contact_ids: Collection[str]) -> dict[str, str | None]:
        """Names of the given contacts in one round trip (for list views); unknown ids are left out."""

    @abstractmethod
    async def list_contacts(
        self, *, limit: int, cursor: str | None = None, text: str | None = None
    ) -> Page[Contact]: ...

    # conversations and messages

    @abstractmethod
    async def get_conversation(self, conversation_id: str) -> Conversation: ...

    @abstractmethod
    async def find_thread(
        self,
        *,
        contact_id: str,
        channel_id: str,
        thread_keys: Sequence[str],
        resolved_since: datetime,
        participant: str | None = None,
        number: int | None = None,
    ) -> Conversation | None:
        """The newest conversation on this channel that shares a thread key or has ``number``,
        whose contact is ``contact_id`` or which lists ``participant`` among its participants,
        and which is either not resolved or resolved at or after ``resolved_since``."""

    @abstractmethod
    async def list_conversations(
        self, where: ConversationFilter, *, limit: int, cursor: str | None = None
    ) -> Page[Conversation]:
        """Newest activity first (``last_message_at`` then id, descending), keyset-paged.
        ``where.text`` matches word prefixes in messages, subjects and contact names; the text
        index may lag writes until they are durable."""

    @abstractmethod
    async def save_conversation(self, conversation: Conversation) -> None:
        """Writes the conversation's mutable fields (status, assignee, tags, timestamps, …)."""

    @abstractmethod
    async def append_message(
        self,
        conversation: Conversation,
        message: Message,
        *,
        new_conversation: bool,
        thread_keys: Sequence[str] = (),
        participants: Sequence[str] = (),
        outbox: OutboxItem | None = None,
        events: Sequence[Message] = (),
        tags_changed: bool = False,
    ) -> Conversation:
        """Atomically stores ``message`` and the conversation's new state (inserting it, with the
        next sequential ``number``, when ``new_conversation``), adds ``thread_keys`` and
        ``participants`` to the conversation's, and stores ``outbox`` if given, and ``events``
        (system events about the same change, after the message). Tags are written for a new
        conversation, or when ``tags_changed``; otherwise they are left as stored.

        Raises ``Conflict`` and stores nothing when the message's (channel, external id) or
        (author, idempotency key) already exists. Returns the conversation as stored.
        """

    @abstractmethod
    async def get_message(self, message_id: str) -> Message: ...

    @abstractmethod
    async def message_by_external_id(self, channel_id: str, external_id: str) -> Message | None: ...

    @abstractmethod
    async def message_by_idempotency_key(self, author_id: str, key: str) -> Message | None: ...

    @abstractmethod
    async def set_delivery_status(self, message_id: str, status: DeliveryStatus, error: str | None) -> Message:
        """A channel's later word on a sent message (a bounce, a read receipt)."""

    @abstractmethod
    async def last_inbound_message(self, conversation_id: str) -> Message | None:
        """The conversation's newest message from the customer."""

    @abstractmethod
    async def list_messages(self, conversation_id: str, *, limit: int, cursor: str | None = None) -> Page[Message]:
        """Oldest first, keyset-paged."""

    @abstractmethod
    async def auto_replies_in(self, conversation_id: str) -> dict[str, datetime]:
        """When each trigger (``extras["trigger"]``) last auto-replied in the conversation. The
        stored auto-replies are routing's record of "once per trigger": no separate mark to write."""

    @abstractmethod
    async def auto_replies_to(self, contact_id: str, since: datetime) -> list[datetime]:
        """When the contact was auto-replied to at or after ``since``, in any of its conversations,
        oldest first: routing's per-contact limit."""

    # connector bookkeeping

    @abstractmethod
    async def quarantine(self, record: Unparsed) -> Unparsed:
        """Stores an unparsable inbound item; a second one with the same (channel, external id)
        returns the first instead."""

    @abstractmethod
    async def list_quarantine(self, *, limit: int, cursor: str | None = None) -> Page[Unparsed]:
        """Newest first, keyset-paged."""

    @abstractmethod
    async def get_unparsed(self, unparsed_id: str) -> Unparsed: ...

    # routing

    @abstractmethod
    async def list_routing_objects(self, kind: str) -> list[dict[str, Any]]:
        """The stored bodies of one kind (``rule``, ``calendar``, ``template``, ``team``), by
        position then id."""

    @abstractmethod
    async def put_routing_object(self, kind: str, object_id: str, body: Mapping[str, Any], position: int = 0) -> None:
        """Creates or replaces one; ``body`` is JSON-able and already validated by routing."""

    @abstractmethod
    async def delete_routing_object(self, kind: str, object_id: str) -> bool: ...

    @abstractmethod
    async def set_timer(self, timer: Timer) -> None:
        """Creates the (kind, conversation) timer or moves the existing one (which keeps its id)."""

    @abstractmethod
    async def cancel_timer(self, kind: str, conversation_id: str) -> bool: ...

    @abstractmethod
    async def due_timers(self, now: datetime, *, limit: int) -> list[Timer]:
        """Timers due at ``now``, earliest first."""

    @abstractmethod
    async def delete_timer(self, timer: Timer) -> bool:
        """Deletes a timer that fired, unless it was moved meanwhile (moved, it is due again);
        returns whether it was deleted."""

    @abstractmethod
    async def get_sync_state(self, key: str) -> str | None:
        """A connector's durable position (an IMAP folder's UIDVALIDITY and last UID, say)."""

    @abstractmethod
    async def set_sync_state(self, key: str, value: str) -> None: ...

    # outbox

    @abstractmethod
    async def claim_outbox(self, *, now: datetime, lease_until: datetime, limit: int) -> list[OutboxItem]:
        """Takes up to ``limit`` jobs due at ``now`` and not leased, leasing them until
        ``lease_until`` so no other dispatcher takes them meanwhile."""

    @abstractmethod
    async def next_outbox_due(self) -> datetime | None:
        """When the earliest job becomes due (or its lease runs out), for the dispatcher's sleep."""

    @abstractmethod
    async def finish_outbox(
        self,
        item: OutboxItem,
        *,
        status: DeliveryStatus,
        error: str | None = None,
        external_id: str | None = None,
    ) -> Message:
        """Removes the job and records the final delivery status on its message, atomically."""

    @abstractmethod
    async def retry_outbox(self, item: OutboxItem, *, next_attempt_at: datetime, error: str) -> None:
        """Counts a failed attempt and releases the job until ``next_attempt_at``."""

    @abstractmethod
    async def pending_outbox_count(self) -> int: ...

    @abstractmethod
    async def requeue_message(self, item: OutboxItem) -> Message:
        """A failed outbound message is queued again (status ``queued``, error cleared) with the new
        delivery job ``item``, atomically; ``Conflict`` if the message is not ``failed`` (so two
        clicks on "resend" send it once), ``NotFound`` if there is no such message."""
