"""SQLite adapter: the embedded default. The schema lives in :mod:`storage.sqlite.schema`."""

from storage.sqlite.store import SqliteStore

__all__ = ["SqliteStore"]
