"""Attachments: decoded bytes, their hash, and a file name that is safe to show and to store.

File names come from ``Content-Disposition: filename`` (RFC 2231, with continuations and charset,
decoded by the stdlib) or the older ``Content-Type: name``; either may also hold RFC 2047 encoded
words, which Outlook and many web mailers still send. They are hostile input: path separators,
control and bidi-override characters ("invoice‮fdp.exe") and absurd lengths are removed, and each
change is reported as a defect.
"""

from __future__ import annotations

import hashlib
import mimetypes
import re
import unicodedata
from dataclasses import dataclass
from email.message import Message

from connectors.email.charsets import surrogate_free
from connectors.email.headers import HeaderDecoder
from connectors.email.mime import sub_messages
from inbox.domain import Attachment

__all__ = ["ExtractedAttachment", "extract_attachment", "safe_filename"]

_MAX_FILENAME_BYTES = 200
_MAX_EXTENSION_CHARS = 16
_PATH_SEPARATORS = re.compile(r"[/\\]")
_SPACES = re.compile(r"\s+")
_FALLBACK_EXTENSIONS = {
    "message/rfc822": ".eml",
    "message/delivery-status": ".txt",
    "text/rfc822-headers": ".txt",
    "text/plain": ".txt",
    "application/octet-stream": ".bin",
}


@dataclass(frozen=True, slots=True, kw_only=True)
class ExtractedAttachment:
    """The domain metadata plus the bytes the connector hands to the blob store."""

    meta: Attachment
    content: bytes


def extract_attachment(part: Message, path: str, headers: HeaderDecoder) -> tuple[ExtractedAttachment, list[str]]:
    """One MIME leaf (or an embedded message) as an attachment, with what had to be fixed."""
    defects: list[str] = []
    content = _content(part)
    content_type = surrogate_free(part.get_content_type())
    raw_name = part.get_filename()
    name = headers.text(raw_name, f"part {path} filename") if raw_name else None
    filename = (safe_filename(name) if name else "") or _fallback_name(content_type, path)
    if name and filename != name:
        defects.append(f"part {path}: unsafe file name {name!r} stored as {filename!r}")
    content_id = _content_id(part.get("Content-ID"))
    disposition = part.get_content_disposition()
    meta = Attachment(
        filename=filename,
        content_type=content_type,
        size=len(content),
        sha256=hashlib.sha256(content).hexdigest(),
        inline=disposition == "inline" or (disposition is None and content_id is not None),
        content_id=content_id,
    )
    return ExtractedAttachment(meta=meta, content=content), defects


def safe_filename(name: str) -> str:
    """The last path component of ``name`` without control, format (bidi) characters or leading dots.

    Long names are cut to 200 UTF-8 bytes keeping the extension. May return "" when nothing is left.
    """
    base = _SPACES.sub(" ", _PATH_SEPARATORS.split(name)[-1])
    base = "".join(char for char in base if unicodedata.category(char)[0] != "C")
    base = base.strip().lstrip(".").strip()
    if len(base.encode("utf-8")) <= _MAX_FILENAME_BYTES:
        return base
    stem, dot, extension = base.rpartition(".")
    if not dot or not stem or len(extension) > _MAX_EXTENSION_CHARS:
        stem, extension = base, ""
    suffix = f".{extension}" if extension else ""
    budget = _MAX_FILENAME_BYTES - len(suffix.encode("utf-8"))
    return stem.encode("utf-8")[:budget].decode("utf-8", "ignore").rstrip() + suffix


def _content(part: Message) -> bytes:
    if part.is_multipart():  # message/rfc822, message/delivery-status: parsed sub-messages
        return b"".join(inner.as_bytes() for inner in sub_messages(part))
    decoded = part.get_payload(decode=True)
    return decoded if isinstance(decoded, bytes) else b""


def _content_id(raw: object) -> str | None:
    if raw is None:
        return None
    value = surrogate_free(str(raw)).strip().strip("<>").strip()
    return value or None


def _fallback_name(content_type: str, path: str) -> str:
    extension = _FALLBACK_EXTENSIONS.get(content_type) or mimetypes.guess_extension(content_type) or ".bin"
    return f"part-{path}{extension}"
