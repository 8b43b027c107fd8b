"""The Mastodon connector: real httpx, over real HTTP, against the fake Mastodon on loopback."""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from connectors import make_connector
from connectors.base import AuthExpired, OutboundReply, Permanent, RateLimited, Transient
from connectors.fake.state import MastodonAccount
from connectors.mastodon import MastodonConnector, addressed, weighted_length
from connectors.plaintext import _parsed_text, _plain_markup_text, _tidy, html_to_text
from tests.conftest import FakeServer, free_port

pytestmark = pytest.mark.anyio


@pytest.fixture
async def http(fake_server: FakeServer) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=fake_server.mastodon_url, timeout=10) as client:
        yield client


def reply(text: str, in_reply_to: str | None, key: str = "8d1f0c2e-0000-4000-8000-000000000001") -> OutboundReply:
    return OutboundReply(reply_id=1, conversation_id=1, text=text, in_reply_to=in_reply_to, idempotency_key=key,
                         author_name="Anouk")


def connector(http: httpx.AsyncClient, account: MastodonAccount, **options: Any) -> MastodonConnector:
    assert account.access_token
    return MastodonConnector(http, account.access_token, **options)


def requests_to(server: FakeServer, method: str, path: str) -> list[dict[str, Any]]:
    return [r for r in server.fake.requests if r["platform"] == "mastodon" and r["method"] == method
            and r["path"] == path]


async def test_mentions_arrive_over_pages_by_min_id(fake_server: FakeServer, http: httpx.AsyncClient) -> None:
    fake = fake_server.fake
    account = fake.add_mastodon_account("gemeente", "Gemeente")
    fake.inject_mastodon_mention("gemeente", "oud nieuws")
    m = connector(http, account, page_size=5)

    start = await m.fetch(None)  # from now on
    assert start.messages == [] and start.cursor["min_id"] != "0"

    injected = [fake.inject_mastodon_mention("gemeente", f"vraag {i}", author=f"burger{i % 3}@elders.example",
                                             author_name=f"Burger {i % 3}") for i in range(12)]
    cursor, seen, pages = start.cursor, [], 0
    while True:
        page = await m.fetch(cursor)
        pages += 1
        assert [int(x.external_id) for x in page.messages] == sorted(int(x.external_id) for x in page.messages)
        seen += page.messages
        cursor = page.cursor
        if not page.has_more:
            break
    assert pages == 4  # 5 + 5 + 2, then an empty page says we are up to date
    assert [x.external_id for x in seen] == [s.id for s in injected]
    assert seen[0].text == "@gemeente vraag 0"
    assert (seen[0].author.handle, seen[0].author.name) == ("burger0@elders.example", "Burger 0")
    assert seen[0].kind == "mention" and seen[0].created_at.tzinfo is not None

    assert (await m.fetch(cursor)).messages == []
    newer = fake.inject_mastodon_mention("gemeente", "nog iets")
    assert [x.external_id for x in (await m.fetch(cursor)).messages] == [newer.id]
    queries = [r["query"] for r in requests_to(fake_server, "GET", "/api/v1/notifications")]
    assert all("types%5B%5D=mention" in q for q in queries)
    assert all("min_id=" in q for q in queries[1:])


async def test_an_empty_cursor_takes_everything_from_the_oldest(fake_server: FakeServer,
                                                                http: httpx.AsyncClient) -> None:
    fake = fake_server.fake
    account = fake.add_mastodon_account("gemeente")
    first = fake.inject_mastodon_mention("gemeente", "eerste")
    answer = fake.inject_mastodon_mention("gemeente", "tweede", in_reply_to_id=first.id)
    page = await connector(http, account).fetch({})
    assert [x.external_id for x in page.messages] == [first.id, answer.id]
    assert page.messages[1].in_reply_to == first.id


