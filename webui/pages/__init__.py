"""The operator's web pages: server-rendered HTML (Jinja2, autoescaped) with a small script.

:func:`setup_pages` puts the routes, the static files and the catalogs on the application; the
composition of the app stays with :mod:`webui.app`. Everything a page changes goes through the
REST API from ``static/app.js``, so the rights checked there are the only ones.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from aiohttp import web
from babel.support import Translations

from webui.i18n import load_translations
from webui.pages.admin_page import admin_operators, post_invite
from webui.pages.context import current_operator, current_session
from webui.pages.conversation_page import conversation_page, message_frame
from webui.pages.inbox_list import inbox_page
from webui.pages.login import get_login, post_login, post_logout
from webui.pages.page import RENDERER
from webui.pages.render import SECURITY_HEADERS, Renderer
from webui.pages.settings_page import post_password, settings_page

__all__ = ["STATIC_DIR", "current_operator", "current_session", "setup_pages"]

STATIC_DIR = Path(__file__).resolve().parent.parent / "static"


def setup_pages(app: web.Application, *, translations: Mapping[str, Translations] | None = None) -> None:
    """Registers the pages on ``app``; call it before the app starts (the router freezes then).
    The catalogs are read here, so a broken ``.po`` file stops start-up, not a page view."""
    app[RENDERER] = Renderer(translations if translations is not None else load_translations())
    app.router.add_get("/", inbox_page, name="inbox")
    app.router.add_get("/login", get_login, name="login")
    app.router.add_post("/login", post_login)
    app.router.add_post("/logout", post_logout, name="logout")
    app.router.add_get("/conversations/{id}", conversation_page, name="conversation")
    app.router.add_get("/messages/{id}/frame", message_frame, name="message-frame")
    app.router.add_get("/settings", settings_page, name="settings")
    app.router.add_post("/settings/password", post_password, name="password")
    app.router.add_get("/admin/operators", admin_operators, name="admin-operators")
    app.router.add_post("/admin/operators", post_invite)
    app.router.add_static("/static/", STATIC_DIR, name="static")
    app.on_response_prepare.append(_static_headers)


async def _static_headers(request: web.Request, response: web.StreamResponse) -> None:
    """Static files are served by aiohttp itself; they get the pages' nosniff and referrer rules."""
    if request.path.startswith("/static/"):
        for name, value in SECURITY_HEADERS.items():
            response.headers.setdefault(name, value)
