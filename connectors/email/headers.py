"""Decoding header values: RFC 2047 encoded words, raw 8-bit bytes, addresses, message ids, dates.

The stdlib's ``email.header.decode_header`` gives up on the malformed words real mail contains
(bad base64 padding, unknown charsets, a UTF-8 character split across two words, a missing ``?=``),
so words are decoded here, each problem recovered and reported as a defect. Headers arrive as
``compat32`` strings in which raw 8-bit bytes are smuggled as surrogate escapes; they are turned back
into bytes and decoded like a body, with the body's charset as a hint.
"""

from __future__ import annotations

import binascii
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import getaddresses, parsedate_to_datetime

from connectors.email.charsets import decode_bytes, display_charset, surrogate_free

__all__ = [
    "EmailAddress",
    "HeaderDecoder",
    "message_ids",
    "parse_date",
]

MAX_ADDRESS_HEADER_CHARS = 100_000
_ENCODED_WORD = re.compile(r"=\?([^?\s]+)\?([bBqQ])\?([^?]*)\?=")
_UNTERMINATED_WORD = re.compile(r"=\?([^?\s]+)\?([bBqQ])\?([^?]*)\??$")
_FOLDING = re.compile(r"\r?\n(?=[ \t])")
_LINE_BREAK = re.compile(r"[\r\n]+")
_WHITESPACE = re.compile(r"\s+")
_SMUGGLED_BYTE = re.compile("[\udc80-\udcff]")  # a raw 8-bit byte, as compat32 keeps it in a str
_MESSAGE_ID = re.compile(r"<([^<>\s]+)>")
_BARE_MESSAGE_ID = re.compile(r"[^<>\s@,;]+@[^<>\s@,;]+")
_ADDRESS_IN_TEXT = re.compile(r"[^\s<>\"',;:]+@[^\s<>\"',;:]+")
_ATEXT = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
_DOT_ATOM = rf"{_ATEXT}(?:\.{_ATEXT})*"
_SIMPLE_MAILBOX = re.compile(
    rf"[ \t]*(?:((?:{_ATEXT}[ \t]+)*{_ATEXT})?[ \t]*<({_DOT_ATOM}@{_DOT_ATOM})>|({_DOT_ATOM}@{_DOT_ATOM}))[ \t]*"
)
"""One mailbox of plain ASCII words (encoded words included) and dot-atoms: ``Name <a@b.c>`` or
``a@b.c``, the usual From and To. ``getaddresses`` reads these as the pattern does, ten times slower."""


@dataclass(frozen=True, slots=True, kw_only=True)
class EmailAddress:
    """One mailbox: a decoded display name (None when absent) and the address, domain lowercased."""

    name: str | None
    email: str

    def to_json(self) -> dict[str, str | None]:
        return {"name": self.name, "email": self.email}


@dataclass(slots=True)
class _Word:
    """Adjacent encoded words in one charset are joined before decoding: a character may be split."""

    charset: str
    data: bytearray


