"""Every filter, update and sort the MongoDB adapter sends, as pure functions.

Pure so they are tested without a server, and in one place so one reading checks the rules that
keep user input out of operator position:

* A user's value only ever sits in value position — ``{"field": value}`` or under an operator
  chosen here (``$eq``, ``$in``, ``$lt``, ``$regex`` of an escaped text). Values are coerced with
  :func:`str`, so even a mapping that slipped past the web layer is a literal string, never an
  operator document. Aggregation expressions, where ``"$x"`` would name a field, hold none.
* Filters name ``$type: "string"`` where a partial unique index does, so the index is used and
  a missing value never matches (SQLite's ``= NULL`` matches nothing either).

Document shapes (what is stored, and why so) are in :mod:`storage.mongo.documents`.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from inbox.domain import Conversation, ConversationStatus, DeliveryStatus, Identity, MessageKind, Operator, Timer
from storage.base import UNASSIGNED, ConversationFilter, Cursor
from storage.mongo.documents import conversation_fields, email_key, identity_key, micros, operator_fields
from storage.mongo.search import contains_pattern, terms_condition

__all__ = [
    "CHANNEL_ORDER",
    "CONTACT_ORDER",
    "CONVERSATION_COUNTER",
    "CONVERSATION_ORDER",
    "COUNTER_START",
    "FIRST_NUMBER",
    "MESSAGE_ORDER",
    "NEXT_DUE_PIPELINE",
    "NEXT_NUMBER",
    "OPERATOR_ORDER",
    "OUTBOX_ORDER",
    "TextHits",
    "after",
    "auto_replies_filter",
    "by_id",
    "claim_filter",
    "FAILED_AGAIN_UPDATE",
    "REQUEUE_UPDATE",
    "claim_update",
    "failed_message_filter",
    "due_timers_filter",
    "fired_timer_filter",
    "routing_kind_filter",
    "routing_object_id",
    "timer_key_filter",
    "contact_conversations_filter",
    "contact_name_filter",
    "contacts_filter",
    "conversation_filter",
    "conversation_update",
    "external_id_filter",
    "finish_update",
    "identity_filter",
    "idempotency_filter",
    "matched_ids_pipeline",
    "messages_filter",
    "operator_by_email_filter",
    "operator_update",
    "retry_update",
    "secret_filter",
    "expired_sessions_filter",
    "sessions_of_filter",
    "session_touch_update",
    "thread_filter",
    "token_filter",
]

CONVERSATION_COUNTER = "conversation_number"
FIRST_NUMBER = 1001
"""Conversation numbers start here, as in SQLite (its counter row starts at 1000)."""
COUNTER_START: dict[str, Any] = {"$setOnInsert": {"value": FIRST_NUMBER - 1}}
"""Creates the counter at ``open()`` and leaves an existing one alone."""
NEXT_NUMBER: dict[str, Any] = {"$inc": {"value": 1}}

CONVERSATION_ORDER = [("last_message_at", -1), ("_id", -1)]
CONTACT_ORDER = [("created_at", -1), ("_id", -1)]
MESSAGE_ORDER = [("created_at", 1), ("_id", 1)]
CHANNEL_ORDER = [("created_at", 1), ("_id", 1)]
OPERATOR_ORDER = [("name", 1), ("_id", 1)]
OUTBOX_ORDER = [("next_attempt_at", 1), ("_id", 1)]

NEXT_DUE_PIPELINE: list[dict[str, Any]] = [
    {"$group": {"_id": None, "due": {"$min": {"$max": ["$next_attempt_at", "$leased_until"]}}}}
]


def _text(value: object) -> str | None:
    """A user's value as a literal string: a dict can never turn into an operator document."""
    return None if value is None else str(value)


# filters


def by_id(item_id: str) -> dict[str, Any]:
    return {"_id": _text(item_id)}


def _string_eq(value: object) -> dict[str, Any]:
    """Equality that never matches a missing or null field (SQLite's ``= NULL`` matches nothing)
    and states the ``$type`` the partial unique indexes are filtered on, so they are used."""
    return {"$eq": _text(value), "$type": "string"}


def secret_filter(secret_hash: str) -> dict[str, Any]:
    return {"secret_hash": _string_eq(secret_hash)}


def token_filter(token_hash: str) -> dict[str, Any]:
    return {"token_hash": _string_eq(token_hash)}


def operator_by_email_filter(email: str) -> dict[str, Any]:
    return {"email_key": email_key(email)}


def identity_filter(identity: Identity) -> dict[str, Any]:
    return {"identities": identity_key(identity)}


