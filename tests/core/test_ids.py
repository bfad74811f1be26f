"""Ids sort by creation time, are unique and URL-safe; secrets are hashed, never stored."""

from __future__ import annotations

import base64
import re
import time

from hypothesis import given
from hypothesis import strategies as st

from inbox.ids import encode_id, hash_secret, new_id, new_secret

ALPHABET = "0123456789abcdefghjkmnpqrstvwxyz"


def test_ids_are_unique_sorted_and_url_safe() -> None:
    ids = [new_id() for _ in range(20_000)]
    assert len(set(ids)) == len(ids)
    assert ids == sorted(ids)
    assert all(re.fullmatch(r"[0-9a-z]{26}", i) for i in ids)


def test_id_starts_with_the_millisecond_timestamp() -> None:
    value = 0
    for char in new_id()[:10]:
        value = value * 32 + ALPHABET.index(char)
    assert abs(value - time.time_ns() // 1_000_000) < 5_000  # ten digits: 2 zero bits, then 48 of time


def test_secrets_are_prefixed_random_and_hashed() -> None:
    first, second = new_secret("ch"), new_secret("ch")
    assert first.startswith("ch_") and first != second and len(first) > 40
    assert hash_secret(first) == hash_secret(first) != hash_secret(second)
    assert first not in hash_secret(first)


@given(st.integers(0, 2**128 - 1))
def test_ids_are_crockford_base32_of_the_value(value: int) -> None:
    """The digits are those of the standard encoder, in Crockford's alphabet: 2 zero bits, then 128."""
    standard = base64.b32encode((value << 30).to_bytes(20, "big"))[:26]
    crockford = standard.translate(bytes.maketrans(b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567", ALPHABET.encode()))
    assert encode_id(value) == crockford.decode()
    assert int.from_bytes(base64.b32decode(standard + b"A" * 6), "big") >> 30 == value
