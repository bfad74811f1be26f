"""Fair auto-assignment: the one place that decides who gets a waiting conversation.

A :class:`Roster` holds, in memory, each operator's :class:`Seat` (teams, presence, cap), what each
operator holds, and the queue of conversations nobody could take yet. The caller (routing, wired to
the store and the event bus) asks it for decisions and persists the results; on start-up it rebuilds
the roster from the store with :meth:`Roster.set_seat` and :meth:`Roster.restore`.

The rules, from the assignment issue:

* A waiting conversation goes to an eligible operator — online, below their cap, in the
  conversation's team (a conversation without a team can go to anyone) — the least loaded one,
  ties to the one idle longest, then by operator id so the decision is reproducible.
* When nobody is eligible it waits in the queue: priority (urgent first), then waiting time (oldest
  first), then conversation id. When capacity frees up, :meth:`Roster.fill` hands out queued
  conversations in that order at once; "get next" (:meth:`Roster.pull`) gives an operator the
  queue's choice, never theirs.
* A supervisor may exceed a cap only with ``force=True``; the :class:`Assignment` says
  ``over_cap`` so the caller can record it, and the roster remembers it so a later cap change does
  not take back what a supervisor placed deliberately.
* Rebalancing (:meth:`Roster.reclaim`): an operator who went offline, or stayed away longer than
  the grace, gives back every conversation they have not answered yet; one whose cap dropped below
  their load gives back just the excess, most recently assigned first. Answered ("touched")
  conversations stay: the customer is already talking to that person.

Why caps hold under concurrency: every method is synchronous. Within one asyncio event loop a
check ("is there room?") and its update ("now they hold one more") therefore run without any
other task in between, so two messages arriving at the same moment cannot both take an
operator's last slot. Several processes would each need their own lease on the decision; that
belongs to the scale-out work, like the store's concurrent-update limit in ``ARCHITECTURE.md``.

Cost: a decision scans the seats (tens of operators) once; the queue is one heap per team with
lazy deletion, so placing, pulling or filling with 10,000 queued conversations stays logarithmic.
"""

from __future__ import annotations

import enum
import heapq
import itertools
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from inbox.domain import Operator, Presence, Priority
from inbox.errors import Conflict, NotFound

__all__ = [
    "DEFAULT_AWAY_GRACE",
    "AtCapacity",
    "Assignment",
    "Held",
    "Reclaim",
    "Roster",
    "Seat",
    "SeatChange",
    "Waiting",
    "Whereabouts",
]

DEFAULT_AWAY_GRACE = timedelta(minutes=10)

_VALUE = dict(frozen=True, slots=True, kw_only=True)
_ONLINE = Presence.ONLINE  # enum member look-ups cost ~100 ns each on 3.11; this one runs per seat per decision
_RANK = {Priority.URGENT: 0, Priority.HIGH: 1, Priority.NORMAL: 2, Priority.LOW: 3}


class AtCapacity(Conflict):
    """An operator already holds as many open conversations as their cap allows.

    A :class:`Conflict`, so the API answers 409: the request was fine, the operator's state is not."""

    code = "at_capacity"

    def __init__(self, operator_id: str, load: int, max_open: int) -> None:
        super().__init__(f"operator {operator_id} holds {load} open conversations; their cap is {max_open}")
        self.operator_id, self.load, self.max_open = operator_id, load, max_open


class Reclaim(enum.StrEnum):
    """Why conversations go back to the queue; each reason is re-checked when reclaiming, so a
    reclaim that arrives late (the operator is back online) takes nothing."""

    OFFLINE = "offline"
    AWAY = "away"
    CAP_LOWERED = "cap_lowered"


@dataclass(**_VALUE)
class Seat:
    """What assignment needs to know about one operator. ``max_open`` None means no cap.

    ``away_since`` may be left out: the roster stamps it when it sees the operator turn away, so
    the grace runs from the moment it learned of it."""

    operator_id: str
    teams: frozenset[str]
    presence: Presence
    max_open: int | None
    away_since: datetime | None = None

    def __post_init__(self) -> None:
        if self.max_open is not None and self.max_open < 0:
            raise ValueError(f"max_open must be at least 0, not {self.max_open}")
        if not isinstance(self.teams, frozenset):
            object.__setattr__(self, "teams", frozenset(self.teams))

    @classmethod
    def of(cls, operator: Operator, *, away_since: datetime | None = None) -> Seat:
        return cls(
            operator_id=operator.id,
            teams=frozenset(operator.teams),
            presence=operator.presence,
            max_open=operator.max_open,
            away_since=away_since,
        )


