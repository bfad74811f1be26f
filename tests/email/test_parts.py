"""MIME structure edge cases, file names, format=flowed."""

from __future__ import annotations

import pytest

from connectors.email import parse_email
from connectors.email.attachments import safe_filename
from connectors.email.flowed import unflow

HEAD = b"From: a@example.org\r\nTo: support@example.com\r\nMessage-ID: <p@example.org>\r\n"


@pytest.mark.parametrize(
    ("name", "safe"),
    [
        ("../../etc/passwd", "passwd"),
        ("C:\\Users\\x\\report.pdf", "report.pdf"),
        ("in\x00voi\x1bce.pdf", "invoice.pdf"),
        ("invoice\u202efdp.exe", "invoicefdp.exe"),
        ("  .hidden  ", "hidden"),
        ("счёт   за\tянварь.pdf", "счёт за январь.pdf"),
        ("..", ""),
    ],
)
def test_safe_filename(name: str, safe: str) -> None:
    assert safe_filename(name) == safe


def test_long_file_names_are_cut_keeping_the_extension() -> None:
    safe = safe_filename("я" * 300 + ".pdf")
    assert safe.endswith(".pdf")
    assert len(safe.encode()) <= 200


def test_unflow_joins_soft_breaks_per_quote_depth() -> None:
    flowed = "one \ntwo\n> quoted \n> more\n>> deep\n-- \nsig"
    assert unflow(flowed) == "one two\n> quoted more\n>> deep\n-- \nsig"
    assert unflow("a \nb", delsp=True) == "ab"


def test_text_parts_around_an_image_are_all_kept() -> None:
    raw = HEAD + (
        b'Content-Type: multipart/mixed; boundary="m"\r\n\r\n'
        b"--m\r\nContent-Type: text/plain\r\n\r\nbefore\r\n"
        b"--m\r\nContent-Type: image/png\r\nContent-Disposition: inline; filename=a.png\r\n\r\nPNG\r\n"
        b"--m\r\nContent-Type: text/plain\r\n\r\nafter\r\n--m--\r\n"
    )
    parsed = parse_email(raw)
    assert parsed.text == "before\nafter"
    assert [(a.meta.filename, a.meta.inline) for a in parsed.attachments] == [("a.png", True)]


def test_text_plain_with_a_file_name_is_an_attachment() -> None:
    raw = HEAD + (
        b'Content-Type: multipart/mixed; boundary="m"\r\n\r\n'
        b"--m\r\nContent-Type: text/plain\r\n\r\nbody\r\n"
        b'--m\r\nContent-Type: text/plain; name="notes.txt"\r\n\r\nnotes\r\n--m--\r\n'
    )
    parsed = parse_email(raw)
    assert parsed.text == "body"
    assert [a.meta.filename for a in parsed.attachments] == ["notes.txt"]


def test_calendar_alternative_becomes_an_attachment() -> None:
    raw = HEAD + (
        b'Content-Type: multipart/alternative; boundary="a"\r\n\r\n'
        b"--a\r\nContent-Type: text/plain\r\n\r\nMeeting\r\n"
        b"--a\r\nContent-Type: text/calendar; method=REQUEST\r\n\r\nBEGIN:VCALENDAR\r\nEND:VCALENDAR\r\n--a--\r\n"
    )
    parsed = parse_email(raw)
    assert parsed.text == "Meeting"
    assert [(a.meta.filename, a.meta.content_type) for a in parsed.attachments] == [("part-2.ics", "text/calendar")]


def test_multipart_without_its_boundary_is_read_as_text() -> None:
    parsed = parse_email(HEAD + b'Content-Type: multipart/mixed; boundary="never"\r\n\r\njust text\r\n')
    assert parsed.text == "just text\r\n".replace("\r\n", "\n")
    assert "part 1: multipart without parts; read as plain text" in parsed.defects


def test_rfc_2231_encoded_charset_parameter() -> None:
    raw = HEAD + b"Content-Type: text/plain; charset*=utf-8''koi8-r\r\nContent-Transfer-Encoding: 8bit\r\n\r\n"
    parsed = parse_email(raw + "Привет, как у вас дела сегодня?".encode("koi8-r"))
    assert parsed.text == "Привет, как у вас дела сегодня?"
    assert parsed.defects == ("no Date header",)
