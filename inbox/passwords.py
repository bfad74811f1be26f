"""Password hashing with argon2id. Hashing is deliberately slow (~0.1 s), so callers on the event
loop run it in an executor (:func:`hash_password_async`)."""

from __future__ import annotations

import asyncio
import secrets

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

__all__ = ["generate_password", "hash_password", "hash_password_async", "use_hasher", "verify_password"]

_hasher = PasswordHasher()


def use_hasher(hasher: PasswordHasher) -> None:
    """Replaces the hasher; tests use cheap parameters so a fixture does not cost 0.1 s per hash."""
    global _hasher
    _hasher = hasher


def generate_password() -> str:
    return secrets.token_urlsafe(12)


def hash_password(password: str) -> str:
    return _hasher.hash(password)


async def hash_password_async(password: str) -> str:
    return await asyncio.get_running_loop().run_in_executor(None, hash_password, password)


def verify_password(password_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False
