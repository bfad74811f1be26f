"""Routing benchmark: prints figures, asserts nothing.

``python -m bench.routing`` (``--quick``: a smoke run in seconds) measures, in one process, the
routing issue's figures: routing decisions/s for 10,000 inbound messages with 50 rules and 50
operators, and the time routing adds per message (targets: ≥ 5,000 decisions/s on a 2-core
machine, p99 ≤ 5 ms).

Each run uses a fresh real ``SqliteStore`` in a temp dir, an ``EventBus`` and an ``InboxService``
on the system clock, and feeds the same 10,000 messages through ``InboxService.receive`` as
connectors would: 20 in flight, then one at a time.

1. The ceiling: the same calls with no router subscribed, msgs/s.
2. With the ``Router`` started: msgs/s, the ratio to the ceiling, and the time the router spends on
   each message. Its entry points are wrapped before ``start()`` plugs them in: ``route`` (rules
   and assignment, before the inbox stores the message), ``answer`` (auto-replies and timers, after)
   and ``on_event`` (the bus). The wrapper steps each coroutine itself, so it measures three things
   per message:

   * *busy*: time inside the router's own steps (rules, auto-replies, assignment, the store calls
     its decisions make), excluding time suspended. This is routing's own cost whatever else is in
     flight, so decisions/s = messages / Σ busy. What the inbox does with the result (writing the
     changed conversation, the system event, the auto-replies) and group commits are outside these
     steps; the throughput-implied figure (1/router rate − 1/ceiling rate) includes all of it.
   * *CPU*: the same steps in thread CPU time. Busy time also counts moments the OS gave the core
     to another process; on a shared two-core machine the two differ most at the tail.
   * *wall*: from the first step's start to the last step's end, added up per message; routing
     no longer waits for anything of its own (its writes share the message's commit), so it
     differs from busy only by what the OS and the loop do between steps.

   Also *the decision alone*: busy time in ``route`` (rules, language, the roster's choice),
   without the auto-replies, marks and timers ``answer`` writes.

The workload: ~2,000 contacts on three channels (api 50%, telegram 30%, email 20%; email threads
by Message-ID references, chats by chat id), so conversations get ~5 messages; texts of 200–800
characters in Russian, English or both, about delivery, refunds, payments, logins, wholesale and
the odd spam or out-of-office mail. The catalog: 5 teams, 50 rules (a handful match a typical
message), an office calendar forced open today and an email desk calendar closed today (so
email conversations take the out-of-hours path whenever the bench runs), acknowledgement,
out-of-hours and no-answer templates. 50 operators are online, spread over the teams; their cap is
chosen so total capacity is two thirds of the conversations (27 for 2,000): the last third queues.
Nobody answers or resolves during the run.

``--parts`` adds a run (20 in flight) with a wall-clock timer around each part of routing
(:data:`PARTS`: the rules, the RE2 passes, the roster, replies, templates, limits, timers) and
prints µs a call and a message: where the time goes inside the server, cache misses included.
``--profile`` adds a run (20 in flight) with cProfile enabled inside the router's steps only, and
prints where routing time goes. Figures come with the CPU share of other processes: on two
cores, anything else running skews them.
"""

from __future__ import annotations

import argparse
import asyncio
import contextvars
import cProfile
import gc
import inspect
import os
import pstats
import random
import sqlite3
import tempfile
import time
from collections.abc import Callable, Coroutine, Generator, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import psutil
from argon2 import PasswordHasher

from inbox import passwords
from inbox.accounts import add_channel, add_operator
from inbox.clock import SystemClock
from inbox.domain import InboundContact, InboundMessage, Presence, Role
from inbox.events import EventBus
from inbox.service import InboxService
from routing import replies as replies_module
from routing.catalog import Catalog
from routing.marks import Marks
from routing.matching import CompiledRules, _Scan
from routing.replies import Replies
from routing.router import Router
from storage.sqlite import SqliteStore

TARGET_DECISIONS, TARGET_P99_MS = 5000.0, 5.0
REPO = Path(__file__).parents[1]
MSK = ZoneInfo("Europe/Moscow")

# the workload

CHANNEL_KINDS = (("api", 0.5), ("telegram", 0.3), ("email", 0.2))
TOPICS = (  # a contact's main topic, with its share of contacts
    ("delivery", 0.33),
    ("refund", 0.13),
    ("billing", 0.12),
    ("tech", 0.17),
    ("sales", 0.07),
    ("feedback", 0.12),
    ("legal", 0.02),
    ("privacy", 0.02),
    ("spam", 0.01),
    ("autoreply", 0.01),
)
LANGUAGES = (("ru", 0.55), ("en", 0.25), ("mixed", 0.2))
FIRST_RU = "Анна Иван Мария Сергей Ольга Дмитрий Елена Алексей Наталья Павел Татьяна Андрей".split()
LAST_RU = "Смирнов Иванов Кузнецов Попов Соколов Лебедев Козлов Новиков Морозов Волков".split()
FIRST_EN = "John Emma Oliver Sophia James Mia Lucas Ava Noah Grace".split()
LAST_EN = "Smith Brown Taylor Wilson Clarke Walker Hughes Evans".split()
CITIES = ("Москва", "Санкт-Петербург", "Казань", "Новосибирск", "Екатеринбург", "Самара", "Краснодар", "Пермь")

