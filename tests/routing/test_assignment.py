"""Fair auto-assignment: who gets a conversation, the queue, caps under concurrency, rebalancing."""

from __future__ import annotations

import asyncio
import random
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from inbox.clock import ManualClock
from inbox.domain import Operator, Presence, Priority, Role
from inbox.errors import Conflict, NotFound
from routing.assignment import AtCapacity, Reclaim, Roster, Seat, SeatChange, Waiting

START = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
GRACE = timedelta(minutes=10)


def seat(
    operator_id: str,
    *teams: str,
    presence: Presence = Presence.ONLINE,
    max_open: int | None = 3,
    away_since: datetime | None = None,
) -> Seat:
    return Seat(
        operator_id=operator_id, teams=frozenset(teams), presence=presence, max_open=max_open, away_since=away_since
    )


def waiting(
    conversation_id: str, team_id: str | None = None, priority: Priority = Priority.NORMAL, minutes: float = 0
) -> Waiting:
    return Waiting(
        conversation_id=conversation_id,
        team_id=team_id,
        priority=priority,
        waiting_since=START + timedelta(minutes=minutes),
    )


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(START)


@pytest.fixture
def roster(clock: ManualClock) -> Roster:
    return Roster(clock.now, away_grace=GRACE)


def seated(clock: ManualClock, *seats: Seat) -> Roster:
    """A roster whose seats were added one second apart, in the given order."""
    roster = Roster(clock.now, away_grace=GRACE)
    for each in seats:
        roster.set_seat(each)
        clock.advance(1)
    return roster


# choosing


def test_the_least_loaded_operator_gets_the_conversation(clock: ManualClock) -> None:
    roster = seated(clock, seat("ann"), seat("bob"))
    roster.assign(waiting("c1"), "bob")
    roster.assign(waiting("c2"), "bob")
    roster.assign(waiting("c3"), "ann")
    assert roster.place(waiting("c4")) == "ann"
    assert (roster.load("ann"), roster.load("bob")) == (2, 2)


def test_ties_go_to_the_operator_idle_longest(clock: ManualClock) -> None:
    roster = seated(clock, seat("ann"), seat("bob"), seat("cy"))
    # Nobody assigned yet: idle since their seat was added, so the first seated wins.
    assert roster.choose(None) == "ann"
    roster.assign(waiting("c1"), "bob")
    clock.advance(1)
    roster.assign(waiting("c2"), "ann")
    clock.advance(1)
    roster.assign(waiting("c3"), "cy")
    clock.advance(1)
    # All hold one; bob's last assignment is the oldest.
    assert roster.place(waiting("c4")) == "bob"
    assert roster.place(waiting("c5")) == "ann"


def test_equal_idle_time_falls_back_to_the_operator_id(roster: Roster) -> None:
    roster.set_seat(seat("zed"))
    roster.set_seat(seat("amy"))
    assert roster.choose(None) == "amy"


def test_only_the_conversations_team_is_eligible(clock: ManualClock) -> None:
    roster = seated(clock, seat("ann", "sales"), seat("bob", "support"), seat("cy"))
    assert roster.place(waiting("c1", "support")) == "bob"
    assert roster.place(waiting("c2", "support")) == "bob"
    assert roster.place(waiting("c3", "billing")) is None
    assert roster.queue() == [waiting("c3", "billing")]
    # No team: anyone, including an operator in no team at all.
    assert roster.place(waiting("c4")) == "ann"
    assert roster.place(waiting("c5")) == "cy"


def test_only_online_operators_are_chosen(clock: ManualClock) -> None:
    roster = seated(
        clock, seat("ann", presence=Presence.AWAY), seat("bob", presence=Presence.OFFLINE), seat("cy", max_open=1)
    )
    assert roster.place(waiting("c1")) == "cy"
    assert roster.place(waiting("c2")) is None
    change = roster.set_seat(seat("ann"))
    assert change == SeatChange(reclaim=None, fill=True)
    assert roster.fill() == [("c2", "ann")]


# caps


