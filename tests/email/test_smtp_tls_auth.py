"""STARTTLS and AUTH on the SMTP intake, against Python's smtplib as the sending server: the real
Inbox application where mail must end up stored, the bare intake server where only the SMTP
dialogue matters (failure limits, where the password is checked)."""

from __future__ import annotations

import asyncio
import base64
import shutil
import smtplib
import ssl
import subprocess
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from connectors.email import smtp_server
from connectors.email.smtp_server import SmtpIntakeServer, load_auth_users, load_tls_context
from inbox.accounts import add_channel
from inbox.app import Inbox, build
from inbox.config import ConfigError, load_settings
from inbox.errors import ValidationError
from inbox.passwords import hash_password
from tests.email.test_smtp import CORPUS, _conversations

RAW = (CORPUS / "koi8r.eml").read_bytes()
TO = "support@example.com"


@pytest.fixture(scope="session")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A throwaway self-signed certificate for 127.0.0.1, so the client can verify it for real."""
    if shutil.which("openssl") is None:
        pytest.skip("the openssl command is needed to make a test certificate")
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
        + ["-keyout", str(key), "-out", str(cert), "-days", "1", "-subj", "/CN=127.0.0.1"]
        + ["-addext", "subjectAltName=IP:127.0.0.1"],
        check=True,
        capture_output=True,
    )
    return cert, key


@pytest.fixture
def tls_settings(certificate: tuple[Path, Path]) -> dict[str, Any]:
    return {"smtp_tls_cert": certificate[0], "smtp_tls_key": certificate[1]}


@pytest.fixture
def auth_file(tmp_path: Path) -> Path:
    path = tmp_path / "smtp-users"
    path.write_text(f"# relay accounts\n\nrelay:{hash_password('correct horse')}\n", encoding="utf-8")
    return path


@asynccontextmanager
async def running_inbox(tmp_path: Path, **settings: Any) -> AsyncIterator[Inbox]:
    """The whole application with one email channel, the SMTP intake configured by ``settings``."""
    inbox = build(load_settings(overrides={"data_dir": tmp_path, "smtp_port": 0, **settings}, environ={}))
    async with TestClient(TestServer(inbox.web)):
        await add_channel(inbox.store, kind="email", name="Support", settings={"address": TO})
        yield inbox


@contextmanager
def connected(port: int, certificate: tuple[Path, Path] | None = None, *, tls: bool = False) -> Iterator[smtplib.SMTP]:
    """An smtplib session, after EHLO and (with ``tls``) STARTTLS that verifies the test certificate."""
    with smtplib.SMTP("127.0.0.1", port, timeout=10) as client:
        client.ehlo("client.example.ru")
        if tls:
            assert certificate is not None
            client.starttls(context=ssl.create_default_context(cafile=certificate[0]))
            client.ehlo("client.example.ru")
        yield client


def _login(client: smtplib.SMTP, mechanism: str, user: str, password: str) -> tuple[int, bytes]:
    """Like ``SMTP.login`` but with a chosen mechanism and the code returned rather than raised."""
    client.user, client.password = user, password
    try:
        return client.auth(mechanism, getattr(client, f"auth_{mechanism.lower()}"))
    except smtplib.SMTPAuthenticationError as refused:
        return refused.smtp_code, refused.smtp_error


async def in_thread(function: Callable[..., Any], *args: Any) -> Any:
    """smtplib blocks, and the intake it talks to runs on this test's event loop."""
    return await asyncio.to_thread(function, *args)


async def test_starttls_is_offered_and_mail_over_tls_is_stored(tmp_path: Path, certificate, tls_settings) -> None:
    async with running_inbox(tmp_path, **tls_settings) as inbox:
        assert inbox.smtp is not None

        def send() -> tuple[bool, bool]:
            with connected(inbox.smtp.port) as plain:
                offered, auth = plain.has_extn("starttls"), plain.has_extn("auth")
            with connected(inbox.smtp.port, certificate, tls=True) as client:
                assert not client.has_extn("starttls") and not client.has_extn("auth")  # no users: no AUTH
                client.sendmail("ivan@example.ru", [TO], RAW)
            return offered, auth

        assert await in_thread(send) == (True, False)
        (conversation,) = await _conversations(inbox)
        assert conversation.subject == "Не приходит письмо с подтверждением"


