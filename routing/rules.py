"""Routing rules: "when EVENT and CONDITIONS then ACTIONS", kept in order and stored as JSON.

Admins edit rules through the REST API and the store keeps them as JSON, so the shape is strict
(pydantic, unknown keys refused, nothing coerced) and every refusal names its place:
:func:`parse_rule` raises :class:`RuleError` with ``{"loc": "conditions.0.value", "message": …}``
entries an API client can show next to the field.

This module is the rule language: the shapes, their validation, and what a decision reads
(:class:`Facts`) and gives (:class:`Decision`), which is all the API and the store need;
:mod:`routing.matching` compiles a rule set and decides. Regular expressions are RE2's, checked
here when a rule is saved (:func:`compile_pattern`): matching is linear in the text, so no pattern
an admin saves can stall the event loop by backtracking. This module does not import :mod:`re` at
all.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Annotated, Any, Literal, Protocol, TypeVar, get_args

import re2
from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError, ValidationInfo, field_validator
from pydantic_core import PydanticCustomError

__all__ = [
    "ACTION_TYPES",
    "CONDITION_FIELDS",
    "EVENTS",
    "MAX_PATTERN_LENGTH",
    "RE2_OPTIONS",
    "Pattern",
    "Action",
    "AddTagAction",
    "AssignOperatorAction",
    "AssignTeamAction",
    "BusinessHoursCondition",
    "ChannelCondition",
    "ChannelKindCondition",
    "ChannelKindName",
    "Condition",
    "ContactAttributeCondition",
    "ContactIsNewCondition",
    "Decision",
    "Facts",
    "LanguageCondition",
    "PriorityCondition",
    "PriorityName",
    "ResolveAction",
    "Rule",
    "RuleError",
    "RuleSpec",
    "SendAutoReplyAction",
    "SetPriorityAction",
    "SnoozeAction",
    "StopAction",
    "SubjectCondition",
    "TagCondition",
    "TextCondition",
    "compile_pattern",
    "load_rule",
    "parse_rule",
]

EVENTS = ("message_received", "conversation_created")
MAX_PATTERN_LENGTH = 500

Event = Literal["message_received", "conversation_created"]
# Literals rather than the domain enums: strict validation of a decoded JSON dict accepts a str for
# a Literal but only an enum instance for an enum field. A test keeps them equal to the enums.
PriorityName = Literal["low", "normal", "high", "urgent"]
ChannelKindName = Literal["api", "email", "widget", "telegram", "whatsapp"]
Ref = Annotated[str, StringConstraints(min_length=1, max_length=255)]
TagName = Annotated[str, StringConstraints(min_length=1, max_length=64, pattern=r"^\w[\w .:/-]*$")]
LanguageCode = Annotated[str, StringConstraints(pattern=r"^[a-z]{2,3}(-[A-Za-z0-9]{2,8})*$")]
Needle = Annotated[str, StringConstraints(min_length=1, max_length=MAX_PATTERN_LENGTH)]
AttributeValue = Annotated[str, StringConstraints(max_length=MAX_PATTERN_LENGTH)] | int | float | bool


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


# regular expressions


class Pattern(Protocol):
    def search(self, text: bytes | str) -> object | None: ...


RE2_OPTIONS = re2.Options()
"""How every rule pattern is compiled: checked with these on save, matched with these by the engine."""
RE2_OPTIONS.log_errors = False  # refusals are reported to the API client, not to stderr
RE2_OPTIONS.never_capture = True  # rules only ask whether a pattern matches, never for groups

# What RE2 refuses because it cannot be matched in linear time, by the start of RE2's error text.
_UNSUPPORTED = (
    ("invalid escape sequence: \\k", "named backreferences (\\k<name>)"),
    ("invalid perl operator: (?P", "named backreferences and recursion ((?P=name), (?P>name))"),
    ("invalid perl operator: (?=", "lookahead ((?=…))"),
    ("invalid perl operator: (?!", "negative lookahead ((?!…))"),
    ("invalid perl operator: (?<=", "lookbehind ((?<=…))"),
    ("invalid perl operator: (?<!", "negative lookbehind ((?<!…))"),
    ("invalid perl operator: (?>", "atomic groups ((?>…))"),
    ("bad repetition operator: ++", "possessive quantifiers (++, *+, ?+)"),
    ("bad repetition operator: *+", "possessive quantifiers (++, *+, ?+)"),
    ("bad repetition operator: ?+", "possessive quantifiers (++, *+, ?+)"),
)


def compile_pattern(pattern: str) -> Pattern:
    """Compile a rule's pattern with RE2, or raise :class:`ValueError` with a message for people:
    RE2's own text for syntax errors, and a plain explanation for the Perl constructs it leaves out
    on purpose (backreferences and lookaround need backtracking)."""
    if len(pattern) > MAX_PATTERN_LENGTH:
        raise ValueError(f"regular expression is longer than {MAX_PATTERN_LENGTH} characters")
    try:
        return re2.compile(pattern, RE2_OPTIONS)
    except re2.error as exc:
        raw = exc.args[0] if exc.args else b""
        reason = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(raw)
    construct = next((name for prefix, name in _UNSUPPORTED if reason.startswith(prefix)), None)
    if construct is None and reason.startswith("invalid escape sequence: \\") and reason[-1:].isdigit():
        construct = "backreferences (\\1)"
    if construct is not None:
        raise ValueError(f"RE2 does not support {construct}: it matches in linear time, without backtracking")
    raise ValueError(f"invalid regular expression: {reason}")


# conditions


class ChannelCondition(_Strict):
    field: Literal["channel"]
    op: Literal["is", "is_not"]
    value: Ref


class ChannelKindCondition(_Strict):
    field: Literal["channel_kind"]
    op: Literal["is", "is_not"]
    value: ChannelKindName


class TextCondition(_Strict):
    """``contains`` ignores case (Unicode casefold, so Cyrillic too); ``matches`` is an RE2 search
    anywhere in the text, case-sensitive unless the pattern starts with ``(?i)``."""

    field: Literal["text"]
    op: Literal["contains", "not_contains", "matches"]
    value: Needle

    @field_validator("value")
    @classmethod
    def _pattern_compiles(cls, value: str, info: ValidationInfo) -> str:
        if info.data.get("op") == "matches":
            try:
                compile_pattern(value)
            except ValueError as exc:
                raise PydanticCustomError("regex", str(exc)) from None
        return value


class SubjectCondition(TextCondition):
    """As :class:`TextCondition`; a message without a subject has the empty subject."""

    field: Literal["subject"]  # type: ignore[assignment]


class ContactAttributeCondition(_Strict):
    """Attributes come from integrations, so strings compare ignoring case, but JSON types must agree
    (``"42"`` is not ``42``, ``true`` is not ``1``). ``contains`` is a substring of a string
    attribute, or an element of a list attribute. ``exists``: present, neither null nor ``""``."""

    field: Literal["contact_attribute"]
    name: Annotated[str, StringConstraints(min_length=1, max_length=64)]
    op: Literal["is", "is_not", "contains", "exists"]
    value: AttributeValue | None = Field(default=None, validate_default=True)

    @field_validator("value")
    @classmethod
    def _value_fits_op(cls, value: Any, info: ValidationInfo) -> Any:
        op = info.data.get("op")
        if op == "exists" and value is not None:
            raise PydanticCustomError("value", "'exists' takes no value")
        if op in ("is", "is_not") and value is None:
            raise PydanticCustomError("value", f"'{op}' needs a value")
        if op == "contains" and not (isinstance(value, str) and value):
            raise PydanticCustomError("value", "'contains' needs a non-empty string")
        return value


class ContactIsNewCondition(_Strict):
    field: Literal["contact_is_new"]
    op: Literal["is"] = "is"
    value: bool


class BusinessHoursCondition(_Strict):
    field: Literal["business_hours"]
    op: Literal["is"] = "is"
    value: Literal["inside", "outside"]


class PriorityCondition(_Strict):
    field: Literal["priority"]
    op: Literal["is", "is_not"]
    value: PriorityName


class TagCondition(_Strict):
    """Tags are compared exactly, as the inbox stores them."""

    field: Literal["tag"]
    op: Literal["has", "has_not"]
    value: TagName


class LanguageCondition(_Strict):
    """``"en"`` also matches ``"en-GB"``; ``"en-GB"`` only itself. An unknown language is none."""

    field: Literal["language"]
    op: Literal["is", "is_not"]
    value: LanguageCode


Condition = Annotated[
    ChannelCondition
    | ChannelKindCondition
    | TextCondition
    | SubjectCondition
    | ContactAttributeCondition
    | ContactIsNewCondition
    | BusinessHoursCondition
    | PriorityCondition
    | TagCondition
    | LanguageCondition,
    Field(discriminator="field"),
]


# actions


class AssignTeamAction(_Strict):
    type: Literal["assign_team"]
    team_id: Ref


class AssignOperatorAction(_Strict):
    type: Literal["assign_operator"]
    operator_id: Ref


class SetPriorityAction(_Strict):
    type: Literal["set_priority"]
    priority: PriorityName


class AddTagAction(_Strict):
    type: Literal["add_tag"]
    tag: TagName


class SendAutoReplyAction(_Strict):
    type: Literal["send_auto_reply"]
    template_id: Ref


class SnoozeAction(_Strict):
    type: Literal["snooze"]
    minutes: Annotated[int, Field(ge=1, le=525_600)]


class ResolveAction(_Strict):
    type: Literal["resolve"]


class StopAction(_Strict):
    """Control flow, the same as the rule's ``stop``; it never reaches :attr:`Decision.actions`."""

    type: Literal["stop"]


