"""The REST API, ``/api/v1``: handlers and the table of endpoints that serves and documents them."""

from __future__ import annotations

from aiohttp import web

from connectors.api import inbound_message
from inbox.domain import ConversationStatus, Identity, Operator, Role
from inbox.errors import NotFound, PermissionDenied, ValidationError
from inbox.reads import ConversationFilter
from inbox.service import UNCHANGED
from webui.api import schemas as s
from webui.api.endpoint import Call, Endpoint, Header, json_response
from webui.api.files import download
from webui.keys import BLOBS, ROUTER, SERVICE

__all__ = ["ENDPOINTS", "NOT_FOUND", "READ", "WRITE", "errors", "not_in_focus"]

_IDEMPOTENCY_KEY = Header("Idempotency-Key", "the same key twice creates one message (per operator)")


async def post_inbound(request: web.Request, call: Call) -> web.Response:
    body: s.InboundIn = call.body
    assert call.channel is not None
    inbound = inbound_message(
        call.channel,
        external_id=body.external_id,
        contact=body.contact.model_dump(),
        text=body.text,
        subject=body.subject,
        thread_id=body.thread_id,
    )
    received = await request.app[SERVICE].receive(inbound)
    out = s.InboundOut(
        conversation_id=received.conversation.id,
        message_id=received.message.id,
        duplicate=received.duplicate,
    )
    return json_response(out, status=200 if received.duplicate else 201)


def _focused(request: web.Request, actor: Operator) -> bool:
    """An operator (not a supervisor) in focus mode sees only their own open conversations."""
    return not actor.role.at_least(Role.SUPERVISOR) and request.app[ROUTER].in_focus(actor)


async def _visible_conversation(request: web.Request, actor: Operator, conversation_id: str) -> None:
    """Focus mode holds by URL too: another operator's conversation is not opened."""
    if _focused(request, actor):
        conversation, _ = await request.app[SERVICE].reads.conversation(conversation_id)
        if conversation.assignee_id != actor.id:
            raise PermissionDenied("in focus mode you see only the conversations assigned to you")


async def list_conversations(request: web.Request, call: Call) -> web.Response:
    query: s.ConversationsQuery = call.query
    assignee = call.actor.id if query.assignee == "me" else query.assignee
    status = query.status
    if _focused(request, call.actor):
        assignee, status = call.actor.id, ConversationStatus.OPEN
    where = ConversationFilter(
        status=status, assignee_id=assignee, channel_id=query.channel, tag=query.tag, text=query.q
    )
    listed = await request.app[SERVICE].reads.conversations(where, limit=query.limit, cursor=query.cursor)
    return json_response(
        s.ConversationPage(
            items=[s.ConversationOut.of(c, listed.contact_names.get(c.contact_id)) for c in listed.page.items],
            next_cursor=listed.page.next_cursor,
        )
    )


async def get_conversation(request: web.Request, call: Call) -> web.Response:
    await _visible_conversation(request, call.actor, request.match_info["id"])
    reads = request.app[SERVICE].reads
    conversation, contact = await reads.conversation(request.match_info["id"])
    messages = await reads.messages(conversation.id, limit=50)
    return json_response(
        s.ConversationDetail(
            **s.ConversationOut.of(conversation, contact.name).model_dump(),
            messages=s.MessagePage(
                items=[s.MessageOut.of(m) for m in messages.items], next_cursor=messages.next_cursor
            ),
        )
    )


async def patch_conversation(request: web.Request, call: Call) -> web.Response:
    await _visible_conversation(request, call.actor, request.match_info["id"])
    body: s.ConversationPatch = call.body
    changes = {name: getattr(body, name) for name in body.model_fields_set}
    if any(changes.get(name, UNCHANGED) is None for name in ("status", "priority", "tags")):
        raise ValidationError("status, priority and tags cannot be null")
    if "tags" in changes:
        changes["tags"] = tuple(changes["tags"])
    service = request.app[SERVICE]
    updated = await service.update(request.match_info["id"], call.actor, **changes)
    contact = await service.reads.contact(updated.contact_id)
    return json_response(s.ConversationOut.of(updated, contact.name))


async def list_messages(request: web.Request, call: Call) -> web.Response:
    await _visible_conversation(request, call.actor, request.match_info["id"])
    query: s.PageQuery = call.query
    page = await request.app[SERVICE].reads.messages(request.match_info["id"], limit=query.limit, cursor=query.cursor)
    return json_response(s.MessagePage(items=[s.MessageOut.of(m) for m in page.items], next_cursor=page.next_cursor))


async def post_message(request: web.Request, call: Call) -> web.Response:
    await _visible_conversation(request, call.actor, request.match_info["id"])
    body: s.MessageIn = call.body
    service = request.app[SERVICE]
    post = service.reply if body.kind == "reply" else service.note
    sent = await post(
        request.match_info["id"],
        call.actor,
        body.text,
        idempotency_key=request.headers.get(_IDEMPOTENCY_KEY.name) or None,
    )
    headers = {"Idempotent-Replayed": "true"} if sent.duplicate else None
    return json_response(s.MessageOut.of(sent.message), status=200 if sent.duplicate else 201, headers=headers)


