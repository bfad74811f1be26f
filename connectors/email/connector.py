"""The email channel's connector: IMAP polling in, replies out through an SMTP relay.

SMTP intake is not per channel (one listening port serves every email channel, by recipient
address): see :mod:`connectors.email.smtp_server`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence
from typing import ClassVar

from aiohttp import web

from connectors.base import Capabilities, ConnectorContext
from connectors.email.intake import EmailIntake
from connectors.email.outbound import send_reply
from connectors.email.settings import EmailSettings
from inbox.domain import DeliveryReceipt, OutboundMessage

__all__ = ["EmailConnector"]

log = logging.getLogger(__name__)


class EmailConnector:
    kind: ClassVar[str] = "email"
    capabilities: ClassVar[Capabilities] = Capabilities(attachments=True)

    def __init__(self, context: ConnectorContext) -> None:
        self.context = context
        self.settings = EmailSettings.of(context.channel.settings)
        self.intake = EmailIntake(context, self.settings)
        self._polling: asyncio.Task[None] | None = None

    def routes(self) -> Sequence[web.RouteDef]:
        return ()

    async def start(self) -> None:
        if self.settings.imap_host:
            from connectors.email.imap import ImapPoller

            poller = ImapPoller(self.settings, self.intake, self.context.state, channel_id=self.context.channel.id)
            self._polling = asyncio.create_task(poller.run(), name=f"imap-{self.context.channel.id}")

    async def stop(self) -> None:
        if self._polling is not None:
            self._polling.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._polling
            self._polling = None

    async def send(self, outbound: OutboundMessage) -> DeliveryReceipt:
        return await send_reply(outbound, self.settings)
