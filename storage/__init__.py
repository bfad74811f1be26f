"""Persistence: the :class:`~storage.base.Store` port and its adapters (SQLite, MongoDB)."""

from storage.base import UNASSIGNED, ConversationFilter, Cursor, Page, Store

__all__ = ["UNASSIGNED", "ConversationFilter", "Cursor", "Page", "Store", "open_store"]


def open_store(url: str, *, sqlite_durability: str = "normal") -> Store:
    """The adapter for a database URL: ``sqlite:///path/to/file`` or ``mongodb://…``.

    Adapters are imported here, lazily, so a SQLite deployment never imports PyMongo.
    """
    if url.startswith("sqlite:///"):
        from storage.sqlite import SqliteStore

        return SqliteStore(url.removeprefix("sqlite:///") or ":memory:", durability=sqlite_durability)
    if url.startswith(("mongodb://", "mongodb+srv://")):
        from storage.mongo import MongoStore

        return MongoStore(url)
    raise ValueError(f"unsupported database URL {url!r}: use sqlite:///PATH or mongodb://…")
