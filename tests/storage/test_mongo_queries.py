"""The MongoDB adapter's pure parts, without a server: filters, updates, document round trips,
search terms (checked against SQLite's own FTS5 tokenizer) and error mapping.

The adapter against a real server is covered by the contract suite (``INBOX_TEST_MONGODB_URL``).
"""

from __future__ import annotations

import re
import sqlite3
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from bson.errors import InvalidDocument
from pymongo.errors import AutoReconnect, DuplicateKeyError, OperationFailure, ServerSelectionTimeoutError

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
    Timer,
)
from inbox.errors import Conflict, StorageError, Unavailable, ValidationError
from storage import open_store
from storage.base import UNASSIGNED, ConversationFilter, Cursor
from storage.mongo import MongoStore
from storage.mongo import documents as docs
from storage.mongo import queries as q
from storage.mongo.errors import mapped_errors
from storage.mongo.indexes import INDEXES
from storage.mongo.search import MAX_TERM_LENGTH, contains_pattern, search_terms, terms_condition, tokens

T0 = datetime(2026, 1, 5, 9, 0, 0, 123457, tzinfo=UTC)

OUR_OPERATORS = {
    "$and",
    "$or",
    "$in",
    "$nin",
    "$lt",
    "$lte",
    "$gt",
    "$gte",
    "$ne",
    "$eq",
    "$type",
    "$regex",
    "$options",
}


def _operator_keys(value: Any) -> set[str]:
    """Every ``$``-key anywhere in a query: the set a user must never be able to add to."""
    found: set[str] = set()
    if isinstance(value, dict):
        for key, inner in value.items():
            if key.startswith("$"):
                found.add(key)
            found |= _operator_keys(inner)
    elif isinstance(value, list):
        for inner in value:
            found |= _operator_keys(inner)
    return found


def _conversation(**changes: Any) -> Conversation:
    conversation = Conversation(
        id="c1",
        number=1001,
        channel_id="ch",
        contact_id="ct",
        subject="Заказ №5",
        status=ConversationStatus.SNOOZED,
        priority=Priority.URGENT,
        assignee_id="op",
        team_id="t",
        tags=("vip", "доставка"),
        created_at=T0,
        updated_at=T0 + timedelta(microseconds=1),
        last_message_at=T0 + timedelta(seconds=2),
        last_inbound_at=T0 + timedelta(seconds=1),
        first_response_at=T0 + timedelta(seconds=3),
        waiting_since=T0 + timedelta(microseconds=999_999),
        snoozed_until=T0 + timedelta(days=1),
        resolved_at=None,
    )
    return replace(conversation, **changes)


def _message(**changes: Any) -> Message:
    message = Message(
        id="m1",
        conversation_id="c1",
        channel_id="ch",
        direction=Direction.OUT,
        kind=MessageKind.MESSAGE,
        text="Посылка ПОВРЕЖДЕНА",
        html="<p>x</p>",
        author_id="op",
        attachments=(
            Attachment(
                filename="счёт.pdf",
                content_type="application/pdf",
                size=10,
                sha256="ab" * 32,
                inline=True,
                content_id="cid-1",
            ),
        ),
        external_id=None,
        idempotency_key="k1",
        delivery_status=DeliveryStatus.QUEUED,
        extras={"b": [1, 2], "a": {"nested": True}},
        created_at=T0,
    )
    return replace(message, **changes)


# conversation filters


def test_no_filter_selects_every_conversation() -> None:
    assert q.conversation_filter(ConversationFilter()) == {}


@pytest.mark.parametrize(
    ("where", "field", "value"),
    [
        (ConversationFilter(status=ConversationStatus.PENDING), "status", "pending"),
        (ConversationFilter(assignee_id="op-1"), "assignee_id", "op-1"),
        (ConversationFilter(channel_id="ch-1"), "channel_id", "ch-1"),
        (ConversationFilter(team_id="t1"), "team_id", "t1"),
        (ConversationFilter(contact_id="ct-1"), "contact_id", "ct-1"),
        (ConversationFilter(tag="доставка"), "tags", "доставка"),
    ],
)
def test_each_filter_field_is_an_equality_on_its_field(where: ConversationFilter, field: str, value: str) -> None:
    query = q.conversation_filter(where)
    assert query == {field: value}
    assert type(query[field]) is str  # the enum is stored and compared as its plain value


