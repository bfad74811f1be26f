"""SMTP intake: the server an MX or a forwarding rule delivers customer mail to.

One listening port serves every email channel; a recipient address picks the channel. The
sender hears ``250`` only once the message is durably stored (or, if it cannot be parsed,
durably quarantined); ``451`` when the store cannot take it now, so the sending server retries;
``550`` for an address no channel has; ``552`` over the size limit (aiosmtpd's own check);
``452`` past the recipient limit; ``421`` when too many sessions are open.

When configured, STARTTLS is offered (``530`` for MAIL before it if TLS is required) and AUTH
PLAIN/LOGIN is required (``530`` for MAIL before it, ``535`` for wrong credentials, ``421`` and a
closed connection after a few failures); AUTH is offered only over TLS unless plaintext is allowed.
"""

from __future__ import annotations

import asyncio
import logging
import re
import ssl
from collections.abc import Awaitable, Callable, Mapping
from email._header_value_parser import get_addr_spec, get_angle_addr
from email.errors import HeaderParseError
from pathlib import Path
from typing import Any

from aiosmtpd.smtp import MISSING, SMTP, AuthResult, Envelope, LoginPassword, Session
from argon2 import extract_parameters
from argon2.exceptions import InvalidHashError

from connectors.email.intake import EmailIntake
from inbox.errors import StorageError, ValidationError
from inbox.passwords import verify_password

__all__ = ["ResolveRecipient", "SmtpIntakeServer", "load_auth_users", "load_tls_context"]

log = logging.getLogger(__name__)

ResolveRecipient = Callable[[str], Awaitable[EmailIntake | None]]

_MECHANISMS = ("LOGIN", "PLAIN")
_ATOM = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
_SIMPLE_ANGLE_ADDR = re.compile(
    rf"[ \t]*<({_ATOM}(?:\.{_ATOM})*@{_ATOM}(?:\.{_ATOM})*)>(?:[ \t]+(?=[^ \t(]|$))?([^ \t(].*|)$", re.S
)
"""``<local@domain>`` of plain ASCII dot-atoms, then nothing or whitespace and parameters: the
address and the parameters, as ``get_angle_addr`` gives them (anything else goes to it)."""
_CRLF = b"\r\n"
_DOT_LINE_END = b".\r\n"


class _DataLines:
    """aiosmtpd's rules for the lines of a DATA transfer, applied to chunks instead of one awaited
    line at a time: the same lines kept, the same ``500``/``552`` verdicts in the same order.

    A line is what lies between two CRLFs. One longer than the reader's limit (aiosmtpd's stream
    reader would overrun on it) makes the transfer "too long" before its bytes count; otherwise its
    bytes count first (over ``size_limit``: "too much"), then a line of more than ``line_limit``
    bytes with its CRLF is "too long". The first verdict stands; from then on nothing is kept.
    """

    __slots__ = ("lines", "verdict", "size", "_pending", "_dropped", "_size_limit", "_line_limit", "_reader_limit")

    def __init__(self, size_limit: int | None, line_limit: int, reader_limit: int) -> None:
        self.lines: list[bytes] = []
        self.verdict: str | None = None  # None, "too long" or "too much"
        self.size = 0
        self._pending = b""  # the line being received, not yet ended by a CRLF (only its tail once overrun)
        self._dropped = 0  # bytes of that line already counted out of ``_pending``
        self._size_limit, self._line_limit, self._reader_limit = size_limit, line_limit, reader_limit

    def feed(self, chunk: bytes) -> bool:
        """Takes the next chunk of the stream; True when it ended the transfer with a lone dot."""
        data = self._pending + chunk if self._pending else chunk
        pieces = data.split(_CRLF)
        self._pending = pieces.pop()
        # a lone dot ends the transfer, unless it is the tail of an overrunning line
        done = pieces[-1:] == [b"."] and not self._pending and not (self._dropped and len(pieces) == 1)
        if done:
            pieces.pop()
        if (
            self.verdict is None
            and not self._dropped
            and (not self._size_limit or self.size + len(data) - len(self._pending) <= self._size_limit)
            and max(map(len, pieces), default=0) + 2 <= self._line_limit
        ):
            self.lines += pieces  # the usual case: every line fits, no limit is near
            self.size += len(data) - len(self._pending) - (3 if done else 0)
        else:
            for piece in pieces:
                self._line(len(piece) + self._dropped, piece)
                self._dropped = 0
        if len(self._pending) > self._reader_limit:  # an overrunning line: keep only a possible CR
            self._dropped += len(self._pending) - 1
            self._pending = self._pending[-1:]
        return done

    def _line(self, length: int, piece: bytes) -> None:
        if length > self._reader_limit:
            self.verdict = self.verdict or "too long"
            self.size += length + 2
        else:
            self.size += length + 2
            if self.verdict is None and self._size_limit and self.size > self._size_limit:
                self.verdict = "too much"
            if self.verdict is None and length + 2 > self._line_limit:
                self.verdict = "too long"
        if self.verdict is None:
            self.lines.append(piece)
        elif self.lines:
            self.lines = []  # nothing of a refused transfer is kept

    def content(self) -> bytes:
        """The message: lines with their CRLFs, a leading dot of each removed (RFC 5321 4.5.2)."""
        if not self.lines:
            return b""
        joined = _CRLF.join(self.lines) + _CRLF
        joined = joined.replace(b"\r\n.", _CRLF)
        return joined[1:] if joined[:1] == b"." else joined