def test_the_cap_is_enforced(clock: ManualClock) -> None:
    roster = seated(clock, seat("ann", max_open=2))
    assert roster.place(waiting("c1")) == "ann"
    assert roster.place(waiting("c2")) == "ann"
    assert roster.place(waiting("c3")) is None
    assert roster.choose(None) is None
    with pytest.raises(AtCapacity) as refused:
        roster.assign("c3", "ann")
    assert isinstance(refused.value, Conflict)
    assert (refused.value.code, refused.value.load, refused.value.max_open) == ("at_capacity", 2, 2)
    assert roster.load("ann") == 2
    assert roster.queue() == [waiting("c3")]


def test_no_cap_means_no_limit(clock: ManualClock) -> None:
    roster = seated(clock, seat("ann", max_open=None))
    assert [roster.place(waiting(f"c{i}")) for i in range(50)] == ["ann"] * 50


def test_forcing_past_the_cap_is_recorded(clock: ManualClock) -> None:
    roster = seated(clock, seat("ann", max_open=1), seat("bob", max_open=1))
    below = roster.assign(waiting("c1"), "ann", force=True)
    assert not below.over_cap
    over = roster.assign(waiting("c2"), "ann", force=True)
    assert over.over_cap and over.operator_id == "ann" and over.previous_operator_id is None
    assert roster.load("ann") == 2
    assert [h.over_cap for h in roster.holdings("ann")] == [False, True]
    # Moving it on: the new holder is at cap too, so it is forced again, and it left ann.
    moved = roster.assign("c2", "bob", force=True)
    assert (moved.over_cap, moved.previous_operator_id) == (False, "ann")
    assert roster.load("ann") == 1 and roster.assigned_to("c2") == "bob"


def test_a_manual_assignment_moves_the_conversation_and_keeps_it_once(clock: ManualClock) -> None:
    roster = seated(clock, seat("ann"), seat("bob"))
    roster.place(waiting("c1"))
    roster.touch("c1")
    again = roster.assign("c1", "ann")
    assert (again.previous_operator_id, roster.load("ann")) == ("ann", 1)
    moved = roster.assign("c1", "bob")
    assert moved.previous_operator_id == "ann"
    assert (roster.load("ann"), roster.load("bob")) == (0, 1)
    assert [h.touched for h in roster.holdings("bob")] == [False]  # bob has not answered yet


def test_unknown_operators_and_conversations_are_refused(roster: Roster) -> None:
    roster.set_seat(seat("ann"))
    with pytest.raises(NotFound):
        roster.assign(waiting("c1"), "nobody")
    with pytest.raises(NotFound):
        roster.assign("never-seen", "ann")
    with pytest.raises(NotFound):
        roster.pull("nobody")
    with pytest.raises(ValueError):
        seat("bob", max_open=-1)


# the queue


def test_the_queue_orders_by_priority_then_waiting_time_then_id(roster: Roster) -> None:
    items = [
        waiting("low", priority=Priority.LOW, minutes=-60),
        waiting("normal-late", minutes=5),
        waiting("normal-b", minutes=1),
        waiting("normal-a", minutes=1),
        waiting("urgent", priority=Priority.URGENT, minutes=30),
        waiting("high", "sales", priority=Priority.HIGH, minutes=20),
    ]
    for item in items:
        roster.enqueue(item)
    expected = ["urgent", "high", "normal-a", "normal-b", "normal-late", "low"]
    assert [w.conversation_id for w in roster.queue()] == expected
    assert [w.conversation_id for w in roster.queue(limit=2)] == expected[:2]
    assert [w.conversation_id for w in roster.queue("sales")] == ["high"]
    # Re-queueing with a new priority re-keys it; dequeuing removes it.
    roster.enqueue(waiting("low", priority=Priority.URGENT, minutes=-60))
    assert roster.dequeue("urgent") is not None and roster.dequeue("urgent") is None
    assert [w.conversation_id for w in roster.queue(limit=2)] == ["low", "high"]
    assert roster.queued_count() == 5


def test_an_assigned_conversation_cannot_also_be_queued(clock: ManualClock) -> None:
    roster = seated(clock, seat("ann"))
    roster.place(waiting("c1"))
    with pytest.raises(Conflict):
        roster.enqueue(waiting("c1"))
    # A second message in the same conversation: it stays where it is.
    assert roster.place(waiting("c1", priority=Priority.HIGH)) == "ann"
    assert roster.load("ann") == 1 and roster.queue() == []