def test_unassigned_selects_a_null_assignee() -> None:
    assert q.conversation_filter(ConversationFilter(assignee_id=UNASSIGNED)) == {"assignee_id": None}


def test_filters_combine() -> None:
    where = ConversationFilter(status=ConversationStatus.OPEN, channel_id="ch", tag="vip")
    assert q.conversation_filter(where) == {"status": "open", "channel_id": "ch", "tags": "vip"}


def test_cursor_continues_newest_first_after_the_last_item() -> None:
    where = ConversationFilter(status=ConversationStatus.OPEN)
    query = q.conversation_filter(where, Cursor(1_700_000, "01abc"))
    assert query == {
        "status": "open",
        "$and": [
            {"$or": [{"last_message_at": {"$lt": 1_700_000}}, {"last_message_at": 1_700_000, "_id": {"$lt": "01abc"}}]}
        ],
    }


def test_cursor_decoded_from_its_text_gives_the_same_condition() -> None:
    position = Cursor(docs.micros(T0), "01xyz")
    decoded = Cursor.decode(position.encode())
    assert q.after(decoded, "f", descending=True) == q.after(position, "f", descending=True)


def test_cursors_with_booleans_or_out_of_range_numbers_are_refused() -> None:
    # JSON ``true`` would reach BSON as a boolean (comparing with nothing stored); 10**30 overflows
    # both BSON and SQLite integers. Cursor.decode refuses them before any query is built.
    for sort_value in (True, -1, 2**63, 10**30):
        with pytest.raises(ValidationError):
            Cursor.decode(Cursor(sort_value, "x").encode())
    assert Cursor.decode(Cursor(2**63 - 1, "x").encode()) == Cursor(2**63 - 1, "x")


def test_messages_continue_oldest_first() -> None:
    assert q.messages_filter("c1", Cursor(5, "m9")) == {
        "conversation_id": "c1",
        "$and": [{"$or": [{"created_at": {"$gt": 5}}, {"created_at": 5, "_id": {"$gt": "m9"}}]}],
    }
    assert q.messages_filter("c1") == {"conversation_id": "c1"}


def test_auto_replies_are_a_conversations_auto_reply_messages_since_a_moment() -> None:
    since = datetime(2026, 3, 1, tzinfo=UTC)
    smuggled: Any = {"$ne": None}
    assert q.auto_replies_filter(["c1", smuggled], since) == {
        "conversation_id": {"$in": ["c1", "{'$ne': None}"]},
        "kind": "auto_reply",
        "created_at": {"$gte": docs.micros(since)},
    }
    assert q.auto_replies_filter(["c1"]) == {"conversation_id": {"$in": ["c1"]}, "kind": "auto_reply"}
    assert q.contact_conversations_filter(smuggled) == {"contact_id": "{'$ne': None}"}


def test_a_fired_timer_is_deleted_only_as_it_fired() -> None:
    due = datetime(2026, 3, 1, tzinfo=UTC)
    timer = Timer(id="t1", kind="no_answer", conversation_id="c1", due_at=due)
    assert q.fired_timer_filter(timer) == {"kind": "no_answer", "conversation_id": "c1", "due_at": docs.micros(due)}


@pytest.mark.parametrize("hostile", ["$ne", "$where", "$gt", "$regex"])
def test_dollar_strings_stay_plain_values(hostile: str) -> None:
    where = ConversationFilter(
        tag=hostile, assignee_id=hostile, channel_id=hostile, team_id=hostile, contact_id=hostile
    )
    query = q.conversation_filter(where)
    assert query == {
        "tags": hostile,
        "assignee_id": hostile,
        "channel_id": hostile,
        "team_id": hostile,
        "contact_id": hostile,
    }
    assert not any(key.startswith("$") for key in query)


