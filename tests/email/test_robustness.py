"""Hostile and broken input: parsing either returns a message or raises PayloadError, nothing else."""

from __future__ import annotations

import json

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from connectors.email import parse_email
from inbox.errors import PayloadError
from tests.email.corpus import CORPUS

SAMPLES = [path.read_bytes() for path in sorted(CORPUS.glob("*.eml"))]


def parse_or_reject(raw: bytes) -> None:
    try:
        parsed = parse_email(raw)
    except PayloadError as exc:
        assert str(exc) and "\n" not in str(exc)
        return
    document = parsed.to_json()
    json.dumps(document, ensure_ascii=False).encode("utf-8")  # no lone surrogates anywhere
    assert all(isinstance(defect, str) for defect in document["defects"])


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=4096))
def test_arbitrary_bytes(raw: bytes) -> None:
    parse_or_reject(raw)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(SAMPLES), st.data())
def test_corpus_messages_cut_or_corrupted(sample: bytes, data: st.DataObject) -> None:
    cut = data.draw(st.integers(min_value=0, max_value=len(sample)))
    noise = data.draw(st.binary(max_size=64))
    position = data.draw(st.integers(min_value=0, max_value=cut))
    parse_or_reject(sample[:position] + noise + sample[position:cut])


def test_deeply_nested_multiparts_keep_the_headers() -> None:
    nesting = b"".join(b"Content-Type: multipart/mixed; boundary=b%d\r\n\r\n--b%d\r\n" % (i, i) for i in range(3000))
    parsed = parse_email(b"From: a@example.org\r\nSubject: deep\r\n" + nesting + b"Content-Type: text/plain\r\n\r\nhi")
    assert parsed.subject == "deep"
    assert "MIME structure nested too deeply to parse; the body is kept as raw text" in parsed.defects


def test_thousands_of_parts_are_capped() -> None:
    parts = b"".join(b"--b\r\nContent-Type: application/octet-stream\r\n\r\nx\r\n" for _ in range(3000))
    raw = b"From: a@example.org\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n" + parts + b"--b--\r\n"
    parsed = parse_email(raw)
    assert len(parsed.attachments) == 999  # the multipart itself counts as one of the 1000 parts
    assert "more than 1000 MIME parts; the rest were ignored" in parsed.defects


def test_raw_8bit_bytes_in_structured_headers_become_valid_text() -> None:
    raw = (
        b"From: a@example.org\r\nMessage-ID: <\xff\xfe@example.org>\r\n"
        b"Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: application/x-\xd1\x84\r\n"
        b"Content-ID: <\xd1\x84@example.org>\r\n\r\nx\r\n--b--\r\n"
    )
    parsed = parse_email(raw)
    assert parsed.message_id == "<\ufffd\ufffd@example.org>"
    assert parsed.attachments[0].meta.content_type == "application/x-ф"
    assert parsed.attachments[0].meta.content_id == "ф@example.org"
    json.dumps(parsed.to_json(), ensure_ascii=False).encode("utf-8")


def test_headers_with_nul_and_control_bytes() -> None:
    parsed = parse_email(b"From: a@example.org\r\nSubject: \x00\x01hi\r\n\r\nbo\x00dy")
    assert parsed.subject == "\x00\x01hi"
    assert parsed.text == "bo\x00dy"
