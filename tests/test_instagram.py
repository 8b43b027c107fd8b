"""An Instagram business account against the fake Graph API over real HTTP: comments and their replies on
the account's media polled into conversations, direct messages where the access allows, replies to both
delivered exactly once through faults, the 24-hour window, hiding comments and usage headers."""

from __future__ import annotations

import datetime as dt
import json
import secrets
import time
from typing import Any

import pytest
import sqlalchemy as sa

from connectors.fake.graph_state import GraphPage
from tests.conftest import FakeServer
from tests.workrig import (
    Rig,
    deliver_until,
    department,
    inbound,
    make_due,
    poll_until,
    reply_state,
    reply_to,
    until,
)
from webcare.models import Account, Event, Message

pytestmark = pytest.mark.anyio


async def instagram_account(rig: Rig, fake: FakeServer, username: str, *, instagram_messaging: bool = True,
                            **settings: Any) -> tuple[dict[str, Any], GraphPage]:
    page = fake.fake.graph.add_page(f"{username}-page", f"Gemeente {username}", instagram=username,
                                    instagram_messaging=instagram_messaging)
    r = await rig.admin.post("/api/accounts", json={
        "platform": "instagram", "handle": username, "name": page.name, "department_id": await department(rig.admin),
        "settings": {"base_url": f"{fake.url}/graph", "ig_user_id": page.ig_user_id, "page_id": page.id,
                     "verify_token": secrets.token_hex(8), "poll_interval": 1, **settings},
        "credentials": {"access_token": page.token, "app_secret": page.app_secret}})
    assert r.status_code == 201, r.text
    return dict(r.json()), page


async def test_comments_and_replies_on_media_become_conversations_per_commenter(
        rig: Rig, fake_server: FakeServer) -> None:
    w = fake_server.fake.graph
    account, page = await instagram_account(rig, fake_server, "stad.nl")
    ig = str(page.ig_user_id)
    medium = w.add_medium(ig, "Het nieuwe zwembad opent op 1 juni.")
    other_medium = w.add_medium(ig, "Kom naar de open dag")
    await rig.poller.poll_due()  # starts from now
    anna, bert = w.person("anna.db"), w.person("bert_s")
    first = w.add_comment("instagram", medium.id, anna.id, "Is er ook een peuterbad?")
    other = w.add_comment("instagram", medium.id, bert.id, "Eindelijk!")
    butting_in = w.add_comment("instagram", medium.id, bert.id, "Anna, ja hoor.", parent_id=first.id)
    follow_up = w.add_comment("instagram", medium.id, anna.id, "En tot hoe laat?", parent_id=first.id)
    elsewhere = w.add_comment("instagram", other_medium.id, anna.id, "Hoe laat begint het?")
    await make_due(rig.harness.db, account["id"])
    messages = await poll_until(rig, account["id"], 5)
    by_id = {m.external_id: m for m in messages}
    assert set(by_id) == {first.id, other.id, butting_in.id, follow_up.id, elsewhere.id}
    assert by_id[first.id].conversation_id == by_id[follow_up.id].conversation_id, "Anna's thread"
    assert len({by_id[i].conversation_id for i in (first.id, other.id, butting_in.id, elsewhere.id)}) == 4, \
        "one conversation per commenter and thread"
    assert "zwembad" in by_id[first.id].text and "open dag" in by_id[elsewhere.id].text, "the media as context"
    assert "replying to @anna.db" in by_id[butting_in.id].text and by_id[follow_up.id].text == "En tot hoe laat?"
    async with rig.harness.db.read() as s:
        handles = set(await s.scalars(sa.select(Message.author_handle).where(Message.account_id == account["id"])))
    assert handles == {"anna.db", "bert_s"}

    reply_id = await reply_to(rig, by_id[first.id].conversation_id, "Ja, met een glijbaan.")
    await deliver_until(rig, [reply_id])
    [posted] = fake_server.fake.posts("instagram", "stad.nl-page")
    assert posted.in_reply_to == first.id, "under Anna's top-level comment"
    assert w.comments[posted.id].from_id == ig and w.comments[posted.id].parent_id == first.id
    assert (await reply_state(rig.harness.db, reply_id)).external_id == posted.id
    # Our reply moves the medium's comment count: the medium is read again, and our reply is not taken in.
    later = w.add_comment("instagram", medium.id, anna.id, "Dank je!", parent_id=first.id)
    await make_due(rig.harness.db, account["id"])
    messages = await poll_until(rig, account["id"], 6)
    assert {m.external_id for m in messages} == {*by_id, later.id}
    assert {m.conversation_id for m in messages if m.external_id == later.id} == {by_id[first.id].conversation_id}