def not_in_focus(request: web.Request, actor: Operator, what: str) -> None:
    if _focused(request, actor):
        raise PermissionDenied(f"in focus mode {what} is not shown; work with your own conversations")


async def list_contacts(request: web.Request, call: Call) -> web.Response:
    not_in_focus(request, call.actor, "the contact list")
    query: s.ContactsQuery = call.query
    page = await request.app[SERVICE].reads.contacts(limit=query.limit, cursor=query.cursor, text=query.q)
    return json_response(s.ContactPage(items=[s.ContactOut.of(c) for c in page.items], next_cursor=page.next_cursor))


async def create_contact(request: web.Request, call: Call) -> web.Response:
    body: s.ContactIn = call.body
    contact = await request.app[SERVICE].create_contact(
        name=body.name,
        email=body.email,
        phone=body.phone,
        identities=tuple(Identity(channel_kind=i.channel_kind, external_id=i.external_id) for i in body.identities),
        attributes=dict(body.attributes),
    )
    return json_response(s.ContactOut.of(contact), status=201)


async def get_contact(request: web.Request, call: Call) -> web.Response:
    not_in_focus(request, call.actor, "a contact outside your conversations")
    contact = await request.app[SERVICE].reads.contact(request.match_info["id"])
    return json_response(s.ContactOut.of(contact))


async def list_operators(request: web.Request, call: Call) -> web.Response:
    operators = await request.app[SERVICE].reads.operators()
    return json_response(s.OperatorList(items=[s.OperatorOut.of(o) for o in operators]))


async def get_me(request: web.Request, call: Call) -> web.Response:
    return json_response(s.OperatorOut.of(call.actor))


async def list_channels(request: web.Request, call: Call) -> web.Response:
    channels = await request.app[SERVICE].reads.channels()
    return json_response(s.ChannelList(items=[s.ChannelOut.of(c) for c in channels]))


async def list_quarantine(request: web.Request, call: Call) -> web.Response:
    query: s.PageQuery = call.query
    page = await request.app[SERVICE].reads.quarantine(limit=query.limit, cursor=query.cursor)
    return json_response(s.UnparsedPage(items=[s.UnparsedOut.of(u) for u in page.items], next_cursor=page.next_cursor))


async def download_attachment(request: web.Request, call: Call) -> web.Response:
    """Only through a message that carries it: knowing a file's hash is not enough to fetch it."""
    message = await request.app[SERVICE].reads.message(request.match_info["id"])
    await _visible_conversation(request, call.actor, message.conversation_id)
    sha256 = request.match_info["sha256"]
    attachment = next((a for a in message.attachments if a.sha256 == sha256), None)
    if attachment is None:
        raise NotFound(f"message {message.id} has no attachment {sha256}")
    data = await request.app[BLOBS].get(sha256)
    return download(data, filename=attachment.filename, content_type=attachment.content_type)


async def resend_message(request: web.Request, call: Call) -> web.Response:
    message = await request.app[SERVICE].reads.message(request.match_info["id"])
    await _visible_conversation(request, call.actor, message.conversation_id)
    return json_response(s.MessageOut.of(await request.app[SERVICE].resend(message.id)))


async def download_unparsed(request: web.Request, call: Call) -> web.Response:
    record = await request.app[SERVICE].reads.unparsed(request.match_info["id"])
    data = await request.app[BLOBS].get(record.raw_sha256)
    return download(data, filename=f"{record.id}.raw", content_type="application/octet-stream")


_ERRORS = {
    400: ("malformed request (invalid JSON, query or header)", s.ErrorOut),
    401: ("missing or wrong token", s.ErrorOut),
    403: ("the role does not allow this", s.ErrorOut),
    413: ("body larger than the configured limit", s.ErrorOut),
    415: ("body is not application/json", s.ErrorOut),
    422: ("body does not match the schema", s.ErrorOut),
}


def errors(*statuses: int) -> dict[int, tuple[str, type[s.ErrorOut]]]:
    return {status: _ERRORS[status] for status in statuses}


READ = errors(400, 401)
WRITE = errors(400, 401, 403, 413, 415, 422)
NOT_FOUND = {404: ("no such object", s.ErrorOut)}

