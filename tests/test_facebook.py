"""A Facebook Page against the fake Graph API over real HTTP: comments and Messenger polled into
conversations, replies delivered exactly once through faults, the 24-hour window, hiding comments and
usage headers slowing the polls down."""

from __future__ import annotations

import json
import secrets
import time
from typing import Any

import pytest
import sqlalchemy as sa

from connectors.fake.graph_state import GraphPage
from tests.conftest import FakeServer
from tests.workrig import Rig, deliver_until, department, inbound, make_due, poll_until, reply_state, reply_to
from webcare.models import Account, Event

pytestmark = pytest.mark.anyio


async def facebook_account(rig: Rig, fake: FakeServer, username: str, **settings: Any) -> tuple[dict[str, Any],
                                                                                              GraphPage]:
    page = fake.fake.graph.add_page(username, f"Gemeente {username}")
    r = await rig.admin.post("/api/accounts", json={
        "platform": "facebook", "handle": username, "name": page.name, "department_id": await department(rig.admin),
        "settings": {"base_url": f"{fake.url}/graph", "page_id": page.id, "verify_token": secrets.token_hex(8),
                     "poll_interval": 1, **settings},
        "credentials": {"page_access_token": page.token, "app_secret": page.app_secret}})
    assert r.status_code == 201, r.text
    return dict(r.json()), page


async def test_comment_trees_become_conversations_per_commenter_and_replies_go_under_them(
        rig: Rig, fake_server: FakeServer) -> None:
    w = fake_server.fake.graph
    account, page = await facebook_account(rig, fake_server, "stad")
    post = w.add_post(page, "Vanaf maandag is de milieustraat op zondag open.")
    await rig.poller.poll_due()  # starts from now
    anna, bert = w.person("anna", "Anna de Boer"), w.person("bert", "Bert Smit")
    first = w.add_comment("facebook", post.id, anna.id, "Ook in de zomer?")
    other = w.add_comment("facebook", post.id, bert.id, "Eindelijk!")
    butting_in = w.add_comment("facebook", post.id, bert.id, "Anna, kijk op de site.", parent_id=first.id)
    follow_up = w.add_comment("facebook", post.id, anna.id, "En op feestdagen?", parent_id=first.id)
    await make_due(rig.harness.db, account["id"])
    messages = await poll_until(rig, account["id"], 4)
    by_id = {m.external_id: m for m in messages}
    assert by_id[first.id].conversation_id == by_id[follow_up.id].conversation_id, "Anna's thread"
    assert len({by_id[i].conversation_id for i in (first.id, other.id, butting_in.id)}) == 3, "one per commenter"
    assert "milieustraat" in by_id[first.id].text, "the post is shown as context"
    assert "replying to Anna de Boer" in by_id[butting_in.id].text and by_id[follow_up.id].text == "En op feestdagen?"

    reply_id = await reply_to(rig, by_id[first.id].conversation_id, "Ja, het hele jaar door.")
    await deliver_until(rig, [reply_id])
    [posted] = fake_server.fake.posts("facebook", "stad")
    assert posted.in_reply_to == first.id, "under Anna's top-level comment"
    assert w.comments[posted.id].from_id == page.id
    await make_due(rig.harness.db, account["id"])
    await rig.poller.poll_due()
    assert len(await inbound(rig.harness.db, account["id"])) == 4, "our own reply is not taken in"


async def test_messenger_conversations_and_the_24_hour_window(rig: Rig, fake_server: FakeServer) -> None:
    w = fake_server.fake.graph
    account, page = await facebook_account(rig, fake_server, "loket")
    await rig.poller.poll_due()
    carla, dirk = w.person("carla", "Carla"), w.person("dirk", "Dirk")
    fresh = [w.add_direct_message(page, "messenger", carla.id, f"Hallo {i}") for i in range(3)]
    stale = w.add_direct_message(page, "messenger", dirk.id, "Gisteren gevraagd", ago=10)
    await make_due(rig.harness.db, account["id"])
    messages = await poll_until(rig, account["id"], 4)
    by_id = {m.external_id: m for m in messages}
    assert len({by_id[m.id].conversation_id for m in fresh}) == 1, "one conversation per person"
    # Dirk wrote 25 hours ago (by the platform's and our clock): the window is closed.
    async with rig.harness.db.write() as tx:
        from webcare.models import Message
        await tx.session.execute(sa.update(Message).where(Message.external_id == stale.id)
                                 .values(created_at=tx.now - __import__("datetime").timedelta(hours=25)))
    r = await rig.agent.post(f"/api/conversations/{by_id[stale.id].conversation_id}/replies", json={"text": "Sorry!"})
    assert r.status_code == 422 and r.json()["error"]["code"] == "reply_window_closed", r.text
    assert "24" in r.json()["error"]["message"]

    reply_id = await reply_to(rig, by_id[fresh[0].id].conversation_id, "Goedemiddag Carla, waarmee kan ik helpen?")
    await deliver_until(rig, [reply_id])
    [posted] = fake_server.fake.posts("facebook", "loket")
    assert (posted.kind, posted.thread_id) == ("dm", carla.id)
    assert (await reply_state(rig.harness.db, reply_id)).external_id == posted.id


