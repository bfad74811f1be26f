"""Auto-reply templates: one text per language, rendered with Jinja2 in its sandbox.

Admins write templates through the REST API, so a template is checked when it is saved, not when
a customer is waiting: syntax, the variables it may use (:data:`TEMPLATE_VARIABLES`, nothing else),
and a small set of constructs. Loops, calls, attribute access, arithmetic and most filters are
refused outright — a reply needs none of them, and they are how a sandboxed template still burns
memory or time (``{{ "x" * 10**9 }}``, nested ``range`` loops). The sandbox stays as the second wall.

Output is plain text (autoescape off): each channel escapes for its own format. Customer data
(the contact's name) is a variable's value, never template source, so it is printed as written.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator, Mapping
from datetime import datetime, tzinfo
from typing import Annotated, Any, TypeVar
from zoneinfo import ZoneInfo

import jinja2
from babel import Locale, UnknownLocaleError
from babel.dates import format_datetime
from jinja2 import StrictUndefined, meta, nodes
from jinja2.sandbox import SandboxedEnvironment
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints, ValidationError
from pydantic_core import PydanticCustomError

__all__ = [
    "NEXT_OPENING_FORMAT",
    "TEMPLATE_VARIABLES",
    "AutoReplyError",
    "AutoReplyTemplate",
    "AutoReplyTemplateSpec",
    "check_source",
    "load_template",
    "parse_template",
    "pick_language",
    "render",
]

TEMPLATE_VARIABLES: Mapping[str, str] = {
    "contact_name": "the customer's name; empty when unknown, so write {{ contact_name|default('there', true) }}",
    "conversation_number": "the conversation's number, e.g. 1042",
    "next_opening": (
        "when business hours next begin, in the reply's language and the calendar's time zone, "
        "e.g. 'Monday, 30 November 2026, 09:00'; empty when there is none, so wrap it in {% if next_opening %}"
    ),
    "channel_name": "the name of the channel the customer wrote to",
}
"""The only names a template may use, with what each holds (for the API's documentation)."""

NEXT_OPENING_FORMAT = "EEEE, d MMMM y, HH:mm"
"""A Babel (CLDR) pattern: "Monday, 30 November 2026, 09:00", "понедельник, 30 ноября 2026, 09:00"."""

_FILTERS = frozenset({"default", "d", "upper", "lower", "title", "capitalize", "trim", "truncate"})
_TESTS = frozenset({"defined", "undefined", "none", "string", "number"})
_ALLOWED_NODES = (
    nodes.Template,
    nodes.Output,
    nodes.TemplateData,
    nodes.Name,
    nodes.Const,
    nodes.If,
    nodes.CondExpr,
    nodes.Filter,
    nodes.Test,
    nodes.Not,
    nodes.And,
    nodes.Or,
    nodes.Compare,
    nodes.Operand,
    nodes.Concat,
    nodes.Tuple,
    nodes.List,
)
_REFUSED_NAMES: tuple[tuple[type[nodes.Node] | tuple[type[nodes.Node], ...], str], ...] = (
    (nodes.For, "loops ({% for %})"),
    (nodes.Getattr, "attribute access (x.y)"),
    (nodes.Getitem, "item access (x[y])"),
    (nodes.Call, "calls (f())"),
    ((nodes.Assign, nodes.AssignBlock), "assignments ({% set %})"),
    ((nodes.Macro, nodes.CallBlock), "macros"),
    ((nodes.Include, nodes.Import, nodes.FromImport, nodes.Extends, nodes.Block), "other templates and blocks"),
    ((nodes.BinExpr, nodes.UnaryExpr), "arithmetic"),
)

_ENV = SandboxedEnvironment(undefined=StrictUndefined, autoescape=False, trim_blocks=True, lstrip_blocks=True)
_ENV.globals.clear()  # Jinja's are functions, and a template may call none; without them a render costs half


def check_source(source: str) -> str:
    """Refuse, with :class:`ValueError` and a message for the person who wrote it, what a template
    must not be; the checks read the parsed template, so nothing is rendered on save."""
    try:
        tree = _ENV.parse(source)
    except jinja2.TemplateSyntaxError as exc:
        raise ValueError(f"syntax error on line {exc.lineno}: {exc.message}") from None
    for node in _walk(tree):
        problem = _refusal(node)
        if problem:
            raise ValueError(f"auto-reply templates cannot use {problem} (line {node.lineno})")
    unknown = meta.find_undeclared_variables(tree) - TEMPLATE_VARIABLES.keys()
    if unknown:
        names = ", ".join(f"'{name}'" for name in sorted(unknown))
        raise ValueError(f"unknown variable {names}; use {', '.join(TEMPLATE_VARIABLES)}")
    return source


def _checked(source: str) -> str:
    try:
        return check_source(source)
    except ValueError as exc:  # pydantic would prefix "Value error, "; the API shows the reason alone
        raise PydanticCustomError("template", "{reason}", {"reason": str(exc)}) from None


def _walk(node: nodes.Node) -> Iterator[nodes.Node]:
    yield node
    for child in node.iter_child_nodes():
        yield from _walk(child)


def _refusal(node: nodes.Node) -> str | None:
    if isinstance(node, nodes.Filter) and node.name not in _FILTERS:
        return f"the filter '{node.name}' (filters: {', '.join(sorted(_FILTERS))})"
    if isinstance(node, nodes.Test) and node.name not in _TESTS:
        return f"the test '{node.name}' (tests: {', '.join(sorted(_TESTS))})"
    if type(node) in _ALLOWED_NODES:
        return None
    return next((name for kinds, name in _REFUSED_NAMES if isinstance(node, kinds)), f"'{type(node).__name__}'")


LanguageKey = Annotated[str, StringConstraints(pattern=r"^[a-z]{2,3}(-[A-Za-z0-9]{2,8})*$")]
Body = Annotated[str, StringConstraints(min_length=1, max_length=10_000), AfterValidator(_checked)]


class AutoReplyTemplateSpec(BaseModel):
    """A template as the API accepts it; the store assigns the id (:meth:`with_id`). There are no
    subjects: an automatic email answers under the thread's ``Re:`` subject with its ``[#N]``
    token, which is what keeps the customer's answer in the conversation."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    name: Annotated[str, StringConstraints(min_length=1, max_length=200)]
    bodies: Annotated[dict[LanguageKey, Body], Field(min_length=1, max_length=20)]

    def with_id(self, template_id: str) -> AutoReplyTemplate:
        return AutoReplyTemplate.model_validate({**self.model_dump(), "id": template_id})


class AutoReplyTemplate(AutoReplyTemplateSpec):
    id: Annotated[str, StringConstraints(min_length=1, max_length=255)]


class AutoReplyError(ValueError):
    """Why a template was refused: ``errors`` is a list of ``{"loc": "bodies.ru", "message": …}``."""

    def __init__(self, errors: list[dict[str, str]]) -> None:
        super().__init__("; ".join(f"{e['loc'] or 'template'}: {e['message']}" for e in errors))
        self.errors = errors


_M = TypeVar("_M", bound=AutoReplyTemplateSpec)


def parse_template(data: Mapping[str, Any]) -> AutoReplyTemplateSpec:
    """Validate a template sent to the API (no id)."""
    return _validate(AutoReplyTemplateSpec, data)


def load_template(data: Mapping[str, Any]) -> AutoReplyTemplate:
    """Validate a stored template (with id) by the same checks as the API's."""
    return _validate(AutoReplyTemplate, data)


def _validate(model: type[_M], data: Mapping[str, Any]) -> _M:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise AutoReplyError(
            [
                {
                    "loc": ".".join(str(part) for part in error["loc"]),
                    "message": "unknown field" if error["type"] == "extra_forbidden" else error["msg"],
                }
                for error in exc.errors(include_url=False)
            ]
        ) from None


def pick_language(available: Mapping[str, Any], language: str | None) -> str:
    """The key to use for ``language``: itself ("en-GB"), its base language ("en"), then English,
    then the first one written — a customer always gets some answer."""
    keys = {key.lower(): key for key in available}
    if language:
        wanted = language.replace("_", "-").lower()
        for candidate in (wanted, wanted.partition("-")[0]):
            if candidate in keys:
                return keys[candidate]
    return keys.get("en") or next(iter(available))


def render(
    template: AutoReplyTemplateSpec,
    language: str | None,
    *,
    contact_name: str | None = None,
    conversation_number: int | None = None,
    next_opening: datetime | Callable[[], datetime | None] | None = None,
    channel_name: str | None = None,
    time_zone: str | tzinfo | None = None,
) -> str:
    """The body in ``language`` (see :func:`pick_language`). ``next_opening`` must be aware; it is
    shown in ``time_zone`` (the calendar's) or, without one, in its own zone, and in the language of
    the body actually chosen, so an English fallback never carries a Russian date. It may be given
    as a function, called only when the chosen body shows it: most replies never do."""
    chosen = pick_language(template.bodies, language)
    compiled, names = _compiled(template.bodies[chosen])
    opening = ""
    if "next_opening" in names:
        moment = next_opening() if callable(next_opening) else next_opening
        if moment is not None:
            if moment.tzinfo is None or moment.utcoffset() is None:
                raise ValueError("next_opening must be timezone-aware")
            opening = _opening(moment, chosen, time_zone)
    # Absent values are "" rather than None: None would print as "None", "" is falsy for {% if %}.
    return compiled.render(
        contact_name=contact_name or "",
        conversation_number="" if conversation_number is None else conversation_number,
        next_opening=opening,
        channel_name=channel_name or "",
    )


@functools.lru_cache(maxsize=1024)
def _opening(moment: datetime, language: str, time_zone: str | tzinfo | None) -> str:
    """Formatted once per opening, language and zone: every reply of a closed evening shows the same."""
    zone = ZoneInfo(time_zone) if isinstance(time_zone, str) else time_zone
    return format_datetime(moment, NEXT_OPENING_FORMAT, tzinfo=zone, locale=_locale(language))


@functools.lru_cache(maxsize=64)
def _locale(language: str) -> Locale:
    for candidate in (language, language.partition("-")[0]):
        try:
            return Locale.parse(candidate, sep="-")
        except (ValueError, UnknownLocaleError):
            continue
    return Locale.parse("en")


@functools.lru_cache(maxsize=256)
def _compiled(source: str) -> tuple[jinja2.Template, frozenset[str]]:
    """The template and the variables it uses, so a reply works out only those."""
    return _ENV.from_string(source), frozenset(meta.find_undeclared_variables(_ENV.parse(source)))
