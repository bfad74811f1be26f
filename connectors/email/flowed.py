"""Undoing ``format=flowed`` (RFC 3676), which Apple Mail and Thunderbird use for plain text.

A flowed line ends with a space and continues on the next line of the same quote depth. Joining
them back gives paragraphs as the sender typed them, and attribution lines such as
"On Jan 5, 2026, at 10:00, Support <support@example.com> wrote:" on one line again.
"""

from __future__ import annotations

__all__ = ["unflow"]

_SIGNATURE = "-- "


def unflow(text: str, *, delsp: bool = False) -> str:
    """Join soft-broken lines; with ``delsp`` the space that marks a soft break is deleted too."""
    out: list[str] = []
    paragraph: str | None = None
    paragraph_depth = 0
    for line in text.split("\n"):
        depth = len(line) - len(line.lstrip(">"))
        content = line[depth:]
        if content.startswith(" "):  # space-stuffing
            content = content[1:]
        flowed = content.endswith(" ") and content != _SIGNATURE
        if flowed and delsp:
            content = content[:-1]
        if paragraph is not None and depth == paragraph_depth:
            paragraph += content
        else:
            if paragraph is not None:
                out.append(_render(paragraph_depth, paragraph))
            paragraph, paragraph_depth = content, depth
        if not flowed:
            out.append(_render(paragraph_depth, paragraph))
            paragraph = None
    if paragraph is not None:
        out.append(_render(paragraph_depth, paragraph))
    return "\n".join(out)


def _render(depth: int, text: str) -> str:
    return (">" * depth + " " + text).rstrip() if depth else text