GREETING = {
    "ru": ("Здравствуйте!", "Добрый день.", "Привет.", "Добрый вечер!", "Здравствуйте, уважаемая поддержка."),
    "en": ("Hello,", "Hi there!", "Good afternoon.", "Dear support team,", "Hi,"),
}
CLOSING = {
    "ru": (
        "Спасибо.",
        "Заранее спасибо за ответ.",
        "Жду ответа.",
        "С уважением, {name}.",
        "Буду благодарен за помощь.",
    ),
    "en": ("Thanks.", "Thank you in advance.", "Looking forward to your reply.", "Best regards, {name}.", "Cheers."),
}
FOLLOW_UP = {
    "ru": (
        "Есть новости по моему обращению?",
        "Пишу повторно, ответа так и не получил.",
        "Дополню предыдущее сообщение.",
        "Ау, вы здесь? Прошло уже несколько часов.",
    ),
    "en": (
        "Any update on this?",
        "Writing again, I have not heard back yet.",
        "Adding some details to my previous message.",
        "Hello? It has been a few hours now.",
    ),
}
CONTEXT = {
    "ru": (
        "Заказывал через мобильное приложение, оплачивал картой.",
        "Номер телефона в профиле: +7 9{phone}.",
        "Я ваш клиент уже несколько лет и раньше проблем не было.",
        "Скриншот прикладываю, если нужно — пришлю ещё.",
        "Адрес: г. {city}, ул. Ленина, д. {house}, кв. {flat}.",
        "Удобно связаться со мной после 18:00 по Москве.",
    ),
    "en": (
        "I ordered through the mobile app and paid by card.",
        "My phone number is +7 9{phone}.",
        "I have been a customer for years and never had problems before.",
        "Screenshot attached, I can send more if needed.",
        "The address is {city}, Lenina st. {house}, apt. {flat}.",
        "The best time to reach me is after 6 pm Moscow time.",
    ),
}
URGENT = {
    "ru": ("Это срочно!", "СРОЧНО, пожалуйста, ответьте сегодня."),
    "en": ("This is urgent!", "Please reply ASAP."),
}
BODIES: dict[str, dict[str, tuple[str, ...]]] = {
    "delivery": {
        "ru": (
            "Мой заказ №{order} до сих пор не доставлен, хотя статус «передан курьеру» висит уже три дня.",
            "Курьер не позвонил и не приехал в указанный интервал.",
            "Трек-номер {track} не отслеживается на сайте Почты России.",
            "Можно ли изменить адрес доставки на г. {city}?",
            "Посылка пришла повреждённой, коробка вскрыта.",
            "Когда ожидать доставку? Мне нужно до {date}.",
            "Можно забрать заказ самовывозом из пункта выдачи?",
        ),
        "en": (
            "My order #{order} still hasn't been delivered, the tracking page says 'out for delivery' since Monday.",
            "The courier never called and missed the delivery window.",
            "Tracking number {track} shows no updates at all.",
            "Could you change the shipping address to {city}?",
            "The parcel arrived damaged and the box was open.",
            "When can I expect the delivery? I need it by {date}.",
        ),
    },
    "refund": {
        "ru": (
            "Хочу оформить возврат товара по заказу №{order}.",
            "Деньги за отменённый заказ ({amount} ₽) так и не вернулись на карту.",
            "Товар не подошёл по размеру, как оформить возврат?",
            "Прошло уже 10 рабочих дней, а возврат средств не поступил.",
        ),
        "en": (
            "I'd like to request a refund for order #{order}.",
            "I was charged {amount} RUB twice, please refund the duplicate payment.",
            "The item doesn't fit, how do I return it?",
            "It has been 10 business days and I still have not received my refund.",
        ),
    },
    "billing": {
        "ru": (
            "Пожалуйста, пришлите счёт на оплату для юрлица, ИНН {inn}.",
            "Оплата картой не проходит, пишет «операция отклонена».",
            "Нужны закрывающие документы и акт сверки за прошлый квартал.",
            "Деньги списали, но заказ №{order} остался неоплаченным.",
        ),
        "en": (
            "Please send an invoice for order #{order} with our company details.",
            "My card payment keeps failing with 'transaction declined'.",
            "I need a receipt for the payment of {amount} RUB.",
            "The money was debited but order #{order} still shows as unpaid.",
        ),
    },
    "tech": {
        "ru": (
            "Не могу войти в личный кабинет, пароль не подходит.",
            "Приложение вылетает при открытии корзины на Android 14.",
            "Не приходит код подтверждения по SMS.",
            "На сайте ошибка 502 при оформлении заказа.",
            "После обновления приложение не работает совсем.",
        ),
        "en": (
            "I can't log in to my account, the password reset link has expired.",
            "The app crashes when I open the cart (iOS 17.4).",
            "I never receive the SMS verification code.",
            "Checkout fails with error 500: Internal Server Error.",
            "Since the last update the app doesn't work at all.",
        ),
    },
    "sales": {
        "ru": (
            "Интересует оптовая закупка, от 500 единиц. Какая будет цена?",
            "Можно ли получить коммерческое предложение для нашей компании?",
            "Есть ли скидки для постоянных клиентов и промокод на первый заказ?",
        ),
        "en": (
            "We are interested in a wholesale order of 500+ units, what is your price?",
            "Could you send us a quote for our company?",
            "Do you offer a discount for bulk purchases?",
        ),
    },
    "feedback": {
        "ru": (
            "Спасибо большое, всё пришло вовремя!",
            "Оператор очень помог, передайте ему благодарность.",
            "Хочу оставить отзыв о работе курьера, всё было отлично.",
        ),
        "en": (
            "Thanks a lot, everything arrived on time!",
            "Your support agent was very helpful, thank you.",
            "Just wanted to leave some feedback about the new app, I like it.",
        ),
    },
    "legal": {
        "ru": (
            "Если вопрос не решится, я обращусь в Роспотребнадзор и в суд.",
            "Это уже третья жалоба, ответа по существу нет.",
        ),
        "en": (
            "If this is not resolved I will file a chargeback and contact my lawyer.",
            "This is my third complaint.",
        ),
    },
    "privacy": {
        "ru": ("Прошу удалить мои персональные данные в соответствии со 152-ФЗ.", "Удалите, пожалуйста, мой аккаунт."),
        "en": ("Please delete my personal data under GDPR.", "Please delete my account and all related data."),
    },
    "spam": {
        "ru": ("Заработок без вложений! Казино с бонусом 300% ждёт вас.", "Переходите по ссылке, чтобы забрать приз."),
        "en": ("Make money fast! Best online casino, claim your bonus now.", "Click the link to unsubscribe."),
    },
    "autoreply": {
        "ru": ("Я в отпуске до {date}, доступ к почте ограничен.", "По срочным вопросам пишите коллегам."),
        "en": ("I am out of office until {date} with limited access to email.", "For urgent matters contact my team."),
    },
}
FOOTER = {
    "spam": "Подробнее: https://promo.example.net/bonus?ref={order} — More: https://promo.example.net/en/bonus?ref={order}"
    " Отписаться / unsubscribe: https://promo.example.net/u/{inn}",
    "autoreply": "-- С уважением, {name}, ООО «Ромашка», тел. +7 9{phone}. Best regards, {name}, Romashka LLC.",
}
SUBJECTS = {
    "delivery": ("Где мой заказ №{order}?", "Delivery of order #{order}", "Доставка"),
    "refund": ("Возврат по заказу №{order}", "Refund request", "Возврат денег"),
    "billing": ("Счёт на оплату", "Invoice for order #{order}", "Вопрос по оплате"),
    "tech": ("Не могу войти", "Login problem", "Ошибка в приложении"),
    "sales": ("Оптовый заказ", "Wholesale inquiry", "Коммерческое предложение"),
    "feedback": ("Отзыв", "Thank you!", "Благодарность"),
    "legal": ("Претензия", "Formal complaint", "Жалоба"),
    "privacy": ("Удаление данных", "Data deletion request", "GDPR"),
    "spam": ("Вы выиграли приз!", "You won a prize", "Бонус 300%"),
    "autoreply": ("Автоответ: {subject}", "Out of Office: {subject}", "Automatic reply: {subject}"),
}


def _pick(rng: random.Random, weighted: tuple[tuple[str, float], ...]) -> str:
    return rng.choices([k for k, _ in weighted], [w for _, w in weighted])[0]


@dataclass(slots=True)
class Contact:
    key: str
    name: str
    kind: str
    language: str
    topic: str
    subject: str | None = None
    last_message_id: str | None = None


