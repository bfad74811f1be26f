"""Routing rules: the JSON shape and its refusals."""

from __future__ import annotations

import json
from typing import Any, get_args

import pytest

from inbox.domain import ChannelKind, Priority
from routing.rules import (
    ACTION_TYPES,
    CONDITION_FIELDS,
    ChannelKindName,
    PriorityName,
    Rule,
    RuleError,
    RuleSpec,
    compile_pattern,
    load_rule,
    parse_rule,
)
from tests.routing.rule_specs import RESOLVE, spec


def errors(data: Any) -> list[dict[str, str]]:
    with pytest.raises(RuleError) as caught:
        parse_rule(data)
    return caught.value.errors


# shape


def test_a_rule_round_trips_through_json() -> None:
    data = spec(
        match="any",
        stop=True,
        conditions=[
            {"field": "text", "op": "matches", "value": r"(?i)\border\s+\d+"},
            {"field": "contact_attribute", "name": "plan", "op": "exists"},
            {"field": "business_hours", "value": "outside"},
        ],
        actions=[{"type": "assign_team", "team_id": "t1"}, {"type": "snooze", "minutes": 60}, RESOLVE],
    )
    parsed = parse_rule(data)
    assert isinstance(parsed, RuleSpec) and not isinstance(parsed, Rule)
    stored = parsed.with_id("r9")
    assert stored.id == "r9" and stored.conditions == parsed.conditions
    dumped = json.loads(stored.model_dump_json())
    assert dumped["conditions"][2] == {"field": "business_hours", "op": "is", "value": "outside"}
    assert load_rule(dumped) == stored


def test_the_literals_match_the_domain_enums() -> None:
    assert set(get_args(PriorityName)) == {p.value for p in Priority}
    assert set(get_args(ChannelKindName)) == {k.value for k in ChannelKind}


def test_every_action_type_parses() -> None:
    actions = [
        {"type": "assign_team", "team_id": "t1"},
        {"type": "assign_operator", "operator_id": "o1"},
        {"type": "set_priority", "priority": "urgent"},
        {"type": "add_tag", "tag": "billing"},
        {"type": "send_auto_reply", "template_id": "tpl1"},
        {"type": "snooze", "minutes": 525_600},
        {"type": "resolve"},
        {"type": "stop"},
    ]
    parsed = parse_rule(spec(actions=actions))
    assert [a.type for a in parsed.actions] == list(ACTION_TYPES)


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (spec(colour="red"), [{"loc": "colour", "message": "unknown field"}]),
        (
            spec(conditions=[{"field": "channel", "op": "is", "value": "c", "extra": 1}]),
            [{"loc": "conditions.0.extra", "message": "unknown field"}],
        ),
        (
            spec(conditions=[{"field": "text", "op": "is", "value": "x"}]),
            [
                {
                    "loc": "conditions.0.op",
                    "message": "'is' is not an operator for 'text'; use 'contains', 'not_contains' or 'matches'",
                }
            ],
        ),
        (
            spec(conditions=[{"field": "tag", "op": "contains", "value": "vip"}]),
            [{"loc": "conditions.0.op", "message": "'contains' is not an operator for 'tag'; use 'has' or 'has_not'"}],
        ),
        (
            spec(actions=[{"type": "snooze", "minutes": 0}]),
            [{"loc": "actions.0.minutes", "message": "Input should be greater than or equal to 1"}],
        ),
        (
            spec(actions=[{"type": "snooze", "minutes": 525_601}]),
            [{"loc": "actions.0.minutes", "message": "Input should be less than or equal to 525600"}],
        ),
        (spec(actions=[]), [{"loc": "actions", "message": "List should have at least 1 item after validation, not 0"}]),
        (spec(position="1"), [{"loc": "position", "message": "Input should be a valid integer"}]),
        (spec(enabled="yes"), [{"loc": "enabled", "message": "Input should be a valid boolean"}]),
        (
            spec(conditions=[{"field": "contact_attribute", "name": "plan", "op": "exists", "value": "x"}]),
            [{"loc": "conditions.0.value", "message": "'exists' takes no value"}],
        ),
        (
            spec(conditions=[{"field": "contact_attribute", "name": "plan", "op": "is"}]),
            [{"loc": "conditions.0.value", "message": "'is' needs a value"}],
        ),
        (
            spec(conditions=[{"field": "contact_attribute", "name": "plan", "op": "contains", "value": 3}]),
            [{"loc": "conditions.0.value", "message": "'contains' needs a non-empty string"}],
        ),
        ([1], [{"loc": "", "message": "Input should be a valid dictionary or instance of RuleSpec"}]),
    ],
    ids=lambda value: "" if isinstance(value, list) else None,
)
def test_refusals_name_the_place(data: Any, expected: list[dict[str, str]]) -> None:
    assert errors(data) == expected


