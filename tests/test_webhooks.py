"""Meta webhooks over real HTTP, signed by the fake Graph platform: the handshake, deliveries repeated and
reordered, and every way a signature can be wrong. No poller runs here, so whatever is stored came in
through the webhook."""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from connectors.fake.graph_webhooks import comment_event, deliver, mention_event, message_event, sign
from tests.conftest import FakeServer, Harness, ServerThread, make_settings
from tests.test_workers import department, until
from webcare.app import create_app
from webcare.connections import ConnectorPool
from webcare.db import Database
from webcare.models import Message, WebhookDelivery
from webcare.security import Keys
from webcare.webhooks import Deliveries

pytestmark = pytest.mark.anyio


@pytest.fixture
async def app(db_url: str) -> AsyncIterator[Harness]:
    settings = make_settings(db_url)
    db = Database(db_url)
    with ServerThread(create_app(settings, workers=False)) as running:
        harness = Harness(running.url, settings, db)
        try:
            yield harness
        finally:
            for c in harness.clients:
                await c.aclose()
            await db.dispose()


async def connect(app: Harness, fake: FakeServer, platform: str = "facebook") -> tuple[dict[str, Any], Any]:
    admin, _ = await app.token_client("admin")
    page = fake.fake.graph.add_page(f"pagina{secrets.token_hex(2)}", instagram=f"insta{secrets.token_hex(2)}")
    settings = {"base_url": f"{fake.url}/graph", "page_id": page.id, "verify_token": "v-" + secrets.token_hex(6)}
    credentials = {"app_secret": page.app_secret}
    if platform == "facebook":
        credentials["page_access_token"] = page.token
    else:
        settings["ig_user_id"] = page.ig_user_id
        credentials["access_token"] = page.token
    r = await admin.post("/api/accounts", json={"platform": platform, "handle": page.username, "name": page.name,
                                                "department_id": await department(admin), "settings": settings,
                                                "credentials": credentials})
    assert r.status_code == 201, r.text
    return dict(r.json()), page


async def stored(db: Database, account_id: int) -> list[str]:
    async with db.read() as s:
        return sorted(await s.scalars(sa.select(Message.external_id).where(Message.account_id == account_id)))


async def test_the_verification_handshake(app: Harness, fake_server: FakeServer) -> None:
    account, _ = await connect(app, fake_server)
    client = app.client()
    token = account["settings"]["verify_token"]
    r = await client.get("/webhooks/meta", params={"hub.mode": "subscribe", "hub.verify_token": token,
                                                    "hub.challenge": "1158201444"})
    assert (r.status_code, r.text) == (200, "1158201444")
    for params in ({"hub.mode": "subscribe", "hub.verify_token": "wrong", "hub.challenge": "1"},
                   {"hub.mode": "unsubscribe", "hub.verify_token": token, "hub.challenge": "1"}, {}):
        assert (await client.get("/webhooks/meta", params=params)).status_code == 403


async def test_a_delivery_sent_three_times_out_of_order_is_stored_once(app: Harness,
                                                                        fake_server: FakeServer) -> None:
    account, page = await connect(app, fake_server)
    w = fake_server.fake.graph
    post = w.add_post(page, "De brug is vanaf maandag dicht.")
    anna = w.person("anna", "Anna")
    first = w.add_comment("facebook", post.id, anna.id, "Hoe lang?")
    again = w.add_comment("facebook", post.id, anna.id, "En voor fietsers?", parent_id=first.id)
    other = w.add_comment("facebook", post.id, w.person("bob").id, "Eindelijk")
    dm = w.add_direct_message(page, "messenger", anna.id, "Mag ik u iets vragen?")
    payloads = [comment_event(w, again), comment_event(w, other), message_event(w, dm), comment_event(w, first)]
    statuses = await deliver(f"{app.url}/webhooks/meta", page.app_secret, payloads, times=3, shuffle=True)
    assert statuses == [200] * 12
    expected = sorted([first.id, again.id, other.id, dm.id])

    async def all_in() -> bool:
        return await stored(app.db, account["id"]) == expected

    await until(all_in, 30, "the webhook's messages")
    async with app.db.read() as s:
        rows = {m.external_id: m for m in await s.scalars(sa.select(Message).where(
            Message.account_id == account["id"]))}
    assert rows[first.id].conversation_id == rows[again.id].conversation_id != rows[other.id].conversation_id
    assert "De brug" in rows[first.id].text, "read back from Graph: the post is shown as context"
    # The same deliveries once more, later: nothing new.
    await deliver(f"{app.url}/webhooks/meta", page.app_secret, payloads, times=1)
    assert await stored(app.db, account["id"]) == expected


