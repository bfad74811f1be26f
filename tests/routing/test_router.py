"""The routing pipeline on the real SQLite store, in virtual time: rules, auto-replies, durable
timers and assignment with caps, driven through the inbox service as connectors drive it."""

from __future__ import annotations

import asyncio
import random
from collections import Counter
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from inbox.accounts import add_operator
from inbox.clock import ManualClock
from inbox.domain import Channel, ConversationStatus, MessageKind, Operator, Presence, Priority, Role, Timer
from inbox.errors import Conflict, PermissionDenied, Unavailable
from inbox.ids import new_id
from inbox.ports import Routed
from inbox.service import InboxService
from routing.router import NO_ANSWER, Router
from storage.base import ConversationFilter, Store
from tests.fakes import failing_commits, inbound

# Monday 2026-11-30 10:00 in Moscow (UTC+3, no DST)
MONDAY_10_MSK = datetime(2026, 11, 30, 7, 0, tzinfo=UTC)


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(MONDAY_10_MSK)


@pytest.fixture
async def router(service: InboxService, clock: ManualClock) -> Router:
    router = Router(service, clock)
    await router.start(timer_interval=None)
    yield router
    await router.stop()


async def _operator(store: Store, clock: ManualClock, router: Router, name: str, **settings: Any) -> Operator:
    created = await add_operator(store, email=f"{name}@example.com", name=name, clock=clock)
    return await router.service.update_operator(created.operator.id, _admin(), presence=Presence.ONLINE, **settings)


def _admin() -> Operator:
    return Operator(id="admin", email="admin@example.com", name="Admin", role=Role.ADMIN, created_at=MONDAY_10_MSK)


async def _messages(store: Store, conversation_id: str, kind: MessageKind | None = None) -> list:
    items = (await store.list_messages(conversation_id, limit=100)).items
    return [m for m in items if kind is None or m.kind is kind]


async def _template(router: Router, name: str, en: str, ru: str | None = None) -> str:
    bodies = {"en": en} | ({"ru": ru} if ru else {})
    return (await router.catalog.put("template", {"name": name, "bodies": bodies})).id


async def test_least_loaded_online_operator_gets_it_and_the_queue_waits_for_room(
    router: Router, service: InboxService, store: Store, channel: Channel, clock: ManualClock
) -> None:
    anna = await _operator(store, clock, router, "anna", max_open=2)
    boris = await _operator(store, clock, router, "boris", max_open=2)
    away = await _operator(store, clock, router, "away", max_open=5)
    await service.update_operator(away.id, _admin(), presence=Presence.AWAY)
    conversations = []
    for n in range(5):
        clock.advance(timedelta(seconds=1))
        conversations.append((await service.receive(inbound(channel.id, f"m{n}", contact=f"c{n}"))).conversation)
    stored = [await store.get_conversation(c.id) for c in conversations]
    assert Counter(c.assignee_id for c in stored) == {anna.id: 2, boris.id: 2, None: 1}
    assert [w.conversation_id for w in router.roster.queue()] == [conversations[4].id]
    (system,) = await _messages(store, stored[0].id, MessageKind.SYSTEM)
    assert system.text.startswith("assigned to anna: least loaded eligible operator")
    # anna resolves one: the queued conversation is hers at once
    mine = next(c for c in stored if c.assignee_id == anna.id)
    await service.set_status(mine.id, anna, ConversationStatus.RESOLVED)
    assert (await store.get_conversation(conversations[4].id)).assignee_id == anna.id
    assert router.roster.queue() == []


async def test_queue_order_is_priority_then_waiting_time(
    router: Router, service: InboxService, store: Store, channel: Channel, clock: ManualClock
) -> None:
    ids = []
    for n, priority in enumerate([Priority.NORMAL, Priority.URGENT, Priority.NORMAL, Priority.HIGH]):
        clock.advance(timedelta(seconds=1))
        received = await service.receive(inbound(channel.id, f"m{n}", contact=f"c{n}"))
        await service.update(received.conversation.id, _admin(), priority=priority)
        ids.append(received.conversation.id)
    router.roster.dequeue(ids[0])  # re-key the queue from the store as a restart would
    await router.stop()
    fresh = Router(service, clock)
    await fresh.start(timer_interval=None)
    assert [w.conversation_id for w in fresh.roster.queue()] == [ids[1], ids[3], ids[0], ids[2]]
    operator = await _operator(store, clock, fresh, "olga", max_open=1)
    assert (await store.get_conversation(ids[1])).assignee_id == operator.id  # came online: took the head
    await fresh.stop()