@dataclass(frozen=True, slots=True)
class Draft:
    """One inbound message before it has a channel id (each run's store has its own channels)."""

    kind: str
    external_id: str
    contact: InboundContact
    text: str
    subject: str | None
    thread_keys: tuple[str, ...]
    own_thread_key: str | None
    auto_reply: bool

    def inbound(self, channels: dict[str, str]) -> InboundMessage:
        return InboundMessage(
            channel_id=channels[self.kind],
            external_id=self.external_id,
            contact=self.contact,
            text=self.text,
            subject=self.subject,
            thread_keys=self.thread_keys,
            own_thread_key=self.own_thread_key,
            auto_reply=self.auto_reply,
        )


def _values(rng: random.Random, contact: Contact) -> dict[str, Any]:
    return {
        "order": rng.randrange(100_000, 10_000_000),
        "track": f"RA{rng.randrange(10**8, 10**9)}RU",
        "amount": f"{rng.randrange(500, 90_000):,}".replace(",", " "),
        "date": (datetime(2026, 1, 1) + timedelta(days=rng.randrange(365))).strftime("%d.%m.%Y"),
        "city": rng.choice(CITIES),
        "inn": rng.randrange(10**9, 10**10),
        "phone": rng.randrange(10**8, 10**9),
        "house": rng.randrange(1, 200),
        "flat": rng.randrange(1, 500),
        "name": contact.name,
        "subject": contact.subject or "Ваш заказ / your order",
    }


def compose(rng: random.Random, contact: Contact, first: bool) -> str:
    """200–800 characters: greeting, sentences on the contact's topic (now and then another topic,
    some context, rarely an urgent plea), closing, no sentence twice; "mixed" contacts switch
    language sentence by sentence. Spam and out-of-office mail use both languages and a footer."""
    values = _values(rng, contact)
    used: set[str] = set()
    robot = contact.topic in ("spam", "autoreply")

    def say(pool: Mapping[str, tuple[str, ...]]) -> str | None:
        languages = ("ru", "en") if robot or contact.language == "mixed" else (contact.language,)
        options = [s for language in languages for s in pool[language] if s not in used]
        if not options:
            return None
        sentence = rng.choice(options)
        used.add(sentence)
        return sentence.format(**values)

    topic = contact.topic if first or rng.random() < 0.85 else _pick(rng, TOPICS[:6])
    target, limit = rng.randint(200, 800), 800
    parts = [say(GREETING) or ""]
    if not first and not robot and rng.random() < 0.6:
        parts.append(say(FOLLOW_UP) or "")
    closing = FOOTER[contact.topic].format(**values) if robot else say(CLOSING) or ""
    length = sum(len(p) + 1 for p in parts) + len(closing)
    while length < target:
        roll = rng.random()
        first_choice = BODIES[topic] if roll < 0.7 or robot else CONTEXT if roll < 0.98 else URGENT
        sentence = say(first_choice) or say(BODIES[topic]) or (None if robot else say(CONTEXT))
        if sentence is None or length + len(sentence) + 1 > limit:
            break
        parts.append(sentence)
        length += len(sentence) + 1
    parts.append(closing)
    return " ".join(p for p in parts if p)


def workload(messages: int, contacts: int, seed: int) -> list[Draft]:
    """``messages`` messages from ``contacts`` contacts who arrive at an even pace; a returning
    contact is most often a recent one (a conversation goes on for a while), else anyone."""
    rng = random.Random(seed)
    people: list[Contact] = []
    drafts: list[Draft] = []
    for index in range(messages):
        if len(people) < contacts and (
            not people or contacts - len(people) >= messages - index or rng.random() < contacts / messages
        ):
            language, topic = _pick(rng, LANGUAGES), _pick(rng, TOPICS)
            kind = "email" if topic == "autoreply" else _pick(rng, CHANNEL_KINDS)
            first_names, last_names = (FIRST_EN, LAST_EN) if language == "en" else (FIRST_RU, LAST_RU)
            name = f"{rng.choice(first_names)} {rng.choice(last_names)}"
            key = f"customer{len(people)}@example.org" if kind == "email" else f"{kind}-{len(people)}"
            contact, first = Contact(key, name, kind, language, topic), True
            people.append(contact)
        else:
            recent = rng.random() < 0.7
            contact = people[-1 - rng.randrange(min(100, len(people)))] if recent else rng.choice(people)
            first = False
        external_id = f"m{index}"
        keys: tuple[str, ...]
        own: str | None
        if contact.kind == "telegram":
            subject, keys, own = None, (f"chat:{contact.key}",), None
        elif contact.kind == "api":
            if first:
                contact.subject = rng.choice(SUBJECTS[contact.topic]).format(**_values(rng, contact))
            subject, keys, own = contact.subject, (f"chat:{contact.key}",), None
        else:
            if first:
                contact.subject = rng.choice(SUBJECTS[contact.topic]).format(**_values(rng, contact))
            subject = contact.subject if first or contact.topic == "autoreply" else f"Re: {contact.subject}"
            own = f"<{external_id}.{seed}@mail.example.org>"
            keys = (contact.last_message_id,) if contact.last_message_id else ()
            contact.last_message_id = own
        drafts.append(
            Draft(
                kind=contact.kind,
                external_id=external_id,
                contact=InboundContact(
                    external_id=contact.key,
                    name=contact.name,
                    email=contact.key if contact.kind == "email" else None,
                ),
                text=compose(rng, contact, first),
                subject=subject,
                thread_keys=keys,
                own_thread_key=own,
                auto_reply=contact.topic == "autoreply",
            )
        )
    return drafts


# the catalog: teams, calendars, templates, settings, 50 rules

TEAMS = {
    "delivery": "Доставка / Delivery",
    "billing": "Оплата и возвраты / Billing",
    "tech": "Техподдержка / Tech support",
    "sales": "Продажи / Sales",
    "escalations": "Претензии / Escalations",
}
# (teams, how many operators); teamless operators take conversations without a team
OPERATOR_GROUPS: tuple[tuple[tuple[str, ...], int], ...] = (
    (("delivery",), 14),
    (("delivery", "billing"), 3),
    (("billing",), 10),
    (("tech",), 9),
    (("sales",), 4),
    (("escalations",), 2),
    ((), 8),
)


def _contains(where: str, *needles: str) -> list[dict[str, Any]]:
    return [{"field": where, "op": "contains", "value": needle} for needle in needles]


def _matches(where: str, pattern: str) -> dict[str, Any]:
    return {"field": where, "op": "matches", "value": pattern}


def _team(team: str) -> dict[str, Any]:
    return {"type": "assign_team", "team_id": team}


def _tag(tag: str) -> dict[str, Any]:
    return {"type": "add_tag", "tag": tag}


def _priority(priority: str) -> dict[str, Any]:
    return {"type": "set_priority", "priority": priority}


def _rule(
    name: str,
    conditions: list[dict[str, Any]],
    actions: list[dict[str, Any]],
    *,
    event: str = "message_received",
    match: str = "any",
    stop: bool = False,
) -> dict[str, Any]:
    return {"name": name, "event": event, "match": match, "conditions": conditions, "actions": actions, "stop": stop}


