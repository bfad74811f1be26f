"""Rendering pages: one Jinja2 environment per language, autoescaping everything, and the
security headers every page carries.

One environment per locale (not one whose gettext is swapped per render) keeps each render
free of shared mutable state; two languages cost two template caches.

Every value reaches the markup through autoescaping: templates never use ``|safe``, and no
markup is built in Python except the email frame's document (:mod:`webui.pages.mailframe`),
which the template writes as an attribute value, so it is quoted like any other text.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aiohttp import web
from babel.support import Translations
from jinja2 import Environment, FileSystemLoader, StrictUndefined

from webui.i18n import SUPPORTED_LOCALES

__all__ = ["CONTENT_SECURITY_POLICY", "TEMPLATE_DIR", "Renderer", "SECURITY_HEADERS", "page_headers"]

TEMPLATE_DIR = Path(__file__).resolve().parent.parent / "templates"

CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; frame-src 'self' about:; "
    "connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
SECURITY_HEADERS: Mapping[str, str] = {
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
}


def page_headers() -> dict[str, str]:
    """Pages show private conversations: no caching, no framing, no inline script."""
    return {
        **SECURITY_HEADERS,
        "Content-Security-Policy": CONTENT_SECURITY_POLICY,
        "Cache-Control": "no-store",
        "X-Frame-Options": "DENY",
    }


@dataclass(frozen=True, slots=True)
class _Language:
    environment: Environment
    translations: Translations


class Renderer:
    def __init__(self, translations: Mapping[str, Translations], template_dir: Path = TEMPLATE_DIR) -> None:
        loader = FileSystemLoader(template_dir)
        self._languages = {
            locale: _Language(_environment(loader, translations[locale]), translations[locale])
            for locale in SUPPORTED_LOCALES
        }

    @property
    def locales(self) -> tuple[str, ...]:
        return tuple(self._languages)

    def gettext(self, locale: str) -> Any:
        return self._languages[locale].translations.gettext

    def render(self, locale: str, template: str, context: Mapping[str, Any]) -> str:
        return self._languages[locale].environment.get_template(template).render(context)

    def response(self, locale: str, template: str, context: Mapping[str, Any], *, status: int = 200) -> web.Response:
        return web.Response(
            text=self.render(locale, template, context),
            status=status,
            content_type="text/html",
            charset="utf-8",
            headers={**page_headers(), "Content-Language": locale},
        )


def _environment(loader: FileSystemLoader, translations: Translations) -> Environment:
    environment = Environment(
        loader=loader,
        autoescape=True,
        undefined=StrictUndefined,
        extensions=["jinja2.ext.i18n"],
        trim_blocks=True,
        lstrip_blocks=True,
    )
    environment.install_gettext_translations(translations, newstyle=True)  # type: ignore[attr-defined]
    return environment