def test_an_operator_document_smuggled_in_becomes_a_string() -> None:
    smuggled: Any = {"$ne": None}
    query = q.conversation_filter(ConversationFilter(tag=smuggled, channel_id=smuggled))
    assert query == {"tags": "{'$ne': None}", "channel_id": "{'$ne': None}"}
    assert _operator_keys(query) == set()
    assert q.by_id(smuggled) == {"_id": "{'$ne': None}"}
    assert _operator_keys(q.external_id_filter(smuggled, smuggled)) <= {"$eq", "$type"}


def test_hostile_text_adds_no_operator_of_its_own() -> None:
    text = '$where {"$gt": ""} .* (a|b'
    hits = q.TextHits(["c1"], ["ct1"])
    query = q.conversation_filter(ConversationFilter(text=text), Cursor(1, "x"), hits)
    assert _operator_keys(query) <= OUR_OPERATORS
    assert _operator_keys(q.contacts_filter(text, Cursor(1, "x"))) <= OUR_OPERATORS


def test_text_needs_the_hits_looked_up_first() -> None:
    with pytest.raises(ValueError):
        q.conversation_filter(ConversationFilter(text="заказ"))


def test_text_matches_a_message_a_contact_name_or_the_subject() -> None:
    query = q.conversation_filter(
        ConversationFilter(text="Заказ", status=ConversationStatus.OPEN), None, q.TextHits(["c1", "c2"], ["ct9"])
    )
    assert query == {
        "status": "open",
        "$and": [
            {
                "$or": [
                    {"_id": {"$in": ["c1", "c2"]}},
                    {"contact_id": {"$in": ["ct9"]}},
                    {"subject_terms": {"$regex": "^заказ"}},
                ]
            }
        ],
    }


def test_text_without_a_searchable_word_still_matches_contact_names() -> None:
    query = q.conversation_filter(ConversationFilter(text="("), None, q.TextHits([], ["ct1"]))
    assert query == {"$and": [{"$or": [{"_id": {"$in": []}}, {"contact_id": {"$in": ["ct1"]}}]}]}
    assert q.matched_ids_pipeline("(") is None


def test_matched_ids_pipeline_groups_messages_by_conversation() -> None:
    assert q.matched_ids_pipeline("поврежд") == [
        {"$match": {"terms": {"$regex": "^поврежд"}}},
        {"$group": {"_id": "$conversation_id"}},
    ]


def test_contact_search_treats_like_wildcards_and_regex_syntax_literally() -> None:
    query = q.contacts_filter("%_")
    pattern = query["$and"][0]["$or"][0]["name"]
    assert pattern["$options"] == "i"
    assert [f for c in query["$and"][0]["$or"] for f in c] == ["name", "email", "phone"]
    regex = re.compile(pattern["$regex"], re.IGNORECASE)
    assert regex.search("100%_literal") and not regex.search("Клиент 1")
    dot = re.compile(contains_pattern("a.c")["$regex"])
    assert dot.search("xa.cx") and not dot.search("abc")
    assert re.compile(contains_pattern("(a|b")["$regex"]).search("x(a|by")


def test_contact_search_spells_nul_as_an_escape() -> None:
    pattern = contains_pattern("a\x00b")["$regex"]
    assert "\x00" not in pattern and re.search(pattern, "za\x00bz")


def test_contacts_without_text_page_by_creation_newest_first() -> None:
    assert q.contacts_filter(None) == {}
    assert q.contacts_filter("", Cursor(7, "x")) == {
        "$and": [{"$or": [{"created_at": {"$lt": 7}}, {"created_at": 7, "_id": {"$lt": "x"}}]}]
    }


def test_thread_filter_wants_a_shared_key_and_an_open_or_recent_conversation() -> None:
    query = q.thread_filter(contact_id="ct", channel_id="ch", thread_keys=("zzz", "k1"), resolved_since=T0)
    assert query == {
        "channel_id": "ch",
        "$and": [
            {"$or": [{"thread_keys": {"$in": ["zzz", "k1"]}}]},
            {"$or": [{"contact_id": "ct"}]},
            {"$or": [{"status": {"$ne": "resolved"}}, {"resolved_at": {"$gte": docs.micros(T0)}}]},
        ],
    }