def _is(field: str, value: Any, op: str = "is") -> dict[str, Any]:
    return {"field": field, "op": op, "value": value}


def rules() -> list[dict[str, Any]]:
    """Fifty rules of the kinds admins write: a spam and an out-of-office guard that stop, one rule
    per topic that most messages hit, and many narrow ones (products, cities, partners) that rarely
    do. RE2's ``\\b`` is an ASCII word boundary, so Cyrillic patterns go without it."""
    created = "conversation_created"
    specs = [
        _rule(
            "spam",
            [
                _matches("text", "(?i)casino|казино|заработок без вложений|claim your bonus"),
                _matches("subject", "(?i)вы выиграли|you won"),
            ],
            [_tag("spam"), _priority("low")],
            stop=True,
        ),
        _rule(
            "out of office replies",
            [
                _matches("subject", "(?i)^(auto(matic)? ?reply|out of office|автоответ)"),
                *_contains("text", "я в отпуске", "out of office"),
            ],
            [_tag("autoreply"), _priority("low")],
            stop=True,
        ),
        _rule("urgent words", [_matches("text", r"(?i)срочно|\burgent\b|\basap\b|немедленно")], [_priority("urgent")]),
        _rule(
            "legal threats",
            [_matches("text", "(?i)роспотребнадзор|в суд|судебн|lawyer|chargeback|legal action")],
            [_team("escalations"), _tag("legal"), _priority("high")],
        ),
        _rule(
            "personal data",
            _contains("text", "персональные данные", "152-фз", "gdpr", "personal data"),
            [_team("escalations"), _tag("privacy")],
            stop=True,
        ),
        _rule(
            "refunds",
            _contains("text", "возврат", "вернуть деньги", "refund", "money back"),
            [_team("billing"), _tag("refund")],
        ),
        _rule(
            "invoices",
            [_matches("text", "(?i)сч[её]т на оплату|invoice|акт сверки|закрывающ|ИНН")],
            [_team("billing"), _tag("invoice")],
        ),
        _rule(
            "failed payments",
            _contains("text", "оплата картой не проходит", "отклонена", "declined", "charged", "списали"),
            [_team("billing"), _tag("payment"), _priority("high")],
        ),
        _rule(
            "delivery",
            _contains("text", "курьер", "доставк", "посылк", "courier", "delivery", "shipping", "parcel"),
            [_team("delivery"), _tag("delivery")],
        ),
        _rule("tracking numbers", [_matches("text", r"\b[A-Z]{2}\d{9}[A-Z]{2}\b")], [_tag("tracking")]),
        _rule("order numbers", [_matches("text", r"(?i)(заказ|order)\s*(№|#|no\.?)\s*\d{5,8}")], [_tag("has-order")]),
        _rule(
            "login problems",
            _contains("text", "пароль", "войти", "password", "log in", "код подтверждения", "verification code"),
            [_team("tech"), _tag("login")],
        ),
        _rule(
            "app errors",
            [_matches("text", r"(?i)вылета|не работает|ошибк|crash|error \d{3}|doesn't work|\bbug\b")],
            [_team("tech"), _tag("bug")],
        ),
        _rule(
            "wholesale",
            _contains("text", "оптов", "коммерческое предложение", "wholesale", "quote", "bulk"),
            [_team("sales"), _tag("lead")],
        ),
        _rule(
            "thanks",
            _contains("text", "спасибо большое", "благодарность", "thanks a lot", "very helpful"),
            [_tag("feedback")],
        ),
        _rule(
            "invoices by email",
            [_is("channel_kind", "email"), _matches("subject", "(?i)сч[её]т|invoice")],
            [_team("billing"), _tag("invoice")],
            match="all",
        ),
        _rule(
            "new on telegram",
            [_is("channel_kind", "telegram"), _is("contact_is_new", True)],
            [_tag("telegram-new")],
            event=created,
            match="all",
        ),
        _rule("new customers", [_is("contact_is_new", True)], [_tag("new-customer")], event=created),
        _rule("returning customers", [_is("contact_is_new", False)], [_tag("returning")], event=created),
        _rule(
            "urgent out of hours",
            [_is("business_hours", "outside"), _is("priority", "urgent")],
            [_tag("after-hours-urgent")],
            match="all",
        ),
        _rule(
            "writes again about a high one",
            [_is("priority", "high"), _matches("text", "(?i)повторно|ещё раз|again|third")],
            [_priority("urgent"), _tag("escalated")],
            match="all",
        ),
        _rule(
            "enterprise plan",
            [{"field": "contact_attribute", "name": "plan", "op": "is", "value": "enterprise"}],
            [_tag("vip"), _priority("high")],
        ),
        _rule(
            "english on telegram",
            [_is("language", "en"), _is("channel_kind", "telegram")],
            [_tag("english")],
            event=created,
            match="all",
        ),
        _rule("apple devices", _contains("text", "iphone", "айфон", "ipad", "macbook"), [_tag("apple")]),
        _rule("samsung", _contains("text", "samsung", "самсунг", "galaxy"), [_tag("samsung")]),
        _rule("appliances", _contains("text", "пылесос", "холодильник", "vacuum", "fridge"), [_tag("appliances")]),
        _rule("warranty", _contains("text", "гаранти", "warranty"), [_team("tech"), _tag("warranty")]),
        _rule("subscriptions", _contains("text", "подписк", "subscription"), [_team("billing"), _tag("subscription")]),
        _rule("promo codes", _contains("text", "промокод", "promo code", "coupon"), [_team("sales"), _tag("promo")]),
        _rule(
            "loyalty", _contains("text", "бонусные баллы", "loyalty points", "кешбэк", "cashback"), [_tag("loyalty")]
        ),
        _rule("forwarded", [_matches("subject", "(?i)^(fwd?|пересл)")], [_tag("forwarded")]),
        _rule("regions", _contains("text", "казань", "новосибирск", "екатеринбург"), [_tag("regions")]),
        _rule("cis", [_matches("text", "(?i)алматы|минск|ташкент|almaty|minsk|tashkent")], [_tag("cis")]),
        _rule(
            "pickup points",
            _contains("text", "самовывоз", "пункт выдачи", "pickup point"),
            [_team("delivery"), _tag("pickup")],
        ),
        _rule(
            "international",
            _contains("text", "международн", "international", "customs", "таможн"),
            [_team("delivery"), _tag("international")],
        ),
        _rule(
            "press",
            _contains("text", "журналист", "редакция", "journalist", "press inquiry"),
            [_team("escalations"), _tag("press")],
        ),
        _rule(
            "partners", _contains("text", "партнёрств", "partnership", "affiliate"), [_team("sales"), _tag("partner")]
        ),
        _rule(
            "job seekers",
            _contains("text", "вакансия", "резюме", "job opening", "my resume"),
            [_tag("hr"), _priority("low")],
            stop=True,
        ),
        _rule(
            "integrations", _contains("text", "api key", "webhook", "интеграци"), [_team("tech"), _tag("integration")]
        ),
        _rule("two-factor", _contains("text", "2fa", "двухфакторн", "two-factor"), [_team("tech"), _tag("2fa")]),
        _rule(
            "account deletion",
            _contains("text", "удалите, пожалуйста, мой аккаунт", "delete my account"),
            [_team("tech"), _tag("account-deletion")],
        ),
        _rule(
            "chargebacks",
            _contains("text", "chargeback", "чарджбэк"),
            [_team("billing"), _tag("chargeback"), _priority("urgent")],
        ),
        _rule("gift cards", _contains("text", "подарочн", "gift card"), [_team("sales"), _tag("gift-card")]),
        _rule(
            "installments",
            _contains("text", "рассрочк", "installment", "в кредит"),
            [_team("billing"), _tag("installments")],
        ),
        _rule(
            "wrong item",
            _contains("text", "не тот товар", "wrong item", "пересорт"),
            [_team("delivery"), _tag("wrong-item")],
        ),
        _rule("defects", _contains("text", "брак", "defective", "сломан"), [_team("tech"), _tag("defect")]),
        _rule(
            "complaints",
            [_is("priority", "urgent", "is_not"), _matches("text", "(?i)жалоб|complain")],
            [_priority("high"), _tag("complaint")],
            match="all",
        ),
        _rule(
            "callback requests",
            [_is("channel_kind", "api"), *_contains("subject", "обратный звонок")],
            [_tag("callback")],
            match="all",
        ),
        _rule("whatsapp", [_is("channel_kind", "whatsapp")], [_tag("whatsapp")]),
        _rule(
            "low priority inside hours",
            [_is("priority", "low"), _is("business_hours", "inside"), _is("tag", "spam", "has_not")],
            [_tag("low-touch")],
            match="all",
        ),
    ]
    return [spec | {"position": position} for position, spec in enumerate(specs)]