async def test_status_html_becomes_plain_text(fake_server: FakeServer, http: httpx.AsyncClient) -> None:
    fake = fake_server.fake
    account = fake.add_mastodon_account("gemeente")
    fake.inject_mastodon_mention("gemeente", "Hoi @gemeente, <script>alert(1)</script> & zie "
                                 "https://example.com/a/very/long/path/that/goes/on\nregel twee\n\nalinea twee",
                                 spoiler_text="parkeren")
    message = (await connector(http, account).fetch({})).messages[0]
    assert message.text == ("parkeren\n\nHoi @gemeente, <script>alert(1)</script> & zie "
                            "https://example.com/a/very/long/path/that/goes/on\nregel twee\n\nalinea twee")


def test_html_to_text_keeps_text_and_only_text() -> None:
    assert html_to_text('<p>a&amp;b <span class="h-card"><a href="x" class="u-url mention">@<span>jan</span>'
                        '</a></span></p><p>one<br />two<br>three</p>') == "a&b @jan\n\none\ntwo\nthree"
    assert html_to_text("<p>x</p><script>alert('no')</script><style>p{}</style><p>y</p>") == "x\n\ny"
    assert html_to_text("<p>  spaced\n  out  </p>") == "spaced out"
    assert html_to_text("&lt;b&gt;not bold&lt;/b&gt;") == "<b>not bold</b>"


# Pieces of markup, plain and hostile, that random statuses are made of.
_PIECES = ["<p>", "</p>", "<br>", "<br/>", "<br />", "</br>", "<p/>", "<P>", "<DIV class=x>", "</div>", "<li>",
           '<a href="https://x.example/?a=1&amp;b=2" rel="nofollow noopener" target="_blank">', "</a>",
           '<span class="h-card" translate="no">', "</span>", "<b>", "</b>", "<p\n>", '<p title="a\nb">',
           "<img src=x onerror=alert(1)>", "<a href='>'>", "<1>", "< p>", "<script>", "</script>", "<STYLE>",
           "<!-- c -->", "<?xml?>", "&amp;", "&lt;", "&#39;", "&nbsp;", "&#10;", "&", "&amp", "&unknown;", "x&y",
           " ", "\n", "\t", "\r\n", "tekst", "é", "😡", "<", ">"]


def test_the_quick_reading_of_markup_is_the_parsers() -> None:
    """html_to_text reads plain markup with a regular expression and leaves the rest to the HTML parser: on
    thousands of random statuses, wherever the quick reading answers, it answers what the parser does."""
    rng = random.Random(7)
    quick = 0
    for _ in range(30_000):
        markup = "".join(rng.choice(_PIECES) for _ in range(rng.randint(0, 12)))
        text = _plain_markup_text(markup)
        if text is not None:
            quick += 1
            assert _tidy(text) == _tidy(_parsed_text(markup)), markup
        assert html_to_text(markup) == _tidy(_parsed_text(markup)), markup
    assert quick > 5_000  # the quick reading is taken where it can be, not only in theory


async def test_a_reply_keeps_visibility_addresses_the_author_and_carries_the_key(
        fake_server: FakeServer, http: httpx.AsyncClient) -> None:
    fake = fake_server.fake
    account = fake.add_mastodon_account("gemeente")
    m = connector(http, account)
    start = await m.fetch(None)
    public = fake.inject_mastodon_mention("gemeente", "openbare vraag", author="jan@elders.example",
                                          visibility="unlisted")
    direct = fake.inject_mastodon_mention("gemeente", "geheime vraag", author="piet", visibility="direct")
    page = await m.fetch(start.cursor)
    assert [x.kind for x in page.messages] == ["mention", "dm"]

    first = await m.send_reply(reply("Kijk op de website.", public.id, key="key-1"))
    second = await m.send_reply(reply("@piet Dat regelen we.", direct.id, key="key-2"))
    posts = {p.id: p for p in fake.posts("mastodon")}
    assert (posts[first].in_reply_to, posts[first].visibility, posts[first].text) == (
        public.id, "unlisted", "@jan@elders.example Kijk op de website.")
    assert (posts[second].in_reply_to, posts[second].visibility, posts[second].text) == (
        direct.id, "direct", "@piet Dat regelen we.")
    assert [r["idempotency_key"] for r in requests_to(fake_server, "POST", "/api/v1/statuses")] == ["key-1", "key-2"]
    assert (await m.fetch(page.cursor)).messages == []  # our replies are not mentions of us