async def test_rules_run_in_order_and_stop_processing_ends_them(
    router: Router, service: InboxService, store: Store, channel: Channel
) -> None:
    await router.catalog.put("team", {"id": "billing", "name": "Billing"})
    rule = {"event": "message_received", "match": "all"}
    await router.catalog.put(
        "rule",
        rule
        | {
            "name": "refunds",
            "position": 1,
            "conditions": [{"field": "text", "op": "contains", "value": "возврат"}],
            "actions": [{"type": "assign_team", "team_id": "billing"}, {"type": "add_tag", "tag": "refund"}],
            "stop": True,
        },
    )
    await router.catalog.put(
        "rule",
        rule
        | {
            "name": "urgent words",
            "position": 0,
            "conditions": [{"field": "text", "op": "matches", "value": "(?i)срочно|urgent"}],
            "actions": [{"type": "set_priority", "priority": "urgent"}],
        },
    )
    await router.catalog.put(
        "rule",
        rule | {"name": "never reached", "position": 2, "conditions": [], "actions": [{"type": "add_tag", "tag": "x"}]},
    )
    first = await service.receive(inbound(channel.id, "m1", contact="c1", text="СРОЧНО нужен Возврат денег"))
    routed = await store.get_conversation(first.conversation.id)
    assert routed.priority is Priority.URGENT and routed.team_id == "billing" and routed.tags == ("refund",)
    (system,) = await _messages(store, routed.id, MessageKind.SYSTEM)
    assert system.text == "rules: urgent words, refunds"
    other = await service.receive(inbound(channel.id, "m2", contact="c2", text="hello"))
    assert (await store.get_conversation(other.conversation.id)).tags == ("x",)


async def test_out_of_hours_reply_once_per_period_never_to_an_auto_reply(
    router: Router, service: InboxService, store: Store, channel: Channel, clock: ManualClock
) -> None:
    await router.catalog.put(
        "calendar",
        {
            "id": "msk",
            "name": "Moscow office",
            "time_zone": "Europe/Moscow",
            "weekly": [{"weekday": d, "start": "09:00", "end": "18:00"} for d in range(5)],
            "holidays": [],
            "exceptions": [],
        },
    )
    template = await _template(
        router,
        "after hours",
        "We open {{ next_opening }}.",
        "Мы откроемся {{ next_opening }}, {{ contact_name }}.",
    )
    await router.catalog.put(
        "settings",
        {"default_calendar_id": "msk", "out_of_hours_template_id": template, "out_of_hours_period_minutes": 720},
    )
    clock.set(datetime(2026, 11, 30, 17, 0, tzinfo=UTC))  # 20:00 in Moscow: closed
    received = await service.receive(inbound(channel.id, "m1", text="Здравствуйте, где заказ?"))
    clock.advance(timedelta(minutes=5))
    await service.receive(inbound(channel.id, "m2", text="Ау?"))
    replies = await _messages(store, received.conversation.id, MessageKind.AUTO_REPLY)
    assert [m.text for m in replies] == ["Мы откроемся вторник, 1 декабря 2026, 09:00, Ivan."]
    assert replies[0].extras["trigger"] == "out_of_hours"
    clock.advance(timedelta(hours=13))  # next morning 09:05: open, so nothing
    await service.receive(inbound(channel.id, "m3", text="?"))
    clock.set(datetime(2026, 12, 1, 16, 0, tzinfo=UTC))  # closed again, period over: once more
    await service.receive(inbound(channel.id, "m4", text="??"))
    assert len(await _messages(store, received.conversation.id, MessageKind.AUTO_REPLY)) == 2
    # an out-of-office reply from the customer's side is never answered
    auto = inbound(channel.id, "m5", contact="robot", text="I am out of office")
    await service.receive(auto.__class__(**{**_fields(auto), "auto_reply": True}))
    robot = (await store.list_conversations(ConversationFilter(), limit=10)).items[0]
    assert await _messages(store, robot.id, MessageKind.AUTO_REPLY) == []


def _fields(value: Any) -> dict[str, Any]:
    return {name: getattr(value, name) for name in value.__dataclass_fields__}