def test_a_release_hands_the_next_conversation_out_at_once(clock: ManualClock) -> None:
    roster = seated(clock, seat("ann", max_open=1), seat("bob", "sales", max_open=1))
    roster.place(waiting("c1"))
    roster.place(waiting("c2"))
    roster.place(waiting("old", minutes=1))
    roster.place(waiting("newer-but-urgent", priority=Priority.URGENT, minutes=9))
    roster.place(waiting("newest", minutes=10))
    assert roster.fill() == []  # everyone is at cap
    assert roster.release("c1") == "ann"
    assert roster.release("c1") is None
    assert roster.fill() == [("newer-but-urgent", "ann")]
    roster.release("newer-but-urgent")
    roster.release("c2")
    assert roster.fill() == [("old", "ann"), ("newest", "bob")]
    assert roster.queue() == []


def test_fill_skips_a_head_nobody_in_its_team_can_take(clock: ManualClock) -> None:
    roster = seated(clock, seat("ann", "sales", max_open=1), seat("bob", "support", max_open=1))
    roster.place(waiting("s1", "sales"))
    roster.place(waiting("p1", "support"))
    roster.place(waiting("s2", "sales", Priority.URGENT))
    roster.place(waiting("p2", "support"))
    roster.release("p1")
    assert roster.fill() == [("p2", "bob")]
    assert [w.conversation_id for w in roster.queue()] == ["s2"]


def test_a_handed_back_conversation_waits_with_its_original_place(clock: ManualClock) -> None:
    roster = seated(clock, seat("ann", max_open=1))
    roster.place(waiting("first", minutes=0))
    roster.place(waiting("second", minutes=5))
    assert roster.release("first", requeue=True) == "ann"
    assert [w.conversation_id for w in roster.queue()] == ["first", "second"]
    assert roster.fill() == [("first", "ann")]


# get next


def test_pull_takes_the_queues_choice_within_team_and_cap(clock: ManualClock) -> None:
    roster = seated(clock, seat("ann", "sales", max_open=2, presence=Presence.AWAY))
    roster.enqueue(waiting("support-urgent", "support", Priority.URGENT))
    roster.enqueue(waiting("sales-old", "sales", minutes=1))
    roster.enqueue(waiting("anyone-high", None, Priority.HIGH, minutes=3))
    roster.enqueue(waiting("sales-new", "sales", minutes=2))
    assert roster.next_for("ann") == waiting("anyone-high", None, Priority.HIGH, minutes=3)
    assert roster.pull("ann") == waiting("anyone-high", None, Priority.HIGH, minutes=3)
    assert roster.pull("ann") == waiting("sales-old", "sales", minutes=1)
    assert roster.assigned_to("sales-old") == "ann"
    with pytest.raises(AtCapacity):
        roster.pull("ann")
    roster.release("sales-old")
    assert roster.pull("ann") == waiting("sales-new", "sales", minutes=2)
    roster.release("sales-new")
    assert roster.pull("ann") is None  # only another team's conversation is left
    assert [w.conversation_id for w in roster.queue()] == ["support-urgent"]


# rebalancing


def test_going_offline_returns_only_unanswered_conversations(clock: ManualClock) -> None:
    roster = seated(clock, seat("ann", max_open=3), seat("bob", max_open=1))
    for name in ("c1", "c2", "c3", "c4"):
        roster.place(waiting(name, minutes=int(name[1])))
    assert {roster.assigned_to(c) for c in ("c1", "c2", "c3", "c4")} == {"ann", "bob"}
    ann_holds = [h.waiting.conversation_id for h in roster.holdings("ann")]
    roster.touch(ann_holds[0])
    change = roster.set_seat(seat("ann", max_open=3, presence=Presence.OFFLINE))
    assert change == SeatChange(reclaim=Reclaim.OFFLINE, fill=True)
    assert roster.reclaim("ann", reason=Reclaim.OFFLINE) == ann_holds[1:]
    assert [h.waiting.conversation_id for h in roster.holdings("ann")] == ann_holds[:1]
    assert [w.conversation_id for w in roster.queue()] == ann_holds[1:]  # original waiting times kept
    assert roster.reclaim("ann", reason=Reclaim.OFFLINE) == []
    roster.set_seat(seat("bob", max_open=5))
    assert roster.fill() == [(c, "bob") for c in ann_holds[1:]]