@pytest.mark.parametrize("stream", ["comments", "messenger"])
async def test_faults_lose_and_double_nothing(rig: Rig, fake_server: FakeServer, stream: str) -> None:
    """Graph throttling (code 613 with Retry-After, code 32), transient codes 1/2, answers slower than the
    timeout and lost responses to posts, over two hundred messages and thirty replies."""
    fake = fake_server.fake
    w = fake.graph
    account, page = await facebook_account(rig, fake_server, "drukte", timeout=1)
    posts = [w.add_post(page, f"Bericht {i}") for i in range(4)]
    await rig.poller.poll_due()
    reading = r"/comments$|/feed$" if stream == "comments" else r"/conversations$|/messages$"
    throttle = {"error": {"message": "(#613) Calls to this api have exceeded the rate limit.", "type": "OAuthException",
                          "code": 613}}
    fake.add_fault("status", platform="graph", method="GET", path=reading, status=400, body=throttle,
                   headers={"Retry-After": "1"}, times=2)
    fake.add_fault("status", platform="graph", method="GET", path=reading, status=503, times=3)
    fake.add_fault("status", platform="graph", method="GET", path=reading, status=500, times=1)
    fake.add_fault("delay", platform="graph", method="GET", path=reading, delay=2.0, times=2)
    expected = set()
    for i in range(200):
        author = w.person(f"p{i % 17}")
        if stream == "comments":
            expected.add(w.add_comment("facebook", posts[i % 4].id, author.id, f"Melding {i}").id)
        else:
            expected.add(w.add_direct_message(page, "messenger", author.id, f"Melding {i}").id)
        if i % 40 == 39:
            await make_due(rig.harness.db, account["id"])
            await rig.poller.poll_due()

    async def all_in() -> bool:
        await make_due(rig.harness.db, account["id"])
        await rig.poller.poll_due()
        return len(await inbound(rig.harness.db, account["id"])) >= len(expected)

    from tests.workrig import until
    await until(all_in, 90, "every message in the inbox")
    messages = await inbound(rig.harness.db, account["id"])
    assert sorted(m.external_id for m in messages) == sorted(expected), "every message exactly once"

    conversations = sorted({m.conversation_id for m in messages})[:30]
    posting = r"/comments$" if stream == "comments" else r"/messages$"
    fake.add_fault("drop", platform="graph", method="POST", path=posting, times=4)
    fake.add_fault("error_after", platform="graph", method="POST", path=posting, status=502, times=3)
    fake.add_fault("status", platform="graph", method="POST", path=posting, status=400, body=throttle,
                   headers={"Retry-After": "1"}, times=2)
    fake.add_fault("status", platform="graph", method="POST", path=posting, status=500, times=2)
    replies = [await reply_to(rig, c, f"Dank voor uw melding {c}, we gaan ermee aan de slag.") for c in conversations]
    await deliver_until(rig, replies, within=120)
    posted = fake.posts(None, "drukte")
    assert len(posted) == len(replies), "every reply on the platform exactly once"
    assert {(await reply_state(rig.harness.db, r)).external_id for r in replies} == {p.id for p in posted}


async def test_hiding_and_unhiding_a_comment_is_logged(rig: Rig, fake_server: FakeServer) -> None:
    w = fake_server.fake.graph
    account, page = await facebook_account(rig, fake_server, "moderatie")
    post = w.add_post(page, "Nieuwe openingstijden")
    await rig.poller.poll_due()
    comment = w.add_comment("facebook", post.id, w.person("troll").id, "Koop nu goedkope zonnebrillen!!!")
    await make_due(rig.harness.db, account["id"])
    [message] = await poll_until(rig, account["id"], 1)
    base = f"/api/conversations/{message.conversation_id}/messages/{message.id}"
    r = await rig.agent.post(f"{base}/hide")
    assert r.status_code == 200 and r.json()["hidden"] is True, r.text
    assert w.comments[comment.id].hidden is True
    r = await rig.agent.post(f"{base}/unhide")
    assert r.status_code == 200 and w.comments[comment.id].hidden is False
    async with rig.harness.db.read() as s:
        events = list(await s.scalars(sa.select(Event).where(Event.conversation_id == message.conversation_id,
                                                             Event.type.like("message.%hidden"))
                                      .order_by(Event.seq)))
    assert [(e.type, e.data["message_id"]) for e in events] == [("message.hidden", message.id),
                                                                ("message.unhidden", message.id)]
    assert (await rig.agent.post(f"/api/conversations/{message.conversation_id}/messages/999999/hide")
            ).status_code == 404


async def test_usage_headers_slow_polling_before_the_limit(rig: Rig, fake_server: FakeServer) -> None:
    fake = fake_server.fake
    account, page = await facebook_account(rig, fake_server, "zuinig", messenger=False)
    posts = [fake.graph.add_post(page, f"Post {i}") for i in range(12)]
    for post in posts:
        fake.graph.add_comment("facebook", post.id, fake.graph.person("q").id, "Vraag", ago=1)
    with fake.lock:
        fake.limits["graph"] = (10, 3600)
    await rig.poller.poll_due()
    await make_due(rig.harness.db, account["id"])
    await rig.poller.poll_due()
    calls = [r for r in fake.requests if r["platform"] == "graph"]
    assert len(calls) <= 10, "stopped asking before the quota ran out"
    async with rig.harness.db.read() as s:
        stored = await s.get(Account, account["id"])
        assert stored is not None
    assert stored.last_error and "usage" in stored.last_error
    assert stored.next_poll_at is not None and stored.next_poll_at.timestamp() > time.time() + 30
    assert json.loads(json.dumps(stored.cursor))["comments"].get("queue"), "the rest waits in the cursor"