class HeaderDecoder:
    """Decodes header values of one message, collecting defects; ``hint`` is the body's charset."""

    def __init__(self, hint: str | None = None) -> None:
        self.hint = hint
        self.defects: list[str] = []

    def text(self, raw: str | None, name: str) -> str | None:
        """The decoded, unfolded value of an unstructured header (Subject, a display name)."""
        if raw is None:
            return None
        try:
            decoded = self._decode(str(raw), name)
        except Exception as exc:  # hostile input must never crash parsing
            self.defects.append(f"header {name}: undecodable ({type(exc).__name__}); kept as ASCII")
            decoded = str(raw).encode("ascii", "replace").decode("ascii")
        return _WHITESPACE.sub(" ", decoded).strip()

    def addresses(self, raws: list[str], name: str) -> tuple[EmailAddress, ...]:
        """Every mailbox in the given header instances; group syntax and empty entries are skipped.

        The header is split into mailboxes *before* encoded words are decoded, so a comma inside a
        decoded display name cannot split it.
        """
        try:
            return self._addresses(raws, name)
        except Exception as exc:  # hostile input must never crash parsing
            self.defects.append(f"header {name}: unreadable address list ({type(exc).__name__})")
            return ()

    def _addresses(self, raws: list[str], name: str) -> tuple[EmailAddress, ...]:
        found: dict[EmailAddress, None] = {}
        values = [self._bounded(_unfold(str(raw)), name) for raw in raws]
        for display, address in _simple_mailbox(values) or getaddresses(values):
            mailbox = self._mailbox(display, address, name)
            if mailbox is not None:
                found.setdefault(mailbox)
        return tuple(found)

    def _bounded(self, value: str, name: str) -> str:
        """Address lists past ``MAX_ADDRESS_HEADER_CHARS`` are cut at a comma: thousands of
        recipients carry no meaning for a helpdesk and would cost seconds to parse."""
        if len(value) <= MAX_ADDRESS_HEADER_CHARS:
            return value
        self.defects.append(f"header {name}: longer than {MAX_ADDRESS_HEADER_CHARS} characters; the rest was ignored")
        cut = value.rfind(",", 0, MAX_ADDRESS_HEADER_CHARS)
        return value[: cut if cut > 0 else MAX_ADDRESS_HEADER_CHARS]

    def _mailbox(self, display: str, address: str, name: str) -> EmailAddress | None:
        address = address.strip()
        if address and not _is_address(address):
            embedded = _ADDRESS_IN_TEXT.search(address)
            if embedded is None:
                self.defects.append(f"header {name}: not an address: {self._decode(address, name)!r}")
                return None
            display = display or address.replace(embedded.group(), " ")
            address = embedded.group()
            self.defects.append(f"header {name}: address recovered from malformed mailbox")
        if not address:
            return None
        local, _, domain = self._decode(address, name).rpartition("@")
        email = f"{local}@{domain.lower()}"
        decoded_name = self.text(display, name) if display else None
        decoded_name = decoded_name.strip("\"' ") if decoded_name else None
        return EmailAddress(name=decoded_name if decoded_name and decoded_name != email else None, email=email)

    def _decode(self, raw: str, name: str) -> str:
        raw = _unfold(raw)
        if "=?" not in raw:  # no encoded word, whole or cut short: most addresses and many subjects
            return self._render(raw, name)
        pieces: list[str | _Word] = []
        position = 0
        for match in _ENCODED_WORD.finditer(raw):
            self._add_text(pieces, raw[position : match.start()])
            self._add_word(pieces, match.group(1), match.group(2), match.group(3), name)
            position = match.end()
        tail = raw[position:]
        unterminated = _UNTERMINATED_WORD.search(tail)
        if unterminated is not None:
            self.defects.append(f"header {name}: unterminated encoded word")
            self._add_text(pieces, tail[: unterminated.start()])
            charset, encoding, payload = unterminated.groups()
            self._add_word(pieces, charset, encoding, payload, name)
        else:
            self._add_text(pieces, tail)
        return "".join(self._render(piece, name) for piece in pieces)

    @staticmethod
    def _add_text(pieces: list[str | _Word], text: str) -> None:
        # RFC 2047 6.2: whitespace between two encoded words is not part of the text.
        if text and not (pieces and isinstance(pieces[-1], _Word) and not text.strip()):
            pieces.append(text)

    def _add_word(self, pieces: list[str | _Word], charset: str, encoding: str, payload: str, name: str) -> None:
        data = self._word_bytes(encoding.upper(), payload, name)
        label = charset.lower()
        if pieces and isinstance(pieces[-1], _Word) and pieces[-1].charset == label:
            pieces[-1].data.extend(data)
        else:
            pieces.append(_Word(label, bytearray(data)))

    def _word_bytes(self, encoding: str, payload: str, name: str) -> bytes:
        ascii_payload = payload.encode("ascii", "replace")
        if encoding == "Q":
            return binascii.a2b_qp(ascii_payload, header=True)
        compact = b"".join(ascii_payload.split())
        if len(compact) % 4 == 1:
            compact = compact[:-1]
        if len(compact) % 4:
            self.defects.append(f"header {name}: base64 encoded word lacks padding")
            compact += b"=" * (-len(compact) % 4)
        try:
            return binascii.a2b_base64(compact)
        except binascii.Error:
            self.defects.append(f"header {name}: undecodable base64 encoded word")
            return payload.encode("ascii", "replace")

    def _render(self, piece: str | _Word, name: str) -> str:
        what = f"header {name}"
        if isinstance(piece, _Word):
            decoded = decode_bytes(bytes(piece.data), piece.charset, what=what)
            if decoded.defect:
                self.defects.append(decoded.defect)
            return decoded.text
        if piece.isascii() or not _SMUGGLED_BYTE.search(piece):
            return piece
        # Raw UTF-8 is legitimate (RFC 6532); any other raw 8-bit charset is a guess worth reporting.
        data = piece.encode("utf-8", "surrogateescape")
        decoded = decode_bytes(data, "utf-8" if _is_utf8(data) else self.hint, what=what)
        if decoded.charset != "utf-8":
            self.defects.append(f"{what}: raw 8-bit bytes decoded as {display_charset(decoded.charset)}")
        return decoded.text


def _simple_mailbox(values: list[str]) -> list[tuple[str, str]] | None:
    """What ``getaddresses(values)`` returns when ``values`` is one plain mailbox; else None."""
    simple = _SIMPLE_MAILBOX.fullmatch(values[0]) if len(values) == 1 else None
    if simple is None:
        return None
    phrase, address, bare = simple.groups()
    return [(" ".join(phrase.split()) if phrase else "", address)] if address else [("", bare)]


def message_ids(raw: str | None) -> list[str]:
    """The ``<id>`` tokens of a Message-ID / In-Reply-To / References value, in order, deduplicated.

    A value without angle brackets that still looks like ``local@domain`` is wrapped in them, since
    some agents send bare ids.
    """
    if not raw:
        return []
    raw = surrogate_free(_unfold(str(raw)))
    found = [f"<{token}>" for token in _MESSAGE_ID.findall(raw)]
    if not found:
        found = [f"<{token}>" for token in _BARE_MESSAGE_ID.findall(raw)]
    return list(dict.fromkeys(found))


def parse_date(raw: str | None) -> datetime | None:
    """The Date header as an aware UTC datetime; a zone-less date is taken as UTC. None if unreadable."""
    if not raw:
        return None
    try:
        moment = parsedate_to_datetime(_unfold(str(raw)).strip())
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    try:
        return moment.astimezone(UTC)
    except (OverflowError, ValueError):
        return None


def _unfold(value: str) -> str:
    if "\n" not in value and "\r" not in value:
        return value
    return _LINE_BREAK.sub("", _FOLDING.sub("", value))


def _is_address(value: str) -> bool:
    local, at, domain = value.rpartition("@")
    return bool(at and local and domain) and _WHITESPACE.search(value) is None


def _is_utf8(data: bytes) -> bool:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True
