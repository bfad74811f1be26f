"""The ``inbox`` command line.

Every command takes the common options (``--config``, ``--data-dir``, ``--database-url``,
``--http-port``, ``--smtp-port``), which override ``INBOX_*`` variables, which override the
TOML file. Every ``add`` command takes ``--json`` and then prints exactly one JSON object, so
scripts can set an instance up.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys
from collections.abc import Awaitable, Callable, Sequence
from datetime import date
from pathlib import Path
from typing import Any

from pydantic import ValidationError as PydanticValidationError

from inbox import __version__
from inbox.accounts import NewChannel, NewOperator, add_channel, add_operator
from inbox.config import ConfigError, Settings, load_settings
from inbox.domain import Role
from inbox.errors import InboxError, ValidationError
from routing.catalog import TeamSpec
from storage import open_store
from storage.base import Store

__all__ = ["main"]

_SETTING_OPTIONS = ("data_dir", "database_url", "http_port", "smtp_port")


def _parser() -> argparse.ArgumentParser:
    # SUPPRESS: an option given before the command is not overwritten by the command's default
    common = argparse.ArgumentParser(add_help=False, argument_default=argparse.SUPPRESS)
    common.add_argument("--config", type=Path, help="TOML configuration file (also INBOX_CONFIG)")
    common.add_argument("--data-dir", type=Path, help="where the embedded store lives (INBOX_DATA_DIR)")
    common.add_argument("--database-url", help="sqlite:///PATH or mongodb://… (INBOX_DATABASE_URL)")
    common.add_argument("--http-port", type=int, help="web UI and API port (INBOX_HTTP_PORT)")
    common.add_argument("--smtp-port", type=int, help="SMTP intake port (INBOX_SMTP_PORT)")

    parser = argparse.ArgumentParser(prog="inbox", description="Omnichannel helpdesk inbox.", parents=[common])
    parser.add_argument("--version", action="version", version=f"inbox {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    commands.add_parser("serve", parents=[common], help="run the web UI, API and channels")

    operator = commands.add_parser("operator", help="manage operators").add_subparsers(
        dest="action", required=True, metavar="ACTION"
    )
    add = operator.add_parser("add", parents=[common], help="add an operator")
    add.add_argument("email")
    add.add_argument("--name", default="")
    add.add_argument("--role", choices=[r.value for r in Role], default=Role.OPERATOR.value)
    add.add_argument("--max-open", type=int, help="cap on simultaneously open assigned conversations")
    add.add_argument("--team", action="append", default=[], help="team name (repeatable)")
    add.add_argument("--password", help="initial password (generated and printed when omitted)")
    add.add_argument("--json", action="store_true", help="print one JSON object")

    channel = commands.add_parser("channel", help="manage channels").add_subparsers(
        dest="action", required=True, metavar="ACTION"
    )
    channel_add = channel.add_parser("add", help="add a channel").add_subparsers(
        dest="kind", required=True, metavar="KIND"
    )
    api = channel_add.add_parser("api", parents=[common], help="a generic API channel with a key")
    api.add_argument("--name", default="API")
    api.add_argument("--webhook-url", help="where replies are POSTed (optional)")
    api.add_argument("--webhook-secret", help="HMAC secret for X-Inbox-Signature (optional)")
    api.add_argument("--json", action="store_true", help="print one JSON object")
    email = channel_add.add_parser("email", parents=[common], help="a mailbox: SMTP intake, IMAP polling, replies")
    email.add_argument("--address", required=True, help="the address customers write to")
    email.add_argument("--name", help="defaults to the address")
    email.add_argument("--display-name", help="shown in From of replies, after the operator's name")
    email.add_argument("--imap-host")
    email.add_argument("--imap-port", type=int)
    email.add_argument("--imap-user")
    email.add_argument("--imap-password")
    email.add_argument("--imap-ssl", action=argparse.BooleanOptionalAction, default=None)
    email.add_argument("--imap-folder")
    email.add_argument("--imap-processed-folder", help="move imported mail here instead of flagging it read")
    email.add_argument("--smtp-relay", metavar="HOST:PORT", help="where replies are sent")
    email.add_argument("--smtp-user")
    email.add_argument("--smtp-password")
    email.add_argument("--smtp-starttls", action=argparse.BooleanOptionalAction, default=None)
    email.add_argument("--json", action="store_true", help="print one JSON object")
    listing = channel.add_parser("list", parents=[common], help="list channels")
    listing.add_argument("--json", action="store_true", help="print one JSON object per line")

    email_commands = commands.add_parser("email", help="email channel tools").add_subparsers(
        dest="action", required=True, metavar="ACTION"
    )
    backfill = email_commands.add_parser(
        "backfill", parents=[common], help="re-import a date range from a channel's IMAP mailbox (no duplicates)"
    )
    backfill.add_argument("channel", help="the email channel's id")
    backfill.add_argument("--since", required=True, type=date.fromisoformat, help="YYYY-MM-DD, included")
    backfill.add_argument("--until", required=True, type=date.fromisoformat, help="YYYY-MM-DD, included")
    backfill.add_argument("--json", action="store_true", help="print one JSON object")

    parse = commands.add_parser(
        "parse-email", parents=[common], help="show the email connector's normalized view of raw messages"
    )
    parse.add_argument("files", nargs="+", type=Path, metavar="FILE")
    parse.add_argument("--json", action="store_true", help="one JSON object (JSON Lines for several files)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        settings = load_settings(
            getattr(args, "config", None), {name: getattr(args, name, None) for name in _SETTING_OPTIONS}
        )
    except ConfigError as exc:
        print(f"inbox: {exc}", file=sys.stderr)
        return 2
    logging.basicConfig(level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if args.command == "serve":
        from inbox.server import serve

        return serve(settings)
    if args.command == "email":
        try:
            count = asyncio.run(_email_backfill(settings, args))
        except (InboxError, OSError) as exc:
            print(f"inbox: {exc}", file=sys.stderr)
            return 1
        _print(args.json, {"channel": args.channel, "passed_to_intake": count})
        return 0
    if args.command == "parse-email":
        from connectors.email.cli import parse_email_command

        return parse_email_command(args.files, args.json)
    handler: Callable[[Store, argparse.Namespace], Awaitable[None]] = {
        ("operator", "add"): _operator_add,
        ("channel", "add"): _channel_add,
        ("channel", "list"): _channel_list,
    }[(args.command, args.action)]
    try:
        asyncio.run(_with_store(settings, lambda store: handler(store, args)))
    except (InboxError, OSError) as exc:
        print(f"inbox: {exc}", file=sys.stderr)
        return 1
    return 0


async def _email_backfill(settings: Settings, args: argparse.Namespace) -> int:
    from connectors.email.connector import EmailConnector
    from connectors.email.imap import ImapPoller
    from inbox.app import connector_context, offline

    async with offline(settings) as inbox:
        channel = await inbox.store.get_channel(args.channel)
        if channel.kind != "email":
            raise ValidationError(f"channel {channel.id} is a {channel.kind} channel, not email")
        connector = EmailConnector(connector_context(inbox, channel))
        poller = ImapPoller(connector.settings, connector.intake, connector.context.state, channel_id=channel.id)
        return await poller.backfill(args.since, args.until)


async def _with_store(settings: Settings, work: Callable[[Store], Awaitable[None]]) -> None:
    store = open_store(settings.effective_database_url, sqlite_durability=settings.sqlite_durability)
    await store.open()
    try:
        await work(store)
    finally:
        await store.close()


async def _operator_add(store: Store, args: argparse.Namespace) -> None:
    teams = {body["id"] for body in await store.list_routing_objects("team")}
    for team in args.team:
        if team not in teams:  # a team named here for the first time is created, its name its id
            try:
                body = TeamSpec.model_validate({"id": team, "name": team}).model_dump(mode="json")
            except PydanticValidationError:
                raise ValidationError(f"team {team!r}: use letters, digits and _ . : - only") from None
            await store.put_routing_object("team", team, body)
            teams.add(team)
    created = await add_operator(
        store,
        email=args.email,
        name=args.name,
        role=Role(args.role),
        max_open=args.max_open,
        teams=tuple(args.team),
        password=args.password,
    )
    _print(args.json, operator_summary(created))


def operator_summary(created: NewOperator) -> dict[str, Any]:
    summary: dict[str, Any] = {
        "id": created.operator.id,
        "email": created.operator.email,
        "role": str(created.operator.role),
        "api_token": created.api_token,
    }
    if created.password is not None:
        summary["password"] = created.password
    return summary


_EMAIL_OPTIONS = (
    "address",
    "display_name",
    "imap_host",
    "imap_port",
    "imap_user",
    "imap_password",
    "imap_ssl",
    "imap_folder",
    "imap_processed_folder",
    "smtp_relay",
    "smtp_user",
    "smtp_password",
    "smtp_starttls",
)


async def _channel_add(store: Store, args: argparse.Namespace) -> None:
    if args.kind == "email":
        from connectors.email.settings import EmailSettings

        given = {name: getattr(args, name) for name in _EMAIL_OPTIONS if getattr(args, name) is not None}
        settings = EmailSettings.of(given).model_dump(exclude_none=True)
        created = await add_channel(store, kind="email", name=args.name or args.address, settings=settings)
        summary = _channel_summary(created)
        summary["address"] = settings["address"]
    else:
        options = (("webhook_url", args.webhook_url), ("webhook_secret", args.webhook_secret))
        created = await add_channel(store, kind=args.kind, name=args.name, settings={k: v for k, v in options if v})
        summary = _channel_summary(created)
    _print(args.json, summary)


def _channel_summary(created: NewChannel) -> dict[str, Any]:
    summary = {"id": created.channel.id, "kind": created.channel.kind, "name": created.channel.name}
    if created.key is not None:
        summary["key"] = created.key
    return summary


async def _channel_list(store: Store, args: argparse.Namespace) -> None:
    for channel in await store.list_channels():
        row = {"id": channel.id, "kind": channel.kind, "name": channel.name}
        if args.json:
            print(json.dumps(row, ensure_ascii=False))
        else:
            print(f"{channel.id}  {channel.kind:<9} {channel.name}")


def _print(as_json: bool, summary: dict[str, Any]) -> None:
    if as_json:
        print(json.dumps(summary, ensure_ascii=False))
    else:
        for key, value in summary.items():
            print(f"{key}: {value}")
