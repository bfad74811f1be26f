"""An email channel's settings, validated when the channel is created and when it starts, so a
mistake names the key instead of failing somewhere in IMAP or SMTP."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from pydantic import ValidationError as PydanticValidationError

from inbox.errors import ValidationError

__all__ = ["EmailSettings"]


class EmailSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    address: str = Field(pattern=r"^[^@\s]+@[^@\s]+$", description="the address customers write to")
    display_name: str | None = None
    imap_host: str | None = None
    imap_port: int = Field(default=993, ge=1, le=65535)
    imap_user: str | None = None
    imap_password: str | None = None
    imap_ssl: bool = True
    imap_folder: str = "INBOX"
    imap_processed_folder: str | None = Field(default=None, description="move imported mail here; else flag it \\Seen")
    imap_poll_seconds: float = Field(default=60, gt=0)
    smtp_relay: str | None = Field(default=None, pattern=r"^[^:\s]+:\d{1,5}$", description="HOST:PORT for replies")
    smtp_user: str | None = None
    smtp_password: str | None = None
    smtp_starttls: bool = False

    @classmethod
    def of(cls, settings: Mapping[str, Any]) -> EmailSettings:
        try:
            return cls.model_validate(dict(settings))
        except PydanticValidationError as exc:
            problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
            raise ValidationError(f"email channel settings: {problems}") from exc

    @property
    def domain(self) -> str:
        return self.address.rpartition("@")[2].lower()

    @property
    def relay(self) -> tuple[str, int] | None:
        if self.smtp_relay is None:
            return None
        host, _, port = self.smtp_relay.rpartition(":")
        return host, int(port)