Action = Annotated[
    AssignTeamAction
    | AssignOperatorAction
    | SetPriorityAction
    | AddTagAction
    | SendAutoReplyAction
    | SnoozeAction
    | ResolveAction
    | StopAction,
    Field(discriminator="type"),
]


def _tags(union: Any, key: str) -> tuple[str, ...]:
    return tuple(get_args(member.model_fields[key].annotation)[0] for member in get_args(get_args(union)[0]))


CONDITION_FIELDS = _tags(Condition, "field")
ACTION_TYPES = _tags(Action, "type")


# rules


class RuleSpec(_Strict):
    """A rule as the API accepts it; the store assigns the id (:meth:`with_id`). With no conditions
    a rule always matches, whether ``match`` is ``all`` or ``any``."""

    name: Annotated[str, StringConstraints(min_length=1, max_length=200)]
    position: Annotated[int, Field(ge=0)]
    enabled: bool = True
    event: Event
    match: Literal["all", "any"] = "all"
    conditions: Annotated[list[Condition], Field(max_length=50)]
    actions: Annotated[list[Action], Field(min_length=1, max_length=20)]
    stop: bool = False

    def with_id(self, rule_id: str) -> Rule:
        return Rule.model_validate({**self.model_dump(), "id": rule_id})


class Rule(RuleSpec):
    id: Ref


