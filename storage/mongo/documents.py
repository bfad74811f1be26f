"""How domain values are stored as MongoDB documents, and read back.

The shapes mirror the SQLite rows, for the same reasons:

* Timestamps are integer microseconds since the Unix epoch, so ordering, keyset cursors
  (:class:`~storage.base.Cursor` carries the same integer) and equality agree to the microsecond
  with the other adapter, and no time zone is lost on the way (BSON dates hold milliseconds).
* Mappings whose keys come from outside — channel settings, contact attributes, message extras —
  are stored as JSON text: their keys never become field names (no ``$``- or dot-keys reach the
  server), and both adapters return exactly what ``json`` round-trips.
* Ids are the ``_id``; enums are their string values.

Documents also carry what only the queries need: ``email_key`` (the email folded for unique,
case-insensitive lookup), ``identities`` key strings, ``thread_keys``, and search ``terms``.
"""

from __future__ import annotations

import json
import string
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from inbox.domain import (
    Attachment,
    Channel,
    Contact,
    Conversation,
    ConversationStatus,
    DeliveryStatus,
    Direction,
    Identity,
    Message,
    MessageKind,
    Operator,
    OutboxItem,
    Presence,
    Priority,
    Role,
    Session,
    Timer,
    Unparsed,
)
from storage.base import SEARCHABLE_KINDS
from storage.mongo.search import search_terms
from storage.timestamps import from_micros, to_micros

__all__ = [
    "channel_document",
    "channel_from_document",
    "contact_document",
    "contact_from_document",
    "conversation_document",
    "conversation_fields",
    "conversation_from_document",
    "email_key",
    "identity_key",
    "message_document",
    "message_from_document",
    "micros",
    "moment",
    "operator_document",
    "operator_fields",
    "operator_from_document",
    "outbox_document",
    "outbox_from_document",
    "session_document",
    "session_from_document",
    "unparsed_document",
    "unparsed_from_document",
]

micros = to_micros
moment = from_micros


def _micros(value: datetime | None) -> int | None:
    return None if value is None else micros(value)


def _moment(value: int | None) -> datetime | None:
    return None if value is None else moment(value)


_ASCII_LOWER = str.maketrans(string.ascii_uppercase, string.ascii_lowercase)


def email_key(email: str) -> str:
    """What makes two emails "the same": SQLite's ``COLLATE NOCASE`` folds ASCII letters only."""
    return str(email).translate(_ASCII_LOWER)


def identity_key(identity: Identity) -> str:
    """One string per identity for a unique multikey index; JSON keeps the pair unambiguous."""
    return json.dumps([str(identity.channel_kind), str(identity.external_id)])


def conversation_fields(c: Conversation) -> dict[str, Any]:
    """The fields ``save_conversation`` and ``append_message`` overwrite (SQLite's mutable columns)."""
    return {
        "subject": c.subject,
        "status": str(c.status),
        "priority": str(c.priority),
        "assignee_id": c.assignee_id,
        "team_id": c.team_id,
        "tags": list(c.tags),
        "updated_at": micros(c.updated_at),
        "last_message_at": micros(c.last_message_at),
        "last_inbound_at": _micros(c.last_inbound_at),
        "first_response_at": _micros(c.first_response_at),
        "waiting_since": _micros(c.waiting_since),
        "snoozed_until": _micros(c.snoozed_until),
        "resolved_at": _micros(c.resolved_at),
    }


def operator_fields(o: Operator) -> dict[str, Any]:
    return {
        "email": o.email,
        "email_key": email_key(o.email),
        "name": o.name,
        "role": str(o.role),
        "presence": str(o.presence),
        "focus_mode": bool(o.focus_mode),
        "max_open": o.max_open,
        "teams": list(o.teams),
        "password_hash": o.password_hash,
        "locale": o.locale,
        "time_zone": o.time_zone,
    }


def channel_document(channel: Channel, secret_hash: str | None) -> dict[str, Any]:
    return {
        "_id": channel.id,
        "kind": channel.kind,
        "name": channel.name,
        "settings": json.dumps(dict(channel.settings)),
        "secret_hash": secret_hash,
        "created_at": micros(channel.created_at),
    }


