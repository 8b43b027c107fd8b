"""The queue's promises under real concurrency, through the HTTP API, on SQLite and on PostgreSQL.

- One claimer: of many people claiming one conversation at once, exactly one wins; every other
  one gets a 409 ``already_claimed``, and the event log says ``conversation.claimed`` once.
- Ingesting the same message twice changes nothing, even when the deliveries race.
- SQLite's single writer queues concurrent writes of every kind; none of them fails on a lock.
"""

from __future__ import annotations

import random
import secrets
import ssl
from collections import Counter
from typing import Any

import anyio
import httpx
import pytest
import sqlalchemy as sa

from connectors.base import Author, InboundMessage
from tests.conftest import Harness
from webcare import people
from webcare.db import Database
from webcare.ingest import ingest, ingest_in
from webcare.models import ApiToken, Conversation, Event, Message, Reply, User, utcnow
from webcare.security import new_token, token_digest

pytestmark = pytest.mark.anyio

CLAIMERS = 50
CONVERSATIONS = 200
#: Conversations that all claimers fight over at once; every other one gets SPREAD contenders.
HEAD_ON = 5
SPREAD = 2


async def staff(server: Harness, n: int, role: str = "agent") -> list[tuple[httpx.AsyncClient, dict[str, Any]]]:
    """``n`` distinct users, each with its own client carrying its own API token.

    Stored in one transaction, without passwords, to keep set-up quick; the rows are the ones
    ``webcare user add`` and ``webcare token create`` store.
    """
    tag = secrets.token_hex(3)
    made: list[tuple[User, str]] = []
    async with server.db.write() as tx:
        department = await people.ensure_department(tx.session, "Parkeren")
        for i in range(n):
            user = User(email=f"{role}-{tag}-{i}@test.webcare", name=f"{role.title()} {tag} {i}", role=role,
                        department_id=department.id)
            tx.session.add(user)
            made.append((user, new_token()))
        await tx.session.flush()
        for user, token in made:
            tx.session.add(ApiToken(user_id=user.id, token_hash=token_digest(token)))
    # One TLS context for all: httpx builds (and loads certificates into) one per client otherwise,
    # which costs more than the rest of this set-up, for plain-HTTP loopback clients.
    tls = ssl.create_default_context()
    return [(server.client(headers={"Authorization": f"Bearer {token}"}, verify=tls), people.user_json(user))
            for user, token in made]


async def open_conversations(db: Database, account_id: int, n: int) -> list[int]:
    """``n`` new conversations on one account, ingested (in one transaction) as a connector delivers them."""
    ids = []
    async with db.write() as tx:
        for i in range(n):
            done = await ingest_in(tx, account_id, InboundMessage(
                external_id=f"race-{i}-{secrets.token_hex(4)}", author=Author(f"p{i}", f"person{i}", f"Person {i}"),
                text=f"question number {i}", created_at=utcnow()))
            assert done.created
            ids.append(done.conversation_id)
    return ids


