"""An email's HTML as the document of a sandboxed ``<iframe>``, served from its own URL.

The HTML was sanitized at intake (``connectors.email.sanitize``); the frame is a second wall:
no scripts (an empty ``sandbox``), an opaque origin (no access to the page), and its own
Content-Security-Policy that loads nothing but inline styles and ``data:``/``cid:`` images. It
has its own URL rather than a ``srcdoc`` because a srcdoc document inherits the page's strict
policy on top of its own, which blocked the mail's styles and the images the operator allowed.

Remote images were moved to ``data-remote-src`` by the sanitizer so that opening a mail tells the
sender nothing. When the operator asks for them, https images get their ``src`` back and the
frame's policy allows ``https:`` images; plain-http images stay blocked (mixed content, and an
eavesdropper could rewrite them).
"""

from __future__ import annotations

from aiohttp import web
from selectolax.lexbor import LexborHTMLParser

__all__ = ["BLOCKED_IMAGES_POLICY", "REMOTE_IMAGES_POLICY", "frame_response", "has_remote_images", "srcdoc"]

BLOCKED_IMAGES_POLICY = "default-src 'none'; img-src data: cid:; style-src 'unsafe-inline'"
REMOTE_IMAGES_POLICY = "default-src 'none'; img-src https: data: cid:; style-src 'unsafe-inline'"
_REMOTE_SRC = "data-remote-src"


def has_remote_images(html: str) -> bool:
    return _REMOTE_SRC in html


def srcdoc(html: str, *, remote_images: bool = False) -> str:
    """The frame's whole document. Links open outside the frame (``<base target>``) only if the
    sandbox allows it, which it does not: the operator copies a link rather than following one
    from a hostile mail by a click."""
    policy = REMOTE_IMAGES_POLICY if remote_images else BLOCKED_IMAGES_POLICY
    body = _with_remote_images(html) if remote_images and has_remote_images(html) else html
    return (
        '<!doctype html><html><head><meta charset="utf-8">'
        f'<meta http-equiv="Content-Security-Policy" content="{policy}">'
        '<meta name="referrer" content="no-referrer">'
        "<style>body{font-family:system-ui,sans-serif;font-size:14px;margin:8px;overflow-wrap:anywhere}"
        "img{max-width:100%;height:auto}</style>"
        f"</head><body>{body}</body></html>"
    )


def _with_remote_images(html: str) -> str:
    """Gives https images their source back. Only an attribute is changed on a parsed tree and
    serialized again, so the sanitizer's output stays as safe as it was."""
    tree = LexborHTMLParser(f"<body>{html}</body>")
    for image in tree.css(f"img[{_REMOTE_SRC}]"):
        url = (image.attributes.get(_REMOTE_SRC) or "").strip()
        if url.lower().startswith("https://"):
            image.attrs["src"] = url
            del image.attrs[_REMOTE_SRC]
    body = tree.body
    return body.inner_html if body is not None and body.inner_html is not None else ""


def frame_response(html: str, *, remote_images: bool) -> web.Response:
    """The frame's document with its policy as a header too; only our own pages may frame it."""
    policy = REMOTE_IMAGES_POLICY if remote_images else BLOCKED_IMAGES_POLICY
    return web.Response(
        text=srcdoc(html, remote_images=remote_images),
        content_type="text/html",
        headers={
            "Content-Security-Policy": f"{policy}; frame-ancestors 'self'; sandbox",
            "X-Content-Type-Options": "nosniff",
            "Referrer-Policy": "no-referrer",
            "Cache-Control": "private, no-store",
        },
    )
