"""The rule engine: a rule set compiled once (:class:`CompiledRules`) and reused until the rules change.

Routing decides for every inbound message, so the rules it reads are compiled, not walked. A
decision works out every condition at once, mostly in C: a dict look-up per fact compared for
equality, and one ``RE2::Set`` pass per text field for all its regexes and ``contains`` needles,
so a message is read once however many rules there are; then each rule the true conditions can
make match is a bit mask test. Regular expressions are RE2's: matching is linear in the text, so
no pattern an admin saves can stall the event loop by backtracking. This module does not import
:mod:`re` at all.

The rule language (shapes, validation, :class:`~routing.rules.Facts`,
:class:`~routing.rules.Decision`) is :mod:`routing.rules`; this module only reads rules that
passed it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from operator import attrgetter
from typing import Any

import re2

from routing.language import detect_language
from routing.rules import (
    EVENTS,
    RE2_OPTIONS,
    Action,
    BusinessHoursCondition,
    ChannelCondition,
    ChannelKindCondition,
    Condition,
    ContactAttributeCondition,
    ContactIsNewCondition,
    Decision,
    Facts,
    LanguageCondition,
    Pattern,
    PriorityCondition,
    Rule,
    StopAction,
    TagCondition,
    TextCondition,
)

__all__ = ["CompiledRules", "evaluate"]

_LITERAL_OPTIONS = re2.Options()
_LITERAL_OPTIONS.log_errors = False
_LITERAL_OPTIONS.never_capture = True
_LITERAL_OPTIONS.literal = True
_LITERAL_OPTIONS.encoding = re2.Options.Encoding.LATIN1  # bytes as they are: a needle is found byte for byte


class _PatternSet:
    """Every distinct pattern a rule set has for one field, matched in a single RE2 pass
    (``RE2::Set``), so fifty regex rules read the message once, not fifty times. With ``literal``
    the patterns are plain strings, found byte for byte in the UTF-8 they are given: UTF-8 is
    self-synchronising, so a byte match is exactly a substring match."""

    def __init__(self, patterns: Sequence[str], *, literal: bool = False) -> None:
        self.index = {pattern: i for i, pattern in enumerate(dict.fromkeys(patterns))}
        self._singles: tuple[Callable[[bytes], bool], ...]
        if literal:
            needles = [p.encode("utf-8", "surrogatepass") for p in self.index]
            self._singles = tuple(_finder(needle) for needle in needles)
            self._set, self._sentinel = _search_set(needles, _LITERAL_OPTIONS)
        else:
            self._singles = tuple(_searcher(re2.compile(p, RE2_OPTIONS)) for p in self.index)
            self._set, self._sentinel = _search_set(list(self.index), RE2_OPTIONS)

    def hits(self, utf8: bytes) -> Collection[int]:
        """The indexes of the patterns found in ``utf8``, perhaps with the sentinel's (one past the last)."""
        if self._set is not None:
            found = self._set.Match(utf8)
            if found and self._sentinel in found:
                return found
            # RE2::Set has no NFA fallback: if its DFA runs out of memory it reports no match at all.
            # The sentinel tells that apart from "nothing matched"; one by one, RE2 falls back itself.
        return [i for i, found_in in enumerate(self._singles) if found_in(utf8)]


def _search_set(patterns: Sequence[str] | Sequence[bytes], options: re2.Options) -> tuple[re2.Set | None, int]:
    """An unanchored ``RE2::Set`` of ``patterns`` plus the empty pattern, which matches every text,
    and that sentinel's index; no set if RE2 cannot build one within its memory budget."""
    patterns_set = re2.Set.SearchSet(options)
    try:
        for pattern in patterns:
            patterns_set.Add(pattern)
        sentinel = patterns_set.Add("")
        patterns_set.Compile()
    except re2.error:
        return None, -1
    return patterns_set, sentinel


def _finder(needle: bytes) -> Callable[[bytes], bool]:
    return lambda utf8: needle in utf8


def _searcher(pattern: Pattern) -> Callable[[bytes], bool]:
    return lambda utf8: pattern.search(utf8) is not None


