"""SMTP intake: the server an MX or a forwarding rule delivers customer mail to.

One listening port serves every email channel; a recipient address picks the channel. The
sender hears ``250`` only once the message is durably stored (or, if it cannot be parsed,
durably quarantined); ``451`` when the store cannot take it now, so the sending server retries;
``550`` for an address no channel has; ``552`` over the size limit (aiosmtpd's own check);
``452`` past the recipient limit; ``421`` when too many sessions are open.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from aiosmtpd.smtp import SMTP, Envelope, Session

from connectors.email.intake import EmailIntake
from inbox.errors import StorageError

__all__ = ["ResolveRecipient", "SmtpIntakeServer"]

log = logging.getLogger(__name__)

ResolveRecipient = Callable[[str], Awaitable[EmailIntake | None]]


class _Handler:
    def __init__(self, resolve: ResolveRecipient, max_recipients: int) -> None:
        self._resolve = resolve
        self._max_recipients = max_recipients

    async def handle_RCPT(  # noqa: N802 - aiosmtpd's hook name
        self, server: SMTP, session: Session, envelope: Envelope, address: str, rcpt_options: list[str]
    ) -> str:
        if len(envelope.rcpt_tos) >= self._max_recipients:
            return "452 4.5.3 Too many recipients"
        try:
            intake = await self._resolve(address.strip().lower())
        except StorageError:
            return "451 4.3.0 Temporarily unable to look up the recipient, try again later"
        if intake is None:
            return "550 5.1.1 No such mailbox here"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:  # noqa: N802
        raw = envelope.original_content or b""
        origin = f"smtp from {session.peer[0] if session.peer else 'unknown'}"
        channels: dict[str, EmailIntake] = {}
        for address in envelope.rcpt_tos:
            intake = await self._resolve(address.strip().lower())
            if intake is not None:
                channels.setdefault(intake.context.channel.id, intake)
        try:
            for intake in channels.values():
                await intake.accept(raw, source="smtp", origin=origin)
        except StorageError as exc:
            log.warning("SMTP intake could not store a message (%s); the sender will retry", exc)
            return "451 4.3.0 Temporarily unable to store the message, try again later"
        return "250 OK: stored"


class _LimitedSMTP(SMTP):
    """Refuses a session once ``max_sessions`` are open, instead of letting a flood queue up."""

    def __init__(self, handler: Any, *, sessions: list[int], max_sessions: int, **kwargs: Any) -> None:
        super().__init__(handler, **kwargs)
        self._sessions, self._max_sessions = sessions, max_sessions
        self._counted = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        if self._sessions[0] >= self._max_sessions:
            transport.write(b"421 4.7.0 Too many connections, try again later\r\n")  # type: ignore[attr-defined]
            transport.close()
            return
        self._sessions[0] += 1
        self._counted = True
        super().connection_made(transport)

    def connection_lost(self, error: Exception | None) -> None:
        if self._counted:
            self._sessions[0] -= 1
            self._counted = False
        super().connection_lost(error)


class SmtpIntakeServer:
    def __init__(
        self,
        resolve: ResolveRecipient,
        *,
        host: str,
        port: int,
        max_message_bytes: int = 30 * 1024 * 1024,
        max_recipients: int = 50,
        max_sessions: int = 100,
    ) -> None:
        self.host, self.port = host, port
        self._handler = _Handler(resolve, max_recipients)
        self._max_message_bytes = max_message_bytes
        self._max_sessions = max_sessions
        self._sessions = [0]
        self._server: asyncio.Server | None = None

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(
            lambda: _LimitedSMTP(
                self._handler,
                sessions=self._sessions,
                max_sessions=self._max_sessions,
                data_size_limit=self._max_message_bytes,
                hostname="inbox",
                ident="Inbox SMTP intake",
            ),
            host=self.host,
            port=self.port,
        )
        self.port = self._server.sockets[0].getsockname()[1]
        log.info("SMTP intake listening on %s:%d", self.host, self.port)

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None
