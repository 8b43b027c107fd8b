"""The X connector: real tweepy, over real HTTP, against the fake X on loopback."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from connectors import make_connector
from connectors.base import AuthExpired, OutboundReply, Permanent, RateLimited, Transient
from connectors.fake.state import XAccount
from connectors.x import XConnector
from tests.conftest import FakeServer, free_port

pytestmark = pytest.mark.anyio


def connector(server: FakeServer, account: XAccount, **options: Any) -> XConnector:
    return XConnector.from_credentials(account.credentials(), base_url=server.x_url,
                                       timeout=options.pop("timeout", 10), **options)


def reply(text: str, in_reply_to: str | None, thread_id: str | None = None, key: str = "k-1") -> OutboundReply:
    return OutboundReply(reply_id=1, conversation_id=1, text=text, in_reply_to=in_reply_to, idempotency_key=key,
                         author_name="Anouk", thread_id=thread_id)


def requests_to(server: FakeServer, method: str, path_part: str) -> list[dict[str, Any]]:
    return [r for r in server.fake.requests if r["platform"] == "x" and r["method"] == method
            and path_part in r["path"]]


async def test_mentions_arrive_over_pages_and_the_cursor_moves_past_them(fake_server: FakeServer) -> None:
    fake = fake_server.fake
    account = fake.add_x_account("gemeente", "Gemeente")
    fake.inject_x_mention("gemeente", "old news", author="oud")
    x = connector(fake_server, account, page_size=5)

    start = await x.fetch(None)  # from now on: what was there stays out
    assert start.messages == [] and not start.has_more

    injected = [fake.inject_x_mention("gemeente", f"vraag {i} & meer", author=f"burger{i % 3}",
                                      author_name=f"Burger {i % 3}") for i in range(12)]
    cursor: dict[str, Any] = start.cursor
    seen, cursors = [], []
    for _ in range(10):
        page = await x.fetch(cursor)
        seen += page.messages
        cursor = page.cursor
        cursors.append(cursor)
        if not page.has_more:
            break
    assert [m.external_id for m in sorted(seen, key=lambda m: int(m.external_id))] == [t.id for t in injected]
    assert len(cursors) == 3
    # While paging, the lower bound stays where it was; only after the last page does it move up.
    assert cursors[0]["mentions"]["since_id"] == start.cursor["mentions"]["since_id"]
    assert cursors[0]["mentions"]["pagination_token"]
    assert cursors[-1]["mentions"] == {"since_id": injected[-1].id}

    first = next(m for m in seen if m.external_id == injected[0].id)
    assert first.text == "@gemeente vraag 0 & meer"
    assert (first.author.handle, first.author.name) == ("burger0", "Burger 0")
    assert first.kind == "mention" and first.in_reply_to is None
    assert first.created_at.tzinfo is not None

    again = await x.fetch(cursor)
    assert again.messages == [] and not again.has_more
    newer = fake.inject_x_mention("gemeente", "nog een vraag")
    assert [m.external_id for m in (await x.fetch(cursor)).messages] == [newer.id]

    mention_calls = requests_to(fake_server, "GET", "/mentions")
    assert all("since_id=" in r["query"] for r in mention_calls[1:])
    assert sum("pagination_token=" in r["query"] for r in mention_calls) == 2
    assert all(r["authorization"] == "OAuth" for r in fake.requests)


async def test_an_empty_cursor_takes_what_x_still_serves(fake_server: FakeServer) -> None:
    fake = fake_server.fake
    account = fake.add_x_account("gemeente")
    tweet = fake.inject_x_mention("gemeente", "hallo", author="burger")
    answer = fake.inject_x_mention("gemeente", "en nog iets", author="burger", in_reply_to=tweet.id)
    page = await connector(fake_server, account).fetch({})
    assert [m.external_id for m in page.messages] == [tweet.id, answer.id]
    assert page.messages[1].in_reply_to == tweet.id


async def test_a_reply_arrives_once_with_its_in_reply_to(fake_server: FakeServer) -> None:
    fake = fake_server.fake
    account = fake.add_x_account("gemeente")
    mention = fake.inject_x_mention("gemeente", "waar is het loket?", author="burger")
    x = connector(fake_server, account)
    posted_id = await x.send_reply(reply("@burger Op het stadhuis.", mention.id))

    posts = fake.posts("x")
    assert [(p.id, p.in_reply_to, p.kind, p.text) for p in posts] == [
        (posted_id, mention.id, "tweet", "@burger Op het stadhuis.")]
    assert len(requests_to(fake_server, "POST", "/2/tweets")) == 1
    assert fake.tweets[posted_id].replied_to == mention.id
    assert x.capabilities.reply_max_length == 280


async def test_our_own_replies_do_not_come_back_as_mentions(fake_server: FakeServer) -> None:
    fake = fake_server.fake
    account = fake.add_x_account("gemeente")
    x = connector(fake_server, account)
    start = await x.fetch(None)
    mention = fake.inject_x_mention("gemeente", "vraag", author="burger")
    page = await x.fetch(start.cursor)
    await x.send_reply(reply("@gemeente @burger antwoord", mention.id))  # names ourselves too
    follow_up = fake.inject_x_mention("gemeente", "dank!", author="burger")
    assert [m.external_id for m in (await x.fetch(page.cursor)).messages] == [follow_up.id]


async def test_direct_messages_come_in_and_are_answered_in_their_conversation(fake_server: FakeServer) -> None:
    fake = fake_server.fake
    account = fake.add_x_account("gemeente")
    x = connector(fake_server, account, page_size=5)
    start = await x.fetch(None)
    events = [fake.inject_x_dm("gemeente", f"privé {i}", sender="burger", sender_name="Burger") for i in range(3)]

    page = await x.fetch(start.cursor)
    dms = [m for m in page.messages if m.kind == "dm"]
    assert [m.external_id for m in dms] == [e.id for e in events]
    assert dms[0].thread_id == events[0].dm_conversation_id
    assert (dms[0].author.handle, dms[0].text) == ("burger", "privé 0")

    sent = await x.send_reply(reply("Wij kijken ernaar.", dms[-1].external_id, thread_id=dms[-1].thread_id))
    assert [(p.kind, p.id, p.thread_id) for p in fake.posts("x")] == [("dm", sent, events[0].dm_conversation_id)]
    later = await x.fetch(page.cursor)  # our own message in the conversation is not inbound
    assert later.messages == []
    assert await x.find_sent(reply("Wij kijken ernaar.", dms[-1].external_id, thread_id=dms[-1].thread_id)) == sent


async def test_direct_messages_rest_when_the_app_may_not_read_them(fake_server: FakeServer) -> None:
    fake = fake_server.fake
    account = fake.add_x_account("gemeente", dm_access=False)
    x = connector(fake_server, account)
    start = await x.fetch(None)
    assert "unavailable_until" in start.cursor["dms"]
    mention = fake.inject_x_mention("gemeente", "vraag")
    page = await x.fetch(start.cursor)
    assert [m.external_id for m in page.messages] == [mention.id]
    assert len(requests_to(fake_server, "GET", "/2/dm_events")) == 1  # resting: not asked again


@pytest.mark.parametrize(("status", "error"), [
    (500, Transient), (502, Transient), (503, Transient), (401, AuthExpired),
    (400, Permanent), (403, Permanent), (404, Permanent)])
async def test_http_errors_become_ours(fake_server: FakeServer, status: int, error: type[Exception]) -> None:
    fake = fake_server.fake
    account = fake.add_x_account("gemeente")
    x = connector(fake_server, account)
    await x.user_id()
    fake.add_fault("status", platform="x", path="/mentions$", status=status)
    with pytest.raises(error):
        await x.fetch({})
    fake.add_fault("status", platform="x", method="POST", path="^/2/tweets$", status=status)
    with pytest.raises(error):
        await x.send_reply(reply("antwoord", fake.inject_x_mention("gemeente", "vraag").id))
    assert fake.posts("x") == []


async def test_429_carries_the_reset_time(fake_server: FakeServer) -> None:
    fake = fake_server.fake
    account = fake.add_x_account("gemeente")
    x = connector(fake_server, account)
    reset = int(fake.now()) + 600
    fake.add_fault("status", platform="x", path="/mentions$", status=429, reset=reset)
    with pytest.raises(RateLimited) as caught:
        await x.fetch({})
    assert caught.value.reset_at == dt.datetime.fromtimestamp(reset, dt.UTC)


async def test_the_quota_running_out_is_a_429_with_reset(fake_server: FakeServer) -> None:
    fake = fake_server.fake
    fake.limits["x"] = (3, 900)
    account = fake.add_x_account("gemeente")
    x = connector(fake_server, account, user_id=account.user.id)
    page = await x.fetch({})
    assert x.rate_limit is not None and x.rate_limit.limit == 3
    for _ in range(2):
        page = await x.fetch(page.cursor)
    assert x.rate_limit.remaining == 0
    with pytest.raises(RateLimited) as caught:
        await x.fetch(page.cursor)
    assert caught.value.reset_at == x.rate_limit.reset_at


async def test_a_revoked_token_is_auth_expired(fake_server: FakeServer) -> None:
    fake = fake_server.fake
    account = fake.add_x_account("gemeente")
    account.revoked = True
    with pytest.raises(AuthExpired):
        await connector(fake_server, account).fetch(None)


async def test_a_slow_answer_times_out_as_transient(fake_server: FakeServer) -> None:
    fake = fake_server.fake
    account = fake.add_x_account("gemeente")
    x = connector(fake_server, account, timeout=0.5, user_id=account.user.id)
    fake.add_fault("delay", platform="x", path="/mentions$", delay=30)
    with pytest.raises(Transient):
        await x.fetch({})


async def test_nobody_listening_is_transient(fake_server: FakeServer) -> None:
    account = fake_server.fake.add_x_account("gemeente")
    x = XConnector.from_credentials(account.credentials(), base_url=f"http://127.0.0.1:{free_port()}/x", timeout=5)
    with pytest.raises(Transient):
        await x.fetch(None)


@pytest.mark.parametrize("fault", [
    {"kind": "drop"}, {"kind": "error_after", "status": 503}, {"kind": "hang_after", "delay": 30}])
async def test_a_lost_answer_is_found_again_instead_of_posted_twice(fake_server: FakeServer,
                                                                    fault: dict[str, Any]) -> None:
    fake = fake_server.fake
    account = fake.add_x_account("gemeente")
    mention = fake.inject_x_mention("gemeente", "vraag", author="burger")
    other = fake.inject_x_mention("gemeente", "andere vraag", author="burger")
    x = connector(fake_server, account, timeout=0.5)
    await x.send_reply(reply("Ander antwoord", other.id))
    answer = reply("Het antwoord is ja & de link is https://example.com/x", mention.id)

    fake.add_fault(platform="x", method="POST", path="^/2/tweets$", **fault)
    with pytest.raises(Transient):
        await x.send_reply(answer)
    stored = fake.posts("x")[-1]
    assert stored.in_reply_to == mention.id

    assert await x.find_sent(answer) == stored.id
    assert await x.find_sent(reply("Iets anders", mention.id)) is None
    assert len(fake.posts("x")) == 2


async def test_find_sent_is_none_when_nothing_was_posted(fake_server: FakeServer) -> None:
    fake = fake_server.fake
    account = fake.add_x_account("gemeente")
    mention = fake.inject_x_mention("gemeente", "vraag")
    fake.add_fault("status", platform="x", method="POST", path="^/2/tweets$", status=503)
    x = connector(fake_server, account)
    with pytest.raises(Transient):
        await x.send_reply(reply("antwoord", mention.id))
    assert await x.find_sent(reply("antwoord", mention.id)) is None


async def test_make_connector_builds_an_x_connector_from_account_settings(fake_server: FakeServer) -> None:
    fake = fake_server.fake
    account = fake.add_x_account("gemeente")
    x = make_connector("x", {"base_url": fake_server.x_url, "page_size": 5}, account.credentials(), None)
    assert isinstance(x, XConnector)
    assert await x.user_id() == account.user.id  # from GET /2/users/me
    assert requests_to(fake_server, "GET", "/2/users/me")
    with pytest.raises(AuthExpired):
        make_connector("x", {}, {"access_token": "1-a"}, None)
    with pytest.raises(ValueError):
        make_connector("facebook", {}, {}, None)
