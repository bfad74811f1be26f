"""Serving stored files (attachments, quarantined raw mail) so that a hostile one stays inert.

Every file is a download (``Content-Disposition: attachment``) under a cleaned name, with a
content type from a short list of types browsers only display, ``application/octet-stream``
otherwise (never ``text/html`` or ``image/svg+xml``, which run script), ``nosniff`` so the
browser does not guess again, and a sandboxing CSP in case it is opened anyway.
"""

from __future__ import annotations

import unicodedata
from urllib.parse import quote

from aiohttp import web

__all__ = ["SAFE_CONTENT_TYPES", "download", "safe_filename"]

SAFE_CONTENT_TYPES = frozenset(
    {
        "image/png",
        "image/jpeg",
        "image/gif",
        "image/webp",
        "application/pdf",
        "text/plain",
        "text/csv",
        "message/rfc822",
    }
)


def safe_filename(name: str | None, fallback: str = "attachment") -> str:
    """No path, no control or format characters (a right-to-left override that turns
    ``invoice‮fdp.exe`` into something else), no quotes; at most 200 characters."""
    name = (name or "").replace("\\", "/").rsplit("/", 1)[-1]
    cleaned = "".join(ch for ch in name if unicodedata.category(ch)[0] != "C" and ch not in '"').strip(" .")
    return cleaned[:200] or fallback


def download(data: bytes, *, filename: str | None, content_type: str) -> web.Response:
    name = safe_filename(filename)
    declared = content_type.split(";", 1)[0].strip().lower()
    safe_type = declared if declared in SAFE_CONTENT_TYPES else "application/octet-stream"
    ascii_name = name.encode("ascii", "replace").decode().replace("?", "_")
    return web.Response(
        body=data,
        headers={
            "Content-Type": safe_type,
            "Content-Disposition": f"attachment; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(name, safe='')}",
            "X-Content-Type-Options": "nosniff",
            "Content-Security-Policy": "default-src 'none'; sandbox",
            "Cache-Control": "private, no-cache",
        },
    )
