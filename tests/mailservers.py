"""Real mail servers for the email tests: Debian's dovecot (IMAP) with a generated configuration on a free
loopback port and a temporary mail dir, an aiosmtpd sink that records what it is sent and can misbehave,
and a TCP proxy in front of dovecot that can refuse or cut connections."""

from __future__ import annotations

import asyncio
import contextlib
import imaplib
import os
import secrets
import shutil
import socket
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Dovecot:
    """One dovecot instance; must run as root (it drops to the dovecot and dovenull users)."""

    def __init__(self) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="webcare-dovecot-"))
        self.root.chmod(0o755)
        self.port = free_port()
        self.users = self.root / "users"
        self.users.write_text("")
        (self.root / "mail").mkdir()
        shutil.chown(self.root / "mail", "dovecot", "dovecot")
        r = self.root
        self.config = r / "dovecot.conf"
        self.config.write_text(f"""
base_dir = {r}/run
state_dir = {r}/state
protocols = imap
listen = 127.0.0.1
ssl = no
disable_plaintext_auth = no
log_path = {r}/dovecot.log
default_internal_user = dovecot
default_login_user = dovenull
first_valid_uid = 100
mail_location = maildir:{r}/mail/%u
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {self.users}
}}
userdb {{
  driver = static
  args = uid=dovecot gid=dovecot home={r}/mail/%u
}}
service imap-login {{
  inet_listener imap {{
    address = 127.0.0.1
    port = {self.port}
  }}
  inet_listener imaps {{
    port = 0
  }}
}}
""")
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.proc = subprocess.Popen(["dovecot", "-F", "-c", str(self.config)], stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL)
        ready = threading.Event()
        for _ in range(300):
            if self.proc.poll() is not None:
                break
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", self.port), timeout=1):
                return
            ready.wait(0.05)
        raise RuntimeError(f"dovecot did not start: {(self.root / 'dovecot.log').read_text()[-2000:]}")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        shutil.rmtree(self.root, ignore_errors=True)

    def add_user(self) -> tuple[str, str]:
        """A fresh mailbox: its login (an address) and password."""
        user, password = f"support-{secrets.token_hex(4)}@example.test", secrets.token_urlsafe(12)
        with self.users.open("a") as f:
            f.write(f"{user}:{{PLAIN}}{password}::::::\n")
        # dovecot looks at the users file again at most once a second: a user added in the same second as
        # the last login is unknown until the next one. Wait until the login works, so that the account's
        # first poll is not taken for expired credentials.
        deadline = time.monotonic() + 10
        while True:
            imap = imaplib.IMAP4("127.0.0.1", self.port, timeout=10)
            try:
                imap.login(user, password)
                imap.logout()
                return user, password
            except imaplib.IMAP4.error:
                imap.shutdown()  # a refused login leaves the connection open
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)

    def imap(self, user: str, password: str) -> imaplib.IMAP4:
        imap = imaplib.IMAP4("127.0.0.1", self.port, timeout=10)
        imap.login(user, password)
        return imap


@dataclass
class SmtpSink:
    """aiosmtpd recording each accepted message; ``faults`` are taken one per message, in order:
    ``tempfail`` answers RCPT with 451, ``drop`` keeps the message but closes the connection before
    the final 250 (the sender cannot know it arrived)."""

    messages: list[bytes] = field(default_factory=list)
    faults: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str,
                          rcpt_options: list[str]) -> str:
        with self.lock:
            if self.faults and self.faults[0] == "tempfail":
                self.faults.pop(0)
                return "451 4.3.0 Try again later"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        with self.lock:
            self.messages.append(bytes(envelope.original_content or envelope.content))
            drop = bool(self.faults) and self.faults[0] == "drop"
            if drop:
                self.faults.pop(0)
        if drop:
            server.transport.abort()
        return "250 Message accepted"


class SmtpServer:
    def __init__(self) -> None:
        self.sink = SmtpSink()
        self.port = free_port()
        self.controller = Controller(self.sink, hostname="127.0.0.1", port=self.port)

    def __enter__(self) -> SmtpServer:
        self.controller.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.controller.stop()


class TcpProxy:
    """Forwards loopback connections to ``port``; ``refuse`` closes the next connections at once and
    ``cut_after`` (bytes) ends the next connections part-way through the server's answer."""

    def __init__(self, port: int) -> None:
        self.target = port
        self.refuse = 0
        self.cuts: list[int] = []
        self.server: asyncio.Server | None = None
        self.port = 0
        self.connections = 0

    async def start(self) -> None:
        self.server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.port = self.server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        if self.server is not None:
            self.server.close()
            with contextlib.suppress(Exception):
                await self.server.wait_closed()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        if self.refuse > 0:
            self.refuse -= 1
            writer.close()
            return
        limit = self.cuts.pop(0) if self.cuts else None
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target)
        except OSError:
            writer.close()
            return

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter, budget: int | None) -> None:
            sent = 0
            try:
                while data := await src.read(4096):
                    if budget is not None and sent + len(data) > budget:
                        dst.write(data[: max(budget - sent, 0)])
                        break
                    dst.write(data)
                    sent += len(data)
                    await dst.drain()
            except (OSError, asyncio.IncompleteReadError):
                pass
            finally:
                for w in (writer, up_writer):
                    w.close()

        await asyncio.gather(pipe(reader, up_writer, None), pipe(up_reader, writer, limit))


def in_ci() -> bool:
    return bool(os.environ.get("CI")) or os.environ.get("WEBCARE_TEST_POSTGRES") == "require"
