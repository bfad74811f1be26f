"""The composition root: the one module that knows every package and wires them together.

Start-up and shutdown are aiohttp ``cleanup_ctx`` contexts on the root application, entered in
dependency order and left in reverse: HTTP client session → store → routing → connectors →
SMTP intake → outbox dispatcher, so routing listens before any channel can deliver a message.
A context that failed to start is not cleaned up; the ones before it are.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from aiohttp import ClientSession, web

from connectors.base import Connector, ConnectorContext
from connectors.email.intake import EmailIntake
from connectors.email.smtp_server import SmtpIntakeServer, load_auth_users, load_tls_context
from connectors.hub import ConnectorHub
from inbox import __version__
from inbox.accounts import NewOperator, add_operator
from inbox.clock import Clock, SystemClock
from inbox.config import Settings
from inbox.domain import Channel, ChannelKind, DeliveryStatus, Role, Unparsed
from inbox.events import DeliveryUpdated, Event, EventBus, MessageCreated
from inbox.ids import new_id
from inbox.outbox import OutboxDispatcher
from inbox.service import InboxService
from routing.router import Router
from storage import open_store
from storage.base import Store
from storage.blobs import BlobStore, FileBlobStore
from webui.app import create_web_app
from webui.live import setup_live
from webui.sessions import Sessions, setup_sessions

__all__ = ["Inbox", "build", "connector_context", "offline"]

log = logging.getLogger(__name__)


@dataclass(kw_only=True)
class Inbox:
    """Every long-lived object of one running instance."""

    settings: Settings
    store: Store
    blobs: BlobStore
    bus: EventBus
    service: InboxService
    hub: ConnectorHub
    dispatcher: OutboxDispatcher
    router: Router
    web: web.Application
    on_admin_created: Callable[[NewOperator], None] | None = None
    smtp: SmtpIntakeServer | None = None
    _http: ClientSession | None = field(default=None, repr=False)

    def http(self) -> ClientSession:
        if self._http is None:
            raise RuntimeError("the HTTP client session is not open yet")
        return self._http


def build(
    settings: Settings,
    *,
    clock: Clock | None = None,
    connectors: Mapping[str, type[Connector]] | None = None,
    store: Store | None = None,
    on_admin_created: Callable[[NewOperator], None] | None = None,
    live_options: Mapping[str, Any] | None = None,
) -> Inbox:
    """``live_options`` tune the live hub (:func:`webui.live.setup_live`), for tests."""
    clock = clock or SystemClock()
    store = store or open_store(settings.effective_database_url, sqlite_durability=settings.sqlite_durability)
    bus = EventBus()
    service = InboxService(store, bus, clock=clock, reopen_window=timedelta(days=settings.reopen_window_days))
    blobs = FileBlobStore(settings.data_dir / "blobs")
    router = Router(service, clock)
    web_app = create_web_app(service, blobs, router, max_body_bytes=settings.max_body_bytes, version=__version__)
    setup_sessions(web_app, Sessions(store, clock))
    inbox: Inbox
    hub = ConnectorHub(lambda channel: connector_context(inbox, channel), overrides=connectors)
    dispatcher = OutboxDispatcher(store, bus, hub.deliver, clock=clock)
    inbox = Inbox(
        blobs=blobs,
        settings=settings,
        store=store,
        bus=bus,
        service=service,
        hub=hub,
        dispatcher=dispatcher,
        router=router,
        web=web_app,
        on_admin_created=on_admin_created,
    )
    # entered in this order, left in reverse: intake and the dispatcher stop before the connectors
    web_app.cleanup_ctx.extend(
        [
            _http_session(inbox),
            _store(inbox),
            _routing(inbox),
            _connectors(inbox),
            _smtp_intake(inbox),
            _dispatcher(inbox),
        ]
    )
    setup_live(web_app, bus, **(live_options or {}))  # after routing: it hears routing's decisions as published
    return inbox


@contextlib.asynccontextmanager
async def offline(settings: Settings) -> AsyncIterator[Inbox]:
    """The instance's store and HTTP session without the web server, for commands such as an
    IMAP backfill that work beside (or instead of) a running ``inbox serve``."""
    inbox = build(settings)
    await inbox.store.open()
    try:
        async with ClientSession() as session:
            inbox._http = session
            yield inbox
    finally:
        await inbox.store.close()


def connector_context(inbox: Inbox, channel: Channel) -> ConnectorContext:
    """What a channel's connector is given: see :class:`connectors.base.ConnectorContext`."""
    store = inbox.store

    async def on_unparsed(*, channel_id: str, external_id: str, source: str, reason: str, raw: bytes) -> None:
        digest = await inbox.blobs.put(raw)
        record = Unparsed(
            id=new_id(),
            channel_id=channel_id,
            external_id=external_id,
            source=source,
            reason=reason,
            raw_sha256=digest,
            size=len(raw),
            created_at=inbox.service.clock.now(),
        )
        await store.quarantine(record)
        await store.durable()
        log.warning("quarantined %s item %s of channel %s: %s", source, external_id, channel_id, reason)

    class State:
        async def get(self, key: str) -> str | None:
            return await store.get_sync_state(key)

        async def set(self, key: str, value: str) -> None:
            await store.set_sync_state(key, value)
            await store.durable()

    return ConnectorContext(
        channel=channel,
        http=inbox.http(),
        on_inbound=inbox.service.receive,
        on_delivery=inbox.service.record_delivery,
        on_unparsed=on_unparsed,
        blobs=inbox.blobs,
        state=State(),
    )