def test_thread_filter_admits_a_participant_and_a_quoted_number() -> None:
    query = q.thread_filter(
        contact_id="ct", channel_id="ch", thread_keys=(), resolved_since=T0, participant="email:b@x", number=1042
    )
    assert query["$and"][0] == {"$or": [{"thread_keys": {"$in": []}}, {"number": 1042}]}
    assert query["$and"][1] == {"$or": [{"contact_id": "ct"}, {"participants": "email:b@x"}]}


def test_lookups_by_unique_strings_never_match_a_missing_value() -> None:
    assert q.external_id_filter("ch", "e1") == {"channel_id": "ch", "external_id": {"$eq": "e1", "$type": "string"}}
    assert q.idempotency_filter("op", "k") == {
        "author_id": {"$eq": "op", "$type": "string"},
        "idempotency_key": {"$eq": "k", "$type": "string"},
    }
    assert q.secret_filter(None) == {"secret_hash": {"$eq": None, "$type": "string"}}  # type: ignore[arg-type]
    assert q.token_filter("t") == {"token_hash": {"$eq": "t", "$type": "string"}}


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("Anna@Example.com", "anna@example.com"),
        ("ÄNNA@x.de", "änna@x.de"),
        ("Ivan@X.RU", "ivan@x.ru"),
        ("ИРИНА@x.ru", "ирина@x.ru"),
        ("a@b", "a@c"),
    ],
)
def test_emails_are_the_same_exactly_when_sqlite_nocase_says_so(a: str, b: str) -> None:
    (same,) = sqlite3.connect(":memory:").execute("SELECT ? = ? COLLATE NOCASE", (a, b)).fetchone()
    assert (docs.email_key(a) == docs.email_key(b)) is bool(same)
    assert q.operator_by_email_filter(a) == {"email_key": docs.email_key(a)}


# outbox


def test_claim_takes_due_unleased_jobs_and_skips_those_already_taken() -> None:
    now = docs.micros(T0)
    assert q.claim_filter(T0) == {"next_attempt_at": {"$lte": now}, "leased_until": {"$lte": now}}
    assert q.claim_filter(T0, ["j1", "j2"])["_id"] == {"$nin": ["j1", "j2"]}
    assert q.claim_update(T0 + timedelta(minutes=1)) == {"$set": {"leased_until": now + 60_000_000}}


def test_retry_counts_the_attempt_and_releases_the_lease() -> None:
    assert q.retry_update(T0, "boom") == {
        "$inc": {"attempts": 1},
        "$set": {"next_attempt_at": docs.micros(T0), "leased_until": 0, "last_error": "boom"},
    }


def test_finish_merges_the_remote_id_into_the_extras_like_json_set() -> None:
    document = docs.message_document(_message())
    document.update(q.finish_update(DeliveryStatus.DELIVERED, None, "remote-9")["$set"])
    finished = docs.message_from_document(document)
    assert finished.delivery_status is DeliveryStatus.DELIVERED and finished.delivery_error is None
    assert list(finished.extras.items()) == [
        ("b", [1, 2]),
        ("a", {"nested": True}),
        ("delivery_external_id", "remote-9"),
    ]
    failed = docs.message_document(_message(extras={"delivery_external_id": "old"}))
    failed.update(q.finish_update(DeliveryStatus.FAILED, "bounced", None)["$set"])
    assert docs.message_from_document(failed).extras == {"delivery_external_id": None}


# documents ↔ domain values


def test_timestamps_survive_to_the_microsecond_in_any_zone() -> None:
    for moment in (
        T0,
        datetime(1969, 12, 31, 23, 59, 59, 999_999, tzinfo=UTC),
        datetime(2026, 3, 1, 12, 0, 0, 1, tzinfo=timezone(timedelta(hours=3))),
    ):
        stored = docs.micros(moment)
        assert type(stored) is int and docs.moment(stored) == moment
        assert docs.moment(stored).tzinfo is UTC
    assert docs.micros(datetime(1970, 1, 1, 0, 0, 1, tzinfo=UTC)) == 1_000_000
    assert docs.micros(datetime(1970, 1, 1, 0, 0, 1)) == 1_000_000  # naive is UTC, as in SQLite


