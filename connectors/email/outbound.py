"""Replies as email: headers that make the customer's client thread them, sent through a relay.

``In-Reply-To`` names the customer's latest message and ``References`` carries its chain, so
every mail client files the reply in the same thread; our ``Message-ID`` names the conversation
(:func:`~connectors.email.intake.outbound_message_id`), so an answer to the reply finds its way
back even from a client that keeps only ``In-Reply-To``, and the subject's ``[#1042]`` token
from one that keeps neither. ``X-Inbox-Origin`` marks our own mail
so it is never taken for a customer's; ``Auto-Submitted: auto-replied`` goes on automatic
answers only (a person's reply must not be ignored by the customer's own responders).
"""

from __future__ import annotations

from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime

import aiosmtplib

from connectors.email.intake import outbound_message_id
from connectors.email.settings import EmailSettings
from inbox.domain import Conversation, DeliveryReceipt, DeliveryStatus, MessageKind, OutboundMessage
from inbox.errors import DeliveryError

__all__ = ["ORIGIN_HEADER", "compose_reply", "reply_subject", "send_reply"]

ORIGIN_HEADER = "X-Inbox-Origin"


def compose_reply(outbound: OutboundMessage, settings: EmailSettings) -> EmailMessage:
    recipient = outbound.contact.email
    if not recipient:
        raise DeliveryError("the contact has no email address", retryable=False)
    message, conversation = outbound.message, outbound.conversation
    mail = EmailMessage()
    sender_name = outbound.author.name if outbound.author else settings.display_name
    if sender_name and settings.display_name and sender_name != settings.display_name:
        sender_name = f"{sender_name} ({settings.display_name})"
    # Address objects, not formatted strings: the policy then quotes or encodes the name itself
    mail["From"] = Address(display_name=sender_name or "", addr_spec=settings.address)
    mail["To"] = Address(display_name=outbound.contact.name or "", addr_spec=recipient)
    mail["Reply-To"] = settings.address
    mail["Subject"] = reply_subject(conversation)
    mail["Message-ID"] = outbound_message_id(message.id, conversation.id, settings.domain)
    mail["Date"] = format_datetime(message.created_at)
    replied = outbound.in_reply_to.extras.get("email", {}) if outbound.in_reply_to else {}
    if replied.get("message_id"):
        mail["In-Reply-To"] = replied["message_id"]
        chain = [*replied.get("references", []), replied["message_id"]]
        mail["References"] = " ".join(dict.fromkeys(chain))
    mail[ORIGIN_HEADER] = f"{conversation.id}/{message.id}"
    if message.kind is MessageKind.AUTO_REPLY:  # RFC 3834: other responders must not answer this
        mail["Auto-Submitted"] = "auto-replied"
        mail["X-Auto-Response-Suppress"] = "All"
    mail.set_content(message.text)
    return mail


def reply_subject(conversation: Conversation) -> str:
    """``Re:`` and the conversation's ``[#1042]`` token, which threads the customer's answer even
    when their client drops In-Reply-To and References."""
    subject = conversation.subject or ""
    token = f"[#{conversation.number}]"
    if token not in subject:
        subject = f"{subject} {token}".strip()
    return subject if subject.lower().startswith(("re:", "ответ:")) else f"Re: {subject}"


async def send_reply(outbound: OutboundMessage, settings: EmailSettings) -> DeliveryReceipt:
    relay = settings.relay
    if relay is None:
        raise DeliveryError("the email channel has no smtp_relay configured", retryable=False)
    mail = compose_reply(outbound, settings)
    try:
        await aiosmtplib.send(
            mail,
            hostname=relay[0],
            port=relay[1],
            username=settings.smtp_user,
            password=settings.smtp_password,
            start_tls=settings.smtp_starttls,
            timeout=30,
        )
    except aiosmtplib.SMTPResponseException as exc:
        # 5xx is the relay's final word (bad address, policy); 4xx asks us to try again later
        raise DeliveryError(f"relay answered {exc.code} {exc.message}", retryable=exc.code < 500) from exc
    except (aiosmtplib.SMTPException, OSError) as exc:
        raise DeliveryError(f"relay unreachable: {exc}") from exc
    return DeliveryReceipt(status=DeliveryStatus.SENT, external_id=mail["Message-ID"])
