"""``GET /``: the unified inbox, one list from every channel, newest activity first.

Views are query parameters (``view=mine|unassigned|all``, ``status``, ``team``, ``channel``,
``tag``, ``q``, ``cursor``), so a view is a link that can be bookmarked and shared, and all of
them go through the same keyset-paged read the API uses. In focus mode the list is the
operator's own open conversations whatever the parameters say.

"Needs an answer" is ``waiting_since`` being set: the service sets it when a customer writes
and clears it when an operator replies (notes and automatic replies do not count), which is
exactly "the customer's last word is unanswered". A per-operator "seen" mark does not exist in
the store, so there is no "unread" in the mail-client sense.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any
from urllib.parse import urlencode

from aiohttp import web

from inbox.domain import Channel, Conversation, ConversationStatus, Message, MessageKind
from inbox.errors import ValidationError
from inbox.reads import ConversationFilter, InboxReads
from storage.base import UNASSIGNED
from webui.keys import ROUTER, SERVICE
from webui.pages.context import in_focus
from webui.pages.page import Page, operator_page

__all__ = ["PAGE_SIZE", "View", "inbox_page", "parse_view"]

PAGE_SIZE = 50
VIEWS = ("mine", "unassigned", "all")
STATUSES = (*(s.value for s in ConversationStatus), "any")
_ID = re.compile(r"^[0-9a-z]{26}$")
_TEAM = re.compile(r"^[A-Za-z0-9_.:-]{1,100}$")
_TAG = re.compile(r"^\w[\w .:/-]{0,63}$")
_CURSOR = re.compile(r"^[A-Za-z0-9_-]{1,200}$")
_PREVIEW_CHARS = 140


@dataclass(frozen=True, slots=True, kw_only=True)
class View:
    """One list view; ``None`` and the defaults are left out of links."""

    view: str = "all"
    status: str = "open"
    team: str | None = None
    channel: str | None = None
    tag: str | None = None
    q: str | None = None
    cursor: str | None = None

    def url(self, **changes: Any) -> str:
        """This view with some parameters changed; any change but ``cursor`` starts at page one."""
        changed = replace(self, **({"cursor": None} | changes))
        params = {
            name: value
            for name, value, default in (
                ("view", changed.view, "all"),
                ("status", changed.status, "open"),
                ("team", changed.team, None),
                ("channel", changed.channel, None),
                ("tag", changed.tag, None),
                ("q", changed.q, None),
                ("cursor", changed.cursor, None),
            )
            if value is not None and value != default
        }
        return "/?" + urlencode(params) if params else "/"


def parse_view(query: Mapping[str, str]) -> View:
    """Unknown parameters are ignored (a stale bookmark still opens); malformed values are not."""
    q = (query.get("q") or "").strip() or None
    view = View(
        view=query.get("view") or "all",
        status=query.get("status") or "open",
        team=query.get("team") or None,
        channel=query.get("channel") or None,
        tag=query.get("tag") or None,
        q=q,
        cursor=query.get("cursor") or None,
    )
    if (
        view.view not in VIEWS
        or view.status not in STATUSES
        or (view.team is not None and not _TEAM.match(view.team))
        or (view.channel is not None and not _ID.match(view.channel))
        or (view.tag is not None and not _TAG.match(view.tag))
        or (view.q is not None and len(view.q) > 200)
        or (view.cursor is not None and not _CURSOR.match(view.cursor))
    ):
        raise ValidationError("invalid view parameters")
    return view


@dataclass(frozen=True, slots=True, kw_only=True)
class Row:
    conversation: Conversation
    contact_name: str | None
    channel: Channel | None
    assignee_name: str | None
    preview: str | None

    @property
    def needs_answer(self) -> bool:
        return self.conversation.waiting_since is not None


def _where(page: Page, view: View, focused: bool) -> ConversationFilter:
    operator = page.operator
    if focused:
        return ConversationFilter(
            status=ConversationStatus.OPEN,
            assignee_id=operator.id,
            channel_id=view.channel,
            team_id=view.team,
            tag=view.tag,
            text=view.q,
        )
    assignee = {"mine": operator.id, "unassigned": UNASSIGNED}.get(view.view)
    return ConversationFilter(
        status=None if view.status == "any" else ConversationStatus(view.status),
        assignee_id=assignee,
        channel_id=view.channel,
        team_id=view.team,
        tag=view.tag,
        text=view.q,
    )


async def _previews(reads: InboxReads, conversations: list[Conversation]) -> dict[str, str]:
    """The first line of the first message, for conversations without a subject (chats). One
    small read each, concurrently: a page has at most :data:`PAGE_SIZE` rows."""
    untitled = [c for c in conversations if not c.subject]
    firsts = await asyncio.gather(*(reads.messages(c.id, limit=1) for c in untitled))
    previews: dict[str, str] = {}
    for conversation, first in zip(untitled, firsts, strict=True):
        text = _first_line(first.items[0]) if first.items else ""
        if text:
            previews[conversation.id] = text
    return previews


def _first_line(message: Message) -> str:
    if message.kind is MessageKind.SYSTEM:
        return ""
    line = next((line.strip() for line in message.text.splitlines() if line.strip()), "")
    return line if len(line) <= _PREVIEW_CHARS else line[: _PREVIEW_CHARS - 1] + "…"


@operator_page()
async def inbox_page(page: Page) -> web.StreamResponse:
    try:
        view = parse_view(page.request.query)
    except ValidationError:
        return page.error(400, page.gettext("This view is not valid. Open the inbox from its menu."))
    focused = in_focus(page.request, page.operator)
    service = page.request.app[SERVICE]
    reads = service.reads
    listed = await reads.conversations(_where(page, view, focused), limit=PAGE_SIZE, cursor=view.cursor)
    channels = {c.id: c for c in await reads.channels()}
    operators = {o.id: o for o in await reads.operators()}
    previews = await _previews(reads, listed.page.items)
    rows = [
        Row(
            conversation=c,
            contact_name=listed.contact_names.get(c.contact_id),
            channel=channels.get(c.channel_id),
            assignee_name=operators[c.assignee_id].name if c.assignee_id in operators else None,
            preview=previews.get(c.id),
        )
        for c in listed.page.items
    ]
    teams = sorted(page.request.app[ROUTER].catalog.list("team"), key=lambda t: t.name.casefold())
    older = view.url(cursor=listed.page.next_cursor) if listed.page.next_cursor else None
    return page.render(
        "inbox.html",
        view=view,
        focused=focused,
        rows=rows,
        channels=sorted(channels.values(), key=lambda c: c.name.casefold()),
        teams=teams,
        statuses=STATUSES,
        older_url=older,
        first_page_url=view.url() if view.cursor else None,
        operator_names=list(operators.values()),
    )
