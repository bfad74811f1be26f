"""The hand-written corpus under ``tests/data/email`` and the generated big message."""

from __future__ import annotations

import base64
from pathlib import Path

from connectors.email import ParsedEmail, parse_email

CORPUS = Path(__file__).resolve().parents[1] / "data" / "email"
BIG_ATTACHMENT_BYTES = 15 * 1024 * 1024  # base64 makes the whole message a little over 20 MB


def corpus_bytes(name: str) -> bytes:
    return (CORPUS / name).read_bytes()


def parse_corpus(name: str) -> ParsedEmail:
    return parse_email(corpus_bytes(name))


def big_attachment() -> bytes:
    """Deterministic, incompressible-looking enough content: every byte value, repeated."""
    return bytes(range(256)) * (BIG_ATTACHMENT_BYTES // 256)


def big_message() -> bytes:
    """A >20 MB message built at run time (never committed): short text plus one base64 attachment."""
    encoded = base64.encodebytes(big_attachment()).replace(b"\n", b"\r\n")
    head = (
        b"From: Big Sender <big@example.org>\r\n"
        b"To: support@example.com\r\n"
        b"Subject: Full database dump\r\n"
        b"Date: Mon, 05 Jan 2026 10:00:00 +0000\r\n"
        b"Message-ID: <big-1@example.org>\r\n"
        b"MIME-Version: 1.0\r\n"
        b'Content-Type: multipart/mixed; boundary="big"\r\n'
        b"\r\n"
        b"--big\r\n"
        b"Content-Type: text/plain; charset=utf-8\r\n"
        b"\r\n"
        b"The dump is attached.\r\n"
        b"--big\r\n"
        b'Content-Type: application/octet-stream; name="dump.bin"\r\n'
        b'Content-Disposition: attachment; filename="dump.bin"\r\n'
        b"Content-Transfer-Encoding: base64\r\n"
        b"\r\n"
    )
    return head + encoded + b"--big--\r\n"