def test_away_past_the_grace_returns_unanswered_conversations(clock: ManualClock) -> None:
    roster = seated(clock, seat("ann"), seat("bob", presence=Presence.OFFLINE))
    roster.place(waiting("c1"))
    roster.place(waiting("c2"))
    roster.touch("c1")
    assert roster.set_seat(seat("ann", presence=Presence.AWAY)).reclaim is None
    away_since = roster.seat("ann").away_since  # type: ignore[union-attr]
    assert away_since == clock.now()
    clock.advance(GRACE - timedelta(seconds=1))
    roster.set_seat(seat("ann", presence=Presence.AWAY))  # another update keeps the original stamp
    assert roster.overdue_away() == []
    assert roster.reclaim("ann", reason=Reclaim.AWAY) == []
    clock.advance(1)
    assert roster.overdue_away() == ["ann"]
    assert roster.reclaim("ann", reason=Reclaim.AWAY) == ["c2"]
    assert roster.overdue_away() == []  # nothing unanswered is left
    assert roster.assigned_to("c1") == "ann" and roster.queue() == [waiting("c2")]


def test_a_late_away_reclaim_after_coming_back_takes_nothing(clock: ManualClock) -> None:
    roster = seated(clock, seat("ann"))
    roster.place(waiting("c1"))
    roster.set_seat(seat("ann", presence=Presence.AWAY))
    clock.advance(GRACE * 2)
    assert roster.overdue_away() == ["ann"]
    roster.set_seat(seat("ann"))
    assert roster.seat("ann").away_since is None  # type: ignore[union-attr]
    assert roster.reclaim("ann", reason=Reclaim.AWAY) == []
    assert roster.reclaim("ann", reason=Reclaim.OFFLINE) == []


def test_a_seat_already_away_too_long_reports_it(clock: ManualClock) -> None:
    roster = seated(clock, seat("ann"))
    roster.place(waiting("c1"))
    change = roster.set_seat(seat("ann", presence=Presence.AWAY, away_since=clock.now() - GRACE))
    assert change.reclaim is Reclaim.AWAY


def test_a_lowered_cap_returns_only_the_excess_most_recent_first(clock: ManualClock) -> None:
    roster = seated(clock, seat("ann", max_open=5), seat("bob", presence=Presence.OFFLINE))
    for i in range(5):
        roster.place(waiting(f"c{i}", minutes=i))
        clock.advance(1)
    roster.touch("c4")  # the newest is answered, so it stays
    change = roster.set_seat(seat("ann", max_open=2))
    assert change == SeatChange(reclaim=Reclaim.CAP_LOWERED, fill=True)
    assert roster.reclaim("ann", reason=Reclaim.CAP_LOWERED) == ["c3", "c2", "c1"]
    assert [h.waiting.conversation_id for h in roster.holdings("ann")] == ["c0", "c4"]
    assert roster.reclaim("ann", reason=Reclaim.CAP_LOWERED) == []
    assert roster.fill() == []  # ann is at her new cap, bob is offline
    assert [w.conversation_id for w in roster.queue()] == ["c1", "c2", "c3"]


def test_a_lowered_cap_leaves_answered_and_forced_conversations(clock: ManualClock) -> None:
    roster = seated(clock, seat("ann", max_open=2))
    roster.place(waiting("c0"))
    roster.place(waiting("c1"))
    assert roster.assign(waiting("forced"), "ann", force=True).over_cap
    roster.touch("c0")
    # The supervisor's forced one is an allowance on top of the cap, not part of the excess.
    assert roster.set_seat(seat("ann", max_open=2)).reclaim is None
    assert roster.set_seat(seat("ann", max_open=0)).reclaim is Reclaim.CAP_LOWERED
    assert roster.reclaim("ann", reason=Reclaim.CAP_LOWERED) == ["c1"]  # c0 is answered
    assert roster.load("ann") == 2