async def configure(catalog: Catalog, channels: dict[str, str], now: datetime) -> int:
    """Puts the catalog the way the API would; returns the number of rules. Calendars are pinned
    to today's and tomorrow's Moscow dates, so the office is open and the email desk closed
    whenever the bench runs."""
    today = now.astimezone(MSK).date()
    days = [(today + timedelta(days=d)).isoformat() for d in range(2)]
    await catalog.put(
        "calendar",
        {
            "id": "office",
            "name": "Офис, Москва",
            "time_zone": "Europe/Moscow",
            "weekly": [{"weekday": d, "start": "09:00", "end": "20:00"} for d in range(5)]
            + [{"weekday": 5, "start": "10:00", "end": "16:00"}],
            "holidays": [],
            "exceptions": [{"date": day, "intervals": [{"start": "00:00", "end": "00:00"}]} for day in days],
        },
    )
    await catalog.put(
        "calendar",
        {
            "id": "email-desk",
            "name": "Email desk",
            "time_zone": "Europe/Moscow",
            "weekly": [{"weekday": d, "start": "10:00", "end": "18:00"} for d in range(5)],
            "holidays": days,
            "exceptions": [],
        },
    )
    for team_id, name in TEAMS.items():
        await catalog.put("team", {"id": team_id, "name": name})
    templates = {
        "ack": {
            "ru": "Здравствуйте, {{ contact_name|default('клиент', true) }}! Мы получили ваше обращение "
            "№{{ conversation_number }} и скоро ответим.",
            "en": "Hi {{ contact_name|default('there', true) }}, we got your message (conversation "
            "#{{ conversation_number }}) and will reply soon.",
        },
        "after-hours": {
            "ru": "Сейчас мы не работаем.{% if next_opening %} Ответим {{ next_opening }}.{% endif %}",
            "en": "We are closed right now.{% if next_opening %} We will reply {{ next_opening }}.{% endif %}",
        },
        "no-answer": {
            "ru": "Обращение №{{ conversation_number }}: мы всё ещё работаем над ним.",
            "en": "Conversation #{{ conversation_number }}: we are still on it.",
        },
    }
    for template_id, bodies in templates.items():
        await catalog.put("template", {"id": template_id, "name": template_id, "bodies": bodies})
    await catalog.put(
        "settings",
        {
            "acknowledgement_template_id": "ack",
            "out_of_hours_template_id": "after-hours",
            "out_of_hours_period_minutes": 720,
            "no_answer_template_id": "no-answer",
            "no_answer_minutes": 30,
            "default_calendar_id": "office",
            "channel_calendars": {channels["email"]: "email-desk"},
        },
    )
    specs = rules()
    for spec in specs:
        await catalog.put("rule", spec)
    return len(specs)


# timing the router


_ACCOUNT: contextvars.ContextVar[list[float] | None] = contextvars.ContextVar("bench_routing_account", default=None)
"""[busy, CPU, wall] seconds of routing for the message the current task is receiving."""
_INSIDE = contextvars.ContextVar("bench_routing_inside", default=False)


class _Stepped:
    """Awaits a coroutine by driving it step by step, adding up the time spent inside its steps:
    the router's own work, without the time it spends suspended (group commit, other tasks).
    ``cpu`` is the same in thread CPU time, which other processes on the machine cannot inflate."""

    __slots__ = ("busy", "coroutine", "cpu", "profiler")

    def __init__(self, coroutine: Coroutine[Any, Any, Any], profiler: cProfile.Profile | None) -> None:
        self.coroutine, self.profiler, self.busy, self.cpu = coroutine, profiler, 0.0, 0.0

    def __await__(self) -> Generator[Any, Any, Any]:
        send, throw, profiler = self.coroutine.send, self.coroutine.throw, self.profiler
        value: Any = None
        error: BaseException | None = None
        while True:
            if profiler:
                profiler.enable()
            cpu = time.thread_time()  # a system call (~1 µs here): read first, so busy time does not include it
            started = time.perf_counter()
            try:
                yielded = send(value) if error is None else throw(error)
            except StopIteration as done:
                return done.value
            finally:
                self.busy += time.perf_counter() - started
                self.cpu += time.thread_time() - cpu
                if profiler:
                    profiler.disable()
            try:
                value, error = (yield yielded), None
            except GeneratorExit:
                self.coroutine.close()
                raise
            except BaseException as exc:
                value, error = None, exc


@dataclass
class Meter:
    """Router failures: the bus logs and swallows them, so they are counted here to be reported."""

    errors: int = 0
    first_error: str = ""


