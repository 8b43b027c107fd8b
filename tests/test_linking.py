"""Cross-posts, duplicates and surges on both databases, through the API and through a poller's pages.

Messages carry their platform time (``created_at``), so the time windows are tested without waiting.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import secrets
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from connectors.base import Author, InboundMessage
from tests.conftest import Harness
from webcare.assist_models import ConversationLink
from webcare.db import Tx
from webcare.ingest import store_page
from webcare.models import Event

pytestmark = pytest.mark.anyio

T0 = dt.datetime(2026, 11, 20, 9, 0, tzinfo=dt.UTC)


def at(minutes: float) -> str:
    return (T0 + dt.timedelta(minutes=minutes)).isoformat()


def person(handle: str, name: str | None = None) -> dict[str, str]:
    return {"id": f"id-{handle}-{secrets.token_hex(2)}", "handle": handle, "name": name or handle.title()}


async def post(server: Harness, admin: httpx.AsyncClient, account: dict[str, Any], text: str,
               author: dict[str, str], minutes: float) -> int:
    done = await server.inbound(admin, account["id"], text, author=author, created_at=at(minutes))
    return int(done["conversation_id"])


async def links(client: httpx.AsyncClient, conversation_id: int) -> set[tuple[int, str]]:
    r = await client.get(f"/api/conversations/{conversation_id}")
    assert r.status_code == 200, r.text
    return {(link["conversation_id"], link["kind"]) for link in r.json()["links"]}


async def test_a_cross_post_and_a_duplicate_are_linked_to_the_first_on_both_sides(server: Harness) -> None:
    admin, _ = await server.token_client("admin")
    agent, _ = await server.token_client("agent")
    afval = await server.api_account(admin, department="Afval")
    parkeren = await server.api_account(admin, department="Parkeren")
    jan_x = person("jan_devries", "Jan de Vries")
    jan_mastodon = person("jan_devries@social.example", "Jan")

    first = await post(server, admin, afval, "@gemeente_afval Al 3 weken wordt ons grofvuil in de Vondelstraat niet "
                                             "opgehaald!! Wie gaat dit oplossen?", jan_x, 0)
    cross = await post(server, admin, parkeren, "@parkeren al 3 weken wordt het grofvuil in de Vondelstraat niet "
                                                "opgehaald. Wie lost dit op?", jan_mastodon, 10)
    again = await post(server, admin, afval, "Al 3 weken wordt ons grofvuil in de Vondelstraat niet opgehaald!!!",
                       jan_x, 90)
    assert await links(agent, cross) == {(first, "cross_post")}
    assert await links(agent, again) == {(first, "duplicate")}
    assert await links(agent, first) == {(cross, "cross_post"), (again, "duplicate")}

    async with server.db.read() as s:
        linked = list(await s.execute(sa.select(Event.conversation_id, Event.data).where(
            Event.type == "conversation.linked").order_by(Event.seq)))
    assert [(cid, data["linked_to"], data["kind"]) for cid, data in linked] == [
        (cross, first, "cross_post"), (first, cross, "cross_post"), (again, first, "duplicate"),
        (first, again, "duplicate")]


async def test_same_words_another_question_another_person_or_too_late_is_not_linked(server: Harness) -> None:
    admin, _ = await server.token_client("admin")
    agent, _ = await server.token_client("agent")
    account = await server.api_account(admin, department="Afval")
    other = await server.api_account(admin, department="Stadsbeheer")
    jan = person("jan")
    first = await post(server, admin, account, "Wanneer wordt het grofvuil opgehaald in Noord?", jan, 0)
    unlinked = [
        await post(server, admin, other, "Wanneer wordt het grofvuil opgehaald in Zuid?", jan, 5),
        await post(server, admin, account, "De container in de Kerkstraat is niet geleegd", jan, 6),
        await post(server, admin, other, "De container in de Vondelstraat is niet geleegd", jan, 7),
        await post(server, admin, other, "Mijn parkeervergunning voor kenteken 12-AB-34 is verlopen", jan, 8),
        await post(server, admin, other, "Mijn parkeervergunning voor kenteken 56-CD-78 is verlopen", jan, 9),
        # someone else with the very same words: not a repeat (and two people are no surge)
        await post(server, admin, other, "Wanneer wordt het grofvuil opgehaald in Noord?", person("piet"), 10),
        # the same person and words, but four days later: a new question
        await post(server, admin, other, "Wanneer wordt het grofvuil opgehaald in Noord?", jan, 4 * 24 * 60),
    ]
    for conversation_id in [first, *unlinked]:
        assert await links(agent, conversation_id) == set(), conversation_id


async def test_a_surge_gathers_many_people_and_is_answered_personally(server: Harness) -> None:
    admin, _ = await server.token_client("admin")
    coordinator, _ = await server.token_client("coordinator", name="Anna de Vries")
    agent, _ = await server.token_client("agent")
    verkeer = await server.api_account(admin, department="Verkeer")
    gemeente = await server.api_account(admin, department="Communicatie")
    posts = [
        (verkeer, "Waarom is de Coolsingel afgesloten? Sta al 20 min vast", person("kees", "Kees"), 0),
        (gemeente, "Coolsingel dicht?? Hoe lang gaat dit duren", person("fatima", "Fatima"), 7),
        (verkeer, "What's going on at Coolsingel, road closed?", person("tom", "Tom"), 12),
        (gemeente, "Coolsingel afgesloten en geen omleiding aangegeven, belachelijk", person("els", "Els"), 30),
    ]
    members = [await post(server, admin, account, text, author, m) for account, text, author, m in posts]
    apart = [
        await post(server, admin, gemeente, "Wanneer is de markt op de Coolsingel?", person("joop"), 20),
        await post(server, admin, verkeer, "Is de A10 dicht?", person("ria"), 21),
        await post(server, admin, verkeer, "Is de A2 dicht?", person("sem"), 22),
        # the same thing, but the next day: a surge is a short time
        await post(server, admin, verkeer, "Coolsingel dicht?? Hoe lang nog", person("bas"), 26 * 60),
    ]
    root = members[0]
    assert await links(agent, root) == {(m, "surge") for m in members[1:]}
    for m in members[1:]:
        assert await links(agent, m) == {(root, "surge")}
    for a in apart:
        assert await links(agent, a) == set(), a

    async with server.db.read() as s:
        told = [(cid, t, data["members"]) for cid, t, data in await s.execute(
            sa.select(Event.conversation_id, Event.type, Event.data)
            .where(Event.type.in_(("conversation.linked", "cluster.created", "cluster.grown"))).order_by(Event.seq))]
    assert told == [(root, "cluster.created", [members[1], members[2]]), (root, "cluster.grown", [members[3]])]

    [cluster] = (await agent.get("/api/clusters")).json()["items"]
    assert cluster["root_conversation_id"] == root and cluster["size"] == 4 and cluster["waiting"] == 4
    assert "coolsingel" in cluster["topic"]
    detail = (await agent.get(f"/api/clusters/{cluster['id']}")).json()
    assert [c["id"] for c in detail["conversations"]] == members
    assert (await agent.get(f"/api/conversations/{members[2]}")).json()["cluster"]["id"] == cluster["id"]

    departments = (await admin.get("/api/departments")).json()["items"]
    saved = (await coordinator.post("/api/saved-replies", json={
        "department_id": departments[0]["id"], "title": "Coolsingel afgesloten",
        "text": "Hoi {author}, de Coolsingel is tot 18:00 afgesloten voor werkzaamheden. ^{agent_initials}"})).json()
    assert (await agent.post(f"/api/clusters/{cluster['id']}/replies",
                             json={"saved_reply_id": saved["id"]})).status_code == 403
    # Pressed twice at once: every person answered once, by one press or the other.
    presses = await asyncio.gather(*(coordinator.post(f"/api/clusters/{cluster['id']}/replies",
                                                      json={"saved_reply_id": saved["id"]}) for _ in range(2)))
    assert all(r.status_code == 200 for r in presses), [r.text for r in presses]
    replies = sorted((a for r in presses for a in r.json()["replies"]),
                     key=lambda a: members.index(a["conversation_id"]))
    assert [a["conversation_id"] for a in replies] == members
    assert {s["error"]["code"] for r in presses for s in r.json()["skipped"]} <= {"reply_pending"}
    for (_, _, author, _), reply in zip(posts, replies, strict=True):
        assert reply["reply"]["text"] == (f"Hoi {author['name']}, de Coolsingel is tot 18:00 afgesloten voor "
                                          "werkzaamheden. ^AdV")
        assert reply["reply"]["state"] == "queued"
    # Reports count a surge's conversations as what they are: one conversation (and reply) per person.
    queue = (await agent.get("/api/conversations", params={"status": "claimed"})).json()["items"]
    assert sorted(c["id"] for c in queue) == sorted(members)
    # Pressed again while those replies are on their way: nobody is answered twice.
    again = (await coordinator.post(f"/api/clusters/{cluster['id']}/replies", json={"text": "Nogmaals, {author}"}))
    assert again.status_code == 200, again.text
    assert again.json()["replies"] == []
    assert [(s["conversation_id"], s["error"]["code"]) for s in again.json()["skipped"]] == [
        (m, "reply_pending") for m in members]


async def test_a_copied_complaint_over_two_days_is_one_surge(server: Harness) -> None:
    admin, _ = await server.token_client("admin")
    agent, _ = await server.token_client("agent")
    account = await server.api_account(admin, department="Groen")
    text = "Stop de kap van de bomen in het Vondelpark! Teken de petitie"
    ids = [await post(server, admin, account, text, person(f"bewoner{i}"), i * 600) for i in range(4)]
    assert await links(agent, ids[0]) == {(i, "surge") for i in ids[1:]}


async def test_a_fetched_page_is_linked_and_gathered_in_one_go(server: Harness) -> None:
    """The poller's path: a whole page stored in bulk, with repeats and a surge inside the page itself."""
    admin, _ = await server.token_client("admin")
    agent, _ = await server.token_client("agent")
    account = await server.api_account(admin, department="ICT")

    def message(i: int, text: str, handle: str) -> InboundMessage:
        return InboundMessage(external_id=f"page-{i}", author=Author(f"a-{handle}", handle, handle.title()),
                              text=text, created_at=T0 + dt.timedelta(minutes=i))

    page = [
        message(1, "@gemeente de website ligt eruit, ik kan niet inloggen met DigiD", "noor"),
        message(2, "Is jullie site down? DigiD login werkt niet", "daan"),
        message(3, "Hoe vraag ik een parkeervergunning aan?", "lotte"),
        message(4, "Your website is down, can't log in with DigiD", "mike"),
        message(5, "Hoe vraag ik een parkeervergunning aan??", "lotte"),
        message(6, "Hoe zeg ik mijn parkeervergunning op?", "lotte"),
    ]

    async def nothing(tx: Tx) -> None:
        return None

    assert await store_page(server.db, account["id"], page, nothing) == 6
    async with server.db.read() as s:
        by_external = dict((await s.execute(sa.text(
            "SELECT external_id, conversation_id FROM messages WHERE account_id = :a"), {"a": account["id"]})).all())
        rows = list(await s.scalars(sa.select(ConversationLink)))
    c = {i: by_external[f"page-{i}"] for i in range(1, 7)}
    assert {(r.conversation_id, r.linked_id, r.kind) for r in rows} == {
        (c[2], c[1], "surge"), (c[4], c[1], "surge"), (c[5], c[3], "duplicate")}
    assert await links(agent, c[6]) == set()