# ``contains`` compares casefolded strings, which RE2's ``(?i)`` does not do in general: "ß" folds to
# "ss", and RE2's Unicode tables may be newer than Python's. On these characters both fold one to
# one, and alike (a test compares every pair): ASCII, Latin-1 and Latin Extended-A but ß, İ and ŉ,
# Cyrillic, and uncased punctuation, currency signs, symbols and emoji. A needle made of them is
# found in a text made of them by a (?i) pattern on the text as sent, in the pass its regexes take.
_FOLDS_ALIKE = (
    (0x0000, 0x00DE),
    (0x00E0, 0x012F),
    (0x0131, 0x0148),
    (0x014A, 0x017F),
    (0x0400, 0x052F),
    (0x2000, 0x206F),
    (0x20A0, 0x20CF),
    (0x2116, 0x2116),
    (0x2190, 0x23FF),
    (0x2500, 0x27BF),
    (0xFE00, 0xFE0F),
    (0x1F000, 0x1FAFF),
)
_FOLDS_OTHERWISE = "[^" + "".join(f"\\x{{{low:x}}}-\\x{{{high:x}}}" for low, high in _FOLDS_ALIKE) + "]"


def _folds_alike(folded: str) -> bool:
    """Whether a casefolded needle is made of characters that fold alike (and fold to themselves)."""
    return all(
        char.casefold() == char and any(low <= ord(char) <= high for low, high in _FOLDS_ALIKE) for char in folded
    )


# A decision works out every condition of the rule set at once, as the bits of one int. Each
# distinct condition is an *atom*, a fact true or false for the whole decision ("the channel kind
# is email", "the casefolded text contains «возврат»"); a negated condition (is_not, not_contains,
# has_not) is its atom's complement. Atoms come mostly from C: one dict look-up per fact compared
# for equality, one RE2::Set pass per text field (:class:`_Scan`); contact attributes, rare, are
# tested one by one, and only those the contact has. The bits hold each atom (bit a) and its
# complement (bit a + number of atoms), so a rule is a mask: ``all`` needs every bit of it, ``any``
# one. The language is a second family of atoms, worked out only when a rule gets that far:
# detecting it costs as much as dozens of rules.

_KNOWN_LENGTH, _KNOWN_VALUES = 200, 4096  # short values (subjects) a scan remembers, and how many

_Atom = tuple[str, Any]  # what an atom compares and with what: ("channel_kind", "email")
_EQUALITY = ("channel_id", "channel_kind", "contact_is_new", "inside_business_hours", "priority")  # Facts fields


def _atom(c: Condition) -> tuple[_Atom, bool]:
    """A condition's atom and whether the condition is its complement."""
    match c:
        case ChannelCondition(op=op, value=v):
            return ("channel_id", v), op == "is_not"
        case ChannelKindCondition(op=op, value=v):
            return ("channel_kind", v), op == "is_not"
        case TextCondition(field=where, op="matches", value=v):  # also SubjectCondition
            return (f"{where} matches", v), False
        case TextCondition(field=where, op=op, value=v):
            return (f"{where} contains", v.casefold()), op == "not_contains"
        case ContactAttributeCondition(name=name, op=op, value=v):
            # typed: as dict keys 1, 1.0 and True are one, as attribute values they are not
            return ("contact_attribute", (name, "is" if op == "is_not" else op, type(v), v)), op == "is_not"
        case ContactIsNewCondition(value=v):
            return ("contact_is_new", v), False
        case BusinessHoursCondition(value=v):
            return ("inside_business_hours", v == "inside"), False
        case PriorityCondition(op=op, value=v):
            return ("priority", v), op == "is_not"
        case TagCondition(op=op, value=v):
            return ("tags", v), op == "has_not"
        case LanguageCondition(op=op, value=v):
            return ("language", v.lower()), op == "is_not"
    raise TypeError(f"no atom for {c!r}")  # pragma: no cover - the union is closed


def _same(actual: Any, expected: str | int | float | bool) -> bool:
    if isinstance(expected, bool) or isinstance(actual, bool):
        return type(actual) is type(expected) and actual == expected
    if isinstance(expected, str):
        return isinstance(actual, str) and actual.casefold() == expected.casefold()
    return isinstance(actual, int | float) and actual == expected


def _attribute_test(op: str, value: Any) -> Callable[[Any], bool]:
    """An attribute condition on the attribute's value; a missing (or null) attribute is none of them."""
    if op == "exists":
        return lambda actual: actual != ""
    if op == "contains":
        folded = value.casefold()

        def contains(actual: Any) -> bool:
            if isinstance(actual, str):
                return folded in actual.casefold()
            if isinstance(actual, list | tuple | set | frozenset):
                return any(_same(item, folded) for item in actual)
            return False

        return contains
    return lambda actual: _same(actual, value)


