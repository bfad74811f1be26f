"""The one small interface every channel connector implements.

A connector translates between one channel and the inbox's own types, nothing more: inbound
traffic becomes :class:`~inbox.domain.InboundMessage` handed to ``on_inbound`` (which stores it
before returning, so the connector acknowledges the channel only after that); replies arrive as
:class:`~inbox.domain.OutboundMessage` through :meth:`Connector.send`. Connectors never import
routing or the web layer.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Protocol

from aiohttp import ClientSession, web

from inbox.domain import Channel, DeliveryReceipt, DeliveryStatus, InboundMessage, OutboundMessage
from storage.blobs import BlobStore

__all__ = ["Capabilities", "Connector", "ConnectorContext", "OnDelivery", "OnInbound", "OnUnparsed", "SyncState"]

OnInbound = Callable[[InboundMessage], Awaitable[Any]]
OnDelivery = Callable[[str, DeliveryStatus, str | None], Awaitable[Any]]
"""A channel's later word on a message we sent (message id, new status, detail): a bounce, a receipt."""


class OnUnparsed(Protocol):
    """Keeps raw input that could not become a message (blob + quarantine record); idempotent
    per (channel, external id)."""

    async def __call__(self, *, channel_id: str, external_id: str, source: str, reason: str, raw: bytes) -> None: ...


class SyncState(Protocol):
    """A connector's durable position (e.g. an IMAP folder's UIDVALIDITY and last UID)."""

    async def get(self, key: str) -> str | None: ...

    async def set(self, key: str, value: str) -> None: ...


@dataclass(frozen=True, slots=True, kw_only=True)
class Capabilities:
    """What a channel can carry; richer content is degraded once, centrally, from this."""

    html: bool = False
    attachments: bool = False
    buttons: bool = False
    max_text_length: int | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class ConnectorContext:
    """What the composition root gives every connector: its channel, one shared HTTP client
    session (never one per send), the inbound callback, the way to keep unparsable input, the
    blob store for attachments, and a durable place for its sync position."""

    channel: Channel
    http: ClientSession
    on_inbound: OnInbound
    on_delivery: OnDelivery
    on_unparsed: OnUnparsed
    blobs: BlobStore
    state: SyncState


class Connector(Protocol):
    kind: ClassVar[str]
    capabilities: ClassVar[Capabilities]

    def __init__(self, context: ConnectorContext) -> None: ...

    def routes(self) -> Sequence[web.RouteDef]:
        """Webhook routes, mounted under ``/hooks/<channel-id>/``; most connectors have none."""
        ...

    async def start(self) -> None:
        """Starts background work (polling, IDLE); returns once it is running."""
        ...

    async def stop(self) -> None: ...

    async def send(self, outbound: OutboundMessage) -> DeliveryReceipt:
        """Delivers one reply; raises ``DeliveryError`` (``retryable`` or not) on failure."""
        ...