def test_removing_a_seat_requeues_everything_it_held(clock: ManualClock) -> None:
    roster = seated(clock, seat("ann"))
    roster.place(waiting("c1"))
    roster.place(waiting("c2"))
    roster.touch("c1")
    assert roster.remove_seat("ann") == ["c1", "c2"]
    assert roster.seat("ann") is None and roster.queued_count() == 2
    assert roster.remove_seat("ann") == []


def test_restore_rebuilds_assignments_without_checking_caps(clock: ManualClock) -> None:
    roster = seated(clock, seat("ann", max_open=1), seat("bob", presence=Presence.OFFLINE))
    roster.restore(waiting("c1"), "ann", touched=True)
    roster.restore(waiting("c2"), "ann")
    assert roster.load("ann") == 2
    assert roster.set_seat(seat("ann", max_open=1)).reclaim is Reclaim.CAP_LOWERED
    assert roster.reclaim("ann", reason=Reclaim.CAP_LOWERED) == ["c2"]


def test_a_seat_can_be_built_from_an_operator() -> None:
    operator = Operator(
        id="op1",
        email="ann@example.com",
        name="Ann",
        role=Role.OPERATOR,
        presence=Presence.ONLINE,
        max_open=4,
        teams=("sales", "support"),
        created_at=START,
    )
    assert Seat.of(operator) == seat("op1", "sales", "support", max_open=4)


# concurrency and scale


async def test_concurrent_arrivals_never_push_an_operator_past_the_cap(clock: ManualClock) -> None:
    roster = seated(clock, *(seat(f"op{i}", max_open=10) for i in range(5)))
    rng = random.Random(20260105)

    async def arrive(n: int) -> str | None:
        for _ in range(rng.randrange(0, 20)):
            await asyncio.sleep(0)
        return roster.place(waiting(f"c{n:03}", minutes=rng.randrange(0, 60)))

    results = await asyncio.gather(*(arrive(n) for n in range(200)))
    assigned = [operator for operator in results if operator is not None]
    assert len(assigned) == 50
    assert {f"op{i}": roster.load(f"op{i}") for i in range(5)} == {f"op{i}": 10 for i in range(5)}
    assert roster.queued_count() == 150
    assert all(not h.over_cap for i in range(5) for h in roster.holdings(f"op{i}"))


def spread_priority(n: int) -> str:
    return ("low", "normal", "normal", "high", "urgent")[n * 7919 % 5]


def test_a_long_queue_keeps_its_order_under_churn(clock: ManualClock) -> None:
    """10,000 queued and 50 operators: every freed slot takes exactly one conversation, new ones
    queue, and the queue stays in order (its speed is measured by ``python -m bench.routing``)."""
    roster = seated(clock, *(seat(f"op{i:02}", f"team{i % 5}", max_open=4) for i in range(50)))
    for n in range(10_200):
        roster.place(waiting(f"c{n}", f"team{n % 7}" if n % 3 else None, Priority(spread_priority(n)), minutes=n))
    assert roster.queued_count() == 10_000
    for n in range(5_000):
        holder = f"op{n % 50:02}"
        roster.release(roster.holdings(holder)[0].waiting.conversation_id)
        assert len(roster.fill()) == 1
        roster.place(waiting(f"new{n}", f"team{n % 5}"))
    assert roster.queued_count() == 10_000
    ranks = {Priority.URGENT: 0, Priority.HIGH: 1, Priority.NORMAL: 2, Priority.LOW: 3}
    order = [(ranks[w.priority], w.waiting_since, w.conversation_id) for w in roster.queue()]
    assert order == sorted(order)


# properties

CAPS = st.one_of(st.none(), st.integers(min_value=0, max_value=4))
OPERATORS = ("ann", "bob", "cy", "dee")
TEAMS = (None, "sales", "support")
TEAM_SETS = st.frozensets(st.sampled_from(TEAMS[1:]))


