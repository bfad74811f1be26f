"""Every error leaves the server as JSON ``{"error": {"code", "message"}}`` with a fitting status.

The middleware is the one place where the error tree of :mod:`inbox.errors` meets HTTP.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from aiohttp import web

from inbox import errors
from webui.keys import MAX_BODY_BYTES

__all__ = ["ApiError", "error_middleware", "error_response"]

log = logging.getLogger(__name__)


class ApiError(Exception):
    """An HTTP-level refusal raised by the web layer itself (authentication, malformed input)."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        details: list[dict[str, Any]] | None = None,
        headers: Mapping[str, str] | None = None,
    ):
        super().__init__(message)
        self.status, self.code, self.message, self.details = status, code, message, details
        self.headers = headers  # sent with the error, e.g. Retry-After on a 429


_STATUS_OF: tuple[tuple[type[errors.InboxError], int], ...] = (
    (errors.ValidationError, 422),
    (errors.PermissionDenied, 403),
    (errors.NotFound, 404),
    (errors.Conflict, 409),
    (errors.Unavailable, 503),
    (errors.AuthError, 401),
    (errors.PayloadError, 400),
    (errors.InboxError, 500),
)


def error_response(
    status: int,
    code: str,
    message: str,
    details: list[dict[str, Any]] | None = None,
    headers: Mapping[str, str] | None = None,
) -> web.Response:
    body: dict[str, Any] = {"code": code, "message": message}
    if details:
        body["details"] = details
    if status == 503:
        headers = {"Retry-After": "5", **(headers or {})}
    return web.json_response({"error": body}, status=status, headers=headers)


@web.middleware
async def error_middleware(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    try:
        return await handler(request)
    except ApiError as exc:
        return error_response(exc.status, exc.code, exc.message, exc.details, exc.headers)
    except errors.InboxError as exc:
        status = next(status for kind, status in _STATUS_OF if isinstance(exc, kind))
        if status >= 500:
            log.error("%s %s failed: %r", request.method, request.path, exc)
        return error_response(status, exc.code, str(exc))
    except web.HTTPRequestEntityTooLarge:
        limit = request.app[MAX_BODY_BYTES]
        return error_response(413, "too_large", f"the body is larger than the limit of {limit} bytes")
    except web.HTTPException as exc:
        if exc.status < 400 or not request.path.startswith("/api/"):
            raise
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status, "http_error")
        return error_response(exc.status, code, exc.reason)
    except Exception:
        log.exception("unhandled error in %s %s", request.method, request.path)
        return error_response(500, "internal", "internal server error")
