"""Turning bytes of unknown or mislabeled charset into text.

Mail in the wild lies about its charset: Russian text sent as ``iso-8859-1`` or with no charset at
all, ``koi8-r`` bytes labeled ``windows-1251``, raw 8-bit headers. The declared charset is honoured
whenever its decoding is plausible; otherwise the bytes are detected with charset-normalizer among a
fixed set of candidates (the languages this helpdesk serves), and Cyrillic guesses are refined by
letter frequencies, because charset-normalizer alone confuses ``koi8-r`` and ``windows-1251`` on
short texts. Every recovery is reported as a defect string so an operator can see what happened.
"""

from __future__ import annotations

import codecs
import re
from dataclasses import dataclass

import charset_normalizer
from charset_normalizer.md import mess_ratio

__all__ = ["DecodedText", "canonical_charset", "decode_bytes", "display_charset", "surrogate_free"]

_UTF8 = "utf-8"
_MAX_LABEL = 64
_CYRILLIC = ("cp1251", "koi8-r", "iso8859-5", "cp866", "mac-cyrillic")
_DETECTION_CANDIDATES = ["utf_8", "cp1251", "koi8_r", "iso8859_5", "cp866", "cp1252", "iso8859_15", "cp1250", "latin_1"]
_MESS_LIMIT = 0.2
_SAMPLE_CHARS = 32_768
_DETECTION_SAMPLE_BYTES = 262_144
_MIN_LETTERS_FOR_VERDICT = 8
_CLEARLY_BETTER = 0.25
# The most frequent Russian letters: in real text they make up about three quarters of all letters,
# in mojibake (koi8-r read as windows-1251 and the like) far fewer.
_FREQUENT_RUSSIAN = frozenset("оеаинтсрвлкмдпуяы")
_CASE_FLIP = re.compile(r"[а-яё][А-ЯЁ]")
_IANA_ALIASES = {"cp866": "ibm866", "mac-cyrillic": "x-mac-cyrillic", "latin-1": "iso-8859-1", "ascii": "us-ascii"}


@dataclass(frozen=True, slots=True)
class DecodedText:
    """Text plus the charset it was decoded with and, when we had to guess, why."""

    text: str
    charset: str
    defect: str | None = None


def canonical_charset(name: str | None) -> str | None:
    """Python's codec name for a MIME charset label, or None when Python does not know it.

    RFC 2231 language suffixes (``utf-8*ru``) and stray quotes are tolerated.
    """
    if not name:
        return None
    label = name.strip().strip("\"'").split("*", 1)[0].strip().lower()
    if not label or len(label) > _MAX_LABEL or not (label.isascii() and label.isprintable()):
        return None
    try:
        return codecs.lookup(label).name
    except (LookupError, ValueError):
        return None


def display_charset(codec: str) -> str:
    """The IANA-style name people recognise (``windows-1251``, not Python's ``cp1251``)."""
    name = canonical_charset(codec) or codec
    if re.fullmatch(r"cp125\d", name):
        return "windows-" + name[2:]
    if name.startswith("iso8859-"):
        return "iso-8859-" + name[len("iso8859-") :]
    return _IANA_ALIASES.get(name, name)


def decode_bytes(data: bytes, declared: str | None, *, what: str = "body") -> DecodedText:
    """Decode ``data`` honouring ``declared`` unless that is impossible or clearly wrong.

    ``what`` names the thing in the defect ("body", "header Subject"), e.g.
    ``"body charset declared iso-8859-1, decoded as windows-1251"``.
    """
    codec = canonical_charset(declared)
    unknown = f"{what} charset {surrogate_free(declared)!r} is unknown" if declared and codec is None else None
    if codec is not None:
        text = _strict(data, codec)
        if text is not None and (data.isascii() or _plausible(text, codec)):
            return DecodedText(text, codec)
    elif data.isascii():
        return DecodedText(data.decode("ascii"), "ascii", unknown)

    label = surrogate_free(declared.strip()) if declared else "none"
    detected = detect_charset(data)
    if detected is not None:
        text = _strict(data, detected)
        if text is not None:
            guessed = f"{what} charset declared {label}, decoded as {display_charset(detected)}"
            return DecodedText(text, detected, None if detected == codec else guessed)
    fallback = detected or codec or _UTF8
    return DecodedText(
        data.decode(fallback, "replace"), fallback, f"{what} charset declared {label}: undecodable bytes replaced"
    )


def surrogate_free(value: str) -> str:
    """``value`` as valid text: raw 8-bit bytes that ``compat32`` keeps in header strings as surrogate
    escapes (which no encoder accepts) are read as UTF-8, or replaced."""
    if value.isascii():
        return value
    return value.encode("utf-8", "surrogateescape").decode("utf-8", "replace")


def detect_charset(data: bytes) -> str | None:
    """Best guess among the candidate charsets, or None when nothing fits."""
    if _strict(data, _UTF8) is not None:
        return _UTF8
    sample = data[:_DETECTION_SAMPLE_BYTES]
    best = charset_normalizer.from_bytes(sample, cp_isolation=_DETECTION_CANDIDATES).best()
    if best is None:
        return None
    guess = canonical_charset(best.encoding)
    if guess in _CYRILLIC or guess is None:
        return _best_cyrillic(sample) or guess
    return guess


def _strict(data: bytes, codec: str) -> str | None:
    try:
        return data.decode(codec)
    except (UnicodeDecodeError, LookupError):
        return None


def _plausible(text: str, codec: str) -> bool:
    """False when the decoded text is clearly mojibake; UTF-8 that decodes strictly is always right."""
    if codec == _UTF8 or text.isascii():
        return True
    sample = text[:_SAMPLE_CHARS]
    if mess_ratio(sample, _MESS_LIMIT) >= _MESS_LIMIT:
        return False
    if codec in _CYRILLIC:
        encoded = sample.encode(codec, "replace")
        best = _best_cyrillic(encoded)
        if best is not None and best != codec:
            mine = _russian_score(sample)
            theirs = _russian_score(encoded.decode(best, "replace"))
            return mine is None or theirs is None or theirs - mine < _CLEARLY_BETTER
    return True


def _best_cyrillic(data: bytes) -> str | None:
    """The Cyrillic charset under which ``data`` reads most like Russian (ties: the more common one)."""
    best: tuple[float, str] | None = None
    for codec in _CYRILLIC:
        text = _strict(data[:_SAMPLE_CHARS], codec)
        score = _russian_score(text, minimum=1) if text is not None else None
        if score is not None and (best is None or score > best[0]):
            best = (score, codec)
    return best[1] if best else None


def _russian_score(text: str, minimum: int = _MIN_LETTERS_FOR_VERDICT) -> float | None:
    """Share of non-ASCII characters that are frequent Russian letters, minus mid-word case flips.

    None when there are fewer than ``minimum`` non-ASCII characters to judge by.
    """
    non_ascii = [char for char in text if ord(char) > 127]
    if len(non_ascii) < minimum:
        return None
    frequent = sum(char.casefold() in _FREQUENT_RUSSIAN for char in non_ascii)
    flips = len(_CASE_FLIP.findall(text))
    return (frequent - flips) / len(non_ascii)