@dataclasses.dataclass(frozen=True, slots=True)
class _Scan:
    """A text field's conditions, in one RE2 pass over the text as sent: its regexes, and its
    contains needles as ``(?i)`` patterns when they fold alike (see :data:`_FOLDS_ALIKE`), with a
    pattern that finds any character of the text that may not; then, and only then, the needles
    take a second pass, over the casefolded text."""

    field: Callable[[Facts], str | None]
    patterns: _PatternSet | None  # regexes, needles that fold alike, the other folding's finder
    bits: tuple[int, ...]  # by pattern index: regex and needle atoms
    regex_bits: tuple[int, ...]  # by pattern index: regex atoms only
    otherwise: int  # the index of the pattern finding other folding; -1 when the needles take the second pass
    needles: _PatternSet | None  # every needle, casefolded, for the second pass
    needle_bits: tuple[int, ...]
    empty: int  # the bits for the empty text, worked out once: a message without a subject costs nothing
    known: dict[str, int] = dataclasses.field(default_factory=dict)  # short values seen lately, and their bits

    @classmethod
    def of(cls, field: str, regexes: Mapping[str, int], needles: Mapping[str, int]) -> _Scan:
        """``regexes`` and ``needles`` (casefolded) map to the values of their atoms."""
        one_pass = bool(needles) and all(_folds_alike(needle) for needle in needles)
        # by pattern: (its regex atoms, its needle atoms), for a regex may read like a needle's pattern
        values = {pattern: (value, 0) for pattern, value in regexes.items()}
        if one_pass:
            for needle, value in needles.items():
                pattern = "(?i)" + re2.escape(needle)
                values[pattern] = (values.get(pattern, (0, 0))[0], value)
            values.setdefault(_FOLDS_OTHERWISE, (0, 0))
        patterns = _PatternSet(list(values)) if values else None
        by_index = [values[pattern] for pattern in patterns.index] if patterns is not None else []
        second = _PatternSet(list(needles), literal=True) if needles else None
        scan = cls(
            field=attrgetter(field),
            patterns=patterns,
            bits=(*(regex | needle for regex, needle in by_index), 0),  # the sentinel's is 0
            regex_bits=(*(regex for regex, _ in by_index), 0),
            otherwise=patterns.index[_FOLDS_OTHERWISE] if one_pass and patterns is not None else -1,
            needles=second,
            needle_bits=(*(needles[needle] for needle in second.index), 0) if second is not None else (),
            empty=0,
        )
        return dataclasses.replace(scan, empty=scan.bits_of(""))

    def __call__(self, facts: Facts) -> int:
        value = self.field(facts)  # a message without a subject has the empty subject
        if not value:
            return self.empty
        if len(value) > _KNOWN_LENGTH:
            return self.bits_of(value)
        bits = self.known.get(value)  # a subject comes again with every message of its conversation
        if bits is None:
            if len(self.known) >= _KNOWN_VALUES:
                self.known.clear()
            bits = self.known[value] = self.bits_of(value)
        return bits

    def bits_of(self, value: str) -> int:
        """The bits of the atoms true of ``value``, the field's text."""
        found = self.patterns.hits(value.encode("utf-8", "surrogatepass")) if self.patterns is not None else ()
        bits = 0
        if self.otherwise >= 0 and self.otherwise not in found:  # the needles were in this pass
            for i in found:
                bits |= self.bits[i]
            return bits
        for i in found:
            bits |= self.regex_bits[i]
        if self.needles is not None:  # casefold() reads every character; lower() skips ASCII, where both agree
            folded = value.lower() if value.isascii() else value.casefold()
            for i in self.needles.hits(folded.encode("utf-8", "surrogatepass")):
                bits |= self.needle_bits[i]
        return bits


