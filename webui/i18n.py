"""The web UI's languages: gettext catalogs read from ``webui/locale`` at start-up, and the choice
of language for one request.

The ``.po`` files are the only source: they are compiled in memory when the app starts
(``read_po`` → ``write_mo`` → :class:`babel.support.Translations`), so there is no build step
and no compiled ``.mo`` file that could fall behind its ``.po``.

The language is the operator's own setting when they have one, then the browser's
``Accept-Language``, then English.
"""

from __future__ import annotations

from collections.abc import Mapping
from io import BytesIO
from pathlib import Path

from babel import Locale
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.support import Translations

__all__ = [
    "DEFAULT_LOCALE",
    "DOMAIN",
    "LOCALE_DIR",
    "SUPPORTED_LOCALES",
    "N_",
    "choose_locale",
    "load_translations",
    "parse_accept_language",
]

LOCALE_DIR = Path(__file__).parent / "locale"
DOMAIN = "messages"
SUPPORTED_LOCALES: tuple[str, ...] = ("en", "ru")
DEFAULT_LOCALE = "en"
_MAX_LANGUAGES = 20  # an Accept-Language header is client input; a few entries are plenty


def N_(message: str) -> str:  # noqa: N802 - the conventional gettext marker name
    """Marks a message in Python code for extraction; it is translated where it is shown."""
    return message


def load_translations(directory: Path = LOCALE_DIR) -> dict[str, Translations]:
    """One :class:`Translations` per supported locale, from ``<locale>/LC_MESSAGES/messages.po``.

    A missing or unreadable catalog fails start-up rather than showing a half-translated UI."""
    loaded: dict[str, Translations] = {}
    for locale in SUPPORTED_LOCALES:
        path = directory / locale / "LC_MESSAGES" / f"{DOMAIN}.po"
        with path.open("rb") as po:
            catalog = read_po(po, locale=locale, domain=DOMAIN)
        compiled = BytesIO()
        write_mo(compiled, catalog, use_fuzzy=False)
        compiled.seek(0)
        loaded[locale] = Translations(compiled, domain=DOMAIN)
    return loaded


def parse_accept_language(header: str | None) -> list[str]:
    """Language tags by descending quality (``q=0`` means "not this one"), as Babel spells
    locales (``ru_RU``). Malformed entries are skipped, not fatal."""
    if not header:
        return []
    weighted: list[tuple[float, int, str]] = []
    for index, item in enumerate(header.split(",")[:_MAX_LANGUAGES]):
        tag, _, params = item.strip().partition(";")
        tag = tag.strip()
        if not tag or tag == "*" or len(tag) > 35 or not tag.replace("-", "").isalnum():
            continue
        quality = 1.0
        name, _, value = params.strip().partition("=")
        if name.strip() == "q":
            try:
                quality = float(value)
            except ValueError:
                continue
        if quality > 0:
            weighted.append((-quality, index, tag.replace("-", "_")))
    return [tag for _, _, tag in sorted(weighted)]


def choose_locale(
    operator_locale: str | None,
    accept_language: str | None,
    available: tuple[str, ...] | Mapping[str, object] = SUPPORTED_LOCALES,
) -> str:
    """The operator's setting wins when it names a language we have; the browser's comes next."""
    choices = list(available)
    if operator_locale:
        chosen = Locale.negotiate([operator_locale.replace("-", "_")], choices)
        if chosen is not None:
            return str(chosen)
    chosen = Locale.negotiate(parse_accept_language(accept_language), choices)
    return str(chosen) if chosen is not None else DEFAULT_LOCALE
