"""Setting an instance up: operators with their credentials, and channels with their secrets.

Secrets (API tokens, channel keys, generated passwords) are returned once, to be shown once;
the store keeps only their hashes.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from inbox.clock import Clock, SystemClock
from inbox.domain import Channel, ChannelKind, Operator, Role
from inbox.errors import Conflict, ValidationError
from inbox.ids import hash_secret, new_id, new_secret
from inbox.passwords import generate_password, hash_password
from storage.base import Store

__all__ = ["NewChannel", "NewOperator", "add_channel", "add_operator"]


@dataclass(frozen=True, slots=True)
class NewOperator:
    operator: Operator
    api_token: str
    password: str | None
    """Set only when it was generated, so it can be shown once."""


@dataclass(frozen=True, slots=True)
class NewChannel:
    channel: Channel
    key: str | None


async def add_operator(
    store: Store,
    *,
    email: str,
    name: str,
    role: Role = Role.OPERATOR,
    max_open: int | None = None,
    teams: tuple[str, ...] = (),
    password: str | None = None,
    clock: Clock | None = None,
) -> NewOperator:
    email = email.strip()
    if "@" not in email or len(email) > 320:
        raise ValidationError(f"not an email address: {email!r}")
    if max_open is not None and max_open < 1:
        raise ValidationError("max_open must be at least 1")
    if await store.operator_by_email(email) is not None:
        raise Conflict(f"an operator with email {email} exists already")
    generated = password is None
    password = password or generate_password()
    token = new_secret("op")
    operator = Operator(
        id=new_id(),
        email=email,
        name=name.strip() or email,
        role=role,
        max_open=max_open,
        teams=teams,
        password_hash=hash_password(password),
        created_at=(clock or SystemClock()).now(),
    )
    await store.create_operator(operator, token_hash=hash_secret(token))
    await store.durable()
    return NewOperator(operator, token, password if generated else None)


async def add_channel(
    store: Store,
    *,
    kind: ChannelKind | str,
    name: str,
    settings: Mapping[str, Any] | None = None,
    clock: Clock | None = None,
) -> NewChannel:
    """Channels of the ``api`` kind get a key: the bearer secret of ``POST /api/v1/inbound``."""
    kind = str(kind)
    key = new_secret("ch") if kind == ChannelKind.API else None
    channel = Channel(
        id=new_id(),
        kind=kind,
        name=name,
        settings=dict(settings or {}),
        created_at=(clock or SystemClock()).now(),
    )
    await store.create_channel(channel, secret_hash=hash_secret(key) if key else None)
    await store.durable()
    return NewChannel(channel, key)