def channel_from_document(d: dict[str, Any]) -> Channel:
    return Channel(
        id=d["_id"],
        kind=d["kind"],
        name=d["name"],
        settings=json.loads(d["settings"]),
        created_at=moment(d["created_at"]),
    )


def operator_document(operator: Operator, token_hash: str) -> dict[str, Any]:
    return {
        "_id": operator.id,
        **operator_fields(operator),
        "token_hash": token_hash,
        "created_at": micros(operator.created_at),
    }


def operator_from_document(d: dict[str, Any]) -> Operator:
    return Operator(
        id=d["_id"],
        email=d["email"],
        name=d["name"],
        role=Role(d["role"]),
        presence=Presence(d["presence"]),
        focus_mode=bool(d["focus_mode"]),
        max_open=d["max_open"],
        teams=tuple(d["teams"]),
        password_hash=d["password_hash"],
        locale=d.get("locale"),  # absent in operators stored before the web UI's preferences
        time_zone=d.get("time_zone"),
        created_at=moment(d["created_at"]),
    )


def session_document(s: Session) -> dict[str, Any]:
    return {
        "_id": s.id,
        "operator_id": s.operator_id,
        "csrf_token": s.csrf_token,
        "created_at": micros(s.created_at),
        "expires_at": micros(s.expires_at),
        "last_seen_at": micros(s.last_seen_at),
    }


def session_from_document(d: dict[str, Any]) -> Session:
    return Session(
        id=d["_id"],
        operator_id=d["operator_id"],
        csrf_token=d["csrf_token"],
        created_at=moment(d["created_at"]),
        expires_at=moment(d["expires_at"]),
        last_seen_at=moment(d["last_seen_at"]),
    )


def contact_document(contact: Contact) -> dict[str, Any]:
    """Identities live in the contact, one key string each, so the contact and its identities are
    written by one atomic insert; the field is left out when empty, as the unique index is partial."""
    document: dict[str, Any] = {
        "_id": contact.id,
        "name": contact.name,
        "email": contact.email,
        "phone": contact.phone,
        "attributes": json.dumps(dict(contact.attributes)),
        "created_at": micros(contact.created_at),
    }
    if contact.identities:
        document["identities"] = sorted(identity_key(i) for i in contact.identities)
    return document


def contact_from_document(d: dict[str, Any]) -> Contact:
    pairs = sorted(tuple(json.loads(key)) for key in d.get("identities", ()))
    return Contact(
        id=d["_id"],
        name=d["name"],
        email=d["email"],
        phone=d["phone"],
        identities=tuple(Identity(channel_kind=kind, external_id=external) for kind, external in pairs),
        attributes=json.loads(d["attributes"]),
        created_at=moment(d["created_at"]),
    )


def conversation_document(
    c: Conversation, thread_keys: Iterable[str] = (), participants: Iterable[str] = ()
) -> dict[str, Any]:
    """A new conversation. ``subject_terms`` are set here only: SQLite, too, indexes the subject
    a conversation was created with."""
    return {
        "_id": c.id,
        "number": c.number,
        "channel_id": c.channel_id,
        "contact_id": c.contact_id,
        "created_at": micros(c.created_at),
        **conversation_fields(c),
        "thread_keys": list(dict.fromkeys(str(key) for key in thread_keys)),
        "participants": list(dict.fromkeys(str(key) for key in participants)),
        "subject_terms": search_terms(c.subject),
    }


def conversation_from_document(d: dict[str, Any]) -> Conversation:
    return Conversation(
        id=d["_id"],
        number=d["number"],
        channel_id=d["channel_id"],
        contact_id=d["contact_id"],
        subject=d["subject"],
        status=ConversationStatus(d["status"]),
        priority=Priority(d["priority"]),
        assignee_id=d["assignee_id"],
        team_id=d["team_id"],
        tags=tuple(d["tags"]),
        created_at=moment(d["created_at"]),
        updated_at=moment(d["updated_at"]),
        last_message_at=moment(d["last_message_at"]),
        last_inbound_at=_moment(d["last_inbound_at"]),
        first_response_at=_moment(d["first_response_at"]),
        waiting_since=_moment(d["waiting_since"]),
        snoozed_until=_moment(d["snoozed_until"]),
        resolved_at=_moment(d["resolved_at"]),
    )