def assert_error(r: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert r.status_code == status, (r.status_code, r.text)
    body = r.json()
    assert set(body) == {"error"}, body
    error = body["error"]
    assert isinstance(error, dict) and error["code"] == code, body
    assert isinstance(error["message"], str) and error["message"], body
    return error


async def all_events(client: httpx.AsyncClient, *, limit: int = 150) -> list[dict[str, Any]]:
    """The whole event log as a reader sees it, paging with ``after=last_seq``."""
    events: list[dict[str, Any]] = []
    after = 0
    while True:
        r = await client.get("/api/events", params={"after": after, "limit": limit})
        assert r.status_code == 200, r.text
        page = r.json()
        events.extend(page["events"])
        if not page["events"]:
            assert page["last_seq"] == after
            return events
        assert page["last_seq"] == page["events"][-1]["seq"]
        after = page["last_seq"]


async def test_fifty_claimers_two_hundred_conversations(server: Harness) -> None:
    admin, _ = await server.token_client("admin")
    account = await server.api_account(admin)
    conversations = await open_conversations(server.db, account["id"], CONVERSATIONS)
    claimers = await staff(server, CLAIMERS)
    by_id = {user["id"]: user for _, user in claimers}

    # Who contends for what: the first few conversations are fought over by all fifty at the same
    # moment; every other one by a few claimers picked at random, each walking its own list.
    rng = random.Random(20261127)
    contenders: dict[int, list[int]] = {}
    for position, conversation_id in enumerate(conversations):
        chosen = range(CLAIMERS) if position < HEAD_ON else rng.sample(range(CLAIMERS), SPREAD)
        contenders[conversation_id] = list(chosen)
    plans: list[list[int]] = [[] for _ in range(CLAIMERS)]
    for conversation_id in conversations:
        for index in contenders[conversation_id]:
            plans[index].append(conversation_id)
    assert all(plans), "every claimer takes part"

    wins: dict[int, list[int]] = {c: [] for c in conversations}
    losses: dict[int, list[tuple[int, dict[str, Any]]]] = {c: [] for c in conversations}
    unexpected: list[tuple[int, str]] = []
    start = anyio.Event()

    async def claimer(plan: list[int], client: httpx.AsyncClient, user: dict[str, Any]) -> None:
        await start.wait()
        for conversation_id in plan:
            r = await client.post(f"/api/conversations/{conversation_id}/claim")
            if r.status_code == 200:
                assert r.json()["conversation"]["claimed_by"]["id"] == user["id"], r.text
                wins[conversation_id].append(user["id"])
            elif r.status_code == 409:
                losses[conversation_id].append((user["id"], assert_error(r, 409, "already_claimed")))
            else:
                unexpected.append((r.status_code, r.text))

    with anyio.fail_after(90):
        async with anyio.create_task_group() as tg:
            for plan, (client, user) in zip(plans, claimers, strict=True):
                tg.start_soon(claimer, plan, client, user)
            start.set()

    assert unexpected == []
    for conversation_id in conversations:
        assert len(wins[conversation_id]) == 1, (conversation_id, wins[conversation_id])
        winner = wins[conversation_id][0]
        assert len(losses[conversation_id]) == len(contenders[conversation_id]) - 1
        for loser, error in losses[conversation_id]:
            assert loser != winner
            # The 409 names who has it.
            assert error["details"]["claimed_by"] == {"id": winner, "name": by_id[winner]["name"]}, error

    # The database agrees with the answers.
    async with server.db.read() as s:
        rows = {row.id: row.claimed_by_id for row in await s.execute(
            sa.select(Conversation.id, Conversation.claimed_by_id).where(Conversation.id.in_(conversations)))}
        statuses = set(await s.scalars(sa.select(Conversation.status).where(Conversation.id.in_(conversations))))
    assert rows == {c: wins[c][0] for c in conversations}
    assert statuses == {"claimed"}

    # The event log holds exactly one conversation.claimed per conversation, by the winner.
    events = await all_events(admin)
    claimed = [e for e in events if e["type"] == "conversation.claimed"]
    assert Counter(e["conversation_id"] for e in claimed) == Counter({c: 1 for c in conversations})
    assert {e["conversation_id"]: e["actor_id"] for e in claimed} == {c: wins[c][0] for c in conversations}
    seqs = [e["seq"] for e in events]
    assert seqs == sorted(set(seqs))


async def test_same_inbound_message_posted_a_hundred_times_at_once(server: Harness) -> None:
    admin, _ = await server.token_client("admin")
    coordinator, _ = await server.token_client("coordinator")
    account = await server.api_account(admin)

    async def post_all(body: dict[str, Any]) -> list[httpx.Response]:
        answers: list[httpx.Response] = []
        start = anyio.Event()

        async def post(client: httpx.AsyncClient) -> None:
            await start.wait()
            answers.append(await client.post(f"/api/accounts/{account['id']}/inbound", json=body))

        with anyio.fail_after(60):
            async with anyio.create_task_group() as tg:
                for i in range(100):
                    tg.start_soon(post, admin if i % 2 else coordinator)
                start.set()
        return answers

    def one_created(answers: list[httpx.Response]) -> dict[str, Any]:
        assert sorted(r.status_code for r in answers) == [200] * 99 + [201], [r.text for r in answers
                                                                              if r.status_code not in (200, 201)]
        bodies = [r.json() for r in answers]
        assert all(b == bodies[0] for b in bodies), bodies
        assert set(bodies[0]) >= {"conversation_id", "message_id"}
        return bodies[0]

    author = {"id": "u-race", "handle": "racer", "name": "Racer"}
    first = one_created(await post_all({"external_id": "dup-1", "author": author, "text": "Is de stort open?"}))
    # A follow-up that replies to it, delivered a hundred times at once: stored once, in the same conversation.
    follow = one_created(await post_all({"external_id": "dup-2", "author": author, "text": "En zondag?",
                                         "in_reply_to": "dup-1"}))
    assert follow["conversation_id"] == first["conversation_id"]
    assert follow["message_id"] != first["message_id"]

    async with server.db.read() as s:
        messages = (await s.execute(
            sa.select(Message.id, Message.external_id, Message.conversation_id)
            .where(Message.account_id == account["id"]).order_by(Message.id))).all()
        conversations = list(await s.scalars(
            sa.select(Conversation.id).where(Conversation.account_id == account["id"])))
        events = (await s.execute(
            sa.select(Event.type, Event.conversation_id).order_by(Event.seq)
            .where(Event.conversation_id.in_(sa.select(Conversation.id)
                                             .where(Conversation.account_id == account["id"]))))).all()
    assert [tuple(m) for m in messages] == [(first["message_id"], "dup-1", first["conversation_id"]),
                                            (follow["message_id"], "dup-2", first["conversation_id"])]
    assert conversations == [first["conversation_id"]]
    assert [tuple(e) for e in events] == [("conversation.created", first["conversation_id"]),
                                          ("message.received", first["conversation_id"]),
                                          ("message.received", first["conversation_id"])]


async def test_mixed_concurrent_writers_never_fail_on_a_lock(server: Harness) -> None:
    """Claims, notes, replies and inbound messages at once, from many clients and from a second writer
    beside the app (as the CLI or a worker process would be): every answer is a deliberate one."""
    admin, _ = await server.token_client("admin")
    account = await server.api_account(admin)
    conversations = await open_conversations(server.db, account["id"], 12)
    agents = await staff(server, 10)
    rounds = 5
    async with server.db.read() as s:
        externals = {row.conversation_id: row.external_id for row in await s.execute(
            sa.select(Message.conversation_id, Message.external_id).where(Message.conversation_id.in_(conversations)))}

    answers: list[tuple[str, httpx.Response]] = []
    side_ingested: list[int] = []
    start = anyio.Event()

    async def agent(index: int, client: httpx.AsyncClient) -> None:
        rng = random.Random(index)
        await start.wait()
        for _ in range(rounds):
            c = rng.choice(conversations)
            answers.append(("claim", await client.post(f"/api/conversations/{c}/claim")))
            answers.append(("note", await client.post(f"/api/conversations/{c}/notes", json={"text": "kijk ik naar"})))
            c = rng.choice(conversations)
            answers.append(("reply", await client.post(f"/api/conversations/{c}/replies",
                                                       json={"text": "Dank voor uw vraag."})))

    async def public(index: int) -> None:
        # Follow-ups to the very conversations the agents are working on; each delivered twice.
        rng = random.Random(1000 + index)
        previous = rng.choice(list(externals.values()))
        await start.wait()
        for n in range(rounds):
            body = {"external_id": f"mixed-{index}-{n}", "text": "nog een vraag", "in_reply_to": previous,
                    "author": {"id": f"p{index}", "handle": "p", "name": "P"}}
            for _ in range(2):
                answers.append(("inbound", await admin.post(f"/api/accounts/{account['id']}/inbound", json=body)))
            previous = body["external_id"]

    async def other_writer() -> None:
        # A second Database on the same file or server: its own connections, its own transactions.
        await start.wait()
        for i in range(rounds * 3):
            done = await ingest(server.db, account["id"], InboundMessage(
                external_id=f"side-{i}", author=Author("side", "side", "Side"), text="via de worker",
                created_at=utcnow(), in_reply_to=f"side-{i - 1}" if i else None))
            assert done.created
            side_ingested.append(done.message_id)

    with anyio.fail_after(90):
        async with anyio.create_task_group() as tg:
            for index, (client, _) in enumerate(agents):
                tg.start_soon(agent, index, client)
            for index in range(4):
                tg.start_soon(public, index)
            tg.start_soon(other_writer)
            start.set()

    failed = [(kind, r.status_code, r.text) for kind, r in answers if r.status_code >= 500 or "locked" in r.text]
    assert failed == []
    expected = {"claim": {200, 409}, "note": {201}, "reply": {201, 409}, "inbound": {200, 201}}
    for kind, r in answers:
        assert r.status_code in expected[kind], (kind, r.status_code, r.text)
        if r.status_code == 409:
            assert_error(r, 409, "already_claimed")
    # Each public message was stored on its first delivery and recognised on its second.
    inbound_statuses = Counter(r.status_code for kind, r in answers if kind == "inbound")
    assert inbound_statuses == {201: 4 * rounds, 200: 4 * rounds}
    assert len(side_ingested) == rounds * 3

    # Nothing half-written: what was answered as stored is stored, and nothing else.
    created = Counter(kind for kind, r in answers if r.status_code == 201)
    async with server.db.read() as s:
        notes = await s.scalar(sa.select(sa.func.count()).select_from(Message).where(Message.direction == "note"))
        replies = await s.scalar(sa.select(sa.func.count()).select_from(Reply))
        outbound = await s.scalar(sa.select(sa.func.count()).select_from(Message).where(Message.direction == "out"))
        inbound = await s.scalar(sa.select(sa.func.count()).select_from(Message).where(Message.direction == "in"))
        types = Counter(await s.scalars(sa.select(Event.type)))
        conversation_count = await s.scalar(sa.select(sa.func.count()).select_from(Conversation))
    assert notes == created["note"] == types["note.added"]
    assert replies == outbound == created["reply"] == types["reply.queued"]
    assert inbound == len(conversations) + created["inbound"] + len(side_ingested) == types["message.received"]
    # Every follow-up joined a conversation the agents had; the second writer's thread is the one new one.
    assert conversation_count == len(conversations) + 1 == types["conversation.created"]
