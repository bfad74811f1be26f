"""SQLite adapter of the :class:`~storage.base.Store` port: the embedded default.

Runs the stdlib driver directly on the event loop. A single-row commit takes tens of
microseconds in WAL mode, far less than a thread hop per call would cost (aiosqlite manages
about a tenth of the throughput); reads that could grow are bounded by keyset pagination and
indexes. One process owns the file; deployments that need several use MongoDB.

Durability: WAL with ``synchronous=NORMAL`` survives a killed process (a commit is in the WAL
before the call returns); ``synchronous=FULL`` (setting ``durability="full"``) also survives
power loss, at some cost in write throughput.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from inbox.clock import utc
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
)
from inbox.errors import Conflict, NotFound, StorageError, Unavailable
from storage.base import UNASSIGNED, ConversationFilter, Cursor, Page, Store
from storage.sqlite.schema import migrate

__all__ = ["SqliteStore"]


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)


def _micros(moment: datetime | None) -> int | None:
    if moment is None:
        return None
    return (utc(moment) - _EPOCH) // _MICROSECOND


def _moment(micros: int | None) -> datetime | None:
    if micros is None:
        return None
    return _EPOCH + micros * _MICROSECOND


def _fts_query(text: str) -> str | None:
    """Each word as a quoted prefix term: user text never becomes FTS5 syntax."""
    words = [w.replace('"', '""') for w in text.split()]
    words = [w for w in words if w]
    return " ".join(f'"{w}"*' for w in words) or None


@contextmanager
def _mapped_errors() -> Iterator[None]:
    try:
        yield
    except sqlite3.IntegrityError as exc:
        raise Conflict(str(exc)) from exc
    except sqlite3.OperationalError as exc:
        raise Unavailable(f"SQLite: {exc}") from exc
    except sqlite3.DatabaseError as exc:
        raise StorageError(f"SQLite: {exc}") from exc


class SqliteStore(Store):
    def __init__(self, path: str | Path, *, durability: str = "normal") -> None:
        self.path = str(path)
        self._durability = {"normal": "NORMAL", "full": "FULL"}[durability]
        self._db: sqlite3.Connection | None = None

    # lifecycle

    async def open(self) -> None:
        if self._db is not None:
            raise RuntimeError("store is already open")
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        with _mapped_errors():
            db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
            db.row_factory = sqlite3.Row
            db.execute("PRAGMA journal_mode = WAL")
            db.execute(f"PRAGMA synchronous = {self._durability}")
            db.execute("PRAGMA foreign_keys = ON")
            db.execute("PRAGMA busy_timeout = 5000")
            migrate(db)
        self._db = db

    async def close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None

    async def ping(self) -> None:
        self._query_one("SELECT 1")

    # plumbing

    @property
    def db(self) -> sqlite3.Connection:
        if self._db is None:
            raise Unavailable("store is not open")
        return self._db

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        db = self.db
        with _mapped_errors():
            db.execute("BEGIN IMMEDIATE")
            try:
                yield db
            except BaseException:
                db.execute("ROLLBACK")
                raise
            db.execute("COMMIT")

    def _query(self, sql: str, params: Sequence[Any] = ()) -> list[sqlite3.Row]:
        with _mapped_errors():
            return self.db.execute(sql, params).fetchall()

    def _query_one(self, sql: str, params: Sequence[Any] = ()) -> sqlite3.Row | None:
        with _mapped_errors():
            return self.db.execute(sql, params).fetchone()

    def _execute(self, sql: str, params: Sequence[Any] = ()) -> int:
        with _mapped_errors():
            return self.db.execute(sql, params).rowcount

    # channels

    async def create_channel(self, channel: Channel, secret_hash: str | None = None) -> None:
        self._execute(
            "INSERT INTO channels (id, kind, name, settings, secret_hash, created_at) VALUES (?, ?, ?, ?, ?, ?)",
            (
                channel.id,
                channel.kind,
                channel.name,
                json.dumps(dict(channel.settings)),
                secret_hash,
                _micros(channel.created_at),
            ),
        )

    async def get_channel(self, channel_id: str) -> Channel:
        row = self._query_one("SELECT * FROM channels WHERE id = ?", (channel_id,))
        if row is None:
            raise NotFound(f"channel {channel_id} not found")
        return _channel(row)

    async def channel_by_secret(self, secret_hash: str) -> Channel | None:
        row = self._query_one("SELECT * FROM channels WHERE secret_hash = ?", (secret_hash,))
        return _channel(row) if row else None

    async def list_channels(self) -> list[Channel]:
        return [_channel(r) for r in self._query("SELECT * FROM channels ORDER BY created_at, id")]

    # operators

    async def create_operator(self, operator: Operator, token_hash: str) -> None:
        self._execute(
            "INSERT INTO operators (id, email, name, role, presence, focus_mode, max_open, teams,"
            " password_hash, token_hash, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (*_operator_values(operator), token_hash, _micros(operator.created_at)),
        )

    async def get_operator(self, operator_id: str) -> Operator:
        row = self._query_one("SELECT * FROM operators WHERE id = ?", (operator_id,))
        if row is None:
            raise NotFound(f"operator {operator_id} not found")
        return _operator(row)

    async def operator_by_email(self, email: str) -> Operator | None:
        row = self._query_one("SELECT * FROM operators WHERE email = ?", (email,))
        return _operator(row) if row else None

    async def operator_by_token(self, token_hash: str) -> Operator | None:
        row = self._query_one("SELECT * FROM operators WHERE token_hash = ?", (token_hash,))
        return _operator(row) if row else None

    async def list_operators(self) -> list[Operator]:
        return [_operator(r) for r in self._query("SELECT * FROM operators ORDER BY name, id")]

    async def count_operators(self) -> int:
        row = self._query_one("SELECT count(*) FROM operators")
        return int(row[0]) if row else 0

    async def save_operator(self, operator: Operator) -> None:
        updated = self._execute(
            "UPDATE operators SET email = ?, name = ?, role = ?, presence = ?, focus_mode = ?,"
            " max_open = ?, teams = ?, password_hash = ? WHERE id = ?",
            (*_operator_values(operator)[1:], operator.id),
        )
        if not updated:
            raise NotFound(f"operator {operator.id} not found")

    # contacts

    async def create_contact(self, contact: Contact) -> None:
        with self._transaction() as db:
            db.execute(
                "INSERT INTO contacts (id, name, email, phone, attributes, created_at) VALUES (?, ?, ?, ?, ?, ?)",
                (
                    contact.id,
                    contact.name,
                    contact.email,
                    contact.phone,
                    json.dumps(dict(contact.attributes)),
                    _micros(contact.created_at),
                ),
            )
            db.executemany(
                "INSERT INTO contact_identities (channel_kind, external_id, contact_id) VALUES (?, ?, ?)",
                [(i.channel_kind, i.external_id, contact.id) for i in contact.identities],
            )

    async def get_contact(self, contact_id: str) -> Contact:
        row = self._query_one("SELECT * FROM contacts WHERE id = ?", (contact_id,))
        if row is None:
            raise NotFound(f"contact {contact_id} not found")
        return self._contact(row)

    async def contact_by_identity(self, identity: Identity) -> Contact | None:
        row = self._query_one(
            "SELECT c.* FROM contact_identities i JOIN contacts c ON c.id = i.contact_id"
            " WHERE i.channel_kind = ? AND i.external_id = ?",
            (identity.channel_kind, identity.external_id),
        )
        return self._contact(row) if row else None

    async def list_contacts(self, *, limit: int, cursor: str | None = None, text: str | None = None) -> Page[Contact]:
        where, params = [], []
        if text:
            where.append("(c.name LIKE ? ESCAPE '\\' OR c.email LIKE ? ESCAPE '\\' OR c.phone LIKE ? ESCAPE '\\')")
            pattern = "%" + text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
            params += [pattern] * 3
        rows = self._keyset("contacts c", "c.created_at", where, params, limit, cursor)
        return _page([self._contact(r) for r in rows], limit, lambda c: Cursor(_micros(c.created_at), c.id))

    def _contact(self, row: sqlite3.Row) -> Contact:
        identities = tuple(
            Identity(channel_kind=r["channel_kind"], external_id=r["external_id"])
            for r in self._query(
                "SELECT channel_kind, external_id FROM contact_identities WHERE contact_id = ?"
                " ORDER BY channel_kind, external_id",
                (row["id"],),
            )
        )
        return Contact(
            id=row["id"],
            name=row["name"],
            email=row["email"],
            phone=row["phone"],
            identities=identities,
            attributes=json.loads(row["attributes"]),
            created_at=_moment(row["created_at"]),
        )

    # conversations

    async def get_conversation(self, conversation_id: str) -> Conversation:
        row = self._query_one("SELECT * FROM conversations WHERE id = ?", (conversation_id,))
        if row is None:
            raise NotFound(f"conversation {conversation_id} not found")
        return _conversation(row)

    async def find_thread(
        self,
        *,
        contact_id: str,
        channel_id: str,
        thread_keys: Sequence[str],
        resolved_since: datetime,
    ) -> Conversation | None:
        if not thread_keys:
            return None
        marks = ",".join("?" * len(thread_keys))
        row = self._query_one(
            "SELECT c.* FROM conversations c WHERE c.id IN"
            f" (SELECT conversation_id FROM thread_keys WHERE key IN ({marks}))"
            " AND c.contact_id = ? AND c.channel_id = ?"
            " AND (c.status != 'resolved' OR c.resolved_at >= ?)"
            " ORDER BY c.last_message_at DESC, c.id DESC LIMIT 1",
            (*thread_keys, contact_id, channel_id, _micros(resolved_since)),
        )
        return _conversation(row) if row else None

    async def list_conversations(
        self, where: ConversationFilter, *, limit: int, cursor: str | None = None
    ) -> Page[Conversation]:
        clauses: list[str] = []
        params: list[Any] = []
        for column, value in (
            ("status", where.status),
            ("channel_id", where.channel_id),
            ("team_id", where.team_id),
            ("contact_id", where.contact_id),
        ):
            if value is not None:
                clauses.append(f"c.{column} = ?")
                params.append(str(value))
        if where.assignee_id == UNASSIGNED:
            clauses.append("c.assignee_id IS NULL")
        elif where.assignee_id is not None:
            clauses.append("c.assignee_id = ?")
            params.append(where.assignee_id)
        if where.tag is not None:
            clauses.append("c.id IN (SELECT conversation_id FROM conversation_tags WHERE tag = ?)")
            params.append(where.tag)
        if where.text:
            query = _fts_query(where.text)
            if query is None:
                return Page([], None)
            clauses.append(
                "(c.id IN (SELECT conversation_id FROM message_search WHERE message_search MATCH ?)"
                " OR c.contact_id IN (SELECT id FROM contacts WHERE name LIKE ? ESCAPE '\\'))"
            )
            like = "%" + where.text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
            params += [query, like]
        rows = self._keyset("conversations c", "c.last_message_at", clauses, params, limit, cursor)
        return _page([_conversation(r) for r in rows], limit, lambda c: Cursor(_micros(c.last_message_at), c.id))

    def _keyset(
        self,
        table: str,
        sort_column: str,
        clauses: list[str],
        params: list[Any],
        limit: int,
        cursor: str | None,
    ) -> list[sqlite3.Row]:
        """Newest first by ``sort_column`` then id; fetches one extra row to know if more follow."""
        alias = table.split()[-1]
        if cursor is not None:
            position = Cursor.decode(cursor)
            clauses = [*clauses, f"({sort_column}, {alias}.id) < (?, ?)"]
            params = [*params, position.sort_value, position.id]
        sql = f"SELECT {alias}.* FROM {table}"
        if clauses:
            sql += " WHERE " + " AND ".join(clauses)
        sql += f" ORDER BY {sort_column} DESC, {alias}.id DESC LIMIT ?"
        return self._query(sql, (*params, limit + 1))

    async def save_conversation(self, conversation: Conversation) -> None:
        with self._transaction() as db:
            if not db.execute(
                "UPDATE conversations SET " + ", ".join(f"{c} = ?" for c in _CONVERSATION_MUTABLE) + " WHERE id = ?",
                (*_conversation_mutable_values(conversation), conversation.id),
            ).rowcount:
                raise NotFound(f"conversation {conversation.id} not found")
            self._write_tags(db, conversation, replace=True)

    @staticmethod
    def _write_tags(db: sqlite3.Connection, conversation: Conversation, *, replace: bool) -> None:
        if replace:
            db.execute("DELETE FROM conversation_tags WHERE conversation_id = ?", (conversation.id,))
        db.executemany(
            "INSERT OR IGNORE INTO conversation_tags (tag, conversation_id) VALUES (?, ?)",
            [(tag, conversation.id) for tag in conversation.tags],
        )

    async def append_message(
        self,
        conversation: Conversation,
        message: Message,
        *,
        new_conversation: bool,
        thread_keys: Sequence[str] = (),
        outbox: OutboxItem | None = None,
    ) -> Conversation:
        with self._transaction() as db:
            if new_conversation:
                (number,) = db.execute(
                    "UPDATE counters SET value = value + 1 WHERE name = 'conversation_number' RETURNING value"
                ).fetchone()
                conversation = replace(conversation, number=number)
                db.execute(
                    "INSERT INTO conversations (id, number, channel_id, contact_id, created_at, "
                    + ", ".join(_CONVERSATION_MUTABLE)
                    + ") VALUES (?, ?, ?, ?, ?, "
                    + ", ".join("?" * len(_CONVERSATION_MUTABLE))
                    + ")",
                    (
                        conversation.id,
                        number,
                        conversation.channel_id,
                        conversation.contact_id,
                        _micros(conversation.created_at),
                        *_conversation_mutable_values(conversation),
                    ),
                )
                if conversation.subject:
                    db.execute(
                        "INSERT INTO message_search (text, conversation_id) VALUES (?, ?)",
                        (conversation.subject, conversation.id),
                    )
            else:
                db.execute(
                    "UPDATE conversations SET "
                    + ", ".join(f"{c} = ?" for c in _CONVERSATION_MUTABLE)
                    + " WHERE id = ?",
                    (*_conversation_mutable_values(conversation), conversation.id),
                )
            self._write_tags(db, conversation, replace=not new_conversation)
            db.executemany(
                "INSERT OR IGNORE INTO thread_keys (key, conversation_id) VALUES (?, ?)",
                [(key, conversation.id) for key in thread_keys],
            )
            db.execute(
                "INSERT INTO messages (id, conversation_id, channel_id, direction, kind, text, html,"
                " author_id, attachments, external_id, idempotency_key, delivery_status,"
                " delivery_error, extras, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                _message_values(message),
            )
            if message.text:
                db.execute(
                    "INSERT INTO message_search (text, conversation_id) VALUES (?, ?)",
                    (message.text, message.conversation_id),
                )
            if outbox is not None:
                db.execute(
                    "INSERT INTO outbox (id, message_id, channel_id, attempts, next_attempt_at,"
                    " last_error, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (
                        outbox.id,
                        outbox.message_id,
                        outbox.channel_id,
                        outbox.attempts,
                        _micros(outbox.next_attempt_at),
                        outbox.last_error,
                        _micros(outbox.created_at),
                    ),
                )
        return conversation

    # messages

    async def get_message(self, message_id: str) -> Message:
        row = self._query_one("SELECT * FROM messages WHERE id = ?", (message_id,))
        if row is None:
            raise NotFound(f"message {message_id} not found")
        return _message(row)

    async def message_by_external_id(self, channel_id: str, external_id: str) -> Message | None:
        row = self._query_one(
            "SELECT * FROM messages WHERE channel_id = ? AND external_id = ?", (channel_id, external_id)
        )
        return _message(row) if row else None

    async def message_by_idempotency_key(self, author_id: str, key: str) -> Message | None:
        row = self._query_one("SELECT * FROM messages WHERE author_id = ? AND idempotency_key = ?", (author_id, key))
        return _message(row) if row else None

    async def list_messages(self, conversation_id: str, *, limit: int, cursor: str | None = None) -> Page[Message]:
        sql, params = "SELECT * FROM messages WHERE conversation_id = ?", [conversation_id]
        if cursor is not None:
            position = Cursor.decode(cursor)
            sql += " AND (created_at, id) > (?, ?)"
            params += [position.sort_value, position.id]
        rows = self._query(sql + " ORDER BY created_at, id LIMIT ?", (*params, limit + 1))
        return _page([_message(r) for r in rows], limit, lambda m: Cursor(_micros(m.created_at), m.id))

    # outbox

    async def claim_outbox(self, *, now: datetime, lease_until: datetime, limit: int) -> list[OutboxItem]:
        with self._transaction() as db:
            rows = db.execute(
                "UPDATE outbox SET leased_until = ? WHERE id IN (SELECT id FROM outbox"
                " WHERE next_attempt_at <= ? AND leased_until <= ? ORDER BY next_attempt_at LIMIT ?)"
                " RETURNING *",
                (_micros(lease_until), _micros(now), _micros(now), limit),
            ).fetchall()
        return sorted((_outbox(r) for r in rows), key=lambda item: item.next_attempt_at)

    async def next_outbox_due(self) -> datetime | None:
        row = self._query_one("SELECT min(max(next_attempt_at, leased_until)) FROM outbox")
        return _moment(row[0]) if row else None

    async def finish_outbox(
        self,
        item: OutboxItem,
        *,
        status: DeliveryStatus,
        error: str | None = None,
        external_id: str | None = None,
    ) -> Message:
        with self._transaction() as db:
            db.execute("DELETE FROM outbox WHERE id = ?", (item.id,))
            row = db.execute(
                "UPDATE messages SET delivery_status = ?, delivery_error = ?,"
                " extras = json_set(extras, '$.delivery_external_id', ?) WHERE id = ? RETURNING *",
                (str(status), error, external_id, item.message_id),
            ).fetchone()
        if row is None:
            raise NotFound(f"message {item.message_id} not found")
        return _message(row)

    async def retry_outbox(self, item: OutboxItem, *, next_attempt_at: datetime, error: str) -> None:
        self._execute(
            "UPDATE outbox SET attempts = attempts + 1, next_attempt_at = ?, leased_until = 0,"
            " last_error = ? WHERE id = ?",
            (_micros(next_attempt_at), error, item.id),
        )

    async def pending_outbox_count(self) -> int:
        row = self._query_one("SELECT count(*) FROM outbox")
        return int(row[0]) if row else 0


# rows ↔ domain values

_CONVERSATION_MUTABLE = (
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


def _conversation_mutable_values(c: Conversation) -> tuple[Any, ...]:
    return (
        c.subject,
        str(c.status),
        str(c.priority),
        c.assignee_id,
        c.team_id,
        json.dumps(list(c.tags)),
        _micros(c.updated_at),
        _micros(c.last_message_at),
        _micros(c.last_inbound_at),
        _micros(c.first_response_at),
        _micros(c.waiting_since),
        _micros(c.snoozed_until),
        _micros(c.resolved_at),
    )


def _conversation(row: sqlite3.Row) -> Conversation:
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
        created_at=_moment(row["created_at"]),
        updated_at=_moment(row["updated_at"]),
        last_message_at=_moment(row["last_message_at"]),
        last_inbound_at=_moment(row["last_inbound_at"]),
        first_response_at=_moment(row["first_response_at"]),
        waiting_since=_moment(row["waiting_since"]),
        snoozed_until=_moment(row["snoozed_until"]),
        resolved_at=_moment(row["resolved_at"]),
    )


def _message_values(m: Message) -> tuple[Any, ...]:
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
        _micros(m.created_at),
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


def _message(row: sqlite3.Row) -> Message:
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
        created_at=_moment(row["created_at"]),
    )


def _operator_values(o: Operator) -> tuple[Any, ...]:
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
    )


def _operator(row: sqlite3.Row) -> Operator:
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
        created_at=_moment(row["created_at"]),
    )


def _channel(row: sqlite3.Row) -> Channel:
    return Channel(
        id=row["id"],
        kind=row["kind"],
        name=row["name"],
        settings=json.loads(row["settings"]),
        created_at=_moment(row["created_at"]),
    )


def _outbox(row: sqlite3.Row) -> OutboxItem:
    return OutboxItem(
        id=row["id"],
        message_id=row["message_id"],
        channel_id=row["channel_id"],
        attempts=row["attempts"],
        next_attempt_at=_moment(row["next_attempt_at"]),
        last_error=row["last_error"],
        created_at=_moment(row["created_at"]),
    )


def _page(items: list[Any], limit: int, position: Any) -> Page[Any]:
    if len(items) > limit:
        items = items[:limit]
        return Page(items, position(items[-1]).encode())
    return Page(items, None)