async def test_direct_messages_and_the_24_hour_window(rig: Rig, fake_server: FakeServer) -> None:
    w = fake_server.fake.graph
    account, page = await instagram_account(rig, fake_server, "loket.nl")
    await rig.poller.poll_due()
    carla, dirk = w.person("carla"), w.person("dirk")
    fresh = [w.add_direct_message(page, "instagram", carla.id, f"Hoi {i}") for i in range(3)]
    stale = w.add_direct_message(page, "instagram", dirk.id, "Gisteren gevraagd", ago=10)
    await make_due(rig.harness.db, account["id"])
    messages = await poll_until(rig, account["id"], 4)
    by_id = {m.external_id: m for m in messages}
    assert set(by_id) == {*(m.id for m in fresh), stale.id}
    assert len({by_id[m.id].conversation_id for m in fresh}) == 1, "one conversation per person"
    assert by_id[fresh[0].id].author_handle == "carla"

    # Dirk wrote 25 hours ago: the window is closed, and the inbox says so before anything is queued.
    async with rig.harness.db.write() as tx:
        await tx.session.execute(sa.update(Message).where(Message.external_id == stale.id)
                                 .values(created_at=tx.now - dt.timedelta(hours=25)))
    r = await rig.agent.post(f"/api/conversations/{by_id[stale.id].conversation_id}/replies", json={"text": "Sorry!"})
    assert r.status_code == 422 and r.json()["error"]["code"] == "reply_window_closed", r.text
    assert "24 hours" in r.json()["error"]["message"] and "Instagram" in r.json()["error"]["message"]

    reply_id = await reply_to(rig, by_id[fresh[0].id].conversation_id, "Hoi Carla, waarmee kan ik helpen?")
    await deliver_until(rig, [reply_id])
    [posted] = fake_server.fake.posts("instagram", "loket.nl-page")
    assert (posted.kind, posted.thread_id) == ("dm", carla.id)
    assert (await reply_state(rig.harness.db, reply_id)).external_id == posted.id
    assert w.messages[posted.id].from_id == page.ig_user_id
    await make_due(rig.harness.db, account["id"])
    await rig.poller.poll_due()
    assert len(await inbound(rig.harness.db, account["id"])) == 4, "our own message is not taken in"

    # When the platform's clock says the window closed (ours said it was open), the reply fails with Meta's reason.
    with fake_server.fake.lock:
        for m in w.thread_messages(w.messages[fresh[0].id].thread_id):
            m.created -= 25 * 3600
    late = await reply_to(rig, by_id[fresh[0].id].conversation_id, "Nog iets?")
    await deliver_until(rig, [late], states=("failed",))
    failed = await reply_state(rig.harness.db, late)
    assert failed.last_error and "24-hour window" in failed.last_error, failed.last_error
    assert len(fake_server.fake.posts("instagram", "loket.nl-page")) == 1


async def test_without_messaging_access_comments_go_on(rig: Rig, fake_server: FakeServer) -> None:
    w = fake_server.fake.graph
    account, page = await instagram_account(rig, fake_server, "geen.dm", instagram_messaging=False)
    medium = w.add_medium(str(page.ig_user_id), "Werk aan de weg")
    await rig.poller.poll_due()
    comment = w.add_comment("instagram", medium.id, w.person("erik").id, "Hoe lang duurt dit?")
    w.add_direct_message(page, "instagram", w.person("fenna").id, "Unseen")
    await make_due(rig.harness.db, account["id"])
    [message] = await poll_until(rig, account["id"], 1)
    assert message.external_id == comment.id
    async with rig.harness.db.read() as s:
        stored = await s.get(Account, account["id"])
        assert stored is not None
    assert stored.last_error is None and stored.cursor["dms"]["unavailable_until"]
    assert "instagram_manage_messages" in stored.cursor["dms"]["reason"]


