"""Keeps one running connector per channel: started at boot for every stored channel, created on
first use for channels added while the server runs, stopped in reverse order on shutdown."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping

from connectors.base import Connector, ConnectorContext
from connectors.registry import connector_class
from inbox.domain import Channel, DeliveryReceipt, OutboundMessage
from inbox.errors import DeliveryError
from inbox.locks import KeyedLocks

__all__ = ["ConnectorHub"]

log = logging.getLogger(__name__)


class ConnectorHub:
    def __init__(
        self,
        context_for: Callable[[Channel], ConnectorContext],
        *,
        overrides: Mapping[str, type[Connector]] | None = None,
    ) -> None:
        self._context_for = context_for
        self._overrides = dict(overrides or {})
        self._running: dict[str, Connector] = {}
        self._starting = KeyedLocks()
        self._stopped = False

    def _class_for(self, kind: str) -> type[Connector]:
        return self._overrides.get(kind) or connector_class(kind)

    async def connector(self, channel: Channel) -> Connector:
        """The channel's running connector, started on first use; one instance even when several
        deliveries ask at once."""
        running = self._running.get(channel.id)
        if running is not None:
            return running
        async with self._starting.hold(channel.id):
            running = self._running.get(channel.id)
            if running is None:
                if self._stopped:
                    raise DeliveryError("connectors are shutting down")
                try:
                    kind = self._class_for(channel.kind)
                except LookupError as exc:
                    raise DeliveryError(str(exc), retryable=False) from exc
                running = kind(self._context_for(channel))
                await running.start()
                self._running[channel.id] = running
                log.info("started %s connector for channel %s (%s)", channel.kind, channel.name, channel.id)
        return running

    async def start_all(self, channels: list[Channel]) -> None:
        """Starts every channel's connector; one that fails is logged and retried on first use,
        so a broken mailbox does not keep the API and the other channels from starting."""
        self._stopped = False
        for channel in channels:
            try:
                await self.connector(channel)
            except Exception:
                log.exception(
                    "the %s connector of channel %s (%s) did not start", channel.kind, channel.name, channel.id
                )

    async def stop_all(self) -> None:
        self._stopped = True
        for channel_id, connector in reversed(list(self._running.items())):
            try:
                await connector.stop()
            except Exception:
                log.exception("stopping the connector of channel %s failed", channel_id)
        self._running.clear()

    async def deliver(self, outbound: OutboundMessage) -> DeliveryReceipt:
        """The outbox dispatcher's way out: the reply goes through its channel's connector."""
        return await (await self.connector(outbound.channel)).send(outbound)