def _http_session(inbox: Inbox) -> Callable[[web.Application], AsyncIterator[None]]:
    async def context(_: web.Application) -> AsyncIterator[None]:
        async with ClientSession() as session:
            inbox._http = session
            yield
            inbox._http = None

    return context


def _store(inbox: Inbox) -> Callable[[web.Application], AsyncIterator[None]]:
    async def context(_: web.Application) -> AsyncIterator[None]:
        await inbox.store.open()
        try:
            if await inbox.store.count_operators() == 0:
                created = await add_operator(
                    inbox.store, email="admin@localhost", name="Administrator", role=Role.ADMIN
                )
                if inbox.on_admin_created:
                    inbox.on_admin_created(created)
            yield
        finally:
            await inbox.store.close()

    return context


def _routing(inbox: Inbox) -> Callable[[web.Application], AsyncIterator[None]]:
    async def context(_: web.Application) -> AsyncIterator[None]:
        await inbox.router.start()
        yield
        await inbox.router.stop()

    return context


def _dispatcher(inbox: Inbox) -> Callable[[web.Application], AsyncIterator[None]]:
    async def context(_: web.Application) -> AsyncIterator[None]:
        async def wake_on_reply(_: int, event: Event) -> None:
            if (
                isinstance(event, MessageCreated | DeliveryUpdated)
                and event.message.delivery_status is DeliveryStatus.QUEUED
            ):
                inbox.dispatcher.wake()

        unsubscribe = inbox.bus.subscribe(wake_on_reply)
        task = asyncio.create_task(inbox.dispatcher.run(), name="outbox-dispatcher")
        yield
        unsubscribe()
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    return context


def _smtp_intake(inbox: Inbox) -> Callable[[web.Application], AsyncIterator[None]]:
    async def context(_: web.Application) -> AsyncIterator[None]:
        addresses: dict[str, Channel] = {}

        async def resolve(address: str) -> EmailIntake | None:
            if address not in addresses:  # a channel added while running is found on first use
                channels = await inbox.store.list_channels()
                addresses.clear()
                addresses.update(
                    (str(c.settings.get("address", "")).lower(), c) for c in channels if c.kind == ChannelKind.EMAIL
                )
            channel = addresses.get(address)
            if channel is None:
                return None
            connector = await inbox.hub.connector(channel)
            return getattr(connector, "intake", None)

        server = SmtpIntakeServer(
            resolve,
            host=inbox.settings.smtp_host,
            port=inbox.settings.smtp_port,
            max_message_bytes=inbox.settings.smtp_max_message_bytes,
            tls_context=load_tls_context(inbox.settings.smtp_tls_cert, inbox.settings.smtp_tls_key),
            require_tls=inbox.settings.smtp_require_tls,
            auth_users=load_auth_users(inbox.settings.smtp_auth_file),
            auth_allow_plaintext=inbox.settings.smtp_auth_allow_plaintext,
        )
        await server.start()
        inbox.smtp = server
        yield
        await server.stop()

    return context


def _connectors(inbox: Inbox) -> Callable[[web.Application], AsyncIterator[None]]:
    async def context(_: web.Application) -> AsyncIterator[None]:
        try:
            await inbox.hub.start_all(await inbox.store.list_channels())
            yield
        finally:
            await inbox.hub.stop_all()

    return context