async def test_without_require_tls_plain_mail_is_still_accepted(tmp_path: Path, tls_settings) -> None:
    async with running_inbox(tmp_path, **tls_settings) as inbox:
        assert inbox.smtp is not None

        def send() -> None:
            with connected(inbox.smtp.port) as client:
                client.sendmail("ivan@example.ru", [TO], RAW)

        await in_thread(send)
        assert len(await _conversations(inbox)) == 1


async def test_require_tls_refuses_mail_before_starttls(tmp_path: Path, certificate, tls_settings) -> None:
    async with running_inbox(tmp_path, **tls_settings, smtp_require_tls=True) as inbox:
        assert inbox.smtp is not None

        def send() -> int:
            with connected(inbox.smtp.port) as plain:
                code, _ = plain.mail("ivan@example.ru")
            with connected(inbox.smtp.port, certificate, tls=True) as client:
                client.sendmail("ivan@example.ru", [TO], RAW)
            return code

        assert await in_thread(send) == 530
        assert len(await _conversations(inbox)) == 1


@pytest.mark.parametrize("mechanism", ["PLAIN", "LOGIN"])
async def test_auth_is_required_checked_and_then_mail_is_stored(
    tmp_path: Path, certificate, tls_settings, auth_file: Path, mechanism: str
) -> None:
    async with running_inbox(tmp_path, **tls_settings, smtp_auth_file=auth_file) as inbox:
        assert inbox.smtp is not None

        def dialogue() -> dict[str, Any]:
            seen: dict[str, Any] = {}
            with connected(inbox.smtp.port) as plain:
                seen["auth before tls"] = plain.has_extn("auth")
                seen["AUTH before tls"] = plain.docmd("AUTH", "PLAIN " + base64.b64encode(b"\0relay\0x").decode())[0]
            with connected(inbox.smtp.port, certificate, tls=True) as client:
                seen["mechanisms"] = set(client.esmtp_features["auth"].upper().split())
                seen["MAIL unauthenticated"] = client.mail("ivan@example.ru")[0]
                client.rset()
                seen["wrong password"] = _login(client, mechanism, "relay", "wrong horse")[0]
                seen["unknown user"] = _login(client, mechanism, "nobody", "correct horse")[0]
            with connected(inbox.smtp.port, certificate, tls=True) as client:
                seen["right password"] = _login(client, mechanism, "relay", "correct horse")[0]
                client.sendmail("ivan@example.ru", [TO], RAW)
            return seen

        assert await in_thread(dialogue) == {
            "auth before tls": False,
            "AUTH before tls": 538,
            "mechanisms": {"LOGIN", "PLAIN"},
            "MAIL unauthenticated": 530,
            "wrong password": 535,
            "unknown user": 535,
            "right password": 235,
        }
        (conversation,) = await _conversations(inbox)
        assert conversation.subject == "Не приходит письмо с подтверждением"


@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")
async def test_auth_without_tls_only_when_explicitly_allowed(tmp_path: Path, auth_file: Path) -> None:
    async with running_inbox(tmp_path, smtp_auth_file=auth_file, smtp_auth_allow_plaintext=True) as inbox:
        assert inbox.smtp is not None

        def send() -> int:
            with connected(inbox.smtp.port) as client:
                code = _login(client, "PLAIN", "relay", "correct horse")[0]
                client.sendmail("ivan@example.ru", [TO], RAW)
            return code

        assert await in_thread(send) == 235
        assert len(await _conversations(inbox)) == 1


@asynccontextmanager
async def bare_intake(auth_users: dict[str, str], **options: Any) -> AsyncIterator[SmtpIntakeServer]:
    """The intake alone, AUTH in plaintext (no certificate needed): only the dialogue is under test."""

    async def resolve(address: str) -> None:
        return None

    server = SmtpIntakeServer(
        resolve, host="127.0.0.1", port=0, auth_users=auth_users, auth_allow_plaintext=True, **options
    )
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")
async def test_failed_auth_is_slowed_and_the_session_ends_after_three() -> None:
    users = {"relay": hash_password("correct horse")}
    async with bare_intake(users, auth_failure_delay=0.2) as server:

        def guess() -> tuple[list[int], float, bool]:
            codes = []
            started = time.monotonic()
            with connected(server.port) as client:
                for attempt in range(3):
                    try:
                        codes.append(_login(client, "PLAIN", "relay", f"guess {attempt}")[0])
                    except smtplib.SMTPServerDisconnected:
                        codes.append(0)
                try:
                    client.noop()
                    closed = False
                except smtplib.SMTPServerDisconnected:
                    closed = True
            return codes, time.monotonic() - started, closed

        codes, seconds, closed = await in_thread(guess)
        assert codes == [535, 535, 421] and closed
        assert seconds >= 0.6


