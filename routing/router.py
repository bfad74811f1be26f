"""The routing pipeline: what happens to a conversation before and between people.

A customer message is routed on the intake path, as the inbox's :class:`~inbox.ports.Triage`:
:meth:`Router.route` runs the rules and picks the assignee before the message is stored, the
inbox writes the message, the changed conversation and the decision's system event in one unit of
work, then :meth:`Router.answer` adds the auto-replies and timers to the same unit. So a
conversation never shows up unrouted, and a crash keeps the message with its routing or neither.

On an operator's reply, a resolution, a snooze or a hand-back, and on presence or cap changes,
the router hears the bus and assignment follows at once; those decisions go through
:meth:`InboxService.decide`, stored with the reason as a system event. Timers (the "no answer
yet" auto-reply, snooze wake-ups) are durable: they live in the store and fire after a restart.

For manual assignments the router is also the inbox's :class:`~inbox.ports.AssignmentGate`
(caps and focus mode are checked before the change is stored). It ignores the events its own
decisions publish.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import logging
from collections.abc import AsyncIterator, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from types import MappingProxyType
from typing import Any

from inbox.clock import Clock
from inbox.domain import (
    Conversation,
    ConversationStatus,
    Direction,
    MessageKind,
    Operator,
    Role,
    Timer,
)
from inbox.errors import NotFound, PermissionDenied
from inbox.events import ConversationUpdated, Event, MessageCreated, OperatorUpdated
from inbox.ids import new_id
from inbox.ports import Arrival, AutoReply, Routed
from inbox.service import UNCHANGED, InboxService
from routing.assignment import AtCapacity, Reclaim, Roster, Seat, Waiting, Whereabouts
from routing.calendar import BusinessCalendar
from routing.catalog import Catalog
from routing.effects import Effects
from routing.marks import Marks
from routing.replies import Replies
from routing.rules import Action, Facts
from storage.base import ConversationFilter

__all__ = ["NO_ANSWER", "SNOOZE_END", "Router"]

log = logging.getLogger(__name__)

NO_ANSWER = "no_answer"
SNOOZE_END = "snooze_end"
_OWN = contextvars.ContextVar("routing_deciding", default=False)
_NEW_CONVERSATION_EVENTS = ("conversation_created", "message_received")
_MESSAGE_EVENTS = ("message_received",)
_FOLDED_KEPT = 4096
_TIMER_ATTEMPTS = 5
_TIMER_RETRY = timedelta(minutes=1)  # doubled after each failure
_AS_IS: Mapping[str, Any] = MappingProxyType({})


@dataclass(frozen=True, slots=True, kw_only=True)
class _Plan:
    """What the rules decided for one message, folded into one change."""

    rules: tuple[str, ...] = ()
    reason: str = ""  # "rules: " and their names
    changes: dict[str, Any]
    templates: tuple[str, ...] = ()
    operator_id: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class _FollowUp:
    """What :meth:`Router.route` found that :meth:`Router.answer` needs, carried by the inbox."""

    answers: bool
    open_now: bool
    templates: tuple[str, ...]
    calendar: BusinessCalendar
    before: Whereabouts  # where the conversation stood in the roster, for unroute()


class Router:
    def __init__(self, service: InboxService, clock: Clock, *, catalog: Catalog | None = None) -> None:
        self.service = service
        self.store = service.store
        self.clock = clock
        self.catalog = catalog or Catalog(service.store)
        self.roster = Roster(clock.now)
        self.marks = Marks(service.store)
        self._operators: dict[str, Operator] = {}
        self._unsubscribe: Any = None
        self._timers: asyncio.Task[None] | None = None
        self._effects_of: Any = None  # the compiled rules _folded belongs to
        self._folded: dict[tuple[str, ...], Effects] = {}

    # lifecycle

    async def start(self, *, timer_interval: float | None = 1.0) -> None:
        """Loads the catalog and rebuilds the roster from the store (assignments, the queue), then
        listens; ``timer_interval`` None leaves firing timers to the caller (tests in virtual time)."""
        await self.catalog.load()
        self.roster = Roster(self.clock.now, away_grace=timedelta(minutes=self.catalog.settings.away_grace_minutes))
        for operator in await self.store.list_operators():
            self._seat(operator)
        await self._restore()
        self._unsubscribe = self.service.bus.subscribe(self.on_event)
        self.service.assignment_gate = self
        self.service.triage = self
        await self._persist_fill()
        if timer_interval is not None:
            self._timers = asyncio.create_task(self._tick_forever(timer_interval), name="routing-timers")

    async def stop(self) -> None:
        if self._unsubscribe:
            self._unsubscribe()
            self._unsubscribe = None
        if self.service.assignment_gate is self:
            self.service.assignment_gate = None
        if self.service.triage is self:
            self.service.triage = None
        if self._timers:
            self._timers.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._timers

    async def _restore(self) -> None:
        """The roster from the open conversations; and every snoozed one's wake-up timer, which an
        operator's snooze writes after the snooze is stored: a crash in between must not leave a
        conversation asleep for good (the timer's write is an upsert, so one that exists stays)."""
        async for conversation in self._conversations(ConversationStatus.OPEN):
            if conversation.assignee_id and self.roster.seat(conversation.assignee_id):
                self.roster.restore(
                    _waiting(conversation),
                    conversation.assignee_id,
                    touched=conversation.first_response_at is not None,
                )
            elif conversation.assignee_id is None:
                self.roster.enqueue(_waiting(conversation))
        async for conversation in self._conversations(ConversationStatus.SNOOZED):
            await self._arm_snooze_end(conversation)
        await self.store.durable()

    async def _conversations(self, status: ConversationStatus) -> AsyncIterator[Conversation]:
        cursor = None
        while True:
            page = await self.store.list_conversations(ConversationFilter(status=status), limit=500, cursor=cursor)
            for conversation in page.items:
                yield conversation
            if page.next_cursor is None:
                return
            cursor = page.next_cursor

    # events

    async def on_event(self, sequence: int, event: Event) -> None:
        if _OWN.get():
            return
        if isinstance(event, MessageCreated):
            message = event.message
            if message.direction is Direction.OUT and message.kind is MessageKind.MESSAGE and message.author_id:
                await self._on_operator_reply(event.conversation)
        elif isinstance(event, ConversationUpdated):
            await self._on_conversation_changed(event)
        elif isinstance(event, OperatorUpdated):
            await self._on_operator_changed(event.operator)

    # the intake path (the inbox's Triage)

    async def route(self, arrival: Arrival, *, plain: bool = False) -> Routed:
        """Rules and assignment for a customer message about to be stored: the changes and why.
        Nothing is written here; the inbox stores the result with the message. If the rules fail
        (or ``plain``: the inbox refused what they asked), the message is routed without them."""
        before = self.roster.whereabouts(arrival.conversation.id)
        if not plain:
            try:
                return self._routed(arrival, before, rules=True)
            except Exception:
                log.exception("rules failed for message %s; routed without them", arrival.message.id)
                self.roster.put_back(before)
        try:
            return self._routed(arrival, before, rules=False)
        except BaseException:
            self.roster.put_back(before)
            raise

    def _routed(self, arrival: Arrival, before: Whereabouts, *, rules: bool) -> Routed:
        conversation, message = arrival.conversation, arrival.message
        answers = not (message.extras.get("auto_reply") or message.extras.get("suppress_auto_reply"))
        attributes = arrival.contact.attributes
        calendar = self.catalog.calendar_for(arrival.channel.id, conversation.team_id)
        open_now = calendar.is_open(self.clock.now())
        use_rules = rules and len(self.catalog.rules) > 0
        plan = self._plan(arrival, attributes, open_now) if use_rules else _Plan(changes={})
        changes = {name: value for name, value in plan.changes.items() if getattr(conversation, name) != value}
        reasons: list[str] = []
        details: dict[str, Any] = {}
        if changes:
            reasons.append(plan.reason)
            details["rules"] = list(plan.rules)
        assignee, why = self._choose(conversation, plan.operator_id, changes)
        if assignee is not None:
            changes["assignee_id"] = assignee
            reasons.append(self._assignment_reason(assignee, why))
            details |= {"assignee_id": assignee, "why": why}
        follow_up = _FollowUp(
            answers=answers, open_now=open_now, templates=plan.templates, calendar=calendar, before=before
        )
        return Routed(changes=changes, reason="; ".join(reasons), details=details, plan=follow_up)

    def unroute(self, arrival: Arrival, routed: Routed) -> None:
        if isinstance(routed.plan, _FollowUp):
            self.roster.put_back(routed.plan.before)
            self.marks.forget(arrival.conversation.id, arrival.contact.id)

    async def answer(self, arrival: Arrival, routed: Routed) -> Sequence[AutoReply]:
        """The auto-replies this message triggers, after it is written, and the "no answer yet"
        timer; marks and timers go into the same unit of work as the message."""
        follow_up = routed.plan
        conversation = arrival.conversation
        if "snoozed_until" in routed.changes:
            await self._arm_snooze_end(conversation)
        if not isinstance(follow_up, _FollowUp) or not follow_up.answers:
            return ()
        settings = self.catalog.settings
        replies = Replies(
            self.catalog,
            self.marks,
            self.clock,
            conversation,
            arrival.contact.name,
            arrival.contact.attributes.get("language"),
            follow_up.calendar,
            text=arrival.message.text,
            channel=arrival.channel.name,
            fresh=arrival.new_conversation,
            new_contact=arrival.new_contact,
        )
        if arrival.new_conversation:
            await replies.add(settings.acknowledgement_template_id, "acknowledgement", once=True)
        if not follow_up.open_now:
            await replies.add(settings.out_of_hours_template_id, "out_of_hours", once=False)
        for template_id in follow_up.templates:
            await replies.add(template_id, f"rule:{template_id}", once=True)
        # armed by the message that starts a wait, so once per wait: later messages of the same wait,
        # and the timer's own auto-reply, leave ``waiting_since`` as it is
        start = conversation.waiting_since
        if start is not None and start == arrival.message.created_at and conversation.status is ConversationStatus.OPEN:
            await self._arm_no_answer(conversation, start)
        return replies.written

    def _plan(self, arrival: Arrival, attributes: Any, open_now: bool) -> _Plan:
        conversation = arrival.conversation
        events = _NEW_CONVERSATION_EVENTS if arrival.new_conversation else _MESSAGE_EVENTS
        facts = Facts(
            event=events[-1],
            channel_id=conversation.channel_id,
            channel_kind=arrival.channel.kind,
            text=arrival.message.text,
            subject=conversation.subject,
            contact_attributes=attributes,
            contact_is_new=arrival.new_contact,
            inside_business_hours=open_now,
            priority=str(conversation.priority),
            tags=frozenset(conversation.tags),
            language=attributes.get("language"),  # None: the rules guess from the text if one asks
        )
        decision = self.catalog.rules.evaluate_in_turn(facts, events)
        if not decision.matched:
            return _Plan(changes={})
        effects = self._effects(decision.matched, decision.actions)
        changes: dict[str, Any] = dict(effects.changes)
        new_tags = [tag for tag in effects.tags if tag not in conversation.tags]
        if new_tags:
            changes["tags"] = (*conversation.tags, *new_tags)
        if effects.snooze_minutes is not None:
            changes["snoozed_until"] = self.clock.now() + timedelta(minutes=effects.snooze_minutes)
        return _Plan(
            rules=effects.rules,
            reason=effects.reason,
            changes=changes,
            templates=effects.templates,
            operator_id=effects.operator_id,
        )

    def _effects(self, matched: tuple[str, ...], actions: Sequence[Action]) -> Effects:
        """The rules' actions folded into one outcome, once per rule set and combination of
        matching rules: the same few combinations decide most messages."""
        if self._effects_of is not self.catalog.rules:
            self._effects_of, self._folded = self.catalog.rules, {}
        effects = self._folded.get(matched)
        if effects is None:
            if len(self._folded) >= _FOLDED_KEPT:
                self._folded.clear()
            reason = "rules: " + ", ".join(self.catalog.get("rule", rule_id).name for rule_id in matched)
            effects = self._folded[matched] = Effects.of(matched, reason, actions)
        return effects

    async def _on_operator_reply(self, conversation: Conversation) -> None:
        self.roster.touch(conversation.id)
        await self.store.cancel_timer(NO_ANSWER, conversation.id)

    async def _on_conversation_changed(self, event: ConversationUpdated) -> None:
        conversation = event.conversation
        freed = False
        if "status" in event.changed or "snoozed_until" in event.changed:
            if event.actor_id:  # a rule's snooze got its timer with the message (answer())
                await self._arm_snooze_end(conversation)
            if conversation.status in (ConversationStatus.RESOLVED, ConversationStatus.SNOOZED):
                freed = self.roster.release(conversation.id) is not None
                self.roster.dequeue(conversation.id)
                await self.store.cancel_timer(NO_ANSWER, conversation.id)
            elif conversation.status is ConversationStatus.OPEN and event.actor_id:
                await self._route(conversation)  # reopened by an operator
        if "assignee_id" in event.changed and event.actor_id:
            freed = True  # whoever held it has room now (the gate already moved it in the roster)
            if conversation.assignee_id is None and conversation.status is ConversationStatus.OPEN:
                self.roster.enqueue(_waiting(conversation))  # handed back: it waits again
        if freed:
            await self._persist_fill()

    async def _on_operator_changed(self, operator: Operator) -> None:
        change = self._seat(operator)
        if change.reclaim is not None:
            await self._reclaim(operator, change.reclaim)
        if change.fill:
            await self._persist_fill()

    # assignment

    def _choose(
        self, conversation: Conversation, operator_id: str | None = None, changes: Mapping[str, Any] = _AS_IS
    ) -> tuple[str | None, str]:
        """Who takes an open, unassigned conversation now (with ``changes``, the rules' team, priority
        or status, applied) — the operator a rule named (if they have room), else the roster's
        choice — already recorded in the roster; (None, why) when it stays where it is or waits in
        the queue. Synchronous, so no other arrival can take the same slot in between."""
        if changes.get("status", conversation.status) is not ConversationStatus.OPEN:
            return None, "not open"
        if conversation.assignee_id is not None:
            if self.roster.assigned_to(conversation.id) is None and self.roster.seat(conversation.assignee_id):
                self.roster.restore(_waiting(conversation, changes), conversation.assignee_id, touched=True)
            return None, "already assigned"
        waiting = _waiting(conversation, changes)
        if operator_id is not None and self.roster.seat(operator_id):
            try:
                self.roster.assign(waiting, operator_id)
                return operator_id, "named by a rule"
            except AtCapacity:
                pass
        chosen = self.roster.place(waiting)
        return chosen, "least loaded eligible operator" if chosen else "queued"

    async def _route(self, conversation: Conversation, operator_id: str | None = None) -> None:
        assignee, why = self._choose(conversation, operator_id)
        if assignee is not None:
            await self._record_assignment(conversation.id, assignee, why)

    def _assignment_reason(self, operator_id: str, why: str) -> str:
        operator = self._operators.get(operator_id)
        seat = self.roster.seat(operator_id)
        cap = seat.max_open if seat and seat.max_open is not None else "∞"
        name = operator.name if operator else operator_id
        return f"assigned to {name}: {why} (now holds {self.roster.load(operator_id)}/{cap})"

    async def _record_assignment(self, conversation_id: str, operator_id: str, why: str) -> None:
        try:
            await self._decide_by_id(
                conversation_id,
                assignee_id=operator_id,
                reason=self._assignment_reason(operator_id, why),
                details={"assignee_id": operator_id, "why": why},
            )
        except NotFound:
            self.roster.release(conversation_id)

    async def _persist_fill(self) -> None:
        for conversation_id, operator_id in self.roster.fill():
            await self._record_assignment(conversation_id, operator_id, "next in the queue")

    async def _reclaim(self, operator: Operator, reason: Reclaim) -> None:
        for conversation_id in self.roster.reclaim(operator.id, reason=reason):
            await self._decide_by_id(
                conversation_id,
                assignee_id=None,
                reason=f"returned to the queue: {operator.name} is {reason} and had not answered",
                details={"previous_assignee_id": operator.id, "why": str(reason)},
            )

    async def take_next(self, operator: Operator) -> Conversation | None:
        """ "Get next": the queue's choice for this operator, assigned to them."""
        if operator.id not in self._operators:
            self._seat(operator)
        waiting = self.roster.pull(operator.id)
        if waiting is None:
            return None
        await self._record_assignment(waiting.conversation_id, operator.id, "taken with get next")
        return await self.store.get_conversation(waiting.conversation_id)

    def admit(self, actor: Operator, conversation: Conversation, assignee_id: str | None, *, over_cap: bool) -> bool:
        """The inbox's gate for a manual assignment, checked before it is stored: focus mode keeps
        operators from picking conversations themselves; a cap is exceeded only by a supervisor who
        asks for it. Returns True when it exceeds a cap (the inbox records that)."""
        if assignee_id is None:
            self.roster.release(conversation.id)
            return False
        if actor.id == assignee_id and not actor.role.at_least(Role.SUPERVISOR) and self.in_focus(actor):
            raise PermissionDenied("in focus mode, work arrives by auto-assignment; use get next")
        if conversation.status is not ConversationStatus.OPEN or self.roster.seat(assignee_id) is None:
            # only open work counts against a cap; an operator without a seat (added while running)
            # is not tracked until they get one: either way the previous holder's slot is freed
            self.roster.release(conversation.id)
            self.roster.dequeue(conversation.id)
            return False
        force = over_cap and actor.role.at_least(Role.SUPERVISOR)
        assignment = self.roster.assign(_waiting(conversation), assignee_id, force=force)
        return assignment.over_cap

    def in_focus(self, operator: Operator) -> bool:
        current = self._operators.get(operator.id, operator)
        return current.focus_mode or self.catalog.focus_enforced(current.teams)

    def _seat(self, operator: Operator) -> Any:
        self._operators[operator.id] = operator
        return self.roster.set_seat(Seat.of(operator))

    # timers

    async def _arm_no_answer(self, conversation: Conversation, start: datetime) -> None:
        settings = self.catalog.settings
        if settings.no_answer_template_id:
            due = start + timedelta(minutes=settings.no_answer_minutes)
            await self.store.set_timer(Timer(id=new_id(), kind=NO_ANSWER, conversation_id=conversation.id, due_at=due))

    async def _arm_snooze_end(self, conversation: Conversation) -> None:
        if conversation.status is ConversationStatus.SNOOZED and conversation.snoozed_until:
            timer = Timer(
                id=new_id(), kind=SNOOZE_END, conversation_id=conversation.id, due_at=conversation.snoozed_until
            )
            await self.store.set_timer(timer)

    async def fire_due_timers(self) -> int:
        """Fires what is due now; returns how many. Also reclaims from operators away too long."""
        fired = 0
        for timer in await self.store.due_timers(self.clock.now(), limit=100):
            try:
                await self._fire(timer)
            except Exception:
                log.exception("routing timer %s (%s) failed", timer.id, timer.kind)
                await self._retry_later(timer)
            else:
                await self.store.delete_timer(timer)
            fired += 1
        for operator_id in self.roster.overdue_away():
            await self._reclaim(self._operators[operator_id], Reclaim.AWAY)
        if fired:
            await self._persist_fill()
        await self.store.durable()
        return fired

    async def _fire(self, timer: Timer) -> None:
        conversation = await self.store.get_conversation(timer.conversation_id)
        if timer.kind == NO_ANSWER:
            if conversation.waiting_since is None or conversation.status is not ConversationStatus.OPEN:
                return  # answered or closed meanwhile
            contact = await self.store.get_contact(conversation.contact_id)
            calendar = self.catalog.calendar_for(conversation.channel_id, conversation.team_id)
            language = contact.attributes.get("language")
            channel = await self.service.channel(conversation.channel_id)
            replies = Replies(
                self.catalog,
                self.marks,
                self.clock,
                conversation,
                contact.name,
                language,
                calendar,
                channel=channel.name,
            )
            reply = await replies.add(self.catalog.settings.no_answer_template_id, "no_answer", once=False)
            if reply is not None:
                try:
                    with _own_events():
                        await self.service.auto_reply(conversation.id, reply.text, trigger=reply.trigger)
                except BaseException:
                    self.marks.forget(conversation.id, conversation.contact_id)
                    raise
        elif timer.kind == SNOOZE_END:
            until = conversation.snoozed_until
            if conversation.status is ConversationStatus.SNOOZED and until is not None and until <= self.clock.now():
                woken = await self._decide(conversation, reason="snooze ended", status=ConversationStatus.OPEN)
                await self._route(woken)
                if woken.waiting_since is not None:  # the customer still waits: a wait begins now for the timer
                    await self._arm_no_answer(woken, self.clock.now())

    async def _retry_later(self, timer: Timer) -> None:
        """A timer whose firing failed (the store was unavailable, say) is due again after a
        backoff, up to :data:`_TIMER_ATTEMPTS` tries; one moved meanwhile keeps its new deadline."""
        if not await self.store.delete_timer(timer):
            return
        attempts = int(timer.payload.get("attempts", 0)) + 1
        if attempts >= _TIMER_ATTEMPTS:
            log.error("routing timer %s (%s) given up after %d attempts", timer.id, timer.kind, attempts)
            return
        delay = _TIMER_RETRY * 2 ** (attempts - 1)
        payload = {**timer.payload, "attempts": attempts}
        await self.store.set_timer(replace(timer, id=new_id(), due_at=self.clock.now() + delay, payload=payload))

    async def _tick_forever(self, interval: float) -> None:
        while True:
            await asyncio.sleep(interval)
            try:
                await self.fire_due_timers()
            except Exception:
                log.exception("routing timers failed; retrying")

    # decisions

    async def _decide(self, conversation: Conversation, *, reason: str, **changes: Any) -> Conversation:
        return await self._decide_by_id(conversation.id, reason=reason, **changes)

    async def _decide_by_id(self, conversation_id: str, *, reason: str, **changes: Any) -> Conversation:
        with _own_events():
            return await self.service.decide(
                conversation_id,
                reason=reason,
                **{k: changes.get(k, UNCHANGED) for k in _DECIDABLE},
                details=changes.get("details"),
            )


_DECIDABLE = ("team_id", "assignee_id", "status", "priority", "tags", "snoozed_until")


@contextlib.contextmanager
def _own_events() -> Iterator[None]:
    token = _OWN.set(True)
    try:
        yield
    finally:
        _OWN.reset(token)


def _waiting(conversation: Conversation, changes: Mapping[str, Any] = _AS_IS) -> Waiting:
    return Waiting(
        conversation_id=conversation.id,
        team_id=changes.get("team_id", conversation.team_id),
        priority=changes.get("priority", conversation.priority),
        waiting_since=conversation.waiting_since or conversation.created_at,
    )
