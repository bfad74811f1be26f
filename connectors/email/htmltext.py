"""Plain text from an HTML body, for mail that has no text/plain part.

The markup is parsed by Lexbor (selectolax), an HTML5 parser as tolerant as a browser and about ten
times faster than the stdlib's ``html.parser`` (which made HTML-only mail the slowest kind to parse);
the DOM is walked without recursion, so hostile nesting cannot exhaust the stack. Block elements end
lines, paragraphs and headings are separated by a blank line, list items get a bullet, ``<pre>`` keeps
its layout, and ``<blockquote>`` content is prefixed with ``> `` so that reply separation works the
same way for HTML-only mail as for plain text.
"""

from __future__ import annotations

import re

from selectolax.lexbor import LexborHTMLParser, LexborNode

__all__ = ["html_to_text"]

# Never shown as text; the sanitizer drops the same elements with their content.
_SKIPPED = frozenset(
    {
        "script",
        "style",
        "head",
        "title",
        "template",
        "noscript",
        "svg",
        "math",
        "object",
        "iframe",
        "form",
        "textarea",
        "select",
        "button",
    }
)
_PARAGRAPHS = frozenset({"p", "h1", "h2", "h3", "h4", "h5", "h6", "ul", "ol", "dl", "table", "pre", "hr"})
_BLOCKS = _PARAGRAPHS | frozenset(
    {
        "address",
        "article",
        "aside",
        "blockquote",
        "center",
        "dd",
        "div",
        "dt",
        "figcaption",
        "figure",
        "footer",
        "form",
        "header",
        "li",
        "main",
        "nav",
        "section",
        "tr",
    }
)
_SPACES = re.compile(r"[ \t\r\n\f\v\u00a0]+")
_EXTRA_BLANK_LINES = re.compile(r"\n{3,}")


def html_to_text(markup: str) -> str:
    """The readable text of ``markup``; never raises on malformed HTML."""
    document = LexborHTMLParser(markup)
    writer = _TextWriter()
    pending: list[tuple[LexborNode, bool]] = [(document.body, False)] if document.body else []
    while pending:
        node, leaving = pending.pop()
        tag = node.tag or ""
        if leaving:
            writer.end(tag)
        elif tag == "-text":
            writer.text(node.text_content or "")
        elif not tag.startswith("-") and tag not in _SKIPPED:  # comments, doctype
            writer.start(tag)
            pending.append((node, True))
            pending.extend((child, False) for child in reversed(list(node.iter(include_text=True))))
    return writer.result()


class _TextWriter:
    """Collects text line by line; each line remembers the blockquote depth it started at."""

    def __init__(self) -> None:
        self._lines: list[str] = []
        self._current: list[str] = []
        self._current_depth = 0
        self._quote_depth = 0
        self._pre_depth = 0
        self._lists: list[list[int]] = []  # per open list: [next number] for <ol>, [] for <ul>

    def result(self) -> str:
        self._end_line()
        joined = "\n".join(line.rstrip() for line in self._lines)
        return _EXTRA_BLANK_LINES.sub("\n\n", joined).strip("\n")

    def start(self, tag: str) -> None:
        if tag == "br":
            self._end_line(force=True)
        elif tag in _BLOCKS:
            self._break(paragraph=tag in _PARAGRAPHS)
        if tag == "blockquote":
            self._quote_depth += 1
        elif tag == "pre":
            self._pre_depth += 1
        elif tag in ("ul", "ol"):
            self._lists.append([1] if tag == "ol" else [])
        elif tag == "li":
            self._bullet()
        elif tag in ("td", "th") and self._current:
            self._current.append(" ")

    def end(self, tag: str) -> None:
        if tag == "blockquote":
            self._end_quote()
        elif tag in _BLOCKS:
            self._break(paragraph=tag in _PARAGRAPHS)
        if tag == "pre":
            self._pre_depth = max(0, self._pre_depth - 1)
        elif tag in ("ul", "ol") and self._lists:
            self._lists.pop()

    def text(self, data: str) -> None:
        if not data:
            return
        if self._pre_depth:
            first, *rest = data.replace("\r\n", "\n").split("\n")
            self._append(first)
            for line in rest:
                self._end_line(force=True)
                self._append(line)
            return
        collapsed = _SPACES.sub(" ", data)
        if not self._current or self._current[-1].endswith(" "):
            collapsed = collapsed.lstrip(" ")
        self._append(collapsed)

    def _append(self, text: str) -> None:
        if not text:
            return
        if not self._current:
            self._current_depth = self._quote_depth
        self._current.append(text)

    def _bullet(self) -> None:
        if self._lists and self._lists[-1]:
            number = self._lists[-1][0]
            self._lists[-1][0] += 1
            self._append(f"{number}. ")
        else:
            self._append("- ")

    def _break(self, *, paragraph: bool) -> None:
        self._end_line()
        if paragraph and self._lines and self._lines[-1].strip("> ") != "":
            self._lines.append(self._prefix(self._quote_depth).rstrip())

    def _end_quote(self) -> None:
        """Close a blockquote: its trailing blank quoted lines become one plain blank line."""
        self._end_line()
        while self._lines and not self._lines[-1].strip("> "):
            self._lines.pop()
        self._quote_depth = max(0, self._quote_depth - 1)
        self._break(paragraph=True)

    def _end_line(self, *, force: bool = False) -> None:
        if self._current or force:
            depth = self._current_depth if self._current else self._quote_depth
            self._lines.append(self._prefix(depth) + "".join(self._current).rstrip())
        self._current = []

    @staticmethod
    def _prefix(depth: int) -> str:
        return "> " * depth