@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")
async def test_the_password_is_checked_off_the_event_loop(monkeypatch: pytest.MonkeyPatch) -> None:
    threads: list[threading.Thread] = []
    real = smtp_server.verify_password

    def recording(password_hash: str, password: str) -> bool:
        threads.append(threading.current_thread())
        return real(password_hash, password)

    monkeypatch.setattr(smtp_server, "verify_password", recording)
    loop_thread = threading.current_thread()
    async with bare_intake({"relay": hash_password("correct horse")}) as server:

        def login() -> int:
            with connected(server.port) as client:
                return _login(client, "LOGIN", "relay", "correct horse")[0]

        assert await in_thread(login) == 235
    assert threads and all(thread is not loop_thread for thread in threads)


def test_auth_file_takes_only_argon2_hashes(tmp_path: Path) -> None:
    path = tmp_path / "users"
    path.write_text(f"# comment\n\nrelay:{hash_password('x')}\nother:{hash_password('y')}\n", encoding="utf-8")
    assert set(load_auth_users(path) or {}) == {"relay", "other"}
    assert load_auth_users(None) is None
    for content, problem in [
        ("relay:secret\n", "line 1: not an argon2 hash"),
        ("# nobody\n", "no users"),
        ("just-a-name\n", "line 1: expected user:argon2-hash"),
        (f"relay:{hash_password('x')}\nrelay:{hash_password('y')}\n", "line 2: user 'relay' appears twice"),
    ]:
        path.write_text(content, encoding="utf-8")
        with pytest.raises(ValidationError, match=problem):
            load_auth_users(path)
    with pytest.raises(ValidationError, match="cannot read"):
        load_auth_users(tmp_path / "missing")


def test_tls_files_that_do_not_load_are_named(tmp_path: Path, certificate: tuple[Path, Path]) -> None:
    assert load_tls_context(None, None) is None
    assert isinstance(load_tls_context(*certificate), ssl.SSLContext)
    with pytest.raises(ValidationError, match="smtp_tls_cert/smtp_tls_key"):
        load_tls_context(certificate[0], tmp_path / "missing.pem")


@pytest.mark.parametrize(
    ("settings", "problem"),
    [
        ({"smtp_tls_cert": "cert.pem"}, "smtp_tls_cert and smtp_tls_key are set together"),
        ({"smtp_tls_key": "key.pem"}, "smtp_tls_cert and smtp_tls_key are set together"),
        ({"smtp_require_tls": "true"}, "smtp_require_tls needs smtp_tls_cert"),
        ({"smtp_auth_file": "users"}, "AUTH is offered only after STARTTLS"),
    ],
)
def test_contradictory_smtp_settings_are_refused_naming_the_key(settings: dict[str, str], problem: str) -> None:
    environ = {f"INBOX_{name.upper()}": value for name, value in settings.items()}
    with pytest.raises(ConfigError, match=problem):
        load_settings(environ=environ)


def test_smtp_security_settings_from_the_environment() -> None:
    settings = load_settings(
        environ={
            "INBOX_SMTP_TLS_CERT": "/etc/inbox/cert.pem",
            "INBOX_SMTP_TLS_KEY": "/etc/inbox/key.pem",
            "INBOX_SMTP_REQUIRE_TLS": "true",
            "INBOX_SMTP_AUTH_FILE": "/etc/inbox/smtp-users",
        }
    )
    assert settings.smtp_require_tls and settings.smtp_auth_file == Path("/etc/inbox/smtp-users")
    assert not settings.smtp_auth_allow_plaintext
    plaintext = load_settings(environ={"INBOX_SMTP_AUTH_FILE": "users", "INBOX_SMTP_AUTH_ALLOW_PLAINTEXT": "1"})
    assert plaintext.smtp_auth_allow_plaintext
