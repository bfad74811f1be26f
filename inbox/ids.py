"""Identifiers that sort by creation time (ULID layout), so keyset pagination has a stable
tiebreak; and the bearer secrets (API tokens, channel keys) that the store keeps only hashed."""

from __future__ import annotations

import hashlib
import os
import secrets
import threading
import time

__all__ = ["hash_secret", "new_id", "new_secret"]

_ALPHABET = "0123456789abcdefghjkmnpqrstvwxyz"  # Crockford's base32, lower case
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
            _last_random = int.from_bytes(os.urandom(10), "big") >> 1
        value = (ms << 80) | (_last_random & ((1 << 80) - 1))
    chars = []
    for _ in range(26):
        chars.append(_ALPHABET[value & 31])
        value >>= 5
    return "".join(reversed(chars))


def new_secret(prefix: str) -> str:
    """A bearer secret people can recognize in logs and config (``prefix_…``), 256 random bits."""
    return f"{prefix}_{secrets.token_urlsafe(32)}"


def hash_secret(secret: str) -> str:
    """What the store keeps of a bearer secret. SHA-256 suffices for 256 random bits; passwords,
    which are weak, get argon2 instead."""
    return hashlib.sha256(secret.encode()).hexdigest()
