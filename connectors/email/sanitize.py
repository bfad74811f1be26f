"""Sanitizing HTML bodies with nh3 (ammonia) before they can reach an operator's page.

nh3 keeps an allowlist of tags, attributes, URL schemes and CSS properties; scripts, styles, forms,
frames, objects, embeds and SVG/MathML go with their content; links get ``rel="noopener noreferrer"``
and ``target="_blank"``.

Remote images must not load before the operator consents (a tracking pixel would tell the sender
the mail was read), so their URL moves from ``src`` to ``data-remote-src``; ``cid:`` sources stay for
the UI to resolve to inline attachments. nh3 can drop attributes but not rename them, so the
renaming happens first, on a DOM built by Lexbor (selectolax), a spec-compliant HTML5 parser that
reads markup as browsers and nh3 do. nh3 runs last and has the final word: an image ``src`` must be
``cid:`` and ``data-remote-src`` must be ``http(s)``, whatever the renaming pass produced.
"""

from __future__ import annotations

import copy

import nh3
from selectolax.lexbor import LexborHTMLParser

__all__ = ["sanitize_html"]

_REMOTE_SCHEMES = ("http://", "https://")
_REMOTE_SRC = "data-remote-src"
_DROPPED_WITH_CONTENT = {
    "script",
    "style",
    "title",
    "iframe",
    "frame",
    "frameset",
    "object",
    "embed",
    "applet",
    "svg",
    "math",
    "form",
    "noscript",
    "template",
    "textarea",
    "select",
    "button",
}
_EXTRA_TAGS = {"font"}
_EXTRA_ATTRIBUTES = {
    "*": {"style", "dir", "lang", "title"},
    "img": {_REMOTE_SRC},
    "font": {"color", "face", "size"},
    "table": {"width", "border", "cellpadding", "cellspacing", "bgcolor"},
    "td": {"width", "valign", "bgcolor"},
    "th": {"width", "valign", "bgcolor"},
}
# Layout and typography only: nothing that can load a URL (background, list-style-image, content…).
_STYLE_PROPERTIES = {
    "color",
    "background-color",
    "font",
    "font-family",
    "font-size",
    "font-style",
    "font-weight",
    "text-align",
    "text-decoration",
    "text-indent",
    "line-height",
    "letter-spacing",
    "vertical-align",
    "white-space",
    "width",
    "max-width",
    "min-width",
    "height",
    "margin",
    "margin-top",
    "margin-right",
    "margin-bottom",
    "margin-left",
    "padding",
    "padding-top",
    "padding-right",
    "padding-bottom",
    "padding-left",
    "border",
    "border-top",
    "border-right",
    "border-bottom",
    "border-left",
    "border-color",
    "border-style",
    "border-width",
    "border-collapse",
    "border-spacing",
    "direction",
}
_URL_SCHEMES = {"http", "https", "mailto", "tel", "cid"}


def _allowed_attributes() -> dict[str, set[str]]:
    attributes = copy.deepcopy(nh3.ALLOWED_ATTRIBUTES)
    for tag, names in _EXTRA_ATTRIBUTES.items():
        attributes.setdefault(tag, set()).update(names)
    return attributes


_ATTRIBUTES = _allowed_attributes()
_TAGS = set(nh3.ALLOWED_TAGS) | _EXTRA_TAGS


def sanitize_html(markup: str) -> str:
    """Markup safe to embed in the web UI (inside a sandboxed frame or a shadow root)."""
    return nh3.clean(
        _defer_remote_images(markup),
        tags=_TAGS,
        clean_content_tags=_DROPPED_WITH_CONTENT,
        attributes=_ATTRIBUTES,
        attribute_filter=_filter_attribute,
        url_schemes=_URL_SCHEMES,
        url_relative="deny",
        link_rel="noopener noreferrer",
        set_tag_attribute_values={"a": {"target": "_blank"}},
        filter_style_properties=_STYLE_PROPERTIES,
        strip_comments=True,
    ).strip()


def _filter_attribute(tag: str, attribute: str, value: str) -> str | None:
    if tag == "img" and attribute == "src":
        return value if value.strip().lower().startswith("cid:") else None
    if attribute == _REMOTE_SRC:
        return value if value.strip().lower().startswith(_REMOTE_SCHEMES) else None
    return value


def _defer_remote_images(markup: str) -> str:
    """``markup`` with every remote image's ``src`` moved to ``data-remote-src``."""
    if "<im" not in markup.lower():  # neither <img> nor <image>, which HTML5 parsers read as <img>
        return markup
    document = LexborHTMLParser(markup)
    deferred = False
    for image in document.css("img"):
        source = (image.attrs.get("src") or "").strip()
        if source.lower().startswith(_REMOTE_SCHEMES):
            image.attrs[_REMOTE_SRC] = source
            del image.attrs["src"]
            deferred = True
    return (document.html or "") if deferred else markup
