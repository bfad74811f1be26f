"""``/login`` and ``/logout``: the form in front of the session machinery (``webui.sessions``).

Before a session exists there is no CSRF token to check, so the login POST is guarded by the
session cookie's SameSite attribute and by refusing a cross-site ``Origin``: a foreign page
cannot sign a browser into an attacker's account. Signing out needs the session's CSRF token.
"""

from __future__ import annotations

from datetime import timedelta
from urllib.parse import urlsplit

from aiohttp import web

from webui.pages.context import csrf_field, csrf_valid, sessions_of
from webui.pages.page import Page, page_for, safe_next
from webui.sessions import InvalidCredentials, TooManyAttempts

__all__ = ["get_login", "post_login", "post_logout", "retry_after", "same_origin"]

_MAX_FIELD = 1024


def same_origin(request: web.Request) -> bool:
    """A browser names the page a POST comes from in ``Origin``; when it names another site (or
    an opaque ``null`` origin, e.g. a sandboxed frame), the POST was not made by our form. Clients
    that send no Origin at all are not browsers carrying someone's cookies."""
    origin = request.headers.get("Origin")
    if origin is None:
        return True
    return urlsplit(origin).netloc.lower() == request.host.lower()


def _see_other(location: str) -> web.Response:
    return web.Response(status=303, headers={"Location": location, "Cache-Control": "no-store"})


def _login_form(
    page: Page,
    *,
    next_path: str,
    email: str = "",
    error: str | None = None,
    code: str = "",
    status: int = 200,
    headers: dict[str, str] | None = None,
) -> web.Response:
    response = page.render("login.html", status=status, next_path=next_path, email=email, error=error, error_code=code)
    response.headers.update(headers or {})
    return response


async def get_login(request: web.Request) -> web.StreamResponse:
    page = await page_for(request)
    next_path = safe_next(request.query.get("next"))
    if page.session is not None:
        return _see_other(next_path)
    return _login_form(page, next_path=next_path)


def retry_after(exc: TooManyAttempts) -> int:
    """Whole seconds to wait, at least one."""
    return max(1, exc.retry_after_seconds)


async def post_login(request: web.Request) -> web.StreamResponse:
    page = await page_for(request)
    form = await request.post()
    email = str(form.get("email") or "")[:_MAX_FIELD].strip()
    password = str(form.get("password") or "")[:_MAX_FIELD]
    next_path = safe_next(str(form.get("next") or "/"))
    if not same_origin(request):
        return page.error(403, page.gettext("This form was sent from another site."))
    sessions = sessions_of(request.app)
    if sessions is None:
        return _login_form(
            page,
            next_path=next_path,
            email=email,
            status=503,
            code="unavailable",
            error=page.gettext("Signing in is not available right now."),
        )
    response = _see_other(next_path)
    try:
        await sessions.sign_in(request, response, email, password)
    except InvalidCredentials:
        return _login_form(
            page,
            next_path=next_path,
            email=email,
            status=401,
            code="invalid",
            error=page.gettext("Wrong email or password."),
        )
    except TooManyAttempts as exc:
        seconds = retry_after(exc)
        wait = page.fmt.in_future(timedelta(seconds=seconds))
        return _login_form(
            page,
            next_path=next_path,
            email=email,
            status=429,
            code="throttled",
            headers={"Retry-After": str(seconds)},
            error=page.gettext("Too many attempts. Try again %(wait)s.") % {"wait": wait},
        )
    return response


async def post_logout(request: web.Request) -> web.StreamResponse:
    page = await page_for(request)
    if page.session is None:
        return _see_other("/login")
    form = await request.post()
    if not await csrf_valid(request, page.session, str(form.get(csrf_field()) or "")):
        return page.error(403, page.gettext("This form has expired. Reload the page and try again."))
    response = _see_other("/login")
    sessions = sessions_of(request.app)
    if sessions is not None:
        await sessions.sign_out(request, response)
    return response
