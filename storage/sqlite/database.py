"""One SQLite connection shared by the event loop, with group commit and background checkpoints.

Why group commit: a commit writes every page the transaction dirtied to the WAL (about 30
pages for one inbound message: the message, its conversation's index entries, the FTS segment),
so one commit per message costs far more than the statements themselves. Instead, every unit of
work runs inside a ``SAVEPOINT`` of a transaction that stays open for two turns of the event
loop, after which one ``COMMIT`` makes the whole batch durable. Under load a batch holds every
request handled in those turns; when idle it holds one, committed two turns later. Two turns
rather than one: work that was in flight when the batch opened (a parsed message coming back
from the parser thread, a read that just returned) joins it instead of starting the next one,
which made SMTP intake under load ~5% faster (fewer commits and larger FTS segments per message).

A unit that fails rolls back to its savepoint and leaves the rest of the batch alone. Nothing is
acknowledged before it is durable: the service awaits :meth:`Database.settled` (the port's
``Store.durable``) once per operation, before it answers or publishes an event, so a request
suspends once, however many units it wrote.

Checkpoints (copying the WAL back into the database file, with an fsync) would stall the loop
for milliseconds on a real disk, so automatic checkpoints are off and a worker thread runs a
passive checkpoint every second on its own connection; SQLite releases the GIL while it works.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import logging
import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from inbox.errors import Conflict, StorageError, Unavailable

__all__ = ["Database", "mapped_errors", "storage_error"]

log = logging.getLogger(__name__)


def storage_error(exc: sqlite3.Error) -> StorageError:
    """The :mod:`inbox.errors` equivalent of a driver error: the one place they are translated."""
    if isinstance(exc, sqlite3.IntegrityError):
        return Conflict(str(exc))
    if isinstance(exc, sqlite3.OperationalError):
        return Unavailable(f"SQLite: {exc}")
    return StorageError(f"SQLite: {exc}")


@contextmanager
def mapped_errors() -> Iterator[None]:
    try:
        yield
    except sqlite3.Error as exc:
        raise storage_error(exc) from exc


_written_in: contextvars.ContextVar[asyncio.Future[None] | None] = contextvars.ContextVar(
    "sqlite_batch_written_in", default=None
)
"""The batch the current task last wrote into (each request runs in its own task)."""


class Database:
    def __init__(self, path: str, *, synchronous: str, checkpoint_interval: float = 1.0) -> None:
        self.path = path
        self._synchronous = synchronous
        self._checkpoint_interval = checkpoint_interval
        self._connection: sqlite3.Connection | None = None
        self._batch: asyncio.Future[None] | None = None
        self._deferred: list[tuple[str, Sequence[Any]]] = []
        self._checkpointer: asyncio.Task[None] | None = None
        self._stopping = asyncio.Event()

    def connect(self) -> sqlite3.Connection:
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        with mapped_errors():
            connection = self._open_connection()
            connection.execute("PRAGMA foreign_keys = ON")
            if self.path != ":memory:":
                connection.execute("PRAGMA wal_autocheckpoint = 0")
        self._connection = connection
        if self.path != ":memory:":
            self._stopping = asyncio.Event()
            self._checkpointer = asyncio.get_running_loop().create_task(self._checkpoint_forever())
        return connection

    def _open_connection(self) -> sqlite3.Connection:
        connection = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        connection.row_factory = sqlite3.Row
        connection.execute("PRAGMA journal_mode = WAL")
        connection.execute(f"PRAGMA synchronous = {self._synchronous}")
        connection.execute("PRAGMA busy_timeout = 5000")
        connection.execute("PRAGMA cache_size = -65536")  # 64 MiB: inbox-view indexes stay in memory
        connection.execute("PRAGMA temp_store = MEMORY")
        return connection

    async def close(self) -> None:
        if self._checkpointer is not None:
            # not cancel(): a checkpoint running in its thread must finish before its connection closes
            self._stopping.set()
            await self._checkpointer
            self._checkpointer = None
        if self._connection is not None:
            if self._batch is not None:
                self._commit()
            self._connection.close()  # the last connection to close checkpoints the WAL
            self._connection = None

    @property
    def connection(self) -> sqlite3.Connection:
        if self._connection is None:
            raise Unavailable("store is not open")
        return self._connection

    # reading

    def rows(self, sql: str, params: Sequence[Any] = ()) -> list[sqlite3.Row]:
        try:  # not `with mapped_errors()`: reads are the hot path, and a generator costs microseconds
            return self.connection.execute(sql, params).fetchall()
        except sqlite3.Error as exc:
            raise storage_error(exc) from exc

    def row(self, sql: str, params: Sequence[Any] = ()) -> sqlite3.Row | None:
        try:
            return self.connection.execute(sql, params).fetchone()
        except sqlite3.Error as exc:
            raise storage_error(exc) from exc

    # writing

    @contextmanager
    def unit(self) -> Iterator[sqlite3.Connection]:
        """One atomic unit of work in the current batch; await :meth:`settled` after it."""
        connection = self.connection
        with mapped_errors():
            if self._batch is None:
                connection.execute("BEGIN IMMEDIATE")
                loop = asyncio.get_running_loop()
                self._batch = loop.create_future()
                loop.call_soon(loop.call_soon, self._commit)  # two turns: see the module's docstring
            connection.execute("SAVEPOINT unit")
            try:
                yield connection
            except BaseException:
                connection.execute("ROLLBACK TO unit")
                connection.execute("RELEASE unit")
                raise
            connection.execute("RELEASE unit")
            _written_in.set(self._batch)

    def defer(self, sql: str, params: Sequence[Any]) -> None:
        """Runs ``sql`` at the batch's commit, outside any savepoint: for full-text index rows,
        which FTS5 would otherwise flush into a new segment at every savepoint release. Deferred
        statements run one after another in the order given (so one may read ``last_insert_rowid()``
        of the one before). Call it only after the unit the rows belong to succeeded."""
        if self._batch is None:
            raise RuntimeError("defer() needs an open batch")
        self._deferred.append((sql, params))

    def execute(self, sql: str, params: Sequence[Any] = ()) -> int:
        """One statement as a unit of work; returns the number of rows it changed."""
        with self.unit() as connection:
            return connection.execute(sql, params).rowcount

    async def settled(self) -> None:
        """Returns once the caller's writes and everything it could have read are committed;
        raises ``Unavailable`` if the batch its writes went into failed, however late it asks.
        A caller cancelled while it waits still owns its writes: asked again, or from a task it
        starts, this waits for the same batch."""
        mine, current = _written_in.get(), self._batch
        try:
            for batch in (mine, current):
                if batch is not None:
                    await asyncio.shield(batch)
        except asyncio.CancelledError:
            raise
        except BaseException:
            _written_in.set(None)  # told once
            raise
        _written_in.set(None)

    def _commit(self) -> None:
        batch, self._batch = self._batch, None
        deferred, self._deferred = self._deferred, []
        if batch is None:
            return
        try:
            for sql, params in deferred:
                self.connection.execute(sql, params)
            self.connection.execute("COMMIT")
        except sqlite3.Error as exc:
            log.error("group commit failed, the batch is rolled back: %s", exc)
            with contextlib.suppress(sqlite3.Error):
                self.connection.execute("ROLLBACK")
            batch.set_exception(Unavailable(f"SQLite commit failed: {exc}"))
            batch.exception()  # retrieved here; every waiter re-raises it
        else:
            batch.set_result(None)

    # checkpoints

    async def _checkpoint_forever(self) -> None:
        connection = await asyncio.to_thread(self._open_connection)
        try:
            while True:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stopping.wait(), self._checkpoint_interval)
                    return
                try:
                    await asyncio.to_thread(connection.execute, "PRAGMA wal_checkpoint(PASSIVE)")
                except sqlite3.Error as exc:
                    log.warning("WAL checkpoint failed (will retry): %s", exc)
        finally:
            connection.close()