class RosterMachine(RuleBasedStateMachine):
    """Random sequences of every operation; afterwards each conversation is queued or held exactly
    once, and no operator's unforced load ever grew past their cap."""

    def __init__(self) -> None:
        super().__init__()
        self.clock = ManualClock(START)
        self.roster = Roster(self.clock.now, away_grace=GRACE)
        self.live: set[str] = set()  # conversations that must be somewhere
        self.count = 0

    def unforced(self) -> dict[str, int]:
        return {
            s.operator_id: sum(not h.over_cap for h in self.roster.holdings(s.operator_id)) for s in self.roster.seats()
        }

    def check_growth(self, before: dict[str, int]) -> None:
        """An operator whose unforced load grew in this step must be within their cap, all told."""
        for operator_id, now in self.unforced().items():
            cap = self.roster.seat(operator_id).max_open  # type: ignore[union-attr]
            if now > before.get(operator_id, 0) and cap is not None:
                assert self.roster.load(operator_id) <= cap, (operator_id, self.roster.load(operator_id), cap)

    @initialize(caps=st.lists(CAPS, min_size=len(OPERATORS), max_size=len(OPERATORS)), teams=st.lists(TEAM_SETS))
    def seat_everyone(self, caps: list[int | None], teams: list[frozenset[str]]) -> None:
        for operator_id, cap, their_teams in zip(OPERATORS, caps, teams + [frozenset()] * len(OPERATORS), strict=False):
            self.roster.set_seat(
                Seat(operator_id=operator_id, teams=their_teams, presence=Presence.ONLINE, max_open=cap)
            )

    @rule(
        operator_id=st.sampled_from(OPERATORS),
        teams=TEAM_SETS,
        presence=st.sampled_from([Presence.ONLINE, Presence.ONLINE, Presence.AWAY, Presence.OFFLINE]),
        cap=CAPS,
        follow=st.booleans(),
    )
    def set_seat(
        self, operator_id: str, teams: frozenset[str], presence: Presence, cap: int | None, follow: bool
    ) -> None:
        """Half the time the caller follows the change's advice at once, half the time it is late."""
        before = self.unforced()
        change = self.roster.set_seat(Seat(operator_id=operator_id, teams=teams, presence=presence, max_open=cap))
        self.check_growth(before)
        if follow and change.reclaim is not None:
            assert self.checked_reclaim(operator_id, change.reclaim)
        if follow and change.fill:
            self.fill()

    @rule(
        arrivals=st.lists(
            st.tuples(st.sampled_from(TEAMS), st.sampled_from(Priority), st.integers(0, 30)), min_size=1, max_size=6
        )
    )
    def place(self, arrivals: list[tuple[str | None, Priority, int]]) -> None:
        for team, priority, minutes in arrivals:
            self.count += 1
            item = waiting(f"c{self.count}", team, priority, minutes)
            before = self.unforced()
            operator_id = self.roster.place(item)
            self.live.add(item.conversation_id)
            assert (operator_id is None) == self.roster.is_queued(item.conversation_id)
            if operator_id is not None:
                assert team is None or team in self.roster.seat(operator_id).teams  # type: ignore[union-attr]
            self.check_growth(before)

    @precondition(lambda self: self.live)
    @rule(data=st.data(), force=st.booleans())
    def assign(self, data: st.DataObject, force: bool) -> None:
        conversation_id = data.draw(st.sampled_from(sorted(self.live)))
        operator_id = data.draw(st.sampled_from(sorted(s.operator_id for s in self.roster.seats())))
        before = self.unforced()
        try:
            result = self.roster.assign(conversation_id, operator_id, force=force)
        except AtCapacity:
            assert not force
            return
        if not force and result.previous_operator_id != operator_id:
            assert not result.over_cap
        self.check_growth(before)

    @precondition(lambda self: self.live)
    @rule(data=st.data(), requeue=st.booleans())
    def release(self, data: st.DataObject, requeue: bool) -> None:
        conversation_id = data.draw(st.sampled_from(sorted(self.live)))
        holder = self.roster.release(conversation_id, requeue=requeue)
        if holder is None:
            self.roster.dequeue(conversation_id)
        if not requeue or holder is None:
            self.live.discard(conversation_id)

    @precondition(lambda self: self.live)
    @rule(data=st.data())
    def touch(self, data: st.DataObject) -> None:
        conversation_id = data.draw(st.sampled_from(sorted(self.live)))
        assert self.roster.touch(conversation_id) == (self.roster.assigned_to(conversation_id) is not None)

    @rule()
    def fill(self) -> None:
        before = self.unforced()
        pairs = self.roster.fill()
        assert len({c for c, _ in pairs}) == len(pairs)
        self.check_growth(before)
        # Afterwards nothing queued could go to anyone eligible.
        for item in self.roster.queue():
            assert self.roster.choose(item.team_id) is None

    @rule(data=st.data())
    def pull(self, data: st.DataObject) -> None:
        operator_id = data.draw(st.sampled_from(sorted(s.operator_id for s in self.roster.seats())))
        before = self.unforced()
        try:
            item = self.roster.pull(operator_id)
        except AtCapacity:
            s = self.roster.seat(operator_id)
            assert s is not None and s.max_open is not None and self.roster.load(operator_id) >= s.max_open
            return
        if item is not None:
            assert self.roster.assigned_to(item.conversation_id) == operator_id
        self.check_growth(before)

    @rule(data=st.data(), reason=st.sampled_from(Reclaim))
    def reclaim(self, data: st.DataObject, reason: Reclaim) -> None:
        self.checked_reclaim(data.draw(st.sampled_from(OPERATORS)), reason)

    @rule(operator_id=st.sampled_from(OPERATORS), by=st.integers(1, 3), touch=st.booleans())
    def lower_cap(self, operator_id: str, by: int, touch: bool) -> None:
        """The case random caps rarely reach: a cap lowered below a load that is partly answered."""
        holdings = self.roster.holdings(operator_id)
        if touch and holdings:
            self.roster.touch(holdings[-1].waiting.conversation_id)
        current = self.roster.seat(operator_id)
        assert current is not None
        change = self.roster.set_seat(replace(current, max_open=max(0, len(holdings) - by)))
        if change.reclaim is not None:
            assert self.checked_reclaim(operator_id, change.reclaim)

    def checked_reclaim(self, operator_id: str, reason: Reclaim) -> list[str]:
        holdings = self.roster.holdings(operator_id)
        ids = self.roster.reclaim(operator_id, reason=reason)
        assert not {h.waiting.conversation_id for h in holdings if h.touched} & set(ids)
        assert all(self.roster.is_queued(c) for c in ids)
        left = self.roster.holdings(operator_id)
        s = self.roster.seat(operator_id)
        assert s is not None
        if reason is Reclaim.CAP_LOWERED and s.max_open is not None:
            kept = [h for h in left if not h.over_cap]
            assert len(kept) <= s.max_open or all(h.touched for h in kept)
            # The most recently assigned go first: nothing kept untouched is newer than what went.
            order = [h.waiting.conversation_id for h in holdings]
            newest_kept = max((order.index(h.waiting.conversation_id) for h in kept if not h.touched), default=-1)
            assert all(order.index(c) > newest_kept for c in ids)
        elif ids:
            assert all(h.touched for h in left)
        return ids

    @rule(seconds=st.integers(0, 900))
    def advance(self, seconds: int) -> None:
        self.clock.advance(seconds)
        for operator_id in self.roster.overdue_away():
            assert self.checked_reclaim(operator_id, Reclaim.AWAY)

    @invariant()
    def every_conversation_is_in_exactly_one_place(self) -> None:
        queued = [w.conversation_id for w in self.roster.queue()]
        held = [h.waiting.conversation_id for s in self.roster.seats() for h in self.roster.holdings(s.operator_id)]
        assert len(set(queued)) == len(queued) and len(set(held)) == len(held)
        assert not set(queued) & set(held)
        assert set(queued) | set(held) == self.live
        assert self.roster.queued_count() == len(queued)
        for s in self.roster.seats():
            for h in self.roster.holdings(s.operator_id):
                assert self.roster.assigned_to(h.waiting.conversation_id) == s.operator_id


TestRosterMachine = RosterMachine.TestCase
TestRosterMachine.settings = settings(
    max_examples=200, stateful_step_count=50, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
