"""The rule engine: each condition and operator, RE2's passes, order and stop, the engine against
a reference, and the language guessed only when a rule asks."""

from __future__ import annotations

import dataclasses
from typing import Any, get_args

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from inbox.domain import ChannelKind, Priority
from routing import matching
from routing.language import detect_language
from routing.matching import CompiledRules, evaluate
from routing.rules import (
    AddTagAction,
    AssignTeamAction,
    ChannelKindName,
    Decision,
    Facts,
    PriorityName,
    ResolveAction,
    Rule,
    SetPriorityAction,
    load_rule,
)
from tests.routing.rule_specs import spec


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
    patterns = matching._PatternSet(["order", "refund"])

    class GaveUp:
        def Match(self, text: bytes) -> None:  # noqa: N802 - RE2's name
            return None

    patterns._set = GaveUp()  # type: ignore[assignment]
    assert set(patterns.hits(b"refund my order")) == {0, 1}
    assert set(patterns.hits(b"refund")) == {1}


@pytest.mark.parametrize("other", [None, "σ"], ids=["one pass", "casefolded pass"])
def test_contains_ignores_case_on_either_path(other: str | None) -> None:
    """Needles and texts that fold alike in Python and RE2 are found by (?i) in the regexes' pass;
    otherwise (ß, Greek, a needle that does not) over the casefolded text. The answers are the same."""
    needles = ["возврат", "ВЕРНУТЬ ДЕНЬГИ", "straße", "ẞ", "ﬁle", "Ё", "order", "\u212a"] + ([other] if other else [])
    conditions = [{"field": "text", "op": "contains", "value": v} for v in needles]
    rules = [rule(f"r{n}", c, position=n) for n, c in enumerate(conditions)]
    rules.append(rule("subj", *({**c, "field": "subject"} for c in conditions), match="any", position=99))
    rules.append(rule("re", {"field": "text", "op": "matches", "value": "(?i)straße"}, position=100))
    compiled = CompiledRules(rules)
    one_pass = compiled._finder._scans[0].otherwise >= 0
    assert one_pass is (other is None)
    assert compiled.evaluate(facts(text="ХОЧУ ВОЗВРАТ, вернуть деньги")).matched == ("r0", "r1")
    assert compiled.evaluate(facts(text="STRASSE 5")).matched == ("r2", "r3")  # casefold, not lower: ß is ss
    assert compiled.evaluate(facts(text="Straße")).matched == ("r2", "r3", "re")  # ß: the casefolded pass
    assert compiled.evaluate(facts(text="FILE ёлка ORDERS")).matched == ("r4", "r5", "r6")
    assert compiled.evaluate(facts(text="ﬁle")).matched == ("r4",)
    assert compiled.evaluate(facts(text="\u212a k")).matched == ("r7",)  # the Kelvin sign folds to k
    assert compiled.evaluate(facts(text="", subject="Re: ВОЗВРАТ")).matched == ("subj",)
    assert compiled.evaluate(facts(text="nothing here")).matched == ()
    if other:
        assert compiled.evaluate(facts(text="ΣΟΦΊΑ")).matched == ("r8",)
        assert compiled.evaluate(facts(text="ς")).matched == ("r8",)  # final sigma folds to σ


def test_the_characters_said_to_fold_alike_do() -> None:
    """Python's casefold and RE2's (?i) agree on them, one character to one: (?i)f finds exactly the
    characters that casefold to f. Checked pair by pair, for the Python and RE2 installed."""
    chars = [chr(c) for low, high in matching._FOLDS_ALIKE for c in range(low, high + 1)]
    assert all(len(c.casefold()) == 1 for c in chars)
    folding_to: dict[str, set[str]] = {}
    for c in chars:
        folding_to.setdefault(c.casefold(), set()).add(c)
    everything = "".join(chars)
    re2 = matching.re2
    for f in chars:
        if f.casefold() == f:
            assert {m.group() for m in re2.compile("(?i)" + re2.escape(f)).finditer(everything)} == folding_to[f], f
    otherwise = re2.compile(matching._FOLDS_OTHERWISE)
    assert otherwise.search(everything) is None
    edges = {chr(c) for low, high in matching._FOLDS_ALIKE for c in (low - 1, high + 1) if c >= 0}
    assert all(otherwise.search(c) for c in edges - set(chars))
    assert all(otherwise.search(c) for c in "ßİŉ\u0301Σς\u212a\u1c80\U0001fb00")
    assert matching._folds_alike("возврат strasse") and not matching._folds_alike("σ")


