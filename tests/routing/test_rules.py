"""Routing rules: the JSON shape and its refusals, each condition and operator, order and stop."""

from __future__ import annotations

import json
from typing import Any, get_args

import pytest

from inbox.domain import ChannelKind, Priority
from routing import rules as rules_module
from routing.rules import (
    ACTION_TYPES,
    CONDITION_FIELDS,
    AddTagAction,
    AssignTeamAction,
    ChannelKindName,
    CompiledRules,
    Decision,
    Facts,
    PriorityName,
    ResolveAction,
    Rule,
    RuleError,
    RuleSpec,
    SetPriorityAction,
    compile_pattern,
    detect_language,
    evaluate,
    load_rule,
    parse_rule,
)

RESOLVE = {"type": "resolve"}


def spec(**overrides: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "name": "rule",
        "position": 0,
        "event": "message_received",
        "conditions": [],
        "actions": [RESOLVE],
    }
    return data | overrides


def rule(rule_id: str = "r1", *conditions: dict[str, Any], **overrides: Any) -> Rule:
    return load_rule(spec(conditions=list(conditions), **overrides) | {"id": rule_id})


def facts(**overrides: Any) -> Facts:
    values: dict[str, Any] = {
        "event": "message_received",
        "channel_id": "ch-mail",
        "channel_kind": "email",
        "text": "Hello, my order is late",
        "inside_business_hours": True,
    }
    return Facts(**(values | overrides))


def fires(condition: dict[str, Any], **fact_overrides: Any) -> bool:
    return evaluate([rule("r1", condition)], facts(**fact_overrides)).matched == ("r1",)


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


# conditions


@pytest.mark.parametrize(
    ("condition", "overrides", "expected"),
    [
        ({"field": "channel", "op": "is", "value": "ch-mail"}, {}, True),
        ({"field": "channel", "op": "is", "value": "ch-tg"}, {}, False),
        ({"field": "channel", "op": "is_not", "value": "ch-tg"}, {}, True),
        ({"field": "channel", "op": "is_not", "value": "ch-mail"}, {}, False),
        ({"field": "channel_kind", "op": "is", "value": "email"}, {}, True),
        ({"field": "channel_kind", "op": "is", "value": "telegram"}, {}, False),
        ({"field": "channel_kind", "op": "is_not", "value": "widget"}, {}, True),
        ({"field": "channel_kind", "op": "is", "value": "whatsapp"}, {"channel_kind": ChannelKind.WHATSAPP}, True),
        ({"field": "text", "op": "contains", "value": "ORDER"}, {}, True),
        ({"field": "text", "op": "contains", "value": "refund"}, {}, False),
        ({"field": "text", "op": "not_contains", "value": "refund"}, {}, True),
        ({"field": "text", "op": "not_contains", "value": "Order"}, {}, False),
        ({"field": "text", "op": "matches", "value": r"order\s+is"}, {}, True),
        ({"field": "text", "op": "matches", "value": r"ORDER"}, {}, False),
        ({"field": "text", "op": "matches", "value": r"(?i)ORDER"}, {}, True),
        ({"field": "subject", "op": "contains", "value": "invoice"}, {"subject": "Your INVOICE"}, True),
        ({"field": "subject", "op": "contains", "value": "invoice"}, {}, False),
        ({"field": "subject", "op": "not_contains", "value": "invoice"}, {}, True),
        ({"field": "subject", "op": "matches", "value": "^$"}, {}, True),
        ({"field": "subject", "op": "matches", "value": r"^\[#\d+\]"}, {"subject": "[#42] Re: order"}, True),
        ({"field": "subject", "op": "matches", "value": r"^\[#\d+\]"}, {"subject": "Re: [#42]"}, False),
        ({"field": "contact_is_new", "value": True}, {"contact_is_new": True}, True),
        ({"field": "contact_is_new", "value": True}, {}, False),
        ({"field": "contact_is_new", "value": False}, {}, True),
        ({"field": "business_hours", "value": "inside"}, {}, True),
        ({"field": "business_hours", "value": "outside"}, {}, False),
        ({"field": "business_hours", "op": "is", "value": "outside"}, {"inside_business_hours": False}, True),
        ({"field": "priority", "op": "is", "value": "normal"}, {}, True),
        ({"field": "priority", "op": "is", "value": "high"}, {"priority": Priority.HIGH}, True),
        ({"field": "priority", "op": "is_not", "value": "urgent"}, {}, True),
        ({"field": "priority", "op": "is_not", "value": "normal"}, {}, False),
        ({"field": "tag", "op": "has", "value": "vip"}, {"tags": frozenset({"vip", "b2b"})}, True),
        ({"field": "tag", "op": "has", "value": "vip"}, {"tags": frozenset({"VIP"})}, False),
        ({"field": "tag", "op": "has_not", "value": "vip"}, {}, True),
        ({"field": "tag", "op": "has_not", "value": "vip"}, {"tags": frozenset({"vip"})}, False),
        ({"field": "language", "op": "is", "value": "ru"}, {"language": "ru"}, True),
        ({"field": "language", "op": "is", "value": "en"}, {"language": "en-GB"}, True),
        ({"field": "language", "op": "is", "value": "en"}, {"language": "en_US"}, True),
        ({"field": "language", "op": "is", "value": "en-gb"}, {"language": "en-GB"}, True),
        ({"field": "language", "op": "is", "value": "en-GB"}, {"language": "en"}, False),
        ({"field": "language", "op": "is", "value": "en"}, {"language": "eo"}, False),
        ({"field": "language", "op": "is", "value": "ru"}, {}, False),
        ({"field": "language", "op": "is_not", "value": "ru"}, {}, True),
        ({"field": "language", "op": "is_not", "value": "ru"}, {"language": "ru"}, False),
    ],
)
def test_condition(condition: dict[str, Any], overrides: dict[str, Any], expected: bool) -> None:
    assert fires(condition, **overrides) is expected