@dataclass(**_VALUE)
class Waiting:
    """A conversation as the queue sees it. The roster keeps it while the conversation is assigned
    too, so a reclaimed conversation returns with its original priority and waiting time."""

    conversation_id: str
    team_id: str | None
    priority: Priority
    waiting_since: datetime


@dataclass(**_VALUE)
class Assignment:
    """The outcome of :meth:`Roster.assign`. ``over_cap`` is true only for a forced assignment
    past the cap, which the caller records; ``previous_operator_id`` is who held it before (the
    same operator when nothing changed)."""

    conversation_id: str
    operator_id: str
    over_cap: bool
    previous_operator_id: str | None = None


@dataclass(**_VALUE)
class Held:
    """One conversation an operator holds."""

    waiting: Waiting
    touched: bool = False
    over_cap: bool = False


@dataclass(**_VALUE)
class Whereabouts:
    """Where a conversation stands in the roster: held (by ``operator_id``), queued, or neither."""

    conversation_id: str
    operator_id: str | None = None
    held: Held | None = None
    queued: Waiting | None = None


@dataclass(**_VALUE)
class SeatChange:
    """What :meth:`Roster.set_seat` leaves for the caller: ``reclaim`` with this reason (then
    persist what it returns), and ``fill`` because capacity may now meet queued work."""

    reclaim: Reclaim | None
    fill: bool


# (priority rank, waiting since, conversation id, enqueue number, record): the number keeps
# comparisons away from the record and tells a current entry from a stale copy.
_Entry = tuple[int, datetime, str, int, Waiting]


