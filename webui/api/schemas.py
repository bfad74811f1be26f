"""Shapes of the REST API: what requests may carry and what responses contain.

Request models forbid unknown fields and coerce nothing (a number is not a string), so bad
input is refused with the field named, and no request value can ever be a query document.
Response models are built from domain values and are what the OpenAPI document describes.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, StringConstraints

from inbox.domain import (
    Attachment,
    Channel,
    Contact,
    Conversation,
    ConversationStatus,
    DeliveryStatus,
    Direction,
    Message,
    MessageKind,
    Operator,
    Presence,
    Priority,
    Role,
    Unparsed,
)

ID_PATTERN = r"^[0-9a-z]{26}$"
Id = Annotated[str, StringConstraints(pattern=ID_PATTERN)]
Tag = Annotated[str, StringConstraints(min_length=1, max_length=64, pattern=r"^\w[\w .:/-]*$")]
ShortText = Annotated[str, StringConstraints(min_length=1, max_length=255)]
ExternalId = Annotated[str, StringConstraints(min_length=1, max_length=255, pattern=r"^[^\x00-\x1f]+$")]


class Request(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class Query(BaseModel):
    """Query strings arrive as text, so these models are not strict; ``extra`` stays forbidden."""

    model_config = ConfigDict(extra="forbid", frozen=True)


# requests


class InboundContactIn(Request):
    external_id: ExternalId
    name: Annotated[str, StringConstraints(max_length=255)] | None = None
    email: Annotated[str, StringConstraints(max_length=320)] | None = None
    phone: Annotated[str, StringConstraints(max_length=64)] | None = None


class InboundIn(Request):
    external_id: ExternalId
    contact: InboundContactIn
    text: Annotated[str, StringConstraints(min_length=1, max_length=100_000)]
    subject: Annotated[str, StringConstraints(max_length=998)] | None = None
    thread_id: ExternalId | None = None


class MessageIn(Request):
    text: Annotated[str, StringConstraints(min_length=1, max_length=100_000)]
    kind: Literal["reply", "note"] = "reply"


class ConversationPatch(Request):
    status: ConversationStatus | None = None
    assignee_id: Id | None = None
    priority: Priority | None = None
    tags: Annotated[list[Tag], Field(max_length=50)] | None = None
    snoozed_until: AwareDatetime | None = None
    over_cap: bool = Field(
        default=False, description="a supervisor assigns past the operator's cap (recorded on the conversation)"
    )


TeamRef = Annotated[str, StringConstraints(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9_.:-]+$")]


class OperatorPatch(Request):
    """Operators may set their own presence and focus mode; caps and teams need a supervisor."""

    presence: Presence | None = None
    max_open: Annotated[int, Field(ge=0, le=10_000)] | None = None
    focus_mode: bool | None = None
    teams: Annotated[list[TeamRef], Field(max_length=50)] | None = None
    locale: Literal["en", "ru"] | None = Field(default=None, description="the page language; null follows the browser")
    time_zone: Annotated[str, StringConstraints(min_length=1, max_length=64)] | None = Field(
        default=None, description="an IANA zone for dates on pages; null follows the browser"
    )


class HoursIn(Request):
    start: Annotated[str, StringConstraints(pattern=r"^\d\d:\d\d$")]
    end: Annotated[str, StringConstraints(pattern=r"^\d\d:\d\d$")]


class WeeklyHoursIn(HoursIn):
    weekday: Annotated[int, Field(ge=0, le=6, description="0 is Monday")]


class ExceptionIn(Request):
    date: Annotated[str, StringConstraints(pattern=r"^\d{4}-\d\d-\d\d$")]
    intervals: Annotated[list[HoursIn], Field(max_length=24)] = Field(description="empty: closed that day")


class CalendarIn(Request):
    """Business hours: an end at or before the start runs overnight into the next day."""

    id: TeamRef | None = None
    name: ShortText
    time_zone: Annotated[str, StringConstraints(min_length=1, max_length=64)] = Field(description="an IANA zone")
    weekly: Annotated[list[WeeklyHoursIn], Field(max_length=100)] = []
    holidays: Annotated[
        list[Annotated[str, StringConstraints(pattern=r"^\d{4}-\d\d-\d\d$")]], Field(max_length=1000)
    ] = []
    exceptions: Annotated[list[ExceptionIn], Field(max_length=1000)] = []


class CalendarOut(CalendarIn):
    model_config = ConfigDict(extra="forbid", strict=False, frozen=True)
    id: str


class IdentityIn(Request):
    channel_kind: Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]{0,31}$")]
    external_id: ExternalId


class ContactIn(Request):
    name: ShortText | None = None
    email: Annotated[str, StringConstraints(max_length=320)] | None = None
    phone: Annotated[str, StringConstraints(max_length=64)] | None = None
    identities: Annotated[list[IdentityIn], Field(max_length=20)] = []
    attributes: dict[str, str | int | float | bool | None] = {}


# queries

Limit = Annotated[int, Field(ge=1, le=200)]


class PageQuery(Query):
    limit: Limit = 50
    cursor: Annotated[str, StringConstraints(max_length=200, pattern=r"^[A-Za-z0-9_-]+$")] | None = None


class QueueQuery(Query):
    team: TeamRef | None = None
    limit: Limit = 50


class ConversationsQuery(PageQuery):
    status: ConversationStatus | None = None
    assignee: Annotated[str, StringConstraints(pattern=r"^(me|none|[0-9a-z]{26})$")] | None = Field(
        default=None, description="an operator id, `me`, or `none` for unassigned"
    )
    channel: Id | None = None
    tag: Tag | None = None
    q: Annotated[str, StringConstraints(min_length=1, max_length=200)] | None = Field(
        default=None,
        description="words to find (as prefixes) in messages, subjects and contact names; the search"
        " looks at the 5,000 most recent matching messages",
    )


class ContactsQuery(PageQuery):
    q: Annotated[str, StringConstraints(min_length=1, max_length=200)] | None = None


# responses


class ErrorBody(BaseModel):
    code: str
    message: str
    details: list[dict[str, Any]] | None = None


class ErrorOut(BaseModel):
    error: ErrorBody


class Health(BaseModel):
    status: Literal["ok", "unavailable"]
    detail: str | None = None


class InboundOut(BaseModel):
    conversation_id: str
    message_id: str
    duplicate: bool


class ContactRef(BaseModel):
    id: str
    name: str | None


class ConversationOut(BaseModel):
    id: str
    number: int
    channel_id: str
    contact: ContactRef
    subject: str | None
    status: ConversationStatus
    priority: Priority
    assignee_id: str | None
    team_id: str | None
    tags: list[str]
    created_at: datetime
    updated_at: datetime
    last_message_at: datetime
    last_inbound_at: datetime | None
    first_response_at: datetime | None
    waiting_since: datetime | None
    snoozed_until: datetime | None
    resolved_at: datetime | None

    @classmethod
    def of(cls, conversation: Conversation, contact_name: str | None) -> ConversationOut:
        c = conversation
        return cls(
            id=c.id,
            number=c.number,
            channel_id=c.channel_id,
            contact=ContactRef(id=c.contact_id, name=contact_name),
            subject=c.subject,
            status=c.status,
            priority=c.priority,
            assignee_id=c.assignee_id,
            team_id=c.team_id,
            tags=list(c.tags),
            created_at=c.created_at,
            updated_at=c.updated_at,
            last_message_at=c.last_message_at,
            last_inbound_at=c.last_inbound_at,
            first_response_at=c.first_response_at,
            waiting_since=c.waiting_since,
            snoozed_until=c.snoozed_until,
            resolved_at=c.resolved_at,
        )


class ConversationPage(BaseModel):
    items: list[ConversationOut]
    next_cursor: str | None


class AttachmentOut(BaseModel):
    filename: str
    content_type: str
    size: int
    sha256: str
    inline: bool
    content_id: str | None

    @classmethod
    def of(cls, a: Attachment) -> AttachmentOut:
        return cls(
            filename=a.filename,
            content_type=a.content_type,
            size=a.size,
            sha256=a.sha256,
            inline=a.inline,
            content_id=a.content_id,
        )


class DeliveryOut(BaseModel):
    status: DeliveryStatus
    error: str | None


class MessageOut(BaseModel):
    id: str
    conversation_id: str
    channel_id: str
    direction: Direction
    kind: MessageKind
    text: str
    html: str | None
    author_id: str | None
    attachments: list[AttachmentOut]
    external_id: str | None
    delivery: DeliveryOut | None
    created_at: datetime

    @classmethod
    def of(cls, m: Message) -> MessageOut:
        return cls(
            id=m.id,
            conversation_id=m.conversation_id,
            channel_id=m.channel_id,
            direction=m.direction,
            kind=m.kind,
            text=m.text,
            html=m.html,
            author_id=m.author_id,
            attachments=[AttachmentOut.of(a) for a in m.attachments],
            external_id=m.external_id,
            delivery=DeliveryOut(status=m.delivery_status, error=m.delivery_error)
            if m.delivery_status is not None
            else None,
            created_at=m.created_at,
        )


class MessagePage(BaseModel):
    items: list[MessageOut]
    next_cursor: str | None


class ConversationDetail(ConversationOut):
    messages: MessagePage


class IdentityOut(BaseModel):
    channel_kind: str
    external_id: str


class ContactOut(BaseModel):
    id: str
    name: str | None
    email: str | None
    phone: str | None
    identities: list[IdentityOut]
    attributes: Mapping[str, Any]
    created_at: datetime

    @classmethod
    def of(cls, c: Contact) -> ContactOut:
        return cls(
            id=c.id,
            name=c.name,
            email=c.email,
            phone=c.phone,
            identities=[IdentityOut(channel_kind=i.channel_kind, external_id=i.external_id) for i in c.identities],
            attributes=dict(c.attributes),
            created_at=c.created_at,
        )


class ContactPage(BaseModel):
    items: list[ContactOut]
    next_cursor: str | None


class OperatorOut(BaseModel):
    id: str
    email: str
    name: str
    role: Role
    presence: Presence
    focus_mode: bool
    max_open: int | None
    teams: list[str]
    locale: str | None
    time_zone: str | None

    @classmethod
    def of(cls, o: Operator) -> OperatorOut:
        return cls(
            id=o.id,
            email=o.email,
            name=o.name,
            role=o.role,
            presence=o.presence,
            focus_mode=o.focus_mode,
            max_open=o.max_open,
            teams=list(o.teams),
            locale=o.locale,
            time_zone=o.time_zone,
        )


class OperatorList(BaseModel):
    items: list[OperatorOut]


class ChannelOut(BaseModel):
    id: str
    kind: str
    name: str
    created_at: datetime

    @classmethod
    def of(cls, c: Channel) -> ChannelOut:
        return cls(id=c.id, kind=c.kind, name=c.name, created_at=c.created_at)


class UnparsedOut(BaseModel):
    id: str
    channel_id: str
    source: str
    reason: str
    raw_sha256: str
    size: int
    created_at: datetime

    @classmethod
    def of(cls, u: Unparsed) -> UnparsedOut:
        return cls(
            id=u.id,
            channel_id=u.channel_id,
            source=u.source,
            reason=u.reason,
            raw_sha256=u.raw_sha256,
            size=u.size,
            created_at=u.created_at,
        )


class UnparsedPage(BaseModel):
    items: list[UnparsedOut]
    next_cursor: str | None


class ChannelList(BaseModel):
    items: list[ChannelOut]


class QueueItem(BaseModel):
    conversation_id: str
    team_id: str | None
    priority: Priority
    waiting_since: datetime


class QueueOut(BaseModel):
    items: list[QueueItem]
    total: int
