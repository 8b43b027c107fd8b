"""The live stream across app instances that share one PostgreSQL (LISTEN/NOTIFY)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest

from tests.conftest import SECRET, Harness, _pg_admin, _pg_url, free_port, make_settings
from tests.test_live import (
    TIMEOUT,
    conversation,
    current_seq,
    events_until,
    open_live,
    receive,
    receive_event,
    running,
    write_notes,
)
from webcare import people
from webcare.db import Database
from webcare.pgbroker import LISTENER_NAME, asyncpg_dsn
from webcare.schemas import UserIn

pytestmark = pytest.mark.anyio

#: Long enough that only NOTIFY, or a reconnect's catch-up, can deliver within the tests' timeouts.
SLOW_POLL = 120.0


@pytest.fixture
def pg_url(pg_template: str) -> Iterator[str]:
    name = f"webcare_t_{secrets.token_hex(5)}"
    asyncio.run(_pg_admin(f"CREATE DATABASE {name} TEMPLATE {pg_template}"))
    try:
        yield _pg_url(name)
    finally:
        asyncio.run(_pg_admin(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))


@contextlib.asynccontextmanager
async def pg(url: str) -> AsyncIterator[asyncpg.Connection]:
    conn = await asyncpg.connect(asyncpg_dsn(url))
    try:
        yield conn
    finally:
        await conn.close()


async def listener_pids(conn: asyncpg.Connection) -> set[int]:
    rows = await conn.fetch("SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
                            "AND application_name = $1", LISTENER_NAME)
    return {r["pid"] for r in rows}


async def wait_for_listeners(conn: asyncpg.Connection, n: int, *, besides: set[int]) -> set[int]:
    """Wait until ``n`` listener connections are there, none of them one of ``besides``."""
    async with asyncio.timeout(TIMEOUT):
        while True:
            pids = await listener_pids(conn)
            if len(pids) == n and not pids & besides:
                return pids
            await asyncio.sleep(0.02)


async def terminate_listeners(conn: asyncpg.Connection) -> set[int]:
    rows = await conn.fetch("SELECT pid, pg_terminate_backend(pid) AS done FROM pg_stat_activity "
                            "WHERE datname = current_database() AND application_name = $1", LISTENER_NAME)
    assert rows and all(r["done"] for r in rows)
    return {r["pid"] for r in rows}


# Two processes


@contextlib.contextmanager
def serve(url: str, log: Path) -> Iterator[str]:
    """``webcare serve --no-workers`` in a subprocess; its base URL once /healthz answers."""
    port = free_port()
    env = dict(os.environ, WEBCARE_DATABASE_URL=url, WEBCARE_SECRET_KEY=SECRET, WEBCARE_LOG_LEVEL="warning",
               WEBCARE_LIVE_POLL_SECONDS=str(SLOW_POLL))
    with log.open("wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", "webcare", "serve", "--no-workers", "--port", str(port)],
                                env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(base + "/healthz", timeout=1).status_code == 200:
                    break
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"webcare serve did not start: {log.read_text()[-2000:]}")
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(0.05)
        yield base
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


async def token_client(db: Database, base: str, role: str, clients: list[httpx.AsyncClient]) -> httpx.AsyncClient:
    email = f"{role}-{secrets.token_hex(4)}@test.webcare"
    await people.create_user(db, UserIn(email=email, name=role.title(), role=role, password=None),  # type: ignore[arg-type]
                             department_name="Parkeren")
    token = await people.create_token(db, email)
    client = httpx.AsyncClient(base_url=base, headers={"Authorization": f"Bearer {token}"}, timeout=30)
    clients.append(client)
    return client


async def test_a_claim_through_one_process_arrives_on_a_socket_of_another(pg_url: str, tmp_path: Path) -> None:
    db = Database(pg_url)
    clients: list[httpx.AsyncClient] = []
    try:
        with serve(pg_url, tmp_path / "a.log") as a, serve(pg_url, tmp_path / "b.log") as b:
            admin_a = await token_client(db, a, "admin", clients)
            agent_b = await token_client(db, b, "agent", clients)
            conv = await conversation(Harness(a, make_settings(pg_url), db), admin_a)
            after = await current_seq(db)
            async with open_live(b, agent_b, after) as ws:
                r = await admin_a.post(f"/api/conversations/{conv}/claim")
                assert r.status_code == 200, r.text
                event = await receive_event(ws, within=10)
            assert (event["seq"], event["type"], event["conversation_id"]) == (after + 1, "conversation.claimed", conv)
    finally:
        for c in clients:
            await c.aclose()
        await db.dispose()


# The listener connection going away


async def test_every_event_arrives_once_in_order_while_the_listener_is_killed(pg_url: str) -> None:
    async with running(pg_url, live_poll_seconds=SLOW_POLL) as a, \
            running(pg_url, live_poll_seconds=SLOW_POLL) as b, pg(pg_url) as conn:
        admin, _ = await a.token_client("admin")
        watcher, _ = await b.token_client("admin")
        conv = await conversation(a, admin)
        pids = await wait_for_listeners(conn, 2, besides=set())
        after = await current_seq(a.db)
        n = 300
        async with open_live(b.url, watcher, after) as ws:
            writer = asyncio.create_task(write_notes(admin, conv, n, parallel=2))
            seen: list[int] = []
            try:
                for _ in range(3):
                    # A third of the way on, cut the listeners off, and go on once they are back.
                    seen += [e["seq"] for e in await events_until(ws, (seen or [after])[-1] + n // 4)]
                    killed = await terminate_listeners(conn)
                    assert killed == pids
                    pids = await wait_for_listeners(conn, 2, besides=killed)
                await writer
                final = await current_seq(a.db)
                seen += [e["seq"] for e in await events_until(ws, final)]
            finally:
                writer.cancel()
        assert final == after + n
        assert seen == list(range(after + 1, final + 1))


async def test_events_that_commit_while_nobody_listens_arrive_after_the_reconnect(pg_url: str) -> None:
    """The NOTIFYs are lost while the listener is away; its reconnect catches up from its last seq."""
    name = pg_url.rsplit("/", 1)[1]
    # No background work that could want a new connection while none is let in.
    quiet = {"live_poll_seconds": SLOW_POLL, "lease_sweep_seconds": 3600, "sla_sweep_seconds": 3600}
    async with running(pg_url, workers=False, **quiet) as a, running(pg_url, workers=False, **quiet) as b, \
            pg(pg_url) as conn:
        admin, _ = await a.token_client("admin")
        watcher, _ = await b.token_client("admin")
        conv = await conversation(a, admin)
        await wait_for_listeners(conn, 2, besides=set())
        after = await current_seq(a.db)
        async with open_live(b.url, watcher, after) as ws:
            # Warm instance A's pool, so that it can write while no new connection is let in.
            await asyncio.gather(*(admin.get("/api/conversations") for _ in range(4)))
            await _pg_admin(f"ALTER DATABASE {name} ALLOW_CONNECTIONS false")
            try:
                killed = await terminate_listeners(conn)
                await write_notes(admin, conv, 20)
                assert await listener_pids(conn) == set()
            finally:
                await _pg_admin(f"ALTER DATABASE {name} ALLOW_CONNECTIONS true")
            events = await events_until(ws, after + 20)
        assert [e["seq"] for e in events] == list(range(after + 1, after + 21))
        assert not await listener_pids(conn) & killed


# Presence across instances


async def presence_is(ws: Any, kind: str, conversation_id: int, users: list[dict[str, Any]]) -> None:
    """Wait until the socket is told exactly these users for the conversation."""
    async with asyncio.timeout(TIMEOUT):
        while True:
            value = await receive(ws)
            if value.get("type") == kind and value.get("conversation_id") == conversation_id \
                    and value["users"] == users:
                return


async def test_presence_crosses_instances(pg_url: str) -> None:
    async with running(pg_url, live_poll_seconds=SLOW_POLL) as a, \
            running(pg_url, live_poll_seconds=SLOW_POLL) as b, pg(pg_url) as conn:
        admin, _ = await a.token_client("admin")
        conv = await conversation(a, admin)
        anna_client, anna = await a.token_client(name="Anna")
        bram_client, bram = await b.token_client(name="Bram")
        await wait_for_listeners(conn, 2, besides=set())
        async with open_live(a.url, anna_client) as on_a:
            await on_a.send(json.dumps({"type": "presence.viewing", "conversation_id": conv}))
            async with open_live(b.url, bram_client) as on_b:
                await on_b.send(json.dumps({"type": "presence.viewing", "conversation_id": conv}))
                await presence_is(on_a, "presence.viewing", conv, [{"id": bram["id"], "name": "Bram"}])
                await presence_is(on_b, "presence.viewing", conv, [{"id": anna["id"], "name": "Anna"}])
                await on_b.send(json.dumps({"type": "presence.typing", "conversation_id": conv, "typing": True}))
                await presence_is(on_a, "presence.typing", conv, [{"id": bram["id"], "name": "Bram"}])
            # Bram disconnected from instance B: instance A's socket hears he is gone (in this order).
            await presence_is(on_a, "presence.viewing", conv, [])
            await presence_is(on_a, "presence.typing", conv, [])
