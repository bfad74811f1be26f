"""The routing part of ``/api/v1``: operators' presence, caps and focus mode, the queue and
"get next", and the editable routing objects (rules, calendars, auto-reply templates, teams,
settings) under ``/api/v1/routing/…``. The catalog validates every object once more (references
to templates and teams, regexes, time zones) and answers 422 with the field named."""

from __future__ import annotations

from typing import Any

from aiohttp import web
from pydantic import BaseModel, create_model

from inbox.domain import Role
from routing.catalog import CatalogError, RoutingSettings, TeamSpec
from routing.rules import Rule, RuleSpec
from routing.templates import AutoReplyTemplate, AutoReplyTemplateSpec
from webui.api import schemas as s
from webui.api.endpoint import Call, Endpoint, json_response
from webui.api.routes import NOT_FOUND, READ, WRITE, errors, not_in_focus
from webui.errors import ApiError
from webui.keys import ROUTER, SERVICE

__all__ = ["ROUTING_ENDPOINTS"]


async def patch_operator(request: web.Request, call: Call) -> web.Response:
    body: s.OperatorPatch = call.body
    changes: dict[str, Any] = {name: getattr(body, name) for name in body.model_fields_set}
    if any(changes.get(name, 0) is None for name in ("presence", "focus_mode", "teams")):
        raise ApiError(422, "validation_failed", "presence, focus_mode and teams cannot be null")
    if "teams" in changes:
        unknown = [team for team in changes["teams"] if request.app[ROUTER].catalog.team(team) is None]
        if unknown:
            raise ApiError(422, "validation_failed", f"no such team: {', '.join(unknown)}")
        changes["teams"] = tuple(changes["teams"])
    operator = await request.app[SERVICE].update_operator(request.match_info["id"], call.actor, **changes)
    return json_response(s.OperatorOut.of(operator))


async def get_queue(request: web.Request, call: Call) -> web.Response:
    not_in_focus(request, call.actor, "the queue")  # they take from it only by "get next"
    query: s.QueueQuery = call.query
    roster = request.app[ROUTER].roster
    waiting = roster.queue(query.team, limit=query.limit)
    items = [
        s.QueueItem(
            conversation_id=w.conversation_id, team_id=w.team_id, priority=w.priority, waiting_since=w.waiting_since
        )
        for w in waiting
    ]
    return json_response(s.QueueOut(items=items, total=roster.queued_count()))


async def take_next(request: web.Request, call: Call) -> web.StreamResponse:
    conversation = await request.app[ROUTER].take_next(call.actor)
    if conversation is None:
        return web.Response(status=204)
    contact = await request.app[SERVICE].reads.contact(conversation.contact_id)
    return json_response(s.ConversationOut.of(conversation, contact.name))


def _crud(kind: str, plural: str, spec: type[BaseModel], out: type[BaseModel], *, keyed: bool) -> list[Endpoint]:
    """List, create, replace and delete for one kind of routing object, all for supervisors.
    ``keyed`` kinds (teams) carry an id chosen by the admin; the others get one assigned."""
    page = create_model(f"{out.__name__}List", items=(list[out], ...))  # type: ignore[call-overload, valid-type]

    def dumped(item: Any) -> Any:
        return out.model_validate(item.to_json() if hasattr(item, "to_json") else item.model_dump(mode="json"))

    async def listed(request: web.Request, call: Call) -> web.Response:
        return json_response(page(items=[dumped(i) for i in request.app[ROUTER].catalog.list(kind)]))

    async def created(request: web.Request, call: Call) -> web.Response:
        return await _put(request, call, None, 201)

    async def replaced(request: web.Request, call: Call) -> web.Response:
        return await _put(request, call, request.match_info["id"], 200)

    async def deleted(request: web.Request, call: Call) -> web.Response:
        await request.app[ROUTER].catalog.delete(kind, request.match_info["id"])
        return web.Response(status=204)

    async def _put(request: web.Request, call: Call, object_id: str | None, status: int) -> web.Response:
        body = call.body.model_dump(mode="json", exclude_none=not keyed)
        return json_response(dumped(await _stored(request, kind, body, object_id)), status=status)

    for handler, verb in ((listed, "list"), (created, "create"), (replaced, "replace"), (deleted, "delete")):
        handler.__name__ = f"{verb}_{plural}"
    base = f"/api/v1/routing/{plural}"
    common: dict[str, Any] = {"tag": "routing", "role": Role.SUPERVISOR}
    return [
        Endpoint(
            method="GET",
            path=base,
            handler=listed,
            summary=f"List {plural}",
            responses={200: (plural, page), **READ},
            **common,
        ),
        Endpoint(
            method="POST",
            path=base,
            handler=created,
            summary=f"Create a {kind}",
            body=spec,
            responses={201: ("created", out), **WRITE},
            **common,
        ),
        Endpoint(
            method="PUT",
            path=f"{base}/{{id}}",
            handler=replaced,
            summary=f"Create or replace the {kind} with this id",
            body=spec,
            responses={200: ("stored", out), **WRITE},
            **common,
        ),
        Endpoint(
            method="DELETE",
            path=f"{base}/{{id}}",
            handler=deleted,
            summary=f"Delete a {kind}",
            responses={204: ("deleted", None), **errors(400, 401, 403), **NOT_FOUND},
            **common,
        ),
    ]


