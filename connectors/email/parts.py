"""Walking the MIME tree: which parts are the body (plain, HTML) and which are attachments.

Rules, in the order they apply to a part:

* ``message/*`` (an attached or bounced message, a delivery-status report) is an attachment; its
  own body never becomes ours.
* ``multipart/alternative``: the first alternative that has plain text gives the text, the last one
  that has HTML gives the HTML (RFC 2046: later alternatives are richer); the others' attachments
  (a calendar invitation, inline images of a ``multipart/related``) are kept.
* other multiparts: every child in order, so Apple Mail's text-image-text bodies are kept whole.
* ``text/plain`` and ``text/html`` without a file name and not marked as attachment are body text;
  so is a part declared multipart whose boundary was never found.
* every other leaf is an attachment.

A failure inside one part becomes a defect naming the part (IMAP-style numbers: ``1.2``); the
walk goes on. Part count and nesting depth are capped so hostile mail cannot exhaust memory or
the stack.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from email.message import Message

from connectors.email.attachments import ExtractedAttachment, extract_attachment
from connectors.email.charsets import decode_bytes
from connectors.email.flowed import unflow
from connectors.email.headers import HeaderDecoder
from connectors.email.mime import param, sub_messages

__all__ = ["BodyParts", "walk_parts"]

MAX_PARTS = 1000
MAX_DEPTH = 30
_CAMEL_WORDS = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")
_BODY_TYPES = ("text/plain", "text/html")


@dataclass(slots=True)
class BodyParts:
    """What the walk found, in document order."""

    plain: list[str] = field(default_factory=list)
    html: list[str] = field(default_factory=list)
    attachments: list[ExtractedAttachment] = field(default_factory=list)
    defects: list[str] = field(default_factory=list)

    def absorb_files(self, other: BodyParts) -> None:
        self.attachments.extend(other.attachments)
        self.defects.extend(other.defects)


def walk_parts(message: Message, headers: HeaderDecoder) -> BodyParts:
    """Body texts, attachments and defects of ``message``."""
    walker = _Walker(headers)
    found = BodyParts()
    walker.visit(message, "", 0, found)
    return found


class _Walker:
    def __init__(self, headers: HeaderDecoder) -> None:
        self.headers = headers
        self.seen = 0

    def visit(self, part: Message, path: str, depth: int, found: BodyParts) -> None:
        self.seen += 1
        if self.seen > MAX_PARTS:
            if self.seen == MAX_PARTS + 1:
                found.defects.append(f"more than {MAX_PARTS} MIME parts; the rest were ignored")
            return
        where = f"part {path}" if path else "message"
        try:
            self._visit(part, path, depth, found)
        except Exception as exc:  # one broken part must not lose the rest of the message
            found.defects.append(f"{where}: unreadable ({type(exc).__name__}: {exc})")
        found.defects.extend(f"{where}: {_describe(defect)}" for defect in getattr(part, "defects", ()))

    def _visit(self, part: Message, path: str, depth: int, found: BodyParts) -> None:
        leaf_path = path or "1"
        if part.get_content_maintype() == "message" and part.is_multipart():
            self._attach(part, leaf_path, found)
        elif part.is_multipart():
            if depth >= MAX_DEPTH:
                found.defects.append(f"part {leaf_path}: nested deeper than {MAX_DEPTH} levels; ignored")
                return
            children = sub_messages(part)
            if part.get_content_type() == "multipart/alternative":
                self._alternative(children, path, depth, found)
            else:
                for number, child in enumerate(children, 1):
                    self.visit(child, _child_path(path, number), depth + 1, found)
        elif _is_body_text(part):
            self._body_text(part, leaf_path, found)
        else:
            self._attach(part, leaf_path, found)

    def _alternative(self, children: list[Message], path: str, depth: int, found: BodyParts) -> None:
        choices = []
        for number, child in enumerate(children, 1):
            choice = BodyParts()
            self.visit(child, _child_path(path, number), depth + 1, choice)
            choices.append(choice)
            found.absorb_files(choice)
        plain = next((choice.plain for choice in choices if any(text.strip() for text in choice.plain)), [])
        html = next((choice.html for choice in reversed(choices) if any(text.strip() for text in choice.html)), [])
        found.plain.extend(plain)
        found.html.extend(html)

    def _body_text(self, part: Message, path: str, found: BodyParts) -> None:
        if part.get_content_maintype() == "multipart":
            found.defects.append(f"part {path}: multipart without parts; read as plain text")
        data = part.get_payload(decode=True)
        decoded = decode_bytes(data if isinstance(data, bytes) else b"", param(part, "charset"))
        if decoded.defect:
            found.defects.append(decoded.defect if path == "1" else f"{decoded.defect} (part {path})")
        text = decoded.text.replace("\r\n", "\n").replace("\r", "\n")
        if part.get_content_type() == "text/html":
            found.html.append(text)
            return
        if param(part, "format").lower() == "flowed":
            text = unflow(text, delsp=param(part, "delsp").lower() == "yes")
        found.plain.append(text)

    def _attach(self, part: Message, path: str, found: BodyParts) -> None:
        attachment, defects = extract_attachment(part, path, self.headers)
        found.attachments.append(attachment)
        found.defects.extend(defects)


def _is_body_text(part: Message) -> bool:
    if part.get_content_maintype() == "multipart":  # boundary never found: the payload is text
        return True
    return (
        part.get_content_type() in _BODY_TYPES
        and part.get_content_disposition() != "attachment"
        and not part.get_filename()
    )


def _child_path(path: str, number: int) -> str:
    return f"{path}.{number}" if path else str(number)


def _describe(defect: object) -> str:
    """``CloseBoundaryNotFoundDefect`` → ``close boundary not found``."""
    name = type(defect).__name__.removesuffix("Defect")
    words = _CAMEL_WORDS.sub(" ", name).lower()
    detail = str(defect)
    return f"{words} ({detail})" if detail and detail != name else words
