"""The SQLite group commit: units are atomic, batches commit together, checkpoints run in the background."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import pytest

from inbox.errors import Conflict, Unavailable
from storage.sqlite.database import Database
from storage.sqlite.schema import MIGRATIONS, migrate


async def _database(tmp_path: Path, **kwargs) -> Database:
    database = Database(str(tmp_path / "db.sqlite3"), synchronous="NORMAL", **kwargs)
    database.connect().execute("CREATE TABLE t (k TEXT PRIMARY KEY, v TEXT)")
    return database


def _committed_rows(tmp_path: Path) -> list[tuple[str, str]]:
    """What another connection sees: only committed rows."""
    with sqlite3.connect(tmp_path / "db.sqlite3") as other:
        return other.execute("SELECT k, v FROM t ORDER BY k").fetchall()


async def test_units_of_one_turn_commit_together_and_a_failed_unit_leaves_the_rest(tmp_path: Path) -> None:
    database = await _database(tmp_path)
    try:
        database.execute("INSERT INTO t VALUES ('a', '1')")
        with pytest.raises(Conflict):
            with database.unit() as connection:
                connection.execute("INSERT INTO t VALUES ('b', '2')")
                connection.execute("INSERT INTO t VALUES ('a', 'duplicate')")
        database.execute("INSERT INTO t VALUES ('c', '3')")
        assert [r["k"] for r in database.rows("SELECT k FROM t ORDER BY k")] == ["a", "c"]
        assert _committed_rows(tmp_path) == []  # not yet: the batch commits two turns of the loop later
        await database.settled()
        assert _committed_rows(tmp_path) == [("a", "1"), ("c", "3")]
    finally:
        await database.close()


async def test_a_unit_written_on_the_next_turn_joins_the_open_batch(tmp_path: Path) -> None:
    database = await _database(tmp_path)
    try:
        database.execute("INSERT INTO t VALUES ('a', '1')")
        await asyncio.sleep(0)  # one turn: what was in flight when the batch opened still joins it
        assert _committed_rows(tmp_path) == []
        database.execute("INSERT INTO t VALUES ('b', '2')")
        await database.settled()
        assert _committed_rows(tmp_path) == [("a", "1"), ("b", "2")]
        database.execute("INSERT INTO t VALUES ('c', '3')")  # a new batch, committed on its own
        await database.settled()
        assert _committed_rows(tmp_path) == [("a", "1"), ("b", "2"), ("c", "3")]
    finally:
        await database.close()


async def test_a_failed_commit_reaches_its_writers_even_when_they_ask_late(tmp_path: Path) -> None:
    database = await _database(tmp_path)
    try:
        database.execute("CREATE TABLE child (parent TEXT REFERENCES t (k))")
        await database.settled()
        database.connection.execute("PRAGMA foreign_keys = ON")
        database.connection.execute("PRAGMA defer_foreign_keys = ON")  # checked only at COMMIT

        async def writer(key: str, *, bad: bool = False) -> None:
            database.execute("INSERT INTO t VALUES (?, 'x')", (key,))
            if bad:
                database.execute("INSERT INTO child VALUES ('missing')")
            await asyncio.sleep(0.05)  # asks after the batch has already failed
            await database.settled()

        results = await asyncio.gather(writer("a"), writer("b", bad=True), writer("c"), return_exceptions=True)
        assert [type(r) for r in results] == [Unavailable] * 3, results
        assert _committed_rows(tmp_path) == []

        async def clean_writer() -> None:
            database.execute("INSERT INTO t VALUES ('d', 'x')")
            await database.settled()

        await asyncio.create_task(clean_writer())  # a new task: the next batch works again
        assert _committed_rows(tmp_path) == [("d", "x")]
    finally:
        await database.close()


async def test_background_checkpoint_moves_the_wal_into_the_database_file(tmp_path: Path) -> None:
    database = await _database(tmp_path, checkpoint_interval=0.05)
    try:
        await database.settled()
        before = (tmp_path / "db.sqlite3").stat().st_size
        for index in range(200):
            database.execute("INSERT INTO t VALUES (?, ?)", (f"k{index}", "x" * 4000))
        await database.settled()
        for _ in range(100):
            await asyncio.sleep(0.05)
            if (tmp_path / "db.sqlite3").stat().st_size > before + 500_000:
                break
        assert (tmp_path / "db.sqlite3").stat().st_size > before + 500_000
    finally:
        await database.close()


def test_migrations_bring_an_old_database_up_and_drop_routings_old_marks(tmp_path: Path) -> None:
    connection = sqlite3.connect(tmp_path / "old.db", isolation_level=None)
    for number, script in enumerate(MIGRATIONS[:5], start=1):
        connection.executescript(f"BEGIN;\n{script}\nPRAGMA user_version = {number};\nCOMMIT;")
    rows = [
        ("routing:auto_reply:c1:acknowledgement", "2026-11-27T10:00:00+00:00"),
        ("routing:auto_reply_contact:ct1", "[]"),
        ("imap:ch1:INBOX", "17:42"),
    ]
    connection.executemany("INSERT INTO sync_state (key, value) VALUES (?, ?)", rows)
    assert migrate(connection) == len(MIGRATIONS)
    assert connection.execute("SELECT key, value FROM sync_state").fetchall() == [("imap:ch1:INBOX", "17:42")]
    assert connection.execute("PRAGMA user_version").fetchone() == (len(MIGRATIONS),)
    assert migrate(connection) == len(MIGRATIONS)  # nothing left to apply


def test_migration_7_keeps_the_search_index_without_a_second_copy_of_the_texts(tmp_path: Path) -> None:
    connection = sqlite3.connect(tmp_path / "old.db", isolation_level=None)
    for number, script in enumerate(MIGRATIONS[:6], start=1):
        connection.executescript(f"BEGIN;\n{script}\nPRAGMA user_version = {number};\nCOMMIT;")
    texts = [("Посылка повреждена при доставке", "c1"), ("Где мой заказ?", "c2"), ("Заказ Ирина Петрова", "c1")]
    connection.executemany("INSERT INTO message_search (text, conversation_id) VALUES (?, ?)", texts)
    before = connection.execute("SELECT rowid, conversation_id FROM message_search ORDER BY rowid").fetchall()

    assert migrate(connection) == len(MIGRATIONS)

    assert connection.execute("SELECT id, conversation_id FROM search_rows ORDER BY id").fetchall() == before

    def found(query: str) -> list[str]:
        return [
            conversation_id
            for (conversation_id,) in connection.execute(
                "SELECT conversation_id FROM search_rows WHERE id IN"
                " (SELECT rowid FROM message_search WHERE message_search MATCH ?) ORDER BY id",
                (query,),
            )
        ]

    assert found('"поврежд"*') == ["c1"]
    assert found('"заказ"*') == ["c2", "c1"]
    assert connection.execute("SELECT DISTINCT text FROM message_search").fetchall() == [(None,)]
    tables = {name for (name,) in connection.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert "message_search_content" not in tables and "message_search_with_copies" not in tables
