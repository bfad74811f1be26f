"""Keeps one running connector per channel: started at boot for every stored channel, created on
first use for channels added while the server runs, stopped in reverse order on shutdown."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping

from aiohttp import ClientSession

from connectors.base import Connector, ConnectorContext, OnInbound
from connectors.registry import connector_class
from inbox.domain import Channel, DeliveryReceipt, OutboundMessage

__all__ = ["ConnectorHub"]

log = logging.getLogger(__name__)


class ConnectorHub:
    def __init__(
        self,
        http: Callable[[], ClientSession],
        on_inbound: OnInbound,
        *,
        overrides: Mapping[str, type[Connector]] | None = None,
    ) -> None:
        self._http = http
        self._on_inbound = on_inbound
        self._overrides = dict(overrides or {})
        self._running: dict[str, Connector] = {}

    def _class_for(self, kind: str) -> type[Connector]:
        return self._overrides.get(kind) or connector_class(kind)

    async def connector(self, channel: Channel) -> Connector:
        running = self._running.get(channel.id)
        if running is None:
            running = self._class_for(channel.kind)(
                ConnectorContext(channel=channel, http=self._http(), on_inbound=self._on_inbound)
            )
            await running.start()
            self._running[channel.id] = running
            log.info("started %s connector for channel %s (%s)", channel.kind, channel.name, channel.id)
        return running

    async def start_all(self, channels: list[Channel]) -> None:
        for channel in channels:
            await self.connector(channel)

    async def stop_all(self) -> None:
        for channel_id, connector in reversed(list(self._running.items())):
            try:
                await connector.stop()
            except Exception:
                log.exception("stopping the connector of channel %s failed", channel_id)
        self._running.clear()

    async def deliver(self, outbound: OutboundMessage) -> DeliveryReceipt:
        """The outbox dispatcher's way out: the reply goes through its channel's connector."""
        return await (await self.connector(outbound.channel)).send(outbound)
