"""Bearer-token authentication for the API: operators by their API token, channels by their key.
Operators may also call it with the web UI's session cookie (:mod:`webui.sessions`) when they
send no ``Authorization`` header at all.

Successful look-ups are remembered for a few seconds: an inbound burst from one integration
then costs one query, not one per message. A change to an operator (role, deletion) therefore
takes effect within :data:`TOKEN_CACHE_SECONDS`.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Generic, TypeVar

from aiohttp import web

from inbox.domain import Channel, Operator
from inbox.ids import hash_secret
from inbox.reads import InboxReads

if TYPE_CHECKING:  # webui.sessions imports webui.keys, which imports this module
    from webui.sessions import Sessions

__all__ = ["TOKEN_CACHE_SECONDS", "TokenCache", "bearer_token", "channel_for", "operator_for"]

TOKEN_CACHE_SECONDS = 5.0
T = TypeVar("T")


class TokenCache(Generic[T]):
    def __init__(self, ttl: float = TOKEN_CACHE_SECONDS, max_entries: int = 10_000) -> None:
        self._ttl, self._max_entries = ttl, max_entries
        self._entries: dict[str, tuple[float, T]] = {}

    async def get(self, token: str, load: Callable[[str], Awaitable[T | None]]) -> T | None:
        """Keyed by the token's hash, so the cache never holds a usable secret."""
        token_hash = hash_secret(token)
        now = time.monotonic()
        hit = self._entries.get(token_hash)
        if hit is not None and hit[0] > now:
            return hit[1]
        value = await load(token)
        if value is not None:
            if len(self._entries) >= self._max_entries:
                self._entries.clear()
            self._entries[token_hash] = (now + self._ttl, value)
        return value


def bearer_token(request: web.Request) -> str | None:
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    token = token.strip()
    return token if scheme.lower() == "bearer" and token else None


async def operator_for(
    request: web.Request, reads: InboxReads, cache: TokenCache[Operator], sessions: Sessions | None = None
) -> Operator | None:
    """A request that sends ``Authorization`` is judged by it alone: a wrong token never falls
    back to a cookie. Without one, the session cookie counts, with its CSRF check."""
    if "Authorization" not in request.headers:
        return await sessions.api_operator(request) if sessions is not None else None
    token = bearer_token(request)
    return await cache.get(token, reads.operator_by_token) if token else None


async def channel_for(request: web.Request, reads: InboxReads, cache: TokenCache[Channel]) -> Channel | None:
    token = bearer_token(request)
    return await cache.get(token, reads.channel_by_key) if token else None
