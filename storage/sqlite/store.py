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
from collections.abc import Collection, Mapping, Sequence
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from typing import Any

from inbox.domain import (
    Channel,
    Contact,
    Conversation,
    DeliveryStatus,
    Identity,
    Message,
    Operator,
    OutboxItem,
    Session,
    Timer,
    Unparsed,
)
from inbox.errors import Conflict, NotFound
from storage.base import SEARCHABLE_KINDS, UNASSIGNED, ConversationFilter, Cursor, Page, Store
from storage.sqlite.database import Database
from storage.sqlite.rows import (
    CONVERSATION_MUTABLE,
    channel_from_row,
    conversation_from_row,
    conversation_mutable_values,
    from_micros,
    message_from_row,
    message_values,
    operator_from_row,
    operator_values,
    outbox_from_row,
    page_of,
    session_from_row,
    timer_from_row,
    to_micros,
    unparsed_from_row,
)
from storage.sqlite.schema import migrate

__all__ = ["SqliteStore"]


def _fts_query(text: str) -> str | None:
    """Each word as a quoted prefix term: user text never becomes FTS5 syntax."""
    words = [w.replace('"', '""') for w in text.split()]
    words = [w for w in words if w]
    return " ".join(f'"{w}"*' for w in words) or None


SEARCH_WINDOW = 5_000
"""Text search looks at this many most recent matching messages, so a common word costs a
bounded amount of work; a rarer or second word narrows to older conversations."""

_TAG_ORDER = ("t.last_message_at", "t.conversation_id")


def _touch_tags(db: sqlite3.Connection, conversation: Conversation) -> None:
    """Tag rows carry the conversation's last activity, so a tag's list pages by it."""
    active = to_micros(conversation.last_message_at)
    db.execute(
        "UPDATE conversation_tags SET last_message_at = ? WHERE conversation_id = ? AND last_message_at != ?",
        (active, conversation.id, active),
    )