class _AtomFinder:
    """Works out which of an event's atoms are true for some facts, as the OR of their values (an int
    each; the language's aside)."""

    __slots__ = ("_attributes", "_lookups", "_scans", "_tags")

    def __init__(self, values: Mapping[_Atom, int]) -> None:
        by_field: dict[str, dict[Any, int]] = {}
        for (what, compared), value in values.items():
            by_field.setdefault(what, {})[compared] = value
        self._lookups = tuple((attrgetter(what), by_field[what]) for what in _EQUALITY if what in by_field)
        self._tags = by_field.get("tags", {})
        self._scans = tuple(
            _Scan.of(where, by_field.get(f"{where} matches", {}), by_field.get(f"{where} contains", {}))
            for where in ("text", "subject")
            if f"{where} matches" in by_field or f"{where} contains" in by_field
        )
        by_name: dict[str, list[tuple[Callable[[Any], bool], int]]] = {}
        for (name, op, _, compared), value in by_field.get("contact_attribute", {}).items():
            by_name.setdefault(name, []).append((_attribute_test(op, compared), value))
        self._attributes = tuple((name, tuple(tests)) for name, tests in by_name.items())

    def __call__(self, facts: Facts) -> int:
        bits = 0
        for fact, value_of in self._lookups:
            bits |= value_of.get(fact(facts), 0)
        if self._tags:
            for tag in facts.tags:
                bits |= self._tags.get(tag, 0)
        for scan in self._scans:
            bits |= scan(facts)
        if self._attributes and facts.contact_attributes:
            for name, tests in self._attributes:
                actual = facts.contact_attributes.get(name)
                if actual is not None:
                    for test, value in tests:
                        if test(actual):
                            bits |= value
        return bits


@dataclasses.dataclass(frozen=True, slots=True)
class _CompiledRule:
    id: str
    any: bool  # only with two conditions or more: with one, any is all; with none, a rule matches
    bits: int  # the atoms (or complements) it asks for
    language: int  # the same among the language's atoms, which are worked out last
    actions: tuple[Action, ...]
    stop: bool
    triggers: tuple[int, ...]  # atoms one of which must be true for the rule to match; () when none need be


_NOTHING = Decision()


class _EventRules:
    """One event's rules, in order. Their trigger bits sit at ``shift`` in a decision's bits."""

    __slots__ = ("always", "mask", "rules", "shift")

    def __init__(self, rules: tuple[_CompiledRule, ...], shift: int) -> None:
        self.rules, self.shift = rules, shift
        self.mask = (1 << len(rules)) - 1
        self.always = sum(1 << i for i, rule in enumerate(rules) if not rule.triggers)  # no atom triggers these


def _complements(atoms: int) -> tuple[int, int]:
    """The mask of ``atoms`` atoms' bits and the shift to their complements' bits."""
    return (1 << atoms) - 1, atoms


def _compile(rule: Rule, eager: Mapping[_Atom, int], lazy: Mapping[_Atom, int]) -> _CompiledRule:
    bits = language = 0
    positive: list[tuple[bool, int]] = []  # (a common fact's?, atom): a text's atom is rarer, so a better trigger
    for c in rule.conditions:
        key, negated = _atom(c)
        if key[0] == "language":
            language |= 1 << (lazy[key] + len(lazy) * negated)
        else:
            bits |= 1 << (eager[key] + len(eager) * negated)
            if not negated:
                positive.append((key[0] in _EQUALITY, eager[key]))
    any_of = rule.match == "any" and len(rule.conditions) > 1
    if any_of:  # any plain atom can make it match; a complement or the language, anything
        triggers = tuple(atom for _, atom in positive) if len(positive) == len(rule.conditions) else ()
    else:  # every atom must be true: waiting for one is enough
        triggers = (min(positive)[1],) if positive else ()
    return _CompiledRule(
        id=rule.id,
        any=any_of,
        bits=bits,
        language=language,
        actions=tuple(a for a in rule.actions if not isinstance(a, StopAction)),
        stop=rule.stop or any(isinstance(a, StopAction) for a in rule.actions),
        triggers=triggers,
    )


