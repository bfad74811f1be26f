"""Loop and noise signals from headers and subjects, bounces in their less common shapes."""

from __future__ import annotations

import pytest

from connectors.email import parse_email

BASE = b"From: Someone <someone@example.org>\r\nTo: support@example.com\r\nMessage-ID: <m@example.org>\r\n"


def message(headers: str = "", subject: str = "Question", body: str = "Hello") -> bytes:
    return BASE + f"Subject: {subject}\r\n{headers}Content-Type: text/plain; charset=utf-8\r\n\r\n{body}".encode()


@pytest.mark.parametrize(
    "headers",
    [
        "Auto-Submitted: auto-replied\r\n",
        "Auto-Submitted: auto-generated; owner-email=x@example.org\r\n",
        "X-Autoreply: yes\r\n",
        "X-Autorespond: Automatic reply\r\n",
        "Precedence: auto_reply\r\n",
    ],
)
def test_auto_reply_headers(headers: str) -> None:
    assert parse_email(message(headers)).auto_reply is True


@pytest.mark.parametrize(
    "subject",
    [
        "Out of Office: Question",
        "Automatic reply: [#12] Question",
        "Auto-Reply: Question",
        "Автоответ: Вопрос",
        "Автоматический ответ: Вопрос",
        "Нет на месте: Вопрос",
        "Я в отпуске до 12 января",
    ],
)
def test_out_of_office_subjects(subject: str) -> None:
    assert parse_email(message(subject=subject)).auto_reply is True


@pytest.mark.parametrize(
    ("headers", "subject"),
    [
        ("Auto-Submitted: no\r\n", "Question"),
        ("", "Re: Automatic reply: Question"),  # a person answering an auto-reply
        ("", "Question about the out of office policy"),
        ("X-Auto-Response-Suppress: All\r\n", "Question"),  # a request, not a sign: see signals.py
    ],
)
def test_ordinary_mail_is_not_an_auto_reply(headers: str, subject: str) -> None:
    assert parse_email(message(headers, subject)).auto_reply is False


@pytest.mark.parametrize(
    ("value", "suppress"),
    [("All", True), ("OOF, AutoReply", True), ("DR, RN, NRN", False)],
)
def test_auto_response_suppress_is_exposed_as_a_request(value: str, suppress: bool) -> None:
    parsed = parse_email(message(f"X-Auto-Response-Suppress: {value}\r\n"))
    assert parsed.suppress_auto_reply is suppress


@pytest.mark.parametrize(
    "headers",
    [
        "Precedence: bulk\r\n",
        "Precedence: junk\r\n",
        "Precedence: list\r\n",
        "List-Id: <news.example.org>\r\n",
        "List-Unsubscribe: <mailto:u@example.org>\r\n",
    ],
)
def test_bulk_headers(headers: str) -> None:
    assert parse_email(message(headers)).bulk is True


def test_own_outgoing_mail_is_recognized() -> None:
    assert parse_email(message("X-Inbox-Origin: inbox\r\n")).own is True
    assert parse_email(message()).own is False


@pytest.mark.parametrize(
    ("subject", "number"), [("Re: [#1042] Login", 1042), ("Re: #1042 Login", None), ("[#7] a [#8] b", 7), (None, None)]
)
def test_ticket_token(subject: str | None, number: int | None) -> None:
    raw = message(subject=subject) if subject else BASE + b"\r\nHello"
    assert parse_email(raw).ticket_number == number


def test_dsn_with_the_whole_original_message_attached() -> None:
    raw = (
        b"From: Mail Delivery Subsystem <mailer-daemon@googlemail.example>\r\n"
        b"To: support@example.com\r\nSubject: Delivery Status Notification (Delay)\r\n"
        b'Content-Type: multipart/report; report-type="delivery-status"; boundary="r"\r\n\r\n'
        b"--r\r\nContent-Type: text/plain\r\n\r\nThere was a temporary problem delivering your message.\r\n"
        b"--r\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; googlemail.example\r\n\r\n"
        b"Final-Recipient: rfc822; slow@example.net\r\nAction: delayed\r\nStatus: 4.4.1\r\n\r\n"
        b"--r\r\nContent-Type: message/rfc822\r\n\r\nFrom: support@example.com\r\nTo: slow@example.net\r\n"
        b"Message-ID: <reply-9@inbox.example.com>\r\nSubject: Re: x\r\n\r\nbody\r\n--r--\r\n"
    )
    parsed = parse_email(raw)
    assert parsed.bounce is not None
    assert parsed.bounce.to_json() == {"status": "4.4.1", "original_message_id": "<reply-9@inbox.example.com>"}
    assert parsed.text == "There was a temporary problem delivering your message."
    assert [attachment.meta.filename for attachment in parsed.attachments] == ["part-2.txt", "part-3.eml"]


def test_a_daemon_notice_without_codes_is_still_a_bounce() -> None:
    raw = b"From: postmaster@example.net\r\nTo: support@example.com\r\nSubject: Undeliverable\r\n\r\nIt failed."
    parsed = parse_email(raw)
    assert parsed.bounce is not None
    assert parsed.bounce.to_json() == {"status": None, "original_message_id": None}


def test_ordinary_mail_is_not_a_bounce() -> None:
    assert parse_email(message(body="Error 5.1.1 happened when I wrote to you")).bounce is None
