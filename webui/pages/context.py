"""Who is asking: the signed-in operator of a page request, through the app's sessions
(``webui.sessions``, app key ``webui.keys.SESSIONS``). An app built without them (some tests)
serves ``/login`` with nobody signed in.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from aiohttp import web

from inbox.domain import Operator, Role
from webui.keys import ROUTER, SESSIONS
from webui.live import LIVE
from webui.sessions import CSRF_FIELD, CurrentSession, Sessions

__all__ = [
    "PageSession",
    "csrf_field",
    "csrf_valid",
    "current_operator",
    "current_session",
    "in_focus",
    "live_position",
    "sessions_of",
]

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class PageSession:
    """The part of a session the pages use: who, and the token their forms must carry;
    ``current`` is handed back to the sessions for CSRF checks."""

    operator: Operator
    csrf_token: str
    current: CurrentSession


def sessions_of(app: web.Application) -> Sessions | None:
    """The app's sessions, or None when it was built without them."""
    return app.get(SESSIONS)


async def current_session(request: web.Request) -> PageSession | None:
    sessions = sessions_of(request.app)
    current = await sessions.session(request) if sessions is not None else None
    if current is None:
        return None
    return PageSession(operator=current.operator, csrf_token=current.csrf_token, current=current)


async def current_operator(request: web.Request) -> Operator | None:
    current = await current_session(request)
    return current.operator if current else None


def in_focus(request: web.Request, operator: Operator) -> bool:
    """Focus mode as the API applies it: an operator (not a supervisor) in focus mode sees only
    their own open conversations, in lists and by URL."""
    return not operator.role.at_least(Role.SUPERVISOR) and request.app[ROUTER].in_focus(operator)


def csrf_field() -> str:
    """The form field that carries the CSRF token."""
    return CSRF_FIELD


async def csrf_valid(request: web.Request, session: PageSession, submitted: str | None) -> bool:
    """Asks the sessions, which refuse with an exception; anything unexpected counts as a refusal
    too (fail closed)."""
    sessions = sessions_of(request.app)
    if sessions is None or not submitted:
        return False
    try:
        sessions.check_csrf(request, session.current, submitted)
    except Exception as exc:  # noqa: BLE001 - a CSRF check that breaks must refuse, not pass
        log.info("CSRF check refused %s %s: %r", request.method, request.path, exc)
        return False
    return True


def live_position(app: web.Application) -> tuple[int | None, str | None]:
    """Where the live stream stands (``webui.live``), taken before a page reads anything: the
    page's script resumes from there, so nothing that happens while the page renders is missed.
    (None, None) when the app has no live hub; the script then starts from "now"."""
    hub = app.get(LIVE)
    return (hub.seq, hub.stream) if hub is not None else (None, None)