def test_a_literal_pattern_set_falls_back_too() -> None:
    needles = ["возврат", "refund", "order", "ß", "straße", "a\x00b"]
    patterns = matching._PatternSet([n.casefold() for n in needles], literal=True)

    class GaveUp:
        def Match(self, text: bytes) -> None:  # noqa: N802 - RE2's name
            return None

    folded = "Refund my ORDER, возврат Straße a\x00b".casefold().encode()
    found = set(patterns.hits(folded))
    patterns._set = GaveUp()  # type: ignore[assignment]
    assert set(patterns.hits(folded)) == found - {len(needles)} == {0, 1, 2, 3, 4, 5}


def test_pattern_sets_run_one_by_one_when_re2_cannot_build_them() -> None:
    options = matching.re2.Options()
    options.max_mem = 1 << 10  # far too little for these patterns
    assert matching._search_set([f"(?i)order\\s+#?{n}\\d+" for n in range(200)], options) == (None, -1)


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
    texts = ("Refund!", "hello", "a refund", "hello", "Refund!", "refund " * 40)  # short ones are remembered
    assert [compiled.evaluate(facts(text=t)).matched for t in texts] == [
        ("r1",),
        (),
        ("r1",),
        (),
        ("r1",),
        ("r1",),
    ]


# the engine against a reference

CHANNELS = ("ch-1", "ch-2")
KINDS = get_args(ChannelKindName)
PRIORITIES = get_args(PriorityName)
TAGS = ("vip", "spam", "b2b")
LANGUAGES = ("ru", "en", "en-gb", "en-GB", "de")
# needles that fold alike in Python and RE2 (found in the regexes' pass), then words that do not
ALIKE = tuple("возврат ВОЗВРАТ Возврат деньги Straße STRASSE strasse ẞ order ORDER ёлка ЁЛКА ﬁle FILE".split())
ALIKE += tuple("12345 #42 Ok i I k ſ \u212a «ok» ₽ 👍".split())
WORDS = ALIKE + ("ß", "σοφία", "ΣΟΦΊΑ", "ς", "İ", "ı", "µ", "е\u0301", "\u1c80")
PATTERNS = ("(?i)возврат", "ВОЗВРАТ", "(?i)straße", "^$", r"order\s+#?\d+", r"^\p{Cyrillic}", "(?i)^re:", "ß|ss")
ATTRIBUTE_SETS: tuple[dict[str, Any], ...] = (
    {},
    {"plan": "Premium", "seats": 12, "langs": ["RU", "en"]},
    {"plan": "", "seats": 12.0, "trial": False, "none": None},
    {"plan": "ENTERPRISE", "seats": "12", "trial": 0, "langs": "ru, en"},
)

words = st.sampled_from(WORDS)
needles = st.sampled_from(ALIKE) | words | st.text(st.characters(codec="utf-8"), min_size=1, max_size=3)
texts = st.one_of(  # mixed scripts, and texts detect_language can tell: Russian, English
    st.lists(words | st.text(st.characters(codec="utf-8"), max_size=4), max_size=6).map(" ".join),
    st.lists(st.sampled_from(("Здравствуйте", "ВОЗВРАТ", "ёлка", "order", "12345")), min_size=1, max_size=4).map(
        " ".join
    ),
    st.lists(st.sampled_from(("Hello", "ORDER", "Straße", "FILE", "возврат")), min_size=1, max_size=4).map(" ".join),
)