async def test_no_answer_timer_survives_a_restart_and_a_reply_cancels_it(
    router: Router, service: InboxService, store: Store, channel: Channel, clock: ManualClock
) -> None:
    template = await _template(router, "still waiting", "Conversation #{{ conversation_number }}: we are on it.")
    await router.catalog.put("settings", {"no_answer_template_id": template, "no_answer_minutes": 15})
    waiting = (await service.receive(inbound(channel.id, "m1", contact="c1"))).conversation
    answered = (await service.receive(inbound(channel.id, "m2", contact="c2"))).conversation
    await router.stop()  # restart: a new router over the same store
    router = Router(service, clock)
    await router.start(timer_interval=None)
    operator = await _operator(store, clock, router, "olga")
    await service.reply(answered.id, operator, "Здравствуйте!")
    clock.advance(timedelta(minutes=14))
    assert await router.fire_due_timers() == 0
    clock.advance(timedelta(minutes=1))
    assert await router.fire_due_timers() == 1
    (reply,) = await _messages(store, waiting.id, MessageKind.AUTO_REPLY)
    assert reply.text == f"Conversation #{waiting.number}: we are on it." and reply.extras["trigger"] == "no_answer"
    assert await _messages(store, answered.id, MessageKind.AUTO_REPLY) == []
    clock.advance(timedelta(hours=1))
    await service.receive(inbound(channel.id, "m3", contact="c1", text="again"))  # same wait: not re-armed
    clock.advance(timedelta(hours=1))
    assert await router.fire_due_timers() == 0
    await router.stop()


async def test_caps_hold_under_200_concurrent_arrivals_for_5_operators(
    router: Router, service: InboxService, store: Store, channel: Channel, clock: ManualClock
) -> None:
    operators = [await _operator(store, clock, router, f"op{n}", max_open=10) for n in range(5)]
    rng = random.Random(7)

    async def arrive(n: int) -> None:
        for _ in range(rng.randrange(4)):
            await asyncio.sleep(0)
        await service.receive(inbound(channel.id, f"m{n}", contact=f"c{n}"))

    await asyncio.gather(*(arrive(n) for n in range(200)))
    open_ = await store.list_conversations(ConversationFilter(status=ConversationStatus.OPEN), limit=500)
    loads = Counter(c.assignee_id for c in open_.items)
    assert loads == {**{o.id: 10 for o in operators}, None: 150}
    assert len(router.roster.queue()) == 150


async def test_manual_assignment_past_a_cap_only_when_asked_and_on_the_record(
    router: Router, service: InboxService, store: Store, channel: Channel, clock: ManualClock, supervisor: Operator
) -> None:
    olga = await _operator(store, clock, router, "olga", max_open=1)
    await service.receive(inbound(channel.id, "m1", contact="c1"))
    second = (await service.receive(inbound(channel.id, "m2", contact="c2"))).conversation
    assert second.assignee_id is None
    with pytest.raises(Conflict, match="cap is 1"):
        await service.update(second.id, supervisor, assignee_id=olga.id)
    forced = await service.update(second.id, supervisor, assignee_id=olga.id, over_cap=True)
    assert forced.assignee_id == olga.id and router.roster.load(olga.id) == 2
    (record,) = await _messages(store, second.id, MessageKind.SYSTEM)
    assert record.text == "assigned over the operator's cap by Sam" and record.extras["routing"]["over_cap"]


async def test_focus_mode_operators_take_work_only_from_the_queue(
    router: Router, service: InboxService, store: Store, channel: Channel, clock: ManualClock
) -> None:
    focused = await _operator(store, clock, router, "fox", max_open=3, focus_mode=True)
    await service.update_operator(focused.id, focused, presence=Presence.AWAY)
    early = (await service.receive(inbound(channel.id, "m1", contact="c1"))).conversation
    clock.advance(timedelta(minutes=1))
    await service.receive(inbound(channel.id, "m2", contact="c2"))
    with pytest.raises(PermissionDenied, match="focus mode"):
        await service.assign(early.id, focused, focused.id)
    taken = await router.take_next(focused)
    assert taken is not None and taken.id == early.id and taken.assignee_id == focused.id


