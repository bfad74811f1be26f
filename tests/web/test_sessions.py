"""Web UI sessions over real HTTP: a small aiohttp app with test handlers around :class:`Sessions`,
the real REST endpoints, a real SQLite store, and virtual time for expiry and throttling."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from aiohttp import DummyCookieJar, web
from aiohttp.test_utils import TestClient, TestServer

from inbox.accounts import add_operator
from inbox.clock import ManualClock
from inbox.events import EventBus
from inbox.ids import hash_secret
from inbox.service import InboxService
from storage.base import Store
from storage.sqlite import SqliteStore
from webui.api.routes import ENDPOINTS
from webui.auth import TokenCache
from webui.errors import error_middleware
from webui.keys import CHANNEL_KEYS, MAX_BODY_BYTES, OPERATOR_TOKENS, SERVICE
from webui.sessions import CSRF_FIELD, CSRF_HEADER, SESSION_COOKIE, Sessions, setup_sessions

PASSWORD = "correct horse battery"
TTL = timedelta(days=14)


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    store = SqliteStore(tmp_path / "inbox.sqlite3")
    await store.open()
    try:
        yield store
    finally:
        await store.close()


@web.middleware
async def trusted_proxy(request: web.Request, handler: Any) -> web.StreamResponse:
    """What a proxy-trusting middleware does in production: the scheme and client address from
    the proxy's headers become the request's."""
    changes: dict[str, Any] = {}
    if request.headers.get("X-Forwarded-Proto") == "https":
        changes["scheme"] = "https"
    if "X-Forwarded-For" in request.headers:
        changes["remote"] = request.headers["X-Forwarded-For"]
    return await handler(request.clone(**changes) if changes else request)


def _app(store: Store, clock: ManualClock, sessions: Sessions) -> web.Application:
    app = web.Application(middlewares=[trusted_proxy, error_middleware])
    app[SERVICE] = InboxService(store, EventBus(), clock=clock)
    app[MAX_BODY_BYTES] = 1 << 20
    app[OPERATOR_TOKENS] = TokenCache()
    app[CHANNEL_KEYS] = TokenCache()
    setup_sessions(app, sessions)

    async def signed_in(request: web.Request) -> Any:
        current = await sessions.session(request)
        if current is None:
            raise web.HTTPUnauthorized()
        return current

    async def sign_in(request: web.Request) -> web.StreamResponse:
        form = await request.post()
        response = web.json_response({"signed_in": True})
        operator = await sessions.sign_in(request, response, str(form["email"]), str(form["password"]))
        response.headers["X-Operator"] = operator.id
        return response

    async def sign_out(request: web.Request) -> web.StreamResponse:  # as pages do: sign out, redirect
        current = await signed_in(request)
        sessions.check_csrf(request, current, (await request.post()).get(CSRF_FIELD))  # type: ignore[arg-type]
        response = web.HTTPSeeOther("/signed-out")
        await sessions.sign_out(request, response)
        raise response

    async def whoami(request: web.Request) -> web.StreamResponse:
        current = await signed_in(request)
        return web.json_response({"id": current.operator.id, "csrf": current.csrf_token})

    async def form(request: web.Request) -> web.StreamResponse:
        current = await signed_in(request)
        sessions.check_csrf(request, current, (await request.post()).get(CSRF_FIELD))  # type: ignore[arg-type]
        return web.json_response({"done": True})

    async def password(request: web.Request) -> web.StreamResponse:
        current = await signed_in(request)
        data = await request.post()
        sessions.check_csrf(request, current, data.get(CSRF_FIELD))  # type: ignore[arg-type]
        await sessions.change_password(current, str(data["old"]), str(data["new"]))
        return web.json_response({"changed": True})

    app.router.add_post("/sign-in", sign_in)
    app.router.add_post("/sign-out", sign_out)
    app.router.add_get("/whoami", whoami)
    app.router.add_post("/form", form)
    app.router.add_post("/password", password)
    app.router.add_routes([endpoint.route() for endpoint in ENDPOINTS])
    return app


@dataclass
class Web:
    client: TestClient
    store: Store
    clock: ManualClock
    sessions: Sessions
    operator_id: str
    api_token: str

    async def sign_in(self, email: str = "olga@example.com", password: str = PASSWORD, **headers: str) -> Any:
        return await self.client.post("/sign-in", data={"email": email, "password": password}, headers=headers)

    async def token(self, email: str = "olga@example.com", password: str = PASSWORD) -> str:
        response = await self.sign_in(email, password)
        assert response.status == 200, await response.text()
        return response.cookies[SESSION_COOKIE].value

    async def whoami(self, token: str) -> Any:
        return await self.client.get("/whoami", headers=cookie(token))

    async def csrf(self, token: str) -> str:
        return (await (await self.whoami(token)).json())["csrf"]


def cookie(token: str) -> dict[str, str]:
    return {"Cookie": f"{SESSION_COOKIE}={token}"}


def set_cookie(response: Any) -> str:
    (header,) = response.headers.getall("Set-Cookie")
    return header


@pytest.fixture
async def site(store: Store, clock: ManualClock) -> AsyncIterator[Web]:
    olga = await add_operator(store, email="olga@example.com", name="Olga", password=PASSWORD, clock=clock)
    sessions = Sessions(store, clock, ttl=TTL)
    server = TestServer(_app(store, clock, sessions))
    async with TestClient(server, cookie_jar=DummyCookieJar()) as client:
        yield Web(client, store, clock, sessions, olga.operator.id, olga.api_token)


async def test_sign_in_sets_an_http_only_lax_cookie(site: Web) -> None:
    response = await site.sign_in()
    assert response.status == 200 and response.headers["X-Operator"] == site.operator_id
    header = set_cookie(response)
    assert header.startswith(f"{SESSION_COOKIE}=")
    for attribute in ("HttpOnly", "SameSite=Lax", "Path=/", f"Max-Age={int(TTL.total_seconds())}"):
        assert attribute in header.split("; ")
    assert "Secure" not in header  # plain http
    token = response.cookies[SESSION_COOKIE].value
    stored = await site.store.session_by_token_hash(hash_secret(token))
    assert stored is not None and stored.operator_id == site.operator_id
    assert stored.expires_at == site.clock.now() + TTL
    assert (await (await site.whoami(token)).json())["id"] == site.operator_id


async def test_cookie_is_secure_when_the_request_came_over_tls(site: Web) -> None:
    response = await site.sign_in(**{"X-Forwarded-Proto": "https"})
    assert response.status == 200
    assert "Secure" in set_cookie(response).split("; ")


async def test_wrong_password_and_unknown_email_answer_alike_after_one_verification(
    site: Web, monkeypatch: pytest.MonkeyPatch
) -> None:
    import webui.sessions

    verified: list[str] = []
    real = webui.sessions.verify_password

    def recording(password_hash: str, password: str) -> bool:
        verified.append(password_hash)
        return real(password_hash, password)

    monkeypatch.setattr(webui.sessions, "verify_password", recording)
    wrong = await site.sign_in(password="not it")
    unknown = await site.sign_in(email="nobody@example.com", password=PASSWORD)
    assert wrong.status == unknown.status == 401
    expected = {"error": {"code": "invalid_credentials", "message": "wrong email or password"}}
    assert await wrong.json() == await unknown.json() == expected
    assert SESSION_COOKIE not in wrong.cookies and SESSION_COOKIE not in unknown.cookies
    olga = await site.store.get_operator(site.operator_id)
    assert len(verified) == 2 and verified[0] == olga.password_hash
    assert verified[1].startswith("$argon2") and verified[1] != olga.password_hash  # the dummy


async def test_five_failures_lock_the_email_for_a_growing_delay(site: Web) -> None:
    """Each attempt from another address, so only the per-email count is at work."""
    addresses = (f"10.0.0.{n}" for n in range(1, 100))
    for _ in range(5):
        assert (await site.sign_in(password="guess", **{"X-Forwarded-For": next(addresses)})).status == 401
    refused = await site.sign_in(**{"X-Forwarded-For": next(addresses)})  # even the right password
    assert refused.status == 429 and refused.headers["Retry-After"] == "30"
    assert (await refused.json())["error"]["code"] == "too_many_attempts"
    site.clock.advance(29)
    assert (await site.sign_in(**{"X-Forwarded-For": next(addresses)})).headers["Retry-After"] == "1"
    site.clock.advance(1)
    assert (await site.sign_in(password="guess", **{"X-Forwarded-For": next(addresses)})).status == 401
    doubled = await site.sign_in(**{"X-Forwarded-For": next(addresses)})
    assert doubled.status == 429 and doubled.headers["Retry-After"] == "60"
    site.clock.advance(60)
    assert (await site.sign_in(**{"X-Forwarded-For": next(addresses)})).status == 200
    # success forgets the failures: the next mistake is just a mistake
    assert (await site.sign_in(password="guess", **{"X-Forwarded-For": next(addresses)})).status == 401


async def test_failures_are_forgotten_after_the_window(site: Web) -> None:
    for _ in range(4):
        assert (await site.sign_in(password="guess")).status == 401
    site.clock.advance(timedelta(minutes=15))
    assert (await site.sign_in(password="guess")).status == 401
    assert (await site.sign_in()).status == 200


async def test_five_failures_from_one_address_lock_it_for_every_email(site: Web) -> None:
    for n in range(5):
        response = await site.sign_in(email=f"guess{n}@example.com", **{"X-Forwarded-For": "192.0.2.7"})
        assert response.status == 401
    refused = await site.sign_in(**{"X-Forwarded-For": "192.0.2.7"})
    assert refused.status == 429 and refused.headers["Retry-After"] == "30"
    assert (await site.sign_in(**{"X-Forwarded-For": "192.0.2.8"})).status == 200


async def test_parallel_guesses_cannot_outrun_the_limit(site: Web) -> None:
    responses = await asyncio.gather(
        *(site.sign_in(password=f"guess{n}", **{"X-Forwarded-For": f"10.1.0.{n}"}) for n in range(12))
    )
    statuses = [response.status for response in responses]
    assert statuses.count(401) <= 5 and statuses.count(401) + statuses.count(429) == 12


async def test_sign_out_revokes_the_session(site: Web) -> None:
    token = await site.token()
    other = await site.token()
    csrf = await site.csrf(token)
    response = await site.client.post(
        "/sign-out", data={CSRF_FIELD: csrf}, headers=cookie(token), allow_redirects=False
    )
    assert response.status == 303
    header = set_cookie(response)
    assert header.startswith(f'{SESSION_COOKIE}=""') and "Max-Age=0" in header.split("; ")
    assert (await site.whoami(token)).status == 401
    assert await site.store.session_by_token_hash(hash_secret(token)) is None
    assert (await site.whoami(other)).status == 200  # another browser stays signed in


async def test_signing_in_again_ends_the_session_the_browser_had(site: Web) -> None:
    first = await site.token()
    response = await site.client.post(
        "/sign-in", data={"email": "olga@example.com", "password": PASSWORD}, headers=cookie(first)
    )
    second = response.cookies[SESSION_COOKIE].value
    assert second != first
    assert (await site.whoami(first)).status == 401 and (await site.whoami(second)).status == 200


async def test_unknown_and_expired_sessions_are_refused(site: Web) -> None:
    assert (await site.whoami("made-up")).status == 401
    assert (await site.client.get("/whoami")).status == 401
    token = await site.token()
    site.clock.advance(TTL)
    assert (await site.whoami(token)).status == 401
    assert await site.store.session_by_token_hash(hash_secret(token)) is None


async def test_expiry_slides_with_use_writing_at_most_once_a_minute(site: Web) -> None:
    token = await site.token()
    signed_in_at = site.clock.now()
    site.clock.advance(30)
    quiet = await site.whoami(token)
    assert quiet.status == 200 and "Set-Cookie" not in quiet.headers
    stored = await site.store.session_by_token_hash(hash_secret(token))
    assert stored is not None and stored.last_seen_at == signed_in_at

    now = site.clock.advance(31)
    touched = await site.whoami(token)
    assert touched.status == 200
    assert f"Max-Age={int(TTL.total_seconds())}" in set_cookie(touched).split("; ")  # the browser keeps it too
    stored = await site.store.session_by_token_hash(hash_secret(token))
    assert stored is not None and (stored.last_seen_at, stored.expires_at) == (now, now + TTL)

    site.clock.advance(timedelta(days=10))
    assert (await site.whoami(token)).status == 200
    site.clock.advance(timedelta(days=10))  # 20 days after signing in, 10 after the last use
    assert (await site.whoami(token)).status == 200


async def test_forms_need_the_session_csrf_token(site: Web) -> None:
    token = await site.token()
    csrf = await site.csrf(token)
    other_csrf = await site.csrf(await site.token())
    missing = await site.client.post("/form", data={}, headers=cookie(token))
    assert missing.status == 403 and (await missing.json())["error"]["code"] == "csrf_failed"
    for wrong in ("nope", other_csrf, "фальшивка"):
        assert (await site.client.post("/form", data={CSRF_FIELD: wrong}, headers=cookie(token))).status == 403
    assert (await site.client.post("/form", data={CSRF_FIELD: csrf}, headers=cookie(token))).status == 200
    by_header = await site.client.post("/form", headers={**cookie(token), CSRF_HEADER: csrf})
    assert by_header.status == 200


async def test_rest_api_takes_the_cookie_with_csrf_for_writes(site: Web) -> None:
    token = await site.token()
    csrf = await site.csrf(token)
    me = await site.client.get("/api/v1/me", headers=cookie(token))
    assert me.status == 200 and (await me.json())["id"] == site.operator_id

    contact = {"name": "Ирина"}
    forged = await site.client.post("/api/v1/contacts", json=contact, headers=cookie(token))
    assert forged.status == 403 and (await forged.json())["error"]["code"] == "csrf_failed"
    wrong = await site.client.post("/api/v1/contacts", json=contact, headers={**cookie(token), CSRF_HEADER: "x"})
    assert wrong.status == 403
    made = await site.client.post("/api/v1/contacts", json=contact, headers={**cookie(token), CSRF_HEADER: csrf})
    assert made.status == 201

    bearer = {"Authorization": f"Bearer {site.api_token}"}
    assert (await site.client.post("/api/v1/contacts", json=contact, headers=bearer)).status == 201  # no CSRF
    bad_token = {"Authorization": "Bearer op_wrong", **cookie(token), CSRF_HEADER: csrf}
    assert (await site.client.get("/api/v1/me", headers=bad_token)).status == 401  # no fallback to the cookie
    assert (await site.client.get("/api/v1/me")).status == 401
    site.clock.advance(TTL)
    assert (await site.client.get("/api/v1/me", headers=cookie(token))).status == 401


async def test_password_change_revokes_other_sessions(site: Web) -> None:
    mine, elsewhere = await site.token(), await site.token()
    csrf = await site.csrf(mine)

    async def change(old: str, new: str) -> Any:
        return await site.client.post(
            "/password", data={CSRF_FIELD: csrf, "old": old, "new": new}, headers=cookie(mine)
        )

    short = await change(PASSWORD, "short")
    assert short.status == 422 and "at least 10 characters" in (await short.json())["error"]["message"]
    wrong = await change("not my password", "a much longer password")
    assert wrong.status == 403 and (await wrong.json())["error"]["code"] == "wrong_password"
    assert (await site.whoami(elsewhere)).status == 200  # nothing changed yet

    assert (await change(PASSWORD, "a much longer password")).status == 200
    assert (await site.whoami(elsewhere)).status == 401
    assert (await site.whoami(mine)).status == 200
    assert (await site.sign_in(password=PASSWORD)).status == 401
    assert (await site.sign_in(password="a much longer password")).status == 200


async def test_guessing_the_old_password_is_throttled(site: Web) -> None:
    token = await site.token()
    csrf = await site.csrf(token)
    form = {CSRF_FIELD: csrf, "new": "a much longer password"}
    for n in range(5):
        response = await site.client.post("/password", data={**form, "old": f"guess{n}"}, headers=cookie(token))
        assert response.status == 403
    refused = await site.client.post("/password", data={**form, "old": PASSWORD}, headers=cookie(token))
    assert refused.status == 429 and refused.headers["Retry-After"] == "30"
