"""Small, safe accessors over ``email.message.Message`` that the stdlib gets wrong on hostile input.

``Message.get_payload()`` without ``decode=True`` raises ``TypeError`` on an 8-bit part whose charset
parameter is RFC 2231-encoded, and ``get_param`` returns a tuple for such parameters; these helpers
never raise and always return plain values.
"""

from __future__ import annotations

from email.message import Message
from email.utils import collapse_rfc2231_value

__all__ = ["param", "sub_messages"]


def sub_messages(part: Message) -> list[Message]:
    """The parsed children of a multipart or ``message/*`` part; [] for a leaf."""
    if not part.is_multipart():
        return []
    payload = part.get_payload()
    return [child for child in payload if isinstance(child, Message)] if isinstance(payload, list) else []


def param(part: Message, name: str, header: str = "content-type") -> str:
    """A header parameter as plain text, RFC 2231-encoded or not; "" when absent."""
    value = part.get_param(name, header=header)
    if isinstance(value, tuple):
        value = collapse_rfc2231_value(value)
    return str(value).strip() if value else ""