def test_conversation_round_trip() -> None:
    conversation = _conversation()
    document = docs.conversation_document(conversation, ["k1", "k2", "k1"])
    assert document["_id"] == "c1" and document["thread_keys"] == ["k1", "k2"]
    assert document["subject_terms"] == ["заказ", "5"]
    assert document["waiting_since"] == docs.micros(T0) + 999_999
    assert docs.conversation_from_document(document) == conversation
    resolved = _conversation(status=ConversationStatus.RESOLVED, resolved_at=T0, subject=None, tags=())
    back = docs.conversation_from_document(docs.conversation_document(resolved))
    assert back == resolved
    assert back.status is ConversationStatus.RESOLVED and back.priority is Priority.URGENT


def test_conversation_update_writes_state_and_adds_thread_keys_at_once() -> None:
    update = q.conversation_update(_conversation(), ["a", "b", "a"], ["email:c@x", "email:c@x"])
    assert update["$addToSet"] == {
        "thread_keys": {"$each": ["a", "b"]},
        "participants": {"$each": ["email:c@x"]},
    }
    assert update["$set"]["tags"] == ["vip", "доставка"]
    # the subject's search terms stay those of creation, as SQLite's FTS row does
    assert not {"_id", "number", "created_at", "thread_keys", "subject_terms"} & set(update["$set"])
    assert q.conversation_update(_conversation()) == {"$set": docs.conversation_fields(_conversation())}


def test_message_round_trip() -> None:
    message = _message()
    document = docs.message_document(message)
    assert isinstance(document["extras"], str)  # outside keys never become field names
    assert document["terms"] == ["посылка", "повреждена"]
    back = docs.message_from_document(document)
    assert back == message
    assert back.direction is Direction.OUT and back.kind is MessageKind.MESSAGE
    assert back.delivery_status is DeliveryStatus.QUEUED and back.attachments[0].inline is True
    inbound = _message(direction=Direction.IN, delivery_status=None, html=None, attachments=(), extras={})
    assert docs.message_from_document(docs.message_document(inbound)) == inbound


def test_contact_round_trip_orders_identities_and_omits_none() -> None:
    contact = Contact(
        id="ct",
        name="Пётр",
        email="p@x.ru",
        phone="+7",
        created_at=T0,
        attributes={"$where": 1, "a.b": [2]},
        identities=(
            Identity(channel_kind="telegram", external_id="42"),
            Identity(channel_kind="email", external_id="p@x.ru"),
        ),
    )
    document = docs.contact_document(contact)
    assert isinstance(document["attributes"], str)
    back = docs.contact_from_document(document)
    assert back.identities == (
        Identity(channel_kind="email", external_id="p@x.ru"),
        Identity(channel_kind="telegram", external_id="42"),
    )
    assert back == replace(contact, identities=back.identities)
    lonely = Contact(id="c2", name=None, created_at=T0)
    assert "identities" not in docs.contact_document(lonely)  # the unique index is partial on $exists
    assert docs.contact_from_document(docs.contact_document(lonely)) == lonely


def test_identity_keys_cannot_collide_through_a_separator() -> None:
    a = Identity(channel_kind="email", external_id="x:y")
    b = Identity(channel_kind="email:x", external_id="y")
    assert docs.identity_key(a) != docs.identity_key(b)
    assert q.identity_filter(a) == {"identities": docs.identity_key(a)}


def test_operator_round_trip() -> None:
    operator = Operator(
        id="op",
        email="Anna@Example.com",
        name="Anna",
        role=Role.SUPERVISOR,
        presence=Presence.AWAY,
        focus_mode=True,
        max_open=3,
        teams=("billing",),
        password_hash="$argon2id$v=19$x",
        created_at=T0,
    )
    document = docs.operator_document(operator, "tok")
    assert document["email_key"] == "anna@example.com" and document["token_hash"] == "tok"
    back = docs.operator_from_document(document)
    assert back == operator and back.role is Role.SUPERVISOR and back.presence is Presence.AWAY
    update = q.operator_update(replace(operator, email="NEW@x.io"))["$set"]
    assert update["email_key"] == "new@x.io" and not {"_id", "token_hash", "created_at"} & set(update)


