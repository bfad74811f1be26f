"""Typed keys for what the composition root puts on the aiohttp application."""

from __future__ import annotations

from aiohttp import web

from inbox.domain import Channel, Operator
from inbox.service import InboxService
from routing.router import Router
from storage.blobs import BlobStore
from webui.auth import TokenCache

__all__ = ["BLOBS", "CHANNEL_KEYS", "MAX_BODY_BYTES", "OPERATOR_TOKENS", "ROUTER", "SERVICE"]

SERVICE = web.AppKey("service", InboxService)
BLOBS = web.AppKey("blobs", BlobStore)
ROUTER = web.AppKey("router", Router)
MAX_BODY_BYTES = web.AppKey("max_body_bytes", int)
OPERATOR_TOKENS = web.AppKey("operator_tokens", TokenCache[Operator])
CHANNEL_KEYS = web.AppKey("channel_keys", TokenCache[Channel])