def timed(
    step: Callable[..., Coroutine[Any, Any, Any]],
    meter: Meter,
    profiler: cProfile.Profile | None,
    *,
    decision: bool = False,
) -> Callable[..., Coroutine[Any, Any, Any]]:
    """One of the router's entry points (``route``, ``answer``, ``on_event``), the same call timed
    into the receiving message's account. Nested calls (the router's own decisions publish events
    it then sees) run inside the outer one's steps and are not counted twice. ``decision``: the
    step is the decision itself (``route``), also counted apart."""

    async def measured(*args: Any, **kwargs: Any) -> Any:
        account = _ACCOUNT.get()
        if account is None or _INSIDE.get():
            return await step(*args, **kwargs)
        token = _INSIDE.set(True)
        started = time.perf_counter()
        stepped = _Stepped(step(*args, **kwargs), profiler)
        try:
            return await stepped
        except Exception as exc:
            meter.errors += 1
            meter.first_error = meter.first_error or f"{type(exc).__name__}: {exc}"
            raise
        finally:
            _INSIDE.reset(token)
            account[0] += stepped.busy
            account[1] += stepped.cpu
            account[2] += time.perf_counter() - started
            if decision:
                account[3] += stepped.busy

    return measured


# runs


def _busy_cpu() -> float:  # machine-wide CPU seconds not idle
    return sum(getattr(psutil.cpu_times(), f, 0.0) for f in ("user", "nice", "system", "irq", "softirq"))


@dataclass
class Run:
    label: str
    messages: int
    seconds: float = 0.0
    receive_ms: list[float] = field(default_factory=list)
    busy_ms: list[float] = field(default_factory=list)
    cpu_ms: list[float] = field(default_factory=list)
    wall_ms: list[float] = field(default_factory=list)
    own_cpu: float = 0.0  # share of one core, this process (event loop and checkpoint thread)
    other_cpu: float = 0.0  # share of one core, everything else on the machine
    errors: int = 0
    first_error: str = ""
    first_queued_at: int | None = None
    queued: int = 0
    counts: dict[str, int] = field(default_factory=dict)
    decide_ms: list[float] = field(default_factory=list)  # busy in route(): rules, language, assignment

    @property
    def rate(self) -> float:
        return self.messages / self.seconds if self.seconds else float("nan")


@contextmanager
def cpu_shares(run: Run) -> Iterator[None]:
    me = psutil.Process()
    own, machine, started = sum(me.cpu_times()[:2]), _busy_cpu(), time.perf_counter()
    yield
    wall = time.perf_counter() - started
    run.own_cpu = (sum(me.cpu_times()[:2]) - own) / wall
    run.other_cpu = max(0.0, (_busy_cpu() - machine) / wall - run.own_cpu)


async def feed(service: InboxService, messages: list[InboundMessage], concurrency: int, run: Run, router: Any) -> None:
    """``concurrency`` tasks take messages in order, as connectors hand them over."""
    n = len(messages)
    run.receive_ms, run.busy_ms, run.cpu_ms, run.wall_ms = [0.0] * n, [0.0] * n, [0.0] * n, [0.0] * n
    run.decide_ms = [0.0] * n
    queue = iter(enumerate(messages))

    async def worker() -> None:
        for index, message in queue:
            account = [0.0, 0.0, 0.0, 0.0]
            _ACCOUNT.set(account)
            started = time.perf_counter()
            try:
                await service.receive(message)
            except Exception as exc:
                run.errors += 1
                run.first_error = run.first_error or f"{type(exc).__name__}: {exc}"
            run.receive_ms[index] = (time.perf_counter() - started) * 1000
            run.busy_ms[index], run.cpu_ms[index], run.wall_ms[index], run.decide_ms[index] = (
                s * 1000 for s in account
            )
            if router is not None and run.first_queued_at is None and router.roster.queued_count():
                run.first_queued_at = index

    with cpu_shares(run):
        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        run.seconds = time.perf_counter() - started


def _counts(path: Path) -> dict[str, int]:
    with sqlite3.connect(path) as db:
        counts = {f"messages:{kind}": n for kind, n in db.execute("SELECT kind, count(*) FROM messages GROUP BY kind")}
        total, assigned, teamed = db.execute(
            "SELECT count(*), count(assignee_id), count(team_id) FROM conversations"
        ).fetchone()
        rules_fired, idle = db.execute(
            "SELECT count(*), coalesce(sum(json_array_length(extras, '$.changed') = 0), 0) FROM messages"
            " WHERE kind = 'system' AND text LIKE 'rules:%'"
        ).fetchone()
        counts |= {"conversations": total, "assigned": assigned, "with team": teamed}
        counts |= {"rule decisions": rules_fired, "rule decisions changing nothing": idle}
    return counts


async def run_once(
    label: str,
    drafts: list[Draft],
    *,
    routed: bool,
    concurrency: int,
    max_open: int,
    profiler: cProfile.Profile | None = None,
) -> Run:
    """One pass over the workload on a fresh store; everything before ``feed`` is set-up, untimed."""
    run = Run(label, len(drafts))
    with tempfile.TemporaryDirectory(prefix="inbox-bench-routing-") as tmp:
        path = Path(tmp, "inbox.sqlite3")
        store = SqliteStore(path)
        await store.open()
        router: Router | None = None
        try:
            clock, bus = SystemClock(), EventBus()
            service = InboxService(store, bus, clock=clock)
            channels = {}
            for kind, _ in CHANNEL_KINDS:
                channels[kind] = (await add_channel(store, kind=kind, name=f"Bench {kind}", clock=clock)).channel.id
            admin = await add_operator(store, email="admin@bench.example", name="Admin", role=Role.ADMIN, clock=clock)
            meter = Meter()
            if routed:
                router = Router(service, clock)
                for entry in ("route", "answer", "on_event"):
                    setattr(router, entry, timed(getattr(router, entry), meter, profiler, decision=entry == "route"))
                await configure(router.catalog, channels, clock.now())
                await router.start(timer_interval=None)
            number = 0
            for teams, count in OPERATOR_GROUPS:
                for _ in range(count):
                    number += 1
                    first, last = FIRST_RU[number % len(FIRST_RU)], LAST_RU[number % len(LAST_RU)]
                    created = await add_operator(
                        store,
                        email=f"op{number}@bench.example",
                        name=f"{first} {last}",
                        max_open=max_open,
                        teams=teams,
                        clock=clock,
                    )
                    await service.update_operator(created.operator.id, admin.operator, presence=Presence.ONLINE)
            messages = [draft.inbound(channels) for draft in drafts]
            gc.collect()
            await feed(service, messages, concurrency, run, router)
            run.errors += meter.errors
            run.first_error = run.first_error or meter.first_error
            if routed and not any(run.decide_ms):  # the inbox logs and swallows routing failures
                run.errors += 1
                run.first_error = run.first_error or "route() never ran: nothing was routed"
            run.queued = router.roster.queued_count() if router else 0
        finally:
            if router is not None:
                await router.stop()
            await store.close()
        run.counts = _counts(path)
    return run


# reporting


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))] if ordered else float("nan")


def decisions(messages: int, ms: list[float]) -> float:
    return messages / (sum(ms) / 1000) if sum(ms) else float("nan")


def spread(values: list[float], *ps: float) -> str:
    return " / ".join(f"{percentile(values, p):.2f}" for p in ps)


