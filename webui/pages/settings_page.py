"""``/settings``: the operator's language, time zone, focus mode, and password.

Language, time zone and focus mode are saved by the page's script through
``PATCH /api/v1/operators/{id}``; the password goes through a form here, because changing it
belongs to the session machinery (it checks the old password and its own throttling).
"""

from __future__ import annotations

from datetime import timedelta
from functools import cache
from zoneinfo import available_timezones

from aiohttp import web

from inbox.errors import InboxError
from webui.i18n import SUPPORTED_LOCALES
from webui.pages.context import csrf_field, csrf_valid, sessions_of
from webui.pages.login import retry_after
from webui.pages.page import Page, operator_page
from webui.sessions import InvalidCredentials, TooManyAttempts, WrongPassword

__all__ = ["LANGUAGE_NAMES", "post_password", "settings_page"]

LANGUAGE_NAMES = {"en": "English", "ru": "Русский"}
"""Each language in its own name, so an operator finds theirs whatever the page's language is."""
_MAX_PASSWORD = 1024


@cache
def time_zones() -> tuple[str, ...]:
    return tuple(sorted(name for name in available_timezones() if "/" in name or name == "UTC"))


def _render(page: Page, *, status: int = 200, error: str | None = None, detail: str | None = None) -> web.Response:
    return page.render(
        "settings.html",
        status=status,
        languages=[(code, LANGUAGE_NAMES[code]) for code in SUPPORTED_LOCALES],
        chosen_locale=getattr(page.operator, "locale", None) or "",
        chosen_zone=getattr(page.operator, "time_zone", None) or "",
        time_zones=time_zones(),
        password_error=error,
        password_detail=detail,
        password_changed=page.request.query.get("changed") == "password",
        csrf_name=csrf_field(),
    )


@operator_page()
async def settings_page(page: Page) -> web.StreamResponse:
    return _render(page)


@operator_page()
async def post_password(page: Page) -> web.StreamResponse:
    assert page.session is not None
    form = await page.request.post()
    if not await csrf_valid(page.request, page.session, str(form.get(csrf_field()) or "")):
        return page.error(403, page.gettext("This form has expired. Reload the page and try again."))
    old = str(form.get("current_password") or "")[:_MAX_PASSWORD]
    new = str(form.get("new_password") or "")[:_MAX_PASSWORD]
    if new != str(form.get("confirm_password") or "")[:_MAX_PASSWORD]:
        return _render(page, status=400, error=page.gettext("The new password and its repetition differ."))
    sessions = sessions_of(page.request.app)
    if sessions is None:
        return _render(page, status=503, error=page.gettext("Changing the password is not available right now."))
    try:
        await sessions.change_password(page.session.current, old, new)
    except (WrongPassword, InvalidCredentials):
        return _render(page, status=403, error=page.gettext("The current password is wrong."))
    except TooManyAttempts as exc:
        wait = page.fmt.in_future(timedelta(seconds=retry_after(exc)))
        error = page.gettext("Too many attempts. Try again %(wait)s.") % {"wait": wait}
        return _render(page, status=429, error=error)
    except InboxError as exc:
        return _render(page, status=400, error=page.gettext("The new password was not accepted."), detail=str(exc))
    return web.Response(status=303, headers={"Location": "/settings?changed=password", "Cache-Control": "no-store"})
