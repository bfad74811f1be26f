"""parse_email over the hand-written corpus: the exact normalized values each message must give."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime

import pytest

from connectors.email import JSON_KEYS, EmailAddress, parse_email
from inbox.errors import PayloadError
from tests.email.corpus import CORPUS, big_attachment, corpus_bytes, parse_corpus

PDF = (
    b"%PDF-1.4\n% test invoice for the Inbox corpus\n1 0 obj << /Type /Catalog >> endobj\n"
    b"trailer << /Root 1 0 R >>\n%%EOF\n"
)
XLSX = b"PK\x03\x04" + b"reconciliation statement placeholder, not a real workbook\n"
DOC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"contract placeholder\n"


def test_multipart_alternative_prefers_plain_text_and_normalizes_thread_keys() -> None:
    parsed = parse_corpus("alternative.eml")

    assert parsed.message_id == "<CAF=alt-1@mail.example.org>"
    assert parsed.in_reply_to == "<reply-1041@inbox.example.com>"
    assert parsed.references == ("<ticket-1042@inbox.example.com>", "<reply-1041@inbox.example.com>")
    assert parsed.thread_keys == ("<ticket-1042@inbox.example.com>", "<reply-1041@inbox.example.com>")
    assert parsed.sender == EmailAddress(name="Anna Smith", email="Anna.Smith@example.org")
    assert parsed.to == (EmailAddress(name="Support", email="support@example.com"),)
    assert parsed.cc == (
        EmailAddress(name="Doe, John", email="john.doe@example.org"),
        EmailAddress(name=None, email="billing@example.com"),
    )
    assert parsed.reply_to == (EmailAddress(name=None, email="anna@work.example.org"),)
    assert parsed.subject == "Re: [#1042] Cannot log in"
    assert parsed.ticket_number == 1042
    assert parsed.date == datetime(2026, 1, 5, 15, 15, tzinfo=UTC)
    assert parsed.text == "Hi team,\n\nthe password reset link says “expired” every time.\n\nAnna\n"
    assert parsed.reply_text == "Hi team,\n\nthe password reset link says “expired” every time.\n\nAnna"
    assert parsed.html == (
        '<div dir="ltr">Hi team,<br><br>the password reset link says “expired” every time.<br><br>Anna</div>'
    )
    assert parsed.attachments == ()
    assert (parsed.auto_reply, parsed.bulk, parsed.bounce, parsed.own) == (False, False, None, False)
    assert parsed.defects == ()


def test_html_only_mail_gets_its_text_from_the_html() -> None:
    parsed = parse_corpus("html_only.eml")

    assert parsed.text == (
        "Order #5521\n\nHello,\n\nI ordered two items:\n\n- Blue mug\n- Red plate\n\n"
        "Only one arrived.\nPlease help.\n\nView order"
    )
    assert parsed.html is not None
    assert '<a href="https://shop.example.net/orders/5521" target="_blank" rel="noopener noreferrer">' in parsed.html
    assert '<img width="1" height="1" alt="" data-remote-src="https://shop.example.net/track.gif">' in parsed.html
    assert "<title>" not in parsed.html and "color: red" not in parsed.html


def test_koi8r_headers_and_body() -> None:
    parsed = parse_corpus("koi8r.eml")

    assert parsed.sender == EmailAddress(name="Иван Петров", email="ivan.petrov@example.ru")
    assert parsed.to == (EmailAddress(name="Служба поддержки", email="support@example.com"),)
    assert parsed.subject == "Не приходит письмо с подтверждением"
    assert parsed.text.startswith("Здравствуйте!\n\nЗарегистрировался на сайте")
    assert parsed.reply_text == (
        "Здравствуйте!\n\nЗарегистрировался на сайте, но письмо с подтверждением так и не пришло.\n"
        'Проверил папку "Спам" - пусто.'
    )
    assert parsed.text.endswith("-- \nС уважением,\nИван Петров\n")
    assert parsed.defects == ("header To: raw 8-bit bytes decoded as koi8-r",)


def test_windows_1251_headers_body_and_an_iso_8859_5_name() -> None:
    parsed = parse_corpus("cp1251.eml")

    assert parsed.sender == EmailAddress(name="Ольга Сидорова", email="olga.sidorova@example.ru")
    assert parsed.cc == (EmailAddress(name="Алексей Кузнецов", email="a.kuznetsov@example.ru"),)
    assert parsed.subject == "Счёт №1042 не оплачен"
    assert parsed.ticket_number is None  # "№1042" is not a "[#1042]" token
    assert parsed.text == (
        "Добрый день!\n\nСчёт №1042 от 5 января до сих пор не оплачен, хотя деньги списаны.\n"
        "Выписку из банка пришлю позже.\n\nОльга\n"
    )
    assert parsed.defects == ()


def test_mislabeled_charset_is_recovered_and_reported() -> None:
    parsed = parse_corpus("mislabeled_charset.eml")

    assert parsed.subject == "Ошибка оплаты"
    assert parsed.text == 'Здравствуйте, при оплате картой выдаёт ошибку "Операция отклонена". Что делать?\n\nПётр\n'
    assert parsed.defects == ("body charset declared iso-8859-1, decoded as windows-1251",)


def test_attachment_names_in_rfc_2231_and_rfc_2047() -> None:
    parsed = parse_corpus("attachment_rfc2231.eml")

    assert parsed.sender == EmailAddress(name="Бухгалтерия ООО «Ромашка»", email="buh@romashka.example.ru")
    assert parsed.text == "Добрый день, счёт, акт сверки и договор во вложении.\n"
    invoice, statement, contract = parsed.attachments
    assert invoice.meta.filename == "счёт.pdf"
    assert invoice.meta.content_type == "application/pdf"
    assert invoice.content == PDF
    assert invoice.meta.size == len(PDF) == 113
    assert invoice.meta.sha256 == hashlib.sha256(PDF).hexdigest()
    assert invoice.meta.sha256 == "849bc3ef2f5d26b4dcf54d5a26ed10771df67dd90ee7e62507c60804c07f026e"
    assert (invoice.meta.inline, invoice.meta.content_id) == (False, None)
    assert statement.meta.filename == "акт сверки.xlsx"  # RFC 2231 continuations
    assert statement.meta.sha256 == hashlib.sha256(XLSX).hexdigest()
    assert contract.meta.filename == "договор.doc"  # RFC 2047 in Content-Type name, windows-1251
    assert contract.meta.sha256 == hashlib.sha256(DOC).hexdigest()
    assert parsed.defects == ()


def test_inline_images_keep_their_content_id_and_cid_sources() -> None:
    parsed = parse_corpus("inline_images.eml")

    screenshot, photo = parsed.attachments
    assert (screenshot.meta.filename, screenshot.meta.content_type) == ("screenshot.png", "image/png")
    assert (screenshot.meta.inline, screenshot.meta.content_id) == (True, "screenshot.png@example.org")
    assert screenshot.content.startswith(b"\x89PNG\r\n\x1a\n")
    assert screenshot.meta.sha256 == hashlib.sha256(screenshot.content).hexdigest()
    assert (photo.meta.filename, photo.meta.inline) == ("photo.jpg", True)
    assert photo.meta.content_id == "photo.jpg@example.org"
    assert parsed.html is not None
    assert '<img src="cid:screenshot.png@example.org" alt="screenshot">' in parsed.html
    assert '<img src="cid:photo.jpg@example.org">' in parsed.html
    assert '<img data-remote-src="https://cdn.example.org/banner.png">' in parsed.html
    assert parsed.text.startswith("Here is the error I see:")  # from text/plain, not from the HTML


@pytest.mark.parametrize(
    ("name", "reply"),
    [
        (
            "outlook_reply_en.eml",
            "Thank you, the refund arrived today.\n\nBest regards,\nMark Johnson\nPurchasing Manager | Example Corp",
        ),
        (
            "outlook_reply_ru.eml",
            "Добрый день!\n\nДа, адрес доставки верный: Москва, ул. Ленина, д. 5, кв. 12."
            "\n\nС уважением,\nАнна Волкова",
        ),
        ("gmail_reply_en.eml", "Thanks, that worked! I can log in now."),
        ("gmail_reply_ru.eml", "Добрый день!\n\nСпасибо, всё заработало."),
        ("apple_reply_en.eml", "Perfect, thank you!\n\nTom"),
        ("apple_reply_ru.eml", "Спасибо, жду курьера завтра."),
        (
            "thunderbird_reply_en.eml",
            "Hi,\n\nit works now. I had to clear the cookies, the old session was still active.",
        ),
        ("thunderbird_reply_ru.eml", "Добрый день.\n\nФайл прикладываю повторно."),
    ],
)
def test_reply_styles_separate_new_text_from_history(name: str, reply: str) -> None:
    parsed = parse_corpus(name)

    assert parsed.reply_text == reply
    assert parsed.text.startswith(reply.split("\n", 1)[0])
    assert len(parsed.text) > len(parsed.reply_text)  # the full body is kept
    assert parsed.defects == ()


def test_reply_headers_thread_keys_and_ticket_tokens() -> None:
    outlook = parse_corpus("outlook_reply_ru.eml")
    assert outlook.subject == "RE: [#1050] Уточнение адреса доставки"
    assert outlook.ticket_number == 1050
    assert outlook.in_reply_to == "<reply-1050-1@inbox.example.com>"
    assert outlook.references == ("<ticket-1050@inbox.example.com>", "<reply-1050-1@inbox.example.com>")

    apple = parse_corpus("apple_reply_en.eml")
    assert apple.message_id == "<5A1B2C3D-4E5F-4061-8293-A4B5C6D7E8F9@example.net>"
    assert apple.date == datetime(2026, 1, 5, 10, 2, 33, tzinfo=UTC)


def test_format_flowed_paragraphs_are_joined() -> None:
    parsed = parse_corpus("thunderbird_reply_en.eml")

    assert "the old session was still active.\n" in parsed.text
    assert "> Please clear your cookies and try again. If that does not help, send us a screenshot.\n" in parsed.text


def test_out_of_office_in_english_by_headers() -> None:
    parsed = parse_corpus("ooo_en.eml")

    assert parsed.auto_reply is True
    assert parsed.suppress_auto_reply is True
    assert parsed.bulk is False
    assert parsed.ticket_number == 1038


def test_out_of_office_in_russian_by_subject_alone() -> None:
    parsed = parse_corpus("ooo_ru.eml")

    assert parsed.subject == "Автоответ: RE: [#1050] Уточнение адреса доставки"
    assert parsed.auto_reply is True
    assert parsed.suppress_auto_reply is False


def test_dsn_bounce_gives_status_and_original_message_id() -> None:
    parsed = parse_corpus("dsn_bounce.eml")

    assert parsed.bounce is not None
    assert parsed.bounce.status == "5.1.1"
    assert parsed.bounce.original_message_id == "<reply-1077-3@inbox.example.com>"
    assert parsed.auto_reply is True
    assert parsed.own is False  # X-Inbox-Origin sits in the returned headers, not on the bounce
    assert parsed.sender == EmailAddress(name="Mail Delivery System", email="MAILER-DAEMON@mx.example.com")
    assert parsed.text.startswith("This is the mail system at host mx.example.com.")
    assert [attachment.meta.content_type for attachment in parsed.attachments] == [
        "message/delivery-status",
        "text/rfc822-headers",
    ]
    assert b"Status: 5.1.1" in parsed.attachments[0].content


def test_classic_mailer_daemon_bounce_without_dsn_structure() -> None:
    parsed = parse_corpus("classic_bounce.eml")

    assert parsed.bounce is not None
    assert parsed.bounce.to_json() == {"status": "5.1.1", "original_message_id": "<reply-1080-1@inbox.example.com>"}


def test_mailing_list_is_bulk() -> None:
    parsed = parse_corpus("mailing_list.eml")

    assert parsed.bulk is True
    assert parsed.auto_reply is False
    assert parsed.bounce is None


def test_missing_message_id_and_raw_utf8_headers() -> None:
    parsed = parse_corpus("no_message_id.eml")

    assert parsed.message_id is None
    assert parsed.date is None
    assert parsed.sender == EmailAddress(name="Форма на сайте", email="robot@example.ru")
    assert parsed.subject == "Заявка с сайта: обратный звонок"
    assert parsed.defects == ("no Message-ID header", "no Date header")


def test_truncated_message_is_parsed_with_defects() -> None:
    """Decision: a truncated message is not an error; what arrived is kept and the cut is reported."""
    parsed = parse_corpus("truncated.eml")

    assert parsed.text == "The log file is attached.\n"
    (log,) = parsed.attachments
    original = bytes(range(256)) * 8
    assert log.meta.filename == "app.log"
    assert 0 < log.meta.size < len(original)
    assert log.content == original[: log.meta.size]
    assert "message: close boundary not found" in parsed.defects
    assert "part 2: invalid base64 padding" in parsed.defects


def test_hostile_file_names_are_sanitized() -> None:
    parsed = parse_corpus("hostile_html.eml")

    names = [attachment.meta.filename for attachment in parsed.attachments]
    assert names == ["passwd.txt", "evil.sh", "invoicefdp.exe", "part-5.bin"]
    assert "part 2: unsafe file name '../../../etc/passwd\\x07.txt' stored as 'passwd.txt'" in parsed.defects
    assert "part 4: unsafe file name 'invoice\\u202efdp.exe' stored as 'invoicefdp.exe'" in parsed.defects


def test_hostile_html_is_sanitized() -> None:
    parsed = parse_corpus("hostile_html.eml")
    html = parsed.html or ""

    lowered = html.lower()
    for forbidden in (
        "<script",
        "javascript:",
        "<iframe",
        "<svg",
        "<form",
        "<object",
        "<embed",
        "<math",
        "<base",
        "<meta",
        "url(",
        "alert(",
        "position",
    ):
        assert forbidden not in lowered, forbidden
    assert " on" not in lowered.replace(" open", "")  # no onload=, onerror=, onclick=, onmouseover=
    assert ' src="http' not in lowered
    assert '<img width="1" height="1" data-remote-src="https://evil.example/pixel.gif?u=42">' in html
    assert '<a href="https://example.com/help" target="_blank" rel="noopener noreferrer">Help</a>' in html
    assert '<p style="color:red">Please review the invoice.</p>' in html
    assert parsed.text == "Please review the invoice.\n\nOpen invoice Also open Help\nThanks"


def test_binary_garbage_raises_payload_error() -> None:
    with pytest.raises(PayloadError, match="no header block"):
        parse_email(corpus_bytes("garbage.bin"))


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b"", "empty message"),
        (b"\r\n \r\n", "empty message"),
        (b"To: support@example.com\r\nSubject: nothing\r\n\r\n\r\n", "no From header and no body"),
    ],
)
def test_input_that_is_not_a_message_raises_payload_error(raw: bytes, reason: str) -> None:
    with pytest.raises(PayloadError, match=reason):
        parse_email(raw)


def test_every_corpus_message_serializes_to_exactly_the_contract_keys() -> None:
    for path in sorted(CORPUS.glob("*.eml")):
        document = parse_email(path.read_bytes()).to_json()
        assert tuple(document) == JSON_KEYS, path.name
        for attachment in document["attachments"]:
            assert set(attachment) == {"filename", "content_type", "size", "sha256", "inline", "content_id"}


def test_big_message_parses_with_correct_size_and_hash(big_message: bytes) -> None:
    assert len(big_message) > 20_000_000
    parsed = parse_email(big_message)

    (dump,) = parsed.attachments
    expected = big_attachment()
    assert dump.meta.filename == "dump.bin"
    assert dump.meta.size == len(expected)
    assert dump.meta.sha256 == hashlib.sha256(expected).hexdigest()
    assert parsed.text == "The dump is attached."
    assert parsed.defects == ()


def test_parsed_headers_are_looked_up_afresh_after_a_change() -> None:
    """The parsed message keeps a name index and parsed parameters; a header changed, added or
    removed afterwards must show at once, as on a plain ``email.message.Message``."""
    from connectors.email.parsing import _parse_structure

    message, _ = _parse_structure(
        b'From: a@example.org\r\nX-Tag: one\r\nContent-Type: text/plain; charset="koi8-r"\r\n\r\nbody\r\n'
    )
    assert (message.get("x-tag"), message.get_content_type(), message.get_param("charset")) == (
        "one",
        "text/plain",
        "koi8-r",
    )
    message.replace_header("Content-Type", "text/html; charset=utf-8")
    message["X-Tag"] = "two"
    assert message.get_all("X-TAG") == ["one", "two"] and "x-tag" in message
    assert (message.get_content_type(), message.get_param("charset"), message.get_content_charset()) == (
        "text/html",
        "utf-8",
        "utf-8",
    )
    del message["x-tag"]
    message.set_param("charset", "windows-1251")
    assert "X-Tag" not in message and message.get("x-tag", "gone") == "gone"
    assert message.get_param("charset") == "windows-1251" and message.get_params()[0] == ("text/html", "")
