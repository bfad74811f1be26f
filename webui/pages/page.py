"""What every page handler starts from: the language, the time zone, the signed-in operator,
and the guard that turns "not signed in", "not allowed" and "not found" into pages.

A handler decorated with :func:`operator_page` runs only for a signed-in operator with at least
the given role; errors of the inbox (``PermissionDenied``, ``NotFound``, ``ValidationError``)
become translated HTML error pages instead of the API's JSON.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, cast
from urllib.parse import urlencode

from aiohttp import web

from inbox.domain import Operator, Role
from inbox.errors import NotFound, PermissionDenied, ValidationError
from webui.i18n import N_, choose_locale
from webui.keys import SERVICE
from webui.pages.context import PageSession, current_session, live_position
from webui.pages.formatting import Formatter, time_zone_named
from webui.pages.render import Renderer

__all__ = ["BROWSER_ZONE_COOKIE", "RENDERER", "Page", "operator_page", "page_for", "safe_next"]

RENDERER = web.AppKey("page_renderer", Renderer)
BROWSER_ZONE_COOKIE = "inbox_browser_tz"
"""Set by the page script to the browser's time zone: the zone for operators without their own."""

_ERROR_TITLES = {
    400: N_("This request is not valid"),
    403: N_("You may not open this page"),
    404: N_("Not found"),
}


@dataclass(frozen=True, slots=True)
class Page:
    request: web.Request
    session: PageSession | None
    locale: str
    fmt: Formatter
    renderer: Renderer
    live_seq: int | None
    live_stream: str | None

    @property
    def operator(self) -> Operator:
        assert self.session is not None, "a page for signed-in operators only"
        return self.session.operator

    def gettext(self, message: str) -> str:
        return self.renderer.gettext(self.locale)(message)

    def render(self, template: str, *, status: int = 200, **context: Any) -> web.Response:
        base = {
            "page_locale": self.locale,
            "fmt": self.fmt,
            "session": self.session,
            "operator": self.session.operator if self.session else None,
            "csrf_token": self.session.csrf_token if self.session else "",
            "current_path": self.request.path,
            "static": self.static,
            "live_seq": self.live_seq,
            "live_stream": self.live_stream,
        }
        return self.renderer.response(self.locale, template, {**base, **context}, status=status)

    def error(self, status: int, detail: str | None = None) -> web.Response:
        """``detail`` is already translated (or comes from the inbox's own error text)."""
        title = self.gettext(_ERROR_TITLES.get(status, _ERROR_TITLES[400]))
        return self.render("error.html", status=status, status_code=status, title=title, detail=detail)

    def static(self, filename: str) -> str:
        """A versioned URL, so browsers cache the files and still fetch new ones after an upgrade."""
        static = cast(web.StaticResource, self.request.app.router["static"])
        return str(static.url_for(filename=filename, append_version=True))


async def page_for(request: web.Request) -> Page:
    live_seq, live_stream = live_position(request.app)
    session = await current_session(request)
    operator = session.operator if session else None
    locale = choose_locale(getattr(operator, "locale", None), request.headers.get("Accept-Language"))
    renderer = request.app[RENDERER]
    chosen = getattr(operator, "time_zone", None) or request.cookies.get(BROWSER_ZONE_COOKIE)
    zone_name, zone = time_zone_named(chosen)
    now = request.app[SERVICE].clock.now()
    fmt = Formatter(locale=locale, zone_name=zone_name, zone=zone, now=now, gettext=renderer.gettext(locale))
    return Page(
        request=request,
        session=session,
        locale=locale,
        fmt=fmt,
        renderer=renderer,
        live_seq=live_seq,
        live_stream=live_stream,
    )


def safe_next(target: str | None) -> str:
    """Only a path on this site: never ``//evil.example`` or ``/\\evil.example``."""
    if not target or not target.startswith("/") or target.startswith(("//", "/\\")) or len(target) > 2000:
        return "/"
    return target if all(0x20 < ord(ch) < 0x7F and ch != "\\" for ch in target) else "/"


PageHandler = Callable[[Page], Awaitable[web.StreamResponse]]


def operator_page(role: Role = Role.OPERATOR) -> Callable[[PageHandler], Callable[[web.Request], Awaitable[Any]]]:
    def decorate(handler: PageHandler) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
        @functools.wraps(handler)
        async def serve(request: web.Request) -> web.StreamResponse:
            page = await page_for(request)
            if page.session is None:
                if request.method != "GET":
                    return page.error(403, page.gettext("Your session has ended. Sign in again."))
                location = "/login?" + urlencode({"next": request.rel_url.raw_path_qs})
                return web.Response(status=303, headers={"Location": location, "Cache-Control": "no-store"})
            if not page.operator.role.at_least(role):
                return page.error(403, page.gettext("Your role does not allow this page."))
            try:
                return await handler(page)
            except PermissionDenied:
                return page.error(403)
            except NotFound:
                return page.error(404)
            except ValidationError as exc:
                return page.error(400, str(exc))

        return serve

    return decorate