def _attachment_document(a: Attachment) -> dict[str, Any]:
    return {
        "filename": a.filename,
        "content_type": a.content_type,
        "size": a.size,
        "sha256": a.sha256,
        "inline": a.inline,
        "content_id": a.content_id,
    }


def message_document(m: Message) -> dict[str, Any]:
    return {
        "_id": m.id,
        "conversation_id": m.conversation_id,
        "channel_id": m.channel_id,
        "direction": str(m.direction),
        "kind": str(m.kind),
        "text": m.text,
        "html": m.html,
        "author_id": m.author_id,
        "attachments": [_attachment_document(a) for a in m.attachments],
        "external_id": m.external_id,
        "idempotency_key": m.idempotency_key,
        "delivery_status": None if m.delivery_status is None else str(m.delivery_status),
        "delivery_error": m.delivery_error,
        "extras": json.dumps(dict(m.extras)),
        "created_at": micros(m.created_at),
        "terms": search_terms(m.text) if m.kind in SEARCHABLE_KINDS else [],
    }


def message_from_document(d: dict[str, Any]) -> Message:
    extras = json.loads(d["extras"])
    if "delivery_external_id" in d:
        extras["delivery_external_id"] = d["delivery_external_id"]
    status = d["delivery_status"]
    return Message(
        id=d["_id"],
        conversation_id=d["conversation_id"],
        channel_id=d["channel_id"],
        direction=Direction(d["direction"]),
        kind=MessageKind(d["kind"]),
        text=d["text"],
        html=d["html"],
        author_id=d["author_id"],
        attachments=tuple(Attachment(**a) for a in d["attachments"]),
        external_id=d["external_id"],
        idempotency_key=d["idempotency_key"],
        delivery_status=None if status is None else DeliveryStatus(status),
        delivery_error=d["delivery_error"],
        extras=extras,
        created_at=moment(d["created_at"]),
    )


def outbox_document(item: OutboxItem) -> dict[str, Any]:
    return {
        "_id": item.id,
        "message_id": item.message_id,
        "channel_id": item.channel_id,
        "attempts": item.attempts,
        "next_attempt_at": micros(item.next_attempt_at),
        "leased_until": 0,
        "last_error": item.last_error,
        "created_at": micros(item.created_at),
    }


def outbox_from_document(d: dict[str, Any]) -> OutboxItem:
    return OutboxItem(
        id=d["_id"],
        message_id=d["message_id"],
        channel_id=d["channel_id"],
        attempts=d["attempts"],
        next_attempt_at=moment(d["next_attempt_at"]),
        last_error=d["last_error"],
        created_at=moment(d["created_at"]),
    )


def timer_fields(t: Timer) -> dict[str, Any]:
    """What setting a timer again changes; the id stays the first one's."""
    return {"due_at": micros(t.due_at), "payload": dict(t.payload)}


def timer_from_document(d: dict[str, Any]) -> Timer:
    return Timer(
        id=d["_id"],
        kind=d["kind"],
        conversation_id=d["conversation_id"],
        due_at=moment(d["due_at"]),
        payload=d["payload"],
    )


def unparsed_document(u: Unparsed) -> dict[str, Any]:
    return {
        "_id": u.id,
        "channel_id": u.channel_id,
        "external_id": u.external_id,
        "source": u.source,
        "reason": u.reason,
        "raw_sha256": u.raw_sha256,
        "size": u.size,
        "created_at": micros(u.created_at),
    }


def unparsed_from_document(d: dict[str, Any]) -> Unparsed:
    return Unparsed(
        id=d["_id"],
        channel_id=d["channel_id"],
        external_id=d["external_id"],
        source=d["source"],
        reason=d["reason"],
        raw_sha256=d["raw_sha256"],
        size=d["size"],
        created_at=moment(d["created_at"]),
    )
