"""Auto-reply templates: checked on save, rendered in the sandbox in the customer's language."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from typing import Any
from zoneinfo import ZoneInfo

import jinja2
import pytest

from routing.templates import (
    TEMPLATE_VARIABLES,
    AutoReplyError,
    AutoReplyTemplate,
    AutoReplyTemplateSpec,
    check_source,
    load_template,
    parse_template,
    pick_language,
    render,
)

OPENING = datetime(2026, 11, 30, 6, 0, tzinfo=UTC)  # 09:00 in Moscow, 07:00 in Berlin

EN = (
    "Hello {{ contact_name|default('there', true) }},\n"
    "{% if next_opening %}\n"
    "we are closed; we open {{ next_opening }}.\n"
    "{% else %}\n"
    "we will answer shortly.\n"
    "{% endif %}\n"
    "Conversation #{{ conversation_number }} on {{ channel_name }}"
)
RU = "Здравствуйте, {{ contact_name|default('клиент', true) }}! Мы откроемся {{ next_opening }}."


def template(**overrides: Any) -> AutoReplyTemplate:
    data: dict[str, Any] = {"id": "tpl1", "name": "Out of hours", "bodies": {"en": EN, "ru": RU}}
    return load_template(data | overrides)


def refusal(bodies: dict[str, str], **extra: Any) -> list[dict[str, str]]:
    with pytest.raises(AutoReplyError) as caught:
        parse_template({"name": "t", "bodies": bodies} | extra)
    return caught.value.errors


def test_english_with_a_babel_date_in_the_calendars_zone() -> None:
    text = render(
        template(),
        "en",
        contact_name="Ann",
        conversation_number=1042,
        next_opening=OPENING,
        channel_name="Support mail",
        time_zone="Europe/Moscow",
    )
    assert (
        text
        == "Hello Ann,\nwe are closed; we open Monday, 30 November 2026, 09:00.\nConversation #1042 on Support mail"
    )


def test_russian_with_a_babel_date() -> None:
    text = render(template(), "ru", contact_name="Иван", next_opening=OPENING, time_zone=ZoneInfo("Europe/Moscow"))
    assert text == "Здравствуйте, Иван! Мы откроемся понедельник, 30 ноября 2026, 09:00."


def test_the_date_keeps_its_own_zone_without_one_given() -> None:
    berlin = OPENING.astimezone(ZoneInfo("Europe/Berlin"))
    assert "понедельник, 30 ноября 2026, 07:00" in render(template(), "ru", next_opening=berlin)
    fixed = OPENING.astimezone(timezone(timedelta(hours=-5)))
    assert "Monday, 30 November 2026, 01:00" in render(template(), "en", next_opening=fixed)


def test_a_naive_date_is_a_programming_error() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        render(template(), "en", next_opening=datetime(2026, 11, 30, 9))


def test_the_opening_is_worked_out_only_for_a_body_that_shows_it() -> None:
    asked: list[str] = []

    def opening() -> datetime:
        asked.append("asked")
        return OPENING

    no_date = template(bodies={"en": "Conversation #{{ conversation_number }}", "ru": RU})
    assert render(no_date, "en", conversation_number=7, next_opening=opening) == "Conversation #7"
    assert asked == []
    text = render(no_date, "ru", next_opening=opening, time_zone="Europe/Moscow")
    assert text == "Здравствуйте, клиент! Мы откроемся понедельник, 30 ноября 2026, 09:00."
    assert asked == ["asked"]
    assert render(template(), "en", next_opening=lambda: None).endswith("we will answer shortly.\nConversation # on ")


def test_absent_values_render_empty_not_none() -> None:
    text = render(template(), "en")
    assert text == "Hello there,\nwe will answer shortly.\nConversation # on "
    assert "None" not in render(template(), "ru")


def test_customer_data_is_printed_not_evaluated() -> None:
    text = render(template(), "en", contact_name="{{ 7 * 7 }} <b>Ann</b>")
    assert text.startswith("Hello {{ 7 * 7 }} <b>Ann</b>,")  # plain text: no evaluation, no escaping


@pytest.mark.parametrize(
    ("language", "expected"),
    [("ru", "ru"), ("ru-RU", "ru"), ("ru_RU", "ru"), ("EN", "en"), ("de", "en"), (None, "en"), ("", "en")],
)
def test_language_fallback(language: str | None, expected: str) -> None:
    assert pick_language({"en": 1, "ru": 2}, language) == expected


def test_fallback_prefers_the_exact_variant_then_any_body() -> None:
    assert pick_language({"pt": 1, "pt-BR": 2}, "pt-br") == "pt-BR"
    assert pick_language({"pt": 1, "pt-BR": 2}, "pt-PT") == "pt"
    assert pick_language({"de": 1, "fr": 2}, "ru") == "de"


def test_a_fallback_body_gets_a_date_in_its_own_language() -> None:
    only_en = template(bodies={"en": "Open {{ next_opening }}"})
    assert render(only_en, "ru", next_opening=OPENING, time_zone="UTC") == "Open Monday, 30 November 2026, 06:00"
    only_de = template(bodies={"de": "Wir öffnen {{ next_opening }}"})
    assert render(only_de, "ru", next_opening=OPENING, time_zone="UTC") == "Wir öffnen Montag, 30 November 2026, 06:00"


def test_round_trip_through_json() -> None:
    spec = parse_template({"name": "t", "bodies": {"en": EN}})
    assert isinstance(spec, AutoReplyTemplateSpec) and not isinstance(spec, AutoReplyTemplate)
    stored = spec.with_id("tpl9")
    assert load_template(json.loads(stored.model_dump_json())) == stored


def test_unknown_variable_is_refused() -> None:
    assert refusal({"en": "Hi {{ name }}", "ru": "{% if vip %}VIP{% endif %}{{ contact_name }}"}) == [
        {
            "loc": "bodies.en",
            "message": "unknown variable 'name'; use contact_name, conversation_number, next_opening, channel_name",
        },
        {
            "loc": "bodies.ru",
            "message": "unknown variable 'vip'; use contact_name, conversation_number, next_opening, channel_name",
        },
    ]


def test_syntax_errors_name_the_line() -> None:
    [found] = refusal({"en": "Hello\n{% if contact_name %}\nno end"})
    assert found["loc"] == "bodies.en"
    assert found["message"].startswith("syntax error on line 3: Unexpected end of template.")
    assert found["message"].endswith("The innermost block that needs to be closed is 'if'.")
    assert refusal({"en": "ok"}, subjects={"en": "Re"})[0]["loc"] == "subjects"  # not a field: refused


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("{{ ''.__class__ }}", "auto-reply templates cannot use attribute access (x.y) (line 1)"),
        ("{{ contact_name['x'] }}", "auto-reply templates cannot use item access (x[y]) (line 1)"),
        ("{{ contact_name.upper() }}", "auto-reply templates cannot use calls (f()) (line 1)"),
        ("\n{% for i in range(9) %}x{% endfor %}", "auto-reply templates cannot use loops ({% for %}) (line 2)"),
        ("{% set x = 1 %}", "auto-reply templates cannot use assignments ({% set %}) (line 1)"),
        ("{{ 'x' * 1000000000 }}", "auto-reply templates cannot use arithmetic (line 1)"),
        ("{% include 'other' %}", "auto-reply templates cannot use other templates and blocks (line 1)"),
        ("{% macro m() %}{% endmacro %}", "auto-reply templates cannot use macros (line 1)"),
        ("{{ contact_name|center(1000000000) }}", "auto-reply templates cannot use the filter 'center' (filters: "),
        ("{% if contact_name is sameas 1 %}{% endif %}", "auto-reply templates cannot use the test 'sameas' (tests: "),
    ],
)
def test_constructs_a_reply_never_needs_are_refused(source: str, message: str) -> None:
    found = refusal({"en": source})
    assert len(found) == 1 and found[0]["loc"] == "bodies.en"
    assert found[0]["message"].startswith(message)


def test_what_a_reply_needs_is_allowed() -> None:
    source = (
        "{{ contact_name|default('there', true)|title }} {{ channel_name|upper|truncate(20) }}"
        "{% if next_opening and contact_name is string %} {{ next_opening }}{% elif not channel_name %}-{% endif %}"
        "{{ ' #' ~ conversation_number if conversation_number else '' }}"
        "{% if channel_name in ['Mail', 'Chat'] %}!{% endif %}"
    )
    assert check_source(source) == source
    assert render(
        template(bodies={"en": source}), "en", contact_name="ann lee", channel_name="Mail", conversation_number=3
    ) == ("Ann Lee MAIL #3!")


def test_the_sandbox_is_the_second_wall() -> None:
    """A template that skipped validation still cannot reach Python internals."""
    unchecked = AutoReplyTemplate.model_construct(id="x", name="x", bodies={"en": "{{ ''.__class__.__mro__ }}"})
    with pytest.raises(jinja2.exceptions.SecurityError):
        render(unchecked, "en")


@pytest.mark.parametrize(
    ("data", "loc", "message"),
    [
        ({"name": "t", "bodies": {}}, "bodies", "Dictionary should have at least 1 item after validation, not 0"),
        ({"name": "t", "bodies": {"en": ""}}, "bodies.en", "String should have at least 1 character"),
        ({"name": "t", "bodies": {"en": "x"}, "colour": "red"}, "colour", "unknown field"),
        ({"name": "t", "bodies": {"en": 5}}, "bodies.en", "Input should be a valid string"),
        ({"name": "", "bodies": {"en": "x"}}, "name", "String should have at least 1 character"),
    ],
)
def test_shape_refusals(data: dict[str, Any], loc: str, message: str) -> None:
    with pytest.raises(AutoReplyError) as caught:
        parse_template(data)
    assert caught.value.errors == [{"loc": loc, "message": message}]


def test_bad_language_keys_are_refused() -> None:
    with pytest.raises(AutoReplyError) as caught:
        parse_template({"name": "t", "bodies": {"English": "x"}})
    assert caught.value.errors[0]["loc"].startswith("bodies.English")


def test_variables_are_documented() -> None:
    assert list(TEMPLATE_VARIABLES) == ["contact_name", "conversation_number", "next_opening", "channel_name"]
    assert all(TEMPLATE_VARIABLES.values())