def describe(run: Run) -> None:
    print(
        f"   {run.label}: {run.messages:,} in {run.seconds:.2f} s = {run.rate:,.0f} msgs/s; receive ms p50/p99 "
        f"{spread(run.receive_ms, 50, 99)}; errors {run.errors}{' (' + run.first_error + ')' if run.errors else ''}"
        f"\n      CPU, share of one core: this process {run.own_cpu:.0%}, other processes {run.other_cpu:.0%}"
    )
    if sum(run.busy_ms):
        print(
            f"      routing per message, ms p50/p95/p99/max: busy {spread(run.busy_ms, 50, 95, 99, 100)}; "
            f"CPU {spread(run.cpu_ms, 50, 95, 99, 100)}; wall {spread(run.wall_ms, 50, 95, 99, 100)}\n"
            f"      decisions/s: messages / Σ busy {decisions(run.messages, run.busy_ms):,.0f}, "
            f"/ Σ CPU {decisions(run.messages, run.cpu_ms):,.0f}, / Σ wall {decisions(run.messages, run.wall_ms):,.0f}"
        )
    if sum(run.decide_ms):
        print(
            f"      the decision alone (route(): rules, language, assignment; nothing written): "
            f"{decisions(run.messages, run.decide_ms):,.0f} decisions/s, ms p99 {percentile(run.decide_ms, 99):.2f}"
        )


def outcome(run: Run, max_open: int) -> None:
    c = run.counts
    queued_at = f"message #{run.first_queued_at:,}" if run.first_queued_at is not None else "never"
    print(
        f"   outcome: {c.get('conversations', 0):,} conversations, {c.get('assigned', 0):,} assigned "
        f"(cap {max_open} × 50 operators), {run.queued:,} queued (first queued at {queued_at}), "
        f"{c.get('with team', 0):,} with a team\n"
        f"      stored: {c.get('messages:message', 0):,} customer messages, "
        f"{c.get('messages:auto_reply', 0):,} auto-replies, {c.get('messages:system', 0):,} system events "
        f"({c.get('rule decisions', 0):,} of them rule decisions, {c.get('rule decisions changing nothing', 0):,}"
        " of those changing nothing: a rule that matches again re-sets what is set already)"
    )


def print_profile(profiler: cProfile.Profile, busy_seconds: float, top: int = 10) -> None:
    stats = pstats.Stats(profiler)
    entries = stats.stats  # type: ignore[attr-defined]
    total = sum(tt for _, _, tt, _, _ in entries.values())

    def where(key: tuple[str, int, str]) -> str:
        path, line, name = key
        try:
            path = str(Path(path).relative_to(REPO))
        except ValueError:
            path = Path(path).name if path != "~" else ""
        return f"{path}:{line}({name})" if path else name

    def area(key: tuple[str, int, str]) -> str:
        path, _, name = key
        if path == "~":
            return "sqlite3 (C)" if "sqlite3" in name else "builtins (C)"
        if str(REPO) in path and "site-packages" not in path:
            return str(Path(path).relative_to(REPO))
        if "site-packages" in path:
            return path.split("site-packages/", 1)[1].split("/", 1)[0].removesuffix(".py")
        return "stdlib " + Path(path).stem

    print(
        f"   profiled routing time {total * 1000:,.0f} ms (Σ busy under the profiler {busy_seconds * 1000:,.0f} ms)"
        f"\n   top {top} by own time:"
    )
    print(f"   {'own ms':>8} {'own %':>6} {'calls':>9} {'cum ms':>9}  function")
    for key, (_, calls, tt, ct, _) in sorted(entries.items(), key=lambda kv: -kv[1][2])[:top]:
        print(f"   {tt * 1000:8.0f} {tt / total:6.1%} {calls:9,} {ct * 1000:9.0f}  {where(key)}")
    areas: dict[str, float] = {}
    for key, (_, _, tt, _, _) in entries.items():
        areas[area(key)] = areas.get(area(key), 0.0) + tt
    print(
        "   own time by file or package: "
        + ", ".join(f"{name} {tt / total:.0%}" for name, tt in sorted(areas.items(), key=lambda kv: -kv[1])[:top])
    )
    print(f"   top {top} project functions by cumulative time (includes what they call):")
    project = [(key, value) for key, value in entries.items() if str(REPO) in key[0] and "/bench/" not in key[0]]
    for key, (_, calls, tt, ct, _) in sorted(project, key=lambda kv: -kv[1][3])[:top]:
        print(f"   {ct * 1000:8.0f} {ct / total:6.1%} {calls:9,} {tt * 1000:9.0f}  {where(key)}")


# (what, where, attribute): the parts of routing --parts times; a part includes the parts it calls.
# Probes into private names on purpose: rename one and this table must follow.
PARTS: tuple[tuple[str, Any, str], ...] = (
    ("route(): the decision", Router, "route"),
    ("  the rules (facts, engine, folding)", Router, "_plan"),
    ("    the engine", CompiledRules, "evaluate_in_turn"),
    ("      RE2 passes: texts, new subjects", _Scan, "bits_of"),
    ("  the roster's choice", Router, "_choose"),
    ("answer(): replies and timers", Router, "answer"),
    ("  an auto-reply trigger (sent or not)", Replies, "add"),
    ("    rendering its template", replies_module, "render"),  # the name the replies call
    ("    the contact's hourly limit", Marks, "sent_to"),
    ("  the no-answer timer, as a wait begins", Router, "_arm_no_answer"),
    ("    its row in the store", SqliteStore, "set_timer"),
    ("on_event(): the bus", Router, "on_event"),
)


@contextmanager
def timed_parts() -> Iterator[dict[str, list[float]]]:
    """Wraps each of :data:`PARTS` with a wall-clock timer while the block runs: label -> [seconds, calls]."""
    totals: dict[str, list[float]] = {label: [0.0, 0] for label, _, _ in PARTS}
    originals = [(owner, name, getattr(owner, name)) for _, owner, name in PARTS]
    for (label, owner, name), (_, _, original) in zip(PARTS, originals, strict=True):
        setattr(owner, name, _timer(original, totals[label]))
    try:
        yield totals
    finally:
        for owner, name, original in originals:
            setattr(owner, name, original)


def _timer(function: Callable[..., Any], total: list[float]) -> Callable[..., Any]:
    clock = time.perf_counter
    if inspect.iscoroutinefunction(function):

        async def timed_coroutine(*args: Any, **kwargs: Any) -> Any:
            start = clock()
            try:
                return await function(*args, **kwargs)
            finally:
                total[0] += clock() - start
                total[1] += 1

        return timed_coroutine

    def timed_function(*args: Any, **kwargs: Any) -> Any:
        start = clock()
        try:
            return function(*args, **kwargs)
        finally:
            total[0] += clock() - start
            total[1] += 1

    return timed_function


