"""Shared fixtures: both databases, a real uvicorn on loopback, and clients that talk to it.

Every test that takes ``db_url`` (directly or through ``server``) runs on SQLite and on PostgreSQL.
PostgreSQL is 127.0.0.1:5432 unless WEBCARE_TEST_PG says otherwise; with WEBCARE_TEST_POSTGRES=require
(as CI sets it) a missing PostgreSQL fails the run instead of skipping its half.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import shutil
import socket
import ssl
import threading
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
import uvicorn

from webcare.app import create_app
from webcare.db import Database
from webcare.migrate import upgrade
from webcare.settings import Secret, Settings

PG_ADMIN = os.environ.get("WEBCARE_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")
PG_REQUIRED = os.environ.get("WEBCARE_TEST_POSTGRES") == "require"
SECRET = "test-secret-" + "k" * 40
# One TLS context for every test client: building one costs 50-90 ms, and the tests speak plain HTTP anyway.
_TLS = ssl.create_default_context()
PASSWORD = "correct horse battery"


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def _pg_reachable() -> bool:
    async def probe() -> None:
        conn = await asyncpg.connect(PG_ADMIN, timeout=3)
        await conn.close()

    try:
        asyncio.run(probe())
        return True
    except (OSError, asyncpg.PostgresError, TimeoutError):
        return False


def _pg_url(name: str) -> str:
    base = PG_ADMIN.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://")
    return f"{base}/{name}"


async def _pg_admin(*sql: str) -> None:
    conn = await asyncpg.connect(PG_ADMIN)
    try:
        for statement in sql:
            await conn.execute(statement)
    finally:
        await conn.close()


@pytest.fixture(scope="session")
def pg_template() -> Iterator[str]:
    """A migrated PostgreSQL database that each test copies (CREATE DATABASE ... TEMPLATE)."""
    if not _pg_reachable():
        if PG_REQUIRED:
            pytest.fail(f"PostgreSQL is required (WEBCARE_TEST_POSTGRES=require) but {PG_ADMIN} does not answer")
        pytest.skip(f"PostgreSQL at {PG_ADMIN} does not answer; set WEBCARE_TEST_POSTGRES=require to insist")
    name = f"webcare_tpl_{os.getpid()}_{secrets.token_hex(3)}"
    asyncio.run(_pg_admin(f"CREATE DATABASE {name}"))
    try:
        upgrade(_pg_url(name))
        yield name
    finally:
        asyncio.run(_pg_admin(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("tpl") / "template.db"
    upgrade(f"sqlite+aiosqlite:///{path}")
    return path


@pytest.fixture(params=["sqlite", "postgres"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh, migrated database of each kind."""
    if request.param == "sqlite":
        path = tmp_path / "webcare.db"
        shutil.copy(request.getfixturevalue("sqlite_template"), path)
        yield f"sqlite+aiosqlite:///{path}"
        return
    template = request.getfixturevalue("pg_template")
    name = f"webcare_t_{secrets.token_hex(5)}"
    asyncio.run(_pg_admin(f"CREATE DATABASE {name} TEMPLATE {template}"))
    try:
        yield _pg_url(name)
    finally:
        asyncio.run(_pg_admin(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))


def make_settings(db_url: str, **overrides: Any) -> Settings:
    return Settings(database_url=db_url, secret_key=Secret(SECRET), **overrides)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class ServerThread:
    """uvicorn serving one app on a loopback port in its own thread and event loop."""

    def __init__(self, app: Any) -> None:
        self.port = free_port()
        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning",
                                                    lifespan="on", ws="websockets-sansio"))
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> ServerThread:
        self.thread.start()
        started = threading.Event()

        def watch() -> None:
            while not self.server.started and self.thread.is_alive():
                started.wait(0.01)
            started.set()

        threading.Thread(target=watch, daemon=True).start()
        if not started.wait(30) or not self.server.started:
            raise RuntimeError("the test server did not start")
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(30)


