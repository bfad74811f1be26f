"""SMTP intake and SMTP replies against real peers: Python's smtplib as the customer's mail
server, the real Inbox application, and an aiosmtpd server as the relay our replies go to."""

from __future__ import annotations

import asyncio
import email
import smtplib
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass
from email.message import EmailMessage
from email.policy import default as default_policy
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient, TestServer
from aiosmtpd.controller import Controller

from inbox.accounts import add_channel, add_operator
from inbox.app import Inbox, build
from inbox.config import load_settings
from inbox.domain import Channel, DeliveryStatus, Operator, Role
from inbox.errors import Unavailable
from storage.base import ConversationFilter

CORPUS = Path(__file__).parents[1] / "data" / "email"


class Sink:
    """The relay: keeps every message it is given."""

    def __init__(self) -> None:
        self.messages: list[email.message.EmailMessage] = []

    async def handle_DATA(self, server, session, envelope) -> str:  # noqa: N802
        self.messages.append(email.message_from_bytes(envelope.original_content, policy=default_policy))
        return "250 OK"


@dataclass
class Mail:
    inbox: Inbox
    channel: Channel
    operator: Operator
    sink: Sink
    client: TestClient

    def send(self, raw: bytes, to: str = "support@example.com", sender: str = "ivan@example.ru") -> None:
        assert self.inbox.smtp is not None
        with smtplib.SMTP("127.0.0.1", self.inbox.smtp.port, timeout=10) as client:
            client.sendmail(sender, [to], raw)

    async def send_async(self, raw: bytes, **kwargs: str) -> None:
        await asyncio.to_thread(self.send, raw, **kwargs)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
async def mail(tmp_path: Path) -> AsyncIterator[Mail]:
    sink = Sink()
    relay = Controller(sink, hostname="127.0.0.1", port=_free_port())
    relay.start()
    try:
        settings = load_settings(
            overrides={"data_dir": tmp_path, "smtp_port": 0, "smtp_max_message_bytes": 200_000}, environ={}
        )
        inbox = build(settings)
        async with TestClient(TestServer(inbox.web)) as client:
            channel = (
                await add_channel(
                    inbox.store,
                    kind="email",
                    name="Support",
                    settings={
                        "address": "Support@Example.com",
                        "display_name": "Example Support",
                        "smtp_relay": f"127.0.0.1:{relay.port}",
                    },
                )
            ).channel
            operator = (await add_operator(inbox.store, email="olga@example.com", name="Ольга", password="x")).operator
            yield Mail(inbox, channel, operator, sink, client)
    finally:
        relay.stop()


async def _conversations(inbox: Inbox):
    return (await inbox.store.list_conversations(ConversationFilter(), limit=50)).items


async def test_mail_is_stored_once_and_answered_250_only_after(mail: Mail) -> None:
    raw = (CORPUS / "koi8r.eml").read_bytes()
    await mail.send_async(raw)
    await mail.send_async(raw)  # a retrying server delivers twice: stored once
    (conversation,) = await _conversations(mail.inbox)
    assert conversation.subject == "Не приходит письмо с подтверждением"
    contact = await mail.inbox.store.get_contact(conversation.contact_id)
    assert contact.name == "Иван Петров" and contact.email == "ivan.petrov@example.ru"
    (message,) = (await mail.inbox.store.list_messages(conversation.id, limit=10)).items
    assert message.external_id == "<20260106093000.1234@mail.example.ru>"
    assert message.text.startswith("Здравствуйте!") and "С уважением" not in message.text  # signature cut
    assert message.extras["email"]["full_text"].rstrip().endswith("Иван Петров")


async def test_the_whole_body_is_kept_once_when_nothing_was_cut(mail: Mail) -> None:
    await mail.send_async(_customer_mail("<plain-1@example.org>", "Заказ", "Где мой заказ?"))
    (conversation,) = await _conversations(mail.inbox)
    (message,) = (await mail.inbox.store.list_messages(conversation.id, limit=10)).items
    assert message.text.strip() == "Где мой заказ?" and message.extras["email"]["full_text"] is None


async def test_unknown_recipient_550_and_oversize_552(mail: Mail) -> None:
    raw = (CORPUS / "koi8r.eml").read_bytes()
    with pytest.raises(smtplib.SMTPRecipientsRefused) as refused:
        await mail.send_async(raw, to="nobody@example.com")
    assert refused.value.recipients["nobody@example.com"][0] == 550
    big = raw + b"x" * 300_000
    with pytest.raises(smtplib.SMTPSenderRefused) as too_big:  # refused at MAIL FROM, by the announced SIZE
        await mail.send_async(big)
    assert too_big.value.smtp_code == 552
    assert await _conversations(mail.inbox) == []