async def test_instagram_comments_and_mentions_by_webhook(app: Harness, fake_server: FakeServer) -> None:
    account, page = await connect(app, fake_server, "instagram")
    w = fake_server.fake.graph
    medium = w.add_medium(str(page.ig_user_id), "Nieuwe afvalbakken in het park")
    comment = w.add_comment("instagram", medium.id, w.person("carla").id, "Mooi! Maar waar precies?")
    mention_media = w.add_medium(str(page.ig_user_id), "a post by @dirk", owner_id=w.person("dirk").id)
    mention = w.add_comment("instagram", mention_media.id, w.person("dirk").id, "@gemeente de bak is vol")
    payloads = [comment_event(w, comment), mention_event(page, mention)]
    assert await deliver(f"{app.url}/webhooks/meta", page.app_secret, payloads, times=2, shuffle=True) == [200] * 4

    async def both() -> bool:
        return await stored(app.db, account["id"]) == sorted([comment.id, mention.id])

    await until(both, 30, "the Instagram comment and mention")


@pytest.mark.parametrize("case", ["wrong secret", "missing", "wrong algorithm", "sha1 only", "truncated body",
                                  "not hex"])
async def test_a_bad_signature_gets_401_and_stores_nothing(app: Harness, fake_server: FakeServer, case: str) -> None:
    account, page = await connect(app, fake_server)
    w = fake_server.fake.graph
    comment = w.add_comment("facebook", w.add_post(page, "Post").id, w.person("eve").id, "Hallo")
    body = json.dumps(comment_event(w, comment)).encode()
    headers = sign(page.app_secret, body)
    if case == "wrong secret":
        headers = sign("not-the-secret", body)
    elif case == "missing":
        del headers["X-Hub-Signature-256"]
    elif case == "wrong algorithm":
        headers["X-Hub-Signature-256"] = "sha1=" + hmac.new(page.app_secret.encode(), body, hashlib.sha1).hexdigest()
    elif case == "sha1 only":
        del headers["X-Hub-Signature-256"]  # the legacy header alone is not enough
    elif case == "truncated body":
        body = body[:-7]
    elif case == "not hex":
        headers["X-Hub-Signature-256"] = "sha256=" + "z" * 64
    async with httpx.AsyncClient(timeout=10) as client:
        r = await client.post(f"{app.url}/webhooks/meta", content=body, headers=headers)
    assert r.status_code == 401 and r.json()["error"]["code"] == "invalid_signature"
    # A valid delivery afterwards is processed: had the bad one been accepted, its work would be done by now too.
    other = w.add_comment("facebook", comment.object_id, w.person("eve").id, "Nog een vraag")
    await deliver(f"{app.url}/webhooks/meta", page.app_secret, [comment_event(w, other)])

    async def processed() -> bool:
        return await stored(app.db, account["id"]) != []

    await until(processed, 30, "the valid delivery")
    assert await stored(app.db, account["id"]) == [other.id]
    async with app.db.read() as s:
        deliveries = list(await s.scalars(sa.select(WebhookDelivery)))
    assert [[e["changes"][0]["value"]["comment_id"] for e in d.payload["entry"]] for d in deliveries] == [[other.id]], \
        "only the valid delivery was stored"


