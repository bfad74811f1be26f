"""No mail loop between two helpdesks that both auto-reply: two complete Inbox instances, each the
other's SMTP relay, each with an acknowledgement template, mailing each other.

A's acknowledgement carries ``Auto-Submitted: auto-replied``, so B stores it flagged and answers
nothing; an operator's reply from B carries no such header and still never starts a ping-pong.
"""

from __future__ import annotations

import asyncio
import email
import smtplib
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.policy import default as default_policy
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient, TestServer

from inbox.accounts import add_channel, add_operator
from inbox.app import Inbox, build
from inbox.config import load_settings
from inbox.domain import Channel, DeliveryStatus, Direction, Message, MessageKind
from storage.base import ConversationFilter

QUIET_SECONDS = 0.5
"""How long both instances must stay still once the expected state is reached."""


@dataclass
class Helpdesk:
    inbox: Inbox
    channel: Channel
    received: list[EmailMessage] = field(default_factory=list)
    """Every raw mail this instance's SMTP intake handed to its email channel, parsed."""

    @property
    def port(self) -> int:
        assert self.inbox.smtp is not None
        return self.inbox.smtp.port

    async def conversations(self) -> list:
        return (await self.inbox.store.list_conversations(ConversationFilter(), limit=50)).items

    async def messages(self, kind: MessageKind | None = None, direction: Direction | None = None) -> list[Message]:
        found = []
        for conversation in await self.conversations():
            for message in (await self.inbox.store.list_messages(conversation.id, limit=100)).items:
                if (kind is None or message.kind is kind) and (direction is None or message.direction is direction):
                    found.append(message)
        return found

    async def snapshot(self) -> tuple[int, int, int]:
        """Conversations, stored messages other than routing's system events, and outbox jobs."""
        messages = [m for m in await self.messages() if m.kind is not MessageKind.SYSTEM]
        return len(await self.conversations()), len(messages), await self.inbox.store.pending_outbox_count()


@dataclass
class Pair:
    a: Helpdesk
    b: Helpdesk

    def wake(self) -> None:
        self.a.inbox.dispatcher.wake()
        self.b.inbox.dispatcher.wake()

    async def idle(self) -> bool:
        return all([await h.inbox.store.pending_outbox_count() == 0 for h in (self.a, self.b)])


async def _start(stack: AsyncExitStack, data_dir: Path) -> Inbox:
    settings = load_settings(overrides={"data_dir": data_dir, "smtp_port": 0}, environ={})
    inbox = build(settings)
    await stack.enter_async_context(TestClient(TestServer(inbox.web)))  # runs store, router, intake, dispatcher
    assert inbox.smtp is not None and inbox.smtp.port
    return inbox


async def _email_channel(inbox: Inbox, address: str, relay_port: int) -> Channel:
    settings = {"address": address, "display_name": f"Support {address}", "smtp_relay": f"127.0.0.1:{relay_port}"}
    return (await add_channel(inbox.store, kind="email", name=address, settings=settings)).channel


async def _acknowledge_every_new_conversation(inbox: Inbox) -> None:
    template = await inbox.router.catalog.put(
        "template", {"name": "ack", "bodies": {"en": "We got your message, #{{ conversation_number }}."}}
    )
    await inbox.router.catalog.put("settings", {"acknowledgement_template_id": template.id})


async def _record_intake(helpdesk: Helpdesk) -> None:
    """Keeps a parsed copy of every raw mail the channel's intake is given (the headers on the wire)."""
    connector = await helpdesk.inbox.hub.connector(helpdesk.channel)  # the one the SMTP intake resolves to
    intake = connector.intake  # type: ignore[attr-defined]
    accept = intake.accept

    async def recording(raw: bytes, **kwargs: str):
        helpdesk.received.append(email.message_from_bytes(raw, policy=default_policy))
        return await accept(raw, **kwargs)

    intake.accept = recording


@pytest.fixture
async def pair(tmp_path: Path) -> AsyncIterator[Pair]:
    async with AsyncExitStack() as stack:
        inbox_a = await _start(stack, tmp_path / "a")
        inbox_b = await _start(stack, tmp_path / "b")
        # each one's replies go to the other's SMTP intake: added while running, found on first use
        a = Helpdesk(inbox_a, await _email_channel(inbox_a, "support@a.example", inbox_b.smtp.port))
        b = Helpdesk(inbox_b, await _email_channel(inbox_b, "support@b.example", inbox_a.smtp.port))
        for helpdesk in (a, b):
            await _acknowledge_every_new_conversation(helpdesk.inbox)
            await _record_intake(helpdesk)
        yield Pair(a, b)


def _send(port: int, raw: bytes, sender: str, to: str) -> None:
    with smtplib.SMTP("127.0.0.1", port, timeout=10) as client:
        client.sendmail(sender, [to], raw)


def _operators_mail() -> bytes:
    """What B's operator writes to A from their own mail client: a person's mail, no automatic headers."""
    mail = EmailMessage()
    mail["From"] = "Support B <support@b.example>"
    mail["To"] = "support@a.example"
    mail["Subject"] = "Order 77: invoice is wrong"
    mail["Message-ID"] = "<order-77@b.example>"
    mail.set_content("Hello, the invoice for order 77 shows the wrong amount.")
    return mail.as_bytes()