async def test_an_outage_of_a_hundred_people_over_pages_is_one_surge(server: Harness) -> None:
    """Only a few members of a surge are candidates for the next message, and older ones not at all: the
    surge still takes everyone in, through its first conversation and its latest members."""
    admin, _ = await server.token_client("admin")
    agent, _ = await server.token_client("agent")
    account = await server.api_account(admin, department="ICT")
    variants = ["@gemeente de website ligt eruit, ik kan niet inloggen met DigiD",
                "Is jullie site down? DigiD login werkt niet",
                "Your website is down, can't log in with DigiD",
                "Kan niet inloggen met DigiD op jullie website, storing?",
                "Website van de gemeente doet het niet? Krijg steeds een foutmelding bij DigiD inloggen"]

    async def nothing(tx: Tx) -> None:
        return None

    for page in range(4):
        messages = [InboundMessage(external_id=f"outage-{page}-{i}", author=Author(f"a{page}-{i}", f"mens{page}_{i}",
                                                                                  "Mens"),
                                   text=variants[(page + i) % len(variants)],
                                   created_at=T0 + dt.timedelta(minutes=page * 25 + i * 0.5)) for i in range(25)]
        assert await store_page(server.db, account["id"], messages, nothing) == 25
    [cluster] = (await agent.get("/api/clusters")).json()["items"]
    assert cluster["size"] == 100 and cluster["waiting"] == 100
    detail = (await agent.get(f"/api/clusters/{cluster['id']}")).json()
    assert len(detail["conversations"]) == 100


