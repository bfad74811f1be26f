"""The collections and indexes of the MongoDB adapter: its schema, created at ``open()``.

``create_indexes`` is idempotent for an unchanged definition, so every start applies this list.
Changing an index's options under the same keys makes the server refuse (``IndexOptionsConflict``)
rather than silently keep the old one: add a new index and drop the old one in a migration step.

The unique indexes carry the product's promises (nothing stored twice): a message's
``(channel_id, external_id)`` and ``(author_id, idempotency_key)``, a contact identity, an operator's
email (folded like SQLite's ``COLLATE NOCASE``) and token, a channel's secret. Where SQLite lets
several rows hold NULL, the MongoDB index is partial on ``$type: "string"`` (or ``$exists``),
because a plain unique index would count missing values as one duplicated null.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from pymongo import ASCENDING, DESCENDING, IndexModel

__all__ = [
    "CHANNELS",
    "CONTACTS",
    "CONVERSATIONS",
    "COUNTERS",
    "INDEXES",
    "MESSAGES",
    "OPERATORS",
    "OUTBOX",
    "ROUTING_OBJECTS",
    "SESSIONS",
    "SYNC_STATE",
    "TIMERS",
    "UNPARSED",
]

CHANNELS = "channels"
OPERATORS = "operators"
CONTACTS = "contacts"
CONVERSATIONS = "conversations"
MESSAGES = "messages"
OUTBOX = "outbox"
COUNTERS = "counters"
UNPARSED = "unparsed"
SYNC_STATE = "sync_state"
ROUTING_OBJECTS = "routing_objects"
TIMERS = "timers"
SESSIONS = "sessions"

_STRING = {"$type": "string"}
_NEWEST = [("last_message_at", DESCENDING), ("_id", DESCENDING)]


def _by(field: str) -> IndexModel:
    """A conversation filter field, then newest activity first: filter and sort from one index."""
    return IndexModel([(field, ASCENDING), *_NEWEST], name=f"{field}_by_activity")


INDEXES: Mapping[str, Sequence[IndexModel]] = {
    UNPARSED: [
        IndexModel([("channel_id", ASCENDING), ("external_id", ASCENDING)], name="external_id_unique", unique=True),
        IndexModel([("created_at", DESCENDING), ("_id", DESCENDING)], name="newest_first"),
    ],
    CHANNELS: [
        IndexModel(
            [("secret_hash", ASCENDING)],
            name="secret_hash_unique",
            unique=True,
            partialFilterExpression={"secret_hash": _STRING},
        ),
        IndexModel([("created_at", ASCENDING), ("_id", ASCENDING)], name="by_created"),
    ],
    OPERATORS: [
        IndexModel([("email_key", ASCENDING)], name="email_unique", unique=True),
        IndexModel([("token_hash", ASCENDING)], name="token_hash_unique", unique=True),
        IndexModel([("name", ASCENDING), ("_id", ASCENDING)], name="by_name"),
    ],
    CONTACTS: [
        IndexModel(
            [("identities", ASCENDING)],
            name="identities_unique",
            unique=True,
            partialFilterExpression={"identities": {"$exists": True}},
        ),
        IndexModel([("created_at", DESCENDING), ("_id", DESCENDING)], name="by_created"),
    ],
    CONVERSATIONS: [
        IndexModel([("number", ASCENDING)], name="number_unique", unique=True),
        IndexModel(_NEWEST, name="by_activity"),
        *(_by(field) for field in ("status", "assignee_id", "channel_id", "team_id", "contact_id", "tags")),
        IndexModel([("thread_keys", ASCENDING)], name="thread_keys"),
        IndexModel([("participants", ASCENDING)], name="participants"),
        IndexModel([("subject_terms", ASCENDING)], name="subject_terms"),
    ],
    MESSAGES: [
        IndexModel(
            [("channel_id", ASCENDING), ("external_id", ASCENDING)],
            name="external_id_unique",
            unique=True,
            partialFilterExpression={"external_id": _STRING},
        ),
        # SQLite's unique index treats a NULL author as distinct, so only string pairs count here.
        IndexModel(
            [("author_id", ASCENDING), ("idempotency_key", ASCENDING)],
            name="idempotency_key_unique",
            unique=True,
            partialFilterExpression={"author_id": _STRING, "idempotency_key": _STRING},
        ),
        IndexModel(
            [("conversation_id", ASCENDING), ("created_at", ASCENDING), ("_id", ASCENDING)], name="by_conversation"
        ),
        IndexModel([("terms", ASCENDING)], name="terms"),
    ],
    ROUTING_OBJECTS: [IndexModel([("kind", ASCENDING), ("position", ASCENDING), ("id", ASCENDING)], name="by_kind")],
    TIMERS: [
        IndexModel([("kind", ASCENDING), ("conversation_id", ASCENDING)], name="kind_conversation_unique", unique=True),
        IndexModel([("due_at", ASCENDING), ("_id", ASCENDING)], name="by_due"),
    ],
    SESSIONS: [
        IndexModel([("operator_id", ASCENDING)], name="by_operator"),
        IndexModel([("expires_at", ASCENDING)], name="by_expiry"),
    ],
    OUTBOX: [
        IndexModel([("next_attempt_at", ASCENDING), ("_id", ASCENDING)], name="by_due"),
        IndexModel([("message_id", ASCENDING)], name="message_id_unique", unique=True),
    ],
}