async def test_rebalancing_returns_untouched_conversations_when_an_operator_goes_offline(
    router: Router, service: InboxService, store: Store, channel: Channel, clock: ManualClock
) -> None:
    anna = await _operator(store, clock, router, "anna", max_open=5)
    first = (await service.receive(inbound(channel.id, "m1", contact="c1"))).conversation
    second = (await service.receive(inbound(channel.id, "m2", contact="c2"))).conversation
    await service.reply(first.id, anna, "Смотрю")  # touched: stays with anna
    boris = await _operator(store, clock, router, "boris", max_open=5)
    await service.update_operator(anna.id, anna, presence=Presence.OFFLINE)
    assert (await store.get_conversation(first.id)).assignee_id == anna.id
    assert (await store.get_conversation(second.id)).assignee_id == boris.id
    texts = [m.text for m in await _messages(store, second.id, MessageKind.SYSTEM)]
    assert texts[1] == "returned to the queue: anna is offline and had not answered"
    # a lowered cap gives back only the excess
    await service.update_operator(anna.id, anna, presence=Presence.ONLINE)
    third = (await service.receive(inbound(channel.id, "m3", contact="c3"))).conversation
    assert (await store.get_conversation(third.id)).assignee_id == anna.id
    await service.update_operator(anna.id, _admin(), max_open=1)
    assert (await store.get_conversation(third.id)).assignee_id == boris.id


async def test_snooze_ends_by_a_durable_timer(
    router: Router, service: InboxService, store: Store, channel: Channel, clock: ManualClock, operator: Operator
) -> None:
    conversation = (await service.receive(inbound(channel.id, "m1"))).conversation
    await service.snooze(conversation.id, operator, clock.now() + timedelta(hours=2))
    clock.advance(timedelta(hours=2))
    assert await router.fire_due_timers() == 1
    woken = await store.get_conversation(conversation.id)
    assert woken.status is ConversationStatus.OPEN and woken.snoozed_until is None


async def test_a_rule_that_snoozes_a_new_conversation_wakes_it_by_a_timer(
    router: Router, service: InboxService, store: Store, channel: Channel, clock: ManualClock
) -> None:
    template = await _template(router, "still waiting", "We are on it.")
    await router.catalog.put("settings", {"no_answer_template_id": template, "no_answer_minutes": 45})
    await router.catalog.put(
        "rule",
        {
            "name": "come back later",
            "position": 1,
            "match": "all",
            "event": "conversation_created",
            "conditions": [{"field": "text", "op": "contains", "value": "later"}],
            "actions": [{"type": "snooze", "minutes": 30}],
        },
    )
    snoozed = (await service.receive(inbound(channel.id, "m1", text="answer me later"))).conversation
    assert snoozed.status is ConversationStatus.SNOOZED and snoozed.assignee_id is None
    assert not router.roster.is_queued(snoozed.id)
    clock.advance(timedelta(minutes=29))
    assert await router.fire_due_timers() == 0
    clock.advance(timedelta(minutes=1))
    assert await router.fire_due_timers() == 1
    woken = await store.get_conversation(snoozed.id)
    assert woken.status is ConversationStatus.OPEN and router.roster.is_queued(snoozed.id)
    assert [m.text for m in await _messages(store, snoozed.id, MessageKind.SYSTEM)] == [
        "rules: come back later",
        "snooze ended",
    ]
    # the no-answer timer armed on arrival fired while it slept (nothing sent); awake, the wait counts anew
    assert await _messages(store, snoozed.id, MessageKind.AUTO_REPLY) == []
    clock.advance(timedelta(minutes=44))
    assert await router.fire_due_timers() == 0
    clock.advance(timedelta(minutes=1))
    assert await router.fire_due_timers() == 1
    assert [m.text for m in await _messages(store, snoozed.id, MessageKind.AUTO_REPLY)] == ["We are on it."]


async def test_a_snooze_whose_wake_up_timer_was_lost_wakes_after_a_restart(
    router: Router, service: InboxService, store: Store, channel: Channel, clock: ManualClock, operator: Operator
) -> None:
    """An operator's snooze is stored first and its timer written after; a crash in between loses
    the timer, and the next start writes it again."""
    conversation = (await service.receive(inbound(channel.id, "m1"))).conversation
    await service.snooze(conversation.id, operator, clock.now() + timedelta(hours=2))
    await router.stop()
    assert await store.cancel_timer("snooze_end", conversation.id)  # as if the process died before writing it
    await store.durable()
    router = Router(service, clock)
    await router.start(timer_interval=None)
    clock.advance(timedelta(hours=2))
    assert await router.fire_due_timers() == 1
    assert (await store.get_conversation(conversation.id)).status is ConversationStatus.OPEN
    await router.stop()


