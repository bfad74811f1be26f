"""Recognising bounces, so a failed delivery marks our reply as failed instead of opening a ticket.

Two shapes:

* a DSN (RFC 3464): ``multipart/report; report-type=delivery-status`` whose ``message/delivery-status``
  part carries a per-recipient ``Status: 5.1.1`` and whose ``text/rfc822-headers`` or
  ``message/rfc822`` part carries the original message's headers, hence its Message-ID;
* a classic, unstructured bounce from ``MAILER-DAEMON``/``postmaster``: the first enhanced status
  code in the text, and the original Message-ID from an attached message or a quoted header line.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from email.message import Message
from email.parser import HeaderParser

from connectors.email.headers import EmailAddress, message_ids
from connectors.email.mime import param, sub_messages

__all__ = ["Bounce", "detect_bounce"]

_MAX_PARTS_SEARCHED = 200
_STATUS = re.compile(r"(?<![\d.])([245]\.\d{1,3}\.\d{1,3})(?![\d.])")
_STATUS_FIELD = re.compile(r"^\s*Status\s*:\s*([245]\.\d{1,3}\.\d{1,3})", re.IGNORECASE | re.MULTILINE)
_QUOTED_MESSAGE_ID = re.compile(r"^[ \t>]*Message-ID\s*:\s*(<[^<>\s]+>)", re.IGNORECASE | re.MULTILINE)
_DAEMONS = frozenset({"mailer-daemon", "postmaster", "mail-daemon"})


@dataclass(frozen=True, slots=True, kw_only=True)
class Bounce:
    """``status`` is an enhanced status code such as ``5.1.1``; either field may be unknown."""

    status: str | None
    original_message_id: str | None

    def to_json(self) -> dict[str, str | None]:
        return {"status": self.status, "original_message_id": self.original_message_id}


def detect_bounce(message: Message, sender: EmailAddress | None, text: str) -> Bounce | None:
    """A :class:`Bounce` when ``message`` is a DSN or a mailer daemon's failure notice, else None."""
    report = _find(
        message,
        lambda part: (
            part.get_content_type() == "multipart/report" and param(part, "report-type").lower() == "delivery-status"
        ),
    )
    if report is not None:
        return Bounce(status=_dsn_status(report) or _first_status(text), original_message_id=_original_id(report, text))
    if sender is not None and sender.email.partition("@")[0].lower() in _DAEMONS:
        return Bounce(status=_first_status(text), original_message_id=_original_id(message, text))
    return None


def _dsn_status(report: Message) -> str | None:
    part = _find(report, lambda candidate: candidate.get_content_type() == "message/delivery-status")
    if part is None:
        return None
    blocks = sub_messages(part)
    if blocks:
        recipients = [block for block in blocks[1:] if block.get("Status")]
        failed = [block for block in recipients if str(block.get("Action", "")).strip().lower() == "failed"]
        for block in failed or recipients:
            match = _STATUS.search(str(block.get("Status")))
            if match:
                return match.group(1)
        return None
    data = part.get_payload(decode=True)
    match = _STATUS_FIELD.search(data.decode("latin-1") if isinstance(data, bytes) else "")
    return match.group(1) if match else None


def _original_id(container: Message, text: str) -> str | None:
    for part in _parts(container):
        content_type = part.get_content_type()
        if content_type in ("message/rfc822", "message/rfc822-headers", "message/global", "message/global-headers"):
            inner = sub_messages(part)
            if inner:
                found = message_ids(inner[0].get("Message-ID"))
                if found:
                    return found[0]
        elif content_type == "text/rfc822-headers":
            data = part.get_payload(decode=True)
            if isinstance(data, bytes):
                found = message_ids(HeaderParser().parsestr(data.decode("utf-8", "replace")).get("Message-ID"))
                if found:
                    return found[0]
    match = _QUOTED_MESSAGE_ID.search(text)
    return match.group(1) if match else None


def _first_status(text: str) -> str | None:
    match = _STATUS.search(text)
    return match.group(1) if match else None


def _find(message: Message, wanted: Callable[[Message], bool]) -> Message | None:
    return next((part for part in _parts(message) if wanted(part)), None)


def _parts(message: Message) -> Iterator[Message]:
    """Depth-first parts of ``message``, bounded; sub-messages of a DSN are included."""
    stack = [message]
    seen = 0
    while stack and seen < _MAX_PARTS_SEARCHED:
        part = stack.pop()
        seen += 1
        yield part
        if part.get_content_maintype() == "multipart":
            stack.extend(reversed(sub_messages(part)))
