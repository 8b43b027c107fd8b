"""The live stream on a real uvicorn, with real WebSocket clients, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import contextlib
import json
import secrets
import socket
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from tests.conftest import Harness, ServerThread, make_settings
from webcare.app import create_app
from webcare.db import Database
from webcare.eventlog import last_seq

pytestmark = pytest.mark.anyio

TIMEOUT = 20.0


# Helpers (the PostgreSQL tests use them too)


def live_url(base: str, after: int | None = None) -> str:
    url = base.replace("http://", "ws://", 1) + "/api/live"
    return url if after is None else f"{url}?after={after}"


def auth_headers(client: httpx.AsyncClient) -> dict[str, str]:
    """The credentials an httpx test client carries, as handshake headers."""
    if "authorization" in client.headers:
        return {"Authorization": client.headers["authorization"]}
    return {"Cookie": f"webcare_session={client.cookies['webcare_session']}"}


def open_live(base: str, client: httpx.AsyncClient, after: int | None = None, **kwargs: Any) -> connect:
    return connect(live_url(base, after), additional_headers=auth_headers(client), proxy=None,
                   max_size=2**24, open_timeout=TIMEOUT, **kwargs)


async def receive(ws: ClientConnection, within: float = TIMEOUT) -> dict[str, Any]:
    async with asyncio.timeout(within):
        frame = await ws.recv()
    value = json.loads(frame)
    assert isinstance(value, dict)
    return value


async def receive_event(ws: ClientConnection, within: float = TIMEOUT) -> dict[str, Any]:
    """The next event, passing over presence frames."""
    async with asyncio.timeout(within):
        while True:
            value = await receive(ws)
            if "seq" in value:
                return value


async def events_until(ws: ClientConnection, last: int, within: float = TIMEOUT) -> list[dict[str, Any]]:
    """Events until the one numbered ``last`` (or beyond it) arrives."""
    events: list[dict[str, Any]] = []
    async with asyncio.timeout(within):
        while not events or events[-1]["seq"] < last:
            events.append(await receive_event(ws))
    return events


async def presence(ws: ClientConnection, kind: str, conversation_id: int) -> list[dict[str, Any]]:
    """The next presence frame of ``kind`` for the conversation: the users in it."""
    async with asyncio.timeout(TIMEOUT):
        while True:
            value = await receive(ws)
            if value.get("type") == kind and value.get("conversation_id") == conversation_id:
                users = value["users"]
                assert isinstance(users, list)
                return users


async def current_seq(db: Database) -> int:
    return await last_seq(db)


@contextlib.asynccontextmanager
async def running(db_url: str, *, workers: bool = True, **overrides: Any) -> AsyncIterator[Harness]:
    """A server like the ``server`` fixture's, with settings of the test's own."""
    settings = make_settings(db_url, **{"lease_sweep_seconds": 0.2, **overrides})
    db = Database(db_url)
    with ServerThread(create_app(settings, workers=workers)) as srv:
        harness = Harness(srv.url, settings, db)
        try:
            yield harness
        finally:
            for c in harness.clients:
                await c.aclose()
            await db.dispose()


async def write_notes(client: httpx.AsyncClient, conversation_id: int, n: int, *, text: str = "note",
                      parallel: int = 1) -> None:
    queue = list(range(n))

    async def worker() -> None:
        while queue:
            i = queue.pop()
            r = await client.post(f"/api/conversations/{conversation_id}/notes", json={"text": f"{text} {i}"})
            assert r.status_code == 201, r.text

    await asyncio.gather(*(worker() for _ in range(parallel)))


async def conversation(server: Harness, admin: httpx.AsyncClient, **account: Any) -> int:
    acc = await server.api_account(admin, **account)
    return int((await server.inbound(admin, acc["id"]))["conversation_id"])


# Authentication


async def test_an_unauthenticated_upgrade_is_refused(server: Harness) -> None:
    url = live_url(server.url, 0)
    with pytest.raises(InvalidStatus) as refused:
        async with connect(url, proxy=None):
            pass
    assert refused.value.response.status_code == 401
    assert json.loads(refused.value.response.body or b"")["error"]["code"] == "not_authenticated"

    with pytest.raises(InvalidStatus) as refused:
        async with connect(url, proxy=None, additional_headers={"Authorization": "Bearer not-a-token"}):
            pass
    assert refused.value.response.status_code == 401

    agent, _ = await server.token_client()
    with pytest.raises(InvalidStatus) as refused:
        async with open_live(server.url, agent, after="x"):  # type: ignore[arg-type]
            pass
    assert refused.value.response.status_code == 400


async def test_the_session_cookie_works_from_the_own_site_only(server: Harness) -> None:
    admin, _ = await server.token_client("admin")
    conv = await conversation(server, admin)
    agent, me = await server.session_client()
    after = await current_seq(server.db)
    with pytest.raises(InvalidStatus) as refused:
        async with open_live(server.url, agent, after, origin="http://evil.example"):  # type: ignore[arg-type]
            pass
    assert refused.value.response.status_code == 403

    async with open_live(server.url, agent, after, origin=server.url) as ws:  # type: ignore[arg-type]
        assert (await agent.post(f"/api/conversations/{conv}/claim")).status_code == 200
        event = await receive_event(ws)
    assert (event["type"], event["conversation_id"], event["actor_id"]) == ("conversation.claimed", conv, me["id"])
    assert event["seq"] == after + 1


# Replay and live: no gap, no duplicate, in order


async def test_replay_then_live(server: Harness) -> None:
    admin, _ = await server.token_client("admin")
    conv = await conversation(server, admin)
    async with open_live(server.url, admin, 0) as ws:
        replayed = await events_until(ws, 2)
        assert [(e["seq"], e["type"]) for e in replayed] == [(1, "conversation.created"), (2, "message.received")]
        assert set(replayed[0]) == {"seq", "type", "conversation_id", "actor_id", "at", "data"}
        assert (await admin.post(f"/api/conversations/{conv}/claim")).status_code == 200
        claimed = await receive_event(ws)
    assert (claimed["seq"], claimed["type"], claimed["conversation_id"]) == (3, "conversation.claimed", conv)
    # Live (from the hub's buffer) and replayed (from the event log) frames are the same frame.
    async with open_live(server.url, admin, 2) as ws:
        assert await receive_event(ws) == claimed
    events = (await admin.get("/api/events", params={"after": 2})).json()["events"]
    assert events == [claimed]


async def test_a_client_that_missed_500_events_gets_exactly_those(server: Harness) -> None:
    admin, _ = await server.token_client("admin")
    conv = await conversation(server, admin)
    async with open_live(server.url, admin, await current_seq(server.db)) as ws:
        assert (await admin.post(f"/api/conversations/{conv}/claim")).status_code == 200
        last = (await receive_event(ws))["seq"]
    # Offline: 500 changes go by.
    await write_notes(admin, conv, 500, parallel=8)
    async with open_live(server.url, admin, last) as ws:
        missed = await events_until(ws, last + 500)
        assert [e["seq"] for e in missed] == list(range(last + 1, last + 501))
        assert {e["type"] for e in missed} == {"note.added"}
        assert sorted(e["data"]["message"]["text"] for e in missed) == sorted(f"note {i}" for i in range(500))
        # And nothing more: the next frame is the next change, not a repeat.
        assert (await admin.post(f"/api/conversations/{conv}/release")).status_code == 200
        following = await receive_event(ws)
    assert (following["seq"], following["type"]) == (last + 501, "conversation.released")


async def test_events_that_commit_during_the_replay_arrive_once_in_order(server: Harness) -> None:
    admin, user = await server.token_client("admin")
    conv = await conversation(server, admin)
    # A backlog long enough that the replay takes several pages ...
    for _ in range(4):
        async with server.db.write() as tx:
            for i in range(1000):
                tx.emit("note.added", conv, user["id"], backlog=i)
    # ... while notes keep committing through the API.
    writer = asyncio.create_task(write_notes(admin, conv, 300, parallel=4))
    seen: list[int] = []
    arrived = asyncio.Event()

    async def collect(ws: ClientConnection) -> None:
        while True:
            seen.append((await receive_event(ws))["seq"])
            arrived.set()

    try:
        async with open_live(server.url, admin, 0) as ws:
            collector = asyncio.create_task(collect(ws))
            try:
                await writer
                final = await current_seq(server.db)
                async with asyncio.timeout(TIMEOUT):
                    while not seen or seen[-1] < final:
                        assert not collector.done(), collector
                        arrived.clear()
                        await arrived.wait()
            finally:
                collector.cancel()
    finally:
        writer.cancel()
    assert final >= 4300
    assert seen == list(range(1, final + 1))


# Visibility


async def test_a_user_receives_only_events_about_conversations_they_may_see(server: Harness) -> None:
    admin, _ = await server.token_client("admin")
    hidden = await conversation(server, admin, department="Afval", restricted=True)
    agent, _ = await server.token_client(department="Parkeren")
    insider, _ = await server.token_client(department="Afval")
    after = await current_seq(server.db)
    async with open_live(server.url, agent, after) as outside, open_live(server.url, insider, after) as inside:
        assert (await insider.post(f"/api/conversations/{hidden}/claim")).status_code == 200
        public = await conversation(server, admin)
        # The insider sees both; the outsider's first event is the public conversation's.
        inside_events = await events_until(inside, after + 3)
        assert [e["conversation_id"] for e in inside_events] == [hidden, public, public]
        first = await receive_event(outside)
        assert (first["seq"], first["conversation_id"]) == (after + 2, public)
    # The replay keeps the same secret.
    async with open_live(server.url, agent, 0) as ws:
        replayed = await events_until(ws, after + 3)
    assert hidden not in {e["conversation_id"] for e in replayed}
    assert public in {e["conversation_id"] for e in replayed}


# Slow clients


def _small_window_socket() -> socket.socket:
    sock = socket.socket()
    # A client that reads nothing with a tiny receive window: the server's buffers fill fast.
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.setblocking(False)
    return sock


async def test_a_client_that_cannot_keep_up_is_closed_with_4000_and_delays_nobody(db_url: str) -> None:
    async with running(db_url, live_buffer_size=20) as server:
        admin, _ = await server.token_client("admin")
        conv = await conversation(server, admin)
        after = await current_seq(server.db)
        sock = _small_window_socket()
        await asyncio.get_running_loop().sock_connect(sock, ("127.0.0.1", int(server.url.rsplit(":", 1)[1])))
        async with open_live(server.url, admin, after, sock=sock, max_queue=1, compression=None) as slow, \
                open_live(server.url, admin, after) as fast:
            # Big notes, so that the kernel's and uvicorn's buffers fill with a few hundred of them.
            big = "x" * 19_000
            n = 400
            received: list[int] = []
            for i in range(n):
                r = await admin.post(f"/api/conversations/{conv}/notes", json={"text": f"{big} {i}"})
                assert r.status_code == 201, r.text
                # The fast client keeps up, however stuck the slow one is.
                received.append((await receive_event(fast, within=5))["seq"])
            assert received == list(range(after + 1, after + n + 1))
            # The slow client, reading at last, finds a gap-free prefix and then the close.
            got: list[int] = []
            with pytest.raises(ConnectionClosed) as closed:
                while True:
                    got.append((await receive_event(slow))["seq"])
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 4000
        assert got == list(range(after + 1, after + len(got) + 1))
        assert len(got) < n
        # Reconnecting with its last seq brings the rest.
        async with open_live(server.url, admin, got[-1] if got else after) as ws:
            rest = await events_until(ws, after + n)
        assert [e["seq"] for e in rest] == list(range((got[-1] if got else after) + 1, after + n + 1))


# Presence


async def test_presence_who_views_and_who_types_until_they_leave(server: Harness) -> None:
    admin, _ = await server.token_client("admin")
    conv = await conversation(server, admin)
    hidden = await conversation(server, admin, department="Afval", restricted=True)
    anna_client, anna = await server.session_client(name="Anna")
    bram_client, bram = await server.token_client(name="Bram")
    async with open_live(server.url, anna_client) as a:
        await a.send(json.dumps({"type": "presence.viewing", "conversation_id": conv}))
        assert await presence(a, "presence.viewing", conv) == []
        async with open_live(server.url, bram_client) as b:
            await b.send(json.dumps({"type": "presence.viewing", "conversation_id": conv}))
            assert await presence(a, "presence.viewing", conv) == [{"id": bram["id"], "name": "Bram"}]
            assert await presence(b, "presence.viewing", conv) == [{"id": anna["id"], "name": "Anna"}]
            await b.send(json.dumps({"type": "presence.typing", "conversation_id": conv, "typing": True}))
            assert await presence(a, "presence.typing", conv) == [{"id": bram["id"], "name": "Bram"}]
            await b.send(json.dumps({"type": "presence.typing", "conversation_id": conv, "typing": False}))
            assert await presence(a, "presence.typing", conv) == []
            # A conversation one may not see cannot be viewed, so nobody learns of it.
            await b.send(json.dumps({"type": "presence.viewing", "conversation_id": hidden}))
            error = await receive(b)
            while error["type"] != "error":
                assert error["type"].startswith("presence."), error
                error = await receive(b)
            assert error["error"]["code"] == "conversation_not_found"
            await b.send(json.dumps({"type": "presence.typing", "conversation_id": conv}))
            assert await presence(a, "presence.typing", conv) == [{"id": bram["id"], "name": "Bram"}]
        # Bram's socket closed: he is gone from both lists (sent in this order).
        assert await presence(a, "presence.viewing", conv) == []
        assert await presence(a, "presence.typing", conv) == []
        async with open_live(server.url, bram_client) as b:
            await b.send(json.dumps({"type": "presence.viewing", "conversation_id": conv}))
            assert await presence(a, "presence.viewing", conv) == [{"id": bram["id"], "name": "Bram"}]
            await b.send(json.dumps({"type": "presence.leave"}))
            assert await presence(a, "presence.viewing", conv) == []
            # Presence is ephemeral: it is not in the event log.
            events = (await admin.get("/api/events", params={"after": 0, "limit": 1000})).json()["events"]
            assert not [e for e in events if e["type"].startswith("presence.")]


async def test_bad_client_messages_get_an_error_and_the_stream_goes_on(server: Harness) -> None:
    admin, _ = await server.token_client("admin")
    conv = await conversation(server, admin)
    async with open_live(server.url, admin, await current_seq(server.db)) as ws:
        for bad, code in [("not json", "malformed_json"), ("[1]", "invalid_message"),
                          ('{"type": "shout"}', "invalid_message"),
                          ('{"type": "presence.viewing", "conversation_id": "x"}', "invalid_message"),
                          ('{"type": "presence.viewing", "conversation_id": 999999}', "conversation_not_found"),
                          ("{" + " " * 5000 + "}", "invalid_message")]:
            await ws.send(bad)
            reply = await receive(ws)
            assert (reply["type"], reply["error"]["code"]) == ("error", code), bad
        await ws.send(b"binary")
        assert (await receive(ws))["error"]["code"] == "invalid_message"
        assert (await admin.post(f"/api/conversations/{conv}/claim")).status_code == 200
        assert (await receive_event(ws))["type"] == "conversation.claimed"


async def test_events_written_by_another_process_arrive_by_the_poll(db_url: str) -> None:
    """A writer that tells no broker (the CLI, a worker elsewhere) is found by the hub's slow poll."""
    async with running(db_url, live_poll_seconds=0.3) as server:
        admin, user = await server.token_client("admin")
        conv = await conversation(server, admin)
        after = await current_seq(server.db)
        async with open_live(server.url, admin, after) as ws:
            other = Database(db_url)
            try:
                async with other.write() as tx:
                    tx.emit("note.added", conv, user["id"], marker=secrets.token_hex(4))
            finally:
                await other.dispose()
            event = await receive_event(ws, within=3)
        assert (event["seq"], event["type"]) == (after + 1, "note.added")


