"""The ``api`` channel: the generic integration point for systems that push customer messages.

Inbound: ``POST /api/v1/inbound`` with the channel's key (served by the web layer, which hands
the validated payload to :func:`inbound_message`). Outbound: when the channel has a
``webhook_url``, each reply is POSTed there as JSON, signed with HMAC-SHA256 over the body in
``X-Inbox-Signature: sha256=<hex>`` using the channel's ``webhook_secret``; without one, the reply
is marked ``sent`` and the integrating system reads it from the conversation's messages.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Sequence
from typing import Any, ClassVar

import aiohttp
from aiohttp import web

from connectors.base import Capabilities, ConnectorContext
from inbox.domain import (
    Channel,
    DeliveryReceipt,
    DeliveryStatus,
    InboundContact,
    InboundMessage,
    OutboundMessage,
)
from inbox.errors import DeliveryError

__all__ = ["ApiConnector", "inbound_message", "sign"]


def inbound_message(
    channel: Channel,
    *,
    external_id: str,
    contact: dict[str, Any],
    text: str,
    subject: str | None = None,
    thread_id: str | None = None,
) -> InboundMessage:
    """Without a ``thread_id`` every message of a contact joins their open conversation, as in a chat."""
    return InboundMessage(
        channel_id=channel.id,
        external_id=external_id,
        contact=InboundContact(
            external_id=contact["external_id"],
            scope=f"api:{channel.id}",
            name=contact.get("name"),
            email=contact.get("email"),
            phone=contact.get("phone"),
        ),
        text=text,
        subject=subject,
        thread_keys=(f"thread:{thread_id}" if thread_id else f"contact:{contact['external_id']}",),
    )


def sign(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


class ApiConnector:
    kind: ClassVar[str] = "api"
    capabilities: ClassVar[Capabilities] = Capabilities()

    def __init__(self, context: ConnectorContext) -> None:
        self.context = context

    def routes(self) -> Sequence[web.RouteDef]:
        return ()

    async def start(self) -> None:
        pass

    async def stop(self) -> None:
        pass

    async def send(self, outbound: OutboundMessage) -> DeliveryReceipt:
        url = outbound.channel.settings.get("webhook_url")
        if not url:
            return DeliveryReceipt(status=DeliveryStatus.SENT, detail="no webhook; read it through the API")
        message, conversation = outbound.message, outbound.conversation
        body = json.dumps(
            {
                "event": "message.outbound",
                "message_id": message.id,
                "conversation_id": conversation.id,
                "conversation_number": conversation.number,
                "contact": {
                    "id": outbound.contact.id,
                    "external_ids": [i.external_id for i in outbound.contact.identities if i.channel_kind == self.kind],
                },
                "text": message.text,
                "author": {"id": outbound.author.id, "name": outbound.author.name} if outbound.author else None,
                "created_at": message.created_at.isoformat(),
            },
            ensure_ascii=False,
        ).encode()
        headers = {"Content-Type": "application/json", "Idempotency-Key": message.id}
        secret = outbound.channel.settings.get("webhook_secret")
        if secret:
            headers["X-Inbox-Signature"] = sign(secret, body)
        try:
            async with self.context.http.post(
                url, data=body, headers=headers, timeout=aiohttp.ClientTimeout(total=15)
            ) as response:
                if response.status < 300:
                    return DeliveryReceipt(status=DeliveryStatus.DELIVERED)
                detail = f"webhook answered HTTP {response.status}"
                retryable = response.status >= 500 or response.status in (408, 429)
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise DeliveryError(f"webhook unreachable: {exc!r}") from exc
        raise DeliveryError(detail, retryable=retryable)