_M = TypeVar("_M", bound=RuleSpec)


class RuleError(ValueError):
    """Why a rule was refused: ``errors`` is a list of ``{"loc": "conditions.0.value", "message": …}``."""

    def __init__(self, errors: list[dict[str, str]]) -> None:
        super().__init__("; ".join(f"{e['loc'] or 'rule'}: {e['message']}" for e in errors))
        self.errors = errors


def parse_rule(data: Mapping[str, Any]) -> RuleSpec:
    """Validate a rule sent to the API (no id)."""
    return _validate(RuleSpec, data)


def load_rule(data: Mapping[str, Any]) -> Rule:
    """Validate a stored rule (with id); the store's JSON meets the same checks as the API's."""
    return _validate(Rule, data)


def _validate(model: type[_M], data: Mapping[str, Any]) -> _M:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise RuleError([_readable(error, data) for error in exc.errors(include_url=False)]) from None


_TAGGED = {"conditions": ("field", "condition field"), "actions": ("type", "action type")}


def _readable(error: Any, data: Any) -> dict[str, str]:
    """One pydantic error as the API shows it: the path without pydantic's union tag segment
    (``conditions.0.text.op`` → ``conditions.0.op``), and messages that name the rule's terms."""
    loc: list[str | int] = list(error["loc"])
    kind, message = error["type"], error["msg"]
    tagged = _TAGGED.get(loc[0]) if loc and isinstance(loc[0], str) else None
    index = loc[1] if len(loc) >= 2 else None
    if tagged and isinstance(index, int):
        key, what = tagged
        if kind in ("union_tag_invalid", "union_tag_not_found"):
            expected = ", ".join(CONDITION_FIELDS if key == "field" else ACTION_TYPES)
            given = error.get("ctx", {}).get("tag")
            message = f"unknown {what} '{given}'" if given is not None else f"'{key}' is missing"
            message += f"; expected one of: {expected}"
            loc = [*loc[:2], key]
        elif len(loc) >= 3 and loc[2] == _item_key(data, loc[0], index, key):
            tag = loc.pop(2)
            if kind == "literal_error" and loc[2:] == ["op"]:
                message = f"'{error['input']}' is not an operator for '{tag}'; use {error['ctx']['expected']}"
    if kind == "extra_forbidden":
        message = "unknown field"
    return {"loc": ".".join(str(part) for part in loc), "message": message}


def _item_key(data: Any, list_name: Any, index: int, key: str) -> Any:
    try:
        return data[list_name][index][key]
    except (TypeError, KeyError, IndexError):
        return None


# what a decision reads and gives


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class Facts:
    """What a rule sees of one event. ``language`` is whatever the caller knows best (the contact's
    setting, the widget's locale); None: the engine guesses it from the text with
    :func:`routing.language.detect_language`, and only if a rule asks, so a caller need not guess
    it up front. An empty string is a language known to be unknown: it matches no ``is`` and is
    not guessed."""

    event: str
    channel_id: str
    channel_kind: str
    text: str
    subject: str | None = None
    contact_attributes: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    contact_is_new: bool = False
    inside_business_hours: bool
    priority: str = "normal"
    tags: frozenset[str] = frozenset()
    language: str | None = None

    def __post_init__(self) -> None:
        if self.event not in EVENTS:  # a misspelt event would silently match no rule
            raise ValueError(f"unknown event {self.event!r}; expected one of {', '.join(EVENTS)}")


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class Decision:
    """Matched rule ids and the actions to apply, both in rule order; the executor applies actions
    in order, so a later ``assign_team`` overrides an earlier one. ``stopped_by`` names the rule
    that ended evaluation, if one did."""

    matched: tuple[str, ...] = ()
    actions: tuple[Action, ...] = ()
    stopped_by: str | None = None
