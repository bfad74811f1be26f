"""Header and subject signals: automatic replies, bulk mail, our own mail, the ticket token.

They keep the helpdesk out of mail loops (never auto-answer an auto-reply, a list or a bounce) and
let a reply find its conversation when the client dropped In-Reply-To.

``X-Auto-Response-Suppress`` deserves a word: Exchange and Outlook put it on messages to *ask*
others not to auto-answer them; it does not say the message itself is automatic (bulk senders and
some people's clients set it on ordinary mail). So it never makes ``auto_reply`` true by itself; a
value of ``All``, ``OOF`` or ``AutoReply`` is exposed as ``suppress_auto_reply`` so that routing can
honour the request. Exchange's own out-of-office replies are still recognised by their
``Auto-Submitted`` header or their "Automatic reply:" subject.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from email.message import Message

__all__ = ["OWN_ORIGIN_HEADER", "Signals", "read_signals", "ticket_number"]

OWN_ORIGIN_HEADER = "X-Inbox-Origin"
_AUTO_REPLY_HEADERS = ("X-Autoreply", "X-Autorespond", "X-Autoresponder", "X-Mail-Autoreply")
_AUTO_PRECEDENCE = frozenset({"auto_reply", "auto-reply"})
_BULK_PRECEDENCE = frozenset({"bulk", "list", "junk"})
_LIST_HEADERS = ("List-Id", "List-Unsubscribe")
_SUPPRESS_VALUES = frozenset({"all", "oof", "autoreply"})
_OUT_OF_OFFICE_SUBJECT = re.compile(
    r"^\s*(out of (the )?office|automatic reply|auto[- ]?reply|auto[- ]?response|autoresponse|"
    r"away from (the )?office|vacation reply|"
    r"автоответ|автоматический ответ|нет на месте|не на месте|я в отпуске|в отпуске|вне офиса|отсутствую)",
    re.IGNORECASE,
)
_TICKET = re.compile(r"\[#(\d{1,12})\]")


@dataclass(frozen=True, slots=True, kw_only=True)
class Signals:
    auto_reply: bool
    bulk: bool
    own: bool
    suppress_auto_reply: bool


def read_signals(message: Message, subject: str | None) -> Signals:
    """What the headers and the subject say about where ``message`` comes from."""
    precedence = _value(message, "Precedence")
    return Signals(
        auto_reply=_auto_submitted(message)
        or any(name in message for name in _AUTO_REPLY_HEADERS)
        or precedence in _AUTO_PRECEDENCE
        or bool(subject and _OUT_OF_OFFICE_SUBJECT.match(subject)),
        bulk=precedence in _BULK_PRECEDENCE or any(name in message for name in _LIST_HEADERS),
        own=OWN_ORIGIN_HEADER in message,
        suppress_auto_reply=bool(_SUPPRESS_VALUES & _tokens(_value(message, "X-Auto-Response-Suppress"))),
    )


def ticket_number(subject: str | None) -> int | None:
    """The number in a ``[#1042]`` token of the subject, the fallback thread key."""
    match = _TICKET.search(subject or "")
    return int(match.group(1)) if match else None


def _auto_submitted(message: Message) -> bool:
    value = _value(message, "Auto-Submitted")
    return bool(value) and value.split(";", 1)[0].strip() != "no"


def _value(message: Message, name: str) -> str:
    raw = message.get(name)
    return str(raw).strip().lower() if raw is not None else ""


def _tokens(value: str) -> set[str]:
    return {token.strip() for token in value.replace(";", ",").split(",") if token.strip()}