ATTRIBUTES = {
    "plan": "Premium",
    "seats": 12,
    "ratio": 0.5,
    "trial": False,
    "empty": "",
    "none": None,
    "langs": ["RU", "en"],
}


@pytest.mark.parametrize(
    ("name", "op", "value", "expected"),
    [
        ("plan", "is", "premium", True),
        ("plan", "is", "basic", False),
        ("plan", "is_not", "basic", True),
        ("plan", "is_not", "PREMIUM", False),
        ("missing", "is_not", "basic", True),
        ("missing", "is", "basic", False),
        ("seats", "is", 12, True),
        ("seats", "is", 12.0, True),
        ("seats", "is", "12", False),
        ("ratio", "is", 0.5, True),
        ("trial", "is", False, True),
        ("trial", "is", 0, False),
        ("seats", "is", True, False),
        ("plan", "contains", "REM", True),
        ("plan", "contains", "gold", False),
        ("langs", "contains", "ru", True),
        ("langs", "contains", "r", False),
        ("seats", "contains", "1", False),
        ("plan", "exists", None, True),
        ("seats", "exists", None, True),
        ("trial", "exists", None, True),
        ("empty", "exists", None, False),
        ("none", "exists", None, False),
        ("missing", "exists", None, False),
    ],
)
def test_contact_attribute(name: str, op: str, value: Any, expected: bool) -> None:
    condition: dict[str, Any] = {"field": "contact_attribute", "name": name, "op": op}
    if value is not None:
        condition["value"] = value
    assert fires(condition, contact_attributes=ATTRIBUTES) is expected


def test_russian_text_contains_ignores_case() -> None:
    text = "Здравствуйте! ХОЧУ ВЕРНУТЬ ДЕНЬГИ за заказ"
    assert fires({"field": "text", "op": "contains", "value": "хочу вернуть"}, text=text)
    assert fires({"field": "text", "op": "contains", "value": "Деньги"}, text=text)
    assert fires({"field": "text", "op": "not_contains", "value": "доставка"}, text=text)
    assert fires({"field": "subject", "op": "contains", "value": "straße"}, subject="STRASSE 5")  # casefold, not lower
    assert fires({"field": "text", "op": "matches", "value": "(?i)вернуть\\s+деньги"}, text=text)
    assert not fires({"field": "text", "op": "matches", "value": "вернуть деньги"}, text=text)


def test_patterns_run_on_re2() -> None:
    """\\p{Cyrillic} is RE2 syntax that Python's re refuses, so a match proves RE2 ran it."""
    assert fires({"field": "text", "op": "matches", "value": r"^\p{Cyrillic}+$"}, text="Привет")
    assert not fires({"field": "text", "op": "matches", "value": r"^\p{Cyrillic}+$"}, text="Hello")


def test_a_pathological_pattern_is_linear_on_re2() -> None:
    text = "a" * 100_000 + "!"
    assert not fires({"field": "text", "op": "matches", "value": "(a+)+$"}, text=text)
    assert fires({"field": "text", "op": "matches", "value": "(a+)+!$"}, text=text)
    assert not fires({"field": "text", "op": "matches", "value": "^(a|aa)+$"}, text=text)


def test_many_patterns_share_one_pass_and_stay_apart() -> None:
    conditions = [{"field": "text", "op": "matches", "value": f"order {n}$"} for n in range(30)]
    rules = [rule(f"r{n:02}", c, position=n) for n, c in enumerate(conditions)]
    rules.append(rule("same", conditions[7], position=99))  # a repeated pattern is matched once
    rules.append(rule("subj", {"field": "subject", "op": "matches", "value": "order 7$"}, position=100))
    assert evaluate(rules, facts(text="my order 7")).matched == ("r07", "same")
    assert evaluate(rules, facts(text="my order 7", subject="order 7")).matched == ("r07", "same", "subj")
    assert evaluate(rules, facts(text="nothing")).matched == ()