conditions = st.one_of(
    st.builds(dict, field=st.just("channel"), op=st.sampled_from(["is", "is_not"]), value=st.sampled_from(CHANNELS)),
    st.builds(dict, field=st.just("channel_kind"), op=st.sampled_from(["is", "is_not"]), value=st.sampled_from(KINDS)),
    st.builds(
        dict,
        field=st.sampled_from(["text", "subject"]),
        op=st.sampled_from(["contains", "not_contains"]),
        value=needles,
    ),
    st.builds(dict, field=st.sampled_from(["text", "subject"]), op=st.just("matches"), value=st.sampled_from(PATTERNS)),
    st.builds(
        dict,
        field=st.just("contact_attribute"),
        name=st.sampled_from(["plan", "seats", "trial", "langs", "none", "missing"]),
        op=st.sampled_from(["is", "is_not"]),
        value=st.sampled_from(["premium", "enterprise", "", 12, 12.5, False, True, "12"]),
    ),
    st.builds(
        dict,
        field=st.just("contact_attribute"),
        name=st.sampled_from(["plan", "langs", "seats"]),
        op=st.just("contains"),
        value=st.sampled_from(["ru", "REM", "enter", "1"]),
    ),
    st.builds(
        dict, field=st.just("contact_attribute"), name=st.sampled_from(["plan", "none", "trial"]), op=st.just("exists")
    ),
    st.builds(dict, field=st.just("contact_is_new"), value=st.booleans()),
    st.builds(dict, field=st.just("business_hours"), value=st.sampled_from(["inside", "outside"])),
    st.builds(dict, field=st.just("priority"), op=st.sampled_from(["is", "is_not"]), value=st.sampled_from(PRIORITIES)),
    st.builds(dict, field=st.just("tag"), op=st.sampled_from(["has", "has_not"]), value=st.sampled_from(TAGS)),
    st.builds(dict, field=st.just("language"), op=st.sampled_from(["is", "is_not"]), value=st.sampled_from(LANGUAGES)),
)

rule_specs: st.SearchStrategy[dict[str, Any]] = st.builds(
    dict,
    event=st.sampled_from(["message_received", "conversation_created"]),
    position=st.integers(0, 3),
    enabled=st.booleans() | st.just(True),
    match=st.sampled_from(["all", "any"]),
    stop=st.booleans(),
    conditions=st.lists(conditions, max_size=4),
    actions=st.lists(
        st.sampled_from([{"type": "resolve"}, {"type": "stop"}, {"type": "add_tag", "tag": "x"}]),
        min_size=1,
        max_size=2,
    ),
)

facts_values: st.SearchStrategy[dict[str, Any]] = st.builds(
    dict,
    event=st.sampled_from(["message_received", "conversation_created"]),
    channel_id=st.sampled_from(CHANNELS),
    channel_kind=st.sampled_from(KINDS),
    text=texts,
    subject=st.none() | texts,
    contact_attributes=st.sampled_from(ATTRIBUTE_SETS),
    contact_is_new=st.booleans(),
    inside_business_hours=st.booleans(),
    priority=st.sampled_from(PRIORITIES),
    tags=st.frozensets(st.sampled_from(TAGS)),
    language=st.sampled_from([None, None, "", "ru", "en", "en-GB", "en_US", "de"]),
)


def reference(rules: list[Rule], f: Facts) -> Decision:
    """The rules read literally, one condition at a time: the oracle for :class:`CompiledRules`."""
    matched: list[str] = []
    actions: list[Any] = []
    for r in sorted((r for r in rules if r.enabled and r.event == f.event), key=lambda r: (r.position, r.id)):
        results = [holds(c.model_dump(), f) for c in r.conditions]
        if not (any(results) if r.match == "any" and results else all(results)):
            continue
        matched.append(r.id)
        actions += [a for a in r.actions if a.type != "stop"]
        if r.stop or any(a.type == "stop" for a in r.actions):
            return Decision(matched=tuple(matched), actions=tuple(actions), stopped_by=r.id)
    return Decision(matched=tuple(matched), actions=tuple(actions))


def holds(c: dict[str, Any], f: Facts) -> bool:
    field, op = c["field"], c["op"]
    value: Any = c.get("value")
    positive = op in ("is", "has", "contains", "matches", "exists")
    if field in ("text", "subject"):
        haystack = f.text if field == "text" else f.subject or ""
        if op == "matches":
            return matching.re2.search(value, haystack) is not None
        return (value.casefold() in haystack.casefold()) == positive
    if field == "contact_attribute":
        actual = f.contact_attributes.get(c["name"])
        if op == "exists":
            return actual not in (None, "")
        if op == "contains":
            if isinstance(actual, str):
                return value.casefold() in actual.casefold()
            return isinstance(actual, list) and any(same(item, value) for item in actual)
        return same(actual, value) == positive
    if field == "language":
        language = f.language if f.language is not None else detect_language(f.text)
        language = (language or "").replace("_", "-").lower()
        wanted = value.lower()
        found = bool(language) and (language == wanted if "-" in wanted else language.split("-")[0] == wanted)
        return found == positive
    if field == "tag":
        return (value in f.tags) == positive
    actual = {
        "channel": f.channel_id,
        "channel_kind": f.channel_kind,
        "contact_is_new": f.contact_is_new,
        "business_hours": "inside" if f.inside_business_hours else "outside",
        "priority": f.priority,
    }[field]
    return (actual == value) == positive


