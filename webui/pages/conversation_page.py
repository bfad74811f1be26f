"""``GET /conversations/{id}``: one conversation with its messages, its contact and the controls.

The page only shows; every change (reply, note, assignment, status, priority, tags) is a call
of the page's script to the REST API, which checks the operator's rights again. Focus mode
holds by URL: another operator's conversation answers with a 403 page.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from aiohttp import web

from inbox.domain import Conversation, Direction, Message, MessageKind, Operator, Role
from inbox.errors import NotFound
from inbox.reads import ConversationFilter
from webui.keys import SERVICE
from webui.pages.context import in_focus
from webui.pages.mailframe import frame_response, has_remote_images
from webui.pages.page import Page, operator_page

__all__ = ["MAX_MESSAGES", "conversation_page", "message_frame"]

MAX_MESSAGES = 500
"""Messages shown at once; a longer conversation links to the rest."""
_BATCH = 100
_ID = re.compile(r"^[0-9a-z]{26}$")
_CURSOR = re.compile(r"^[A-Za-z0-9_-]{1,200}$")


@dataclass(frozen=True, slots=True)
class MessageView:
    message: Message
    style: str
    """inbound, outbound, auto_reply, note or system: what the page shows differently."""
    author: str | None
    frame: str | None
    """The sandboxed frame's URL for an HTML mail."""
    remote_images: bool
    """The mail has remote images that are (still) held back."""


def _style(message: Message) -> str:
    if message.kind is MessageKind.MESSAGE:
        return "inbound" if message.direction is Direction.IN else "outbound"
    return str(message.kind)


def _author(message: Message, contact_name: str | None, operators: dict[str, Operator]) -> str | None:
    if message.direction is Direction.IN:
        sender = message.extras.get("sender")
        if isinstance(sender, dict) and sender.get("name"):
            return str(sender["name"])
        return contact_name
    operator = operators.get(message.author_id or "")
    return operator.name if operator else None


def _view(message: Message, contact_name: str | None, operators: dict[str, Operator], images: bool) -> MessageView:
    frame = f"/messages/{message.id}/frame{'?images=1' if images else ''}" if message.html else None
    return MessageView(
        message=message,
        style=_style(message),
        author=_author(message, contact_name, operators),
        frame=frame,
        remote_images=bool(message.html) and not images and has_remote_images(message.html or ""),
    )


@operator_page()
async def conversation_page(page: Page) -> web.StreamResponse:
    conversation_id = page.request.match_info["id"]
    if not _ID.match(conversation_id):
        raise NotFound(conversation_id)
    cursor = page.request.query.get("after") or None
    if cursor is not None and not _CURSOR.match(cursor):
        return page.error(400)
    service = page.request.app[SERVICE]
    reads = service.reads
    conversation, contact = await reads.conversation(conversation_id)
    if in_focus(page.request, page.operator) and conversation.assignee_id != page.operator.id:
        return page.error(403, page.gettext("In focus mode you see only the conversations assigned to you."))
    messages: list[Message] = []
    while len(messages) < MAX_MESSAGES:
        batch = await reads.messages(conversation.id, limit=_BATCH, cursor=cursor)
        messages.extend(batch.items)
        cursor = batch.next_cursor
        if cursor is None:
            break
    operators = {o.id: o for o in await reads.operators()}
    images = page.request.query.get("images") == "1"
    views = [_view(m, contact.name, operators, images) for m in messages]
    channel = await service.channel(conversation.channel_id)
    assignee = operators.get(conversation.assignee_id or "")
    history = await _contact_history(page, conversation.contact_id, conversation.id)
    return page.render(
        "conversation.html",
        conversation=conversation,
        contact=contact,
        channel=channel,
        assignee=assignee,
        messages=views,
        later_url=f"/conversations/{conversation.id}?after={cursor}" if cursor else None,
        images=images,
        any_remote_images=any(v.remote_images for v in views),
        may_assign_others=page.operator.role.at_least(Role.SUPERVISOR),
        operators=sorted(operators.values(), key=lambda o: o.name.casefold()),
        operator_names=list(operators.values()),
        history=history,
        channels={c.id: c for c in await reads.channels()},
    )


async def _contact_history(page: Page, contact_id: str, current_id: str) -> list[Conversation]:
    """The contact's other conversations, on every channel, newest first (the last 20): the whole
    story of a customer at a glance. In focus mode only those assigned to the operator."""
    mine = page.operator.id if in_focus(page.request, page.operator) else None
    where = ConversationFilter(contact_id=contact_id, assignee_id=mine)
    listed = await page.request.app[SERVICE].reads.conversations(where, limit=21, cursor=None)
    return [c for c in listed.page.items if c.id != current_id][:20]


@operator_page()
async def message_frame(page: Page) -> web.StreamResponse:
    """``GET /messages/{id}/frame``: one mail's HTML for its frame, for whoever may see the
    conversation (focus mode holds here too)."""
    message_id = page.request.match_info["id"]
    if not _ID.match(message_id):
        raise NotFound(message_id)
    reads = page.request.app[SERVICE].reads
    message = await reads.message(message_id)
    if in_focus(page.request, page.operator):
        conversation, _ = await reads.conversation(message.conversation_id)
        if conversation.assignee_id != page.operator.id:
            return page.error(403)
    if not message.html:
        raise NotFound(message_id)
    return frame_response(message.html, remote_images=page.request.query.get("images") == "1")
