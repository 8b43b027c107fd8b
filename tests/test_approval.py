"""Four eyes: approval rules hold replies in awaiting_approval until a coordinator approves them (they go
out) or sends them back with a comment (a draft the author edits and submits again). Nothing held or
sent back reaches the platform: proven against the fake X, with the outbox driven by the test."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from tests.conftest import FakeServer, Harness, ServerThread, make_settings
from webcare.app import create_app
from webcare.connections import ConnectorPool
from webcare.db import Database
from webcare.models import Account, Event, Message, Reply
from webcare.outbox import Outbox
from webcare.poller import Poller
from webcare.security import Keys

pytestmark = pytest.mark.anyio


async def rule(coordinator: httpx.AsyncClient, **conditions: Any) -> dict[str, Any]:
    r = await coordinator.post("/api/approval-rules", json={"name": "four eyes", **conditions})
    assert r.status_code == 201, r.text
    return dict(r.json())


async def conversation(server: Harness, admin: httpx.AsyncClient, account: dict[str, Any]) -> int:
    return int((await server.inbound(admin, account["id"], "Waarom is mijn aanvraag afgewezen?"))["conversation_id"])


async def reply(client: httpx.AsyncClient, conversation_id: int, text: str) -> dict[str, Any]:
    r = await client.post(f"/api/conversations/{conversation_id}/replies", json={"text": text})
    assert r.status_code == 201, r.text
    return dict(r.json()["reply"])


async def event_types(server: Harness, conversation_id: int) -> list[str]:
    async with server.db.read() as s:
        return list(await s.scalars(sa.select(Event.type).where(Event.conversation_id == conversation_id)
                                    .order_by(Event.seq)))


async def test_a_reply_on_the_directors_account_waits_for_a_coordinator(server: Harness) -> None:
    admin, _ = await server.token_client("admin")
    coordinator, _ = await server.token_client("coordinator")
    agent, author = await server.token_client("agent")
    director = await server.api_account(admin, department="Directie")
    other = await server.api_account(admin, department="Parkeren")
    held = await rule(coordinator, account_id=director["id"])

    free = await reply(agent, await conversation(server, admin, other), "Dat zoeken we voor u uit.")
    assert free["state"] == "queued", "other accounts are not held"
    conv = await conversation(server, admin, director)
    waiting = await reply(agent, conv, "Dat zoeken we voor u uit.")
    assert waiting["state"] == "awaiting_approval"
    assert (await event_types(server, conv))[-1] == "reply.awaiting_approval"
    detail = (await agent.get(f"/api/conversations/{conv}")).json()
    [out] = [m for m in detail["messages"] if m["direction"] == "out"]
    assert out["state"] == "awaiting_approval"
    assert detail["reviews"][0]["decision"] == "submitted" and detail["reviews"][0]["rules"][0]["id"] == held["id"]

    queue = (await coordinator.get("/api/approvals")).json()["items"]
    [item] = [i for i in queue if i["id"] == waiting["id"]]
    assert item["text"] == "Dat zoeken we voor u uit." and item["author"]["id"] == author["id"]
    assert item["rules"] == [{"id": held["id"], "name": "four eyes"}]
    assert item["conversation"]["id"] == conv and item["account"]["id"] == director["id"]
    assert (await agent.get("/api/approvals")).status_code == 403
    assert (await agent.post(f"/api/replies/{waiting['id']}/approve")).status_code == 403

    r = await coordinator.post(f"/api/replies/{waiting['id']}/approve")
    assert r.status_code == 200, r.text
    assert r.json()["reply"]["state"] == "queued"
    assert (await event_types(server, conv))[-2:] == ["reply.approved", "reply.queued"]
    async with server.db.read() as s:
        stored = await s.get(Reply, waiting["id"])
        assert stored is not None and stored.next_attempt_at is not None
    r = await coordinator.post(f"/api/replies/{waiting['id']}/approve")
    assert r.status_code == 409 and r.json()["error"]["code"] == "invalid_state"
    assert [i["id"] for i in (await coordinator.get("/api/approvals")).json()["items"]].count(waiting["id"]) == 0


async def test_no_one_approves_their_own_reply_and_two_approvers_do_not_both_win(server: Harness) -> None:
    admin, _ = await server.token_client("admin")
    coordinator, _ = await server.token_client("coordinator")
    second, _ = await server.token_client("coordinator")
    third, _ = await server.token_client("coordinator")
    account = await server.api_account(admin, department="Directie")
    await rule(coordinator, account_id=account["id"])
    own = await reply(coordinator, await conversation(server, admin, account), "Ik kijk ernaar.")
    r = await coordinator.post(f"/api/replies/{own['id']}/approve")
    assert r.status_code == 422 and r.json()["error"]["code"] == "four_eyes"
    answers = await asyncio.gather(second.post(f"/api/replies/{own['id']}/approve"),
                                   third.post(f"/api/replies/{own['id']}/send-back", json={"comment": "Anders"}))
    assert sorted(a.status_code for a in answers) == [200, 409]


async def test_sent_back_with_a_comment_edited_and_approved(server: Harness) -> None:
    admin, _ = await server.token_client("admin")
    coordinator, _ = await server.token_client("coordinator")
    newcomer_client, newcomer = await server.token_client("agent")
    colleague, _ = await server.token_client("agent")
    account = await server.api_account(admin, department="Parkeren")
    # A colleague marked as new: everything they write is read by a coordinator first.
    await rule(coordinator, name="new colleague", author_user_id=newcomer["id"])
    assert (await reply(colleague, await conversation(server, admin, account), "Wij kijken ernaar."))["state"] == \
        "queued"
    conv = await conversation(server, admin, account)
    draft = await reply(newcomer_client, conv, "Geen idee, bel maar.")
    assert draft["state"] == "awaiting_approval"

    r = await coordinator.post(f"/api/replies/{draft['id']}/send-back", json={"comment": "Verwijs naar het formulier"})
    assert r.status_code == 200 and r.json()["reply"]["state"] == "draft"
    detail = (await newcomer_client.get(f"/api/conversations/{conv}")).json()
    assert [m["state"] for m in detail["messages"] if m["direction"] == "out"] == ["draft"]
    assert detail["reviews"][-1]["decision"] == "sent_back"
    assert detail["reviews"][-1]["comment"] == "Verwijs naar het formulier"
    assert (await event_types(server, conv))[-1] == "reply.sent_back"
    assert (await coordinator.post(f"/api/replies/{draft['id']}/approve")).status_code == 409, "a draft is not approved"
    r = await colleague.post(f"/api/replies/{draft['id']}/resubmit", json={"text": "Niet van mij"})
    assert r.status_code == 403

    r = await newcomer_client.post(f"/api/replies/{draft['id']}/resubmit",
                                   json={"text": "U kunt bezwaar maken via het formulier op de website."})
    assert r.status_code == 200, r.text
    assert r.json()["reply"]["state"] == "awaiting_approval"
    assert (await coordinator.post(f"/api/replies/{draft['id']}/approve")).status_code == 200
    detail = (await newcomer_client.get(f"/api/conversations/{conv}")).json()
    [edited] = [m for m in detail["messages"] if m["direction"] == "out"]
    assert edited["text"] == "U kunt bezwaar maken via het formulier op de website."
    assert edited["state"] in ("queued", "sending"), "in the outbox (which holds it: no callback_url)"
    assert [r["decision"] for r in detail["reviews"]] == ["submitted", "sent_back", "submitted", "approved"]


async def test_rules_on_department_and_role(server: Harness) -> None:
    admin, _ = await server.token_client("admin")
    coordinator, _ = await server.token_client("coordinator")
    agent, _ = await server.token_client("agent")
    expert, _ = await server.token_client("expert")
    press = await server.api_account(admin, department="Pers")
    other = await server.api_account(admin, department="Wonen")
    await rule(coordinator, department_id=press["department_id"], author_role="agent")
    await rule(coordinator, author_role="expert", account_id=other["id"])
    assert (await reply(agent, await conversation(server, admin, press), "Een"))["state"] == "awaiting_approval"
    assert (await reply(expert, await conversation(server, admin, press), "Twee"))["state"] == "queued"
    assert (await reply(expert, await conversation(server, admin, other), "Drie"))["state"] == "awaiting_approval"
    assert (await reply(agent, await conversation(server, admin, other), "Vier"))["state"] == "queued"
    check = (await agent.post(f"/api/conversations/{await conversation(server, admin, press)}/replies/check",
                              json={"text": "Vijf"})).json()
    assert check["approval"]["required"] is True
    rules = (await coordinator.get("/api/approval-rules")).json()["items"]
    assert len(rules) == 2
    assert (await agent.post("/api/approval-rules", json={"name": "x", "author_role": "agent"})).status_code == 403
    assert (await coordinator.post("/api/approval-rules", json={"name": "nothing"})).status_code == 400
    assert (await coordinator.delete(f"/api/approval-rules/{rules[0]['id']}")).status_code == 200
    assert (await reply(agent, await conversation(server, admin, press), "Zes"))["state"] == "queued"


@dataclass
class Rig:
    harness: Harness
    admin: httpx.AsyncClient
    coordinator: httpx.AsyncClient
    agent: httpx.AsyncClient
    poller: Poller
    outbox: Outbox


@pytest.fixture
async def rig(db_url: str) -> AsyncIterator[Rig]:
    """A server without background workers, and a poller and outbox this test drives itself."""
    settings = make_settings(db_url)
    db = Database(db_url)
    pool = ConnectorPool(Keys(settings.secret_key), timeout=3)
    with ServerThread(create_app(settings, workers=False)) as running:
        harness = Harness(running.url, settings, db)
        try:
            admin, _ = await harness.token_client("admin")
            coordinator, _ = await harness.token_client("coordinator")
            agent, _ = await harness.token_client("agent")
            yield Rig(harness, admin, coordinator, agent, Poller(db, pool, "test", lease_seconds=30),
                      Outbox(db, pool, backoff_base=0.01, backoff_cap=0.05, lease_seconds=30))
        finally:
            for c in harness.clients:
                await c.aclose()
            await pool.aclose()
            await db.dispose()


async def test_an_unapproved_reply_never_reaches_the_platform(rig: Rig, fake_server: FakeServer) -> None:
    fake = fake_server.fake
    creds = fake.add_x_account("burgemeester").credentials()
    department = (await rig.admin.post("/api/departments", json={"name": f"Kabinet {secrets.token_hex(3)}"})).json()
    account = (await rig.admin.post("/api/accounts", json={
        "platform": "x", "handle": "burgemeester", "name": "@burgemeester", "department_id": department["id"],
        "settings": {"base_url": fake_server.x_url, "poll_interval": 1}, "credentials": creds})).json()
    await rule(rig.coordinator, account_id=account["id"])
    await rig.poller.poll_due()  # the first poll starts from now
    tweet = fake.inject_x_mention("burgemeester", "Wanneer komt u naar onze wijk?", author="bewoner")
    async with rig.harness.db.write() as tx:
        await tx.session.execute(sa.update(Account).where(Account.id == account["id"]).values(next_poll_at=None))
    await rig.poller.poll_due()
    async with rig.harness.db.read() as s:
        conv = await s.scalar(sa.select(Message.conversation_id).where(Message.external_id == tweet.id))
    assert conv is not None

    held = await reply(rig.agent, conv, "Volgende maand!")
    assert held["state"] == "awaiting_approval"
    assert await rig.outbox.drain() == 0
    r = await rig.coordinator.post(f"/api/replies/{held['id']}/send-back", json={"comment": "Geen datum beloven"})
    assert r.json()["reply"]["state"] == "draft"
    assert await rig.outbox.drain() == 0
    r = await rig.agent.post(f"/api/replies/{held['id']}/resubmit", json={"text": "Wij laten het u snel weten."})
    assert r.json()["reply"]["state"] == "awaiting_approval"
    assert await rig.outbox.drain() == 0
    assert fake.posts("x", "burgemeester") == [], "nothing held or sent back reached X"
    assert not [r for r in fake.requests if r["method"] == "POST" and r["path"].endswith("/tweets")]

    assert (await rig.coordinator.post(f"/api/replies/{held['id']}/approve")).status_code == 200
    assert await rig.outbox.drain() == 1
    [posted] = fake.posts("x", "burgemeester")
    assert posted.text.endswith("Wij laten het u snel weten.") and posted.in_reply_to == tweet.id
    async with rig.harness.db.read() as s:
        sent = await s.get(Reply, held["id"])
        assert sent is not None and sent.state == "sent" and sent.external_id == posted.id