def print_parts(totals: Mapping[str, list[float]], messages: int) -> None:
    print(f"   {'part':<40} {'calls':>8} {'µs a call':>10} {'µs a message':>13}")
    for label, (seconds, calls) in totals.items():
        per_call = seconds / calls * 1e6 if calls else 0.0
        print(f"   {label:<40} {int(calls):>8,} {per_call:>10.1f} {seconds / messages * 1e6:>13.1f}")
    print("   (wall time inside the server run; each timer adds ~0.3 µs a call, and time suspended counts)")


def goal(value: float, target: float, higher: bool) -> str:
    met = value >= target if higher else value <= target
    return f"{'≥' if higher else '≤'} {target:g}  {'MET' if met else 'MISSED'}"


async def bench(args: argparse.Namespace) -> None:
    drafts = workload(args.messages, args.contacts, args.seed)
    lengths = [len(d.text) for d in drafts]
    max_open = args.max_open or max(1, round(args.contacts * 2 / 3 / sum(n for _, n in OPERATOR_GROUPS)))
    print(
        f"routing: {len(drafts):,} messages from {args.contacts:,} contacts (text {min(lengths)}–{max(lengths)} "
        f"chars, mean {sum(lengths) / len(lengths):.0f}), {len(rules())} rules, "
        f"{sum(n for _, n in OPERATOR_GROUPS)} operators with max_open {max_open}"
    )
    results: dict[str, Run] = {}
    implied: dict[str, float] = {}
    modes = [("20 in flight" if args.concurrency == 20 else f"{args.concurrency} in flight", args.concurrency)]
    if not args.no_sequential:
        modes.append(("sequential", 1))
    for step, (mode, concurrency) in enumerate(modes, 1):
        print(f"{step}. {mode}")
        for routed in (False, True):
            label = f"{'router' if routed else 'ceiling (no router)'}"
            run = await run_once(label, drafts, routed=routed, concurrency=concurrency, max_open=max_open)
            results[f"{mode}:{label}"] = run
            describe(run)
        ceiling, routed_run = results[f"{mode}:ceiling (no router)"], results[f"{mode}:router"]
        implied[mode] = cost = (1 / routed_run.rate - 1 / ceiling.rate) * 1000
        print(
            f"   ratio router/ceiling {routed_run.rate / ceiling.rate:.2f}; throughput-implied routing cost "
            f"{cost:.3f} ms/message (≈ {1000 / cost if cost > 0 else float('inf'):,.0f} decisions/s)"
        )
        outcome(routed_run, max_open)
    if args.parts:
        print(f"{len(modes) + 1}. parts: router, {args.concurrency} in flight, a timer around each part of routing")
        with timed_parts() as totals:
            run = await run_once(
                "router (parts timed)", drafts, routed=True, concurrency=args.concurrency, max_open=max_open
            )
        describe(run)
        print_parts(totals, run.messages)
    if args.profile:
        step = len(modes) + 1 + args.parts
        print(f"{step}. profile: router, {args.concurrency} in flight, cProfile inside the router's steps")
        profiler = cProfile.Profile()
        run = await run_once(
            "router (profiled)", drafts, routed=True, concurrency=args.concurrency, max_open=max_open, profiler=profiler
        )
        describe(run)
        print_profile(profiler, sum(run.busy_ms) / 1000)

    mode = modes[0][0]
    ceiling, routed_run = results[f"{mode}:ceiling (no router)"], results[f"{mode}:router"]
    rows = [
        ("ceiling msgs/s (no router)", f"{ceiling.rate:,.0f}", mode),
        ("with router msgs/s", f"{routed_run.rate:,.0f}", mode),
        ("ratio router/ceiling", f"{routed_run.rate / ceiling.rate:.2f}", ""),
    ]
    for what, ms in (("busy", routed_run.busy_ms), ("CPU", routed_run.cpu_ms)):
        rate = decisions(routed_run.messages, ms)
        rows += [
            (f"routing decisions/s (Σ {what})", f"{rate:,.0f}", goal(rate, TARGET_DECISIONS, True)),
            (
                f"routing ms p50/p95/p99 ({what})",
                spread(ms, 50, 95, 99),
                goal(percentile(ms, 99), TARGET_P99_MS, False),
            ),
        ]
    rows += [
        (
            "the decision alone decisions/s",
            f"{decisions(routed_run.messages, routed_run.decide_ms):,.0f}",
            "route(): rules, language, assignment; nothing written",
        ),
        ("routing wall ms p50/p99", spread(routed_run.wall_ms, 50, 99), "its steps, first start to last end"),
        ("throughput-implied ms/message", f"{implied[mode]:.3f}", "1/router rate - 1/ceiling rate"),
        ("CPU of other processes", f"{ceiling.other_cpu:.0%} / {routed_run.other_cpu:.0%}", "of one core"),
    ]
    if not args.no_sequential:
        s_ceiling, s_routed = results["sequential:ceiling (no router)"], results["sequential:router"]
        s_rate, s_p99 = decisions(s_routed.messages, s_routed.wall_ms), percentile(s_routed.wall_ms, 99)
        rows += [
            ("sequential msgs/s ceiling / router", f"{s_ceiling.rate:,.0f} / {s_routed.rate:,.0f}", ""),
            ("seq. routing decisions/s (Σ wall)", f"{s_rate:,.0f}", goal(s_rate, TARGET_DECISIONS, True)),
            (
                "seq. routing ms p50/p95/p99 (wall)",
                spread(s_routed.wall_ms, 50, 95, 99),
                goal(s_p99, TARGET_P99_MS, False),
            ),
            ("seq. throughput-implied ms/message", f"{implied['sequential']:.3f}", ""),
            ("CPU of other processes, seq.", f"{s_ceiling.other_cpu:.0%} / {s_routed.other_cpu:.0%}", "of one core"),
        ]
    first_error = next((r.first_error for r in results.values() if r.errors), "")
    rows.append(("errors", str(sum(r.errors for r in results.values())), first_error))
    print(
        f"\nsummary ({os.cpu_count()} CPUs; busy = time in the router's own steps, CPU = the same in thread CPU"
        " time, wall = first start to last end of its steps)"
    )
    for name, value, note in rows:
        print(f"  {name:<36}{value:>22}   {note}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a smoke run: 1,000 messages from 200 contacts")
    parser.add_argument("--messages", type=int, default=10_000)
    parser.add_argument("--contacts", type=int, default=2_000)
    parser.add_argument("--concurrency", type=int, default=20)
    parser.add_argument("--max-open", type=int, default=0, help="operators' cap; default: 2/3 of contacts / 50")
    parser.add_argument("--no-sequential", action="store_true", help="skip the one-at-a-time runs")
    parser.add_argument("--profile", action="store_true", help="add a profiled run and print the top functions")
    parser.add_argument("--parts", action="store_true", help="add a run that times each part of routing (PARTS)")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    if args.quick:
        args.messages, args.contacts = 1_000, 200
    # set-up only: 51 operators with production argon2 parameters would take seconds and 64 MiB each
    passwords.use_hasher(PasswordHasher(time_cost=1, memory_cost=64, parallelism=1))
    asyncio.run(bench(args))


if __name__ == "__main__":
    main()
