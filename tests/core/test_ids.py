"""Ids sort by creation time, are unique and URL-safe; secrets are hashed, never stored."""

from __future__ import annotations

import re
import time

from inbox.ids import hash_secret, new_id, new_secret


def test_ids_are_unique_sorted_and_url_safe() -> None:
    ids = [new_id() for _ in range(20_000)]
    assert len(set(ids)) == len(ids)
    assert ids == sorted(ids)
    assert all(re.fullmatch(r"[0-9a-z]{26}", i) for i in ids)


def test_id_starts_with_the_millisecond_timestamp() -> None:
    alphabet = "0123456789abcdefghjkmnpqrstvwxyz"
    value = 0
    for char in new_id()[:10]:
        value = value * 32 + alphabet.index(char)
    assert abs(value - time.time_ns() // 1_000_000) < 5_000  # ten digits: 2 zero bits, then 48 of time


def test_secrets_are_prefixed_random_and_hashed() -> None:
    first, second = new_secret("ch"), new_secret("ch")
    assert first.startswith("ch_") and first != second and len(first) > 40
    assert hash_secret(first) == hash_secret(first) != hash_secret(second)
    assert first not in hash_secret(first)
