"""Body charset decoding: honour the declaration when plausible, detect when it is wrong."""

from __future__ import annotations

import pytest

from connectors.email.charsets import decode_bytes, display_charset

RUSSIAN = "Здравствуйте! Не могу войти в личный кабинет, пишет что пароль неверный."
GERMAN = "Grüße aus München, schöne Grüße und vielen Dank für die schnelle Antwort."


@pytest.mark.parametrize(
    ("actual", "declared", "defect"),
    [
        ("windows-1251", "iso-8859-1", "body charset declared iso-8859-1, decoded as windows-1251"),
        ("koi8-r", "us-ascii", "body charset declared us-ascii, decoded as koi8-r"),
        ("koi8-r", "windows-1251", "body charset declared windows-1251, decoded as koi8-r"),
        ("windows-1251", "utf-8", "body charset declared utf-8, decoded as windows-1251"),
        ("koi8-r", None, "body charset declared none, decoded as koi8-r"),
        ("utf-8", "us-ascii", "body charset declared us-ascii, decoded as utf-8"),
        ("windows-1251", "x-bogus", "body charset declared x-bogus, decoded as windows-1251"),
    ],
)
def test_wrong_or_missing_declarations_are_detected(actual: str, declared: str | None, defect: str) -> None:
    decoded = decode_bytes(RUSSIAN.encode(actual), declared)
    assert decoded.text == RUSSIAN
    assert decoded.defect == defect


@pytest.mark.parametrize("charset", ["koi8-r", "windows-1251", "iso-8859-5", "utf-8"])
def test_correct_declarations_are_honoured(charset: str) -> None:
    decoded = decode_bytes(RUSSIAN.encode(charset), charset)
    assert (decoded.text, decoded.defect) == (RUSSIAN, None)


def test_real_latin1_text_is_not_mistaken_for_mojibake() -> None:
    decoded = decode_bytes(GERMAN.encode("latin-1"), "iso-8859-1")
    assert (decoded.text, decoded.defect) == (GERMAN, None)


def test_ascii_needs_no_declaration() -> None:
    assert decode_bytes(b"hello", None).defect is None


def test_undecodable_bytes_are_replaced_not_raised() -> None:
    decoded = decode_bytes(b"\xff\xfe\xfd" * 3, "utf-8")
    assert decoded.text
    assert decoded.defect is not None


@pytest.mark.parametrize(
    ("codec", "name"),
    [("cp1251", "windows-1251"), ("iso8859-5", "iso-8859-5"), ("koi8_r", "koi8-r"), ("latin-1", "iso-8859-1")],
)
def test_display_names_are_the_iana_ones(codec: str, name: str) -> None:
    assert display_charset(codec) == name
