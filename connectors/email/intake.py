"""Raw mail → stored message, shared by SMTP and IMAP intake.

Parsing runs in the parser thread (``parser_thread.py``), so a large or hostile message never
blocks the event loop (a process pool, tried for the second core, measured slower: ~190 vs ~260
msgs/s over SMTP).
A message that cannot be parsed is quarantined (raw bytes kept, reason recorded) rather than
refused or dropped; either way :meth:`EmailIntake.accept` returns only once the outcome is
durable, which is when SMTP may answer 250 and IMAP may flag the message as done.
"""

from __future__ import annotations

import asyncio
import re

from connectors.base import ConnectorContext
from connectors.email.parser_thread import parse_off_loop
from connectors.email.parsing import ParsedEmail
from connectors.email.settings import EmailSettings
from inbox.domain import DeliveryStatus, InboundContact, InboundMessage, conversation_thread_key
from inbox.errors import NotFound, PayloadError
from storage.blobs import sha256_of

__all__ = ["EmailIntake", "outbound_message_id"]

_OUR_MESSAGE_ID = re.compile(r"^<([0-9a-z]{26})\.([0-9a-z]{26})@([^>]+)>$")


def outbound_message_id(message_id: str, conversation_id: str, domain: str) -> str:
    """Our replies' Message-ID names their conversation, so an answer to one threads back to it
    even when the customer's client keeps only In-Reply-To."""
    return f"<{message_id}.{conversation_id}@{domain}>"


class EmailIntake:
    def __init__(self, context: ConnectorContext, settings: EmailSettings) -> None:
        self.context = context
        self.settings = settings

    async def accept(
        self, raw: bytes, *, source: str, origin: str, parsing: asyncio.Future[ParsedEmail] | None = None
    ) -> InboundMessage | None:
        """Stores one raw message (or quarantines it); returns what was stored, or None.

        ``origin`` says where it came from (an IMAP folder, UIDVALIDITY and UID; an SMTP
        session) for the log; ``parsing`` is the message already handed to the parser (IMAP
        parses a batch ahead). Quarantine is keyed by content, so the same bad message met again
        (after a UIDVALIDITY change, in a backfill, redelivered over SMTP) is kept once."""
        try:
            parsed = await (parsing or parse_off_loop(raw))
            if parsed.sender is None or not parsed.sender.email:
                raise PayloadError("no sender address (From)")
        except PayloadError as exc:
            await self.context.on_unparsed(
                channel_id=self.context.channel.id,
                external_id=f"sha256:{sha256_of(raw)}",
                source=source,
                reason=f"{exc} ({origin})",
                raw=raw,
            )
            return None
        await self._record_bounce(parsed)
        inbound = await self._inbound(parsed, raw)
        await self.context.on_inbound(inbound)
        return inbound

    def _ours(self, message_id: str | None) -> re.Match[str] | None:
        """Parts of a Message-ID we gave one of our replies (message id, conversation id), if it is one."""
        match = _OUR_MESSAGE_ID.match(message_id or "")
        return match if match and match.group(3).lower() == self.settings.domain else None

    async def _record_bounce(self, parsed: ParsedEmail) -> None:
        """A permanent failure report about one of our replies marks that reply failed; the report
        itself is still stored (flagged, so nothing ever answers it)."""
        bounce = parsed.bounce
        ours = self._ours(bounce.original_message_id) if bounce else None
        if bounce is None or ours is None or (bounce.status or "5").startswith("4"):
            return
        try:
            await self.context.on_delivery(
                ours.group(1), DeliveryStatus.FAILED, f"bounced: {bounce.status or 'permanent failure'}"
            )
        except NotFound:
            pass  # a report about mail this instance no longer knows

    def _participants(self, parsed: ParsedEmail) -> tuple[str, ...]:
        """Everyone else the customer wrote to (To and Cc, not this mailbox): they may answer in
        the thread too, as a colleague copied on a complaint does."""
        ours = self.settings.address.lower()
        addresses = (a.email.lower() for a in (*parsed.to, *parsed.cc) if a.email)
        return tuple(dict.fromkeys(address for address in addresses if address != ours))

    async def _inbound(self, parsed: ParsedEmail, raw: bytes) -> InboundMessage:
        assert parsed.sender is not None
        attachments = []
        for attachment in parsed.attachments:
            await self.context.blobs.put(attachment.content)
            attachments.append(attachment.meta)
        # Our origin header alone is not proof: another Inbox instance sets it too, on mail a
        # person wrote. Our own mail is mail with a Message-ID this channel gave out.
        own = parsed.own and self._ours(parsed.message_id) is not None
        referenced = parsed.thread_keys
        text = parsed.reply_text or parsed.text
        own_keys = tuple(conversation_thread_key(match.group(2)) for key in referenced if (match := self._ours(key)))
        return InboundMessage(
            channel_id=self.context.channel.id,
            external_id=parsed.message_id or f"sha256:{sha256_of(raw)}",
            contact=InboundContact(
                external_id=parsed.sender.email.lower(), name=parsed.sender.name, email=parsed.sender.email
            ),
            text=text,
            subject=parsed.subject,
            html=parsed.html,
            thread_keys=(*referenced, *own_keys),
            own_thread_key=parsed.message_id,
            conversation_number=parsed.ticket_number,
            participants=self._participants(parsed),
            attachments=tuple(attachments),
            auto_reply=parsed.auto_reply or parsed.bulk or parsed.bounce is not None or own,
            extras={
                "suppress_auto_reply": parsed.suppress_auto_reply,
                "email": {
                    "message_id": parsed.message_id,
                    "from": parsed.sender.to_json(),
                    "to": [a.to_json() for a in parsed.to],
                    "cc": [a.to_json() for a in parsed.cc],
                    "references": list(parsed.references),
                    "full_text": None if parsed.text.strip() == text.strip() else parsed.text,  # None: text is all
                    "bulk": parsed.bulk,
                    "bounce": parsed.bounce.to_json() if parsed.bounce else None,
                    "own": own,
                    "defects": list(parsed.defects),
                },
            },
        )
