"""Configuration: defaults, then a TOML file, then ``INBOX_*`` environment variables, then
command-line options, each overriding the one before.

Keys are flat and the same everywhere: ``http_port`` in TOML is ``INBOX_HTTP_PORT`` in the
environment and ``--http-port`` on the command line. An unknown key in the file is an error that
names it; a value of the wrong type is an error that names the key and the source.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationInfo, field_validator
from pydantic import ValidationError as PydanticValidationError

__all__ = ["ConfigError", "Settings", "load_settings"]

ENV_PREFIX = "INBOX_"


class ConfigError(Exception):
    pass


class Settings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    data_dir: Path = Path("inbox-data")
    database_url: str | None = Field(
        default=None,
        pattern=r"^(sqlite:///.*|mongodb(\+srv)?://.+)$",
        description="sqlite:///PATH or mongodb://…; default: SQLite under data_dir",
    )
    sqlite_durability: Literal["normal", "full"] = "normal"
    http_host: str = "127.0.0.1"
    http_port: int = Field(default=8080, ge=0, le=65535)
    smtp_host: str = "127.0.0.1"
    smtp_port: int = Field(default=2525, ge=0, le=65535)
    smtp_max_message_bytes: int = Field(default=30 * 1024 * 1024, ge=1024, description="larger mail: SMTP 552")
    smtp_tls_cert: Path | None = Field(default=None, description="PEM certificate chain; with smtp_tls_key: STARTTLS")
    smtp_tls_key: Path | None = Field(default=None, validate_default=True, description="PEM private key")
    smtp_require_tls: bool = Field(default=False, validate_default=True, description="MAIL before STARTTLS: 530")
    smtp_auth_allow_plaintext: bool = Field(default=False, description="offer AUTH without TLS too")
    smtp_auth_file: Path | None = Field(
        default=None, validate_default=True, description="user:argon2-hash lines; when set, senders must AUTH"
    )
    public_url: str | None = None
    max_body_bytes: int = Field(default=1024 * 1024, ge=1024, description="largest API request body")
    reopen_window_days: float = Field(default=7, ge=0)
    access_log: bool = False
    log_level: Annotated[
        Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"], BeforeValidator(lambda v: str(v).upper())
    ] = "INFO"

    # Cross-key checks sit on the later key (fields validate in order) so the error names a key and
    # a contradictory SMTP setup stops at start-up instead of refusing every sender later.
    @field_validator("smtp_tls_key")
    @classmethod
    def _cert_with_key(cls, key: Path | None, info: ValidationInfo) -> Path | None:
        if (key is None) != (info.data.get("smtp_tls_cert") is None):
            raise ValueError("smtp_tls_cert and smtp_tls_key are set together")
        return key

    @field_validator("smtp_require_tls")
    @classmethod
    def _tls_to_require(cls, required: bool, info: ValidationInfo) -> bool:
        if required and info.data.get("smtp_tls_key") is None:
            raise ValueError("smtp_require_tls needs smtp_tls_cert and smtp_tls_key")
        return required

    @field_validator("smtp_auth_file")
    @classmethod
    def _auth_reachable(cls, auth_file: Path | None, info: ValidationInfo) -> Path | None:
        if (
            auth_file is not None
            and info.data.get("smtp_tls_key") is None
            and not info.data.get("smtp_auth_allow_plaintext")
        ):
            raise ValueError(
                "AUTH is offered only after STARTTLS: set smtp_tls_cert and smtp_tls_key, "
                "or smtp_auth_allow_plaintext = true"
            )
        return auth_file

    @property
    def effective_database_url(self) -> str:
        return self.database_url or f"sqlite:///{self.data_dir / 'inbox.sqlite3'}"

    @property
    def effective_public_url(self) -> str:
        return self.public_url or f"http://{self.http_host}:{self.http_port}"


def load_settings(
    config_file: Path | None = None,
    overrides: Mapping[str, Any] | None = None,
    environ: Mapping[str, str] | None = None,
) -> Settings:
    environ = os.environ if environ is None else environ
    merged: dict[str, Any] = {}
    file_path = config_file or (Path(environ["INBOX_CONFIG"]) if environ.get("INBOX_CONFIG") else None)
    if file_path is not None:
        try:
            merged.update(tomllib.loads(file_path.read_text(encoding="utf-8")))
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise ConfigError(f"cannot read config file {file_path}: {exc}") from exc
    for name in Settings.model_fields:
        value = environ.get(ENV_PREFIX + name.upper())
        if value is not None:
            merged[name] = value
    merged.update({k: v for k, v in (overrides or {}).items() if v is not None})
    try:
        return Settings.model_validate(merged)
    except PydanticValidationError as exc:
        problems = "; ".join(f"{'.'.join(str(p) for p in error['loc'])}: {error['msg']}" for error in exc.errors())
        raise ConfigError(f"invalid configuration: {problems}") from exc
