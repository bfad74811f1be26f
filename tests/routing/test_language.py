"""Guessing a message's language from its script."""

from __future__ import annotations

import pytest

from routing.language import detect_language


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Здравствуйте, не приходит письмо", "ru"),
        ("Hello, the email never arrives", "en"),
        ("Не работает iPhone после обновления iOS", "ru"),
        ("Посмотрите https://example.com/some/long/english/path и support@example.com", "ru"),
        ("Ok", None),
        ("да", None),
        ("", None),
        (None, None),
        ("12345 !!! 678", None),
        ("Привет hello", None),
        ("Grüße aus München", "en"),
    ],
)
def test_detect_language_by_script(text: str | None, expected: str | None) -> None:
    assert detect_language(text) == expected
