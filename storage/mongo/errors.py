"""Driver errors become :mod:`inbox.errors` here and nowhere else.

::

    DuplicateKeyError                         → Conflict      (a unique index refused a write)
    ConnectionFailure (ServerSelectionTimeout,
      AutoReconnect, NetworkTimeout, …)      → Unavailable   (callers answer "try again later")
    any other PyMongoError, BSONError         → StorageError  (e.g. a document over 16 MB)
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from bson.errors import BSONError
from pymongo.errors import ConnectionFailure, DuplicateKeyError, PyMongoError

from inbox.errors import Conflict, StorageError, Unavailable

__all__ = ["mapped_errors"]


@contextmanager
def mapped_errors() -> Iterator[None]:
    try:
        yield
    except DuplicateKeyError as exc:
        raise Conflict(_duplicate(exc)) from exc
    except ConnectionFailure as exc:
        raise Unavailable(f"MongoDB: {exc}") from exc
    except (PyMongoError, BSONError) as exc:
        raise StorageError(f"MongoDB: {exc}") from exc


def _duplicate(exc: DuplicateKeyError) -> str:
    """Names the unique key, not its value: the value may be someone's email or token hash."""
    fields = list((exc.details or {}).get("keyPattern") or ())
    return f"duplicate {', '.join(fields)}" if fields else "duplicate key"