@dataclass
class Harness:
    """A running server plus a direct handle on its database, for setting up and checking."""

    url: str
    settings: Settings
    db: Database
    clients: list[httpx.AsyncClient] = field(default_factory=list)

    def client(self, **kwargs: Any) -> httpx.AsyncClient:
        kwargs.setdefault("verify", _TLS)
        c = httpx.AsyncClient(base_url=self.url, timeout=30, **kwargs)
        self.clients.append(c)
        return c

    async def user(self, role: str = "agent", *, department: str | None = "Parkeren",
                   name: str | None = None) -> dict[str, Any]:
        from webcare import people
        from webcare.schemas import UserIn

        email = f"{role}-{secrets.token_hex(4)}@test.webcare"
        return await people.create_user(
            self.db, UserIn(email=email, name=name or f"{role.title()} {email[:6]}", role=role,  # type: ignore[arg-type]
                            password=PASSWORD), department_name=department)

    async def token_client(self, role: str = "agent", **kwargs: Any) -> tuple[httpx.AsyncClient, dict[str, Any]]:
        """A client authenticated with a fresh user's API token."""
        from webcare import people

        user = await self.user(role, **kwargs)
        token = await people.create_token(self.db, user["email"])
        return self.client(headers={"Authorization": f"Bearer {token}"}), user

    async def session_client(self, role: str = "agent", **kwargs: Any) -> tuple[httpx.AsyncClient, dict[str, Any]]:
        """A client logged in through POST /api/session, carrying the CSRF header."""
        user = await self.user(role, **kwargs)
        c = self.client()
        r = await c.post("/api/session", json={"email": user["email"], "password": PASSWORD})
        assert r.status_code == 200, r.text
        c.headers["X-CSRF-Token"] = r.json()["csrf_token"]
        return c, user

    async def api_account(self, admin: httpx.AsyncClient, *, department: str = "Parkeren",
                          restricted: bool = False) -> dict[str, Any]:
        deps = (await admin.get("/api/departments")).json()["items"]
        dep = next((d for d in deps if d["name"] == department), None)
        if dep is None:
            dep = (await admin.post("/api/departments", json={"name": department})).json()
        r = await admin.post("/api/accounts", json={
            "platform": "api", "handle": f"site-{secrets.token_hex(3)}", "name": "Website",
            "department_id": dep["id"], "restricted": restricted})
        assert r.status_code == 201, r.text
        return dict(r.json())

    async def inbound(self, admin: httpx.AsyncClient, account_id: int, text: str = "Hoe vraag ik een vergunning aan?",
                      **fields: Any) -> dict[str, Any]:
        body = {"external_id": fields.pop("external_id", secrets.token_hex(8)), "text": text,
                "author": fields.pop("author", {"id": "u-1", "handle": "burger", "name": "Burger"}), **fields}
        r = await admin.post(f"/api/accounts/{account_id}/inbound", json=body)
        assert r.status_code in (200, 201), r.text
        return dict(r.json())


@pytest.fixture
async def server(db_url: str) -> AsyncIterator[Harness]:
    settings = make_settings(db_url, lease_sweep_seconds=0.2, live_recheck_seconds=0.2)
    db = Database(db_url)
    with ServerThread(create_app(settings)) as running:
        harness = Harness(running.url, settings, db)
        try:
            yield harness
        finally:
            for c in harness.clients:
                await c.aclose()
            await db.dispose()


@dataclass
class FakeServer:
    """The fake X and Mastodon (connectors.fake) served by uvicorn on loopback."""

    fake: Any  # connectors.fake.FakePlatform
    url: str

    @property
    def x_url(self) -> str:
        return f"{self.url}/x"

    @property
    def mastodon_url(self) -> str:
        return f"{self.url}/mastodon"


@pytest.fixture
def fake_server() -> Iterator[FakeServer]:
    from connectors.fake import FakePlatform
    from connectors.fake import create_app as create_fake_app

    fake = FakePlatform()
    with ServerThread(create_fake_app(fake)) as running:
        try:
            yield FakeServer(fake, running.url)
        finally:
            fake.release()  # answers still held back by a delay fault go out, so the server can stop


@pytest.fixture(scope="session")
def dovecot() -> Iterator[Any]:
    """A real dovecot IMAP server (tests/mailservers.py) for the session; each test adds its own user."""
    from tests.mailservers import Dovecot, in_ci

    if shutil.which("dovecot") is None or os.geteuid() != 0:
        if in_ci():
            pytest.fail("the email tests need dovecot-imapd installed and root (as .ci/run provides)")
        pytest.skip("dovecot is not installed or we are not root: apt-get install dovecot-imapd")
    server = Dovecot()
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def smtp_server() -> Iterator[Any]:
    """An aiosmtpd sink on a free loopback port (tests/mailservers.py)."""
    from tests.mailservers import SmtpServer

    with SmtpServer() as server:
        yield server


@pytest.fixture
async def rig(db_url: str) -> AsyncIterator[Any]:
    """See tests/workrig.py: a server without workers, and a poller and outbox the test drives."""
    from tests.workrig import open_rig

    async with open_rig(db_url) as opened:
        yield opened
