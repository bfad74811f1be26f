"""The router's auto-reply marks: the stored auto-replies, read once per conversation and contact."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from inbox.clock import ManualClock
from inbox.domain import Channel, Contact, Conversation, Message
from inbox.ids import new_id
from routing.marks import Marks
from storage.base import Store
from tests.fakes import make_auto_reply, make_conversation, make_message


async def _conversation(store: Store, clock: ManualClock, channel: Channel, contact: Contact) -> Conversation:
    conversation = make_conversation(clock, channel, contact)
    return await store.append_message(conversation, make_message(clock, conversation), new_conversation=True)


async def _auto_reply(store: Store, clock: ManualClock, conversation: Conversation, trigger: str) -> Message:
    message = make_auto_reply(clock, conversation, trigger)
    await store.append_message(conversation, message, new_conversation=False)
    await store.durable()
    return message


def _counting_reads(store: Store, monkeypatch: Any) -> list[str]:
    reads: list[str] = []
    for name in ("auto_replies_in", "auto_replies_to"):
        original = getattr(store, name)

        async def counting(key: str, *args: Any, _original: Any = original, _name: str = name) -> Any:
            reads.append(f"{_name}:{key}")
            return await _original(key, *args)

        monkeypatch.setattr(store, name, counting)
    return reads


async def test_a_conversations_stored_auto_replies_are_read_once_then_kept(
    store: Store, clock: ManualClock, channel: Channel, monkeypatch: Any
) -> None:
    contact = Contact(id=new_id(), name="Ирина", created_at=clock.now())
    await store.create_contact(contact)
    conversation = await _conversation(store, clock, channel, contact)
    clock.advance(60)
    acknowledged = await _auto_reply(store, clock, conversation, "acknowledgement")
    reads = _counting_reads(store, monkeypatch)
    marks = Marks(store)
    assert await marks.last_sent(conversation.id, "acknowledgement") == acknowledged.created_at
    assert await marks.last_sent(conversation.id, "out_of_hours") is None
    assert reads == [f"auto_replies_in:{conversation.id}"]

    clock.advance(60)
    await marks.sent_to(contact.id, clock.now() - timedelta(hours=1))  # kept, so record() counts there too
    marks.record(conversation.id, contact.id, "out_of_hours", clock.now())  # written, not committed yet
    assert await marks.last_sent(conversation.id, "out_of_hours") == clock.now()
    assert len(reads) == 2

    marks.forget(conversation.id, contact.id)  # its unit of work was not stored, say: ask the store again
    assert await marks.last_sent(conversation.id, "out_of_hours") is None
    assert reads[-1] == f"auto_replies_in:{conversation.id}"

    brand_new = await _conversation(store, clock, channel, contact)
    assert await marks.last_sent(brand_new.id, "acknowledgement", fresh=True) is None
    assert reads[-1] == f"auto_replies_in:{conversation.id}"  # a new conversation has had none: no read

    stored = await _auto_reply(store, clock, brand_new, "acknowledgement")
    assert await Marks(store).last_sent(brand_new.id, "acknowledgement") == stored.created_at  # a fresh start


async def test_a_contacts_auto_replies_are_counted_in_the_window_asked_for(
    store: Store, clock: ManualClock, channel: Channel, monkeypatch: Any
) -> None:
    contact = Contact(id=new_id(), name="Ирина", created_at=clock.now())
    await store.create_contact(contact)
    first, second = [await _conversation(store, clock, channel, contact) for _ in range(2)]
    for conversation in (first, second, first):
        clock.advance(600)
        await _auto_reply(store, clock, conversation, "out_of_hours")
    reads = _counting_reads(store, monkeypatch)
    marks = Marks(store)
    hour_ago = clock.now() - timedelta(hours=1)
    assert await marks.sent_to(contact.id, hour_ago) == 3
    assert await marks.sent_to(contact.id, clock.now() - timedelta(minutes=15)) == 2  # a later window: no read
    assert reads == [f"auto_replies_to:{contact.id}"]
    clock.advance(1)
    reply = await _auto_reply(store, clock, second, "rule:t")
    marks.record(second.id, contact.id, "rule:t", reply.created_at)
    assert await marks.sent_to(contact.id, clock.now() - timedelta(minutes=15)) == 3
    assert len(reads) == 1
    assert await marks.sent_to(contact.id, hour_ago) == 4  # earlier than what is kept: read again
    assert len(reads) == 2
    newcomer = Contact(id=new_id(), name="Олег", created_at=clock.now())
    assert await marks.sent_to(newcomer.id, hour_ago, fresh=True) == 0
    assert len(reads) == 2


async def test_marks_keep_the_latest_only(store: Store) -> None:
    marks = Marks(store, kept=4)
    for n in range(6):
        await marks.last_sent(f"c{n}", "acknowledgement", fresh=True)
    await marks.last_sent("c3", "acknowledgement")  # read lately: kept
    await marks.last_sent("c6", "acknowledgement", fresh=True)
    assert len(marks._triggers) <= 4 and {"c3", "c6"} <= set(marks._triggers)