async def test_addresses_are_parsed_as_aiosmtpd_does_and_a_malformed_one_is_refused(mail: Mail) -> None:
    def talk() -> list[tuple[int, bytes]]:
        with smtplib.SMTP("127.0.0.1", mail.inbox.smtp.port, timeout=10) as client:
            client.ehlo()
            answers = [client.docmd("MAIL", "FROM:<ivan@@example.ru>"), client.docmd("MAIL", "FROM:ivan@example.ru")]
            answers += [client.docmd("RCPT", "TO:<support@example.com> NOTIFY=NEVER"), client.docmd("RSET")]
            return answers

    bad, bare, with_rest, _ = await asyncio.to_thread(talk)
    assert bad[0] == 553 and bare[0] == 250  # aiosmtpd's answers to a malformed and to a bare address
    assert with_rest[0] == 555  # the address parsed, the unknown parameter after it refused


async def test_unparsable_mail_is_quarantined_not_dropped(mail: Mail) -> None:
    garbage = (CORPUS / "garbage.bin").read_bytes()
    await mail.send_async(garbage)
    await mail.send_async(garbage)
    page = await mail.inbox.store.list_quarantine(limit=10)
    assert len(page.items) == 1 and page.items[0].source == "smtp"
    # the raw bytes are kept as received: smtplib sends bytes as they are, plus a final CRLF
    travelled = garbage + (b"" if garbage.endswith(b"\r\n") else b"\r\n")
    assert await mail.inbox.blobs.get(page.items[0].raw_sha256) == travelled
    assert "header" in page.items[0].reason


async def test_store_outage_answers_451_so_the_sender_retries(mail: Mail) -> None:
    async def unavailable(_):
        raise Unavailable("database is locked")

    mail.inbox.service.receive = unavailable  # type: ignore[method-assign]
    with pytest.raises(smtplib.SMTPDataError) as refused:
        await mail.send_async((CORPUS / "koi8r.eml").read_bytes())
    assert refused.value.smtp_code == 451


def _customer_mail(message_id: str, subject: str, text: str, **headers: str) -> bytes:
    mail = EmailMessage()
    mail["From"] = "Анна <anna@example.org>"
    mail["To"] = "support@example.com"
    mail["Subject"] = subject
    mail["Message-ID"] = message_id
    for name, value in headers.items():
        mail[name.replace("_", "-")] = value
    mail.set_content(text)
    return mail.as_bytes()


async def _wait_for(condition, seconds: float = 5.0) -> None:
    for _ in range(int(seconds / 0.02)):
        if await condition():
            return
        await asyncio.sleep(0.02)
    raise AssertionError("condition not met in time")


async def _delivered_reply(mail: Mail, conversation_id: str, text: str = "Ответ") -> EmailMessage:
    """Sends an operator's reply through the outbox and returns it as the relay received it."""
    sent = await mail.inbox.service.reply(conversation_id, mail.operator, text)
    mail.inbox.dispatcher.wake()

    async def delivered() -> bool:
        return (await mail.inbox.store.get_message(sent.message.id)).delivery_status is DeliveryStatus.SENT

    await _wait_for(delivered)
    return mail.sink.messages[-1]


async def test_a_colleague_copied_on_the_thread_joins_it_a_stranger_does_not(mail: Mail) -> None:
    first = _customer_mail("<first@example.org>", "Вопрос", "Здравствуйте", Cc="Борис <boris@example.org>")
    await mail.send_async(first)
    (conversation,) = await _conversations(mail.inbox)
    reply = await _delivered_reply(mail, conversation.id)
    for author, message_id in (("boris@example.org", "<b@example.org>"), ("mallory@evil.example", "<m@evil>")):
        answer = _customer_mail(message_id, "Re: Вопрос", f"from {author}", In_Reply_To=reply["Message-ID"])
        await mail.send_async(answer.replace(b"anna@example.org", author.encode()))
    conversations = await _conversations(mail.inbox)
    assert len(conversations) == 2
    joined = (await mail.inbox.store.list_messages(conversation.id, limit=10)).items
    assert [m.text for m in joined] == ["Здравствуйте", "Ответ", "from boris@example.org"]
    boris = await mail.inbox.store.get_contact(joined[-1].extras["sender"]["contact_id"])
    assert boris.email == "boris@example.org" and boris.id != conversation.contact_id