async def test_the_idempotency_key_makes_a_retried_post_return_the_same_status(
        fake_server: FakeServer, http: httpx.AsyncClient) -> None:
    fake = fake_server.fake
    account = fake.add_mastodon_account("gemeente")
    mention = fake.inject_mastodon_mention("gemeente", "vraag")
    m = connector(http, account, reply_max_length=500)
    answer = reply("Het antwoord.", mention.id)

    fake.add_fault("drop", platform="mastodon", method="POST", path="^/api/v1/statuses$")
    with pytest.raises(Transient):
        await m.send_reply(answer)
    assert len(fake.posts("mastodon")) == 1
    stored = fake.posts("mastodon")[0].id

    assert await m.find_sent(answer) == stored
    assert await m.send_reply(answer) == stored  # the same key: the same status, not a second one
    assert await m.send_reply(answer) == stored
    assert len(fake.posts("mastodon")) == 1
    assert len(requests_to(fake_server, "POST", "/api/v1/statuses")) == 3

    fake.advance(3601)  # Mastodon forgets a key after an hour
    assert await m.send_reply(answer) != stored
    assert len(fake.posts("mastodon")) == 2


@pytest.mark.parametrize("fault", [{"kind": "error_after", "status": 502}, {"kind": "hang_after", "delay": 30}])
async def test_a_lost_answer_is_found_by_find_sent(fake_server: FakeServer, http: httpx.AsyncClient,
                                                   fault: dict[str, Any]) -> None:
    fake = fake_server.fake
    account = fake.add_mastodon_account("gemeente")
    mention = fake.inject_mastodon_mention("gemeente", "vraag", author="jan@elders.example")
    other = fake.inject_mastodon_mention("gemeente", "andere vraag", author="jan@elders.example")
    m = connector(http, account)
    await m.send_reply(reply("Ander antwoord", other.id, key="other"))
    answer = reply("Zie https://example.com/regels & bel ons", mention.id)
    fake.add_fault(platform="mastodon", method="POST", path="^/api/v1/statuses$", **fault)
    quick = httpx.AsyncClient(base_url=fake_server.mastodon_url, timeout=0.5)
    try:
        with pytest.raises(Transient):
            await connector(quick, account).send_reply(answer)
    finally:
        await quick.aclose()
    stored = fake.posts("mastodon")[-1]
    assert await m.find_sent(answer) == stored.id
    assert await m.find_sent(reply("Iets anders", mention.id)) is None
    assert await m.find_sent(reply("Ander antwoord", mention.id)) is None  # same text, other status
    assert len(fake.posts("mastodon")) == 2


@pytest.mark.parametrize(("status", "error"), [
    (500, Transient), (502, Transient), (503, Transient), (504, Transient), (401, AuthExpired),
    (400, Permanent), (403, Permanent), (404, Permanent), (422, Permanent)])
async def test_http_errors_become_ours(fake_server: FakeServer, http: httpx.AsyncClient, status: int,
                                       error: type[Exception]) -> None:
    fake = fake_server.fake
    account = fake.add_mastodon_account("gemeente")
    mention = fake.inject_mastodon_mention("gemeente", "vraag")
    m = connector(http, account)
    fake.add_fault("status", platform="mastodon", path="^/api/v1/notifications$", status=status)
    with pytest.raises(error):
        await m.fetch({})
    fake.add_fault("status", platform="mastodon", method="POST", path="^/api/v1/statuses$", status=status)
    with pytest.raises(error):
        await m.send_reply(reply("antwoord", mention.id))
    assert fake.posts("mastodon") == []


