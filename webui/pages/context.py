"""Who is asking: the signed-in operator of a page request, through the session machinery.

The sessions module (``webui.sessions``, app key ``webui.keys.SESSIONS``) is imported lazily, so
the pages import and serve ``/login`` even on an app built without it; there, nobody is signed
in. Its methods may be coroutines or plain functions: both are accepted, so the pages do not
depend on that detail of a module written alongside them.
"""

from __future__ import annotations

import inspect
import logging
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from inbox.domain import Operator, Role
from webui.keys import ROUTER

__all__ = [
    "PageSession",
    "csrf_field",
    "csrf_valid",
    "current_operator",
    "current_session",
    "in_focus",
    "live_position",
    "resolve",
    "sessions_of",
    "sessions_module",
]

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class PageSession:
    """The part of a session the pages use: who, and the token their forms must carry;
    ``current`` is the sessions module's own object, handed back to it for CSRF checks."""

    operator: Operator
    csrf_token: str
    current: Any


async def resolve(value: Any) -> Any:
    """The result of a call that may or may not be a coroutine."""
    return await value if inspect.isawaitable(value) else value


def sessions_module() -> Any | None:
    """``webui.sessions`` once it exists; None before."""
    try:
        import webui.sessions as sessions
    except ImportError:
        return None
    return sessions


def sessions_of(app: web.Application) -> Any | None:
    """The app's ``Sessions`` object, or None when the app has none (yet)."""
    try:
        from webui.keys import SESSIONS  # type: ignore[attr-defined]
    except ImportError:
        return None
    return app.get(SESSIONS)


async def current_session(request: web.Request) -> PageSession | None:
    sessions = sessions_of(request.app)
    if sessions is None:
        return None
    current = await resolve(sessions.session(request))
    if current is None or getattr(current, "operator", None) is None:
        return None
    return PageSession(operator=current.operator, csrf_token=str(getattr(current, "csrf_token", "")), current=current)


async def current_operator(request: web.Request) -> Operator | None:
    current = await current_session(request)
    return current.operator if current else None


def in_focus(request: web.Request, operator: Operator) -> bool:
    """Focus mode as the API applies it: an operator (not a supervisor) in focus mode sees only
    their own open conversations, in lists and by URL."""
    return not operator.role.at_least(Role.SUPERVISOR) and request.app[ROUTER].in_focus(operator)


def csrf_field() -> str:
    """The form field that carries the CSRF token."""
    module = sessions_module()
    return str(getattr(module, "CSRF_FIELD", "csrf"))


async def csrf_valid(request: web.Request, session: PageSession, submitted: str | None) -> bool:
    """Asks the sessions module; a refusal may come as False or as an exception, and anything
    unexpected counts as a refusal (fail closed)."""
    sessions = sessions_of(request.app)
    if sessions is None or not submitted:
        return False
    try:
        result = await resolve(sessions.check_csrf(request, session.current, submitted))
    except Exception as exc:  # noqa: BLE001 - a CSRF check that breaks must refuse, not pass
        log.info("CSRF check refused %s %s: %r", request.method, request.path, exc)
        return False
    return result is not False


def live_position(app: web.Application) -> tuple[int | None, str | None]:
    """Where the live stream stands (``webui.live``), taken before a page reads anything: the
    page's script resumes from there, so nothing that happens while the page renders is missed.
    (None, None) when the app has no live hub; the script then starts from "now"."""
    try:
        from webui.live import LIVE
    except ImportError:
        return None, None
    hub = app.get(LIVE)
    return (hub.seq, hub.stream) if hub is not None else (None, None)