async def test_the_acknowledgement_goes_out_once_per_conversation(
    router: Router, service: InboxService, store: Store, channel: Channel
) -> None:
    template = await _template(router, "ack", "{{ channel_name }} got it, #{{ conversation_number }}.")
    await router.catalog.put("settings", {"acknowledgement_template_id": template})
    first = await service.receive(inbound(channel.id, "m1"))
    await service.receive(inbound(channel.id, "m2"))
    (ack,) = await _messages(store, first.conversation.id, MessageKind.AUTO_REPLY)
    assert ack.text == f"{channel.name} got it, #{first.conversation.number}."
    # a sender asking not to be auto-answered (Outlook's X-Auto-Response-Suppress) is not
    asking = inbound(channel.id, "m3", contact="quiet")
    quiet = await service.receive(asking.__class__(**{**_fields(asking), "extras": {"suppress_auto_reply": True}}))
    assert await _messages(store, quiet.conversation.id, MessageKind.AUTO_REPLY) == []


async def test_manual_assignments_of_closed_work_or_to_unseated_operators_free_the_slot(
    router: Router, service: InboxService, store: Store, channel: Channel, clock: ManualClock, supervisor: Operator
) -> None:
    anna = await _operator(store, clock, router, "anna", max_open=1)
    first = (await service.receive(inbound(channel.id, "m1", contact="c1"))).conversation
    assert router.roster.load(anna.id) == 1
    newcomer = (await add_operator(store, email="new@example.com", name="New", clock=clock)).operator
    await service.update(first.id, supervisor, assignee_id=newcomer.id)  # no seat yet: not tracked
    assert router.roster.load(anna.id) == 0 and router.roster.assigned_to(first.id) is None
    await service.update_operator(anna.id, anna, presence=Presence.OFFLINE)
    assert (await store.get_conversation(first.id)).assignee_id == newcomer.id  # not taken back
    await service.update_operator(anna.id, anna, presence=Presence.ONLINE)
    resolved = (await service.receive(inbound(channel.id, "m2", contact="c2"))).conversation
    await service.set_status(resolved.id, supervisor, ConversationStatus.RESOLVED)
    await service.update(resolved.id, supervisor, assignee_id=anna.id)  # resolved: takes no slot
    waiting = (await service.receive(inbound(channel.id, "m3", contact="c3"))).conversation
    assert (await store.get_conversation(waiting.id)).assignee_id == anna.id


async def test_a_conversation_is_stored_routed_and_a_failed_store_gives_its_slot_back(
    router: Router, service: InboxService, store: Store, channel: Channel, clock: ManualClock, monkeypatch: Any
) -> None:
    olga = await _operator(store, clock, router, "olga", max_open=1)
    created: list[Any] = []
    service.bus.subscribe(lambda _, event: _collect(created, event))
    original = store.append_message

    async def failing(*args: Any, **kwargs: Any) -> Any:
        raise Unavailable("disk full")

    monkeypatch.setattr(store, "append_message", failing)
    with pytest.raises(Unavailable):
        await service.receive(inbound(channel.id, "m1", contact="c1"))
    assert router.roster.load(olga.id) == 0 and router.roster.queue() == []  # no phantom holds her slot
    monkeypatch.setattr(store, "append_message", original)
    received = await service.receive(inbound(channel.id, "m1", contact="c1"))
    # the first event already shows it routed: no page ever sees it unassigned
    assert [type(e).__name__ for e in created][:1] == ["ConversationCreated"]
    assert created[0].conversation.assignee_id == olga.id == received.conversation.assignee_id


async def test_a_rule_failure_never_loses_the_message_and_it_is_routed_without_rules(
    router: Router, service: InboxService, store: Store, channel: Channel, clock: ManualClock, monkeypatch: Any
) -> None:
    def broken(*args: Any) -> Any:
        raise RuntimeError("a bug in a rule")

    monkeypatch.setattr(router, "_plan", broken)
    await router.catalog.put(
        "rule",
        {
            "name": "any",
            "position": 1,
            "match": "all",
            "event": "message_received",
            "conditions": [],
            "actions": [{"type": "add_tag", "tag": "x"}],
        },
    )
    olga = await _operator(store, clock, router, "olga")
    template = await _template(router, "ack", "Got it.")
    await router.catalog.put("settings", {"acknowledgement_template_id": template})
    received = await service.receive(inbound(channel.id, "m1", text="still here"))
    (stored,) = await _messages(store, received.conversation.id, MessageKind.MESSAGE)
    assert stored.text == "still here"
    # routed without the rules: assigned, acknowledged, but not tagged
    assert received.conversation.assignee_id == olga.id and received.conversation.tags == ()
    assert [m.text for m in await _messages(store, received.conversation.id, MessageKind.AUTO_REPLY)] == ["Got it."]


