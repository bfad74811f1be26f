"""The store contract: every adapter must pass these, against a real database."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest

from inbox.clock import ManualClock
from inbox.domain import (
    Attachment,
    Channel,
    Contact,
    Conversation,
    ConversationStatus,
    DeliveryStatus,
    Direction,
    Identity,
    Message,
    MessageKind,
    Operator,
    OutboxItem,
    Priority,
    Role,
    Session,
    Timer,
)
from inbox.errors import Conflict, NotFound, ValidationError
from inbox.ids import hash_secret, new_id, new_secret
from storage.base import UNASSIGNED, ConversationFilter, Store
from tests.fakes import make_auto_reply, make_conversation, make_message


def _contact(clock: ManualClock, name: str = "Ирина", *identities: Identity) -> Contact:
    return Contact(id=new_id(), name=name, identities=identities, created_at=clock.now())


async def _start(store: Store, clock: ManualClock, channel: Channel, **changes) -> tuple[Conversation, Message]:
    contact = _contact(clock)
    await store.create_contact(contact)
    conversation = make_conversation(clock, channel, contact, **changes)
    message = make_message(clock, conversation)
    stored = await store.append_message(conversation, message, new_conversation=True, thread_keys=("k1",))
    return stored, message


async def test_channel_round_trip_and_secret_lookup(store: Store, clock: ManualClock) -> None:
    channel = Channel(
        id=new_id(), kind="api", name="Магазин", settings={"webhook_url": "http://x"}, created_at=clock.now()
    )
    await store.create_channel(channel, secret_hash="abc")
    assert await store.get_channel(channel.id) == channel
    assert await store.channel_by_secret("abc") == channel
    assert await store.channel_by_secret("other") is None
    assert await store.list_channels() == [channel]
    with pytest.raises(NotFound):
        await store.get_channel(new_id())


async def test_operators_unique_email_and_token_lookup(store: Store, clock: ManualClock) -> None:
    operator = Operator(
        id=new_id(),
        email="Anna@Example.com",
        name="Anna",
        role=Role.SUPERVISOR,
        max_open=3,
        teams=("billing",),
        created_at=clock.now(),
    )
    await store.create_operator(operator, token_hash="t1")
    assert await store.operator_by_token("t1") == operator
    assert await store.operator_by_email("Anna@Example.com") == operator
    assert await store.count_operators() == 1
    with pytest.raises(Conflict):
        await store.create_operator(replace(operator, id=new_id(), email="anna@example.com"), token_hash="t2")
    changed = replace(operator, focus_mode=True, max_open=5)
    await store.save_operator(changed)
    assert await store.get_operator(operator.id) == changed
    with pytest.raises(NotFound):
        await store.save_operator(replace(operator, id=new_id()))


async def test_contact_identities_are_unique_across_contacts(store: Store, clock: ManualClock) -> None:
    identity = Identity(channel_kind="telegram", external_id="42")
    # identities come back ordered by (channel_kind, external_id)
    contact = _contact(clock, "Пётр", Identity(channel_kind="email", external_id="p@x.ru"), identity)
    await store.create_contact(contact)
    assert await store.contact_by_identity(identity) == contact
    assert await store.get_contact(contact.id) == contact
    with pytest.raises(Conflict):
        await store.create_contact(_contact(clock, "Другой", identity))
    assert await store.contact_by_identity(Identity(channel_kind="whatsapp", external_id="42")) is None


async def test_contacts_page_and_search(store: Store, clock: ManualClock) -> None:
    for index in range(5):
        clock.advance(1)
        await store.create_contact(_contact(clock, f"Клиент {index}"))
    await store.create_contact(_contact(clock, "100%_literal"))
    first = await store.list_contacts(limit=4)
    assert [c.name for c in first.items] == ["100%_literal", "Клиент 4", "Клиент 3", "Клиент 2"]
    second = await store.list_contacts(limit=4, cursor=first.next_cursor)
    assert [c.name for c in second.items] == ["Клиент 1", "Клиент 0"] and second.next_cursor is None
    found = await store.list_contacts(limit=10, text="%_")
    assert [c.name for c in found.items] == ["100%_literal"]


async def test_append_numbers_conversations_sequentially(store: Store, clock: ManualClock, channel: Channel) -> None:
    first, _ = await _start(store, clock, channel)
    second, _ = await _start(store, clock, channel)
    assert first.number >= 1001 and second.number == first.number + 1
    assert await store.get_conversation(first.id) == first


async def test_duplicate_external_id_conflicts_and_stores_nothing(
    store: Store, clock: ManualClock, channel: Channel
) -> None:
    conversation, message = await _start(store, clock, channel)
    clock.advance(5)
    again = replace(conversation, last_message_at=clock.now())
    with pytest.raises(Conflict):
        await store.append_message(again, replace(message, id=new_id()), new_conversation=False)
    assert await store.get_conversation(conversation.id) == conversation
    page = await store.list_messages(conversation.id, limit=10)
    assert [m.id for m in page.items] == [message.id]
    assert await store.message_by_external_id(channel.id, message.external_id) == message


async def test_duplicate_idempotency_key_conflicts(store: Store, clock: ManualClock, channel: Channel) -> None:
    conversation, _ = await _start(store, clock, channel)
    reply = make_message(
        clock,
        conversation,
        "Ответ",
        direction=Direction.OUT,
        external_id=None,
        author_id="op1",
        idempotency_key="key-1",
        delivery_status=DeliveryStatus.QUEUED,
    )
    await store.append_message(conversation, reply, new_conversation=False)
    with pytest.raises(Conflict):
        await store.append_message(conversation, replace(reply, id=new_id()), new_conversation=False)
    assert await store.message_by_idempotency_key("op1", "key-1") == reply
    assert await store.message_by_idempotency_key("op2", "key-1") is None


async def test_message_fields_round_trip(store: Store, clock: ManualClock, channel: Channel) -> None:
    conversation, _ = await _start(store, clock, channel)
    message = make_message(
        clock,
        conversation,
        "see attached",
        html="<p>see <b>attached</b></p>",
        attachments=(
            Attachment(
                filename="счёт.pdf",
                content_type="application/pdf",
                size=10,
                sha256="ab" * 32,
                inline=False,
                content_id=None,
            ),
        ),
        extras={"auto_reply": True},
    )
    await store.append_message(conversation, message, new_conversation=False)
    assert await store.get_message(message.id) == message


async def test_find_thread_matches_keys_contact_and_reopen_window(
    store: Store, clock: ManualClock, channel: Channel
) -> None:
    conversation, _ = await _start(store, clock, channel)
    since = clock.now() - timedelta(days=7)
    found = await store.find_thread(
        contact_id=conversation.contact_id, channel_id=channel.id, thread_keys=["zzz", "k1"], resolved_since=since
    )
    assert found == conversation
    assert (
        await store.find_thread(
            contact_id="someone-else", channel_id=channel.id, thread_keys=["k1"], resolved_since=since
        )
        is None
    )
    assert (
        await store.find_thread(
            contact_id=conversation.contact_id, channel_id=channel.id, thread_keys=[], resolved_since=since
        )
        is None
    )
    resolved = replace(conversation, status=ConversationStatus.RESOLVED, resolved_at=clock.now())
    await store.save_conversation(resolved)
    assert (
        await store.find_thread(
            contact_id=conversation.contact_id, channel_id=channel.id, thread_keys=["k1"], resolved_since=since
        )
        == resolved
    )
    assert (
        await store.find_thread(
            contact_id=conversation.contact_id,
            channel_id=channel.id,
            thread_keys=["k1"],
            resolved_since=clock.now() + timedelta(seconds=1),
        )
        is None
    )


async def test_find_thread_admits_participants_and_the_conversation_number(
    store: Store, clock: ManualClock, channel: Channel
) -> None:
    conversation, _ = await _start(store, clock, channel)
    since = clock.now() - timedelta(days=7)
    boss = "email:boss@example.com"
    reply = replace(make_message(clock, conversation), id=new_id(), external_id="m2")
    conversation = await store.append_message(conversation, reply, new_conversation=False, participants=[boss, boss])

    def find(contact_id: str, participant: str | None, keys: list[str], number: int | None = None):
        return store.find_thread(
            contact_id=contact_id,
            channel_id=channel.id,
            thread_keys=keys,
            resolved_since=since,
            participant=participant,
            number=number,
        )

    assert await find("boss-contact", boss, ["k1"]) == conversation
    assert await find("boss-contact", "email:stranger@example.com", ["k1"]) is None
    assert await find("boss-contact", None, ["k1"]) is None
    assert await find(conversation.contact_id, None, [], conversation.number) == conversation
    assert await find("boss-contact", boss, ["unknown"], conversation.number) == conversation
    assert await find("stranger", "email:stranger@example.com", [], conversation.number) is None
    assert await find(conversation.contact_id, None, [], conversation.number + 1) is None


async def test_list_conversations_filters(store: Store, clock: ManualClock, channel: Channel) -> None:
    a, _ = await _start(store, clock, channel)
    clock.advance(1)
    b, _ = await _start(
        store,
        clock,
        channel,
        assignee_id="op-1",
        tags=("vip", "доставка"),
        status=ConversationStatus.PENDING,
        priority=Priority.HIGH,
        team_id="t1",
    )
    clock.advance(1)
    c, _ = await _start(store, clock, channel, status=ConversationStatus.RESOLVED, resolved_at=clock.now())

    async def ids(**where) -> list[str]:
        return [x.id for x in (await store.list_conversations(ConversationFilter(**where), limit=10)).items]

    assert await ids() == [c.id, b.id, a.id]
    assert await ids(status=ConversationStatus.PENDING) == [b.id]
    assert await ids(assignee_id="op-1") == [b.id]
    assert await ids(assignee_id=UNASSIGNED) == [c.id, a.id]
    assert await ids(tag="доставка") == [b.id]
    assert await ids(tag="$ne") == []
    assert await ids(team_id="t1") == [b.id]
    assert await ids(channel_id=channel.id, status=ConversationStatus.OPEN) == [a.id]
    assert await ids(contact_id=a.contact_id) == [a.id]
    assert await ids(channel_id="other") == []


async def test_contact_names_in_one_call(store: Store, clock: ManualClock) -> None:
    first, second = _contact(clock, "Вера"), _contact(clock, None)
    await store.create_contact(first)
    await store.create_contact(second)
    assert await store.contact_names([first.id, second.id, "missing"]) == {first.id: "Вера", second.id: None}
    assert await store.contact_names([]) == {}


async def test_text_search_finds_cyrillic_words_in_any_case(store: Store, clock: ManualClock, channel: Channel) -> None:
    a, _ = await _start(store, clock, channel)
    await store.append_message(a, make_message(clock, a, "Посылка ПОВРЕЖДЕНА при доставке"), new_conversation=False)
    b, _ = await _start(store, clock, channel)
    await store.durable()  # the search index may lag writes until they are durable

    async def ids(text: str) -> list[str]:
        return [x.id for x in (await store.list_conversations(ConversationFilter(text=text), limit=10)).items]

    assert await ids("повреждена") == [a.id]
    assert await ids("поврежд") == [a.id]
    assert set(await ids("заказ")) == {a.id, b.id}
    assert await ids('"unbalanced AND (') == []
    assert set(await ids("ирина")) == {a.id, b.id}  # the contact's name
    system = make_message(clock, b, "rules: повреждения", kind=MessageKind.SYSTEM, external_id=None)
    automatic = make_message(clock, b, "Мы ответим про повреждения", kind=MessageKind.AUTO_REPLY, external_id=None)
    for message in (system, automatic):
        await store.append_message(b, message, new_conversation=False)
    await store.durable()
    assert await ids("поврежд") == [a.id]  # routing's words are not the customer's


async def test_keyset_pages_are_stable_while_new_conversations_arrive(
    store: Store, clock: ManualClock, channel: Channel
) -> None:
    created = []
    for _ in range(7):
        clock.advance(1)
        created.append((await _start(store, clock, channel))[0].id)
    newest_first = list(reversed(created))
    first = await store.list_conversations(ConversationFilter(), limit=3)
    assert [c.id for c in first.items] == newest_first[:3] and first.next_cursor
    clock.advance(1)
    await _start(store, clock, channel)  # arrives between pages: must not shift them
    second = await store.list_conversations(ConversationFilter(), limit=3, cursor=first.next_cursor)
    third = await store.list_conversations(ConversationFilter(), limit=3, cursor=second.next_cursor)
    assert [c.id for c in second.items] == newest_first[3:6]
    assert [c.id for c in third.items] == newest_first[6:] and third.next_cursor is None
    with pytest.raises(ValidationError):
        await store.list_conversations(ConversationFilter(), limit=3, cursor="not-a-cursor")


async def test_messages_are_listed_oldest_first_in_pages(store: Store, clock: ManualClock, channel: Channel) -> None:
    conversation, first = await _start(store, clock, channel)
    later = []
    for index in range(4):
        clock.advance(1)
        message = make_message(clock, conversation, f"m{index}")
        await store.append_message(conversation, message, new_conversation=False)
        later.append(message.id)
    page = await store.list_messages(conversation.id, limit=3)
    rest = await store.list_messages(conversation.id, limit=3, cursor=page.next_cursor)
    assert [m.id for m in page.items + rest.items] == [first.id, *later]
    assert rest.next_cursor is None


async def test_save_conversation_replaces_tags_and_fields(store: Store, clock: ManualClock, channel: Channel) -> None:
    conversation, _ = await _start(store, clock, channel, tags=("a", "b"))
    changed = replace(
        conversation,
        tags=("b", "c"),
        assignee_id="op",
        priority=Priority.URGENT,
        status=ConversationStatus.SNOOZED,
        snoozed_until=clock.now() + timedelta(hours=1),
    )
    await store.save_conversation(changed)
    assert await store.get_conversation(conversation.id) == changed
    page = await store.list_conversations(ConversationFilter(tag="a"), limit=5)
    assert page.items == []
    with pytest.raises(NotFound):
        await store.save_conversation(replace(conversation, id=new_id()))


async def test_a_message_that_changes_tags_moves_the_conversation_up_every_tag_list(
    store: Store, clock: ManualClock, channel: Channel
) -> None:
    older, _ = await _start(store, clock, channel, tags=("x",))
    clock.advance(timedelta(minutes=1))
    newer, _ = await _start(store, clock, channel, tags=("x",))
    clock.advance(timedelta(minutes=1))
    routed = replace(older, tags=("x", "y"), last_message_at=clock.now(), updated_at=clock.now())
    stored = await store.append_message(routed, make_message(clock, older), new_conversation=False, tags_changed=True)
    assert stored.tags == ("x", "y")
    for tag, expected in (("x", [older.id, newer.id]), ("y", [older.id])):
        page = await store.list_conversations(ConversationFilter(tag=tag), limit=5)
        assert [c.id for c in page.items] == expected


async def test_outbox_claim_lease_retry_and_finish(store: Store, clock: ManualClock, channel: Channel) -> None:
    conversation, _ = await _start(store, clock, channel)
    reply = make_message(
        clock, conversation, "Ответ", direction=Direction.OUT, external_id=None, delivery_status=DeliveryStatus.QUEUED
    )
    job = OutboxItem(
        id=new_id(), message_id=reply.id, channel_id=channel.id, next_attempt_at=clock.now(), created_at=clock.now()
    )
    await store.append_message(conversation, reply, new_conversation=False, outbox=job)
    assert await store.pending_outbox_count() == 1
    assert await store.next_outbox_due() == clock.now()

    claimed = await store.claim_outbox(now=clock.now(), lease_until=clock.now() + timedelta(minutes=1), limit=10)
    assert [item.id for item in claimed] == [job.id]
    assert await store.claim_outbox(now=clock.now(), lease_until=clock.now() + timedelta(minutes=1), limit=10) == []

    await store.retry_outbox(claimed[0], next_attempt_at=clock.now() + timedelta(seconds=30), error="boom")
    assert await store.claim_outbox(now=clock.now(), lease_until=clock.now(), limit=10) == []
    clock.advance(30)
    (again,) = await store.claim_outbox(now=clock.now(), lease_until=clock.now() + timedelta(minutes=1), limit=10)
    assert again.attempts == 1 and again.last_error == "boom"

    finished = await store.finish_outbox(again, status=DeliveryStatus.DELIVERED, external_id="remote-9")
    assert finished.delivery_status is DeliveryStatus.DELIVERED
    assert finished.extras["delivery_external_id"] == "remote-9"
    assert await store.pending_outbox_count() == 0
    assert await store.next_outbox_due() is None


async def test_expired_lease_is_claimable_again(store: Store, clock: ManualClock, channel: Channel) -> None:
    conversation, _ = await _start(store, clock, channel)
    reply = make_message(
        clock, conversation, "x", direction=Direction.OUT, external_id=None, delivery_status=DeliveryStatus.QUEUED
    )
    job = OutboxItem(
        id=new_id(), message_id=reply.id, channel_id=channel.id, next_attempt_at=clock.now(), created_at=clock.now()
    )
    await store.append_message(conversation, reply, new_conversation=False, outbox=job)
    await store.claim_outbox(now=clock.now(), lease_until=clock.now() + timedelta(minutes=2), limit=1)
    clock.advance(timedelta(minutes=2))
    assert [i.id for i in await store.claim_outbox(now=clock.now(), lease_until=clock.now(), limit=1)] == [job.id]


async def test_pages_with_equal_timestamps_and_tag_filter_lose_nothing(
    store: Store, clock: ManualClock, channel: Channel
) -> None:
    created = {(await _start(store, clock, channel, tags=("same",)))[0].id for _ in range(7)}  # one instant
    seen: list[str] = []
    cursor = None
    for _ in range(10):
        page = await store.list_conversations(ConversationFilter(tag="same"), limit=3, cursor=cursor)
        seen += [c.id for c in page.items]
        cursor = page.next_cursor
        if cursor is None:
            break
    assert len(seen) == 7 and set(seen) == created
    assert seen == sorted(seen, reverse=True)  # ties broken by id, descending


async def test_quarantine_is_idempotent_per_channel_and_paged(
    store: Store, clock: ManualClock, channel: Channel
) -> None:
    from inbox.domain import Unparsed

    def record(external_id: str, reason: str = "no header block") -> Unparsed:
        return Unparsed(
            id=new_id(),
            channel_id=channel.id,
            external_id=external_id,
            source="imap",
            reason=reason,
            raw_sha256="ab" * 32,
            size=10,
            created_at=clock.now(),
        )

    first = await store.quarantine(record("uid:7"))
    again = await store.quarantine(record("uid:7", reason="another reason"))
    assert again == first
    clock.advance(1)
    newer = await store.quarantine(record("uid:8"))
    page = await store.list_quarantine(limit=1)
    assert page.items == [newer] and page.next_cursor
    rest = await store.list_quarantine(limit=1, cursor=page.next_cursor)
    assert rest.items == [first] and rest.next_cursor is None


async def test_sync_state_round_trip(store: Store) -> None:
    assert await store.get_sync_state("imap:ch1:INBOX") is None
    await store.set_sync_state("imap:ch1:INBOX", "17:42")
    await store.set_sync_state("imap:ch1:INBOX", "17:43")
    assert await store.get_sync_state("imap:ch1:INBOX") == "17:43"


async def test_last_inbound_message(store: Store, clock: ManualClock, channel: Channel) -> None:
    conversation, first = await _start(store, clock, channel)
    clock.advance(1)
    second = make_message(clock, conversation, "second")
    await store.append_message(conversation, second, new_conversation=False)
    clock.advance(1)
    reply = make_message(clock, conversation, "reply", direction=Direction.OUT, external_id=None)
    await store.append_message(conversation, reply, new_conversation=False)
    assert await store.last_inbound_message(conversation.id) == second
    assert await store.last_inbound_message("nothing") is None


async def test_auto_replies_by_trigger_in_a_conversation_and_to_a_contact(
    store: Store, clock: ManualClock, channel: Channel
) -> None:
    first, _ = await _start(store, clock, channel)
    contact = await store.get_contact(first.contact_id)
    second = make_conversation(clock, channel, contact)
    await store.append_message(second, make_message(clock, second), new_conversation=True)
    stranger, _ = await _start(store, clock, channel)

    async def auto_reply(conversation: Conversation, trigger: str | None) -> Message:
        clock.advance(60)
        message = make_auto_reply(clock, conversation, trigger)
        await store.append_message(conversation, message, new_conversation=False)
        return message

    acknowledged = await auto_reply(first, "acknowledgement")
    out_of_hours = await auto_reply(first, "out_of_hours")
    await auto_reply(stranger, "out_of_hours")
    clock.advance(60)
    note = make_message(clock, first, "a note", kind=MessageKind.NOTE, external_id=None, extras={"trigger": "x"})
    await store.append_message(first, note, new_conversation=False)
    again = await auto_reply(first, "out_of_hours")
    untold = await auto_reply(second, None)
    rule = await auto_reply(second, "rule:t1")
    assert await store.auto_replies_in(first.id) == {
        "acknowledgement": acknowledged.created_at,
        "out_of_hours": again.created_at,
    }
    assert await store.auto_replies_in(second.id) == {"rule:t1": rule.created_at}
    assert await store.auto_replies_in("nothing") == {}
    assert await store.auto_replies_to(contact.id, out_of_hours.created_at) == [
        out_of_hours.created_at,
        again.created_at,
        untold.created_at,
        rule.created_at,
    ]
    assert await store.auto_replies_to(contact.id, rule.created_at + timedelta(microseconds=1)) == []
    assert await store.auto_replies_to("nobody", acknowledged.created_at) == []


async def test_routing_objects_by_kind_in_position_order(store: Store) -> None:
    await store.put_routing_object("rule", "b", {"id": "b", "name": "второе"}, position=2)
    await store.put_routing_object("rule", "a", {"id": "a", "name": "first"}, position=1)
    await store.put_routing_object("calendar", "a", {"id": "a", "time_zone": "Europe/Moscow"})
    assert [body["id"] for body in await store.list_routing_objects("rule")] == ["a", "b"]
    await store.put_routing_object("rule", "b", {"id": "b", "name": "now first"}, position=0)
    assert [body["name"] for body in await store.list_routing_objects("rule")] == ["now first", "first"]
    assert await store.list_routing_objects("calendar") == [{"id": "a", "time_zone": "Europe/Moscow"}]
    assert await store.delete_routing_object("rule", "a") is True
    assert await store.delete_routing_object("rule", "a") is False
    assert await store.list_routing_objects("template") == []


async def test_timers_one_per_kind_and_conversation_due_in_order(
    store: Store, clock: ManualClock, channel: Channel
) -> None:
    first, _ = await _start(store, clock, channel)
    second, _ = await _start(store, clock, channel)
    now = clock.now()
    soon = Timer(id=new_id(), kind="no_answer", conversation_id=first.id, due_at=now + timedelta(minutes=5))
    await store.set_timer(soon)
    assert await store.due_timers(now + timedelta(minutes=5), limit=10) == [soon]
    moved = replace(soon, due_at=now + timedelta(minutes=1), payload={"n": 2})
    await store.set_timer(replace(moved, id=new_id()))
    assert await store.due_timers(now + timedelta(minutes=5), limit=10) == [moved]  # the first one's id
    later = Timer(id=new_id(), kind="snooze", conversation_id=second.id, due_at=now)
    other_kind = Timer(id=new_id(), kind="snooze", conversation_id=first.id, due_at=now)
    for timer in (later, other_kind):
        await store.set_timer(timer)
    assert await store.due_timers(now - timedelta(seconds=1), limit=10) == []
    due = await store.due_timers(now + timedelta(minutes=1), limit=10)
    assert [t.id for t in due] == sorted([later.id, other_kind.id]) + [soon.id]
    assert len(await store.due_timers(now + timedelta(minutes=1), limit=2)) == 2
    assert await store.cancel_timer("no_answer", first.id) is True
    assert await store.cancel_timer("no_answer", first.id) is False
    assert await store.delete_timer(later) is True
    assert [t.id for t in await store.due_timers(now + timedelta(hours=1), limit=10)] == [other_kind.id]
    moved_again = replace(other_kind, due_at=now + timedelta(minutes=9))
    await store.set_timer(moved_again)  # after it fired
    assert await store.delete_timer(other_kind) is False  # as it fired: the moved one stays
    assert await store.due_timers(now + timedelta(hours=1), limit=10) == [moved_again]


async def test_operator_locale_and_time_zone_round_trip(store: Store, clock: ManualClock) -> None:
    operator = Operator(id=new_id(), email="ivan@example.com", name="Иван", locale="ru", created_at=clock.now())
    await store.create_operator(operator, token_hash="t-ivan")
    assert (await store.get_operator(operator.id)).locale == "ru"
    assert (await store.get_operator(operator.id)).time_zone is None
    changed = replace(operator, locale=None, time_zone="Europe/Moscow", password_hash="$argon2id$new")
    await store.save_operator(changed)
    assert await store.get_operator(operator.id) == changed
    assert await store.operator_by_email("ivan@example.com") == changed


def _session(clock: ManualClock, operator_id: str, **changes) -> Session:
    now = clock.now()
    session = Session(
        id=hash_secret(new_secret("s")),
        operator_id=operator_id,
        csrf_token=new_secret("csrf"),
        created_at=now,
        expires_at=now + timedelta(days=14),
        last_seen_at=now,
    )
    return replace(session, **changes)


async def test_sessions_round_trip_touch_and_delete(store: Store, clock: ManualClock, operator: Operator) -> None:
    session = _session(clock, operator.id)
    await store.create_session(session)
    assert await store.session_by_token_hash(session.id) == session
    assert await store.session_by_token_hash(hash_secret("unknown")) is None
    with pytest.raises(Conflict):
        await store.create_session(replace(session, csrf_token="other"))

    later = clock.advance(timedelta(hours=1))
    assert await store.touch_session(session.id, last_seen_at=later, expires_at=later + timedelta(days=14)) is True
    touched = await store.session_by_token_hash(session.id)
    assert touched == replace(session, last_seen_at=later, expires_at=later + timedelta(days=14))
    assert await store.touch_session("gone", last_seen_at=later, expires_at=later) is False

    assert await store.delete_session(session.id) is True
    assert await store.delete_session(session.id) is False
    assert await store.session_by_token_hash(session.id) is None


async def test_expired_sessions_are_returned_until_deleted(
    store: Store, clock: ManualClock, operator: Operator
) -> None:
    now = clock.now()
    expired = _session(clock, operator.id, expires_at=now - timedelta(seconds=1))
    due_now = _session(clock, operator.id, expires_at=now)
    alive = _session(clock, operator.id, expires_at=now + timedelta(microseconds=1))
    for session in (expired, due_now, alive):
        await store.create_session(session)
    assert await store.session_by_token_hash(expired.id) == expired  # the caller judges expiry
    assert await store.delete_expired_sessions(now) == 2
    assert await store.session_by_token_hash(expired.id) is None
    assert await store.session_by_token_hash(due_now.id) is None
    assert await store.session_by_token_hash(alive.id) == alive


async def test_delete_sessions_of_an_operator_keeps_one_and_spares_others(
    store: Store, clock: ManualClock, operator: Operator, supervisor: Operator
) -> None:
    mine = [_session(clock, operator.id) for _ in range(3)]
    theirs = _session(clock, supervisor.id)
    for session in (*mine, theirs):
        await store.create_session(session)
    assert await store.delete_sessions_of(operator.id, keep=mine[0].id) == 2
    assert await store.session_by_token_hash(mine[0].id) == mine[0]
    assert [await store.session_by_token_hash(s.id) for s in mine[1:]] == [None, None]
    assert await store.session_by_token_hash(theirs.id) == theirs
    assert await store.delete_sessions_of(operator.id) == 1
    assert await store.session_by_token_hash(mine[0].id) is None
    assert await store.delete_sessions_of(operator.id) == 0
    assert await store.session_by_token_hash(theirs.id) == theirs


async def test_requeue_message_only_a_failed_one_and_only_once(
    store: Store, clock: ManualClock, channel: Channel
) -> None:
    conversation, _ = await _start(store, clock, channel)
    reply = make_message(
        clock, conversation, "Ответ", direction=Direction.OUT, external_id=None, delivery_status=DeliveryStatus.QUEUED
    )
    job = OutboxItem(
        id=new_id(), message_id=reply.id, channel_id=channel.id, next_attempt_at=clock.now(), created_at=clock.now()
    )
    await store.append_message(conversation, reply, new_conversation=False, outbox=job)
    (claimed,) = await store.claim_outbox(now=clock.now(), lease_until=clock.now() + timedelta(minutes=1), limit=5)
    await store.finish_outbox(claimed, status=DeliveryStatus.FAILED, error="550 no such user")
    again = OutboxItem(
        id=new_id(), message_id=reply.id, channel_id=channel.id, next_attempt_at=clock.now(), created_at=clock.now()
    )
    queued = await store.requeue_message(again)
    assert queued.delivery_status is DeliveryStatus.QUEUED and queued.delivery_error is None
    with pytest.raises(Conflict):
        await store.requeue_message(replace(again, id=new_id()))
    assert [
        item.id
        for item in await store.claim_outbox(now=clock.now(), lease_until=clock.now() + timedelta(minutes=1), limit=5)
    ] == [again.id]
    with pytest.raises(NotFound):
        await store.requeue_message(replace(again, id=new_id(), message_id=new_id()))
