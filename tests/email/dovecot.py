"""A throw-away Dovecot IMAP server for the IMAP tests (the recipe in ``shared/RECIPES.md``).

A real server catches what a stand-in would not: UIDVALIDITY and UID semantics, ``n:*`` answering
with the highest UID, IDLE pushes, MOVE, flags set by another client, a server that goes away.
Dovecot must be installed (``.ci/run`` installs ``dovecot-imapd``); without it the tests fail
rather than skip, so a CI machine missing it cannot pass silently.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import AsyncIterator
from datetime import datetime
from pathlib import Path

import aioimaplib
import pytest

__all__ = ["USER", "PASSWORD", "Dovecot", "running_dovecot"]

USER = "support"
PASSWORD = "secret"

_CONFIG = """\
base_dir = {d}/run
state_dir = {d}/state
log_path = {d}/dovecot.log
info_log_path = {d}/dovecot.log
protocols = imap
listen = 127.0.0.1
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain login
mail_location = maildir:{d}/mail/%u
first_valid_uid = 1
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {d}/passwd
}}
userdb {{
  driver = static
  args = uid=nobody gid=nogroup home={d}/home/%u
}}
service imap-login {{
  inet_listener imap {{
    address = 127.0.0.1
    port = {port}
  }}
  inet_listener imaps {{
    port = 0
  }}
}}
{extra}
"""


_FLAGS = re.compile(rb"^\d+ FETCH \(UID (\d+) FLAGS \(([^)]*)\)")


def _children(pid: int) -> list[tuple[int, str]]:
    """(pid, command line) of the direct children of ``pid``, from /proc."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, ValueError, IndexError):
            if int(stat.read_text().rsplit(")", 1)[1].split()[1]) == pid:
                name = (stat.parent / "cmdline").read_bytes().split(b"\0")[0].decode()
                found.append((int(stat.parent.name), name))
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class Dovecot:
    """One Dovecot master process in its own directory; restartable on the same port and mail."""

    def __init__(self, root: Path, *, extra_config: str = "") -> None:
        self.root = root
        self.port = _free_port()
        self.extra_config = extra_config
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def maildir(self) -> Path:
        return self.root / "mail" / USER

    def log(self) -> str:
        paths = [self.root / "stderr.log", self.root / "dovecot.log"]
        return "".join(path.read_text(errors="replace") for path in paths if path.exists())

    def prepare(self) -> None:
        self.root.chmod(0o755)  # the mail processes run as nobody and must reach mail/ and home/
        for sub in ("mail", "home"):
            (self.root / sub).mkdir(exist_ok=True)
            shutil.chown(self.root / sub, "nobody", "nogroup")
        (self.root / "passwd").write_text(f"{USER}:{{PLAIN}}{PASSWORD}::::::\n")
        config = _CONFIG.format(d=self.root, port=self.port, extra=self.extra_config)
        (self.root / "dovecot.conf").write_text(config)

    def _spawn(self) -> subprocess.Popen[bytes]:
        with open(self.root / "stderr.log", "ab") as stderr:  # startup errors come here, not to the log
            command = ["dovecot", "-F", "-c", str(self.root / "dovecot.conf")]
            return subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=stderr, stderr=stderr)

    async def start(self) -> None:
        self._process = process = self._spawn()
        deadline = time.monotonic() + 10
        while True:
            if process.poll() is not None:
                pytest.fail(f"dovecot exited with {process.returncode}:\n{self.log()}")
            with contextlib.suppress(OSError):
                _, writer = await asyncio.open_connection("127.0.0.1", self.port)
                writer.close()
                return
            if time.monotonic() > deadline:
                pytest.fail(f"dovecot did not accept connections on port {self.port} within 10 s\n{self.log()}")
            await asyncio.sleep(0.01)

    def kill_connections(self, master: int | None = None) -> int:
        """Ends every client connection, as a crashing or restarting server does; returns how many
        processes it signalled."""
        master = master or (self._process.pid if self._process else None)
        if master is None:
            return 0
        serving = [pid for pid, name in _children(master) if name.startswith("dovecot/imap")]
        for pid in serving:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)
        return len(serving)

    async def stop(self) -> None:
        """SIGTERM to the master, after its children: Dovecot 2.3 leaves client connections (and
        its log process) running when only the master stops."""
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        children = [pid for pid, _ in _children(process.pid)]
        self.kill_connections(process.pid)
        process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 10
        while process.poll() is None:
            if time.monotonic() > deadline:
                process.kill()
            await asyncio.sleep(0.01)
        for pid in children:  # normally gone with the master; never leave one behind
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)

    async def restart(self) -> None:
        await self.stop()
        await self.start()

    async def client(self, folder: str = "INBOX") -> aioimaplib.IMAP4:
        """Another mail client, logged in, with ``folder`` selected."""
        client = aioimaplib.IMAP4("127.0.0.1", self.port, timeout=5)
        await client.wait_hello_from_server()
        assert (await client.login(USER, PASSWORD)).result == "OK"
        assert (await client.select(folder)).result == "OK"
        return client

    async def flags(self, folder: str = "INBOX") -> dict[int, set[str]]:
        """Every message's flags by UID, as another client would see them."""
        client = await self.client(folder)
        try:
            response = await client.uid("fetch", "1:*", "(UID FLAGS)")
        finally:
            await client.logout()
        found = (_FLAGS.match(line) for line in response.lines if isinstance(line, bytes))
        return {int(m.group(1)): set(m.group(2).decode().split()) for m in found if m}

    async def uidvalidity(self, folder: str = "INBOX") -> int:
        client = await self.client(folder)
        try:
            response = await client.status(folder, "(UIDVALIDITY)")
        finally:
            await client.logout()
        match = re.search(rb"UIDVALIDITY (\d+)", response.lines[0])
        assert match, response
        return int(match.group(1))

    async def renumber(self) -> None:
        """What a restored or migrated mailbox looks like: the same mail under a new UIDVALIDITY
        (Dovecot rebuilds its UID list, and ``dovecot-uidvalidity`` guarantees a new value)."""
        await self.stop()
        for path in self.maildir.iterdir():
            if path.name.startswith(("dovecot-uidlist", "dovecot.index")):
                path.unlink()
        await self.start()

    async def append(
        self,
        messages: list[bytes],
        *,
        folder: str = "INBOX",
        flags: str | None = None,
        date: datetime | None = None,
    ) -> None:
        client = await self.client(folder)
        try:
            for raw in messages:
                response = await client.append(raw, mailbox=folder, flags=flags, date=date)
                assert response.result == "OK", response
        finally:
            await client.logout()


@contextlib.asynccontextmanager
async def running_dovecot(*, extra_config: str = "") -> AsyncIterator[Dovecot]:
    if shutil.which("dovecot") is None:
        pytest.fail(
            "the IMAP tests need a real Dovecot: `apt-get install -y dovecot-imapd` (.ci/run installs it)",
            pytrace=False,
        )
    if os.geteuid() != 0:
        pytest.fail("the IMAP tests start Dovecot, which must run as root (it drops to nobody)", pytrace=False)
    # not pytest's tmp_path: its parents are mode 700, and the mail processes run as nobody
    server = Dovecot(Path(tempfile.mkdtemp(prefix="inbox-dovecot-")), extra_config=extra_config)
    try:
        server.prepare()
        await server.start()
        yield server
    finally:
        await server.stop()
        shutil.rmtree(server.root, ignore_errors=True)