def test_channel_round_trip() -> None:
    channel = Channel(
        id="ch", kind="api", name="Магазин", settings={"$set": {"a.b": 1}, "url": "http://x"}, created_at=T0
    )
    document = docs.channel_document(channel, None)
    assert isinstance(document["settings"], str) and document["secret_hash"] is None
    assert docs.channel_from_document(document) == channel


def test_outbox_round_trip() -> None:
    item = OutboxItem(
        id="j",
        message_id="m",
        channel_id="ch",
        attempts=2,
        next_attempt_at=T0,
        last_error="boom",
        created_at=T0 - timedelta(microseconds=1),
    )
    document = docs.outbox_document(item)
    assert document["leased_until"] == 0
    assert docs.outbox_from_document(document) == item


# search terms, against SQLite's FTS5 (unicode61 remove_diacritics 2)

CORPUS = [
    "Посылка ПОВРЕЖДЕНА при доставке",
    "Где мой заказ? Заказ №5",
    "Café naïve Straße ÅNGSTRÖM",
    "foo-bar baz_qux 42x x²y",
    "Ёлка йогурт",
    "e\u0301clair İstanbul",
    "日本語テキスト and ١٢٣",
    "mail: ivan.petrov@example.com, +7 (999) 123-45-67",
    "Größe 5µm, ſtraße",
]


def _fts() -> sqlite3.Connection:
    db = sqlite3.connect(":memory:")
    db.execute("CREATE VIRTUAL TABLE s USING fts5(text, tokenize = 'unicode61 remove_diacritics 2')")
    db.execute("CREATE VIRTUAL TABLE v USING fts5vocab(s, 'instance')")
    db.executemany("INSERT INTO s (rowid, text) VALUES (?, ?)", list(enumerate(CORPUS)))
    return db


def test_tokens_are_those_of_sqlite_fts5() -> None:
    db = _fts()
    for rowid, text in enumerate(CORPUS):
        theirs = [t for (t,) in db.execute("SELECT term FROM v WHERE doc = ? ORDER BY offset", (rowid,))]
        assert tokens(text) == theirs, text


def _holds(condition: dict[str, Any], terms: list[str]) -> bool:
    """MongoDB's reading of a terms condition on an array: some element equals / matches."""
    if "$and" in condition:
        return all(_holds(c, terms) for c in condition["$and"])
    ((_, wanted),) = condition.items()
    if isinstance(wanted, dict):
        return any(re.search(wanted["$regex"], term) for term in terms)
    return wanted in terms


@pytest.mark.parametrize(
    "query",
    [
        "поврежд",
        "ПОВРЕЖДЕНА",
        "заказ",
        "где заказ",
        "cafe",
        "naive",
        "straße",
        "angstrom",
        "foo-bar",
        "foo-ba",
        "qux",
        "x²",
        "елка",
        "ёлка",
        "eclair",
        "istanbul",
        "日本",
        "ivan.petrov",
        "123-45",
        "доставке нет",
        "5μm",
        "strasse",
        "(",
    ],
)
def test_search_finds_what_fts5_finds(query: str) -> None:
    db = _fts()
    match = " ".join('"' + w.replace('"', '""') + '"*' for w in query.split())
    theirs = sorted(rowid for (rowid,) in db.execute("SELECT rowid FROM s WHERE s MATCH ?", (match,)))
    condition = terms_condition("terms", query)
    ours = [i for i, text in enumerate(CORPUS) if condition and _holds(condition, search_terms(text))]
    assert ours == theirs


def test_tokens_of_one_word_need_not_be_adjacent_unlike_an_fts5_phrase() -> None:
    # The one known difference: "bar-foo" is the FTS5 phrase "bar" "foo"*, which text holding
    # "foo-bar" does not contain; the terms array only knows that both tokens occur.
    condition = terms_condition("terms", "bar-foo")
    assert condition is not None and _holds(condition, search_terms(CORPUS[3]))
    assert not _fts().execute("SELECT rowid FROM s WHERE s MATCH ?", ('"bar-foo"*',)).fetchall()


