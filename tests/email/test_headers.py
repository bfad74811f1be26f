"""Header decoding: RFC 2047 words (well-formed or not), raw 8-bit bytes, addresses, ids, dates."""

from __future__ import annotations

import random
from datetime import UTC, datetime
from email.utils import getaddresses

import pytest

from connectors.email.headers import EmailAddress, HeaderDecoder, _simple_mailbox, message_ids, parse_date


@pytest.mark.parametrize(
    ("raw", "decoded"),
    [
        ("=?koi8-r?B?8NLJ18XU?=", "Привет"),
        ("=?windows-1251?Q?=CF=F0=E8=E2=E5=F2?= world", "Привет world"),
        ("=?iso-8859-5?B?v+DY0tXi?=", "Привет"),
        ("=?UTF-8?Q?hello_world?= and =?utf-8?q?more?=", "hello world and more"),
        ("=?utf-8?B?0J/RgNC4?= =?utf-8?B?0LLQtdGC?=", "Привет"),  # whitespace between words is dropped
        ("=?utf-8?B?0J/R?= =?utf-8?B?gNC4?=", "При"),  # a character split across two words
        ("=?utf-8*ru?Q?=D0=9F?=", "П"),  # RFC 2231 language suffix
        ("Re:\r\n =?utf-8?B?0J/RgNC4?=", "Re: При"),  # folded
        ("plain ascii", "plain ascii"),
    ],
)
def test_encoded_words_decode(raw: str, decoded: str) -> None:
    decoder = HeaderDecoder()
    assert decoder.text(raw, "Subject") == decoded
    assert decoder.defects == []


@pytest.mark.parametrize(
    ("raw", "decoded", "defect"),
    [
        ("=?utf-8?B?0J/RgNC4", "При", "header Subject: unterminated encoded word"),
        ("=?utf-8?B?0J/RgNC4?", "При", "header Subject: unterminated encoded word"),
        ("=?utf-8?B?0J/RgNC40LI?=", "Прив", "header Subject: base64 encoded word lacks padding"),
        ("=?x-unknown?Q?abc?=", "abc", "header Subject charset 'x-unknown' is unknown"),
        ("=?us-ascii?Q?=D0=9F=D1=80=D0=B8?=", "При", "header Subject charset declared us-ascii, decoded as utf-8"),
    ],
)
def test_malformed_encoded_words_are_recovered_with_a_defect(raw: str, decoded: str, defect: str) -> None:
    decoder = HeaderDecoder()
    assert decoder.text(raw, "Subject") == decoded
    assert decoder.defects == [defect]


def test_raw_8bit_header_uses_the_body_charset_as_hint() -> None:
    raw = "Привет".encode("koi8-r").decode("ascii", "surrogateescape")
    decoder = HeaderDecoder(hint="koi8-r")
    assert decoder.text(raw, "Subject") == "Привет"
    assert decoder.defects == ["header Subject: raw 8-bit bytes decoded as koi8-r"]


def test_raw_utf8_header_is_legitimate() -> None:
    raw = "Привет".encode().decode("ascii", "surrogateescape")
    decoder = HeaderDecoder(hint="koi8-r")
    assert decoder.text(raw, "Subject") == "Привет"
    assert decoder.defects == []


def test_addresses_with_cyrillic_quoted_commas_and_missing_names() -> None:
    decoder = HeaderDecoder()
    raw = '"Иванов, Иван" <Ivan@Example.RU>, petr@example.ru, =?utf-8?B?0JjQstCw0L0sINCf?= <i@example.ru>'
    assert decoder.addresses([raw], "To") == (
        EmailAddress(name="Иванов, Иван", email="Ivan@example.ru"),
        EmailAddress(name=None, email="petr@example.ru"),
        EmailAddress(name="Иван, П", email="i@example.ru"),  # the decoded comma does not split it
    )
    assert decoder.defects == []


def test_addresses_skip_groups_and_duplicates_and_recover_bare_addresses() -> None:
    decoder = HeaderDecoder()
    raws = ["undisclosed-recipients:;", "a@example.org, A@EXAMPLE.org", "Ivan Petrov ivan@x.ru"]
    found = decoder.addresses(raws, "To")
    assert found == (
        EmailAddress(name=None, email="a@example.org"),
        EmailAddress(name=None, email="A@example.org"),
        EmailAddress(name="Ivan Petrov", email="ivan@x.ru"),
    )
    assert decoder.defects == ["header To: address recovered from malformed mailbox"]


def test_a_name_equal_to_the_address_is_dropped() -> None:
    assert HeaderDecoder().addresses(['"a@example.org" <a@example.org>'], "From") == (
        EmailAddress(name=None, email="a@example.org"),
    )


def test_address_lists_are_bounded() -> None:
    decoder = HeaderDecoder()
    found = decoder.addresses([", ".join(f"user{number}@example.org" for number in range(20_000))], "To")
    assert 1000 < len(found) < 20_000
    assert decoder.defects == ["header To: longer than 100000 characters; the rest was ignored"]


@pytest.mark.parametrize(
    ("raw", "ids"),
    [
        ("<a@b> <c@d>\r\n <a@b>", ["<a@b>", "<c@d>"]),
        ("bare@id.example", ["<bare@id.example>"]),
        ("<a@b> (comment) junk", ["<a@b>"]),
        ("no ids here", []),
        (None, []),
    ],
)
def test_message_ids_are_normalized_and_deduplicated(raw: str | None, ids: list[str]) -> None:
    assert message_ids(raw) == ids


@pytest.mark.parametrize(
    ("raw", "moment"),
    [
        ("Mon, 5 Jan 2026 13:00:00 +0300", datetime(2026, 1, 5, 10, 0, tzinfo=UTC)),
        ("Mon, 5 Jan 2026 13:00:00", datetime(2026, 1, 5, 13, 0, tzinfo=UTC)),
        ("Tue,  6 Jan 2026 08:00:05 +0000 (UTC)", datetime(2026, 1, 6, 8, 0, 5, tzinfo=UTC)),
        ("yesterday", None),
        ("Mon, 5 Jan 99999 13:00:00 +0300", None),
        (None, None),
    ],
)
def test_dates_become_utc(raw: str | None, moment: datetime | None) -> None:
    assert parse_date(raw) == moment


def test_the_plain_mailbox_shortcut_reads_what_getaddresses_reads() -> None:
    """``Name <a@b.c>`` and ``a@b.c`` skip the stdlib's address parser; on anything the shortcut
    takes, seeded random headers included, it must give exactly what the parser gives."""
    rng = random.Random(11)
    words = [
        "a",
        "bb",
        "=?utf-8?q?x?=",
        "c.d",
        "e'f",
        "<",
        ">",
        "@",
        " ",
        "\t",
        ".",
        "x@y",
        "p.q@r.s",
        "(c)",
        '"q"',
        ",",
    ]
    values = ["a@b.c", "<a@b.c>", "  Name   Two\t<a.b@c.d>  ", "=?utf-8?b?0JrQu9C40LXQvdGC?= 7 <c7@example.org>"]
    values += ["".join(rng.choice(words) for _ in range(rng.randint(1, 7))) for _ in range(20_000)]
    taken = 0
    for value in values:
        shortcut = _simple_mailbox([value])
        if shortcut is not None:
            taken += 1
            assert shortcut == getaddresses([value]), value
    assert taken > 1000
    assert _simple_mailbox(["a@b.c", "d@e.f"]) is None  # several header instances: the parser's job