@pytest.mark.parametrize("stream", ["comments", "dms"])
async def test_faults_lose_and_double_nothing(rig: Rig, fake_server: FakeServer, stream: str) -> None:
    """Throttling (code 613 with Retry-After, an HTTP 429 with Instagram's business-use-case code 80002), 5xx
    bursts, answers slower than the timeout and lost responses to posts, over two hundred messages and thirty
    replies."""
    fake = fake_server.fake
    w = fake.graph
    account, page = await instagram_account(rig, fake_server, "drukte.nl", timeout=1)
    ig = str(page.ig_user_id)
    media = [w.add_medium(ig, f"Bericht {i}") for i in range(4)]
    await rig.poller.poll_due()
    reading = r"/media$|/comments$" if stream == "comments" else r"/conversations$|/messages$"
    throttle = {"error": {"message": "(#613) Calls to this api have exceeded the rate limit.", "type": "OAuthException",
                          "code": 613}}
    usage = {"error": {"message": "(#80002) There have been too many calls to this Instagram account.",
                       "type": "OAuthException", "code": 80002, "fbtrace_id": "Afake"}}
    fake.add_fault("status", platform="graph", method="GET", path=reading, status=400, body=throttle,
                   headers={"Retry-After": "1"}, times=2)
    fake.add_fault("status", platform="graph", method="GET", path=reading, status=429, body=usage,
                   headers={"Retry-After": "1"}, times=1)
    fake.add_fault("status", platform="graph", method="GET", path=reading, status=503, times=3)
    fake.add_fault("status", platform="graph", method="GET", path=reading, status=500, times=1)
    fake.add_fault("delay", platform="graph", method="GET", path=reading, delay=2.0, times=2)
    expected = set()
    roots: list[str] = []
    for i in range(200):
        author = w.person(f"p{i % 17}")
        if stream == "comments":
            parent = roots[i % len(roots)] if i % 5 == 4 else None
            comment = w.add_comment("instagram", media[i % 4].id if parent is None else w.comments[parent].object_id,
                                    author.id, f"Melding {i}", parent_id=parent)
            expected.add(comment.id)
            if parent is None:
                roots.append(comment.id)
        else:
            expected.add(w.add_direct_message(page, "instagram", author.id, f"Melding {i}").id)
        if i % 40 == 39:
            await make_due(rig.harness.db, account["id"])
            await rig.poller.poll_due()

    async def all_in() -> bool:
        await make_due(rig.harness.db, account["id"])
        await rig.poller.poll_due()
        return len(await inbound(rig.harness.db, account["id"])) >= len(expected)

    await until(all_in, 90, "every message in the inbox")
    messages = await inbound(rig.harness.db, account["id"])
    assert sorted(m.external_id for m in messages) == sorted(expected), "every message exactly once"

    conversations = sorted({m.conversation_id for m in messages})[:30]
    posting = r"/replies$" if stream == "comments" else r"/messages$"
    fake.add_fault("drop", platform="graph", method="POST", path=posting, times=4)
    fake.add_fault("error_after", platform="graph", method="POST", path=posting, status=502, times=3)
    fake.add_fault("status", platform="graph", method="POST", path=posting, status=400, body=throttle,
                   headers={"Retry-After": "1"}, times=2)
    fake.add_fault("status", platform="graph", method="POST", path=posting, status=500, times=2)
    fake.add_fault("hang_after", platform="graph", method="POST", path=posting, delay=2.0, times=2)
    replies = [await reply_to(rig, c, f"Dank voor uw melding {c}, we gaan ermee aan de slag.") for c in conversations]
    await deliver_until(rig, replies, within=120)
    posted = fake.posts(None, "drukte.nl-page")
    assert not fake.faults, "every fault was met"
    assert len(posted) == len(replies), "every reply on the platform exactly once"
    assert {(await reply_state(rig.harness.db, r)).external_id for r in replies} == {p.id for p in posted}
    await make_due(rig.harness.db, account["id"])
    await rig.poller.poll_due()
    assert len(await inbound(rig.harness.db, account["id"])) == len(expected), "our replies are not taken in"


