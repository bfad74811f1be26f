"""``inbox parse-email FILE... [--json]``: the connector's normalized view of raw messages.

One file prints a readable summary, or with ``--json`` one JSON object with exactly the keys of
:meth:`ParsedEmail.to_json`. Several files print JSON Lines, one object per file in the given order,
each with a leading ``"file"`` key; a file that cannot be read or parsed gives ``{"file", "error"}``
on its line while the others still print. The exit status is 2 when any file failed, else 0.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TextIO

from connectors.email.parsing import ParsedEmail, parse_email
from inbox.errors import PayloadError

__all__ = ["main", "parse_email_command", "summary"]

EXIT_OK = 0
EXIT_BAD_INPUT = 2
_LABEL_WIDTH = 13


def parse_email_command(files: list[Path], as_json: bool, out: TextIO | None = None, err: TextIO | None = None) -> int:
    """Run the command over ``files``; returns the process exit status. Streams default to the
    ``sys`` ones at call time (not import time), so redirected output is honoured."""
    out, err = out or sys.stdout, err or sys.stderr
    if len(files) == 1:
        return _one(files[0], as_json, out, err)
    status = EXIT_OK
    for path in files:
        record: dict[str, Any] = {"file": str(path)}
        try:
            record.update(_parse_file(path).to_json())
        except (OSError, PayloadError) as exc:
            record["error"] = _reason(exc)
            status = EXIT_BAD_INPUT
        out.write(_json_line(record))
    return status


def summary(parsed: ParsedEmail) -> str:
    """A few labelled lines for a person, then the new text of the message."""
    rows = [
        ("From", _address(parsed.sender.to_json()) if parsed.sender else "-"),
        ("To", ", ".join(_address(address.to_json()) for address in parsed.to) or "-"),
        ("Cc", ", ".join(_address(address.to_json()) for address in parsed.cc)),
        ("Reply-To", ", ".join(_address(address.to_json()) for address in parsed.reply_to)),
        ("Subject", parsed.subject or "-"),
        ("Date", parsed.date.isoformat() if parsed.date else "-"),
        ("Message-ID", parsed.message_id or "-"),
        ("In-Reply-To", parsed.in_reply_to or ""),
        ("References", " ".join(parsed.references)),
        ("Flags", ", ".join(_flags(parsed))),
        ("Body", f"{len(parsed.text)} characters of text" + (", sanitized HTML" if parsed.html is not None else "")),
    ]
    lines = [f"{label + ':':<{_LABEL_WIDTH}}{value}" for label, value in rows if value]
    for attachment in parsed.attachments:
        meta = attachment.meta
        where = f" inline cid:{meta.content_id}" if meta.inline and meta.content_id else ""
        lines.append(
            f"{'Attachment:':<{_LABEL_WIDTH}}{meta.filename} ({meta.content_type}, {meta.size} bytes,"
            f" sha256 {meta.sha256[:12]}…){where}"
        )
    lines.extend(f"{'Defect:':<{_LABEL_WIDTH}}{defect}" for defect in parsed.defects)
    lines.extend(["", parsed.reply_text or "(no new text)"])
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    """Stand-alone entry point (``python -m connectors.email.cli``) until ``inbox`` wires it in."""
    parser = argparse.ArgumentParser(prog="inbox parse-email", description=__doc__.splitlines()[0])
    parser.add_argument("files", nargs="+", type=Path, metavar="FILE")
    parser.add_argument("--json", action="store_true", help="print the JSON contract instead of a summary")
    arguments = parser.parse_args(argv)
    return parse_email_command(arguments.files, arguments.json)


def _one(path: Path, as_json: bool, out: TextIO, err: TextIO) -> int:
    try:
        parsed = _parse_file(path)
    except (OSError, PayloadError) as exc:
        err.write(f"{path}: {_reason(exc)}\n")
        return EXIT_BAD_INPUT
    out.write(_json_line(parsed.to_json()) if as_json else summary(parsed))
    return EXIT_OK


def _parse_file(path: Path) -> ParsedEmail:
    return parse_email(path.read_bytes())


def _reason(exc: Exception) -> str:
    if isinstance(exc, OSError):
        return f"cannot read: {exc.strerror or exc}"
    return " ".join(str(exc).split()) or type(exc).__name__


def _json_line(record: dict[str, Any]) -> str:
    return json.dumps(record, ensure_ascii=False) + "\n"


def _address(address: dict[str, str | None]) -> str:
    return f"{address['name']} <{address['email']}>" if address["name"] else str(address["email"])


def _flags(parsed: ParsedEmail) -> list[str]:
    flags = [name for name, on in (("auto-reply", parsed.auto_reply), ("bulk", parsed.bulk), ("own", parsed.own)) if on]
    if parsed.bounce is not None:
        flags.append(f"bounce {parsed.bounce.status or '?'} of {parsed.bounce.original_message_id or '?'}")
    if parsed.ticket_number is not None:
        flags.append(f"ticket #{parsed.ticket_number}")
    return flags


if __name__ == "__main__":
    raise SystemExit(main())