def load_tls_context(cert: Path | None, key: Path | None) -> ssl.SSLContext | None:
    """Loaded once at start-up so a wrong path or a key that does not match the certificate stops
    the intake with a message naming the settings, instead of failing every STARTTLS later."""
    if cert is None or key is None:
        return None
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)  # no client certificates asked for
    try:
        context.load_cert_chain(cert, key)
    except (OSError, ssl.SSLError) as exc:
        raise ValidationError(f"smtp_tls_cert/smtp_tls_key: cannot load {cert} with {key}: {exc}") from exc
    return context


def load_auth_users(path: Path | None) -> dict[str, str] | None:
    """Reads ``user:argon2-hash`` lines (``#`` comments and blank lines allowed). Anything that is not
    an argon2 hash is refused, so a plaintext password written there by mistake stops start-up
    rather than becoming a credential."""
    if path is None:
        return None
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ValidationError(f"smtp_auth_file: cannot read {path}: {exc}") from exc
    users: dict[str, str] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        user, _, password_hash = line.partition(":")
        where = f"smtp_auth_file {path}, line {number}"
        if not user or not password_hash:
            raise ValidationError(f"{where}: expected user:argon2-hash")
        try:
            extract_parameters(password_hash)
        except InvalidHashError:
            raise ValidationError(f"{where}: not an argon2 hash (plaintext passwords are not accepted)") from None
        if user in users:
            raise ValidationError(f"{where}: user {user!r} appears twice")
        users[user] = password_hash
    if not users:
        raise ValidationError(f"smtp_auth_file {path}: no users, so no sender could ever deliver")
    return users


class _Credentials:
    """Checks AUTH credentials off the event loop: an argon2 verification costs tens of
    milliseconds of CPU and tens of megabytes, so a few run at once in threads and the rest wait,
    while other sessions keep being served."""

    def __init__(self, users: Mapping[str, str], concurrency: int = 4) -> None:
        self._users = dict(users)
        self._decoy = next(iter(self._users.values()))
        self._slots = asyncio.Semaphore(concurrency)

    async def check(self, login: bytes, password: bytes) -> str | None:
        try:
            user, secret = login.decode(), password.decode()
        except UnicodeDecodeError:
            return None
        stored = self._users.get(user)
        async with self._slots:
            # an unknown user costs the same verification, so timing does not tell which users exist
            valid = await asyncio.to_thread(verify_password, stored or self._decoy, secret)
        return user if valid and stored is not None else None


def _collect(server: SMTP, session: Session, envelope: Envelope, mechanism: str, credentials: Any) -> AuthResult:
    """aiosmtpd calls its authenticator synchronously, so it only hands the credentials on; the
    ``auth_*`` overrides below await the real check."""
    return AuthResult(success=False, handled=False, auth_data=credentials)


class _QuietSession(Session):
    """aiosmtpd 1.4 sets the deprecated ``login_data`` on every successful AUTH, which logs a
    warning each time; the authenticated user is in ``auth_data`` instead."""

    @property
    def login_data(self) -> Any:
        return self._login_data

    @login_data.setter
    def login_data(self, value: Any) -> None:
        self._login_data = value