def same(actual: Any, expected: Any) -> bool:
    """JSON types must agree (a bool is no number); strings compare casefolded."""
    if isinstance(actual, bool) or isinstance(expected, bool):
        return type(actual) is type(expected) and actual == expected
    if isinstance(expected, str):
        return isinstance(actual, str) and actual.casefold() == expected.casefold()
    return isinstance(actual, int | float) and actual == expected


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    specs=st.lists(rule_specs, min_size=1, max_size=8), more=st.booleans(), samples=st.lists(facts_values, max_size=6)
)
def test_the_engine_decides_as_the_rules_read(
    specs: list[dict[str, Any]], more: bool, samples: list[dict[str, Any]]
) -> None:
    """Every kind of condition, negations, any/all, stop and positions, against the reference. With
    ``more`` a rule adds needles that fold alike on both text fields."""
    rules = [load_rule(spec(name=f"r{n}", **s) | {"id": f"r{n}"}) for n, s in enumerate(specs)]
    if more:
        padding = [{"field": w, "op": "contains", "value": v} for w in ("text", "subject") for v in ALIKE[::3]]
        rules.append(load_rule(spec(name="pad", match="any", position=2, conditions=padding) | {"id": "pad"}))
    compiled = CompiledRules(rules)
    for values in samples:
        f = Facts(**values)
        assert compiled.evaluate(f) == reference(rules, f)
        # a message that opens a conversation: both events' rules in turn, as if one list
        first = reference(rules, dataclasses.replace(f, event="conversation_created"))
        expected = first
        if first.stopped_by is None:
            then = reference(rules, dataclasses.replace(f, event="message_received"))
            expected = Decision(
                matched=first.matched + then.matched, actions=first.actions + then.actions, stopped_by=then.stopped_by
            )
        assert compiled.evaluate_in_turn(f, ("conversation_created", "message_received")) == expected


# language detection is lazy


@pytest.fixture
def detections(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The texts :func:`detect_language` was asked about, as the engine calls it."""
    calls: list[str] = []

    def counting(text: str | None) -> str | None:
        calls.append(text or "")
        return detect_language(text)

    monkeypatch.setattr(matching, "detect_language", counting)
    return calls


RUSSIAN = "Здравствуйте, где мой заказ?"
IS_RU = {"field": "language", "op": "is", "value": "ru"}


def test_an_unknown_language_is_detected_when_a_rule_asks(detections: list[str]) -> None:
    compiled = CompiledRules([rule("ru", IS_RU), rule("not en", {**IS_RU, "op": "is_not", "value": "en"}, position=1)])
    assert compiled.evaluate(facts(text=RUSSIAN)).matched == ("ru", "not en")
    assert detections == [RUSSIAN]  # once per decision, however many rules ask
    assert compiled.evaluate(facts(text=RUSSIAN, language="en-GB")).matched == ()
    assert compiled.evaluate(facts(text=RUSSIAN, language="")).matched == ("not en",)  # known to be unknown
    assert detections == [RUSSIAN]
    assert compiled.uses_language


def test_the_language_is_not_detected_when_cheaper_conditions_decide(detections: list[str]) -> None:
    telegram = {"field": "channel_kind", "op": "is", "value": "telegram"}
    vip = {"field": "tag", "op": "has", "value": "vip"}
    compiled = CompiledRules(
        [
            rule("telegram ru", telegram, IS_RU),
            rule("ru telegram", IS_RU, telegram, position=1),  # the order of conditions does not matter
            rule("vip or ru", vip, IS_RU, match="any", position=2),
            rule("created", IS_RU, event="conversation_created", position=3),
        ]
    )
    assert compiled.evaluate(facts(text=RUSSIAN, tags=frozenset({"vip"}))).matched == ("vip or ru",)
    assert detections == []  # email fails both all rules, and the tag settles the any rule
    assert compiled.evaluate(facts(text=RUSSIAN, channel_kind="telegram")).matched == (
        "telegram ru",
        "ru telegram",
        "vip or ru",
    )
    assert detections == [RUSSIAN]