def external_id_filter(channel_id: str, external_id: str) -> dict[str, Any]:
    return {"channel_id": _text(channel_id), "external_id": _string_eq(external_id)}


def idempotency_filter(author_id: str, key: str) -> dict[str, Any]:
    return {"author_id": _string_eq(author_id), "idempotency_key": _string_eq(key)}


def after(cursor: Cursor, field: str, *, descending: bool) -> dict[str, Any]:
    """Keyset condition "past ``cursor``" in ``(field, _id)`` order — SQLite's row-value
    comparison ``(field, id) < (?, ?)`` spelled out."""
    op = "$lt" if descending else "$gt"
    value, item_id = int(cursor.sort_value), str(cursor.id)
    return {"$or": [{field: {op: value}}, {field: value, "_id": {op: item_id}}]}


def _all(query: dict[str, Any], conditions: list[dict[str, Any]]) -> dict[str, Any]:
    if conditions:
        query["$and"] = conditions
    return query


@dataclass(frozen=True, slots=True)
class TextHits:
    """What a text filter matched in other collections, looked up before the conversation query:
    conversations with a message containing the words, and contacts whose name contains the text."""

    conversation_ids: Sequence[str]
    contact_ids: Sequence[str]


def conversation_filter(
    where: ConversationFilter, cursor: Cursor | None = None, hits: TextHits | None = None
) -> dict[str, Any]:
    """The conversations ``where`` selects, past ``cursor`` in :data:`CONVERSATION_ORDER`.

    A ``where.text`` needs ``hits``; the subject is matched here, on the conversation itself.
    """
    query: dict[str, Any] = {}
    for field, value in (
        ("status", where.status),
        ("channel_id", where.channel_id),
        ("team_id", where.team_id),
        ("contact_id", where.contact_id),
    ):
        if value is not None:
            query[field] = _text(value)
    if where.assignee_id == UNASSIGNED:
        query["assignee_id"] = None
    elif where.assignee_id is not None:
        query["assignee_id"] = _text(where.assignee_id)
    if where.tag is not None:
        query["tags"] = _text(where.tag)  # equality with an array field: "has this tag"
    conditions: list[dict[str, Any]] = []
    if where.text:
        if hits is None:
            raise ValueError("a text filter needs the TextHits looked up for it")
        matches: list[dict[str, Any]] = [
            {"_id": {"$in": [str(i) for i in hits.conversation_ids]}},
            {"contact_id": {"$in": [str(i) for i in hits.contact_ids]}},
        ]
        subject = terms_condition("subject_terms", str(where.text))
        if subject is not None:
            matches.append(subject)
        conditions.append({"$or": matches})
    if cursor is not None:
        conditions.append(after(cursor, "last_message_at", descending=True))
    return _all(query, conditions)


def matched_ids_pipeline(text: str) -> list[dict[str, Any]] | None:
    """Ids of conversations with a message holding every word of ``text``; ``None`` when the
    text has no searchable word."""
    condition = terms_condition("terms", str(text))
    if condition is None:
        return None
    return [{"$match": condition}, {"$group": {"_id": "$conversation_id"}}]


def contact_name_filter(text: str) -> dict[str, Any]:
    return {"name": contains_pattern(str(text))}


def contacts_filter(text: str | None, cursor: Cursor | None = None) -> dict[str, Any]:
    conditions: list[dict[str, Any]] = []
    if text:
        pattern = contains_pattern(str(text))
        conditions.append({"$or": [{"name": pattern}, {"email": pattern}, {"phone": pattern}]})
    if cursor is not None:
        conditions.append(after(cursor, "created_at", descending=True))
    return _all({}, conditions)


def messages_filter(conversation_id: str, cursor: Cursor | None = None) -> dict[str, Any]:
    conditions = [] if cursor is None else [after(cursor, "created_at", descending=False)]
    return _all({"conversation_id": _text(conversation_id)}, conditions)


def auto_replies_filter(conversation_ids: Iterable[str], since: datetime | None = None) -> dict[str, Any]:
    query: dict[str, Any] = {
        "conversation_id": {"$in": [_text(c) for c in conversation_ids]},
        "kind": str(MessageKind.AUTO_REPLY),
    }
    if since is not None:
        query["created_at"] = {"$gte": micros(since)}
    return query


def contact_conversations_filter(contact_id: str) -> dict[str, Any]:
    return {"contact_id": _text(contact_id)}


