"""Typed keys for what the composition root puts on the aiohttp application."""

from __future__ import annotations

from aiohttp import web

from inbox.service import InboxService

__all__ = ["MAX_BODY_BYTES", "SERVICE"]

SERVICE = web.AppKey("service", InboxService)
MAX_BODY_BYTES = web.AppKey("max_body_bytes", int)
