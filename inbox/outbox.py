"""The outbox dispatcher: delivers stored replies through their channel's connector.

Replies are written to the outbox in the same transaction as the message
(:meth:`storage.base.Store.append_message`), so a reply the API accepted is sent even if the
process dies right after. The dispatcher leases due jobs, sends each through ``deliver`` (the
composition root maps a channel to its connector), and records the outcome. Failures are retried
with exponential backoff and jitter until ``max_attempts``; a ``DeliveryError(retryable=False)``
fails at once. Because jobs are leased in the store, several processes may run dispatchers.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Awaitable, Callable
from datetime import timedelta

from inbox.clock import Clock, SystemClock
from inbox.domain import DeliveryReceipt, DeliveryStatus, OutboundMessage, OutboxItem
from inbox.errors import DeliveryError, NotFound
from inbox.events import DeliveryUpdated, EventBus
from storage.base import Store

__all__ = ["Deliver", "OutboxDispatcher", "backoff"]

log = logging.getLogger(__name__)

Deliver = Callable[[OutboundMessage], Awaitable[DeliveryReceipt]]


def backoff(attempt: int, *, base: timedelta, cap: timedelta, jitter: float) -> timedelta:
    """Delay before attempt ``attempt + 1``: base·2^attempt, capped, minus up to ``jitter`` of it."""
    delay = min(cap, base * (2 ** min(attempt, 32)))
    return delay * (1 - jitter * random.random())


class OutboxDispatcher:
    def __init__(
        self,
        store: Store,
        bus: EventBus,
        deliver: Deliver,
        *,
        clock: Clock | None = None,
        max_attempts: int = 8,
        base_delay: timedelta = timedelta(seconds=2),
        max_delay: timedelta = timedelta(hours=1),
        jitter: float = 0.25,
        lease: timedelta = timedelta(minutes=2),
        batch: int = 50,
        idle_poll: float = 5.0,
    ) -> None:
        self.store = store
        self.bus = bus
        self.deliver = deliver
        self.clock = clock or SystemClock()
        self.max_attempts = max_attempts
        self.base_delay = base_delay
        self.max_delay = max_delay
        self.jitter = jitter
        self.lease = lease
        self.batch = batch
        self.idle_poll = idle_poll
        self._wakeup = asyncio.Event()

    def wake(self) -> None:
        """Called when a reply was queued, so it goes out now rather than at the next poll."""
        self._wakeup.set()

    async def run_once(self) -> int:
        """Delivers every job due now; returns how many were attempted."""
        attempted = 0
        while True:
            now = self.clock.now()
            items = await self.store.claim_outbox(now=now, lease_until=now + self.lease, limit=self.batch)
            await self.store.durable()  # the lease must hold before anything is sent
            if not items:
                return attempted
            await asyncio.gather(*(self._attempt(item) for item in items))
            attempted += len(items)

    async def run(self) -> None:
        """Runs until cancelled; a store outage is logged and retried, never fatal."""
        while True:
            self._wakeup.clear()
            try:
                await self.run_once()
                due = await self.store.next_outbox_due()
            except Exception:
                log.exception("outbox dispatcher pass failed; retrying")
                due = None
            timeout = self.idle_poll
            if due is not None:
                timeout = min(timeout, max(0.0, (due - self.clock.now()).total_seconds()))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wakeup.wait(), timeout)

    async def _attempt(self, item: OutboxItem) -> None:
        try:
            outbound = await self._outbound(item)
        except NotFound as exc:
            log.error("outbox job %s points at missing data: %s", item.id, exc)
            await self._finish(item, DeliveryStatus.FAILED, error=str(exc))
            return
        try:
            receipt = await self.deliver(outbound)
        except DeliveryError as exc:
            await self._failed(item, str(exc), retryable=exc.retryable)
        except Exception as exc:
            log.exception("delivery of message %s raised", item.message_id)
            await self._failed(item, f"{type(exc).__name__}: {exc}", retryable=True)
        else:
            if receipt.status is DeliveryStatus.FAILED:
                await self._failed(item, receipt.detail or "delivery failed", retryable=False)
            else:
                await self._finish(item, receipt.status, external_id=receipt.external_id)

    async def _outbound(self, item: OutboxItem) -> OutboundMessage:
        message = await self.store.get_message(item.message_id)
        conversation = await self.store.get_conversation(message.conversation_id)
        author = await self.store.get_operator(message.author_id) if message.author_id else None
        return OutboundMessage(
            in_reply_to=await self.store.last_inbound_message(conversation.id),
            channel=await self.store.get_channel(item.channel_id),
            conversation=conversation,
            contact=await self.store.get_contact(conversation.contact_id),
            message=message,
            author=author,
        )

    async def _failed(self, item: OutboxItem, error: str, *, retryable: bool) -> None:
        attempts = item.attempts + 1
        if not retryable or attempts >= self.max_attempts:
            log.warning("giving up on message %s after %d attempt(s): %s", item.message_id, attempts, error)
            await self._finish(item, DeliveryStatus.FAILED, error=error)
            return
        delay = backoff(item.attempts, base=self.base_delay, cap=self.max_delay, jitter=self.jitter)
        log.info("delivery of message %s failed (%s); retry in %s", item.message_id, error, delay)
        await self.store.retry_outbox(item, next_attempt_at=self.clock.now() + delay, error=error)
        await self.store.durable()

    async def _finish(
        self,
        item: OutboxItem,
        status: DeliveryStatus,
        *,
        error: str | None = None,
        external_id: str | None = None,
    ) -> None:
        message = await self.store.finish_outbox(item, status=status, error=error, external_id=external_id)
        await self.store.durable()
        await self.bus.publish(DeliveryUpdated(message=message))