def thread_filter(
    *,
    contact_id: str,
    channel_id: str,
    thread_keys: Iterable[str],
    resolved_since: datetime,
    participant: str | None = None,
    number: int | None = None,
) -> dict[str, Any]:
    found_by: list[dict[str, Any]] = [{"thread_keys": {"$in": [str(key) for key in thread_keys]}}]
    if number is not None:
        found_by.append({"number": int(number)})
    belongs: list[dict[str, Any]] = [{"contact_id": _text(contact_id)}]
    if participant is not None:
        belongs.append({"participants": _text(participant)})
    return {
        "channel_id": _text(channel_id),
        "$and": [
            {"$or": found_by},
            {"$or": belongs},
            {
                "$or": [
                    {"status": {"$ne": str(ConversationStatus.RESOLVED)}},
                    {"resolved_at": {"$gte": micros(resolved_since)}},
                ]
            },
        ],
    }


def routing_kind_filter(kind: str) -> dict[str, Any]:
    return {"kind": _text(kind)}


def routing_object_id(kind: str, object_id: str) -> str:
    """One collection holds every kind, so the kind is part of the id."""
    return f"{kind}:{object_id}"


def timer_key_filter(kind: str, conversation_id: str) -> dict[str, Any]:
    return {"kind": _text(kind), "conversation_id": _text(conversation_id)}


def fired_timer_filter(timer: Timer) -> dict[str, Any]:
    """The timer as it fired: not once it was moved."""
    return {**timer_key_filter(timer.kind, timer.conversation_id), "due_at": micros(timer.due_at)}


def due_timers_filter(now: datetime) -> dict[str, Any]:
    return {"due_at": {"$lte": micros(now)}}


def sessions_of_filter(operator_id: str, keep: str | None = None) -> dict[str, Any]:
    query: dict[str, Any] = {"operator_id": _text(operator_id)}
    if keep is not None:
        query["_id"] = {"$ne": _text(keep)}
    return query


def expired_sessions_filter(now: datetime) -> dict[str, Any]:
    return {"expires_at": {"$lte": micros(now)}}


REQUEUE_UPDATE: dict[str, Any] = {"$set": {"delivery_status": "queued", "delivery_error": None}}
FAILED_AGAIN_UPDATE: dict[str, Any] = {"$set": {"delivery_status": "failed"}}


def failed_message_filter(message_id: str) -> dict[str, Any]:
    return {"_id": _text(message_id), "delivery_status": "failed"}


def claim_filter(now: datetime, exclude: Iterable[str] = ()) -> dict[str, Any]:
    """Jobs due and not leased at ``now``; ``exclude`` keeps one claiming pass from taking a job
    twice when the caller's lease ends no later than ``now``."""
    now_us = micros(now)
    query: dict[str, Any] = {"next_attempt_at": {"$lte": now_us}, "leased_until": {"$lte": now_us}}
    excluded = list(exclude)
    if excluded:
        query["_id"] = {"$nin": excluded}
    return query


# updates


def session_touch_update(last_seen_at: datetime, expires_at: datetime) -> dict[str, Any]:
    return {"$set": {"last_seen_at": micros(last_seen_at), "expires_at": micros(expires_at)}}


def claim_update(lease_until: datetime) -> dict[str, Any]:
    return {"$set": {"leased_until": micros(lease_until)}}


def retry_update(next_attempt_at: datetime, error: str) -> dict[str, Any]:
    return {
        "$inc": {"attempts": 1},
        "$set": {"next_attempt_at": micros(next_attempt_at), "leased_until": 0, "last_error": _text(error)},
    }


def finish_update(status: DeliveryStatus, error: str | None, external_id: str | None) -> dict[str, Any]:
    """``delivery_external_id`` sits beside the JSON extras and is merged into them on reading,
    which is SQLite's ``json_set(extras, '$.delivery_external_id', ?)`` in one atomic update."""
    return {
        "$set": {
            "delivery_status": str(status),
            "delivery_error": _text(error),
            "delivery_external_id": _text(external_id),
        }
    }


def conversation_update(
    c: Conversation, thread_keys: Iterable[str] = (), participants: Iterable[str] = ()
) -> dict[str, Any]:
    """New state, added thread keys and participants in one single-document, hence atomic, update."""
    update: dict[str, Any] = {"$set": conversation_fields(c)}
    added = {
        name: {"$each": values}
        for name, values in (("thread_keys", _distinct(thread_keys)), ("participants", _distinct(participants)))
        if values
    }
    if added:
        update["$addToSet"] = added
    return update


def _distinct(values: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(str(value) for value in values))


def operator_update(o: Operator) -> dict[str, Any]:
    """Everything but the id, token and creation time, which ``save_operator`` leaves alone."""
    return {"$set": operator_fields(o)}
