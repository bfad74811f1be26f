"""Free-text search for the MongoDB adapter, shaped to answer like SQLite's FTS5 index.

The SQLite adapter searches with FTS5 (``unicode61 remove_diacritics 2``), each word a prefix
query, all words in the same message. MongoDB's ``$text`` operator cannot do prefix queries
(``поврежд`` must find ``ПОВРЕЖДЕНА``), so instead every message stores its distinct *terms*
— tokens cut and folded the way unicode61 does it — in a multikey index, and a search word
becomes an anchored, case-sensitive regular expression on that index (``^поврежд``), which
MongoDB answers with a bounded index scan rather than a collection scan.

Matching rules, as in FTS5: a token is a run of letters, digits and private-use characters;
case is folded; Latin diacritics are removed; a query word that holds several tokens
(``foo-bar``) needs each of them, the last one as a prefix. One difference remains: FTS5 also
requires those tokens to be adjacent (a phrase); here they only have to be in the same message.

Contact names are searched with a regular expression built from ``re.escape``: the user's text
is always a literal, never a pattern.
"""

from __future__ import annotations

import re
import unicodedata
from typing import Any

__all__ = ["MAX_TERM_LENGTH", "contains_pattern", "search_terms", "terms_condition", "tokens"]

MAX_TERM_LENGTH = 64
"""Longer tokens (base64 blobs, long URLs) are indexed by their first characters only, which
keeps index keys small; a query word is cut the same way, so such words still match."""

# Combining marks that unicode61 counts as part of a token and drops when removing diacritics
# (SQLite's sqlite3Fts5UnicodeIsdiacritic: bit masks over U+0300..U+0331).
_DIACRITIC_MASKS = (0x08029FDF, 0x000361F8)


def _is_diacritic(code: int) -> bool:
    if not 0x300 <= code <= 0x331:
        return False
    offset = code - 0x300
    return bool(_DIACRITIC_MASKS[offset // 32] >> (offset % 32) & 1)


def _is_token_char(char: str) -> bool:
    category = unicodedata.category(char)
    return category[0] in "LN" or category == "Co"


def _fold(char: str) -> str:
    """Lower case, then a Latin letter without its accents, one character in, one out."""
    folded = char.casefold()
    if len(folded) != 1:  # ß → ss, İ → i̇: unicode61 keeps one character
        folded = char.lower()
        if len(folded) != 1:
            folded = folded[0] if folded[0].isascii() else char
    code = ord(folded)
    if 0xC0 <= code <= 0x24F or 0x1E00 <= code <= 0x1EFF:
        parts = unicodedata.normalize("NFD", folded)
        if parts[0].isascii() and all(unicodedata.combining(p) for p in parts[1:]):
            return parts[0]
    return folded


def tokens(text: str) -> list[str]:
    """The tokens of ``text`` in order, folded as FTS5's unicode61 tokenizer folds them."""
    found: list[str] = []
    current: list[str] = []
    for char in text:
        if _is_diacritic(ord(char)):
            continue
        if _is_token_char(char):
            current.append(_fold(char))
        elif current:
            found.append("".join(current))
            current = []
    if current:
        found.append("".join(current))
    return found


def search_terms(text: str | None) -> list[str]:
    """What a document stores to be found by ``text``: its distinct tokens, cut to
    :data:`MAX_TERM_LENGTH`, in order of first appearance (so the stored list is stable)."""
    if not text:
        return []
    return list(dict.fromkeys(token[:MAX_TERM_LENGTH] for token in tokens(text)))


def terms_condition(field: str, text: str) -> dict[str, Any] | None:
    """A condition on the terms array ``field`` that holds when every whitespace-separated word
    of ``text`` occurs — each word's last token as a prefix, its other tokens whole.

    ``None`` when no word has a token (``"(" ``): like FTS5, such a search matches nothing.
    """
    conditions: list[dict[str, Any]] = []
    for word in text.split():
        parts = tokens(word)
        for index, token in enumerate(parts):
            if len(token) >= MAX_TERM_LENGTH:
                conditions.append({field: token[:MAX_TERM_LENGTH]})
            elif index == len(parts) - 1:
                conditions.append({field: {"$regex": "^" + re.escape(token)}})
            else:
                conditions.append({field: token})
    if not conditions:
        return None
    return conditions[0] if len(conditions) == 1 else {"$and": conditions}


def contains_pattern(text: str) -> dict[str, Any]:
    """A case-insensitive "contains ``text``" condition (SQLite's ``LIKE '%text%'``), with every
    character of ``text`` literal. BSON cannot carry a NUL inside a pattern, so it is spelled
    as the regex escape ``\\x00``."""
    return {"$regex": re.escape(text).replace("\x00", "\\x00"), "$options": "i"}