class CompiledRules:
    """A rule set ready to decide: ordered by position then id, disabled rules dropped, grouped by
    event, every condition an atom (or a predicate) and every pattern in an RE2 set. Build it when
    the rules change and share it; it holds no per-decision state.

    Most rules cannot match unless some atom of theirs is true (an ``any`` of plain conditions: any
    of its atoms; an ``all``: one of them), so each atom also carries the rules it *triggers*, as
    bits above the atoms': a decision only looks at the rules its true atoms trigger, plus those
    that need no atom. The atoms are shared by every event's rules, so a message that opens a
    conversation is read once for both events (:meth:`evaluate_in_turn`)."""

    __slots__ = (
        "_by_event",
        "_complements",
        "_finder",
        "_language_complements",
        "_languages",
        "rule_ids",
        "uses_language",
    )

    def __init__(self, rules: Iterable[Rule]) -> None:
        ordered = sorted((r for r in rules if r.enabled), key=lambda r: (r.position, r.id))
        self.rule_ids: tuple[str, ...] = tuple(r.id for r in ordered)
        self.uses_language = any(isinstance(c, LanguageCondition) for r in ordered for c in r.conditions)
        """Whether any rule looks at the language. A caller need not detect it: with
        ``Facts.language`` None the engine does, only for a rule that gets as far as asking."""
        eager: dict[_Atom, int] = {}
        lazy: dict[_Atom, int] = {}
        for rule in ordered:
            for c in rule.conditions:
                key, _ = _atom(c)
                atoms = lazy if key[0] == "language" else eager
                atoms.setdefault(key, len(atoms))
        self._complements = _complements(len(eager))
        self._language_complements = _complements(len(lazy))
        # bits 0…n-1: the atoms; n…2n-1: their complements; 2n…: the rules the atoms trigger, event by event
        values = [1 << atom for atom in range(len(eager))]
        shift = 2 * len(eager)
        self._by_event: dict[str, _EventRules] = {}
        for event in EVENTS:
            compiled = tuple(_compile(rule, eager, lazy) for rule in ordered if rule.event == event)
            for i, compiled_rule in enumerate(compiled):
                for atom in compiled_rule.triggers:
                    values[atom] |= 1 << (shift + i)
            self._by_event[event] = _EventRules(compiled, shift)
            shift += len(compiled)
        self._finder = _AtomFinder({key: values[atom] for key, atom in eager.items()})
        self._languages = {code: 1 << atom for (_, code), atom in lazy.items()}

    def __len__(self) -> int:
        return len(self.rule_ids)

    def evaluate(self, facts: Facts) -> Decision:
        """The rules of ``facts.event``."""
        return self.evaluate_in_turn(facts, (facts.event,))

    def evaluate_in_turn(self, facts: Facts, events: Sequence[str]) -> Decision:
        """The rules of each of ``events`` in turn, for facts true of all of them (a message that
        opens a conversation: ``conversation_created``, then ``message_received``), as one
        decision: a rule that stops ends them all. ``facts.event`` is not read."""
        bits = self._finder(facts)
        bits |= (~bits & self._complements[0]) << self._complements[1]
        language: list[int] = []  # the language's bits, once a rule needs them
        matched: list[str] = []
        actions: list[Action] = []
        for event in events:
            event_rules = self._by_event.get(event)
            if event_rules is None:
                raise ValueError(f"unknown event {event!r}; expected one of {', '.join(EVENTS)}")
            candidates = (bits >> event_rules.shift) & event_rules.mask | event_rules.always
            rules = event_rules.rules
            while candidates:  # in rule order: lowest bit first
                lowest = candidates & -candidates
                candidates ^= lowest
                rule = rules[lowest.bit_length() - 1]
                if rule.any:
                    if not (bits & rule.bits or (rule.language and self._language(facts, language) & rule.language)):
                        continue
                elif (bits & rule.bits) != rule.bits or (
                    rule.language and (self._language(facts, language) & rule.language) != rule.language
                ):
                    continue
                matched.append(rule.id)
                actions.extend(rule.actions)
                if rule.stop:
                    return Decision(matched=tuple(matched), actions=tuple(actions), stopped_by=rule.id)
        return Decision(matched=tuple(matched), actions=tuple(actions)) if matched else _NOTHING

    def _language(self, facts: Facts, memo: list[int]) -> int:
        if not memo:
            language = facts.language
            if language is None:
                language = detect_language(facts.text)
            bits = 0
            if language:
                language = language.replace("_", "-").lower()
                # "en" matches en-GB: a plain code is looked up by the base, a code with a region whole
                bits = self._languages.get(language, 0) | self._languages.get(language.partition("-")[0], 0)
            memo.append(bits | (~bits & self._language_complements[0]) << self._language_complements[1])
        return memo[0]


def evaluate(rules: Sequence[Rule] | CompiledRules, facts: Facts) -> Decision:
    """Decide once; for a stream of messages build :class:`CompiledRules` once and reuse it."""
    compiled = rules if isinstance(rules, CompiledRules) else CompiledRules(rules)
    return compiled.evaluate(facts)
