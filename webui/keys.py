"""Typed keys for what the composition root puts on the aiohttp application."""

from __future__ import annotations

from typing import TYPE_CHECKING

from aiohttp import web

from inbox.domain import Channel, Operator
from inbox.service import InboxService
from routing.router import Router
from storage.blobs import BlobStore
from webui.auth import TokenCache

if TYPE_CHECKING:  # webui.sessions imports this module (through webui.errors)
    from webui.sessions import Sessions

__all__ = ["BLOBS", "CHANNEL_KEYS", "MAX_BODY_BYTES", "OPERATOR_TOKENS", "ROUTER", "SERVICE", "SESSIONS"]

SERVICE = web.AppKey("service", InboxService)
BLOBS = web.AppKey("blobs", BlobStore)
ROUTER = web.AppKey("router", Router)
MAX_BODY_BYTES = web.AppKey("max_body_bytes", int)
OPERATOR_TOKENS = web.AppKey("operator_tokens", TokenCache[Operator])
CHANNEL_KEYS = web.AppKey("channel_keys", TokenCache[Channel])
SESSIONS: web.AppKey[Sessions] = web.AppKey("sessions")
"""Set by :func:`webui.sessions.setup_sessions`; absent, the API accepts bearer tokens only."""
