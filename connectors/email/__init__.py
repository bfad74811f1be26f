"""The email channel. Parsing raw RFC 5322 messages lives in :mod:`connectors.email.parsing`."""

from connectors.email.attachments import ExtractedAttachment
from connectors.email.bounces import Bounce
from connectors.email.headers import EmailAddress
from connectors.email.parsing import JSON_KEYS, ParsedEmail, parse_email

__all__ = ["JSON_KEYS", "Bounce", "EmailAddress", "ExtractedAttachment", "ParsedEmail", "parse_email"]
