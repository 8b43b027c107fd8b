"""Similar answered questions: for the open conversation, earlier ones that got an answer, with that answer,
from every department the reader may see. Replies really go out (to the fake X) to count as answers."""

from __future__ import annotations

import contextlib
import secrets
from collections.abc import AsyncIterator
from dataclasses import dataclass

import httpx
import pytest
import sqlalchemy as sa

from tests.conftest import FakeServer, Harness, ServerThread, make_settings
from webcare.app import create_app
from webcare.connections import ConnectorPool
from webcare.db import Database
from webcare.models import Account, Message
from webcare.outbox import Outbox
from webcare.poller import Poller
from webcare.security import Keys

pytestmark = pytest.mark.anyio


@dataclass
class Rig:
    harness: Harness
    fake: FakeServer
    admin: httpx.AsyncClient
    poller: Poller
    outbox: Outbox

    async def account(self, handle: str, department: str, *, restricted: bool = False) -> int:
        creds = self.fake.fake.add_x_account(handle).credentials()
        deps = (await self.admin.get("/api/departments")).json()["items"]
        dep = next((d for d in deps if d["name"] == department), None) or (
            await self.admin.post("/api/departments", json={"name": department})).json()
        r = await self.admin.post("/api/accounts", json={
            "platform": "x", "handle": handle, "name": f"@{handle}", "department_id": dep["id"],
            "restricted": restricted, "settings": {"base_url": self.fake.x_url, "poll_interval": 1},
            "credentials": creds})
        assert r.status_code == 201, r.text
        await self.poller.poll_due()  # the first poll starts from now
        return int(r.json()["id"])

    async def mention(self, account_id: int, handle: str, text: str, author: str) -> int:
        tweet = self.fake.fake.inject_x_mention(handle, text, author=author)
        async with self.harness.db.write() as tx:
            await tx.session.execute(sa.update(Account).where(Account.id == account_id).values(next_poll_at=None))
        await self.poller.poll_due()
        async with self.harness.db.read() as s:
            conversation_id = await s.scalar(sa.select(Message.conversation_id).where(Message.external_id == tweet.id))
        assert conversation_id is not None
        return int(conversation_id)

    async def answer(self, client: httpx.AsyncClient, conversation_id: int, text: str) -> None:
        r = await client.post(f"/api/conversations/{conversation_id}/replies", json={"text": text})
        assert r.status_code == 201, r.text
        assert await self.outbox.drain() == 1


@contextlib.asynccontextmanager
async def rig_for(db_url: str, fake_server: FakeServer) -> AsyncIterator[Rig]:
    """A server without background workers, and a poller and outbox the test drives itself."""
    settings = make_settings(db_url)
    db = Database(db_url)
    pool = ConnectorPool(Keys(settings.secret_key), timeout=3)
    with ServerThread(create_app(settings, workers=False)) as running:
        harness = Harness(running.url, settings, db)
        try:
            admin, _ = await harness.token_client("admin")
            yield Rig(harness, fake_server, admin, Poller(db, pool, f"test-{secrets.token_hex(2)}", lease_seconds=30),
                      Outbox(db, pool, backoff_base=0.01, backoff_cap=0.05, lease_seconds=30))
        finally:
            for c in harness.clients:
                await c.aclose()
            await pool.aclose()
            await db.dispose()


@pytest.fixture
async def rig(db_url: str, fake_server: FakeServer) -> AsyncIterator[Rig]:
    async with rig_for(db_url, fake_server) as r:
        yield r


async def test_answers_from_other_departments_come_to_the_open_question(rig: Rig) -> None:
    afval = await rig.account("gemeente_afval", "Afval")
    parkeren = await rig.account("gemeente_parkeren", "Parkeren")
    intern = await rig.account("gemeente_intern", "Intern", restricted=True)
    answerer, _ = await rig.harness.token_client("agent", department="Afval", name="Ali Afval")
    internal, _ = await rig.harness.token_client("agent", department="Intern")
    reader, _ = await rig.harness.token_client("agent", department="Parkeren")
    coordinator, _ = await rig.harness.token_client("coordinator")

    noord = await rig.mention(afval, "gemeente_afval", "Wanneer wordt het grofvuil opgehaald in Noord?", "bewoner1")
    await rig.answer(answerer, noord, "Grofvuil in Noord halen we op dinsdag op.")
    permit = await rig.mention(parkeren, "gemeente_parkeren", "Hoe verleng ik mijn parkeervergunning?", "bewoner2")
    await rig.answer(reader, permit, "Dat doet u in Mijn Loket.")
    secret = await rig.mention(intern, "gemeente_intern", "grofvuil ophalen in noord, wanneer is dat?", "bewoner3")
    await rig.answer(internal, secret, "Op dinsdag.")
    unanswered = await rig.mention(afval, "gemeente_afval", "Grofvuil opgehaald in Noord?", "bewoner4")

    question = await rig.mention(parkeren, "gemeente_parkeren", "Wanneer halen jullie het grofvuil op in Noord?",
                                 "bewoner5")
    r = await reader.get(f"/api/conversations/{question}/similar")
    assert r.status_code == 200, r.text
    items = r.json()["items"]
    assert [i["conversation_id"] for i in items] == [noord], "answered, visible, alike; not the unanswered one"
    [found] = items
    assert found["answer"]["text"] == "Grofvuil in Noord halen we op dinsdag op."
    assert found["answer"]["by"]["name"] == "Ali Afval"
    assert found["department"]["name"] == "Afval" and found["question"].endswith("opgehaald in Noord?")
    # Those who see the restricted account see its answers too; the question itself is never among them.
    seen = [i["conversation_id"] for i in (await coordinator.get(f"/api/conversations/{question}/similar")).json()[
        "items"]]
    assert sorted(seen) == sorted([noord, secret])
    assert unanswered not in seen and permit not in seen
    assert (await reader.get(f"/api/conversations/{noord}/similar")).json()["items"] == []
