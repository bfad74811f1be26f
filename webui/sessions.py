"""Signing operators in to the web UI: server-side sessions, a cookie, and CSRF tokens.

Sessions live in the store, so signing out or changing the password revokes them at once, in
every process. The cookie holds a random token and the store only its SHA-256, so a copy of the
database signs nobody in. The cookie is ``HttpOnly`` (page scripts never see the token),
``SameSite=Lax`` (other sites' forms and scripts do not carry it on unsafe requests), ``Path=/``,
``Max-Age`` of the idle timeout, and ``Secure`` when the request came over TLS. Whether it did is
``request.secure``: true for https, and behind a TLS-terminating proxy only when the app trusts
the proxy's forwarded headers (a middleware that ``clone()``\\ s the request with the scheme);
otherwise pass ``secure=True`` to :class:`Sessions`.

Expiry slides: a session idle for ``ttl`` ends. Each request seen more than a minute after the
last one moves the expiry (one write a minute, not one per request) and sends the cookie again
with a fresh ``Max-Age``, so the browser keeps it as long as the server does.

CSRF: every session has a token. Pages put it in forms as :data:`CSRF_FIELD`; scripts send it as
:data:`CSRF_HEADER`. ``SameSite=Lax`` already stops cross-site posts in current browsers; the
token also covers sibling subdomains (same site, other origin) and older browsers.

Guessing passwords is throttled in process memory, per email and per client address
(``request.remote``: behind a proxy that is the proxy, unless forwarded headers are trusted as
above): after :data:`MAX_FAILURES` failures within :data:`FAILURE_WINDOW`, attempts are refused
for 30 s, doubling with each further failure up to 15 minutes. Several processes (MongoDB
deployments) each keep their own count. An unknown email costs an argon2 verification as well,
against a dummy hash, so the answer's timing does not tell which accounts exist.
"""

from __future__ import annotations

import asyncio
import hmac
import math
import secrets
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

from aiohttp import web

from inbox.clock import Clock
from inbox.domain import Operator, Session
from inbox.errors import NotFound, ValidationError
from inbox.ids import hash_secret
from inbox.passwords import hash_password, verify_password
from storage.base import Store
from webui.errors import ApiError
from webui.keys import SESSIONS

__all__ = [
    "CSRF_FIELD",
    "CSRF_HEADER",
    "FAILURE_WINDOW",
    "MAX_FAILURES",
    "MIN_PASSWORD_LENGTH",
    "SESSION_COOKIE",
    "CurrentSession",
    "InvalidCredentials",
    "Sessions",
    "TooManyAttempts",
    "WrongPassword",
    "setup_sessions",
]

SESSION_COOKIE = "inbox_session"
CSRF_HEADER = "X-CSRF-Token"
CSRF_FIELD = "csrf"
MIN_PASSWORD_LENGTH = 10
MAX_PASSWORD_LENGTH = 1024
MAX_FAILURES = 5
FAILURE_WINDOW = timedelta(minutes=15)
FIRST_LOCK = timedelta(seconds=30)
LONGEST_LOCK = timedelta(minutes=15)
TOUCH_INTERVAL = timedelta(minutes=1)
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
_MAX_TOKEN_LENGTH = 128
"""Our tokens are 43 characters; a longer cookie is not ours and is not worth hashing."""
_HASHING_AT_ONCE = 4
"""argon2 takes 64 MiB per hash: a burst of sign-ins queues here instead of exhausting memory."""


class InvalidCredentials(ApiError):
    def __init__(self) -> None:
        super().__init__(401, "invalid_credentials", "wrong email or password")


class WrongPassword(ApiError):
    """403, not 401: the session is fine, only the password typed to confirm a change is not."""

    def __init__(self) -> None:
        super().__init__(403, "wrong_password", "the current password is wrong")


class TooManyAttempts(ApiError):
    def __init__(self, retry_after_seconds: int) -> None:
        super().__init__(
            429,
            "too_many_attempts",
            f"too many failed attempts; try again in {retry_after_seconds} seconds",
            headers={"Retry-After": str(retry_after_seconds)},
        )
        self.retry_after_seconds = retry_after_seconds


@dataclass(frozen=True, slots=True, kw_only=True)
class CurrentSession:
    """The signed-in operator of a request, read fresh from the store (role changes apply at once)."""

    operator: Operator
    csrf_token: str
    session_id: str
    expires_at: datetime


