"""Guessing a message's language from its script, for routing when nothing better is known.

Its own module because two places use it and neither owns it: the rule engine
(:mod:`routing.matching`) guesses when a ``language`` condition asks and the caller knew none, and
the router when it writes an auto-reply, to pick the template's language.
"""

from __future__ import annotations

import re

__all__ = ["detect_language"]

# Letters are counted by their UTF-8 lead bytes, in C: 0xD0–0xD3 start U+0400–U+04FF (Cyrillic),
# 0xC3–0xC9 start U+00C0–U+027F (accented Latin); ASCII letters are themselves. The few symbols
# in those blocks (× ÷ ҂) count too, which a guess can afford.
_CYRILLIC_LEADS = bytes(range(0xD0, 0xD4))
_LATIN_BYTES = bytes(range(0xC3, 0xCA)) + b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_SAMPLE_CHARS = 2000
# a word (between whitespace, as str.split() sees it) with "://" or "@" in it, or starting "www."
_ADDRESSES = re.compile(r"(?<!\S)(?:\S*(?:://|@)\S*|www\.\S*)")
_MIN_LETTERS = 3
_DOMINANT = 0.6


def detect_language(text: str | None) -> str | None:
    """A guess from the script alone, for routing when nothing better is known: "ru" when Cyrillic
    letters are at least 60% of the letters, "en" when Latin ones are, else None (also for fewer
    than three letters). Any Cyrillic language reads as "ru" and any Latin one as "en"; web and
    mail addresses are skipped so a Russian message with a link stays Russian. Only the first
    2,000 characters are read, so the cost is bounded whatever the message size."""
    if not text:
        return None
    sample_text = text[:_SAMPLE_CHARS]
    if "://" in sample_text or "@" in sample_text or "www." in sample_text:
        sample_text = _ADDRESSES.sub("", sample_text)
    sample = sample_text.encode("utf-8", "surrogatepass")  # spaces count for neither script
    cyrillic = len(sample) - len(sample.translate(None, _CYRILLIC_LEADS))
    latin = len(sample) - len(sample.translate(None, _LATIN_BYTES))
    letters = cyrillic + latin
    if letters < _MIN_LETTERS:
        return None
    if cyrillic >= letters * _DOMINANT:
        return "ru"
    if latin >= letters * _DOMINANT:
        return "en"
    return None
