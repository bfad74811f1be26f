"""Guessing a message's language from its script."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

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


def _by_words(text: str) -> str | None:
    """The guess spelt out word by word: what the letters of the words that are no address say."""
    words = [w for w in text[:2000].split() if "://" not in w and "@" not in w and not w.startswith("www.")]
    letters = "".join(words)
    cyrillic = sum("\u0400" <= c <= "\u04ff" for c in letters)
    latin = sum(c.isascii() and c.isalpha() or "\u00c0" <= c <= "\u027f" for c in letters)
    if cyrillic + latin < 3:
        return None
    if cyrillic >= (cyrillic + latin) * 0.6:
        return "ru"
    return "en" if latin >= (cyrillic + latin) * 0.6 else None


@given(
    st.lists(
        st.one_of(
            st.sampled_from(["привет", "hello", "www.site.ru", "a@b.c", "http://x.y/путь", "ёж", "Grüße", "@", "://"]),
            st.text(alphabet=st.sampled_from("абвxyz@:/.w \t\n\u00a0\u2003é×"), max_size=12),
        ),
        max_size=30,
    ),
    st.sampled_from([" ", "\n", "\u00a0", "", "\t"]),
)
def test_addresses_are_skipped_as_whole_words(parts: list[str], separator: str) -> None:
    text = separator.join(parts)
    assert detect_language(text) == _by_words(text)
