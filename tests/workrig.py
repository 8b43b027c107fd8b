"""A webcare server without background workers, plus a poller and outbox that a test drives itself
with short backoffs (``poll_due``, ``drain``), and the helpers that go with it: every wait is on a
condition, never on a clock. The ``rig`` fixture in conftest opens one."""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import httpx
import sqlalchemy as sa

from tests.conftest import FakeServer, Harness, ServerThread, make_settings
from webcare.app import create_app
from webcare.connections import ConnectorPool
from webcare.db import Database
from webcare.models import Account, Message, Reply
from webcare.outbox import Outbox
from webcare.poller import Poller
from webcare.security import Keys


@dataclass
class Rig:
    harness: Harness
    admin: httpx.AsyncClient
    agent: httpx.AsyncClient
    pool: ConnectorPool
    poller: Poller
    outbox: Outbox


@asynccontextmanager
async def open_rig(db_url: str) -> AsyncIterator[Rig]:
    """A webcare server without background workers, and a poller and outbox the test drives itself."""
    settings = make_settings(db_url)
    db = Database(db_url)
    pool = ConnectorPool(Keys(settings.secret_key), timeout=3)
    with ServerThread(create_app(settings, workers=False)) as running:
        harness = Harness(running.url, settings, db)
        try:
            admin, _ = await harness.token_client("admin")
            agent, _ = await harness.token_client("agent")
            yield Rig(harness, admin, agent, pool,
                      Poller(db, pool, "test-worker", backoff_base=0.01, backoff_cap=0.05, lease_seconds=30),
                      Outbox(db, pool, backoff_base=0.01, backoff_cap=0.05, lease_seconds=30, max_attempts=8))
        finally:
            for c in harness.clients:
                await c.aclose()
            await pool.aclose()
            await db.dispose()


async def until(check: Callable[[], Awaitable[bool]], within: float = 30.0, what: str = "condition") -> None:
    deadline = time.monotonic() + within
    while not await check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.02)


async def department(admin: httpx.AsyncClient) -> int:
    r = await admin.post("/api/departments", json={"name": f"Dep {secrets.token_hex(3)}"})
    assert r.status_code == 201, r.text
    return int(r.json()["id"])


async def x_account(rig: Rig, fake: FakeServer, username: str, **settings: Any) -> dict[str, Any]:
    creds = fake.fake.add_x_account(username).credentials()
    r = await rig.admin.post("/api/accounts", json={
        "platform": "x", "handle": username, "name": f"@{username}", "department_id": await department(rig.admin),
        "settings": {"base_url": fake.x_url, "poll_interval": 1, **settings}, "credentials": creds})
    assert r.status_code == 201, r.text
    return dict(r.json())


async def mastodon_account(rig: Rig, fake: FakeServer, username: str, **settings: Any) -> dict[str, Any]:
    token = fake.fake.add_mastodon_account(username).access_token
    r = await rig.admin.post("/api/accounts", json={
        "platform": "mastodon", "handle": username, "name": f"@{username}",
        "department_id": await department(rig.admin),
        "settings": {"base_url": fake.mastodon_url, "poll_interval": 1, **settings},
        "credentials": {"access_token": token}})
    assert r.status_code == 201, r.text
    return dict(r.json())


async def inbound(db: Database, account_id: int) -> list[Message]:
    async with db.read() as s:
        return list(await s.scalars(sa.select(Message).where(Message.account_id == account_id,
                                                               Message.direction == "in").order_by(Message.id)))


async def poll_until(rig: Rig, account_id: int, count: int, within: float = 60.0) -> list[Message]:
    """Poll whenever the account is due until ``count`` messages are in."""
    async def enough() -> bool:
        await rig.poller.poll_due()
        return len(await inbound(rig.harness.db, account_id)) >= count

    await until(enough, within, f"{count} messages on account {account_id}")
    return await inbound(rig.harness.db, account_id)


async def make_due(db: Database, account_id: int) -> None:
    async with db.write() as tx:
        await tx.session.execute(sa.update(Account).where(Account.id == account_id).values(next_poll_at=None))


async def reply_to(rig: Rig, conversation_id: int, text: str) -> int:
    r = await rig.agent.post(f"/api/conversations/{conversation_id}/replies", json={"text": text})
    assert r.status_code == 201, r.text
    return int(r.json()["reply"]["id"])


async def reply_state(db: Database, reply_id: int) -> Reply:
    async with db.read() as s:
        reply = await s.get(Reply, reply_id)
        assert reply is not None
        return reply


async def deliver_until(rig: Rig, reply_ids: list[int], states: tuple[str, ...] = ("sent",),
                        within: float = 60.0) -> None:
    async def done() -> bool:
        await rig.outbox.drain()
        current = [(await reply_state(rig.harness.db, r)).state for r in reply_ids]
        return all(state in states for state in current)

    await until(done, within, f"replies {reply_ids} to reach {states}")
