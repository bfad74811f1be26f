"""One tree of errors for the whole product.

::

    InboxError
    ├── ValidationError        bad input from a user or a script (HTTP 400 / 422)
    ├── PermissionDenied       authenticated, but the role does not allow it (HTTP 403)
    ├── ConnectorError
    │   ├── PayloadError       a channel sent something we cannot read
    │   ├── AuthError          a channel's credentials or signature are wrong
    │   └── DeliveryError      sending failed; ``retryable`` tells the outbox whether to try again
    └── StorageError
        ├── NotFound
        ├── Conflict           a unique constraint (duplicate external id, idempotency key)
        └── Unavailable        the database cannot be reached; callers answer "try again later"

Adapters translate driver errors into this tree at their edge; only web handlers turn them into
HTTP responses.
"""

from __future__ import annotations

__all__ = [
    "AuthError",
    "Conflict",
    "ConnectorError",
    "DeliveryError",
    "InboxError",
    "NotFound",
    "PayloadError",
    "PermissionDenied",
    "StorageError",
    "Unavailable",
    "ValidationError",
]


class InboxError(Exception):
    code = "error"


class ValidationError(InboxError):
    code = "invalid"


class PermissionDenied(InboxError):
    code = "forbidden"


class ConnectorError(InboxError):
    code = "connector_error"


class PayloadError(ConnectorError):
    code = "bad_payload"


class AuthError(ConnectorError):
    code = "unauthorized"


class DeliveryError(ConnectorError):
    code = "delivery_failed"

    def __init__(self, message: str, *, retryable: bool = True) -> None:
        super().__init__(message)
        self.retryable = retryable


class StorageError(InboxError):
    code = "storage_error"


class NotFound(StorageError):
    code = "not_found"


class Conflict(StorageError):
    code = "conflict"


class Unavailable(StorageError):
    code = "unavailable"