@dataclass(slots=True)
class _Lookup:
    current: CurrentSession | None
    refresh_token: str | None = None
    """The cookie's token when its expiry moved, so the response sends the cookie again."""


_LOOKUP = web.RequestKey("inbox_session_lookup", _Lookup)


@dataclass(slots=True)
class _Record:
    failures: deque[datetime] = field(default_factory=deque)
    locked_until: datetime | None = None
    in_flight: int = 0


class _Throttle:
    """Failures per key. Attempts still being verified count against the allowance too, so a
    burst of parallel guesses cannot slip past the limit before the first one has failed."""

    def __init__(self, max_keys: int = 50_000) -> None:
        self._records: dict[str, _Record] = {}
        self._max_keys = max_keys

    def refusal(self, key: str, now: datetime) -> int:
        """Seconds to wait before trying again; 0 when an attempt may go ahead."""
        record = self._records.get(key)
        if record is None:
            return 0
        self._forget_old(record, now)
        if record.locked_until is not None and now < record.locked_until:
            return max(1, math.ceil((record.locked_until - now).total_seconds()))
        return 1 if record.in_flight >= max(1, MAX_FAILURES - len(record.failures)) else 0

    def begin(self, key: str, now: datetime) -> None:
        if key not in self._records and len(self._records) >= self._max_keys:
            self._evict(now)
        self._records.setdefault(key, _Record()).in_flight += 1

    def end(self, key: str, now: datetime, *, failed: bool) -> None:
        record = self._records.setdefault(key, _Record())
        record.in_flight = max(0, record.in_flight - 1)
        if failed:
            record.failures.append(now)
            self._forget_old(record, now)
            excess = len(record.failures) - MAX_FAILURES
            if excess >= 0:
                record.locked_until = now + min(FIRST_LOCK * 2**excess, LONGEST_LOCK)

    def clear(self, key: str) -> None:
        record = self._records.get(key)
        if record is not None:
            record.failures.clear()
            record.locked_until = None
            if not record.in_flight:
                del self._records[key]

    @staticmethod
    def _forget_old(record: _Record, now: datetime) -> None:
        while record.failures and record.failures[0] <= now - FAILURE_WINDOW:
            record.failures.popleft()

    def _evict(self, now: datetime) -> None:
        """Keeps memory bounded under a flood of new keys: idle records first, then the oldest."""
        for key, record in list(self._records.items()):
            self._forget_old(record, now)
            idle = not record.failures and not record.in_flight
            if idle and (record.locked_until is None or record.locked_until <= now):
                del self._records[key]
        for key in list(self._records)[: max(0, len(self._records) - self._max_keys // 2)]:
            del self._records[key]


def _cookie_token(request: web.Request) -> str | None:
    token = request.cookies.get(SESSION_COOKIE)
    return token if token and len(token) <= _MAX_TOKEN_LENGTH else None


def _same(submitted: str, expected: str) -> bool:
    # bytes: compare_digest refuses non-ASCII str, and a submitted value may be anything
    return hmac.compare_digest(submitted.encode(), expected.encode())


class Sessions:
    """Sign-in, sign-out, the current session, CSRF checks and password changes for the web UI.

    ``secure``: True or False forces the cookie's ``Secure`` attribute; None sets it when the
    request came over TLS (``request.secure``).
    """

    def __init__(
        self, store: Store, clock: Clock, *, ttl: timedelta = timedelta(days=14), secure: bool | None = None
    ) -> None:
        self._store, self._clock, self._ttl, self._secure = store, clock, ttl, secure
        self._by_email = _Throttle()
        self._by_address = _Throttle()
        self._hashing = asyncio.Semaphore(_HASHING_AT_ONCE)
        self._dummy_hash: str | None = None
        """What unknown emails are verified against; made at start-up (:func:`setup_sessions`), so
        building the app for a command costs no argon2 hash."""

    @property
    def ttl(self) -> timedelta:
        return self._ttl

    async def dummy_hash(self) -> str:
        if self._dummy_hash is None:
            async with self._hashing:
                self._dummy_hash = await asyncio.to_thread(hash_password, secrets.token_urlsafe(16))
        return self._dummy_hash

    # signing in and out

    async def sign_in(self, request: web.Request, response: web.StreamResponse, email: str, password: str) -> Operator:
        """Checks the password and, if right, sets the session cookie on ``response`` (which may be
        the redirect about to be raised). Raises :class:`InvalidCredentials` or
        :class:`TooManyAttempts`. A session the browser had before is ended."""
        email = email.strip()
        email_key = email.casefold()
        found: list[Operator] = []

        async def check() -> bool:
            if len(email) > 320 or len(password) > MAX_PASSWORD_LENGTH:
                return False
            operator = await self._store.operator_by_email(email)
            stored = operator.password_hash if operator is not None else None
            right = await self._verify(stored or await self.dummy_hash(), password)  # verified either way
            if not right or operator is None or stored is None:
                return False
            found.append(operator)
            return True

        if not await self._attempt(request, email_key, check):
            raise InvalidCredentials()
        self._by_email.clear(email_key)
        operator = found[0]
        now = self._clock.now()
        if (old := _cookie_token(request)) is not None:
            await self._store.delete_session(hash_secret(old))
        await self._store.delete_expired_sessions(now)
        token = secrets.token_urlsafe(32)
        session = Session(
            id=hash_secret(token),
            operator_id=operator.id,
            csrf_token=secrets.token_urlsafe(32),
            created_at=now,
            expires_at=now + self._ttl,
            last_seen_at=now,
        )
        await self._store.create_session(session)
        await self._store.durable()
        self._set_cookie(request, response, token)
        current = CurrentSession(
            operator=operator, csrf_token=session.csrf_token, session_id=session.id, expires_at=session.expires_at
        )
        request[_LOOKUP] = _Lookup(current)
        return operator

    async def sign_out(self, request: web.Request, response: web.StreamResponse) -> None:
        """Ends the browser's session in the store and expires its cookie. Callers check CSRF first,
        or any site could sign operators out."""
        token = _cookie_token(request)
        if token is not None and await self._store.delete_session(hash_secret(token)):
            await self._store.durable()
        response.del_cookie(
            SESSION_COOKIE, path="/", httponly=True, samesite="Lax", secure=self._secure_for(request) or None
        )
        request[_LOOKUP] = _Lookup(None)

    # the current session

    async def session(self, request: web.Request) -> CurrentSession | None:
        """The request's session, or None when there is no cookie or it expired or was revoked.
        Looked up once per request (see :meth:`forget`)."""
        lookup = request.get(_LOOKUP)
        if lookup is None:
            lookup = request[_LOOKUP] = await self._look_up(request)
        return lookup.current

    def forget(self, request: web.Request) -> None:
        """Drops the request's cached lookup: a request that lives on (a WebSocket) asks the store
        again at its next check, so a sign-out, a password change or an expiry ends it too."""
        request.pop(_LOOKUP, None)

    async def _look_up(self, request: web.Request) -> _Lookup:
        token = _cookie_token(request)
        stored = None if token is None else await self._store.session_by_token_hash(hash_secret(token))
        if token is None or stored is None:
            return _Lookup(None)
        now = self._clock.now()
        if stored.expires_at <= now:
            await self._store.delete_session(stored.id)
            return _Lookup(None)
        try:
            operator = await self._store.get_operator(stored.operator_id)
        except NotFound:
            await self._store.delete_session(stored.id)
            return _Lookup(None)
        current = CurrentSession(
            operator=operator, csrf_token=stored.csrf_token, session_id=stored.id, expires_at=stored.expires_at
        )
        if now - stored.last_seen_at < TOUCH_INTERVAL:
            return _Lookup(current)
        expires_at = now + self._ttl
        if not await self._store.touch_session(stored.id, last_seen_at=now, expires_at=expires_at):
            return _Lookup(None)  # signed out or revoked since it was read
        return _Lookup(replace(current, expires_at=expires_at), refresh_token=token)

    def check_csrf(self, request: web.Request, current: CurrentSession, submitted: str | None) -> None:
        """Raises 403 ``csrf_failed`` unless ``submitted`` (a form's :data:`CSRF_FIELD`) is the
        session's token. None falls back to the :data:`CSRF_HEADER` header, which scripts send."""
        if submitted is None:
            submitted = request.headers.get(CSRF_HEADER)
        if not submitted or not _same(submitted, current.csrf_token):
            raise ApiError(403, "csrf_failed", "the security token is missing or out of date; reload the page")

    async def api_operator(self, request: web.Request) -> Operator | None:
        """The session's operator for a REST call from the web UI's own scripts. Unsafe methods
        must carry :data:`CSRF_HEADER`, since the browser attaches the cookie to any request."""
        current = await self.session(request)
        if current is None:
            return None
        if request.method not in SAFE_METHODS:
            self.check_csrf(request, current, request.headers.get(CSRF_HEADER, ""))
        return current.operator

    # passwords

    async def change_password(self, current: CurrentSession, old: str, new: str) -> None:
        """Replaces the password and signs the operator out everywhere but this session. Wrong old
        passwords count toward the account's sign-in throttle: a stolen session must not become a
        way to guess the password itself. API tokens stay valid (they are not the password)."""
        if len(new) < MIN_PASSWORD_LENGTH:
            raise ValidationError(f"the new password must have at least {MIN_PASSWORD_LENGTH} characters")
        if len(new) > MAX_PASSWORD_LENGTH:
            raise ValidationError(f"the new password must have at most {MAX_PASSWORD_LENGTH} characters")
        key = current.operator.email.casefold()
        now = self._clock.now()
        if wait := self._by_email.refusal(key, now):
            raise TooManyAttempts(wait)
        operator = await self._store.get_operator(current.operator.id)
        self._by_email.begin(key, now)
        verified = None
        try:
            verified = operator.password_hash is not None and await self._verify(operator.password_hash, old)
        finally:
            self._by_email.end(key, self._clock.now(), failed=verified is False)
        if not verified:
            raise WrongPassword()
        async with self._hashing:
            new_hash = await asyncio.to_thread(hash_password, new)
        # read again after the thread hops, so a presence change made meanwhile is not overwritten
        operator = await self._store.get_operator(current.operator.id)
        await self._store.save_operator(replace(operator, password_hash=new_hash))
        await self._store.delete_sessions_of(operator.id, keep=current.session_id)
        await self._store.durable()

    # helpers

    async def _attempt(self, request: web.Request, email_key: str, check: Callable[[], Awaitable[bool]]) -> bool:
        keys = ((self._by_email, email_key), (self._by_address, request.remote or "unknown"))
        now = self._clock.now()
        if wait := max(throttle.refusal(key, now) for throttle, key in keys):
            raise TooManyAttempts(wait)
        for throttle, key in keys:
            throttle.begin(key, now)
        ok = None
        try:
            ok = await check()
        finally:  # an error (store unavailable) releases the attempt without counting a failure
            now = self._clock.now()
            for throttle, key in keys:
                throttle.end(key, now, failed=ok is False)
        return bool(ok)

    async def _verify(self, password_hash: str, password: str) -> bool:
        async with self._hashing:
            return await asyncio.to_thread(verify_password, password_hash, password)

    def _secure_for(self, request: web.Request) -> bool:
        return request.secure if self._secure is None else self._secure

    def _set_cookie(self, request: web.Request, response: web.StreamResponse, token: str) -> None:
        response.set_cookie(
            SESSION_COOKIE,
            token,
            max_age=int(self._ttl.total_seconds()),
            path="/",
            httponly=True,
            samesite="Lax",
            secure=self._secure_for(request) or None,
        )

    def _refresh_cookie(self, request: web.Request, response: web.StreamResponse) -> None:
        lookup = request.get(_LOOKUP)
        if lookup is None or lookup.refresh_token is None or lookup.current is None:
            return
        if not response.prepared and SESSION_COOKIE not in response.cookies:
            self._set_cookie(request, response, lookup.refresh_token)


def setup_sessions(app: web.Application, sessions: Sessions) -> None:
    """Puts ``sessions`` on the app (the REST API then accepts the cookie too), makes the dummy
    hash at start-up, so the first unknown email is not slower than the rest, and adds the
    middleware that sends a slid cookie again. Call before the app starts; the middleware goes
    last, so it sees the request after any proxy middleware has rewritten it."""
    app[SESSIONS] = sessions

    async def make_dummy_hash(_: web.Application) -> None:
        await sessions.dummy_hash()

    app.on_startup.append(make_dummy_hash)

    @web.middleware
    async def refresh_session_cookie(
        request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        try:
            response = await handler(request)
        except web.HTTPException as exc:  # redirects are raised, and are responses too
            sessions._refresh_cookie(request, exc)
            raise
        sessions._refresh_cookie(request, response)
        return response

    app.middlewares.append(refresh_session_cookie)