async def test_the_subject_token_threads_an_answer_without_references_but_not_a_strangers(mail: Mail) -> None:
    await mail.send_async(_customer_mail("<first@example.org>", "Вопрос", "Здравствуйте"))
    (conversation,) = await _conversations(mail.inbox)
    token = f"[#{conversation.number}]"
    await mail.send_async(_customer_mail("<second@example.org>", f"RE: Вопрос {token}", "Ещё вопрос"))
    stranger = _customer_mail("<x@evil.example>", f"Re: {token}", "let me in")
    await mail.send_async(stranger.replace(b"anna@example.org", b"mallory@evil.example"))
    assert len(await _conversations(mail.inbox)) == 2
    texts = [m.text for m in (await mail.inbox.store.list_messages(conversation.id, limit=10)).items]
    assert texts == ["Здравствуйте", "Ещё вопрос"]


@pytest.mark.parametrize("keeps_references", [True, False])
async def test_reply_threads_in_the_customers_client_and_the_answer_comes_back(mail: Mail, keeps_references) -> None:
    await mail.send_async(_customer_mail("<first@example.org>", "Счёт не оплачивается", "Помогите"))
    (conversation,) = await _conversations(mail.inbox)
    reply = await _delivered_reply(mail, conversation.id, "Проверим и вернёмся")
    assert len(mail.sink.messages) == 1
    assert reply["In-Reply-To"] == "<first@example.org>"
    assert "<first@example.org>" in reply["References"]
    assert reply["Subject"] == f"Re: Счёт не оплачивается [#{conversation.number}]"
    assert reply["Reply-To"] == "Support@Example.com"
    (sender,) = reply["From"].addresses
    assert (sender.display_name, sender.addr_spec) == ("Ольга (Example Support)", "Support@Example.com")
    assert reply["To"].addresses[0].addr_spec == "anna@example.org"
    assert reply["X-Inbox-Origin"] and reply.get_content().strip() == "Проверим и вернёмся"

    headers = {"In_Reply_To": reply["Message-ID"]}
    if keeps_references:
        headers["References"] = f"<first@example.org> {reply['Message-ID']}"
    await mail.send_async(_customer_mail("<second@example.org>", "Re: Счёт не оплачивается", "Спасибо!", **headers))
    (again,) = await _conversations(mail.inbox)
    assert again.id == conversation.id
    texts = [m.text for m in (await mail.inbox.store.list_messages(conversation.id, limit=10)).items]
    assert texts == ["Помогите", "Проверим и вернёмся", "Спасибо!"]


async def test_a_stranger_quoting_our_message_id_starts_a_new_conversation(mail: Mail) -> None:
    await mail.send_async(_customer_mail("<first@example.org>", "Вопрос", "Здравствуйте"))
    (conversation,) = await _conversations(mail.inbox)
    ours = (await _delivered_reply(mail, conversation.id))["Message-ID"]
    stranger = _customer_mail("<x@evil.example>", "Re: Вопрос", "I want in", In_Reply_To=ours, References=ours)
    await mail.send_async(stranger.replace(b"anna@example.org", b"mallory@evil.example"))
    assert len(await _conversations(mail.inbox)) == 2


async def test_a_bounce_marks_our_reply_failed_and_is_never_answered(mail: Mail) -> None:
    await mail.send_async(_customer_mail("<first@example.org>", "Вопрос", "Здравствуйте"))
    (conversation,) = await _conversations(mail.inbox)
    reply = await _delivered_reply(mail, conversation.id)
    ours, reply_id = reply["Message-ID"], reply["X-Inbox-Origin"].split("/")[1]
    template = (CORPUS / "dsn_bounce.eml").read_bytes()
    assert b"<reply-1077-3@inbox.example.com>" in template  # the returned message's id in the report
    bounce = template.replace(b"<reply-1077-3@inbox.example.com>", ours.encode())
    await mail.send_async(bounce, sender="")
    failed = await mail.inbox.store.get_message(reply_id)
    assert failed.delivery_status is DeliveryStatus.FAILED and failed.delivery_error == "bounced: 5.1.1"
    stored = [
        m
        for c in await _conversations(mail.inbox)
        for m in (await mail.inbox.store.list_messages(c.id, limit=10)).items
    ]
    report = next(m for m in stored if m.extras.get("email", {}).get("bounce"))
    assert report.extras["auto_reply"] is True  # routing never answers it


