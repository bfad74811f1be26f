"""The SQLite schema, as forward migrations.

``PRAGMA user_version`` records how many migrations a database file has had; :func:`migrate`
applies the rest, each in its own transaction, on every start. Never edit a released migration:
append a new one.

Timestamps are integer microseconds since the Unix epoch (UTC): they sort, compare and index
cheaply, and the adapter turns them back into aware datetimes.
"""

from __future__ import annotations

import sqlite3

__all__ = ["MIGRATIONS", "migrate"]

MIGRATIONS: tuple[str, ...] = (
    # 1: the core inbox
    """
    CREATE TABLE channels (
        id TEXT PRIMARY KEY,
        kind TEXT NOT NULL,
        name TEXT NOT NULL,
        settings TEXT NOT NULL,
        secret_hash TEXT UNIQUE,
        created_at INTEGER NOT NULL
    );

    CREATE TABLE operators (
        id TEXT PRIMARY KEY,
        email TEXT NOT NULL UNIQUE COLLATE NOCASE,
        name TEXT NOT NULL,
        role TEXT NOT NULL,
        presence TEXT NOT NULL,
        focus_mode INTEGER NOT NULL,
        max_open INTEGER,
        teams TEXT NOT NULL,
        password_hash TEXT,
        token_hash TEXT NOT NULL UNIQUE,
        created_at INTEGER NOT NULL
    );

    CREATE TABLE contacts (
        id TEXT PRIMARY KEY,
        name TEXT,
        email TEXT,
        phone TEXT,
        attributes TEXT NOT NULL,
        created_at INTEGER NOT NULL
    );
    CREATE INDEX contacts_by_created ON contacts (created_at DESC, id DESC);

    CREATE TABLE contact_identities (
        channel_kind TEXT NOT NULL,
        external_id TEXT NOT NULL,
        contact_id TEXT NOT NULL REFERENCES contacts (id),
        PRIMARY KEY (channel_kind, external_id)
    ) WITHOUT ROWID;
    CREATE INDEX contact_identities_by_contact ON contact_identities (contact_id);

    CREATE TABLE counters (
        name TEXT PRIMARY KEY,
        value INTEGER NOT NULL
    ) WITHOUT ROWID;
    INSERT INTO counters (name, value) VALUES ('conversation_number', 1000);

    CREATE TABLE conversations (
        id TEXT PRIMARY KEY,
        number INTEGER NOT NULL UNIQUE,
        channel_id TEXT NOT NULL REFERENCES channels (id),
        contact_id TEXT NOT NULL REFERENCES contacts (id),
        subject TEXT,
        status TEXT NOT NULL,
        priority TEXT NOT NULL,
        assignee_id TEXT,
        team_id TEXT,
        tags TEXT NOT NULL,
        created_at INTEGER NOT NULL,
        updated_at INTEGER NOT NULL,
        last_message_at INTEGER NOT NULL,
        last_inbound_at INTEGER,
        first_response_at INTEGER,
        waiting_since INTEGER,
        snoozed_until INTEGER,
        resolved_at INTEGER
    );
    CREATE INDEX conversations_by_activity ON conversations (last_message_at DESC, id DESC);
    CREATE INDEX conversations_by_status ON conversations (status, last_message_at DESC, id DESC);
    CREATE INDEX conversations_by_assignee
        ON conversations (assignee_id, last_message_at DESC, id DESC);
    CREATE INDEX conversations_by_channel
        ON conversations (channel_id, last_message_at DESC, id DESC);
    CREATE INDEX conversations_by_team ON conversations (team_id, last_message_at DESC, id DESC);
    CREATE INDEX conversations_by_contact
        ON conversations (contact_id, last_message_at DESC, id DESC);

    CREATE TABLE conversation_tags (
        tag TEXT NOT NULL,
        conversation_id TEXT NOT NULL REFERENCES conversations (id),
        last_message_at INTEGER NOT NULL,
        PRIMARY KEY (tag, conversation_id)
    ) WITHOUT ROWID;
    CREATE INDEX conversation_tags_by_activity
        ON conversation_tags (tag, last_message_at DESC, conversation_id DESC);
    CREATE INDEX conversation_tags_by_conversation ON conversation_tags (conversation_id);

    CREATE TABLE thread_keys (
        key TEXT NOT NULL,
        conversation_id TEXT NOT NULL REFERENCES conversations (id),
        PRIMARY KEY (key, conversation_id)
    ) WITHOUT ROWID;

    CREATE TABLE messages (
        id TEXT PRIMARY KEY,
        conversation_id TEXT NOT NULL REFERENCES conversations (id),
        channel_id TEXT NOT NULL,
        direction TEXT NOT NULL,
        kind TEXT NOT NULL,
        text TEXT NOT NULL,
        html TEXT,
        author_id TEXT,
        attachments TEXT NOT NULL,
        external_id TEXT,
        idempotency_key TEXT,
        delivery_status TEXT,
        delivery_error TEXT,
        extras TEXT NOT NULL,
        created_at INTEGER NOT NULL
    );
    CREATE UNIQUE INDEX messages_by_external_id
        ON messages (channel_id, external_id) WHERE external_id IS NOT NULL;
    CREATE UNIQUE INDEX messages_by_idempotency_key
        ON messages (author_id, idempotency_key) WHERE idempotency_key IS NOT NULL;
    CREATE INDEX messages_by_conversation ON messages (conversation_id, created_at, id);

    CREATE VIRTUAL TABLE message_search USING fts5 (
        text,
        conversation_id UNINDEXED,
        tokenize = 'unicode61 remove_diacritics 2'
    );

    CREATE TABLE outbox (
        id TEXT PRIMARY KEY,
        message_id TEXT NOT NULL UNIQUE REFERENCES messages (id),
        channel_id TEXT NOT NULL,
        attempts INTEGER NOT NULL,
        next_attempt_at INTEGER NOT NULL,
        leased_until INTEGER NOT NULL DEFAULT 0,
        last_error TEXT,
        created_at INTEGER NOT NULL
    );
    CREATE INDEX outbox_by_due ON outbox (next_attempt_at);
    """,
    # 2: connector bookkeeping: quarantined inbound items and sync positions
    """
    CREATE TABLE unparsed (
        id TEXT PRIMARY KEY,
        channel_id TEXT NOT NULL,
        external_id TEXT NOT NULL,
        source TEXT NOT NULL,
        reason TEXT NOT NULL,
        raw_sha256 TEXT NOT NULL,
        size INTEGER NOT NULL,
        created_at INTEGER NOT NULL,
        UNIQUE (channel_id, external_id)
    );
    CREATE INDEX unparsed_by_created ON unparsed (created_at DESC, id DESC);

    CREATE TABLE sync_state (
        key TEXT PRIMARY KEY,
        value TEXT NOT NULL
    ) WITHOUT ROWID;
    """,
    # 3: who besides the contact may write into a conversation (email To / Cc of the thread)
    """
    CREATE TABLE participants (
        key TEXT NOT NULL,
        conversation_id TEXT NOT NULL REFERENCES conversations (id),
        PRIMARY KEY (key, conversation_id)
    ) WITHOUT ROWID;
    """,
    # 4: routing: its editable objects (rules, calendars, templates, teams) and durable timers
    """
    CREATE TABLE routing_objects (
        kind TEXT NOT NULL,
        id TEXT NOT NULL,
        position INTEGER NOT NULL,
        body TEXT NOT NULL,
        PRIMARY KEY (kind, id)
    ) WITHOUT ROWID;

    CREATE TABLE timers (
        id TEXT PRIMARY KEY,
        kind TEXT NOT NULL,
        conversation_id TEXT NOT NULL REFERENCES conversations (id),
        due_at INTEGER NOT NULL,
        payload TEXT NOT NULL,
        UNIQUE (kind, conversation_id)
    );
    CREATE INDEX timers_by_due ON timers (due_at, id);
    """,
    # 5: web UI sign-in: server-side sessions (id = sha256 of the cookie token) and operator preferences
    """
    CREATE TABLE sessions (
        id TEXT PRIMARY KEY,
        operator_id TEXT NOT NULL,
        csrf_token TEXT NOT NULL,
        created_at INTEGER NOT NULL,
        expires_at INTEGER NOT NULL,
        last_seen_at INTEGER NOT NULL
    ) WITHOUT ROWID;
    CREATE INDEX sessions_by_operator ON sessions (operator_id);
    CREATE INDEX sessions_by_expiry ON sessions (expires_at);

    ALTER TABLE operators ADD COLUMN locale TEXT;
    ALTER TABLE operators ADD COLUMN time_zone TEXT;
    """,
    # 6: routing's auto-reply marks are the stored auto-replies themselves: their old rows go
    """
    DELETE FROM sync_state WHERE key GLOB 'routing:auto_reply:*' OR key GLOB 'routing:auto_reply_contact:*';
    """,
    # 7: the search index keeps no second copy of every text (FTS5 without content): an indexed
    # text's rowid leads to its conversation through search_rows. Existing rows keep their rowids.
    """
    ALTER TABLE message_search RENAME TO message_search_with_copies;
    CREATE TABLE search_rows (
        id INTEGER PRIMARY KEY,
        conversation_id TEXT NOT NULL REFERENCES conversations (id)
    );
    CREATE VIRTUAL TABLE message_search USING fts5 (
        text,
        content = '',
        tokenize = 'unicode61 remove_diacritics 2'
    );
    INSERT INTO search_rows (id, conversation_id) SELECT rowid, conversation_id FROM message_search_with_copies;
    INSERT INTO message_search (rowid, text) SELECT rowid, text FROM message_search_with_copies;
    DROP TABLE message_search_with_copies;
    """,
    # 8: the newest-first indexes, stored oldest first. SQLite reads an index backwards as cheaply
    # (tests/storage/test_sqlite_plans.py: every page is still read in order), and a new entry now
    # lands at the right-hand end of its B-tree, where a full page splits off one new page instead
    # of being rebalanced with its neighbours: fewer pages written and copied per commit.
    """
    DROP INDEX contacts_by_created;
    CREATE INDEX contacts_by_created ON contacts (created_at, id);
    DROP INDEX conversations_by_activity;
    CREATE INDEX conversations_by_activity ON conversations (last_message_at, id);
    DROP INDEX conversations_by_status;
    CREATE INDEX conversations_by_status ON conversations (status, last_message_at, id);
    DROP INDEX conversations_by_assignee;
    CREATE INDEX conversations_by_assignee ON conversations (assignee_id, last_message_at, id);
    DROP INDEX conversations_by_channel;
    CREATE INDEX conversations_by_channel ON conversations (channel_id, last_message_at, id);
    DROP INDEX conversations_by_team;
    CREATE INDEX conversations_by_team ON conversations (team_id, last_message_at, id);
    DROP INDEX conversations_by_contact;
    CREATE INDEX conversations_by_contact ON conversations (contact_id, last_message_at, id);
    DROP INDEX conversation_tags_by_activity;
    CREATE INDEX conversation_tags_by_activity ON conversation_tags (tag, last_message_at, conversation_id);
    DROP INDEX unparsed_by_created;
    CREATE INDEX unparsed_by_created ON unparsed (created_at, id);
    """,
)


def migrate(connection: sqlite3.Connection) -> int:
    """Applies pending migrations; returns the schema version the database is now at."""
    (version,) = connection.execute("PRAGMA user_version").fetchone()
    if version > len(MIGRATIONS):
        raise RuntimeError(
            f"database schema version {version} is newer than this program knows ({len(MIGRATIONS)}); upgrade Inbox"
        )
    for number, script in enumerate(MIGRATIONS[version:], start=version + 1):
        # executescript() commits first, so the whole step runs in one explicit transaction.
        connection.executescript(f"BEGIN IMMEDIATE;\n{script}\nPRAGMA user_version = {number};\nCOMMIT;")
    return len(MIGRATIONS)