def test_terms_condition_shapes() -> None:
    assert terms_condition("terms", "Поврежд") == {"terms": {"$regex": "^поврежд"}}
    assert terms_condition("terms", "foo-bar baz") == {
        "$and": [{"terms": "foo"}, {"terms": {"$regex": "^bar"}}, {"terms": {"$regex": "^baz"}}]
    }
    assert terms_condition("terms", '"unbalanced AND (') == {
        "$and": [{"terms": {"$regex": "^unbalanced"}}, {"terms": {"$regex": "^and"}}]
    }
    assert terms_condition("terms", "  ( -- ") is None


def test_long_tokens_are_cut_the_same_way_when_stored_and_searched() -> None:
    blob = "A" * (MAX_TERM_LENGTH + 30)
    assert search_terms(f"{blob} x {blob}") == ["a" * MAX_TERM_LENGTH, "x"]
    assert terms_condition("terms", blob) == {"terms": "a" * MAX_TERM_LENGTH}
    assert search_terms(None) == [] and search_terms("") == []


# indexes


def _index(collection: str, name: str) -> dict[str, Any]:
    (model,) = [m for m in INDEXES[collection] if m.document["name"] == name]
    return dict(model.document)


def test_unique_indexes_leave_missing_values_out_like_sqlite_nulls() -> None:
    string = {"$type": "string"}
    assert _index("messages", "external_id_unique")["partialFilterExpression"] == {"external_id": string}
    assert _index("messages", "idempotency_key_unique")["partialFilterExpression"] == {
        "author_id": {"$type": "string"},
        "idempotency_key": {"$type": "string"},
    }
    assert _index("channels", "secret_hash_unique")["partialFilterExpression"] == {"secret_hash": string}
    assert _index("contacts", "identities_unique")["unique"] is True
    assert _index("operators", "email_unique")["key"] == {"email_key": 1}


def test_every_conversation_filter_has_an_index_that_also_sorts() -> None:
    keys = [list(m.document["key"].items()) for m in INDEXES["conversations"]]
    for field in ("status", "assignee_id", "channel_id", "team_id", "contact_id", "tags"):
        assert [(field, 1), ("last_message_at", -1), ("_id", -1)] in keys
    assert [list(q.CONVERSATION_ORDER)] == [k for k in keys if k == q.CONVERSATION_ORDER]


# errors


def test_duplicate_key_is_a_conflict_that_names_the_key_not_the_value() -> None:
    details = {"code": 11000, "keyPattern": {"email_key": 1}, "keyValue": {"email_key": "anna@example.com"}}
    with pytest.raises(Conflict) as caught, mapped_errors():
        raise DuplicateKeyError("E11000 duplicate key … anna@example.com", 11000, details)
    assert "email_key" in str(caught.value) and "anna@" not in str(caught.value)
    assert isinstance(caught.value.__cause__, DuplicateKeyError)


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (ServerSelectionTimeoutError("no servers"), Unavailable),
        (AutoReconnect("connection reset"), Unavailable),
        (OperationFailure("bad query", 2), StorageError),
        (InvalidDocument("too large"), StorageError),
    ],
)
def test_driver_errors_map_into_the_storage_tree(error: Exception, expected: type[StorageError]) -> None:
    with pytest.raises(StorageError) as caught, mapped_errors():
        raise error
    assert type(caught.value) is expected and caught.value.__cause__ is error


def test_other_errors_pass_through() -> None:
    with pytest.raises(KeyError), mapped_errors():
        raise KeyError("x")


# the adapter, where it needs no server


def test_mongodb_urls_open_the_mongo_adapter() -> None:
    store = open_store("mongodb://db.example:27017/helpdesk")
    assert isinstance(store, MongoStore) and store.url == "mongodb://db.example:27017/helpdesk"


async def test_a_closed_store_is_unavailable() -> None:
    store = MongoStore("mongodb://127.0.0.1:1/inbox")
    with pytest.raises(Unavailable):
        await store.ping()
    with pytest.raises(Unavailable):
        await store.get_channel("x")


async def test_opening_without_a_server_is_unavailable_quickly() -> None:
    store = MongoStore(
        "mongodb://127.0.0.1:1/inbox", client_kwargs={"serverSelectionTimeoutMS": 200, "connectTimeoutMS": 200}
    )
    with pytest.raises(Unavailable):
        await store.open()
    with pytest.raises(Unavailable):  # and it did not stay half open
        await store.ping()
    await store.close()