async def closed_with(ws: ClientConnection) -> int | None:
    """Read until the server closes the socket; its close code."""
    with pytest.raises(ConnectionClosed) as closed:
        async with asyncio.timeout(TIMEOUT):
            while True:
                await ws.recv()
    return closed.value.rcvd.code if closed.value.rcvd else None


async def test_a_stream_ends_when_its_credentials_no_longer_hold(server: Harness) -> None:
    admin, _ = await server.token_client("admin")
    # A user deactivated: the socket opened with their token is closed, and cannot be opened again.
    agent, user = await server.token_client("agent")
    async with open_live(server.url, agent) as ws:
        assert (await admin.patch(f"/api/users/{user['id']}", json={"active": False})).status_code == 200
        assert await closed_with(ws) == 4001
    with pytest.raises(InvalidStatus) as refused:
        async with open_live(server.url, agent):
            pass
    assert refused.value.response.status_code == 401

    # A session logged out elsewhere: the same.
    browser, _ = await server.session_client("agent")
    async with open_live(server.url, browser, origin=server.url) as ws:
        assert (await browser.delete("/api/session")).status_code == 204
        assert await closed_with(ws) == 4001

    # A role changed: the stream showed what the old role may see, so it ends; a new one opens.
    expert, user = await server.token_client("agent")
    async with open_live(server.url, expert) as ws:
        assert (await admin.patch(f"/api/users/{user['id']}", json={"role": "expert"})).status_code == 200
        assert await closed_with(ws) == 4001
    async with open_live(server.url, expert) as ws:
        with pytest.raises(TimeoutError):  # and this one stays open
            await receive(ws, within=1.0)