async def get_settings(request: web.Request, call: Call) -> web.Response:
    return json_response(request.app[ROUTER].catalog.settings)


async def put_settings(request: web.Request, call: Call) -> web.Response:
    body: RoutingSettings = call.body
    return json_response(await _stored(request, "settings", body.model_dump(mode="json"), "default"))


async def _stored(request: web.Request, kind: str, body: dict[str, Any], object_id: str | None) -> Any:
    """Through the catalog, whose refusals (references, regexes, zones) become 422s naming the field."""
    try:
        return await request.app[ROUTER].catalog.put(kind, body, object_id)
    except CatalogError as exc:
        details = [{"field": e["loc"], "problem": e["message"]} for e in exc.errors]
        raise ApiError(422, "validation_failed", f"the {kind} was refused", details) from exc


ROUTING_ENDPOINTS: tuple[Endpoint, ...] = (
    Endpoint(
        method="PATCH",
        path="/api/v1/operators/{id}",
        handler=patch_operator,
        tag="operators",
        summary="Set presence and focus mode (oneself), cap and teams (supervisors)",
        body=s.OperatorPatch,
        responses={200: ("the operator", s.OperatorOut), **WRITE, **NOT_FOUND},
    ),
    Endpoint(
        method="GET",
        path="/api/v1/queue",
        handler=get_queue,
        tag="routing",
        summary="Conversations waiting for an operator, in queue order (priority, then waiting time)",
        query=s.QueueQuery,
        responses={200: ("the queue", s.QueueOut), **READ},
    ),
    Endpoint(
        method="POST",
        path="/api/v1/queue/next",
        handler=take_next,
        tag="routing",
        summary="Get next: the queue's choice for the caller, assigned to them",
        responses={
            200: ("the conversation now assigned to the caller", s.ConversationOut),
            204: ("the queue has nothing this operator may take", None),
            409: ("the caller is at their cap", s.ErrorOut),
            **READ,
        },
    ),
    *_crud("rule", "rules", RuleSpec, Rule, keyed=False),
    *_crud("calendar", "calendars", s.CalendarIn, s.CalendarOut, keyed=False),
    *_crud("template", "templates", AutoReplyTemplateSpec, AutoReplyTemplate, keyed=False),
    *_crud("team", "teams", TeamSpec, TeamSpec, keyed=True),
    Endpoint(
        method="GET",
        path="/api/v1/routing/settings",
        handler=get_settings,
        tag="routing",
        role=Role.SUPERVISOR,
        summary="Auto-reply choices and limits, default and per-channel calendars",
        responses={200: ("the settings", RoutingSettings), **READ},
    ),
    Endpoint(
        method="PUT",
        path="/api/v1/routing/settings",
        handler=put_settings,
        tag="routing",
        role=Role.SUPERVISOR,
        summary="Replace the routing settings",
        body=RoutingSettings,
        responses={200: ("stored", RoutingSettings), **WRITE},
    ),
)