def test_pattern_set_falls_back_when_re2_set_gives_up() -> None:
    """RE2::Set reports no match at all when its DFA runs out of memory; the patterns then run singly."""
    patterns = rules_module._PatternSet(["order", "refund"])

    class GaveUp:
        def Match(self, text: bytes) -> None:  # noqa: N802 - RE2's name
            return None

    patterns._set = GaveUp()  # type: ignore[assignment]
    assert patterns.hits(b"refund my order") == frozenset({0, 1})
    assert patterns.hits(b"refund") == frozenset({1})


# combining rules


def test_all_and_any() -> None:
    new = {"field": "contact_is_new", "value": True}
    email = {"field": "channel_kind", "op": "is", "value": "email"}
    assert not evaluate([rule("r1", new, email)], facts()).matched
    assert evaluate([rule("r1", new, email, match="any")], facts()).matched == ("r1",)
    assert evaluate([rule("r1", new, email)], facts(contact_is_new=True)).matched == ("r1",)
    outside = {"field": "business_hours", "value": "outside"}
    assert not evaluate([rule("r1", new, outside, match="any")], facts()).matched


def test_no_conditions_always_match() -> None:
    assert evaluate([rule("r1"), rule("r2", match="any", position=1)], facts()).matched == ("r1", "r2")


def test_order_is_position_then_id_and_actions_follow_it() -> None:
    rules = [
        rule("b", position=2, actions=[{"type": "add_tag", "tag": "b"}]),
        rule("c", position=1, actions=[{"type": "add_tag", "tag": "c"}, {"type": "set_priority", "priority": "high"}]),
        rule("a", position=2, actions=[{"type": "add_tag", "tag": "a"}]),
    ]
    decision = evaluate(rules, facts())
    assert decision == Decision(
        matched=("c", "a", "b"),
        actions=(
            AddTagAction(type="add_tag", tag="c"),
            SetPriorityAction(type="set_priority", priority="high"),
            AddTagAction(type="add_tag", tag="a"),
            AddTagAction(type="add_tag", tag="b"),
        ),
    )
    assert CompiledRules(rules).rule_ids == ("c", "a", "b")


def test_stop_on_the_rule_or_as_an_action() -> None:
    team = {"type": "assign_team", "team_id": "t1"}
    first = [rule("r1", actions=[team], stop=True), rule("r2", position=1)]
    assert evaluate(first, facts()) == Decision(
        matched=("r1",), actions=(AssignTeamAction(type="assign_team", team_id="t1"),), stopped_by="r1"
    )
    by_action = [rule("r1", actions=[{"type": "stop"}, team]), rule("r2", position=1)]
    decision = evaluate(by_action, facts())
    assert decision.matched == ("r1",) and decision.stopped_by == "r1"
    assert decision.actions == (AssignTeamAction(type="assign_team", team_id="t1"),)  # stop is not an action to apply


def test_a_stop_rule_that_does_not_match_stops_nothing() -> None:
    rules = [rule("r1", {"field": "contact_is_new", "value": True}, stop=True), rule("r2", position=1)]
    assert evaluate(rules, facts()) == Decision(matched=("r2",), actions=(ResolveAction(type="resolve"),))


def test_disabled_rules_are_skipped() -> None:
    rules = [rule("r1", enabled=False, stop=True), rule("r2", position=1)]
    assert evaluate(rules, facts()).matched == ("r2",)
    assert len(CompiledRules(rules)) == 1


def test_rules_only_see_their_event() -> None:
    rules = [rule("created", event="conversation_created"), rule("received", position=1)]
    compiled = CompiledRules(rules)
    assert compiled.evaluate(facts()).matched == ("received",)
    assert compiled.evaluate(facts(event="conversation_created")).matched == ("created",)
    assert evaluate(compiled, facts()).matched == ("received",)
    with pytest.raises(ValueError, match="unknown event 'message_recieved'"):
        facts(event="message_recieved")


def test_compiled_rules_are_reused_across_messages() -> None:
    compiled = CompiledRules([rule("r1", {"field": "text", "op": "matches", "value": "(?i)refund"})])
    assert [compiled.evaluate(facts(text=t)).matched for t in ("Refund!", "hello", "a refund")] == [
        ("r1",),
        (),
        ("r1",),
    ]


# language


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Здравствуйте, не приходит письмо", "ru"),
        ("Hello, the email never arrives", "en"),
        ("Не работает iPhone после обновления iOS", "ru"),
        ("Посмотрите https://example.com/some/long/english/path и support@example.com", "ru"),
        ("Ok", None),
        ("да", None),
        ("", None),
        (None, None),
        ("12345 !!! 678", None),
        ("Привет hello", None),
        ("Grüße aus München", "en"),
    ],
)
def test_detect_language_by_script(text: str | None, expected: str | None) -> None:
    assert detect_language(text) == expected