async def test_hiding_and_unhiding_a_comment_is_logged(rig: Rig, fake_server: FakeServer) -> None:
    w = fake_server.fake.graph
    account, page = await instagram_account(rig, fake_server, "moderatie.nl")
    medium = w.add_medium(str(page.ig_user_id), "Nieuwe openingstijden")
    await rig.poller.poll_due()
    comment = w.add_comment("instagram", medium.id, w.person("troll").id, "Koop nu goedkope zonnebrillen!!!")
    await make_due(rig.harness.db, account["id"])
    [message] = await poll_until(rig, account["id"], 1)
    base = f"/api/conversations/{message.conversation_id}/messages/{message.id}"
    r = await rig.agent.post(f"{base}/hide")
    assert r.status_code == 200 and r.json()["hidden"] is True, r.text
    assert w.comments[comment.id].hidden is True
    hides = [q for q in fake_server.fake.requests if q["method"] == "POST" and q["path"].endswith(f"/{comment.id}")]
    assert len(hides) == 1
    r = await rig.agent.post(f"{base}/unhide")
    assert r.status_code == 200 and w.comments[comment.id].hidden is False
    async with rig.harness.db.read() as s:
        events = list(await s.scalars(sa.select(Event).where(Event.conversation_id == message.conversation_id,
                                                             Event.type.like("message.%hidden"))
                                      .order_by(Event.seq)))
    assert [(e.type, e.data["message_id"], e.data["external_id"]) for e in events] == [
        ("message.hidden", message.id, comment.id), ("message.unhidden", message.id, comment.id)]
    # The platform down: nothing is logged, and the person is told to try again.
    fake_server.fake.add_fault("status", platform="graph", method="POST", path=f"/{comment.id}$", status=503,
                               times=1)
    r = await rig.agent.post(f"{base}/hide")
    assert r.status_code == 503 and r.json()["error"]["code"] == "platform_unavailable", r.text
    assert w.comments[comment.id].hidden is False
    async with rig.harness.db.read() as s:
        assert await s.scalar(sa.select(sa.func.count()).select_from(Event).where(
            Event.conversation_id == message.conversation_id, Event.type.like("message.%hidden"))) == 2


async def test_usage_headers_slow_polling_before_the_limit(rig: Rig, fake_server: FakeServer) -> None:
    """Twelve media with new comments and a quota of ten calls: the poll stops while the usage headers say
    the quota is nearly spent, keeps what it read, and reads the rest once the pause is over."""
    fake = fake_server.fake
    w = fake.graph
    account, page = await instagram_account(rig, fake_server, "zuinig.nl", direct_messages=False)
    media = [w.add_medium(str(page.ig_user_id), f"Post {i}") for i in range(12)]
    with fake.lock:
        fake.limits["graph"] = (10, 3600)
    await rig.poller.poll_due()
    asker = w.person("q")
    expected = {w.add_comment("instagram", m.id, asker.id, f"Vraag over {m.caption}").id for m in media}
    await make_due(rig.harness.db, account["id"])
    await rig.poller.poll_due()
    calls = [r for r in fake.requests if r["platform"] == "graph"]
    assert len(calls) <= 10, "stopped asking before the quota ran out"
    async with rig.harness.db.read() as s:
        stored = await s.get(Account, account["id"])
        assert stored is not None
    assert stored.last_error and "usage" in stored.last_error
    assert stored.next_poll_at is not None and stored.next_poll_at.timestamp() > time.time() + 30
    got = await inbound(rig.harness.db, account["id"])
    assert 0 < len(got) < len(expected), "what was read is kept"
    assert json.loads(json.dumps(stored.cursor))["since"] <= min(c.created for c in
                                                                 (w.comments[i] for i in expected)), \
        "the watermark waits for the media not yet read"

    # A fresh quota (and a fresh connector, as after the pause): the rest comes in, nothing twice.
    with fake.lock:
        fake.limits["graph"] = (4800, 3600)
        fake.windows.clear()
    await rig.pool.aclose()
    from webcare.connections import ConnectorPool
    from webcare.security import Keys
    rig.pool = ConnectorPool(Keys(rig.harness.settings.secret_key), timeout=3)
    rig.poller.connectors = rig.pool
    try:
        await make_due(rig.harness.db, account["id"])
        got = await poll_until(rig, account["id"], len(expected))
        assert sorted(m.external_id for m in got) == sorted(expected)
    finally:
        await rig.pool.aclose()
