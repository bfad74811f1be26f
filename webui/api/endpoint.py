"""One declaration per API operation, from which both the aiohttp route and its OpenAPI entry
are made, so the document cannot drift from the handlers.

An :class:`Endpoint` names who may call it (an operator with at least ``role``, a channel by
its key, or anyone), what its body and query string must look like, and what it answers. The
wrapper made by :meth:`Endpoint.route` authenticates, checks the role, validates, and hands the
handler a :class:`Call` with the results; handlers never see unvalidated input.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from aiohttp import web
from pydantic import BaseModel
from pydantic import ValidationError as PydanticValidationError

from inbox.domain import Channel, Operator, Role
from inbox.errors import PermissionDenied
from webui.api.schemas import Query
from webui.auth import channel_for, operator_for
from webui.errors import ApiError
from webui.keys import CHANNEL_KEYS, OPERATOR_TOKENS, SERVICE, SESSIONS

__all__ = ["Call", "Endpoint", "Header", "json_response"]


@dataclass(frozen=True, slots=True, kw_only=True)
class Call:
    """What a handler gets besides the request: the caller and the validated input."""

    operator: Operator | None = None
    channel: Channel | None = None
    body: Any = None
    query: Any = None

    @property
    def actor(self) -> Operator:
        assert self.operator is not None, "endpoint declared without operator auth"
        return self.operator


Handler = Callable[[web.Request, Call], Awaitable[web.StreamResponse]]


@dataclass(frozen=True, slots=True)
class Header:
    name: str
    description: str
    max_length: int = 255


@dataclass(frozen=True, slots=True, kw_only=True)
class Endpoint:
    method: str
    path: str
    handler: Handler
    summary: str
    tag: str
    auth: Literal["operator", "channel"] | None = "operator"
    role: Role = Role.OPERATOR
    body: type[BaseModel] | None = None
    query: type[Query] | None = None
    headers: Sequence[Header] = ()
    responses: Mapping[int, tuple[str, type[BaseModel] | type[bytes] | None]] = field(default_factory=dict)
    """Status → (description, body): a JSON model, ``bytes`` for a file download, or None."""

    @property
    def operation_id(self) -> str:
        return self.handler.__name__

    def route(self) -> web.RouteDef:
        return web.route(self.method, self.path, self._serve)

    async def _serve(self, request: web.Request) -> web.StreamResponse:
        reads = request.app[SERVICE].reads
        operator = channel = None
        if self.auth == "operator":
            sessions = request.config_dict.get(SESSIONS)
            operator = await operator_for(request, reads, request.app[OPERATOR_TOKENS], sessions)
            if operator is None:
                raise ApiError(401, "unauthorized", "a valid operator API token is required")
            if not operator.role.at_least(self.role):
                raise PermissionDenied(f"this needs the {self.role} role")
        elif self.auth == "channel":
            channel = await channel_for(request, reads, request.app[CHANNEL_KEYS])
            if channel is None:
                raise ApiError(401, "unauthorized", "a valid channel key is required")
        for header in self.headers:
            if len(request.headers.get(header.name, "")) > header.max_length:
                raise ApiError(400, "invalid_header", f"{header.name} is longer than {header.max_length}")
        call = Call(
            operator=operator,
            channel=channel,
            body=await _validated_body(request, self.body) if self.body else None,
            query=_validated_query(request, self.query) if self.query else None,
        )
        if self.query is None and request.query:
            raise ApiError(400, "invalid_query", "this operation takes no query parameters")
        return await self.handler(request, call)


async def _validated_body(request: web.Request, model: type[BaseModel]) -> BaseModel:
    if request.content_type != "application/json":
        raise ApiError(415, "unsupported_media_type", "send the body as application/json")
    raw = await request.read()
    try:
        return model.model_validate_json(raw)
    except PydanticValidationError as exc:
        if any(error["type"] == "json_invalid" for error in exc.errors()):
            raise ApiError(400, "invalid_json", "the body is not valid JSON") from exc
        raise ApiError(422, "validation_failed", "the body does not match the schema", _details(exc)) from exc


def _validated_query(request: web.Request, model: type[Query]) -> Query:
    params: dict[str, str] = {}
    for name, value in request.query.items():
        if name in params:
            raise ApiError(400, "invalid_query", f"query parameter {name!r} is given twice")
        params[name] = value
    try:
        return model.model_validate(params)
    except PydanticValidationError as exc:
        raise ApiError(400, "invalid_query", "the query string is not valid", _details(exc)) from exc


def _details(exc: PydanticValidationError) -> list[dict[str, Any]]:
    return [
        {"field": ".".join(str(part) for part in error["loc"]), "problem": error["msg"]}
        for error in exc.errors(include_url=False, include_input=False)
    ]


def json_response(model: BaseModel, status: int = 200, headers: Mapping[str, str] | None = None) -> web.Response:
    return web.Response(body=model.model_dump_json(), status=status, content_type="application/json", headers=headers)