_INSERT_MESSAGE = (
    "INSERT INTO messages (id, conversation_id, channel_id, direction, kind, text, html,"
    " author_id, attachments, external_id, idempotency_key, delivery_status,"
    " delivery_error, extras, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
_UPDATE_CONVERSATION = (
    "UPDATE conversations SET " + ", ".join(f"{c} = ?" for c in CONVERSATION_MUTABLE) + " WHERE id = ?"
)

_CONTACT_COLUMNS = (
    "c.*, (SELECT json_group_array(json_array(channel_kind, external_id)) FROM contact_identities"
    " WHERE contact_id = c.id) AS identities"
)
"""A contact row with its identities in one statement, so a page of contacts is one query."""


def _contains(text: str) -> str:
    """A LIKE pattern (with ESCAPE '\\') matching ``text`` literally anywhere."""
    return "%" + text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


class SqliteStore(Store):
    def __init__(self, path: str | Path, *, durability: str = "normal") -> None:
        self.path = str(path)
        self._database = Database(self.path, synchronous={"normal": "NORMAL", "full": "FULL"}[durability])
        self._open = False

    # lifecycle

    async def open(self) -> None:
        if self._open:
            raise RuntimeError("store is already open")
        migrate(self._database.connect())
        self._open = True

    async def close(self) -> None:
        if self._open:
            await self._database.close()
            self._open = False

    async def ping(self) -> None:
        self._database.row("SELECT 1")

    async def durable(self) -> None:
        await self._database.settled()

    # channels

    async def create_channel(self, channel: Channel, secret_hash: str | None = None) -> None:
        self._database.execute(
            "INSERT INTO channels (id, kind, name, settings, secret_hash, created_at) VALUES (?, ?, ?, ?, ?, ?)",
            (
                channel.id,
                channel.kind,
                channel.name,
                json.dumps(dict(channel.settings)),
                secret_hash,
                to_micros(channel.created_at),
            ),
        )

    async def get_channel(self, channel_id: str) -> Channel:
        row = self._database.row("SELECT * FROM channels WHERE id = ?", (channel_id,))
        if row is None:
            raise NotFound(f"channel {channel_id} not found")
        return channel_from_row(row)

    async def channel_by_secret(self, secret_hash: str) -> Channel | None:
        row = self._database.row("SELECT * FROM channels WHERE secret_hash = ?", (secret_hash,))
        return channel_from_row(row) if row else None

    async def list_channels(self) -> list[Channel]:
        return [channel_from_row(r) for r in self._database.rows("SELECT * FROM channels ORDER BY created_at, id")]

    # operators

    async def create_operator(self, operator: Operator, token_hash: str) -> None:
        self._database.execute(
            "INSERT INTO operators (id, email, name, role, presence, focus_mode, max_open, teams,"
            " password_hash, locale, time_zone, token_hash, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (*operator_values(operator), token_hash, to_micros(operator.created_at)),
        )

    async def get_operator(self, operator_id: str) -> Operator:
        row = self._database.row("SELECT * FROM operators WHERE id = ?", (operator_id,))
        if row is None:
            raise NotFound(f"operator {operator_id} not found")
        return operator_from_row(row)

    async def operator_by_email(self, email: str) -> Operator | None:
        row = self._database.row("SELECT * FROM operators WHERE email = ?", (email,))
        return operator_from_row(row) if row else None

    async def operator_by_token(self, token_hash: str) -> Operator | None:
        row = self._database.row("SELECT * FROM operators WHERE token_hash = ?", (token_hash,))
        return operator_from_row(row) if row else None

    async def list_operators(self) -> list[Operator]:
        return [operator_from_row(r) for r in self._database.rows("SELECT * FROM operators ORDER BY name, id")]

    async def count_operators(self) -> int:
        row = self._database.row("SELECT count(*) FROM operators")
        return int(row[0]) if row else 0

    async def save_operator(self, operator: Operator) -> None:
        updated = self._database.execute(
            "UPDATE operators SET email = ?, name = ?, role = ?, presence = ?, focus_mode = ?,"
            " max_open = ?, teams = ?, password_hash = ?, locale = ?, time_zone = ? WHERE id = ?",
            (*operator_values(operator)[1:], operator.id),
        )
        if not updated:
            raise NotFound(f"operator {operator.id} not found")

    # web UI sessions

    async def create_session(self, session: Session) -> None:
        self._database.execute(
            "INSERT INTO sessions (id, operator_id, csrf_token, created_at, expires_at, last_seen_at)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            (
                session.id,
                session.operator_id,
                session.csrf_token,
                to_micros(session.created_at),
                to_micros(session.expires_at),
                to_micros(session.last_seen_at),
            ),
        )

    async def session_by_token_hash(self, token_hash: str) -> Session | None:
        row = self._database.row("SELECT * FROM sessions WHERE id = ?", (token_hash,))
        return session_from_row(row) if row else None

    async def touch_session(self, session_id: str, *, last_seen_at: datetime, expires_at: datetime) -> bool:
        touched = "UPDATE sessions SET last_seen_at = ?, expires_at = ? WHERE id = ?"
        return self._database.execute(touched, (to_micros(last_seen_at), to_micros(expires_at), session_id)) > 0

    async def delete_session(self, session_id: str) -> bool:
        return self._database.execute("DELETE FROM sessions WHERE id = ?", (session_id,)) > 0

    async def delete_sessions_of(self, operator_id: str, *, keep: str | None = None) -> int:
        deleted = "DELETE FROM sessions WHERE operator_id = ? AND id IS NOT ?"
        return self._database.execute(deleted, (operator_id, keep))

    async def delete_expired_sessions(self, now: datetime) -> int:
        return self._database.execute("DELETE FROM sessions WHERE expires_at <= ?", (to_micros(now),))

    # contacts

    async def create_contact(self, contact: Contact) -> None:
        with self._database.unit() as db:
            db.execute(
                "INSERT INTO contacts (id, name, email, phone, attributes, created_at) VALUES (?, ?, ?, ?, ?, ?)",
                (
                    contact.id,
                    contact.name,
                    contact.email,
                    contact.phone,
                    json.dumps(dict(contact.attributes)),
                    to_micros(contact.created_at),
                ),
            )
            db.executemany(
                "INSERT INTO contact_identities (channel_kind, external_id, contact_id) VALUES (?, ?, ?)",
                [(i.channel_kind, i.external_id, contact.id) for i in contact.identities],
            )

    async def get_contact(self, contact_id: str) -> Contact:
        row = self._database.row(f"SELECT {_CONTACT_COLUMNS} FROM contacts c WHERE c.id = ?", (contact_id,))
        if row is None:
            raise NotFound(f"contact {contact_id} not found")
        return self._contact(row)

    async def contact_by_identity(self, identity: Identity) -> Contact | None:
        row = self._database.row(
            f"SELECT {_CONTACT_COLUMNS} FROM contact_identities i JOIN contacts c ON c.id = i.contact_id"
            " WHERE i.channel_kind = ? AND i.external_id = ?",
            (identity.channel_kind, identity.external_id),
        )
        return self._contact(row) if row else None

    async def contact_names(self, contact_ids: Collection[str]) -> dict[str, str | None]:
        ids = list(contact_ids)
        names: dict[str, str | None] = {}
        for start in range(0, len(ids), 500):  # stay well under SQLite's bound-parameter limit
            chunk = ids[start : start + 500]
            marks = ",".join("?" * len(chunk))
            names.update(
                (row["id"], row["name"])
                for row in self._database.rows(f"SELECT id, name FROM contacts WHERE id IN ({marks})", chunk)
            )
        return names

    async def list_contacts(self, *, limit: int, cursor: str | None = None, text: str | None = None) -> Page[Contact]:
        where, params = [], []
        if text:
            where.append("(c.name LIKE ? ESCAPE '\\' OR c.email LIKE ? ESCAPE '\\' OR c.phone LIKE ? ESCAPE '\\')")
            params += [_contains(text)] * 3
        rows = self._keyset("contacts c", ("c.created_at", "c.id"), where, params, limit, cursor, _CONTACT_COLUMNS)
        return page_of([self._contact(r) for r in rows], limit, lambda c: Cursor(to_micros(c.created_at), c.id))

    def _contact(self, row: sqlite3.Row) -> Contact:
        return Contact(
            id=row["id"],
            name=row["name"],
            email=row["email"],
            phone=row["phone"],
            identities=tuple(
                Identity(channel_kind=kind, external_id=external_id)
                for kind, external_id in sorted(json.loads(row["identities"]))
            ),
            attributes=json.loads(row["attributes"]),
            created_at=from_micros(row["created_at"]),
        )

    # conversations

    async def get_conversation(self, conversation_id: str) -> Conversation:
        row = self._database.row("SELECT * FROM conversations WHERE id = ?", (conversation_id,))
        if row is None:
            raise NotFound(f"conversation {conversation_id} not found")
        return conversation_from_row(row)

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
        marks = ",".join("?" * len(thread_keys))
        row = self._database.row(
            # CROSS JOIN fixes the order: from the few key matches to their conversations, never a
            # scan of the channel's conversations
            "SELECT c.* FROM (SELECT conversation_id AS id FROM thread_keys WHERE key IN"
            f" ({marks}) UNION SELECT id FROM conversations WHERE number = ?) found"
            " CROSS JOIN conversations c ON c.id = found.id"
            " WHERE (c.contact_id = ? OR c.id IN (SELECT conversation_id FROM participants WHERE key = ?))"
            " AND c.channel_id = ? AND (c.status != 'resolved' OR c.resolved_at >= ?)"
            " ORDER BY c.last_message_at DESC, c.id DESC LIMIT 1",
            (*thread_keys, number, contact_id, participant, channel_id, to_micros(resolved_since)),
        )
        return conversation_from_row(row) if row else None

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
        source, order = "conversations c", ("c.last_message_at", "c.id")
        if where.tag is not None:
            # conversation_tags carries last_message_at, so a tag view walks its own index in order
            source, order = "conversation_tags t JOIN conversations c ON c.id = t.conversation_id", _TAG_ORDER
            clauses.append("t.tag = ?")
            params.append(where.tag)
        if where.text:
            query = _fts_query(where.text)
            if query is None:
                return Page([], None)
            clauses.append(
                "c.id IN (SELECT conversation_id FROM search_rows WHERE id IN"
                " (SELECT rowid FROM message_search WHERE message_search MATCH ? ORDER BY rowid DESC LIMIT ?))"
            )
            params += [query, SEARCH_WINDOW]
        rows = self._keyset(source, order, clauses, params, limit, cursor, columns="c.*")
        return page_of(
            [conversation_from_row(r) for r in rows], limit, lambda c: Cursor(to_micros(c.last_message_at), c.id)
        )

    def _keyset(
        self,
        source: str,
        order: tuple[str, str],
        clauses: list[str],
        params: list[Any],
        limit: int,
        cursor: str | None,
        columns: str = "*",
    ) -> list[sqlite3.Row]:
        """Newest first by ``order`` (sort column, id column); fetches one extra row to know if
        more follow. The cursor continues strictly after the last row of the previous page."""
        sort_column, id_column = order
        if cursor is not None:
            position = Cursor.decode(cursor)
            clauses = [*clauses, f"({sort_column}, {id_column}) < (?, ?)"]
            params = [*params, position.sort_value, position.id]
        sql = f"SELECT {columns} FROM {source}"
        if clauses:
            sql += " WHERE " + " AND ".join(clauses)
        sql += f" ORDER BY {sort_column} DESC, {id_column} DESC LIMIT ?"
        return self._database.rows(sql, (*params, limit + 1))

    async def save_conversation(self, conversation: Conversation) -> None:
        with self._database.unit() as db:
            if not db.execute(
                _UPDATE_CONVERSATION,
                (*conversation_mutable_values(conversation), conversation.id),
            ).rowcount:
                raise NotFound(f"conversation {conversation.id} not found")
            self._write_tags(db, conversation, replace=True)

    @staticmethod
    def _write_tags(db: sqlite3.Connection, conversation: Conversation, *, replace: bool) -> None:
        """The conversation's tag rows; with ``replace``, only the difference is written (tags are
        mostly added one at a time, and each row sits in three indexes)."""
        active = to_micros(conversation.last_message_at)
        if replace:
            db.execute(
                "DELETE FROM conversation_tags"
                " WHERE conversation_id = ? AND tag NOT IN (SELECT value FROM json_each(?))",
                (conversation.id, json.dumps(conversation.tags)),
            )
            _touch_tags(db, conversation)
        db.executemany(
            "INSERT OR IGNORE INTO conversation_tags (tag, conversation_id, last_message_at) VALUES (?, ?, ?)",
            [(tag, conversation.id, active) for tag in conversation.tags],
        )

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
        with self._database.unit() as db:
            if new_conversation:
                (number,) = db.execute(
                    "UPDATE counters SET value = value + 1 WHERE name = 'conversation_number' RETURNING value"
                ).fetchone()
                conversation = replace(conversation, number=number)
                db.execute(
                    "INSERT INTO conversations (id, number, channel_id, contact_id, created_at, "
                    + ", ".join(CONVERSATION_MUTABLE)
                    + ") VALUES (?, ?, ?, ?, ?, "
                    + ", ".join("?" * len(CONVERSATION_MUTABLE))
                    + ")",
                    (
                        conversation.id,
                        number,
                        conversation.channel_id,
                        conversation.contact_id,
                        to_micros(conversation.created_at),
                        *conversation_mutable_values(conversation),
                    ),
                )
                self._write_tags(db, conversation, replace=False)
            else:
                db.execute(_UPDATE_CONVERSATION, (*conversation_mutable_values(conversation), conversation.id))
                if tags_changed:
                    self._write_tags(db, conversation, replace=True)
                elif conversation.tags:
                    _touch_tags(db, conversation)
            if thread_keys:
                db.executemany(
                    "INSERT OR IGNORE INTO thread_keys (key, conversation_id) VALUES (?, ?)",
                    [(key, conversation.id) for key in thread_keys],
                )
            if participants:
                db.executemany(
                    "INSERT OR IGNORE INTO participants (key, conversation_id) VALUES (?, ?)",
                    [(key, conversation.id) for key in participants],
                )
            for row in (message, *events):
                db.execute(_INSERT_MESSAGE, message_values(row))
            if outbox is not None:
                _insert_outbox(db, outbox)
        searchable = [message.text] if message.kind in SEARCHABLE_KINDS else []
        if new_conversation:  # one row makes the subject and the contact's name findable too
            contact = self._database.row("SELECT name FROM contacts WHERE id = ?", (conversation.contact_id,))
            searchable.append(" ".join(filter(None, (conversation.subject, contact["name"] if contact else None))))
        for text in filter(None, searchable):  # the index row takes the rowid its search_rows row got
            self._database.defer("INSERT INTO search_rows (conversation_id) VALUES (?)", (conversation.id,))
            self._database.defer("INSERT INTO message_search (rowid, text) VALUES (last_insert_rowid(), ?)", (text,))
        return conversation

    # messages

    async def get_message(self, message_id: str) -> Message:
        row = self._database.row("SELECT * FROM messages WHERE id = ?", (message_id,))
        if row is None:
            raise NotFound(f"message {message_id} not found")
        return message_from_row(row)

    async def message_by_external_id(self, channel_id: str, external_id: str) -> Message | None:
        row = self._database.row(
            "SELECT * FROM messages WHERE channel_id = ? AND external_id = ?", (channel_id, external_id)
        )
        return message_from_row(row) if row else None

    async def message_by_idempotency_key(self, author_id: str, key: str) -> Message | None:
        row = self._database.row("SELECT * FROM messages WHERE author_id = ? AND idempotency_key = ?", (author_id, key))
        return message_from_row(row) if row else None

    async def set_delivery_status(self, message_id: str, status: DeliveryStatus, error: str | None) -> Message:
        with self._database.unit() as db:
            row = db.execute(
                "UPDATE messages SET delivery_status = ?, delivery_error = ? WHERE id = ? RETURNING *",
                (str(status), error, message_id),
            ).fetchone()
        if row is None:
            raise NotFound(f"message {message_id} not found")
        return message_from_row(row)

    async def last_inbound_message(self, conversation_id: str) -> Message | None:
        row = self._database.row(
            "SELECT * FROM messages WHERE conversation_id = ? AND direction = 'in'"
            " ORDER BY created_at DESC, id DESC LIMIT 1",
            (conversation_id,),
        )
        return message_from_row(row) if row else None

    async def list_messages(self, conversation_id: str, *, limit: int, cursor: str | None = None) -> Page[Message]:
        sql = "SELECT * FROM messages WHERE conversation_id = ?"
        params: list[Any] = [conversation_id]
        if cursor is not None:
            position = Cursor.decode(cursor)
            sql += " AND (created_at, id) > (?, ?)"
            params += [position.sort_value, position.id]
        rows = self._database.rows(sql + " ORDER BY created_at, id LIMIT ?", (*params, limit + 1))
        return page_of([message_from_row(r) for r in rows], limit, lambda m: Cursor(to_micros(m.created_at), m.id))

    async def auto_replies_in(self, conversation_id: str) -> dict[str, datetime]:
        rows = self._database.rows(
            "SELECT json_extract(extras, '$.trigger') AS trigger, MAX(created_at) AS at FROM messages"
            " WHERE conversation_id = ? AND kind = 'auto_reply' GROUP BY 1",
            (conversation_id,),
        )
        return {row["trigger"]: from_micros(row["at"]) for row in rows if row["trigger"] is not None}

    async def auto_replies_to(self, contact_id: str, since: datetime) -> list[datetime]:
        rows = self._database.rows(
            "SELECT m.created_at FROM conversations c JOIN messages m ON m.conversation_id = c.id"
            " WHERE c.contact_id = ? AND m.created_at >= ? AND m.kind = 'auto_reply' ORDER BY m.created_at",
            (contact_id, to_micros(since)),
        )
        return [from_micros(row["created_at"]) for row in rows]

    # connector bookkeeping

    async def quarantine(self, record: Unparsed) -> Unparsed:
        self._database.execute(
            "INSERT OR IGNORE INTO unparsed (id, channel_id, external_id, source, reason, raw_sha256, size,"
            " created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (
                record.id,
                record.channel_id,
                record.external_id,
                record.source,
                record.reason,
                record.raw_sha256,
                record.size,
                to_micros(record.created_at),
            ),
        )
        row = self._database.row(
            "SELECT * FROM unparsed WHERE channel_id = ? AND external_id = ?", (record.channel_id, record.external_id)
        )
        assert row is not None
        return unparsed_from_row(row)

    async def list_quarantine(self, *, limit: int, cursor: str | None = None) -> Page[Unparsed]:
        rows = self._keyset("unparsed u", ("u.created_at", "u.id"), [], [], limit, cursor)
        return page_of([unparsed_from_row(r) for r in rows], limit, lambda u: Cursor(to_micros(u.created_at), u.id))

    async def get_unparsed(self, unparsed_id: str) -> Unparsed:
        row = self._database.row("SELECT * FROM unparsed WHERE id = ?", (unparsed_id,))
        if row is None:
            raise NotFound(f"quarantined item {unparsed_id} not found")
        return unparsed_from_row(row)

    async def list_routing_objects(self, kind: str) -> list[dict[str, Any]]:
        rows = self._database.rows("SELECT body FROM routing_objects WHERE kind = ? ORDER BY position, id", (kind,))
        return [json.loads(row["body"]) for row in rows]

    async def put_routing_object(self, kind: str, object_id: str, body: Mapping[str, Any], position: int = 0) -> None:
        self._database.execute(
            "INSERT INTO routing_objects (kind, id, position, body) VALUES (?, ?, ?, ?)"
            " ON CONFLICT (kind, id) DO UPDATE SET position = excluded.position, body = excluded.body",
            (kind, object_id, position, json.dumps(body, ensure_ascii=False)),
        )

    async def delete_routing_object(self, kind: str, object_id: str) -> bool:
        return self._database.execute("DELETE FROM routing_objects WHERE kind = ? AND id = ?", (kind, object_id)) > 0

    async def set_timer(self, timer: Timer) -> None:
        self._database.execute(
            "INSERT INTO timers (id, kind, conversation_id, due_at, payload) VALUES (?, ?, ?, ?, ?)"
            " ON CONFLICT (kind, conversation_id) DO UPDATE SET due_at = excluded.due_at, payload = excluded.payload",
            (
                timer.id,
                timer.kind,
                timer.conversation_id,
                to_micros(timer.due_at),
                json.dumps(timer.payload, ensure_ascii=False),
            ),
        )

    async def cancel_timer(self, kind: str, conversation_id: str) -> bool:
        deleted = "DELETE FROM timers WHERE kind = ? AND conversation_id = ?"
        return self._database.execute(deleted, (kind, conversation_id)) > 0

    async def due_timers(self, now: datetime, *, limit: int) -> list[Timer]:
        rows = self._database.rows(
            "SELECT * FROM timers WHERE due_at <= ? ORDER BY due_at, id LIMIT ?", (to_micros(now), limit)
        )
        return [timer_from_row(row) for row in rows]

    async def delete_timer(self, timer: Timer) -> bool:
        return 0 < self._database.execute(
            "DELETE FROM timers WHERE kind = ? AND conversation_id = ? AND due_at = ?",
            (timer.kind, timer.conversation_id, to_micros(timer.due_at)),
        )

    async def get_sync_state(self, key: str) -> str | None:
        row = self._database.row("SELECT value FROM sync_state WHERE key = ?", (key,))
        return row["value"] if row else None

    async def set_sync_state(self, key: str, value: str) -> None:
        self._database.execute(
            "INSERT INTO sync_state (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            (key, value),
        )

    # outbox

    async def claim_outbox(self, *, now: datetime, lease_until: datetime, limit: int) -> list[OutboxItem]:
        with self._database.unit() as db:
            rows = db.execute(
                "UPDATE outbox SET leased_until = ? WHERE id IN (SELECT id FROM outbox"
                " WHERE next_attempt_at <= ? AND leased_until <= ? ORDER BY next_attempt_at LIMIT ?)"
                " RETURNING *",
                (to_micros(lease_until), to_micros(now), to_micros(now), limit),
            ).fetchall()
        return sorted((outbox_from_row(r) for r in rows), key=lambda item: item.next_attempt_at)

    async def next_outbox_due(self) -> datetime | None:
        row = self._database.row("SELECT min(max(next_attempt_at, leased_until)) FROM outbox")
        return from_micros(row[0]) if row else None

    async def finish_outbox(
        self,
        item: OutboxItem,
        *,
        status: DeliveryStatus,
        error: str | None = None,
        external_id: str | None = None,
    ) -> Message:
        with self._database.unit() as db:
            db.execute("DELETE FROM outbox WHERE id = ?", (item.id,))
            row = db.execute(
                "UPDATE messages SET delivery_status = ?, delivery_error = ?,"
                " extras = json_set(extras, '$.delivery_external_id', ?) WHERE id = ? RETURNING *",
                (str(status), error, external_id, item.message_id),
            ).fetchone()
        if row is None:
            raise NotFound(f"message {item.message_id} not found")
        return message_from_row(row)

    async def requeue_message(self, item: OutboxItem) -> Message:
        with self._database.unit() as db:
            row = db.execute(
                "UPDATE messages SET delivery_status = 'queued', delivery_error = NULL"
                " WHERE id = ? AND delivery_status = 'failed' RETURNING *",
                (item.message_id,),
            ).fetchone()
            if row is None:
                if db.execute("SELECT 1 FROM messages WHERE id = ?", (item.message_id,)).fetchone() is None:
                    raise NotFound(f"message {item.message_id} not found")
                raise Conflict(f"message {item.message_id} has not failed; nothing to resend")
            _insert_outbox(db, item)
        return message_from_row(row)

    async def retry_outbox(self, item: OutboxItem, *, next_attempt_at: datetime, error: str) -> None:
        self._database.execute(
            "UPDATE outbox SET attempts = attempts + 1, next_attempt_at = ?, leased_until = 0,"
            " last_error = ? WHERE id = ?",
            (to_micros(next_attempt_at), error, item.id),
        )

    async def pending_outbox_count(self) -> int:
        row = self._database.row("SELECT count(*) FROM outbox")
        return int(row[0]) if row else 0


def _insert_outbox(db: sqlite3.Connection, item: OutboxItem) -> None:
    db.execute(
        "INSERT INTO outbox (id, message_id, channel_id, attempts, next_attempt_at, last_error, created_at)"
        " VALUES (?, ?, ?, ?, ?, ?, ?)",
        (
            item.id,
            item.message_id,
            item.channel_id,
            item.attempts,
            to_micros(item.next_attempt_at),
            item.last_error,
            to_micros(item.created_at),
        ),
    )
