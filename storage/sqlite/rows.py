"""SQLite rows ↔ domain values: the encodings the schema uses (JSON text, integer microseconds)."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable
from datetime import datetime
from typing import Any, overload

from inbox.domain import (
    Attachment,
    Channel,
    Conversation,
    ConversationStatus,
    DeliveryStatus,
    Direction,
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
from storage import timestamps
from storage.base import Cursor, Page


@overload
def to_micros(moment: datetime) -> int: ...
@overload
def to_micros(moment: datetime | None) -> int | None: ...
def to_micros(moment: datetime | None) -> int | None:
    """A column's value: None stays NULL."""
    return None if moment is None else timestamps.to_micros(moment)


@overload
def from_micros(micros: int) -> datetime: ...
@overload
def from_micros(micros: int | None) -> datetime | None: ...
def from_micros(micros: int | None) -> datetime | None:
    """A column's value as an instant: NULL stays None."""
    return None if micros is None else timestamps.from_micros(micros)


CONVERSATION_MUTABLE = (
    "subject",
    "status",
    "priority",
    "assignee_id",
    "team_id",
    "tags",
    "updated_at",
    "last_message_at",
    "last_inbound_at",
    "first_response_at",
    "waiting_since",
    "snoozed_until",
    "resolved_at",
)


def conversation_mutable_values(c: Conversation) -> tuple[Any, ...]:
    return (
        c.subject,
        str(c.status),
        str(c.priority),
        c.assignee_id,
        c.team_id,
        json.dumps(list(c.tags)),
        to_micros(c.updated_at),
        to_micros(c.last_message_at),
        to_micros(c.last_inbound_at),
        to_micros(c.first_response_at),
        to_micros(c.waiting_since),
        to_micros(c.snoozed_until),
        to_micros(c.resolved_at),
    )


def conversation_from_row(row: sqlite3.Row) -> Conversation:
    return Conversation(
        id=row["id"],
        number=row["number"],
        channel_id=row["channel_id"],
        contact_id=row["contact_id"],
        subject=row["subject"],
        status=ConversationStatus(row["status"]),
        priority=Priority(row["priority"]),
        assignee_id=row["assignee_id"],
        team_id=row["team_id"],
        tags=tuple(json.loads(row["tags"])),
        created_at=from_micros(row["created_at"]),
        updated_at=from_micros(row["updated_at"]),
        last_message_at=from_micros(row["last_message_at"]),
        last_inbound_at=from_micros(row["last_inbound_at"]),
        first_response_at=from_micros(row["first_response_at"]),
        waiting_since=from_micros(row["waiting_since"]),
        snoozed_until=from_micros(row["snoozed_until"]),
        resolved_at=from_micros(row["resolved_at"]),
    )


def message_values(m: Message) -> tuple[Any, ...]:
    return (
        m.id,
        m.conversation_id,
        m.channel_id,
        str(m.direction),
        str(m.kind),
        m.text,
        m.html,
        m.author_id,
        json.dumps([_attachment_dict(a) for a in m.attachments]),
        m.external_id,
        m.idempotency_key,
        m.delivery_status and str(m.delivery_status),
        m.delivery_error,
        json.dumps(dict(m.extras)),
        to_micros(m.created_at),
    )


def _attachment_dict(a: Attachment) -> dict[str, Any]:
    return {
        "filename": a.filename,
        "content_type": a.content_type,
        "size": a.size,
        "sha256": a.sha256,
        "inline": a.inline,
        "content_id": a.content_id,
    }


def message_from_row(row: sqlite3.Row) -> Message:
    return Message(
        id=row["id"],
        conversation_id=row["conversation_id"],
        channel_id=row["channel_id"],
        direction=Direction(row["direction"]),
        kind=MessageKind(row["kind"]),
        text=row["text"],
        html=row["html"],
        author_id=row["author_id"],
        attachments=tuple(Attachment(**a) for a in json.loads(row["attachments"])),
        external_id=row["external_id"],
        idempotency_key=row["idempotency_key"],
        delivery_status=row["delivery_status"] and DeliveryStatus(row["delivery_status"]),
        delivery_error=row["delivery_error"],
        extras=json.loads(row["extras"]),
        created_at=from_micros(row["created_at"]),
    )


def operator_values(o: Operator) -> tuple[Any, ...]:
    return (
        o.id,
        o.email,
        o.name,
        str(o.role),
        str(o.presence),
        int(o.focus_mode),
        o.max_open,
        json.dumps(list(o.teams)),
        o.password_hash,
        o.locale,
        o.time_zone,
    )


def operator_from_row(row: sqlite3.Row) -> Operator:
    return Operator(
        id=row["id"],
        email=row["email"],
        name=row["name"],
        role=Role(row["role"]),
        presence=Presence(row["presence"]),
        focus_mode=bool(row["focus_mode"]),
        max_open=row["max_open"],
        teams=tuple(json.loads(row["teams"])),
        password_hash=row["password_hash"],
        locale=row["locale"],
        time_zone=row["time_zone"],
        created_at=from_micros(row["created_at"]),
    )


def session_from_row(row: sqlite3.Row) -> Session:
    return Session(
        id=row["id"],
        operator_id=row["operator_id"],
        csrf_token=row["csrf_token"],
        created_at=timestamps.from_micros(row["created_at"]),
        expires_at=timestamps.from_micros(row["expires_at"]),
        last_seen_at=timestamps.from_micros(row["last_seen_at"]),
    )


def channel_from_row(row: sqlite3.Row) -> Channel:
    return Channel(
        id=row["id"],
        kind=row["kind"],
        name=row["name"],
        settings=json.loads(row["settings"]),
        created_at=from_micros(row["created_at"]),
    )


def outbox_from_row(row: sqlite3.Row) -> OutboxItem:
    return OutboxItem(
        id=row["id"],
        message_id=row["message_id"],
        channel_id=row["channel_id"],
        attempts=row["attempts"],
        next_attempt_at=from_micros(row["next_attempt_at"]),
        last_error=row["last_error"],
        created_at=from_micros(row["created_at"]),
    )


def timer_from_row(row: sqlite3.Row) -> Timer:
    return Timer(
        id=row["id"],
        kind=row["kind"],
        conversation_id=row["conversation_id"],
        due_at=from_micros(row["due_at"]),
        payload=json.loads(row["payload"]),
    )


def unparsed_from_row(row: sqlite3.Row) -> Unparsed:
    return Unparsed(
        id=row["id"],
        channel_id=row["channel_id"],
        external_id=row["external_id"],
        source=row["source"],
        reason=row["reason"],
        raw_sha256=row["raw_sha256"],
        size=row["size"],
        created_at=from_micros(row["created_at"]),
    )


def page_of(items: list[Any], limit: int, position: Callable[[Any], Cursor]) -> Page[Any]:
    """``items`` holds up to ``limit + 1`` rows; the extra one only tells that another page follows."""
    if limit < 1:
        return Page([], None)
    if len(items) > limit:
        items = items[:limit]
        return Page(items, position(items[-1]).encode())
    return Page(items, None)
