"""Routing's editable objects: rules, business-hours calendars, auto-reply templates, teams and
the routing settings, validated on save and kept compiled in memory.

The pipeline reads them on every message, so they are loaded once and refreshed on every change
made through :meth:`Catalog.put` / :meth:`Catalog.delete` (the API's way in). With several
processes on one MongoDB, a change made in one reaches the others at their next restart — the
scale-out work replaces this with change streams.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints
from pydantic import ValidationError as PydanticValidationError

from inbox.errors import NotFound
from inbox.ids import new_id
from routing.calendar import ALWAYS_OPEN, BusinessCalendar
from routing.matching import CompiledRules
from routing.rules import AssignTeamAction, Rule, RuleError, SendAutoReplyAction, load_rule
from routing.templates import AutoReplyError, AutoReplyTemplate, load_template
from storage.base import Store

__all__ = ["KINDS", "Catalog", "CatalogError", "RoutingSettings", "TeamSpec"]

Kind = Literal["rule", "calendar", "template", "team", "settings"]
KINDS: tuple[Kind, ...] = ("rule", "calendar", "template", "team", "settings")
_Ref = Annotated[str, StringConstraints(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9_.:-]+$")]


class CatalogError(ValueError):
    """A refused object; ``errors`` is a list of ``{"loc", "message"}`` as the API shows them."""

    def __init__(self, errors: list[dict[str, str]]) -> None:
        super().__init__("; ".join(f"{e['loc'] or 'object'}: {e['message']}" for e in errors))
        self.errors = errors


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class TeamSpec(_Strict):
    """A team: its id is chosen by the admin ("billing"), so rules and operators can name it."""

    id: _Ref
    name: Annotated[str, StringConstraints(min_length=1, max_length=200)]
    calendar_id: _Ref | None = None
    focus_mode: bool = False
    """Enforced focus mode: every member works in focus mode, whatever their own setting."""


class RoutingSettings(_Strict):
    """Which auto-replies are on, their limits, and who gets which calendar."""

    id: Literal["default"] = "default"
    acknowledgement_template_id: _Ref | None = None
    out_of_hours_template_id: _Ref | None = None
    out_of_hours_period_minutes: Annotated[int, Field(ge=1, le=525_600)] = 24 * 60
    no_answer_template_id: _Ref | None = None
    no_answer_minutes: Annotated[int, Field(ge=1, le=525_600)] = 30
    auto_replies_per_contact_per_hour: Annotated[int, Field(ge=1, le=1000)] = 5
    default_calendar_id: _Ref | None = None
    channel_calendars: dict[str, _Ref] = Field(default_factory=dict)
    away_grace_minutes: Annotated[int, Field(ge=0, le=1440)] = 10


@dataclass(frozen=True, slots=True)
class _Kind:
    load: Callable[[Mapping[str, Any]], Any]
    dump: Callable[[Any], dict[str, Any]]
    position: Callable[[Any], int]


def _pydantic(model: type[_Strict]) -> Callable[[Mapping[str, Any]], Any]:
    def load(data: Mapping[str, Any]) -> Any:
        try:
            return model.model_validate(data)
        except PydanticValidationError as exc:
            raise CatalogError(
                [
                    {"loc": ".".join(str(p) for p in e["loc"]), "message": e["msg"]}
                    for e in exc.errors(include_url=False)
                ]
            ) from None

    return load


def _calendar(data: Mapping[str, Any]) -> BusinessCalendar:
    try:
        return BusinessCalendar.from_json(data)
    except ValueError as exc:
        raise CatalogError([{"loc": "", "message": str(exc)}]) from None


_KINDS: dict[str, _Kind] = {
    "rule": _Kind(load_rule, lambda r: r.model_dump(mode="json"), lambda r: r.position),
    "calendar": _Kind(_calendar, lambda c: c.to_json(), lambda c: 0),
    "template": _Kind(load_template, lambda t: t.model_dump(mode="json"), lambda t: 0),
    "team": _Kind(_pydantic(TeamSpec), lambda t: t.model_dump(mode="json"), lambda t: 0),
    "settings": _Kind(_pydantic(RoutingSettings), lambda s: s.model_dump(mode="json"), lambda s: 0),
}


class Catalog:
    def __init__(self, store: Store) -> None:
        self._store = store
        self._objects: dict[str, dict[str, Any]] = {kind: {} for kind in KINDS}
        self.rules = CompiledRules(())
        self.settings = RoutingSettings()
        self._calendars: dict[tuple[str, str | None], BusinessCalendar] = {}  # by (channel, team), until a change

    async def load(self) -> None:
        for kind, spec in _KINDS.items():
            bodies = await self._store.list_routing_objects(kind)
            self._objects[kind] = {body["id"]: spec.load(body) for body in bodies}
        self._refresh()

    def list(self, kind: str) -> list[Any]:
        return list(self._objects[kind].values())

    def get(self, kind: str, object_id: str) -> Any:
        try:
            return self._objects[kind][object_id]
        except KeyError:
            raise NotFound(f"no {kind} {object_id}") from None

    async def put(self, kind: str, body: Mapping[str, Any], object_id: str | None = None) -> Any:
        """Validates ``body`` (its id is ``object_id``, or a new one), checks what it refers to,
        stores it and makes it live."""
        spec = _KINDS[kind]
        data = dict(body)
        data["id"] = object_id or data.get("id") or ("default" if kind == "settings" else new_id())
        try:
            item = spec.load(data)
        except (RuleError, AutoReplyError) as exc:
            raise CatalogError(exc.errors) from None
        self._check_references(kind, item)
        await self._store.put_routing_object(kind, data["id"], spec.dump(item), spec.position(item))
        await self._store.durable()
        self._objects[kind][data["id"]] = item
        self._refresh()
        return item

    async def delete(self, kind: str, object_id: str) -> None:
        self.get(kind, object_id)
        await self._store.delete_routing_object(kind, object_id)
        await self._store.durable()
        del self._objects[kind][object_id]
        self._refresh()

    # what the pipeline reads

    def template(self, template_id: str | None) -> AutoReplyTemplate | None:
        return self._objects["template"].get(template_id) if template_id else None

    def team(self, team_id: str | None) -> TeamSpec | None:
        return self._objects["team"].get(team_id) if team_id else None

    def calendar_for(self, channel_id: str, team_id: str | None = None) -> BusinessCalendar:
        """The team's calendar, else the channel's, else the default one, else always open (asked
        for every message, so remembered until the catalog changes)."""
        calendar = self._calendars.get((channel_id, team_id))
        if calendar is None:
            calendar = self._calendars[(channel_id, team_id)] = self._find_calendar(channel_id, team_id)
        return calendar

    def _find_calendar(self, channel_id: str, team_id: str | None) -> BusinessCalendar:
        team = self.team(team_id)
        settings = self.settings
        for calendar_id in (
            team.calendar_id if team else None,
            settings.channel_calendars.get(channel_id),
            settings.default_calendar_id,
        ):
            if calendar_id and calendar_id in self._objects["calendar"]:
                return self._objects["calendar"][calendar_id]
        return ALWAYS_OPEN

    def focus_enforced(self, team_ids: tuple[str, ...]) -> bool:
        return any(team.focus_mode for team_id in team_ids if (team := self.team(team_id)))

    def _refresh(self) -> None:
        self._calendars = {}
        rules: list[Rule] = list(self._objects["rule"].values())
        self.rules = CompiledRules(rules)
        self.settings = self._objects["settings"].get("default") or RoutingSettings()

    def _check_references(self, kind: str, item: Any) -> None:
        """Saving a rule that names a missing template or team is refused, not discovered later."""
        errors: list[dict[str, str]] = []
        if kind == "rule":
            for index, action in enumerate(item.actions):
                if isinstance(action, SendAutoReplyAction) and action.template_id not in self._objects["template"]:
                    errors.append({"loc": f"actions.{index}.template_id", "message": "no such template"})
                if isinstance(action, AssignTeamAction) and action.team_id not in self._objects["team"]:
                    errors.append({"loc": f"actions.{index}.team_id", "message": "no such team"})
        elif kind == "settings":
            for name in ("acknowledgement_template_id", "out_of_hours_template_id", "no_answer_template_id"):
                if getattr(item, name) and getattr(item, name) not in self._objects["template"]:
                    errors.append({"loc": name, "message": "no such template"})
            calendars = [item.default_calendar_id, *item.channel_calendars.values()]
            for calendar_id in filter(None, calendars):
                if calendar_id not in self._objects["calendar"]:
                    errors.append({"loc": "calendars", "message": f"no calendar {calendar_id}"})
        elif kind == "team" and item.calendar_id and item.calendar_id not in self._objects["calendar"]:
            errors.append({"loc": "calendar_id", "message": "no such calendar"})
        if errors:
            raise CatalogError(errors)