async def test_two_accounts_starting_the_same_surges_at_once_do_not_deadlock(server: Harness) -> None:
    """Two accounts' pages, stored at the same moment, each start the same two surges, in opposite orders.
    Each page inserts its surges in one statement; a trigger that makes every surge insert take a while
    (test-only) keeps both statements inside the insert together. In the order of the page they waited on
    each other's first surge and PostgreSQL killed one as a deadlock; in the order of the surges' first
    conversations one waits for the other, joins its surges, and nothing is lost."""
    if server.db.engine.dialect.name != "postgresql":
        pytest.skip("SQLite has one writer: two pages never store at once")
    admin, _ = await server.token_client("admin")
    agent, _ = await server.token_client("agent")
    first = await server.api_account(admin, department="ICT")
    second = await server.api_account(admin, department="Verkeer")
    outage = ["De website ligt eruit, ik kan niet inloggen met DigiD", "Website doet het niet, DigiD inloggen mislukt",
              "Kan niet inloggen met DigiD op de website, storing?", "Website storing? DigiD inloggen lukt niet"]
    tram = ["Tram 5 rijdt niet tussen Centraal en Zuid", "Waarom rijdt tram 5 niet naar Zuid?",
            "Tram 5 rijdt vandaag niet tussen Zuid en Centraal?", "Rijdt tram 5 niet meer naar Centraal en Zuid?"]

    async def nothing(tx: Tx) -> None:
        return None

    def message(key: str, text: str, minutes: float) -> InboundMessage:
        return InboundMessage(external_id=key, author=Author(f"id-{key}", f"mens_{key}", "Mens"), text=text,
                              created_at=T0 + dt.timedelta(minutes=minutes))

    # Two people each about both, not yet a surge (three people make one).
    assert await store_page(server.db, first["id"], [
        message("o1", outage[0], 0), message("t1", tram[0], 1), message("o2", outage[1], 2),
        message("t2", tram[1], 3)], nothing) == 4
    async with server.db.connect() as conn:
        await conn.execute(sa.text(
            "CREATE FUNCTION slow_surge() RETURNS trigger LANGUAGE plpgsql AS "
            "$$ BEGIN PERFORM pg_sleep(0.3); RETURN NEW; END $$"))
        await conn.execute(sa.text(
            "CREATE TRIGGER slow_surge BEFORE INSERT ON clusters FOR EACH ROW EXECUTE FUNCTION slow_surge()"))
    try:
        stored = await asyncio.gather(
            store_page(server.db, first["id"], [message("o3", outage[2], 10), message("t3", tram[2], 11)], nothing),
            store_page(server.db, second["id"], [message("t4", tram[3], 10), message("o4", outage[3], 11)], nothing))
    finally:
        async with server.db.connect() as conn:
            await conn.execute(sa.text("DROP TRIGGER slow_surge ON clusters"))
            await conn.execute(sa.text("DROP FUNCTION slow_surge()"))
    assert stored == [2, 2]
    clusters = (await agent.get("/api/clusters")).json()["items"]
    assert sorted(c["size"] for c in clusters) == [4, 4]  # each surge: its two people and both new ones