class _Handler:
    def __init__(self, resolve: ResolveRecipient, max_recipients: int, *, offers_auth: bool) -> None:
        self._resolve = resolve
        self._max_recipients = max_recipients
        self._offers_auth = offers_auth

    async def handle_EHLO(  # noqa: N802 - aiosmtpd's hook name
        self, server: SMTP, session: Session, envelope: Envelope, hostname: str, responses: list[str]
    ) -> list[str]:
        # without configured users aiosmtpd would still advertise AUTH after STARTTLS, and a relay
        # that has credentials would try them and defer its mail on the certain 535
        session.host_name = hostname
        return responses if self._offers_auth else [r for r in responses if not r.startswith("250-AUTH")]

    async def handle_RCPT(  # noqa: N802 - aiosmtpd's hook name
        self, server: SMTP, session: Session, envelope: Envelope, address: str, rcpt_options: list[str]
    ) -> str:
        if len(envelope.rcpt_tos) >= self._max_recipients:
            return "452 4.5.3 Too many recipients"
        try:
            intake = await self._resolve(address.strip().lower())
        except StorageError:
            return "451 4.3.0 Temporarily unable to look up the recipient, try again later"
        if intake is None:
            return "550 5.1.1 No such mailbox here"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:  # noqa: N802
        raw = envelope.original_content or b""
        origin = f"smtp from {session.peer[0] if session.peer else 'unknown'}"
        channels: dict[str, EmailIntake] = {}
        for address in envelope.rcpt_tos:
            intake = await self._resolve(address.strip().lower())
            if intake is not None:
                channels.setdefault(intake.context.channel.id, intake)
        try:
            for intake in channels.values():
                await intake.accept(raw, source="smtp", origin=origin)
        except StorageError as exc:
            log.warning("SMTP intake could not store a message (%s); the sender will retry", exc)
            return "451 4.3.0 Temporarily unable to store the message, try again later"
        return "250 OK: stored"


class _LimitedSMTP(SMTP):
    """Refuses a session once ``max_sessions`` are open, instead of letting a flood queue up, and
    ends a session after ``max_auth_failures`` wrong credentials, each answered only after
    ``auth_failure_delay``, so guessing passwords is slow."""

    def __init__(
        self,
        handler: Any,
        *,
        sessions: list[int],
        max_sessions: int,
        credentials: _Credentials | None,
        max_auth_failures: int,
        auth_failure_delay: float,
        **kwargs: Any,
    ) -> None:
        if credentials is None:
            kwargs["auth_exclude_mechanism"] = _MECHANISMS
        super().__init__(
            handler, authenticator=_collect if credentials else None, auth_required=credentials is not None, **kwargs
        )
        self._sessions, self._max_sessions = sessions, max_sessions
        self._counted = False
        self._credentials = credentials
        self._failures_left = max_auth_failures
        self._failure_delay = auth_failure_delay

    def _create_session(self) -> Session:
        return _QuietSession(self.loop)

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        if self._sessions[0] >= self._max_sessions:
            transport.write(b"421 4.7.0 Too many connections, try again later\r\n")  # type: ignore[attr-defined]
            transport.close()
            return
        self._sessions[0] += 1
        self._counted = True
        super().connection_made(transport)

    def connection_lost(self, error: Exception | None) -> None:
        if self._counted:
            self._sessions[0] -= 1
            self._counted = False
        super().connection_lost(error)

    def _getaddr(self, arg: str) -> tuple[str | None, str | None]:
        """aiosmtpd's own parse of a MAIL or RCPT address, minus the class it defines on every call
        (about 2% of the intake's time): the address and the rest, or (None, None) if malformed."""
        if not arg:
            return "", ""
        simple = _SIMPLE_ANGLE_ADDR.match(arg)
        if simple is not None:  # what the stdlib's parser returns for these, at a tenth of its cost
            addr, rest = simple.group(1), simple.group(2)
            if self.local_part_limit and len(addr.rpartition("@")[0]) > self.local_part_limit:
                return None, None
            return addr, rest
        try:
            address, rest = (get_angle_addr if arg.lstrip().startswith("<") else get_addr_spec)(arg)
        except HeaderParseError:
            return None, None
        addr = address.addr_spec
        if self.local_part_limit and len(addr.rpartition("@")[0]) > self.local_part_limit:
            return None, None
        return addr, rest

    async def smtp_DATA(self, arg: str) -> None:  # noqa: N802 - aiosmtpd's command name
        """aiosmtpd's DATA, except that the message is read in chunks rather than one awaited
        line at a time (about 0.5 ms of CPU per 5 KB message, measured on a bare server); :class:`_DataLines` keeps its
        rules for lines and limits. Reading stops at the first ``.CRLF`` in the stream, so nothing
        after the end of the message (a pipelined command) is taken."""
        if await self.check_helo_needed():
            return
        if await self.check_auth_needed("DATA"):
            return
        assert self.envelope is not None
        if not self.envelope.rcpt_tos:
            await self.push("503 Error: need RCPT command")
            return
        if arg:
            await self.push("501 Syntax: DATA")
            return
        await self.push("354 End data with <CR><LF>.<CR><LF>")
        reader = self._reader
        lines = _DataLines(self.data_size_limit, self.line_length_limit, self.line_length_limit)
        while self.transport is not None:  # pragma: no branch
            try:
                try:
                    chunk = await reader.readuntil(_DOT_LINE_END)
                except asyncio.LimitOverrunError as overrun:  # past the reader's limit: take what is safe
                    chunk = await reader.read(overrun.consumed)
            except asyncio.CancelledError:
                log.info("Connection lost during DATA")
                self._writer.close()
                raise
            if lines.feed(chunk):
                break
        if lines.verdict is not None:
            await self.push(
                "500 Line too long (see RFC5321 4.5.3.1.6)"
                if lines.verdict == "too long"
                else "552 Error: Too much mail data"
            )
            self._set_post_data_state()
            return
        original_content = lines.content()
        content: str | bytes = original_content
        if self._decode_data:
            if self.enable_SMTPUTF8:
                content = original_content.decode("utf-8", errors="surrogateescape")
            else:
                try:
                    content = original_content.decode("ascii", errors="strict")
                except UnicodeDecodeError:
                    await self.push("500 Error: strict ASCII mode")
                    return
        self.envelope.content = content
        self.envelope.original_content = original_content
        status = await self._call_handler_hook("DATA")
        self._set_post_data_state()
        await self.push("250 OK" if status is MISSING else status)

    async def auth_PLAIN(self, _: Any, args: list[str]) -> AuthResult:  # noqa: N802 - aiosmtpd's mechanism name
        return await self._verified(await super().auth_PLAIN(_, args))

    async def auth_LOGIN(self, _: Any, args: list[str]) -> AuthResult:  # noqa: N802 - aiosmtpd's mechanism name
        return await self._verified(await super().auth_LOGIN(_, args))

    async def _verified(self, collected: AuthResult) -> AuthResult:
        credentials = collected.auth_data
        if self._credentials is None or not isinstance(credentials, LoginPassword):
            return collected  # a malformed exchange, already answered by aiosmtpd
        user = await self._credentials.check(credentials.login, credentials.password)
        if user is not None:
            return AuthResult(success=True, auth_data=user)
        self._failures_left -= 1
        log.info("SMTP AUTH failed for %r from %s", credentials.login[:64], self.session and self.session.peer)
        await asyncio.sleep(self._failure_delay)
        if self._failures_left > 0:
            return AuthResult(success=False, handled=False)  # aiosmtpd answers 535
        await self.push("421 4.7.0 Too many failed authentication attempts, closing")
        if self.transport is not None:
            self.transport.close()
        return AuthResult(success=False, handled=True)