async def _collect(into: list[Any], event: Any) -> None:
    into.append(event)


async def test_a_language_rule_guesses_from_the_text_when_the_contact_has_none(
    router: Router, service: InboxService, store: Store, channel: Channel
) -> None:
    await router.catalog.put(
        "rule",
        {
            "name": "russian",
            "position": 1,
            "match": "all",
            "event": "message_received",
            "conditions": [{"field": "language", "op": "is", "value": "ru"}],
            "actions": [{"type": "add_tag", "tag": "ru"}],
        },
    )
    russian = await service.receive(inbound(channel.id, "m1", contact="c1", text="Здравствуйте, где мой заказ?"))
    english = await service.receive(inbound(channel.id, "m2", contact="c2", text="Hello, where is my order?"))
    assert russian.conversation.tags == ("ru",) and english.conversation.tags == ()


async def test_changes_the_inbox_refuses_leave_the_message_stored_unrouted(
    router: Router, service: InboxService, store: Store, channel: Channel, clock: ManualClock, monkeypatch: Any
) -> None:
    async def in_the_past(arrival: Any) -> Routed:
        return Routed(changes={"status": ConversationStatus.SNOOZED, "snoozed_until": clock.now()}, reason="bad")

    real_route = router.route
    monkeypatch.setattr(
        router, "route", lambda arrival, plain=False: real_route(arrival, plain=True) if plain else in_the_past(arrival)
    )
    received = await service.receive(inbound(channel.id, "m1", text="still here"))
    stored = await store.get_conversation(received.conversation.id)
    assert stored.status is ConversationStatus.OPEN and router.roster.is_queued(stored.id)  # routed without rules
    assert [m.text for m in await _messages(store, stored.id)] == ["still here"]


async def _refuse(*args: Any, **kwargs: Any) -> Any:
    raise Unavailable("disk full")


async def test_a_reopening_message_that_is_not_stored_leaves_the_roster_as_it_was(
    router: Router, service: InboxService, store: Store, channel: Channel, clock: ManualClock, monkeypatch: Any
) -> None:
    olga = await _operator(store, clock, router, "olga", max_open=1)
    held = (await service.receive(inbound(channel.id, "m1", contact="c1"))).conversation
    waiting = (await service.receive(inbound(channel.id, "m2", contact="c2"))).conversation
    assert held.assignee_id == olga.id and router.roster.is_queued(waiting.id)
    await service.set_status(held.id, olga, ConversationStatus.RESOLVED)  # the queued one is hers now
    await service.set_status(waiting.id, olga, ConversationStatus.RESOLVED)
    assert router.roster.load(olga.id) == 0 and router.roster.queue() == []
    clock.advance(timedelta(minutes=1))
    monkeypatch.setattr(store, "append_message", _refuse)
    for conversation, contact in ((held, "c1"), (waiting, "c2")):  # each would reopen a resolved one
        with pytest.raises(Unavailable):
            await service.receive(inbound(channel.id, f"again-{contact}", contact=contact))
        assert (await store.get_conversation(conversation.id)).status is ConversationStatus.RESOLVED
    assert router.roster.load(olga.id) == 0 and router.roster.queue() == []


async def test_a_failed_commit_gives_back_the_slot_of_a_conversation_that_was_rolled_back(
    router: Router, service: InboxService, store: Store, channel: Channel, clock: ManualClock, monkeypatch: Any
) -> None:
    olga = await _operator(store, clock, router, "olga", max_open=1)
    with failing_commits(store, monkeypatch), pytest.raises(Unavailable):
        await service.receive(inbound(channel.id, "m1", contact="c1"))
    assert router.roster.load(olga.id) == 0 and router.roster.queue() == []
    retried = (await service.receive(inbound(channel.id, "m1", contact="c1"))).conversation  # the sender retries
    assert retried.assignee_id == olga.id


