"""``/admin/operators``: the operators, and inviting a new one (administrators only).

An invited operator gets a generated password, shown once on the answer to the invitation and
never stored in clear: the page is not cached, and reloading it does not show it again.
"""

from __future__ import annotations

from aiohttp import web

from inbox.accounts import NewOperator, add_operator
from inbox.domain import Role
from inbox.errors import Conflict, ValidationError
from webui.keys import SERVICE
from webui.pages.context import csrf_field, csrf_valid
from webui.pages.page import Page, operator_page

__all__ = ["admin_operators", "post_invite"]


async def _render(
    page: Page,
    *,
    status: int = 200,
    created: NewOperator | None = None,
    error: str | None = None,
    form: dict[str, str] | None = None,
) -> web.Response:
    operators = await page.request.app[SERVICE].reads.operators()
    form = form or {}
    return page.render(
        "admin_operators.html",
        status=status,
        operators=sorted(operators, key=lambda o: o.name.casefold()),
        roles=[role.value for role in Role],
        created=created,
        error=error,
        form_email=form.get("email", ""),
        form_name=form.get("name", ""),
        form_role=form.get("role", Role.OPERATOR.value),
        csrf_name=csrf_field(),
    )


@operator_page(Role.ADMIN)
async def admin_operators(page: Page) -> web.StreamResponse:
    return await _render(page)


@operator_page(Role.ADMIN)
async def post_invite(page: Page) -> web.StreamResponse:
    assert page.session is not None
    posted = await page.request.post()
    if not await csrf_valid(page.request, page.session, str(posted.get(csrf_field()) or "")):
        return page.error(403, page.gettext("This form has expired. Reload the page and try again."))
    form = {name: str(posted.get(name) or "").strip()[:320] for name in ("email", "name", "role")}
    if form["role"] not in {role.value for role in Role}:
        return await _render(page, status=400, error=page.gettext("Choose a role."), form=form)
    if not form["name"]:
        return await _render(page, status=400, error=page.gettext("Enter a name."), form=form)
    service = page.request.app[SERVICE]
    try:
        created = await add_operator(
            service.store, email=form["email"], name=form["name"][:200], role=Role(form["role"]), clock=service.clock
        )
    except Conflict:
        return await _render(
            page, status=409, error=page.gettext("An operator with this email exists already."), form=form
        )
    except ValidationError:
        return await _render(page, status=400, error=page.gettext("This is not an email address."), form=form)
    return await _render(page, status=201, created=created)