ENDPOINTS: tuple[Endpoint, ...] = (
    Endpoint(
        method="POST",
        path="/api/v1/inbound",
        handler=post_inbound,
        tag="inbound",
        auth="channel",
        summary="Push a customer message in through an api channel (idempotent by external_id)",
        body=s.InboundIn,
        responses={201: ("stored", s.InboundOut), 200: ("already stored: a duplicate", s.InboundOut), **WRITE},
    ),
    Endpoint(
        method="GET",
        path="/api/v1/conversations",
        handler=list_conversations,
        tag="conversations",
        summary="List conversations, newest activity first, keyset-paged",
        query=s.ConversationsQuery,
        responses={200: ("a page of conversations", s.ConversationPage), **READ},
    ),
    Endpoint(
        method="GET",
        path="/api/v1/conversations/{id}",
        handler=get_conversation,
        tag="conversations",
        summary="One conversation with its first page of messages",
        responses={200: ("the conversation", s.ConversationDetail), **READ, **NOT_FOUND},
    ),
    Endpoint(
        method="PATCH",
        path="/api/v1/conversations/{id}",
        handler=patch_conversation,
        tag="conversations",
        summary="Change status, assignee, priority, tags or snooze",
        body=s.ConversationPatch,
        responses={200: ("the updated conversation", s.ConversationOut), **WRITE, **NOT_FOUND},
    ),
    Endpoint(
        method="GET",
        path="/api/v1/conversations/{id}/messages",
        handler=list_messages,
        tag="conversations",
        summary="Messages of a conversation, oldest first, keyset-paged",
        query=s.PageQuery,
        responses={200: ("a page of messages", s.MessagePage), **READ, **NOT_FOUND},
    ),
    Endpoint(
        method="POST",
        path="/api/v1/conversations/{id}/messages",
        handler=post_message,
        tag="conversations",
        summary="Reply to the customer or add a private note",
        body=s.MessageIn,
        headers=(_IDEMPOTENCY_KEY,),
        responses={
            201: ("stored (a reply is queued for delivery)", s.MessageOut),
            200: ("replayed: this Idempotency-Key was used before", s.MessageOut),
            409: ("the Idempotency-Key was used for another conversation", s.ErrorOut),
            **WRITE,
            **NOT_FOUND,
        },
    ),
    Endpoint(
        method="GET",
        path="/api/v1/contacts",
        handler=list_contacts,
        tag="contacts",
        summary="List contacts, newest first, keyset-paged",
        query=s.ContactsQuery,
        responses={200: ("a page of contacts", s.ContactPage), **READ},
    ),
    Endpoint(
        method="POST",
        path="/api/v1/contacts",
        handler=create_contact,
        tag="contacts",
        summary="Create a contact",
        body=s.ContactIn,
        responses={201: ("created", s.ContactOut), 409: ("an identity is taken", s.ErrorOut), **WRITE},
    ),
    Endpoint(
        method="GET",
        path="/api/v1/contacts/{id}",
        handler=get_contact,
        tag="contacts",
        summary="One contact with its identities",
        responses={200: ("the contact", s.ContactOut), **READ, **NOT_FOUND},
    ),
    Endpoint(
        method="GET",
        path="/api/v1/operators",
        handler=list_operators,
        tag="operators",
        summary="List operators",
        responses={200: ("all operators", s.OperatorList), **READ},
    ),
    Endpoint(
        method="GET",
        path="/api/v1/me",
        handler=get_me,
        tag="operators",
        summary="The operator the token belongs to",
        responses={200: ("the caller", s.OperatorOut), **READ},
    ),
    Endpoint(
        method="GET",
        path="/api/v1/quarantine",
        handler=list_quarantine,
        tag="channels",
        role=Role.ADMIN,
        summary="Inbound items that could not be parsed, kept raw with the reason (admins), newest first",
        query=s.PageQuery,
        responses={200: ("a page of quarantined items", s.UnparsedPage), **errors(400, 401, 403)},
    ),
    Endpoint(
        method="GET",
        path="/api/v1/quarantine/{id}/raw",
        handler=download_unparsed,
        tag="channels",
        role=Role.ADMIN,
        summary="The raw bytes of a quarantined item, as received (admins), as a download",
        responses={200: ("the raw bytes", bytes), **errors(400, 401, 403), **NOT_FOUND},
    ),
    Endpoint(
        method="POST",
        path="/api/v1/messages/{id}/resend",
        handler=resend_message,
        tag="conversations",
        summary="Send a failed reply again (a new delivery attempt; the status goes back to queued)",
        responses={
            200: ("queued again", s.MessageOut),
            409: ("the message has not failed", s.ErrorOut),
            **WRITE,
            **NOT_FOUND,
        },
    ),
    Endpoint(
        method="GET",
        path="/api/v1/messages/{id}/attachments/{sha256}",
        handler=download_attachment,
        tag="conversations",
        summary="An attachment of a message, as a download with a safe content type",
        responses={200: ("the file", bytes), **READ, **NOT_FOUND},
    ),
    Endpoint(
        method="GET",
        path="/api/v1/channels",
        handler=list_channels,
        tag="channels",
        role=Role.ADMIN,
        summary="List channels (admins)",
        responses={200: ("all channels", s.ChannelList), **errors(400, 401, 403)},
    ),
)
