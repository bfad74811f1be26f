"""Bearer-token authentication for the API: operators by their API token, channels by their key."""

from __future__ import annotations

from aiohttp import web

from inbox.domain import Channel, Operator
from inbox.ids import hash_secret
from storage.base import Store

__all__ = ["bearer_token", "channel_for", "operator_for"]


def bearer_token(request: web.Request) -> str | None:
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    token = token.strip()
    return token if scheme.lower() == "bearer" and token else None


async def operator_for(request: web.Request, store: Store) -> Operator | None:
    token = bearer_token(request)
    return await store.operator_by_token(hash_secret(token)) if token else None


async def channel_for(request: web.Request, store: Store) -> Channel | None:
    token = bearer_token(request)
    return await store.channel_by_secret(hash_secret(token)) if token else None
