"""MongoDB adapter: several processes share one database (PyMongo's async client).

Queries and document shapes live in :mod:`storage.mongo.queries`, text search terms in
:mod:`storage.mongo.search`, indexes in :mod:`storage.mongo.indexes`.
"""

from storage.mongo.store import MongoStore

__all__ = ["MongoStore"]