async def test_429_carries_the_iso_reset_time(fake_server: FakeServer, http: httpx.AsyncClient) -> None:
    fake = fake_server.fake
    account = fake.add_mastodon_account("gemeente")
    reset = dt.datetime(2031, 5, 6, 7, 8, 9, 123456, tzinfo=dt.UTC)
    fake.add_fault("status", platform="mastodon", status=429, reset=reset.timestamp())
    with pytest.raises(RateLimited) as caught:
        await connector(http, account).fetch({})
    assert caught.value.reset_at == reset


async def test_the_quota_running_out_is_a_429_with_reset(fake_server: FakeServer, http: httpx.AsyncClient) -> None:
    fake = fake_server.fake
    fake.limits["mastodon"] = (2, 300)
    account = fake.add_mastodon_account("gemeente")
    m = connector(http, account)
    page = await m.fetch({})
    await m.fetch(page.cursor)
    assert m.rate_limit is not None and (m.rate_limit.limit, m.rate_limit.remaining) == (2, 0)
    with pytest.raises(RateLimited) as caught:
        await m.fetch(page.cursor)
    assert caught.value.reset_at == m.rate_limit.reset_at


async def test_a_revoked_token_is_auth_expired(fake_server: FakeServer, http: httpx.AsyncClient) -> None:
    account = fake_server.fake.add_mastodon_account("gemeente")
    account.revoked = True
    with pytest.raises(AuthExpired):
        await connector(http, account).fetch(None)


async def test_slow_or_absent_servers_are_transient(fake_server: FakeServer) -> None:
    fake = fake_server.fake
    account = fake.add_mastodon_account("gemeente")
    fake.add_fault("delay", platform="mastodon", delay=30)
    async with httpx.AsyncClient(base_url=fake_server.mastodon_url, timeout=0.5) as quick:
        with pytest.raises(Transient):
            await connector(quick, account).fetch(None)
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{free_port()}", timeout=5) as nobody:
        with pytest.raises(Transient):
            await connector(nobody, account).fetch(None)


async def test_a_reply_too_long_with_its_mention_is_refused_before_posting(fake_server: FakeServer,
                                                                          http: httpx.AsyncClient) -> None:
    fake = fake_server.fake
    account = fake.add_mastodon_account("gemeente")
    mention = fake.inject_mastodon_mention("gemeente", "vraag", author="averyveryverylongusername@elders.example")
    with pytest.raises(Permanent):
        await connector(http, account).send_reply(reply("x" * 490, mention.id))
    assert fake.posts("mastodon") == []


def test_addressing_and_counting() -> None:
    assert addressed("Dank je", "jan@elders.example") == "@jan@elders.example Dank je"
    assert addressed("Dank je @Jan!", "jan@elders.example") == "Dank je @Jan!"
    assert addressed("@janneke hoi", "jan") == "@jan @janneke hoi"
    assert weighted_length("@jan@elders.example see https://example.com/" + "a" * 50) == len("@jan see ") + 23


async def test_make_connector_with_a_shared_client_and_with_its_own(fake_server: FakeServer) -> None:
    fake = fake_server.fake
    account = fake.add_mastodon_account("gemeente")
    mention = fake.inject_mastodon_mention("gemeente", "vraag")
    assert account.access_token
    async with httpx.AsyncClient(timeout=10) as shared:
        m = make_connector("mastodon", {"base_url": fake_server.mastodon_url}, {"access_token": account.access_token},
                           shared)
        assert [x.external_id for x in (await m.fetch({})).messages] == [mention.id]
    own = make_connector("mastodon", {"base_url": fake_server.mastodon_url, "page_size": 10},
                         {"access_token": account.access_token}, None)
    assert isinstance(own, MastodonConnector)
    assert await own.account_id() == account.id
    await own.aclose()
    assert own.http.is_closed
    with pytest.raises(ValueError):
        make_connector("mastodon", {}, {"access_token": "t"}, None)
    with pytest.raises(AuthExpired):
        make_connector("mastodon", {"base_url": fake_server.mastodon_url}, {}, None)
