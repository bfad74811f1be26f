"""Identifiers that sort by creation time (ULID layout), so keyset pagination has a stable
tiebreak; and the bearer secrets (API tokens, channel keys) that the store keeps only hashed."""

from __future__ import annotations

import hashlib
import os
import random
import secrets
import threading
import time

__all__ = ["encode_id", "hash_secret", "new_id", "new_secret"]

_CROCKFORD = "0123456789abcdefghjkmnpqrstvwxyz"  # Crockford's base32, lower case: sorts like the numbers
_DIGIT_PAIRS = tuple(high + low for high in _CROCKFORD for low in _CROCKFORD)  # by 10-bit value
_PAIR_SHIFTS = range(120, -1, -10)  # 13 pairs: 130 bits
_random = random.Random(os.urandom(32))  # ids need uniqueness, not secrecy; tokens use `secrets`
_lock = threading.Lock()
_last_ms = 0
_last_random = 0


def new_id() -> str:
    """A 26-character id: 48 bits of milliseconds, then 80 bits that increase within a millisecond."""
    global _last_ms, _last_random
    with _lock:
        ms = time.time_ns() // 1_000_000
        if ms <= _last_ms:
            ms = _last_ms
            _last_random += 1
        else:
            _last_ms = ms
            _last_random = _random.getrandbits(79)
        value = (ms << 80) | (_last_random & ((1 << 80) - 1))
    return encode_id(value)


def encode_id(value: int) -> str:
    """A 128-bit value as 26 base32 digits (130 bits, the first two zero), most significant first,
    two digits per look-up: every message, event and job gets an id, so this runs a lot."""
    return "".join([_DIGIT_PAIRS[(value >> shift) & 0x3FF] for shift in _PAIR_SHIFTS])


def new_secret(prefix: str) -> str:
    """A bearer secret people can recognize in logs and config (``prefix_…``), 256 random bits."""
    return f"{prefix}_{secrets.token_urlsafe(32)}"


def hash_secret(secret: str) -> str:
    """What the store keeps of a bearer secret. SHA-256 suffices for 256 random bits; passwords,
    which are weak, get argon2 instead."""
    return hashlib.sha256(secret.encode()).hexdigest()