class Roster:
    """Seats, holdings and the queue; see the module docstring for the rules.

    All methods are synchronous on purpose: nothing awaits between a capacity check and the
    update it allows, which is what keeps caps under concurrent arrivals in one event loop."""

    def __init__(self, now: Callable[[], datetime], *, away_grace: timedelta = DEFAULT_AWAY_GRACE) -> None:
        self._now = now
        self._away_grace = away_grace
        self._seats: dict[str, Seat] = {}
        self._team_seats: dict[str, tuple[Seat, ...]] = {}  # team -> its members' seats, rebuilt as seats change
        self._idle_since: dict[str, datetime] = {}
        self._held: dict[str, dict[str, Held]] = {}  # operator -> conversation -> record, in assignment order
        self._holder: dict[str, str] = {}  # conversation -> operator
        self._queued: dict[str, _Entry] = {}  # conversation -> its current heap entry
        self._heaps: dict[str | None, list[_Entry]] = {}  # team -> heap, stale entries included
        self._heap_size = 0
        self._numbers = itertools.count()

    # seats

    def set_seat(self, seat: Seat) -> SeatChange:
        """Add or update an operator's seat; tells what rebalancing the change calls for."""
        old = self._seats.get(seat.operator_id)
        if seat.presence is not Presence.AWAY:
            seat = replace(seat, away_since=None) if seat.away_since else seat
        elif seat.away_since is None:
            still_away_since = old.away_since if old is not None and old.presence is Presence.AWAY else None
            seat = replace(seat, away_since=still_away_since or self._now())
        self._seats[seat.operator_id] = seat
        self._index_teams()
        if old is None:
            self._idle_since[seat.operator_id] = self._now()
            self._held[seat.operator_id] = {}
        reason = next((r for r in Reclaim if self._reclaimable(seat, r)), None)
        fill = reason is not None or (bool(self._queued) and self._eligible(seat, None))
        return SeatChange(reclaim=reason, fill=fill)

    def remove_seat(self, operator_id: str) -> list[str]:
        """Drop an operator; everything they held, answered or not, returns to the queue (nobody
        is left to answer it). Returns those conversation ids."""
        if operator_id not in self._seats:
            return []
        ids = list(self._held[operator_id])
        for conversation_id in ids:
            self.release(conversation_id, requeue=True)
        del self._seats[operator_id], self._idle_since[operator_id], self._held[operator_id]
        self._index_teams()
        return ids

    def seat(self, operator_id: str) -> Seat | None:
        return self._seats.get(operator_id)

    def seats(self) -> list[Seat]:
        return list(self._seats.values())

    # assignments

    def restore(self, waiting: Waiting, operator_id: str, *, touched: bool = False, over_cap: bool = False) -> None:
        """Re-create an assignment the store already has (at start-up): no cap check, since the
        store is the truth, and no idle-time update, since it is not a new assignment."""
        self._seat(operator_id)
        self._detach(waiting.conversation_id)
        self._held[operator_id][waiting.conversation_id] = Held(waiting=waiting, touched=touched, over_cap=over_cap)
        self._holder[waiting.conversation_id] = operator_id

    def assign(self, conversation: str | Waiting, operator_id: str, *, force: bool = False) -> Assignment:
        """Give a conversation to an operator (manual assignment, or the roster's own choice),
        moving it from the queue or from whoever held it.

        A conversation the roster does not know yet must come as a :class:`Waiting`, so that it
        can return to the queue later. Raises :class:`AtCapacity` when the operator is at or over
        their cap, unless ``force``; presence is not checked, a supervisor may assign anyone."""
        seat = self._seat(operator_id)
        waiting = self._record(conversation)
        conversation_id = waiting.conversation_id
        previous = self._holder.get(conversation_id)
        if previous == operator_id:
            held = self._held[operator_id][conversation_id]
            self._held[operator_id][conversation_id] = replace(held, waiting=waiting)
            return Assignment(
                conversation_id=conversation_id,
                operator_id=operator_id,
                over_cap=held.over_cap,
                previous_operator_id=previous,
            )
        over_cap = not self._has_room(seat)
        if over_cap and not force:
            assert seat.max_open is not None
            raise AtCapacity(operator_id, self.load(operator_id), seat.max_open)
        self._detach(conversation_id)
        self._held[operator_id][conversation_id] = Held(waiting=waiting, over_cap=over_cap)
        self._holder[conversation_id] = operator_id
        self._idle_since[operator_id] = self._now()
        return Assignment(
            conversation_id=conversation_id, operator_id=operator_id, over_cap=over_cap, previous_operator_id=previous
        )

    def whereabouts(self, conversation_id: str) -> Whereabouts:
        """Where the conversation stands now, to :meth:`put_back` if what follows is undone."""
        holder = self._holder.get(conversation_id)
        if holder is not None:
            return Whereabouts(
                conversation_id=conversation_id, operator_id=holder, held=self._held[holder][conversation_id]
            )
        entry = self._queued.get(conversation_id)
        return Whereabouts(conversation_id=conversation_id, queued=entry[-1] if entry else None)

    def put_back(self, where: Whereabouts) -> None:
        """Undo whatever happened to the conversation since :meth:`whereabouts` (a decision that
        was never stored): held by the same operator, queued, or gone from the roster again."""
        conversation_id = where.conversation_id
        self._detach(conversation_id)
        if where.held is not None and where.operator_id is not None and where.operator_id in self._seats:
            self._held[where.operator_id][conversation_id] = where.held
            self._holder[conversation_id] = where.operator_id
        elif where.held is not None:  # its holder lost their seat meanwhile: it waits
            self._push(where.held.waiting)
        elif where.queued is not None:
            self._push(where.queued)

    def release(self, conversation_id: str, *, requeue: bool = False) -> str | None:
        """The operator resolved or snoozed it (``requeue=False``), or handed it back
        (``requeue=True``: it waits again with its original priority and waiting time). Returns
        who held it. Call :meth:`fill` afterwards: the freed slot should take queued work at once."""
        operator_id = self._holder.pop(conversation_id, None)
        if operator_id is None:
            return None
        held = self._held[operator_id].pop(conversation_id)
        if requeue:
            self._push(held.waiting)
        return operator_id

    def touch(self, conversation_id: str) -> bool:
        """The operator answered: rebalancing leaves the conversation with them from now on."""
        operator_id = self._holder.get(conversation_id)
        if operator_id is None:
            return False
        held = self._held[operator_id][conversation_id]
        self._held[operator_id][conversation_id] = replace(held, touched=True)
        return True

    def load(self, operator_id: str) -> int:
        return len(self._held.get(operator_id, ()))

    def assigned_to(self, conversation_id: str) -> str | None:
        return self._holder.get(conversation_id)

    def holdings(self, operator_id: str) -> list[Held]:
        """What an operator holds, oldest assignment first."""
        return list(self._held.get(operator_id, {}).values())

    # queue

    def enqueue(self, waiting: Waiting) -> None:
        """Put a conversation in the queue, or re-key it there (its priority changed). An assigned
        conversation is refused: :meth:`release` it first, so it is never both queued and held."""
        if waiting.conversation_id in self._holder:
            raise Conflict(f"conversation {waiting.conversation_id} is assigned; release it before queueing it")
        self._push(waiting)

    def dequeue(self, conversation_id: str) -> Waiting | None:
        """Take a conversation out of the queue (resolved or closed while waiting)."""
        entry = self._queued.pop(conversation_id, None)
        self._compact()
        return None if entry is None else entry[-1]

    def queue(self, team_id: str | None = None, *, limit: int | None = None) -> list[Waiting]:
        """Queued conversations in queue order: all of them, or one team's (``team_id``)."""
        entries: Iterable[_Entry] = self._queued.values()
        if team_id is not None:
            entries = (entry for entry in entries if entry[-1].team_id == team_id)
        ordered = sorted(entries) if limit is None else heapq.nsmallest(limit, entries)
        return [entry[-1] for entry in ordered]

    def is_queued(self, conversation_id: str) -> bool:
        return conversation_id in self._queued

    def queued_count(self) -> int:
        return len(self._queued)

    # decisions

    def choose(self, team_id: str | None) -> str | None:
        """Who should get a conversation of this team (None: any team) now, or None if nobody
        is eligible: least loaded, then idle longest, then operator id."""
        seats = self._seats.values() if team_id is None else self._team_seats.get(team_id, ())
        return self._pick(seats, team_id, room_checked=False)

    def place(self, waiting: Waiting) -> str | None:
        """A conversation needs an operator: assign it to :meth:`choose`'s pick, or queue it.
        Returns the operator, or None when it waits. Already assigned: stays where it is."""
        holder = self._holder.get(waiting.conversation_id)
        if holder is not None:
            held = self._held[holder][waiting.conversation_id]
            self._held[holder][waiting.conversation_id] = replace(held, waiting=waiting)
            return holder
        operator_id = self.choose(waiting.team_id)
        if operator_id is None:
            entry = self._queued.get(waiting.conversation_id)
            if entry is None or entry[-1] != waiting:  # a customer writing again keeps their place as it is
                self._push(waiting)
            return None
        self.assign(waiting, operator_id)
        return operator_id

    def next_for(self, operator_id: str) -> Waiting | None:
        """The first queued conversation this operator may take (their teams, or no team)."""
        seat = self._seat(operator_id)
        best: _Entry | None = None
        for team_id in (None, *seat.teams):
            head = self._head(team_id)
            if head is not None and (best is None or head < best):
                best = head
        return None if best is None else best[-1]

    def pull(self, operator_id: str) -> Waiting | None:
        """The operator's "get next": assign the queue's choice for them. Raises :class:`AtCapacity` at
        the cap; presence is not checked, pulling is the operator's own explicit act."""
        seat = self._seat(operator_id)
        if not self._has_room(seat):
            assert seat.max_open is not None
            raise AtCapacity(operator_id, self.load(operator_id), seat.max_open)
        waiting = self.next_for(operator_id)
        if waiting is not None:
            self.assign(waiting, operator_id)
        return waiting

    def fill(self) -> list[tuple[str, str]]:
        """Hand out queued conversations, in queue order, while an eligible operator has room;
        a conversation nobody in its team can take does not hold up the ones behind it.
        Returns (conversation id, operator id) pairs to persist."""
        assigned: list[tuple[str, str]] = []
        open_seats = self._open_seats()  # only the chosen operator's room changes below
        while open_seats and self._queued:
            best: _Entry | None = None
            for team_id in (None, *frozenset().union(*(seat.teams for seat in open_seats))):
                head = self._head(team_id)
                if head is not None and (best is None or head < best):
                    best = head
            if best is None:
                break
            waiting = best[-1]
            operator_id = self._pick(open_seats, waiting.team_id)
            assert operator_id is not None
            self.assign(waiting, operator_id)
            assigned.append((waiting.conversation_id, operator_id))
            seat = self._seats[operator_id]
            if not self._has_room(seat):
                open_seats.remove(seat)
        return assigned

    # rebalancing

    def overdue_away(self, now: datetime | None = None) -> list[str]:
        """Operators away longer than the grace who still hold unanswered conversations: the
        caller reclaims them with ``Reclaim.AWAY`` when its timer notices."""
        moment = self._now() if now is None else now
        return [seat.operator_id for seat in self._seats.values() if self._reclaimable(seat, Reclaim.AWAY, moment)]

    def reclaim(self, operator_id: str, *, reason: Reclaim) -> list[str]:
        """Return an operator's unanswered conversations to the queue, if ``reason`` still holds;
        for a lowered cap only the excess, most recently assigned first. Returns their ids; call
        :meth:`fill` next so others take them at once."""
        seat = self._seats.get(operator_id)
        if seat is None:
            return []
        ids = self._reclaimable(seat, reason)
        for conversation_id in ids:
            self.release(conversation_id, requeue=True)
        return ids

    # internals

    def _seat(self, operator_id: str) -> Seat:
        seat = self._seats.get(operator_id)
        if seat is None:
            raise NotFound(f"operator {operator_id} has no seat in the roster")
        return seat

    def _has_room(self, seat: Seat) -> bool:
        return seat.max_open is None or len(self._held[seat.operator_id]) < seat.max_open

    def _eligible(self, seat: Seat, team_id: str | None) -> bool:
        return seat.presence is _ONLINE and (team_id is None or team_id in seat.teams) and self._has_room(seat)

    def _open_seats(self) -> list[Seat]:
        """Online seats below their cap: the ones auto-assignment may use."""
        held, online = self._held, _ONLINE
        return [
            seat
            for seat in self._seats.values()
            if seat.presence is online and (seat.max_open is None or len(held[seat.operator_id]) < seat.max_open)
        ]

    def _pick(self, candidates: Iterable[Seat], team_id: str | None, *, room_checked: bool = True) -> str | None:
        """The least loaded of ``candidates`` in the team, then idle longest, then by id; without
        ``room_checked`` (the candidates are not :meth:`_open_seats`), only those online with room."""
        held, idle_since, online = self._held, self._idle_since, _ONLINE
        best: tuple[int, datetime, str] | None = None
        for seat in candidates:
            if team_id is None or team_id in seat.teams:
                load = len(held[seat.operator_id])
                if not room_checked and (
                    seat.presence is not online or (seat.max_open is not None and load >= seat.max_open)
                ):
                    continue
                key = (load, idle_since[seat.operator_id], seat.operator_id)
                if best is None or key < best:
                    best = key
        return None if best is None else best[2]

    def _index_teams(self) -> None:
        members: dict[str, list[Seat]] = {}
        for seat in self._seats.values():
            for team_id in seat.teams:
                members.setdefault(team_id, []).append(seat)
        self._team_seats = {team_id: tuple(seats) for team_id, seats in members.items()}

    def _reclaimable(self, seat: Seat, reason: Reclaim, now: datetime | None = None) -> list[str]:
        held = self._held[seat.operator_id]
        if reason is Reclaim.CAP_LOWERED:
            if seat.max_open is None:
                return []
            # A supervisor's forced assignments are their own allowance on top of the cap.
            kept = [(conversation_id, h) for conversation_id, h in held.items() if not h.over_cap]
            excess = len(kept) - seat.max_open
            return [conversation_id for conversation_id, h in reversed(kept) if not h.touched][: max(excess, 0)]
        if reason is Reclaim.OFFLINE and seat.presence is not Presence.OFFLINE:
            return []
        if reason is Reclaim.AWAY:
            moment = self._now() if now is None else now
            if seat.presence is not Presence.AWAY or seat.away_since is None:
                return []
            if moment - seat.away_since < self._away_grace:
                return []
        return [conversation_id for conversation_id, h in held.items() if not h.touched]

    def _record(self, conversation: str | Waiting) -> Waiting:
        if isinstance(conversation, Waiting):
            return conversation
        entry = self._queued.get(conversation)
        if entry is not None:
            return entry[-1]
        holder = self._holder.get(conversation)
        if holder is not None:
            return self._held[holder][conversation].waiting
        raise NotFound(f"conversation {conversation} is neither queued nor assigned; pass its Waiting record")

    def _detach(self, conversation_id: str) -> None:
        """Take a conversation out of the queue or off its holder, wherever it is."""
        if self._queued.pop(conversation_id, None) is not None:
            self._compact()
        holder = self._holder.pop(conversation_id, None)
        if holder is not None:
            del self._held[holder][conversation_id]

    def _push(self, waiting: Waiting) -> None:
        entry: _Entry = (
            _RANK[waiting.priority],
            waiting.waiting_since,
            waiting.conversation_id,
            next(self._numbers),
            waiting,
        )
        self._queued[waiting.conversation_id] = entry  # any older entry is now stale
        heapq.heappush(self._heaps.setdefault(waiting.team_id, []), entry)
        self._heap_size += 1
        self._compact()

    def _head(self, team_id: str | None) -> _Entry | None:
        """The team's first live entry, dropping stale ones on the way (lazy deletion)."""
        heap = self._heaps.get(team_id)
        while heap:
            entry = heap[0]
            if self._queued.get(entry[2]) is entry:
                return entry
            heapq.heappop(heap)
            self._heap_size -= 1
        if heap is not None:
            del self._heaps[team_id]
        return None

    def _compact(self) -> None:
        """Rebuild the heaps when stale entries outnumber live ones, so memory and pops stay
        proportional to what is queued (amortized constant per operation)."""
        if self._heap_size <= 2 * len(self._queued) + 64:
            return
        self._heaps = {}
        for entry in self._queued.values():
            self._heaps.setdefault(entry[-1].team_id, []).append(entry)
        for heap in self._heaps.values():
            heapq.heapify(heap)
        self._heap_size = len(self._queued)
