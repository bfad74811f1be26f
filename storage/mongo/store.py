"""MongoDB adapter of the :class:`~storage.base.Store` port: several processes share one database.

Built on PyMongo's native async client (``pymongo.AsyncMongoClient``; motor is deprecated).
Document shapes are in :mod:`storage.mongo.documents`, every filter and update in
:mod:`storage.mongo.queries`, the indexes in :mod:`storage.mongo.indexes`, and driver errors are
translated in :func:`storage.mongo.errors.mapped_errors` only.

Atomicity. Multi-document transactions need a replica set or a sharded cluster. ``open()`` asks
the server (``hello``); where it can, the multi-document units of work (``append_message``,
``finish_outbox``) run in a transaction through ``with_transaction``, which also retries
transient write conflicts. On a standalone server the same steps run without one, in an order
that keeps the port's promises:

* ``append_message`` inserts the message first, so a duplicate (channel, external id) or
  (author, idempotency key) raises ``Conflict`` before anything else changes: redelivery stays
  a no-op. The conversation's new state and its added thread keys follow in one single-document
  write, then the outbox job. If a step fails, what this call inserted — or may have, when a
  connection was lost — is deleted again, message first, so the caller may simply retry; an
  existing conversation's overwritten activity fields stay (the retry writes them again).
* ``finish_outbox`` records the outcome on the message, then deletes the job: a crash between
  the two sends again (at least once) rather than never recording the outcome.
* ``create_contact`` is one insert (identities are embedded), atomic either way.
* ``claim_outbox`` leases one job per ``find_one_and_update``, atomic per document, so two
  dispatchers never hold the same job; it needs no transaction.

References: SQLite enforces foreign keys, so appending to a conversation that does not exist, or
creating one for an unknown channel or contact, is a ``Conflict`` there; the same reads here
make it a ``Conflict`` too (nothing is ever deleted, so the check cannot go stale).
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Awaitable, Callable, Collection, Mapping, Sequence
from dataclasses import replace
from datetime import datetime
from typing import Any, TypeVar

from pymongo import AsyncMongoClient, ReturnDocument
from pymongo.asynchronous.client_session import AsyncClientSession
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError, OperationFailure, PyMongoError

from inbox.domain import (
    Channel,
    Contact,
    Conversation,
    DeliveryStatus,
    Identity,
    Message,
    Operator,
    OutboxItem,
    Timer,
    Unparsed,
)
from inbox.domain import Session as OperatorSession  # ``Session`` here is the driver's client session
from inbox.errors import Conflict, NotFound, StorageError, Unavailable
from storage.base import ConversationFilter, Cursor, Page, Store
from storage.mongo import documents as docs
from storage.mongo import queries as q
from storage.mongo.errors import mapped_errors
from storage.mongo.indexes import (
    CHANNELS,
    CONTACTS,
    CONVERSATIONS,
    COUNTERS,
    INDEXES,
    MESSAGES,
    OPERATORS,
    OUTBOX,
    ROUTING_OBJECTS,
    SESSIONS,
    SYNC_STATE,
    TIMERS,
    UNPARSED,
)

__all__ = ["MongoStore"]

T = TypeVar("T")
Document = dict[str, Any]
Session = AsyncClientSession | None
Sort = list[tuple[str, int]]
Written = list[tuple[str, str]]
"""(collection, id) of what one ``append_message`` stored, or may have stored."""


def _supports_transactions(hello: Document) -> bool:
    replica_set = bool(hello.get("setName")) or hello.get("msg") == "isdbgrid"
    return replica_set and "logicalSessionTimeoutMinutes" in hello


class MongoStore(Store):
    """``url`` is a ``mongodb://`` or ``mongodb+srv://`` URL; its path names the database
    (``inbox`` when it has none) unless ``database`` is given. ``transactions`` overrides the
    detection at ``open()`` (``False`` exercises the standalone path on a replica set)."""

    def __init__(
        self,
        url: str,
        *,
        database: str | None = None,
        client_kwargs: dict[str, Any] | None = None,
        transactions: bool | None = None,
    ) -> None:
        self.url = url
        self._database_name = database
        self._client_kwargs: dict[str, Any] = {"serverSelectionTimeoutMS": 5000, **(client_kwargs or {})}
        self._transactions_setting = transactions
        self._transactions = False
        self._client: AsyncMongoClient[Document] | None = None
        self._db: AsyncDatabase[Document] | None = None

    # lifecycle

    async def open(self) -> None:
        if self._client is not None:
            return
        with mapped_errors():
            client: AsyncMongoClient[Document] = AsyncMongoClient(self.url, **self._client_kwargs)
        try:
            with mapped_errors():
                if self._database_name:
                    db = client.get_database(self._database_name)
                else:
                    db = client.get_default_database("inbox")
                try:
                    hello = await db.command("hello")
                except OperationFailure:  # servers before 4.2.10 / 4.4.2 know only isMaster
                    hello = {}
                for name, models in INDEXES.items():
                    await db[name].create_indexes(list(models))
                with contextlib.suppress(DuplicateKeyError):  # another process created it first
                    counter = q.by_id(q.CONVERSATION_COUNTER)
                    await db[COUNTERS].update_one(counter, q.COUNTER_START, upsert=True)
        except BaseException:
            await client.close()
            raise
        self._client, self._db = client, db
        setting = self._transactions_setting
        self._transactions = _supports_transactions(hello) if setting is None else setting

    async def close(self) -> None:
        if self._client is not None:
            client, self._client, self._db = self._client, None, None
            await client.close()

    async def ping(self) -> None:
        with mapped_errors():
            await self.db.command("ping")

    async def drop_database(self) -> None:
        """Drops this store's whole database: for test suites and tooling, never the service."""
        with mapped_errors():
            await self.client.drop_database(self.db.name)

    # plumbing

    @property
    def client(self) -> AsyncMongoClient[Document]:
        if self._client is None:
            raise Unavailable("store is not open")
        return self._client

    @property
    def db(self) -> AsyncDatabase[Document]:
        if self._db is None:
            raise Unavailable("store is not open")
        return self._db

    def _c(self, name: str) -> AsyncCollection[Document]:
        return self.db[name]

    async def _one(self, name: str, query: Document, convert: Callable[[Document], T]) -> T | None:
        with mapped_errors():
            document = await self._c(name).find_one(query)
        return None if document is None else convert(document)

    async def _get(self, name: str, item_id: str, what: str, convert: Callable[[Document], T]) -> T:
        found = await self._one(name, q.by_id(item_id), convert)
        if found is None:
            raise NotFound(f"{what} {item_id} not found")
        return found

    async def _all(self, name: str, query: Document, sort: Sort, convert: Callable[[Document], T]) -> list[T]:
        with mapped_errors():
            documents = await self._c(name).find(query, sort=sort).to_list(None)
        return [convert(document) for document in documents]

    async def _page(
        self,
        name: str,
        query: Document,
        sort: Sort,
        limit: int,
        convert: Callable[[Document], T],
        position: Callable[[T], Cursor],
    ) -> Page[T]:
        """One page in ``sort`` order; fetches one more to know whether another page follows."""
        if limit < 1:
            return Page([], None)
        with mapped_errors():
            documents = await self._c(name).find(query, sort=sort, limit=limit + 1).to_list(None)
        items = [convert(document) for document in documents]
        if len(items) > limit:
            items = items[:limit]
            return Page(items, position(items[-1]).encode())
        return Page(items, None)

    async def _atomic(self, work: Callable[[Session], Awaitable[T]]) -> T:
        """Runs ``work`` in a transaction where the deployment has them, else as it is (see the
        module docstring). Errors are mapped outside, so ``with_transaction`` still sees and
        retries the driver's transient ones."""
        with mapped_errors():
            if not self._transactions:
                return await work(None)
            async with self.client.start_session() as session:
                return await session.with_transaction(work)

    # channels

    async def create_channel(self, channel: Channel, secret_hash: str | None = None) -> None:
        with mapped_errors():
            await self._c(CHANNELS).insert_one(docs.channel_document(channel, secret_hash))

    async def get_channel(self, channel_id: str) -> Channel:
        return await self._get(CHANNELS, channel_id, "channel", docs.channel_from_document)

    async def channel_by_secret(self, secret_hash: str) -> Channel | None:
        return await self._one(CHANNELS, q.secret_filter(secret_hash), docs.channel_from_document)

    async def list_channels(self) -> list[Channel]:
        return await self._all(CHANNELS, {}, q.CHANNEL_ORDER, docs.channel_from_document)

    # operators

    async def create_operator(self, operator: Operator, token_hash: str) -> None:
        with mapped_errors():
            await self._c(OPERATORS).insert_one(docs.operator_document(operator, token_hash))

    async def get_operator(self, operator_id: str) -> Operator:
        return await self._get(OPERATORS, operator_id, "operator", docs.operator_from_document)

    async def operator_by_email(self, email: str) -> Operator | None:
        return await self._one(OPERATORS, q.operator_by_email_filter(email), docs.operator_from_document)

    async def operator_by_token(self, token_hash: str) -> Operator | None:
        return await self._one(OPERATORS, q.token_filter(token_hash), docs.operator_from_document)

    async def list_operators(self) -> list[Operator]:
        return await self._all(OPERATORS, {}, q.OPERATOR_ORDER, docs.operator_from_document)

    async def count_operators(self) -> int:
        with mapped_errors():
            return await self._c(OPERATORS).count_documents({})

    async def save_operator(self, operator: Operator) -> None:
        with mapped_errors():
            result = await self._c(OPERATORS).update_one(q.by_id(operator.id), q.operator_update(operator))
        if not result.matched_count:
            raise NotFound(f"operator {operator.id} not found")

    # web UI sessions

    async def create_session(self, session: OperatorSession) -> None:
        with mapped_errors():
            await self._c(SESSIONS).insert_one(docs.session_document(session))

    async def session_by_token_hash(self, token_hash: str) -> OperatorSession | None:
        return await self._one(SESSIONS, q.by_id(token_hash), docs.session_from_document)

    async def touch_session(self, session_id: str, *, last_seen_at: datetime, expires_at: datetime) -> bool:
        with mapped_errors():
            result = await self._c(SESSIONS).update_one(
                q.by_id(session_id), q.session_touch_update(last_seen_at, expires_at)
            )
        return result.matched_count > 0

    async def delete_session(self, session_id: str) -> bool:
        with mapped_errors():
            deleted = await self._c(SESSIONS).delete_one(q.by_id(session_id))
        return deleted.deleted_count > 0

    async def delete_sessions_of(self, operator_id: str, *, keep: str | None = None) -> int:
        with mapped_errors():
            deleted = await self._c(SESSIONS).delete_many(q.sessions_of_filter(operator_id, keep))
        return deleted.deleted_count

    async def delete_expired_sessions(self, now: datetime) -> int:
        with mapped_errors():
            deleted = await self._c(SESSIONS).delete_many(q.expired_sessions_filter(now))
        return deleted.deleted_count

    # contacts

    async def create_contact(self, contact: Contact) -> None:
        keys = [docs.identity_key(i) for i in contact.identities]
        if len(set(keys)) != len(keys):  # SQLite's primary key refuses the repeat; an array would not
            raise Conflict("the same identity twice")
        with mapped_errors():
            await self._c(CONTACTS).insert_one(docs.contact_document(contact))

    async def get_contact(self, contact_id: str) -> Contact:
        return await self._get(CONTACTS, contact_id, "contact", docs.contact_from_document)

    async def contact_by_identity(self, identity: Identity) -> Contact | None:
        return await self._one(CONTACTS, q.identity_filter(identity), docs.contact_from_document)

    async def contact_names(self, contact_ids: Collection[str]) -> dict[str, str | None]:
        if not contact_ids:
            return {}
        with mapped_errors():
            cursor = self._c(CONTACTS).find({"_id": {"$in": list(contact_ids)}}, {"name": 1})
            return {document["_id"]: document.get("name") async for document in cursor}

    async def list_contacts(self, *, limit: int, cursor: str | None = None, text: str | None = None) -> Page[Contact]:
        query = q.contacts_filter(text, Cursor.decode(cursor) if cursor is not None else None)
        return await self._page(
            CONTACTS,
            query,
            q.CONTACT_ORDER,
            limit,
            docs.contact_from_document,
            lambda c: Cursor(docs.micros(c.created_at), c.id),
        )

    # conversations

    async def get_conversation(self, conversation_id: str) -> Conversation:
        convert = docs.conversation_from_document
        return await self._get(CONVERSATIONS, conversation_id, "conversation", convert)

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
        if not thread_keys and number is None:
            return None
        query = q.thread_filter(
            contact_id=contact_id,
            channel_id=channel_id,
            thread_keys=thread_keys,
            resolved_since=resolved_since,
            participant=participant,
            number=number,
        )
        page = await self._page(
            CONVERSATIONS,
            query,
            q.CONVERSATION_ORDER,
            1,
            docs.conversation_from_document,
            lambda c: Cursor(docs.micros(c.last_message_at), c.id),
        )
        return page.items[0] if page.items else None

    async def list_conversations(
        self, where: ConversationFilter, *, limit: int, cursor: str | None = None
    ) -> Page[Conversation]:
        hits = None
        if where.text:
            if not where.text.split():  # nothing to search for, as SQLite's FTS query builder says
                return Page([], None)
            hits = await self._text_hits(where.text)
        query = q.conversation_filter(where, Cursor.decode(cursor) if cursor is not None else None, hits)
        return await self._page(
            CONVERSATIONS,
            query,
            q.CONVERSATION_ORDER,
            limit,
            docs.conversation_from_document,
            lambda c: Cursor(docs.micros(c.last_message_at), c.id),
        )

    async def _text_hits(self, text: str) -> q.TextHits:
        """Matches in messages and contact names, as ids for the conversation query: ``$in`` lists,
        so a word in very many conversations costs memory here (as SQLite's subquery does there)."""
        pipeline = q.matched_ids_pipeline(text)
        with mapped_errors():
            matched: list[Document] = []
            if pipeline is not None:
                matched = await (await self._c(MESSAGES).aggregate(pipeline)).to_list(None)
            named = await self._c(CONTACTS).find(q.contact_name_filter(text), {"_id": 1}).to_list(None)
        return q.TextHits([m["_id"] for m in matched], [n["_id"] for n in named])

    async def save_conversation(self, conversation: Conversation) -> None:
        with mapped_errors():
            result = await self._c(CONVERSATIONS).update_one(
                q.by_id(conversation.id), q.conversation_update(conversation)
            )
        if not result.matched_count:
            raise NotFound(f"conversation {conversation.id} not found")

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
        tags_changed: bool = False,  # tags are a field of the conversation's document: always written
    ) -> Conversation:
        keys, others = list(thread_keys), list(participants)  # the work may run more than once (retries)
        conversations = self._c(CONVERSATIONS)

        async def work(session: Session) -> Conversation:
            await self._check_references(conversation, message, outbox, new_conversation, session)
            mine: Written = []  # undone if a later step fails
            try:
                await self._insert(MESSAGES, docs.message_document(message), mine, session)
                if new_conversation:
                    stored = replace(conversation, number=await self._next_number(session))
                    await self._insert(CONVERSATIONS, docs.conversation_document(stored, keys, others), mine, session)
                else:
                    stored = conversation
                    await conversations.update_one(
                        q.by_id(stored.id), q.conversation_update(stored, keys, others), session=session
                    )
                if outbox is not None:
                    await self._insert(OUTBOX, docs.outbox_document(outbox), mine, session)
                for event in events:
                    await self._insert(MESSAGES, docs.message_document(event), mine, session)
            except BaseException:
                if session is None:  # a transaction rolls back by itself
                    await self._undo(mine)
                raise
            return stored

        return await self._atomic(work)

    async def _check_references(
        self,
        conversation: Conversation,
        message: Message,
        outbox: OutboxItem | None,
        new_conversation: bool,
        session: Session,
    ) -> None:
        """SQLite's foreign keys, as reads: an unknown reference is a ``Conflict`` there too."""
        if new_conversation:
            references = [(CHANNELS, conversation.channel_id), (CONTACTS, conversation.contact_id)]
        else:
            references = [(CONVERSATIONS, conversation.id)]
        if outbox is not None and outbox.message_id != message.id:
            references.append((MESSAGES, outbox.message_id))
        for name, item_id in references:
            if await self._c(name).find_one(q.by_id(item_id), {"_id": 1}, session=session) is None:
                raise Conflict(f"{name} {item_id} does not exist")

    async def _next_number(self, session: Session) -> int:
        counter = await self._c(COUNTERS).find_one_and_update(
            q.by_id(q.CONVERSATION_COUNTER),
            q.NEXT_NUMBER,
            return_document=ReturnDocument.AFTER,
            session=session,
        )
        if counter is None:
            raise StorageError("the conversation counter is missing; open() creates it")
        return int(counter["value"])

    async def _insert(self, name: str, document: Document, mine: Written, session: Session) -> None:
        """Inserts and notes the document as this call's, unless the server refused it as a
        duplicate (then it is someone else's); a lost connection may have stored it all the same."""
        mine.append((name, document["_id"]))
        try:
            await self._c(name).insert_one(document, session=session)
        except DuplicateKeyError:
            mine.pop()
            raise

    async def _undo(self, mine: Written) -> None:
        """Best effort, message first: should tidying stop half way, a retry still finds the
        external id free, and an outbox job left behind fails with NotFound and is dropped."""
        for name, item_id in mine:
            with contextlib.suppress(PyMongoError):
                await self._c(name).delete_one(q.by_id(item_id))

    # messages

    async def get_message(self, message_id: str) -> Message:
        return await self._get(MESSAGES, message_id, "message", docs.message_from_document)

    async def message_by_external_id(self, channel_id: str, external_id: str) -> Message | None:
        query = q.external_id_filter(channel_id, external_id)
        return await self._one(MESSAGES, query, docs.message_from_document)

    async def message_by_idempotency_key(self, author_id: str, key: str) -> Message | None:
        return await self._one(MESSAGES, q.idempotency_filter(author_id, key), docs.message_from_document)

    async def set_delivery_status(self, message_id: str, status: DeliveryStatus, error: str | None) -> Message:
        with mapped_errors():
            document = await self._c(MESSAGES).find_one_and_update(
                {"_id": message_id},
                {"$set": {"delivery_status": str(status), "delivery_error": error}},
                return_document=ReturnDocument.AFTER,
            )
        if document is None:
            raise NotFound(f"message {message_id} not found")
        return docs.message_from_document(document)

    async def last_inbound_message(self, conversation_id: str) -> Message | None:
        with mapped_errors():
            document = await self._c(MESSAGES).find_one(
                {"conversation_id": conversation_id, "direction": "in"}, sort=[("created_at", -1), ("_id", -1)]
            )
        return docs.message_from_document(document) if document else None

    async def list_messages(self, conversation_id: str, *, limit: int, cursor: str | None = None) -> Page[Message]:
        query = q.messages_filter(conversation_id, Cursor.decode(cursor) if cursor is not None else None)
        return await self._page(
            MESSAGES,
            query,
            q.MESSAGE_ORDER,
            limit,
            docs.message_from_document,
            lambda m: Cursor(docs.micros(m.created_at), m.id),
        )

    async def auto_replies_in(self, conversation_id: str) -> dict[str, datetime]:
        last: dict[str, datetime] = {}
        with mapped_errors():
            found = self._c(MESSAGES).find(q.auto_replies_filter([conversation_id]), {"extras": 1, "created_at": 1})
            async for document in found:
                trigger = json.loads(document["extras"]).get("trigger")
                at = docs.moment(document["created_at"])
                if isinstance(trigger, str) and (trigger not in last or last[trigger] < at):
                    last[trigger] = at
        return last

    async def auto_replies_to(self, contact_id: str, since: datetime) -> list[datetime]:
        with mapped_errors():
            conversations = await self._c(CONVERSATIONS).distinct("_id", q.contact_conversations_filter(contact_id))
            query = q.auto_replies_filter(conversations, since)
            found = self._c(MESSAGES).find(query, {"created_at": 1}).sort("created_at", 1)
            return [docs.moment(document["created_at"]) async for document in found]

    # connector bookkeeping

    async def quarantine(self, record: Unparsed) -> Unparsed:
        with mapped_errors():
            document = await self._c(UNPARSED).find_one_and_update(
                {"channel_id": record.channel_id, "external_id": record.external_id},
                {"$setOnInsert": docs.unparsed_document(record)},
                upsert=True,
                return_document=ReturnDocument.AFTER,
            )
        assert document is not None  # an upsert returning the document AFTER it always finds one
        return docs.unparsed_from_document(document)

    async def list_quarantine(self, *, limit: int, cursor: str | None = None) -> Page[Unparsed]:
        query = q.after(Cursor.decode(cursor), "created_at", descending=True) if cursor is not None else {}
        return await self._page(
            UNPARSED,
            query,
            [("created_at", -1), ("_id", -1)],
            limit,
            docs.unparsed_from_document,
            lambda u: Cursor(docs.micros(u.created_at), u.id),
        )

    async def get_unparsed(self, unparsed_id: str) -> Unparsed:
        return await self._get(UNPARSED, unparsed_id, "quarantined item", docs.unparsed_from_document)

    async def list_routing_objects(self, kind: str) -> list[dict[str, Any]]:
        found = await self._all(ROUTING_OBJECTS, q.routing_kind_filter(kind), [("position", 1), ("id", 1)], dict)
        return [document["body"] for document in found]

    async def put_routing_object(self, kind: str, object_id: str, body: Mapping[str, Any], position: int = 0) -> None:
        with mapped_errors():
            await self._c(ROUTING_OBJECTS).replace_one(
                q.by_id(q.routing_object_id(kind, object_id)),
                {"kind": kind, "id": object_id, "position": position, "body": dict(body)},
                upsert=True,
            )

    async def delete_routing_object(self, kind: str, object_id: str) -> bool:
        with mapped_errors():
            deleted = await self._c(ROUTING_OBJECTS).delete_one(q.by_id(q.routing_object_id(kind, object_id)))
        return deleted.deleted_count > 0

    async def set_timer(self, timer: Timer) -> None:
        with mapped_errors():
            await self._c(TIMERS).update_one(
                q.timer_key_filter(timer.kind, timer.conversation_id),
                {"$set": docs.timer_fields(timer), "$setOnInsert": {"_id": timer.id}},
                upsert=True,
            )

    async def cancel_timer(self, kind: str, conversation_id: str) -> bool:
        with mapped_errors():
            deleted = await self._c(TIMERS).delete_one(q.timer_key_filter(kind, conversation_id))
        return deleted.deleted_count > 0

    async def due_timers(self, now: datetime, *, limit: int) -> list[Timer]:
        with mapped_errors():
            found = self._c(TIMERS).find(q.due_timers_filter(now), sort=[("due_at", 1), ("_id", 1)])
            documents = await found.limit(limit).to_list(None)
        return [docs.timer_from_document(document) for document in documents]

    async def delete_timer(self, timer: Timer) -> bool:
        with mapped_errors():
            deleted = await self._c(TIMERS).delete_one(q.fired_timer_filter(timer))
        return deleted.deleted_count > 0

    async def get_sync_state(self, key: str) -> str | None:
        with mapped_errors():
            document = await self._c(SYNC_STATE).find_one({"_id": key})
        return document["value"] if document else None

    async def set_sync_state(self, key: str, value: str) -> None:
        with mapped_errors():
            await self._c(SYNC_STATE).update_one({"_id": key}, {"$set": {"value": value}}, upsert=True)

    # outbox

    async def claim_outbox(self, *, now: datetime, lease_until: datetime, limit: int) -> list[OutboxItem]:
        claimed: list[OutboxItem] = []
        try:
            with mapped_errors():
                for _ in range(limit):
                    document = await self._c(OUTBOX).find_one_and_update(
                        q.claim_filter(now, [item.id for item in claimed]),
                        q.claim_update(lease_until),
                        sort=q.OUTBOX_ORDER,
                        return_document=ReturnDocument.AFTER,
                    )
                    if document is None:
                        break
                    claimed.append(docs.outbox_from_document(document))
        except StorageError:
            if not claimed:
                raise
            # The jobs already leased are ours: hand them over rather than strand them until the
            # lease ends; the next pass meets the error again if it persists.
        return sorted(claimed, key=lambda item: item.next_attempt_at)

    async def next_outbox_due(self) -> datetime | None:
        with mapped_errors():
            rows = await (await self._c(OUTBOX).aggregate(q.NEXT_DUE_PIPELINE)).to_list(None)
        due = rows[0]["due"] if rows else None
        return None if due is None else docs.moment(due)

    async def finish_outbox(
        self,
        item: OutboxItem,
        *,
        status: DeliveryStatus,
        error: str | None = None,
        external_id: str | None = None,
    ) -> Message:
        async def work(session: Session) -> Document | None:
            document = await self._c(MESSAGES).find_one_and_update(
                q.by_id(item.message_id),
                q.finish_update(status, error, external_id),
                return_document=ReturnDocument.AFTER,
                session=session,
            )
            await self._c(OUTBOX).delete_one(q.by_id(item.id), session=session)
            return document

        # As in SQLite, the job is gone even when its message is: NotFound comes after the commit.
        document = await self._atomic(work)
        if document is None:
            raise NotFound(f"message {item.message_id} not found")
        return docs.message_from_document(document)

    async def requeue_message(self, item: OutboxItem) -> Message:
        """The message is switched first, conditionally, so a second resend finds it queued and
        stops; if the job cannot be stored the message goes back to failed."""
        with mapped_errors():
            document = await self._c(MESSAGES).find_one_and_update(
                q.failed_message_filter(item.message_id),
                q.REQUEUE_UPDATE,
                return_document=ReturnDocument.AFTER,
            )
            if document is None:
                if await self._c(MESSAGES).find_one(q.by_id(item.message_id), {"_id": 1}) is None:
                    raise NotFound(f"message {item.message_id} not found")
                raise Conflict(f"message {item.message_id} has not failed; nothing to resend")
            try:
                await self._c(OUTBOX).insert_one(docs.outbox_document(item))
            except BaseException:
                await self._c(MESSAGES).update_one(q.by_id(item.message_id), q.FAILED_AGAIN_UPDATE)
                raise
        return docs.message_from_document(document)

    async def retry_outbox(self, item: OutboxItem, *, next_attempt_at: datetime, error: str) -> None:
        with mapped_errors():
            await self._c(OUTBOX).update_one(q.by_id(item.id), q.retry_update(next_attempt_at, error))

    async def pending_outbox_count(self) -> int:
        with mapped_errors():
            return await self._c(OUTBOX).count_documents({})
