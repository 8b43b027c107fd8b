"""The conversation life cycle through the HTTP API, with the events each step writes."""

from __future__ import annotations

import datetime as dt
import secrets
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import anyio
import httpx
import pytest
import sqlalchemy as sa

from tests.conftest import Harness, ServerThread, make_settings
from webcare import people
from webcare.app import create_app
from webcare.db import Database
from webcare.models import Conversation, Message, Reply
from webcare.schemas import UserIn

pytestmark = pytest.mark.anyio

T = TypeVar("T")


# ---------------------------------------------------------------------------------------------- helpers


async def token_user(server: Harness, role: str, department: str | None = "Parkeren",
                     ) -> tuple[httpx.AsyncClient, dict[str, Any]]:
    """A user with an API token and no password (no slow password hashing), and a client using the token."""
    email = f"{role}-{secrets.token_hex(4)}@test.webcare"
    user = await people.create_user(server.db, UserIn(email=email, name=f"{role.title()} {email[-22:-13]}",
                                                      role=role),  # type: ignore[arg-type]
                                    department_name=department)
    token = await people.create_token(server.db, email)
    return server.client(headers={"Authorization": f"Bearer {token}"}), user


def error_of(r: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert r.status_code == status, f"{r.request.method} {r.request.url}: {r.status_code} {r.text}"
    error = r.json()["error"]
    assert error["code"] == code, r.text
    assert isinstance(error["message"], str) and error["message"]
    return dict(error)


def ok(r: httpx.Response, status: int = 200) -> Any:
    assert r.status_code == status, f"{r.request.method} {r.request.url}: {r.status_code} {r.text}"
    return r.json()


async def last_seq(client: httpx.AsyncClient) -> int:
    seq = 0
    while True:
        page = ok(await client.get("/api/events", params={"after": seq, "limit": 1000}))
        if not page["events"]:
            return seq
        seq = page["last_seq"]


async def events_since(client: httpx.AsyncClient, after: int, conversation_id: int | None = None,
                       ) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    while True:
        page = ok(await client.get("/api/events", params={"after": after, "limit": 1000}))
        if not page["events"]:
            assert page["last_seq"] == after
            break
        seqs = [e["seq"] for e in page["events"]]
        assert seqs == sorted(seqs) and seqs[0] > after and page["last_seq"] == seqs[-1]
        out += page["events"]
        after = page["last_seq"]
    return [e for e in out if conversation_id is None or e["conversation_id"] == conversation_id]


def types(events: list[dict[str, Any]]) -> list[str]:
    return [e["type"] for e in events]


async def detail(client: httpx.AsyncClient, conversation_id: int) -> dict[str, Any]:
    return dict(ok(await client.get(f"/api/conversations/{conversation_id}")))


async def queue_ids(client: httpx.AsyncClient, **params: Any) -> list[int]:
    page = ok(await client.get("/api/conversations", params={"limit": 200, **params}))
    assert page["next_cursor"] is None
    return [item["id"] for item in page["items"]]


async def wait_for(check: Callable[[], Awaitable[T | None]], what: str, within: float = 15) -> T:
    """Poll ``check`` until it answers something truthy; fail after ``within`` seconds."""
    with anyio.move_on_after(within):
        while True:
            result = await check()
            if result:
                return result
            await anyio.sleep(0.05)
    raise AssertionError(f"timed out after {within}s waiting for {what}")


async def setup(server: Harness) -> tuple[httpx.AsyncClient, dict[str, Any]]:
    admin, _ = await token_user(server, "admin", None)
    account = await server.api_account(admin)
    return admin, account


def inbound_body(text: str = "Waar kan ik parkeren?", **fields: Any) -> dict[str, Any]:
    return {"external_id": fields.pop("external_id", secrets.token_hex(8)), "text": text,
            "author": fields.pop("author", {"id": "u-1", "handle": "burger", "name": "Burger"}), **fields}


# ------------------------------------------------------------------------------------------------ tests


async def test_a_new_conversation_emits_created_and_received(server: Harness) -> None:
    admin, account = await setup(server)
    agent, _ = await token_user(server, "agent")
    seq = await last_seq(admin)
    posted = "2026-03-01T09:30:00Z"
    body = inbound_body("Mijn vergunning <b>verloopt</b>", external_id="ext-1", created_at=posted,
                        author={"id": "42", "handle": "@piet", "name": "Piet"})
    created = ok(await admin.post(f"/api/accounts/{account['id']}/inbound", json=body), 201)
    conv, msg = created["conversation_id"], created["message_id"]
    assert isinstance(conv, int) and isinstance(msg, int)

    events = await events_since(agent, seq)
    assert types(events) == ["conversation.created", "message.received"]
    assert all(e["conversation_id"] == conv and e["actor_id"] is None for e in events)
    assert events[0]["data"]["account_id"] == account["id"]
    assert events[0]["data"]["author"] == {"id": "42", "handle": "@piet", "name": "Piet"}
    assert events[1]["data"]["message"]["id"] == msg
    assert events[1]["data"]["message"]["text"] == "Mijn vergunning <b>verloopt</b>"
    assert events[1]["data"]["message"]["direction"] == "in"

    [item] = ok(await agent.get("/api/conversations", params={"account_id": account["id"]}))["items"]
    assert item["id"] == conv and item["status"] == "open" and item["account_id"] == account["id"]
    assert item["subject_preview"] == "Mijn vergunning <b>verloopt</b>"
    assert item["author"] == {"id": "42", "handle": "@piet", "name": "Piet"}
    assert item["claimed_by"] is None and item["assignee"] is None
    assert item["waiting_since"] == "2026-03-01T09:30:00Z" and item["last_message_at"] == "2026-03-01T09:30:00Z"
    d = await detail(agent, conv)
    assert [(m["id"], m["direction"], m["text"]) for m in d["messages"]] == [
        (msg, "in", "Mijn vergunning <b>verloopt</b>")]
    assert d["messages"][0]["author"]["handle"] == "@piet"
    assert d["links"] == []

    # The same external id again: 200 with the same ids, nothing new stored, no events.
    again = await admin.post(f"/api/accounts/{account['id']}/inbound", json={**body, "text": "changed"})
    assert ok(again, 200) == created
    assert await events_since(agent, events[-1]["seq"]) == []
    assert [m["text"] for m in (await detail(agent, conv))["messages"]] == ["Mijn vergunning <b>verloopt</b>"]


async def test_claim_reclaim_conflict_and_release(server: Harness) -> None:
    admin, account = await setup(server)
    conv = (await server.inbound(admin, account["id"]))["conversation_id"]
    a, alice = await token_user(server, "agent")
    b, bob = await token_user(server, "agent")
    seq = await last_seq(admin)

    first = ok(await a.post(f"/api/conversations/{conv}/claim"))["conversation"]
    assert first["id"] == conv and first["status"] == "claimed"
    assert first["claimed_by"] == {"id": alice["id"], "name": alice["name"]}
    [claimed] = await events_since(admin, seq)
    assert claimed["type"] == "conversation.claimed" and claimed["conversation_id"] == conv
    assert claimed["actor_id"] == alice["id"] and claimed["data"]["claimed_by"] == alice["id"]

    # Claiming again renews the lease, and writes no second event.
    second = ok(await a.post(f"/api/conversations/{conv}/claim"))["conversation"]
    assert second["status"] == "claimed" and second["claimed_by"]["id"] == alice["id"]
    assert dt.datetime.fromisoformat(second["claim_expires_at"]) > dt.datetime.fromisoformat(
        first["claim_expires_at"])
    async with server.db.read() as s:
        lease = await s.scalar(sa.select(Conversation.lease_expires_at).where(Conversation.id == conv))
    assert lease == dt.datetime.fromisoformat(second["claim_expires_at"])
    assert await events_since(admin, claimed["seq"]) == []

    # Someone else: 409 already_claimed, naming who has it; nothing changes.
    error = error_of(await b.post(f"/api/conversations/{conv}/claim"), 409, "already_claimed")
    assert alice["name"] in error["message"]
    assert error["details"]["claimed_by"] == {"id": alice["id"], "name": alice["name"]}
    assert await events_since(admin, claimed["seq"]) == []
    d = await detail(b, conv)
    assert d["status"] == "claimed" and d["claimed_by"]["id"] == alice["id"]
    assert bob["id"] != alice["id"]
    await release_returns_to_the_queue(server)


async def release_returns_to_the_queue(server: Harness) -> None:
    admin, account = await setup(server)
    conv = (await server.inbound(admin, account["id"]))["conversation_id"]
    a, alice = await token_user(server, "agent")
    b, _ = await token_user(server, "agent")
    coordinator, boss = await token_user(server, "coordinator")

    error_of(await a.post(f"/api/conversations/{conv}/release"), 409, "not_claimed")  # nobody holds it
    ok(await a.post(f"/api/conversations/{conv}/claim"))
    seq = await last_seq(admin)
    error_of(await b.post(f"/api/conversations/{conv}/release"), 409, "not_claimed")  # not hers to release
    assert (await detail(a, conv))["claimed_by"]["id"] == alice["id"]
    assert await events_since(admin, seq) == []

    released = ok(await a.post(f"/api/conversations/{conv}/release"))["conversation"]
    assert released["status"] == "open" and released["claimed_by"] is None and released["claim_expires_at"] is None
    [event] = await events_since(admin, seq)
    assert event["type"] == "conversation.released" and event["actor_id"] == alice["id"]
    assert event["data"]["reason"] == "released" and event["data"]["previous_claimed_by"] == alice["id"]
    error_of(await a.post(f"/api/conversations/{conv}/release"), 409, "not_claimed")  # released already

    # Once released, anyone may claim; a coordinator may take a claim back to the queue.
    ok(await b.post(f"/api/conversations/{conv}/claim"))
    back = ok(await coordinator.post(f"/api/conversations/{conv}/release"))["conversation"]
    assert back["status"] == "open" and back["claimed_by"] is None
    last = (await events_since(admin, event["seq"]))[-1]
    assert last["type"] == "conversation.released" and last["actor_id"] == boss["id"]


async def test_an_idle_claim_expires_back_to_the_queue(db_url: str) -> None:
    settings = make_settings(db_url, claim_lease_seconds=1, lease_sweep_seconds=0.1)
    db = Database(db_url)
    with ServerThread(create_app(settings)) as running:
        server = Harness(running.url, settings, db)
        try:
            admin, account = await setup(server)
            conv = (await server.inbound(admin, account["id"]))["conversation_id"]
            agent, alice = await token_user(server, "agent")
            other, _ = await token_user(server, "agent")
            seq = await last_seq(admin)
            claimed = ok(await agent.post(f"/api/conversations/{conv}/claim"))["conversation"]
            assert claimed["status"] == "claimed"

            async def released() -> list[dict[str, Any]] | None:
                events = [e for e in await events_since(admin, seq, conv) if e["type"] == "conversation.released"]
                return events or None

            [event] = await wait_for(released, "the lease to expire")
            assert event["actor_id"] is None
            assert event["data"]["reason"] == "lease_expired"
            assert event["data"]["previous_claimed_by"] == alice["id"]
            d = await detail(admin, conv)
            assert d["status"] == "open" and d["claimed_by"] is None and d["claim_expires_at"] is None
            assert conv in await queue_ids(admin, status="open")
            # It is free for anyone now.
            assert ok(await other.post(f"/api/conversations/{conv}/claim"))["conversation"]["status"] == "claimed"
        finally:
            for c in server.clients:
                await c.aclose()
            await db.dispose()


async def test_escalate_to_a_user(server: Harness) -> None:
    admin, account = await setup(server)
    conv = (await server.inbound(admin, account["id"]))["conversation_id"]
    a, alice = await token_user(server, "agent")
    b, _ = await token_user(server, "agent")
    expert, erik = await token_user(server, "expert", "Vergunningen")
    ok(await a.post(f"/api/conversations/{conv}/claim"))
    # Someone else cannot escalate what Alice holds.
    error_of(await b.post(f"/api/conversations/{conv}/escalate", json={"user_id": erik["id"], "note": "hm"}),
             409, "already_claimed")
    seq = await last_seq(admin)

    escalated = ok(await a.post(f"/api/conversations/{conv}/escalate",
                                json={"user_id": erik["id"], "note": "Erik weet dit"}))["conversation"]
    assert escalated["status"] == "escalated" and escalated["claimed_by"] is None
    assert escalated["assignee"] == {"type": "user", "id": erik["id"], "name": erik["name"]}
    [event] = await events_since(admin, seq)
    assert event["type"] == "conversation.escalated" and event["actor_id"] == alice["id"]
    assert event["data"]["to"] == {"type": "user", "id": erik["id"], "name": erik["name"]}
    assert event["data"]["note"] == "Erik weet dit"
    notes = [m for m in (await detail(expert, conv))["messages"] if m["direction"] == "note"]
    assert [(m["id"], m["text"], m["author"]["id"]) for m in notes] == [
        (event["data"]["message_id"], "Erik weet dit", alice["id"])]

    # The expert sees it in their own view; the others do not.
    assert await queue_ids(expert, assignee="me") == [conv]
    assert await queue_ids(a, assignee="me") == []
    assert await queue_ids(a, assignee=str(erik["id"])) == [conv]
    assert conv in await queue_ids(a, status="escalated")

    # The expert claims (it stays escalated), replies, and the reply is queued.
    claimed = ok(await expert.post(f"/api/conversations/{conv}/claim"))["conversation"]
    assert claimed["status"] == "escalated" and claimed["claimed_by"]["id"] == erik["id"]
    reply = ok(await expert.post(f"/api/conversations/{conv}/replies", json={"text": "Zo werkt het."}), 201)["reply"]
    assert reply["state"] == "queued"
    error_of(await b.post(f"/api/conversations/{conv}/claim"), 409, "already_claimed")

    # Releasing the claim keeps the assignment; releasing again hands it back to the queue.
    kept = ok(await expert.post(f"/api/conversations/{conv}/release"))["conversation"]
    assert kept["status"] == "escalated" and kept["claimed_by"] is None
    assert kept["assignee"]["id"] == erik["id"]
    seq = await last_seq(admin)
    back = ok(await expert.post(f"/api/conversations/{conv}/release"))["conversation"]
    assert back["status"] == "open" and back["assignee"] is None and back["claimed_by"] is None
    [handed] = await events_since(admin, seq)
    assert handed["type"] == "conversation.released" and handed["data"]["handed_back"] is True
    assert await queue_ids(expert, assignee="me") == []

    # Unknown targets are 404; escalating a closed conversation is 409.
    error_of(await a.post(f"/api/conversations/{conv}/escalate", json={"user_id": 999_999, "note": "x"}),
             404, "user_not_found")
    error_of(await a.post(f"/api/conversations/{conv}/escalate", json={"department_id": 999_999, "note": "x"}),
             404, "department_not_found")
    ok(await a.post(f"/api/conversations/{conv}/close", json={"reason": "resolved"}))
    error_of(await a.post(f"/api/conversations/{conv}/escalate", json={"user_id": erik["id"], "note": "x"}),
             409, "invalid_state")


async def test_escalate_to_a_department(server: Harness) -> None:
    admin, account = await setup(server)
    conv = (await server.inbound(admin, account["id"]))["conversation_id"]
    parking, _ = await token_user(server, "agent", "Parkeren")
    member, _ = await token_user(server, "agent", "Afval")
    expert, erik = await token_user(server, "expert", "Afval")
    waste = next(d for d in ok(await admin.get("/api/departments"))["items"] if d["name"] == "Afval")
    seq = await last_seq(admin)

    escalated = ok(await parking.post(f"/api/conversations/{conv}/escalate",
                                      json={"department_id": waste["id"], "note": "Voor Afval"}))["conversation"]
    assert escalated["status"] == "escalated"
    assert escalated["assignee"] == {"type": "department", "id": waste["id"], "name": "Afval"}
    [event] = await events_since(admin, seq)
    assert event["type"] == "conversation.escalated"
    assert event["data"]["to"] == {"type": "department", "id": waste["id"], "name": "Afval"}
    assert [m["text"] for m in (await detail(admin, conv))["messages"] if m["direction"] == "note"] == ["Voor Afval"]

    assert await queue_ids(expert, assignee="me") == [conv]
    assert await queue_ids(member, assignee="me") == [conv]
    assert await queue_ids(parking, assignee="me") == []
    assert conv in await queue_ids(parking, department_id=waste["id"])

    # Outside the department it cannot be handed back; inside it can.
    error_of(await parking.post(f"/api/conversations/{conv}/release"), 409, "not_claimed")
    back = ok(await expert.post(f"/api/conversations/{conv}/release"))["conversation"]
    assert back["status"] == "open" and back["assignee"] is None
    assert await queue_ids(member, assignee="me") == []
    assert erik["department_id"] == waste["id"]


async def notes_stay_inside(server: Harness) -> None:
    admin, account = await setup(server)
    conv = (await server.inbound(admin, account["id"]))["conversation_id"]
    a, alice = await token_user(server, "agent")
    seq = await last_seq(admin)
    note = ok(await a.post(f"/api/conversations/{conv}/notes", json={"text": "Bel eerst de afdeling"}), 201)["note"]
    assert note["direction"] == "note" and note["text"] == "Bel eerst de afdeling"
    assert note["author"]["id"] == alice["id"] and isinstance(note["id"], int)
    [event] = await events_since(admin, seq)
    assert event["type"] == "note.added" and event["actor_id"] == alice["id"]
    assert event["data"]["message"]["id"] == note["id"]
    d = await detail(a, conv)
    assert d["status"] == "open"  # a note changes no state
    assert [(m["direction"], m["text"]) for m in d["messages"]][-1] == ("note", "Bel eerst de afdeling")
    async with server.db.read() as s:
        assert await s.scalar(sa.select(sa.func.count()).select_from(Reply)
                              .where(Reply.conversation_id == conv)) == 0  # a note never goes out


async def test_replies_are_queued_and_notes_stay_inside(server: Harness) -> None:
    admin, account = await setup(server)
    conv = (await server.inbound(admin, account["id"]))["conversation_id"]
    a, alice = await token_user(server, "agent")
    b, _ = await token_user(server, "agent")
    seq = await last_seq(admin)

    reply = ok(await a.post(f"/api/conversations/{conv}/replies", json={"text": "Dank voor uw vraag!"}), 201)["reply"]
    assert reply["state"] == "queued" and isinstance(reply["id"], int)
    # Replying to an open conversation claims it for the one replying.
    events = await events_since(admin, seq)
    assert types(events) == ["conversation.claimed", "reply.queued"]
    assert events[1]["data"]["reply_id"] == reply["id"] and events[1]["actor_id"] == alice["id"]
    d = await detail(a, conv)
    assert d["status"] == "claimed" and d["claimed_by"]["id"] == alice["id"]
    [out] = [m for m in d["messages"] if m["direction"] == "out"]
    assert out["text"] == "Dank voor uw vraag!" and out["author"]["id"] == alice["id"]
    # Its current state: queued, or for a moment "sending" while the outbox worker looks at it (an API
    # channel without a callback URL keeps its replies queued).
    assert out["reply"]["id"] == reply["id"] and out["state"] == out["reply"]["state"]
    assert out["state"] in ("queued", "sending")
    async with server.db.read() as s:
        row = await s.get(Reply, reply["id"])
        assert row is not None and row.state in ("queued", "sending") and row.conversation_id == conv
        assert row.message_id == out["id"] and row.user_id == alice["id"]

    # A second reply by the holder writes no second claim event.
    ok(await a.post(f"/api/conversations/{conv}/replies", json={"text": "Nog iets"}), 201)
    assert types(await events_since(admin, events[-1]["seq"])) == ["reply.queued"]
    # Someone else cannot reply over her claim; nobody can reply to a closed conversation.
    error_of(await b.post(f"/api/conversations/{conv}/replies", json={"text": "Ik ook"}), 409, "already_claimed")
    ok(await a.post(f"/api/conversations/{conv}/close", json={"reason": "resolved"}))
    error_of(await a.post(f"/api/conversations/{conv}/replies", json={"text": "Te laat"}), 409, "invalid_state")
    assert [m["text"] for m in (await detail(a, conv))["messages"] if m["direction"] == "out"] == [
        "Dank voor uw vraag!", "Nog iets"]
    await notes_stay_inside(server)


async def test_close_with_each_reason_and_reopen(server: Harness) -> None:
    admin, account = await setup(server)
    a, alice = await token_user(server, "agent")
    b, _ = await token_user(server, "agent")
    coordinator, _ = await token_user(server, "coordinator")
    for reason in ("resolved", "no_reply_needed", "spam"):
        conv = (await server.inbound(admin, account["id"]))["conversation_id"]
        seq = await last_seq(admin)
        closed = ok(await a.post(f"/api/conversations/{conv}/close", json={"reason": reason}))["conversation"]
        assert closed["status"] == "closed" and closed["close_reason"] == reason
        assert closed["waiting_since"] is None and closed["claimed_by"] is None
        [event] = await events_since(admin, seq)
        assert event["type"] == "conversation.closed" and event["data"]["reason"] == reason
        assert event["actor_id"] == alice["id"]
        error_of(await a.post(f"/api/conversations/{conv}/close", json={"reason": reason}), 409, "invalid_state")
        error_of(await b.post(f"/api/conversations/{conv}/claim"), 409, "invalid_state")
        assert conv in await queue_ids(a, status="closed")

    r = await a.post(f"/api/conversations/{conv}/close", json={"reason": "bored"})
    assert r.status_code == 400, r.text
    assert (await detail(a, conv))["close_reason"] == "spam"

    seq = await last_seq(admin)
    reopened = ok(await b.post(f"/api/conversations/{conv}/reopen"))["conversation"]
    assert reopened["status"] == "open" and reopened["close_reason"] is None
    assert reopened["waiting_since"] is not None
    [event] = await events_since(admin, seq)
    assert event["type"] == "conversation.reopened" and event["data"]["reason"] == "by_user"
    error_of(await b.post(f"/api/conversations/{conv}/reopen"), 409, "invalid_state")  # open already

    # An agent cannot close what someone else holds; a coordinator can.
    ok(await a.post(f"/api/conversations/{conv}/claim"))
    error_of(await b.post(f"/api/conversations/{conv}/close", json={"reason": "resolved"}), 409, "already_claimed")
    assert (await detail(a, conv))["status"] == "claimed"
    closed = ok(await coordinator.post(f"/api/conversations/{conv}/close", json={"reason": "resolved"}))
    assert closed["conversation"]["status"] == "closed" and closed["conversation"]["claimed_by"] is None


async def test_inbound_threads_and_reopens(server: Harness) -> None:
    admin, account = await setup(server)
    other_account = await server.api_account(admin)
    url = f"/api/accounts/{account['id']}/inbound"
    agent, _ = await token_user(server, "agent")
    first = ok(await admin.post(url, json=inbound_body("Vraag", external_id="t-1",
                                                       created_at="2026-01-01T10:00:00Z")), 201)
    conv = first["conversation_id"]
    seq = await last_seq(admin)

    follow = ok(await admin.post(url, json=inbound_body("Aanvulling", external_id="t-2", in_reply_to="t-1",
                                                        created_at="2026-01-01T11:00:00Z")), 201)
    assert follow["conversation_id"] == conv and follow["message_id"] != first["message_id"]
    assert types(await events_since(admin, seq)) == ["message.received"]
    d = await detail(agent, conv)
    assert [m["text"] for m in d["messages"]] == ["Vraag", "Aanvulling"]
    assert d["messages"][1]["in_reply_to"] == "t-1"
    assert d["last_message_at"] == "2026-01-01T11:00:00Z" and d["waiting_since"] == "2026-01-01T10:00:00Z"

    # An unknown parent, or a parent on another account, starts a new conversation.
    lone = ok(await admin.post(url, json=inbound_body("Los", in_reply_to="nope")), 201)["conversation_id"]
    elsewhere = ok(await admin.post(f"/api/accounts/{other_account['id']}/inbound",
                                    json=inbound_body("Ergens anders", in_reply_to="t-1")), 201)["conversation_id"]
    assert len({conv, lone, elsewhere}) == 3

    # A follow-up to a claimed conversation joins it and leaves the claim alone.
    ok(await agent.post(f"/api/conversations/{conv}/claim"))
    seq = await last_seq(admin)
    ok(await admin.post(url, json=inbound_body("Nog een", external_id="t-3", in_reply_to="t-2")), 201)
    assert types(await events_since(admin, seq, conv)) == ["message.received"]
    assert (await detail(agent, conv))["status"] == "claimed"

    # On a closed conversation, a follow-up reopens it.
    ok(await agent.post(f"/api/conversations/{conv}/close", json={"reason": "resolved"}))
    seq = await last_seq(admin)
    ok(await admin.post(url, json=inbound_body("Toch nog", external_id="t-4", in_reply_to="t-1")), 201)
    events = await events_since(admin, seq, conv)
    assert types(events) == ["conversation.reopened", "message.received"]
    assert events[0]["data"]["reason"] == "new_message" and events[0]["data"]["previous_status"] == "closed"
    d = await detail(agent, conv)
    assert d["status"] == "open" and d["close_reason"] is None and d["claimed_by"] is None

    # On an answered one too (answered is reached when a reply is sent; set it directly here).
    async with server.db.write() as tx:
        await tx.session.execute(sa.update(Conversation).where(Conversation.id == conv).values(
            status="answered", waiting_since=None, version=Conversation.version + 1))
    seq = await last_seq(admin)
    ok(await admin.post(url, json=inbound_body("En nog", external_id="t-5", in_reply_to="t-4")), 201)
    events = await events_since(admin, seq, conv)
    assert types(events) == ["conversation.reopened", "message.received"]
    assert events[0]["data"]["previous_status"] == "answered"
    d = await detail(agent, conv)
    assert d["status"] == "open" and d["waiting_since"] is not None
    assert [m["external_id"] for m in d["messages"]] == ["t-1", "t-2", "t-3", "t-4", "t-5"]


async def test_queue_filters(server: Harness) -> None:
    admin, parking_account = await setup(server)
    waste_account = await server.api_account(admin, department="Afval")
    departments = {d["name"]: d["id"] for d in ok(await admin.get("/api/departments"))["items"]}
    agent, _ = await token_user(server, "agent", "Parkeren")
    waste_agent, _ = await token_user(server, "agent", "Afval")

    async def new(account: dict[str, Any], text: str, **fields: Any) -> int:
        r = await admin.post(f"/api/accounts/{account['id']}/inbound", json=inbound_body(text, **fields))
        return int(ok(r, 201)["conversation_id"])

    c_open = await new(parking_account, "Parkeerboete 100% onterecht")
    c_claimed = await new(parking_account, "snake_case is geen Nederlands")
    c_escalated = await new(parking_account, "snakeXcase en een pad a/b",
                            author={"id": "u-9", "handle": "jan_jansen", "name": "Jan Jansen"})
    c_closed = await new(waste_account, "Container vol (100 euro?)")
    c_waste = await new(waste_account, "Gft niet opgehaald, 'vandaag' \\ morgen. Été in ÜTRECHT")
    ok(await agent.post(f"/api/conversations/{c_claimed}/claim"))
    ok(await agent.post(f"/api/conversations/{c_escalated}/escalate",
                        json={"department_id": departments["Afval"], "note": "afval"}))
    ok(await agent.post(f"/api/conversations/{c_closed}/close", json={"reason": "spam"}))
    everything = {c_open, c_claimed, c_escalated, c_closed, c_waste}
    assert set(await queue_ids(agent)) == everything

    assert set(await queue_ids(agent, status="open")) == {c_open, c_waste}
    assert set(await queue_ids(agent, status="open,closed")) == {c_open, c_waste, c_closed}
    assert set(await queue_ids(agent, status=" claimed , escalated ")) == {c_claimed, c_escalated}
    assert set(await queue_ids(agent, status="answered")) == set()
    assert set(await queue_ids(agent, account_id=waste_account["id"])) == {c_closed, c_waste}
    assert set(await queue_ids(agent, account_id=parking_account["id"], status="open")) == {c_open}
    # A department's view: its accounts' conversations and what is escalated to it.
    assert set(await queue_ids(agent, department_id=departments["Afval"])) == {c_escalated, c_closed, c_waste}
    assert set(await queue_ids(agent, department_id=departments["Parkeren"])) == {c_open, c_claimed, c_escalated}
    assert await queue_ids(waste_agent, assignee="me") == [c_escalated]
    assert await queue_ids(agent, assignee="me") == []
    assert await queue_ids(agent, account_id=999_999) == []

    # Text search: case-insensitive, in message text and author, and wildcards are matched literally.
    assert await queue_ids(agent, q="%") == [c_open]
    assert await queue_ids(agent, q="100%") == [c_open]
    assert set(await queue_ids(agent, q="100")) == {c_open, c_closed}
    assert set(await queue_ids(agent, q="_")) == {c_claimed, c_escalated}  # snake_case, and jan_jansen
    assert await queue_ids(agent, q="e_c") == [c_claimed]
    assert await queue_ids(agent, q="PARKEERBOETE") == [c_open]
    assert await queue_ids(agent, q="JAN_JANSEN") == [c_escalated]
    assert await queue_ids(agent, q="a/b") == [c_escalated]
    assert await queue_ids(agent, q="/") == [c_escalated]
    assert await queue_ids(agent, q="'vandaag'") == [c_waste]
    assert await queue_ids(agent, q="\\") == [c_waste]
    assert await queue_ids(agent, q="(100 euro?)") == [c_closed]
    assert await queue_ids(agent, q="afval") == [c_escalated]  # the escalation note is searched too
    # Case-insensitive beyond ASCII too, on both engines.
    for needle in ("Été", "été", "ÉTÉ", "ütrecht", "ÜTRECHT"):
        assert await queue_ids(agent, q=needle) == [c_waste], needle
    assert await queue_ids(agent, q="%%") == []
    assert await queue_ids(agent, q="*") == []
    assert set(await queue_ids(agent, q="100", status="closed")) == {c_closed}
    # A later message of a conversation is searched too.
    ok(await admin.post(f"/api/accounts/{parking_account['id']}/inbound",
                        json=inbound_body("Kenteken XY-123-Z", in_reply_to=None)), 201)
    first_ext = (await detail(agent, c_open))["messages"][0]["external_id"]
    ok(await admin.post(f"/api/accounts/{parking_account['id']}/inbound",
                        json=inbound_body("ook kenteken QQ-999", in_reply_to=first_ext)), 201)
    assert await queue_ids(agent, q="qq-999") == [c_open]


async def test_paging_sees_every_conversation_exactly_once(server: Harness) -> None:
    admin, account = await setup(server)
    agent, _ = await token_user(server, "agent")
    base = dt.datetime(2026, 2, 1, 8, 0, tzinfo=dt.UTC)
    created: set[int] = set()

    async def push(i: int, limiter: anyio.CapacityLimiter) -> None:
        async with limiter:
            # Only 7 distinct timestamps: the paging must break ties by id, not lose or repeat them.
            at = (base + dt.timedelta(minutes=i % 7)).isoformat()
            r = await admin.post(f"/api/accounts/{account['id']}/inbound",
                                 json=inbound_body(f"bericht {i}", created_at=at))
            created.add(ok(r, 201)["conversation_id"])

    limiter = anyio.CapacityLimiter(6)
    async with anyio.create_task_group() as tg:
        for i in range(120):
            tg.start_soon(push, i, limiter)
    assert len(created) == 120

    seen: list[dict[str, Any]] = []
    pages = []
    cursor = None
    while True:
        params: dict[str, Any] = {"limit": 50}
        if cursor:
            params["cursor"] = cursor
        page = ok(await agent.get("/api/conversations", params=params))
        pages.append(len(page["items"]))
        seen += page["items"]
        cursor = page["next_cursor"]
        if cursor is None:
            break
        assert len(pages) < 10, "paging does not end"
    assert pages == [50, 50, 20]
    ids = [item["id"] for item in seen]
    assert len(ids) == len(set(ids)) == 120 and set(ids) == created
    keys = [(item["last_message_at"], item["id"]) for item in seen]
    assert keys == sorted(keys, reverse=True)  # newest activity first, ties by id

    # Filters and paging together: the open ones after claiming some, in pages of 7.
    for conversation_id in ids[:10]:
        ok(await agent.post(f"/api/conversations/{conversation_id}/claim"))
    open_ids: list[int] = []
    cursor = None
    while True:
        params = {"limit": 7, "status": "open", **({"cursor": cursor} if cursor else {})}
        page = ok(await agent.get("/api/conversations", params=params))
        open_ids += [item["id"] for item in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert open_ids == ids[10:]


async def test_a_restricted_account_is_seen_only_by_its_department_and_coordinators(server: Harness) -> None:
    admin, public_account = await setup(server)
    restricted = await server.api_account(admin, department="Jeugdzorg", restricted=True)
    outsider, _ = await token_user(server, "agent", "Parkeren")
    insider, _ = await token_user(server, "agent", "Jeugdzorg")
    coordinator, _ = await token_user(server, "coordinator", "Communicatie")
    seq = await last_seq(admin)
    secret = ok(await admin.post(f"/api/accounts/{restricted['id']}/inbound",
                                 json=inbound_body("Vertrouwelijke zaak")), 201)["conversation_id"]
    public = ok(await admin.post(f"/api/accounts/{public_account['id']}/inbound",
                                 json=inbound_body("Openbare vraag")), 201)["conversation_id"]
    ok(await insider.post(f"/api/conversations/{secret}/notes", json={"text": "intern"}), 201)

    # The outsider: 404 for the conversation and its verbs, absent in lists, search and the event log.
    error_of(await outsider.get(f"/api/conversations/{secret}"), 404, "conversation_not_found")
    for verb, body in [("claim", None), ("release", None), ("reopen", None), ("notes", {"text": "x"}),
                       ("replies", {"text": "x"}), ("close", {"reason": "spam"}),
                       ("escalate", {"department_id": restricted["department_id"], "note": "x"})]:
        error_of(await outsider.post(f"/api/conversations/{secret}/{verb}", json=body), 404,
                 "conversation_not_found")
    assert await queue_ids(outsider) == [public]
    assert await queue_ids(outsider, q="Vertrouwelijke") == []
    assert await queue_ids(outsider, account_id=restricted["id"]) == []
    outsider_events = await events_since(outsider, seq)
    assert {e["conversation_id"] for e in outsider_events} == {public}
    assert types(outsider_events) == ["conversation.created", "message.received"]
    assert restricted["id"] not in [a["id"] for a in ok(await outsider.get("/api/accounts"))["items"]]
    error_of(await outsider.get(f"/api/accounts/{restricted['id']}"), 404, "account_not_found")

    # Its own department and coordinators see everything.
    for viewer in (insider, coordinator):
        assert set(await queue_ids(viewer)) == {secret, public}
        assert await queue_ids(viewer, q="Vertrouwelijke") == [secret]
        assert (await detail(viewer, secret))["messages"][0]["text"] == "Vertrouwelijke zaak"
        events = await events_since(viewer, seq)
        assert {e["conversation_id"] for e in events} == {secret, public}
        assert "note.added" in types(events)
    # And nothing the outsider tried changed anything.
    d = await detail(insider, secret)
    assert d["status"] == "open" and d["claimed_by"] is None
    assert [m["direction"] for m in d["messages"]] == ["in", "note"]
    async with server.db.read() as s:
        assert await s.scalar(sa.select(sa.func.count()).select_from(Message).where(
            Message.conversation_id == secret)) == 2
    assert ok(await insider.post(f"/api/conversations/{secret}/claim"))["conversation"]["status"] == "claimed"