def test_unknown_condition_field_and_action_type() -> None:
    found = errors(spec(conditions=[{"field": "mood", "op": "is", "value": "x"}], actions=[{"type": "explode"}]))
    assert [e["loc"] for e in found] == ["conditions.0.field", "actions.0.type"]
    assert found[0]["message"].startswith("unknown condition field 'mood'; expected one of: channel, channel_kind")
    assert found[1]["message"].startswith("unknown action type 'explode'; expected one of: assign_team")
    missing = errors(spec(conditions=[{"op": "is", "value": "x"}]))
    assert missing[0]["loc"] == "conditions.0.field" and missing[0]["message"].startswith("'field' is missing")
    assert set(CONDITION_FIELDS) >= {"channel", "text", "language"}


def test_wrong_value_type_for_a_field() -> None:
    found = errors(spec(conditions=[{"field": "priority", "op": "is", "value": "critical"}]))
    assert found == [{"loc": "conditions.0.value", "message": "Input should be 'low', 'normal', 'high' or 'urgent'"}]
    found = errors(spec(conditions=[{"field": "contact_is_new", "value": "true"}]))
    assert found == [{"loc": "conditions.0.value", "message": "Input should be a valid boolean"}]


@pytest.mark.parametrize(
    ("pattern", "message"),
    [
        ("(order", "invalid regular expression: missing ): (order"),
        ("[z-a]", "invalid regular expression: invalid character class range: z-a"),
        (r"(a)\1", "RE2 does not support backreferences (\\1): it matches in linear time, without backtracking"),
        (r"(?P<n>a)(?P=n)", "RE2 does not support named backreferences and recursion"),
        (r"(?P<n>a)\k<n>", "RE2 does not support named backreferences (\\k<name>)"),
        ("foo(?=bar)", "RE2 does not support lookahead ((?=…))"),
        ("foo(?!bar)", "RE2 does not support negative lookahead ((?!…))"),
        ("(?<=a)b", "RE2 does not support lookbehind ((?<=…))"),
        ("(?<!a)b", "RE2 does not support negative lookbehind ((?<!…))"),
        ("a++", "RE2 does not support possessive quantifiers"),
    ],
)
def test_bad_patterns_are_refused_on_save(pattern: str, message: str) -> None:
    for field in ("text", "subject"):
        found = errors(spec(conditions=[{"field": field, "op": "matches", "value": pattern}]))
        assert len(found) == 1 and found[0]["loc"] == "conditions.0.value"
        assert found[0]["message"].startswith(message)


def test_too_long_patterns_are_refused() -> None:
    found = errors(spec(conditions=[{"field": "text", "op": "matches", "value": "a" * 501}]))
    assert found == [{"loc": "conditions.0.value", "message": "String should have at most 500 characters"}]
    parse_rule(spec(conditions=[{"field": "text", "op": "matches", "value": "a" * 500}]))
    with pytest.raises(ValueError, match="longer than 500"):
        compile_pattern("a" * 501)


def test_regex_syntax_only_matters_for_matches() -> None:
    parse_rule(spec(conditions=[{"field": "text", "op": "contains", "value": "(a)\\1"}]))


def test_stored_rules_are_checked_as_strictly() -> None:
    with pytest.raises(RuleError) as caught:
        load_rule(spec())
    assert caught.value.errors == [{"loc": "id", "message": "Field required"}]
    assert "id: Field required" in str(caught.value)
