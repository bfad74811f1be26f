"""HTML bodies: sanitizing with nh3 and deriving plain text with html.parser."""

from __future__ import annotations

import pytest

from connectors.email.htmltext import html_to_text
from connectors.email.sanitize import sanitize_html


@pytest.mark.parametrize(
    "attack",
    [
        "<script>alert(1)</script>",
        '<img src="x" onerror="alert(1)">',
        '<a href="javascript:alert(1)">x</a>',
        '<a href="jav&#x09;ascript:alert(1)">x</a>',
        '<a href=" JaVaScRiPt:alert(1)">x</a>',
        "<svg><script>alert(1)</script></svg>",
        '<svg onload="alert(1)"></svg>',
        '<iframe src="https://evil.example/"></iframe>',
        '<form action="https://evil.example/"><input name="p"></form>',
        '<object data="x.swf"></object><embed src="x.swf">',
        '<math><maction xlink:href="javascript:alert(1)">x</maction></math>',
        '<div style="background-image: url(https://evil.example/t.png)">x</div>',
        '<meta http-equiv="refresh" content="0;url=https://evil.example/">',
        '<base href="https://evil.example/">',
        '<img src="data:image/svg+xml;base64,PHN2ZyBvbmxvYWQ9YWxlcnQoMSk+">',
        '<img data-remote-src="javascript:alert(1)">',
        '<body onload="alert(1)">x</body>',
        "<title><img src=x onerror=alert(1)></title>",
    ],
)
def test_attacks_are_neutralized(attack: str) -> None:
    cleaned = sanitize_html(f"<p>before</p>{attack}<p>after</p>").lower()
    for forbidden in (
        "<script",
        "javascript",
        "onerror",
        "onload",
        "<svg",
        "<iframe",
        "<form",
        "<object",
        "<embed",
        "url(",
        "<meta",
        "<base",
        "data:",
    ):
        assert forbidden not in cleaned, (attack, cleaned)
    assert "<p>before</p>" in cleaned and "<p>after</p>" in cleaned


def test_remote_images_wait_for_consent_and_cid_images_stay() -> None:
    cleaned = sanitize_html(
        '<img src="https://t.example/p.gif" alt="p"><IMG SRC=http://t.example/q.png><img src="cid:logo@x">'
        '<img alt="a>b" width="1" src="https://t.example/r.png">'
    )
    assert cleaned == (
        '<img alt="p" data-remote-src="https://t.example/p.gif"><img data-remote-src="http://t.example/q.png">'
        '<img src="cid:logo@x"><img alt="a&gt;b" width="1" data-remote-src="https://t.example/r.png">'
    )


def test_image_element_spelled_image_is_an_img_too() -> None:
    assert sanitize_html('<IMAGE SRC="https://t.example/p.gif">') == '<img data-remote-src="https://t.example/p.gif">'


def test_links_open_in_a_new_tab_without_referrer() -> None:
    assert sanitize_html('<a href="https://example.com/" target="_self">x</a>') == (
        '<a href="https://example.com/" target="_blank" rel="noopener noreferrer">x</a>'
    )


def test_relative_urls_are_dropped() -> None:
    assert sanitize_html('<a href="/api/v1/delete">x</a>') == '<a target="_blank" rel="noopener noreferrer">x</a>'


def test_harmless_styles_survive() -> None:
    assert sanitize_html('<span style="color: red; position: fixed; font-weight: bold">x</span>') == (
        '<span style="color:red;font-weight:bold">x</span>'
    )


def test_text_keeps_blocks_lists_and_preformatted_text() -> None:
    html = (
        "<html><head><title>T</title><style>p{}</style></head><body><h1>Title</h1><p>One <b>two</b>\n three</p>"
        "<div>line<br>break</div><ul><li>a</li><li>b</li></ul><ol><li>x</li><li>y</li></ol>"
        "<pre>  keep\n  this</pre><table><tr><td>c1</td><td>c2</td></tr></table><script>var x;</script></body></html>"
    )
    assert html_to_text(html) == (
        "Title\n\nOne two three\n\nline\nbreak\n\n- a\n- b\n\n1. x\n2. y\n\n  keep\n  this\n\nc1 c2"
    )


def test_text_marks_blockquotes_as_quotes() -> None:
    html = (
        '<div>Thanks!</div><div class="gmail_quote"><div>On Mon, Jan 5, 2026 at 10:00 AM Support '
        "&lt;s@example.com&gt; wrote:<br></div><blockquote>Hello<br><br>Try again<blockquote>older</blockquote>"
        "</blockquote></div><p>After</p>"
    )
    assert html_to_text(html) == (
        "Thanks!\nOn Mon, Jan 5, 2026 at 10:00 AM Support <s@example.com> wrote:\n> Hello\n>\n> Try again\n"
        "> > older\n\nAfter"
    )


def test_text_from_broken_html_does_not_raise() -> None:
    assert html_to_text("<p>unclosed <b>bold <i>and <div>more</p></span>") == "unclosed bold and\n\nmore"