async def test_a_reply_whose_commit_failed_is_sent_when_the_sender_retries(
    router: Router, service: InboxService, store: Store, channel: Channel, clock: ManualClock, monkeypatch: Any
) -> None:
    """The router keeps the marks of replies sent in memory; a message whose unit of work was not
    stored must leave none behind, or the retried message would go unanswered."""
    await router.catalog.put(
        "calendar",
        {"id": "msk", "name": "Moscow office", "time_zone": "Europe/Moscow", "weekly": [], "holidays": []},
    )
    template = await _template(router, "after hours", "We are closed.")
    await router.catalog.put(
        "settings",
        {
            "default_calendar_id": "msk",
            "out_of_hours_template_id": template,
            "out_of_hours_period_minutes": 60,
            "auto_replies_per_contact_per_hour": 2,
        },
    )
    first = (await service.receive(inbound(channel.id, "m1", text="Hello?"))).conversation
    clock.advance(timedelta(minutes=61))  # the period is over: the next message is answered again
    with failing_commits(store, monkeypatch), pytest.raises(Unavailable):
        await service.receive(inbound(channel.id, "m2", text="Anyone?"))
    await service.receive(inbound(channel.id, "m2", text="Anyone?"))  # the sender retries
    replies = await _messages(store, first.id, MessageKind.AUTO_REPLY)
    assert [m.text for m in replies] == ["We are closed.", "We are closed."]
    # the contact's limit (two an hour) counts the stored replies: the retried one and one more
    await router.catalog.put(
        "settings",
        {
            "default_calendar_id": "msk",
            "out_of_hours_template_id": template,
            "out_of_hours_period_minutes": 1,
            "auto_replies_per_contact_per_hour": 2,
        },
    )
    for n in (3, 4):
        clock.advance(timedelta(minutes=2))
        await service.receive(inbound(channel.id, f"m{n}", text="Hello again"))
    assert len(await _messages(store, first.id, MessageKind.AUTO_REPLY)) == 3


async def test_a_timer_armed_again_while_its_old_deadline_fires_is_kept(
    router: Router, service: InboxService, store: Store, channel: Channel, clock: ManualClock, monkeypatch: Any
) -> None:
    conversation = (await service.receive(inbound(channel.id, "m1"))).conversation
    later = clock.now() + timedelta(hours=2)
    fire = router._fire

    async def fire_while_a_new_wait_begins(timer: Timer) -> None:
        await fire(timer)
        await store.set_timer(replace(timer, id=new_id(), due_at=later))

    monkeypatch.setattr(router, "_fire", fire_while_a_new_wait_begins)
    await store.set_timer(Timer(id=new_id(), kind=NO_ANSWER, conversation_id=conversation.id, due_at=clock.now()))
    assert await router.fire_due_timers() == 1
    assert [(t.kind, t.due_at) for t in await store.due_timers(later, limit=10)] == [(NO_ANSWER, later)]


async def test_a_timer_whose_firing_fails_is_tried_again_later_then_given_up(
    router: Router, service: InboxService, store: Store, channel: Channel, clock: ManualClock, monkeypatch: Any
) -> None:
    template = await _template(router, "still waiting", "We are on it.")
    await router.catalog.put("settings", {"no_answer_template_id": template, "no_answer_minutes": 15})
    flaky = (await service.receive(inbound(channel.id, "m1", contact="c1"))).conversation
    broken = (await service.receive(inbound(channel.id, "m2", contact="c2"))).conversation
    auto_reply = service.auto_reply
    failures = {flaky.id: 1, broken.id: 100}

    async def failing(conversation_id: str, *args: Any, **kwargs: Any) -> Any:
        if failures[conversation_id] > 0:
            failures[conversation_id] -= 1
            raise Unavailable("disk full")
        return await auto_reply(conversation_id, *args, **kwargs)

    monkeypatch.setattr(service, "auto_reply", failing)
    clock.advance(timedelta(minutes=15))
    assert await router.fire_due_timers() == 2  # both failed: kept, due again a minute later
    assert await _messages(store, flaky.id, MessageKind.AUTO_REPLY) == []
    for _ in range(10):
        clock.advance(timedelta(minutes=30))
        await router.fire_due_timers()
    assert [m.text for m in await _messages(store, flaky.id, MessageKind.AUTO_REPLY)] == ["We are on it."]
    assert await _messages(store, broken.id, MessageKind.AUTO_REPLY) == []
    assert failures[broken.id] == 100 - 5  # five tries, then given up
    assert await store.due_timers(clock.now() + timedelta(days=1), limit=10) == []
