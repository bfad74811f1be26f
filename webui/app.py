"""The aiohttp application: health, the REST API and its OpenAPI document.

Built by the composition root (:mod:`inbox.app`), which owns start-up and shutdown; this module
only declares routes and middleware.
"""

from __future__ import annotations

from aiohttp import web

from inbox.errors import StorageError
from inbox.service import InboxService
from routing.router import Router
from storage.blobs import BlobStore
from webui.api.openapi import openapi_document
from webui.api.routes import ENDPOINTS
from webui.api.routing import ROUTING_ENDPOINTS
from webui.auth import TokenCache
from webui.errors import error_middleware
from webui.keys import BLOBS, CHANNEL_KEYS, MAX_BODY_BYTES, OPERATOR_TOKENS, ROUTER, SERVICE
from webui.pages import setup_pages

__all__ = ["create_web_app"]


def create_web_app(
    service: InboxService, blobs: BlobStore, router: Router, *, max_body_bytes: int, version: str
) -> web.Application:
    app = web.Application(client_max_size=max_body_bytes, middlewares=[error_middleware])
    app[SERVICE] = service
    app[BLOBS] = blobs
    app[ROUTER] = router
    app[MAX_BODY_BYTES] = max_body_bytes
    app[OPERATOR_TOKENS] = TokenCache()
    app[CHANNEL_KEYS] = TokenCache()
    endpoints = (*ENDPOINTS, *ROUTING_ENDPOINTS)
    document = openapi_document(endpoints, version=version)

    async def healthz(request: web.Request) -> web.Response:
        try:
            await service.reads.ping()
        except StorageError as exc:
            return web.json_response({"status": "unavailable", "detail": str(exc)}, status=503)
        return web.json_response({"status": "ok"})

    async def openapi(request: web.Request) -> web.Response:
        return web.json_response(document)

    app.router.add_get("/healthz", healthz)
    app.router.add_get("/api/v1/openapi.json", openapi)
    app.router.add_routes([endpoint.route() for endpoint in endpoints])
    setup_pages(app)
    return app