async def test_admins_see_the_quarantine_over_the_api_and_operators_do_not(mail: Mail) -> None:
    await mail.send_async((CORPUS / "garbage.bin").read_bytes())
    admin = await add_operator(mail.inbox.store, email="boss@example.com", name="Boss", role=Role.ADMIN, password="x")
    operator = await add_operator(mail.inbox.store, email="op@example.com", name="Op", password="x")
    refused = await mail.client.get("/api/v1/quarantine", headers={"Authorization": f"Bearer {operator.api_token}"})
    assert refused.status == 403
    listed = await mail.client.get("/api/v1/quarantine", headers={"Authorization": f"Bearer {admin.api_token}"})
    (item,) = (await listed.json())["items"]
    assert item["source"] == "smtp" and item["channel_id"] == mail.channel.id and "header" in item["reason"]
    assert await mail.inbox.blobs.get(item["raw_sha256"])
    raw = await mail.client.get(f"/api/v1/quarantine/{item['id']}/raw", headers=_bearer(admin))
    assert raw.status == 200 and await raw.read() == await mail.inbox.blobs.get(item["raw_sha256"])
    assert raw.headers["Content-Type"] == "application/octet-stream"
    assert (await mail.client.get(f"/api/v1/quarantine/{item['id']}/raw", headers=_bearer(operator))).status == 403


def _bearer(operator) -> dict[str, str]:
    return {"Authorization": f"Bearer {operator.api_token}"}


def _hostile_attachments() -> bytes:
    mail = EmailMessage()
    mail["From"] = "Анна <anna@example.org>"
    mail["To"] = "support@example.com"
    mail["Subject"] = "Файлы"
    mail["Message-ID"] = "<files@example.org>"
    mail.set_content("См. вложения")
    mail.add_attachment("Счёт за март".encode(), maintype="text", subtype="plain", filename="Счёт №5.txt")
    page = b"<script>alert(1)</script>"
    mail.add_attachment(page, maintype="text", subtype="html", filename='../../"evil"\u202egnp.html')
    svg = b'<svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)"/>'
    mail.add_attachment(svg, maintype="image", subtype="svg+xml", filename="logo.svg")
    return mail.as_bytes(policy=email.policy.SMTP)  # CRLF: smtplib sends bytes as they are


async def test_attachments_download_with_safe_headers_only_through_their_message(mail: Mail) -> None:
    await mail.send_async(_hostile_attachments())
    (conversation,) = await _conversations(mail.inbox)
    (message,) = (await mail.inbox.store.list_messages(conversation.id, limit=10)).items
    text, page, svg = message.attachments
    operator = await add_operator(mail.inbox.store, email="op@example.com", name="Op", password="x")

    async def fetch(message_id: str, sha256: str):
        return await mail.client.get(f"/api/v1/messages/{message_id}/attachments/{sha256}", headers=_bearer(operator))

    got = await fetch(message.id, text.sha256)
    assert got.status == 200 and (await got.read()).decode() == "Счёт за март"
    assert got.headers["Content-Type"] == "text/plain"
    assert got.headers["Content-Disposition"].startswith('attachment; filename="')
    assert "filename*=UTF-8''%D0%A1%D1%87%D1%91%D1%82%20%E2%84%965.txt" in got.headers["Content-Disposition"]
    assert got.headers["X-Content-Type-Options"] == "nosniff"
    assert "sandbox" in got.headers["Content-Security-Policy"]
    for hostile in (page, svg):
        served = await fetch(message.id, hostile.sha256)
        assert served.status == 200 and served.headers["Content-Type"] == "application/octet-stream"
        disposition = served.headers["Content-Disposition"]
        assert disposition.startswith("attachment;") and "/" not in disposition.split("filename*=")[0]
    assert "\u202e" not in (await fetch(message.id, page.sha256)).headers["Content-Disposition"]
    # a hash alone opens nothing: the file must belong to the message asked for
    await mail.send_async(_customer_mail("<other@example.org>", "Другое", "Без вложений"))
    other = next(c for c in await _conversations(mail.inbox) if c.id != conversation.id)
    (plain,) = (await mail.inbox.store.list_messages(other.id, limit=10)).items
    assert (await fetch(plain.id, text.sha256)).status == 404
    assert (await fetch(message.id, "0" * 64)).status == 404
    assert (await mail.client.get(f"/api/v1/messages/{message.id}/attachments/{text.sha256}")).status == 401
