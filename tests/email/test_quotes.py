"""Reply separation on plain text, in the shapes the common clients produce, English and Russian."""

from __future__ import annotations

import pytest

from connectors.email.quotes import reply_text


@pytest.mark.parametrize(
    ("text", "reply"),
    [
        pytest.param(
            "Thanks, that works!\n\nOn Mon, Jan 5, 2026 at 10:00 AM John Smith <\njohn@example.com> wrote:\n\n"
            "> Try again\n",
            "Thanks, that works!",
            id="gmail-wrapped",
        ),
        pytest.param(
            "Thanks!\nOn Mon, Jan 5, 2026 at 10:00 AM John <john@example.com> wrote:\n> old\n",
            "Thanks!",
            id="gmail-no-blank-line",
        ),
        pytest.param(
            "Perfect.\n\nOn Jan 5, 2026, at 10:00, Support Team <support@example.com> wrote:\n\n> old",
            "Perfect.",
            id="apple",
        ),
        pytest.param("Works.\n\nOn 1/5/26 10:00 AM, Support Team wrote:\n> Try\n", "Works.", id="thunderbird"),
        pytest.param("Great\n\nJohn Smith wrote:\n> old", "Great", id="name-wrote-with-quote-below"),
        pytest.param("Fine.\n\n-----Original Message-----\nFrom: a\nSent: b\n\nold", "Fine.", id="outlook-original"),
        pytest.param("Ok.\n\n----- Original Message -----\nFrom: a\n\nold", "Ok.", id="outlook-express"),
        pytest.param(
            "Ok, thanks.\n\n________________________________\nFrom: Support <s@example.com>\n"
            "Sent: Monday, January 5, 2026 10:00 AM\nTo: Ivan <i@example.com>\nSubject: RE: order\n\nold",
            "Ok, thanks.",
            id="outlook-from-block",
        ),
        pytest.param(
            "Ok.\n\n*From:* Support <s@example.com>\n*Sent:* Monday\n*To:* Ivan\n*Subject:* RE: order\n\nold",
            "Ok.",
            id="outlook-from-block-bold-in-plain-text",
        ),
        pytest.param(
            "Спасибо.\n\nОт: Служба поддержки <support@example.com>\nОтправлено: 5 января 2026 г. 10:00\n"
            "Кому: Иван <ivan@example.ru>\nТема: RE: Заказ\n\nСтарое",
            "Спасибо.",
            id="outlook-ru",
        ),
        pytest.param(
            "Хорошо.\n\n-----Исходное сообщение-----\nОт: a\nДата: b\n\nстарое", "Хорошо.", id="outlook-ru-original"
        ),
        pytest.param(
            "Да.\n\nпн, 5 янв. 2026 г. в 10:00, Служба поддержки <support@example.com>:\n\n> Уточните",
            "Да.",
            id="gmail-ru",
        ),
        pytest.param(
            "Да.\n\nпн, 5 янв. 2026 г. в 10:00, Служба поддержки <\nsupport@example.com>:\n\n> Уточните",
            "Да.",
            id="gmail-ru-wrapped",
        ),
        pytest.param(
            "Да.\n\n5 января 2026 г., 10:00 пользователь Служба поддержки <support@example.com> написал:\n> Уточните",
            "Да.",
            id="gmail-ru-old",
        ),
        pytest.param(
            "Добрый день!\nВсё получил.\n\n05.01.2026 10:00, Служба поддержки пишет:\n> Здравствуйте",
            "Добрый день!\nВсё получил.",
            id="thunderbird-ru",
        ),
        pytest.param(
            "Спасибо!\n\n5 янв. 2026 г., в 10:00, Служба поддержки <support@example.com> написал(а):\n\n> Ответ",
            "Спасибо!",
            id="apple-ru",
        ),
        pytest.param('Ок\n\n05.01.2026, 10:00, "Служба поддержки" <support@example.com>:\n> Привет', "Ок", id="yandex"),
        pytest.param(
            "Ок\n\nПонедельник, 5 января 2026, 10:00 +03:00 от Служба поддержки <support@example.com>:\n> Привет",
            "Ок",
            id="mail-ru",
        ),
        pytest.param("Иван Петров написала:\n> вопрос\nответ", "ответ", id="ru-verb-with-quote-below"),
    ],
)
def test_quote_headers_start_the_history(text: str, reply: str) -> None:
    assert reply_text(text) == reply


def test_customer_quoting_an_error_message_is_not_history() -> None:
    text = "Не работает. Система пишет:\nОшибка 500\n\nСпасибо"
    assert reply_text(text) == text


def test_sentence_ending_in_wrote_without_evidence_is_not_history() -> None:
    text = "My colleague wrote:\nplease call me back"
    assert reply_text(text) == text


def test_bottom_posting_keeps_the_text_below_the_quote() -> None:
    text = "On Mon, Jan 5, 2026 at 10:00 AM John <j@example.com> wrote:\n> question?\n\nMy answer below.\n"
    assert reply_text(text) == "My answer below."


def test_interleaved_answers_keep_only_the_new_lines() -> None:
    assert reply_text("Hi,\n\n> Question 1?\nAnswer 1\n\n> Question 2?\nAnswer 2\n") == "Hi,\n\nAnswer 1\n\nAnswer 2"


@pytest.mark.parametrize(
    ("text", "reply"),
    [
        ("Hello\n\nsee attached\n-- \nJohn Smith\nACME", "Hello\n\nsee attached"),
        ("Hello\n--\nJohn", "Hello"),
        ("Yes, please cancel it.\n\nSent from my iPhone", "Yes, please cancel it."),
        ("Да.\n\nОтправлено с iPhone", "Да."),
        ("Да.\n\nОтправлено из мобильной Почты Mail.ru", "Да."),
        ("Ok\n\nGet Outlook for Android", "Ok"),
    ],
)
def test_signatures_and_mobile_footers_are_removed(text: str, reply: str) -> None:
    assert reply_text(text) == reply


def test_plain_text_without_history_is_unchanged_but_trimmed() -> None:
    assert reply_text("\n\nJust a question.\r\nThanks  \n\n\n") == "Just a question.\nThanks"
