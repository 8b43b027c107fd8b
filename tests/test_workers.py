"""Workers against the fake platform over real HTTP: real tweepy and httpx, a real database each.

The pollers and outboxes here run in the test's event loop with short backoffs and are driven
step by step (``poll_due``, ``drain``), so every assertion waits on a condition, never on a clock.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import secrets
import time
from typing import Any

import pytest
import sqlalchemy as sa
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from tests.conftest import FakeServer, ServerThread
from tests.workrig import (
    Rig,
    deliver_until,
    department,
    inbound,
    make_due,
    mastodon_account,
    poll_until,
    reply_state,
    reply_to,
    until,
    x_account,
)
from webcare.models import Conversation, Event, Reply
from webcare.poller import Poller

pytestmark = pytest.mark.anyio


async def test_x_mentions_over_pages_become_conversations_and_a_reply_goes_out_once(
        rig: Rig, fake_server: FakeServer) -> None:
    account = await x_account(rig, fake_server, "gemeente", page_size=5)
    await rig.poller.poll_due()  # the first poll starts from now: nothing older is fetched
    tweets = [fake_server.fake.inject_x_mention("gemeente", f"Vraag {i}: waar is mijn vergunning?",
                                                author=f"burger{i % 4}") for i in range(13)]
    await make_due(rig.harness.db, account["id"])
    messages = await poll_until(rig, account["id"], 13)
    assert sorted(m.external_id for m in messages) == sorted(t.id for t in tweets)
    requests = [r for r in fake_server.fake.requests if r["path"].endswith("/mentions")]
    assert any("pagination_token" in r["query"] for r in requests), "the 13 mentions came over several pages"

    # Polling again from the stored cursor brings nothing twice.
    await make_due(rig.harness.db, account["id"])
    await rig.poller.poll_due()
    assert len(await inbound(rig.harness.db, account["id"])) == 13

    target = messages[4]
    reply_id = await reply_to(rig, target.conversation_id, "Via de website, onder Parkeren. ^AA")
    await deliver_until(rig, [reply_id])
    posts = fake_server.fake.posts("x", "gemeente")
    assert len(posts) == 1
    assert posts[0].in_reply_to == target.external_id
    reply = await reply_state(rig.harness.db, reply_id)
    assert reply.external_id == posts[0].id
    detail = (await rig.agent.get(f"/api/conversations/{target.conversation_id}")).json()
    assert detail["status"] == "answered"
    assert [m["state"] for m in detail["messages"] if m["direction"] == "out"] == ["sent"]


async def test_mastodon_mentions_and_a_reply_with_the_originals_visibility(
        rig: Rig, fake_server: FakeServer) -> None:
    account = await mastodon_account(rig, fake_server, "gemeente", page_size=5)
    await rig.poller.poll_due()
    statuses = [fake_server.fake.inject_mastodon_mention("gemeente", f"Wanneer wordt het afval opgehaald? {i}",
                                                         author=f"burger{i}@social.example",
                                                         visibility="unlisted" if i == 3 else "public")
                for i in range(11)]
    await make_due(rig.harness.db, account["id"])
    messages = await poll_until(rig, account["id"], 11)
    assert sorted(m.external_id for m in messages) == sorted(s.id for s in statuses)
    target = next(m for m in messages if m.external_id == statuses[3].id)
    reply_id = await reply_to(rig, target.conversation_id, "Dinsdag, tussen 7 en 16 uur.")
    await deliver_until(rig, [reply_id])
    posts = fake_server.fake.posts("mastodon", "gemeente")
    assert [(p.in_reply_to, p.visibility) for p in posts] == [(statuses[3].id, "unlisted")]
    assert posts[0].idempotency_key == (await reply_state(rig.harness.db, reply_id)).idempotency_key


@pytest.mark.parametrize("platform", ["x", "mastodon"])
async def test_faults_lose_and_double_nothing(rig: Rig, fake_server: FakeServer, platform: str) -> None:
    """429s with a reset, bursts of 5xx, slow answers and lost responses to posts, over a few hundred messages."""
    fake = fake_server.fake
    make = x_account if platform == "x" else mastodon_account
    inject = fake.inject_x_mention if platform == "x" else fake.inject_mastodon_mention
    account = await make(rig, fake_server, "drukte", page_size=20, timeout=1)
    await rig.poller.poll_due()
    reading = "/mentions" if platform == "x" else "/notifications"
    posting = "^/2/tweets$" if platform == "x" else "^/api/v1/statuses$"
    fake.add_fault("status", platform=platform, path=reading, status=429, reset=time.time() + 1, times=2)
    fake.add_fault("status", platform=platform, path=reading, status=503, times=3)
    fake.add_fault("delay", platform=platform, path=reading, delay=2.0, times=2)  # longer than the 1 s timeout
    expected = set()
    for i in range(200):
        expected.add(inject("drukte", f"Melding {i}: de lantaarnpaal is kapot", author=f"p{i % 17}").id)
        if i % 40 == 39:
            await make_due(rig.harness.db, account["id"])
            await rig.poller.poll_due()

    async def all_in() -> bool:
        await make_due(rig.harness.db, account["id"])
        await rig.poller.poll_due()
        return len(await inbound(rig.harness.db, account["id"])) >= len(expected)

    await until(all_in, 90, "every mention in the inbox")
    messages = await inbound(rig.harness.db, account["id"])
    assert sorted(m.external_id for m in messages) == sorted(expected), "every message exactly once"

    conversations = sorted({m.conversation_id for m in messages})[:30]
    fake.add_fault("drop", platform=platform, method="POST", path=posting, times=4)
    fake.add_fault("error_after", platform=platform, method="POST", path=posting, status=502, times=3)
    fake.add_fault("status", platform=platform, method="POST", path=posting, status=429, reset=time.time() + 1,
                   times=2)
    fake.add_fault("status", platform=platform, method="POST", path=posting, status=500, times=2)
    replies = [await reply_to(rig, c, f"Dank voor uw melding {c}, we gaan ermee aan de slag.") for c in conversations]
    await deliver_until(rig, replies, within=120)
    posts = fake.posts(platform, "drukte")
    assert len(posts) == len(replies), "every reply on the platform exactly once"
    by_reply = set()
    for r in replies:
        by_reply.add((await reply_state(rig.harness.db, r)).external_id)
    assert by_reply == {p.id for p in posts}


async def test_expired_credentials_stop_polling_and_show_in_health(rig: Rig, fake_server: FakeServer) -> None:
    account = await mastodon_account(rig, fake_server, "verlopen")
    with fake_server.fake.lock:
        fake_server.fake.mastodon_account("verlopen").revoked = True
    await rig.poller.poll_due()
    health = (await rig.admin.get(f"/api/accounts/{account['id']}")).json()["health"]
    assert health["needs_reauth"] is True and health["last_error"]
    await make_due(rig.harness.db, account["id"])
    assert await rig.poller.poll_due() == 0, "an account whose credentials expired is not polled"
    token = fake_server.fake.add_mastodon_account("verlopen").access_token
    r = await rig.admin.patch(f"/api/accounts/{account['id']}", json={"credentials": {"access_token": token}})
    assert r.status_code == 200 and r.json()["health"]["needs_reauth"] is False
    assert await rig.poller.poll_due() == 1


async def test_a_failed_reply_shows_why_and_a_person_can_retry_it(rig: Rig, fake_server: FakeServer) -> None:
    account = await x_account(rig, fake_server, "weigeraar")
    await rig.poller.poll_due()
    fake_server.fake.inject_x_mention("weigeraar", "Hallo?")
    await make_due(rig.harness.db, account["id"])
    [message] = await poll_until(rig, account["id"], 1)
    fake_server.fake.add_fault("status", platform="x", method="POST", path="^/2/tweets$", status=403, times=1)
    reply_id = await reply_to(rig, message.conversation_id, "Goedemiddag!")
    await deliver_until(rig, [reply_id], states=("failed",))
    detail = (await rig.agent.get(f"/api/conversations/{message.conversation_id}")).json()
    [out] = [m for m in detail["messages"] if m["direction"] == "out"]
    assert out["state"] == "failed" and out["reply"]["error"]
    assert fake_server.fake.posts("x", "weigeraar") == []

    r = await rig.agent.post(f"/api/replies/{reply_id}/retry")
    assert r.status_code == 200 and r.json()["reply"]["state"] == "queued"
    assert (await rig.agent.post(f"/api/replies/{reply_id}/retry")).status_code == 409
    await deliver_until(rig, [reply_id])
    assert len(fake_server.fake.posts("x", "weigeraar")) == 1


async def test_two_pollers_never_poll_one_account_at_once(rig: Rig, fake_server: FakeServer) -> None:
    accounts = [await mastodon_account(rig, fake_server, f"afdeling{i}") for i in range(4)]
    other = Poller(rig.harness.db, rig.pool, "other-worker", backoff_base=0.01, backoff_cap=0.05)
    fake_server.fake.add_fault("delay", platform="mastodon", path="/notifications", delay=0.3, times=None)
    before = len(fake_server.fake.requests)
    polled = await asyncio.gather(rig.poller.poll_due(), other.poll_due())
    assert sum(polled) == len(accounts), "each due account taken by exactly one of the two"
    fetches = [r for r in fake_server.fake.requests[before:] if r["path"].endswith("/notifications")]
    per_account: dict[str, int] = {}
    for r in fetches:
        per_account[r["account"]] = per_account.get(r["account"], 0) + 1
    assert per_account == {f"afdeling{i}": 1 for i in range(4)}


async def test_api_channel_replies_go_to_the_signed_callback(rig: Rig) -> None:
    secret = "callback-" + secrets.token_hex(8)
    received: list[dict[str, Any]] = []
    answers = [500, 200]

    async def callback(request: Request) -> JSONResponse:
        body = await request.body()
        expected = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
        if not hmac.compare_digest(request.headers.get("x-webcare-signature", ""), expected):
            return JSONResponse({"error": "bad signature"}, 401)
        received.append(json.loads(body))
        status = answers.pop(0) if answers else 200
        return JSONResponse({"id": f"site-{len(received)}"}, status)

    with ServerThread(Starlette(routes=[Route("/hook", callback, methods=["POST"])])) as hook:
        r = await rig.admin.post("/api/accounts", json={
            "platform": "api", "handle": "site", "name": "Website", "department_id": await department(rig.admin),
            "settings": {}, "credentials": {"secret": secret}})
        account = r.json()
        conv = (await rig.harness.inbound(rig.admin, account["id"], external_id="form-1"))["conversation_id"]
        reply_id = await reply_to(rig, conv, "We bellen u morgen terug.")
        await rig.outbox.drain()
        assert (await reply_state(rig.harness.db, reply_id)).state == "queued", "no callback_url: it waits"
        assert received == []

        r = await rig.admin.patch(f"/api/accounts/{account['id']}",
                                  json={"settings": {"callback_url": f"{hook.url}/hook"}})
        assert r.status_code == 200, r.text
        async with rig.harness.db.write() as tx:  # due now rather than after the 30 s wait
            await tx.session.execute(sa.update(Reply).where(Reply.id == reply_id).values(next_attempt_at=tx.now))
        await deliver_until(rig, [reply_id])
    reply = await reply_state(rig.harness.db, reply_id)
    assert [b["reply_id"] for b in received] == [reply_id, reply_id], "a 500, then delivered"
    assert received[-1]["in_reply_to"] == "form-1" and received[-1]["text"] == "We bellen u morgen terug."
    assert reply.external_id == "site-2"
    async with rig.harness.db.read() as s:
        types = list(await s.scalars(sa.select(Event.type).where(Event.conversation_id == conv).order_by(Event.seq)))
        status = await s.scalar(sa.select(Conversation.status).where(Conversation.id == conv))
    assert types[-1] == "reply.sent" and status == "answered"