class SmtpIntakeServer:
    def __init__(
        self,
        resolve: ResolveRecipient,
        *,
        host: str,
        port: int,
        max_message_bytes: int = 30 * 1024 * 1024,
        max_recipients: int = 50,
        max_sessions: int = 100,
        tls_context: ssl.SSLContext | None = None,
        require_tls: bool = False,
        auth_users: Mapping[str, str] | None = None,
        auth_allow_plaintext: bool = False,
        max_auth_failures: int = 3,
        auth_failure_delay: float = 1.0,
    ) -> None:
        if require_tls and tls_context is None:
            raise ValueError("require_tls needs a tls_context")
        if auth_users is not None and tls_context is None and not auth_allow_plaintext:
            raise ValueError("AUTH over TLS only needs a tls_context (or auth_allow_plaintext)")
        self.host, self.port = host, port
        self._handler = _Handler(resolve, max_recipients, offers_auth=auth_users is not None)
        self._max_message_bytes = max_message_bytes
        self._max_sessions = max_sessions
        self._sessions = [0]
        self._tls_context, self._require_tls = tls_context, require_tls
        self._credentials = _Credentials(auth_users) if auth_users is not None else None
        self._auth_allow_plaintext = auth_allow_plaintext
        self._max_auth_failures, self._auth_failure_delay = max_auth_failures, auth_failure_delay
        self._server: asyncio.Server | None = None

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        if self._credentials is not None and self._auth_allow_plaintext:
            log.warning("SMTP intake accepts AUTH without TLS: passwords can be read on the network")
        self._server = await loop.create_server(
            lambda: _LimitedSMTP(
                self._handler,
                sessions=self._sessions,
                max_sessions=self._max_sessions,
                credentials=self._credentials,
                max_auth_failures=self._max_auth_failures,
                auth_failure_delay=self._auth_failure_delay,
                data_size_limit=self._max_message_bytes,
                hostname="inbox",
                ident="Inbox SMTP intake",
                tls_context=self._tls_context,
                require_starttls=self._require_tls,
                auth_require_tls=not self._auth_allow_plaintext,
            ),
            host=self.host,
            port=self.port,
        )
        self.port = self._server.sockets[0].getsockname()[1]
        log.info(
            "SMTP intake listening on %s:%d (STARTTLS %s, AUTH %s)",
            self.host,
            self.port,
            "required" if self._require_tls else "offered" if self._tls_context else "off",
            "required" if self._credentials else "off",
        )

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None