async def test_a_delivery_whose_processing_failed_is_processed_by_the_sweep_once(app: Harness,
                                                                                 fake_server: FakeServer) -> None:
    """An Instagram mention (which no poll can find) accepted with 200, then reading it back fails: the stored
    delivery waits, and the sweep brings the mention in once, however often it runs or Meta repeats itself."""
    account, page = await connect(app, fake_server, "instagram")
    w = fake_server.fake.graph
    author = w.person("gerrit")
    medium = w.add_medium(str(page.ig_user_id), "a post by @gerrit", owner_id=author.id)
    mention = w.add_comment("instagram", medium.id, author.id, "@gemeente de lantaarnpaal is kapot")
    fake_server.fake.add_fault("status", platform="graph", method="GET", path=f"/{page.ig_user_id}$", status=503,
                               times=1)
    assert await deliver(f"{app.url}/webhooks/meta", page.app_secret, [mention_event(page, mention)]) == [200]

    async def failed() -> bool:
        async with app.db.read() as s:
            delivery = await s.scalar(sa.select(WebhookDelivery))
        return delivery is not None and delivery.last_error is not None

    await until(failed, 30, "the first attempt to fail")
    assert await stored(app.db, account["id"]) == []
    pool = ConnectorPool(Keys(app.settings.secret_key), timeout=5)
    sweeper = Deliveries(app.db, pool, lease_seconds=30)
    try:
        assert await sweeper.sweep() == 0, "the failed delivery waits for its backoff"
        async with app.db.write() as tx:
            await tx.session.execute(sa.update(WebhookDelivery).values(next_attempt_at=tx.now))
        assert await sweeper.sweep() == 1
        assert await stored(app.db, account["id"]) == [mention.id]
        async with app.db.read() as s:
            [delivery] = list(await s.scalars(sa.select(WebhookDelivery)))
        assert delivery.done and delivery.done_at is not None and delivery.attempts == 2 and delivery.last_error is None
        assert delivery.payload["entry"][0]["changes"][0]["value"] == {"media_id": medium.id, "comment_id": mention.id}
        async with app.db.write() as tx:
            await tx.session.execute(sa.update(WebhookDelivery).values(next_attempt_at=tx.now))
        assert await sweeper.sweep() == 0, "a done delivery is not taken again"
        # Meta delivers it once more, and the repeat is swept too: still one message.
        assert await deliver(f"{app.url}/webhooks/meta", page.app_secret, [mention_event(page, mention)]) == [200]

        async def both_done() -> bool:
            async with app.db.read() as s:
                return list(await s.scalars(sa.select(WebhookDelivery.done))) == [True, True]

        await until(both_done, 30, "the repeated delivery to be processed")
        assert await stored(app.db, account["id"]) == [mention.id]
        async with app.db.read() as s:
            [message] = list(await s.scalars(sa.select(Message).where(Message.account_id == account["id"])))
        assert "lantaarnpaal" in message.text
    finally:
        await pool.aclose()


async def test_an_item_deleted_before_it_is_read_back_does_not_hold_up_the_rest(app: Harness,
                                                                                 fake_server: FakeServer) -> None:
    account, page = await connect(app, fake_server)
    w = fake_server.fake.graph
    post = w.add_post(page, "Werkzaamheden aan de dijk")
    gone = w.add_comment("facebook", post.id, w.person("ilse").id, "Spam spam spam")
    kept = w.add_comment("facebook", post.id, w.person("jan").id, "Tot wanneer?")
    delivery = comment_event(w, gone)
    delivery["entry"] += comment_event(w, kept)["entry"]
    with fake_server.fake.lock:
        del w.comments[gone.id]  # removed by its author before we read it back
    assert await deliver(f"{app.url}/webhooks/meta", page.app_secret, [delivery]) == [200]

    async def done() -> bool:
        async with app.db.read() as s:
            return await s.scalar(sa.select(WebhookDelivery.done)) is True

    await until(done, 30, "the delivery to be processed")
    assert await stored(app.db, account["id"]) == [kept.id]
