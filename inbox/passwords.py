"""Password hashing with argon2id. Hashing is deliberately slow (~0.1 s): callers on the event loop
must run it in an executor."""

from __future__ import annotations

import secrets

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

__all__ = ["generate_password", "hash_password", "use_hasher", "verify_password"]

_hasher = PasswordHasher()


def use_hasher(hasher: PasswordHasher) -> None:
    """Replaces the hasher; tests use cheap parameters so a fixture does not cost 0.1 s per hash."""
    global _hasher
    _hasher = hasher


def generate_password() -> str:
    return secrets.token_urlsafe(12)


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(password_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False