async def _settle(pair: Pair, reached: Callable[[], Awaitable[bool]], seconds: float = 5.0) -> None:
    """Polls (waking both outboxes) until ``reached`` holds and both outboxes are empty, then requires
    both instances to stay still for QUIET_SECONDS: nothing queued, nothing new stored. Fails on a
    timeout or on motion."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    while not (await reached() and await pair.idle()):
        if loop.time() > deadline:
            a, b = await pair.a.snapshot(), await pair.b.snapshot()
            raise AssertionError(f"expected state not reached in {seconds}s: A {a}, B {b}")
        pair.wake()
        await asyncio.sleep(0.02)
    before = (await pair.a.snapshot(), await pair.b.snapshot())
    quiet_until = loop.time() + QUIET_SECONDS
    while loop.time() < quiet_until:
        pair.wake()
        await asyncio.sleep(0.05)
    after = (await pair.a.snapshot(), await pair.b.snapshot())
    assert after == before, f"mail kept flowing after the expected state: {before} -> {after}"
    assert after[0][2] == 0 and after[1][2] == 0, "an outbox still holds a job"


async def _delivered(helpdesk: Helpdesk, kind: MessageKind) -> list[Message]:
    return [m for m in await helpdesk.messages(kind, Direction.OUT) if m.delivery_status is DeliveryStatus.SENT]


async def test_an_acknowledgement_is_never_answered_by_the_other_helpdesk(pair: Pair) -> None:
    a, b = pair.a, pair.b
    await asyncio.to_thread(_send, a.port, _operators_mail(), "support@b.example", "support@a.example")

    async def acknowledgement_stored_by_b() -> bool:
        return len(await _delivered(a, MessageKind.AUTO_REPLY)) == 1 and len(await b.messages(None, Direction.IN)) == 1

    await _settle(pair, acknowledgement_stored_by_b)

    (conversation_a,) = await a.conversations()
    assert conversation_a.subject == "Order 77: invoice is wrong"
    contact = await a.inbox.store.get_contact(conversation_a.contact_id)
    assert contact.email == "support@b.example"
    (acknowledgement,) = await a.messages(MessageKind.AUTO_REPLY)
    assert acknowledgement.conversation_id == conversation_a.id
    assert acknowledgement.delivery_status is DeliveryStatus.SENT
    assert [m.extras.get("auto_reply") for m in await a.messages(None, Direction.IN)] == [None]  # a person wrote

    # on the wire: the acknowledgement announced itself as automatic (RFC 3834)
    (wire,) = b.received
    assert wire["Auto-Submitted"] == "auto-replied" and wire["X-Auto-Response-Suppress"] == "All"
    assert wire["To"].addresses[0].addr_spec == "support@b.example"
    assert wire["In-Reply-To"] == "<order-77@b.example>"

    # B stored it, flagged, and answered nothing
    (conversation_b,) = await b.conversations()
    (stored,) = await b.messages(None, Direction.IN)
    assert stored.conversation_id == conversation_b.id and stored.kind is MessageKind.MESSAGE
    assert stored.extras["auto_reply"] is True
    assert stored.text.startswith(f"We got your message, #{conversation_a.number}.")
    assert (await b.inbox.store.get_contact(conversation_b.contact_id)).email == "support@a.example"
    assert await b.messages(MessageKind.AUTO_REPLY) == []
    assert {m.kind for m in await b.messages(None, Direction.OUT)} <= {MessageKind.SYSTEM}  # nothing to send
    assert len(a.received) == 1  # only the operator's mail ever reached A: no ping-pong
    assert len(await a.conversations()) == 1


async def _persons_reply_from_b(pair: Pair, text: str) -> Message:
    """A's acknowledgement reaches B, B's operator answers it there (a person's reply, sent through
    B's outbox to A); returns the answer as A stored it, once both instances have gone quiet."""
    a, b = pair.a, pair.b
    await asyncio.to_thread(_send, a.port, _operators_mail(), "support@b.example", "support@a.example")

    async def acknowledgement_stored_by_b() -> bool:
        return len(await b.messages(None, Direction.IN)) == 1

    await _settle(pair, acknowledgement_stored_by_b)
    (conversation_b,) = await b.conversations()
    operator = (await add_operator(b.inbox.store, email="boris@b.example", name="Boris", password="x")).operator
    reply = await b.inbox.service.reply(conversation_b.id, operator, text)

    async def reply_stored_by_a() -> bool:
        return len(await a.messages(None, Direction.IN)) == 2

    await _settle(pair, reply_stored_by_a)
    assert (await b.inbox.store.get_message(reply.message.id)).delivery_status is DeliveryStatus.SENT
    return (await a.messages(None, Direction.IN))[-1]


async def test_a_persons_reply_between_the_helpdesks_threads_and_starts_no_ping_pong(pair: Pair) -> None:
    a, b = pair.a, pair.b
    answer = await _persons_reply_from_b(pair, "Thanks, we are waiting for the fix.")

    wire = a.received[-1]
    assert "Auto-Submitted" not in wire and "X-Auto-Response-Suppress" not in wire  # a person's mail
    assert len(a.received) == 2 and len(b.received) == 1

    # A threads it into its conversation and sends nothing more: the acknowledgement went out once
    (conversation_a,) = await a.conversations()
    assert answer.conversation_id == conversation_a.id and answer.text == "Thanks, we are waiting for the fix."
    assert len(await a.messages(MessageKind.AUTO_REPLY)) == 1
    assert len(await b.conversations()) == 1
    assert await b.messages(MessageKind.AUTO_REPLY) == []


async def test_a_person_writing_from_another_inbox_is_not_taken_for_an_auto_reply(pair: Pair) -> None:
    answer = await _persons_reply_from_b(pair, "Thanks, we are waiting for the fix.")
    assert not answer.extras.get("auto_reply")
