"""The event log's reading promise: a reader that keeps paging with ``after=last_seq`` sees every event
exactly once, in order, even while many writers commit at once; and the paging rules of GET /api/events."""

from __future__ import annotations

import itertools
import random
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import anyio
import httpx
import pytest
import sqlalchemy as sa

from connectors.base import Author, InboundMessage
from tests.conftest import Harness
from webcare import people
from webcare.access import Actor
from webcare.errors import Conflict
from webcare.eventlog import DEFAULT_LIMIT, MAX_LIMIT, events_after
from webcare.inbox import Inbox
from webcare.ingest import ingest
from webcare.models import Event, utcnow
from webcare.schemas import UserIn

pytestmark = pytest.mark.anyio

WRITERS = 10
ROUNDS = 3

Page = tuple[list[int], int]


class Commits:
    """Wakes a waiting reader whenever the writers' database commits events (or they finish)."""

    def __init__(self) -> None:
        self._event = anyio.Event()

    def handle(self) -> anyio.Event:
        return self._event

    def notify(self, _last_seq: int | None = None) -> None:
        self._event.set()
        self._event = anyio.Event()


@dataclass
class Followed:
    seqs: list[int] = field(default_factory=list)
    #: Pages with events that came back while the writers were still writing.
    live_pages: int = 0


async def follow(fetch: Callable[[int], Awaitable[Page]], done: anyio.Event, commits: Commits) -> Followed:
    """Page through the log with after=last_seq until the writers are done and nothing is left."""
    seen = Followed()
    after = 0
    while True:
        finished = done.is_set()
        wake = commits.handle()  # taken before reading: a commit during the read is not missed
        seqs, last = await fetch(after)
        if seqs:
            assert seqs[0] > after, (after, seqs)
            assert all(a < b for a, b in itertools.pairwise(seqs)), seqs
            assert last == seqs[-1]
            seen.seqs.extend(seqs)
            after = last
            if not finished:
                seen.live_pages += 1
            continue
        assert last == after
        if finished:
            return seen
        await wake.wait()


async def actors(server: Harness, n: int) -> list[Actor]:
    tag = secrets.token_hex(3)
    out = []
    for i in range(n):
        u = await people.create_user(server.db, UserIn(email=f"w{i}-{tag}@test.webcare", name=f"Writer {i}",
                                                       role="agent"), department_name="Parkeren")
        out.append(Actor(u["id"], u["email"], u["name"], u["role"], u["department_id"]))
    return out


def message(external_id: str, *, in_reply_to: str | None = None) -> InboundMessage:
    return InboundMessage(external_id=external_id, author=Author("a-" + external_id, "someone", "Someone"),
                          text=f"message {external_id}", created_at=utcnow(), in_reply_to=in_reply_to)


async def test_reader_sees_every_event_once_while_many_write(server: Harness) -> None:
    admin, _ = await server.token_client("admin")
    account = await server.api_account(admin)
    writers = await actors(server, WRITERS)
    inbox = Inbox(server.db, server.settings)
    commits = Commits()
    server.db.add_commit_listener(commits.notify)
    done = anyio.Event()
    opened: list[tuple[int, str]] = []

    async def write(index: int, actor: Actor) -> None:
        rng = random.Random(index)
        for i in range(ROUNDS):
            external_id = f"w{index}-{i}"
            mine = await ingest(server.db, account["id"], message(external_id))
            await inbox.claim(actor, mine.conversation_id)
            await inbox.add_note(actor, mine.conversation_id, "ik pak hem")
            # Offered to the others only now that it is claimed: they may try, and lose.
            opened.append((mine.conversation_id, external_id))
            other, other_external = rng.choice(opened)
            try:
                await inbox.claim(actor, other)
            except Conflict:
                pass
            await ingest(server.db, account["id"], message(f"{external_id}-re", in_reply_to=other_external))
            if i % 3 == 2:
                await inbox.release(actor, mine.conversation_id)

    async def over_http(after: int) -> Page:
        r = await admin.get("/api/events", params={"after": after, "limit": 5})
        assert r.status_code == 200, r.text
        body = r.json()
        return [e["seq"] for e in body["events"]], body["last_seq"]

    async def direct(after: int) -> Page:
        async with server.db.read() as s:
            events = await events_after(s, None, after, 7)
        return [e.seq for e in events], events[-1].seq if events else after

    readers: dict[str, Followed] = {}

    async def reader(name: str, fetch: Callable[[int], Awaitable[Page]]) -> None:
        readers[name] = await follow(fetch, done, commits)

    async def writing() -> None:
        async with anyio.create_task_group() as tg:
            for index, actor in enumerate(writers):
                tg.start_soon(write, index, actor)
        done.set()
        commits.notify()

    with anyio.fail_after(90):
        async with anyio.create_task_group() as tg:
            tg.start_soon(reader, "http", over_http)
            tg.start_soon(reader, "direct", direct)
            tg.start_soon(writing)

    async with server.db.read() as s:
        everything = list(await s.scalars(sa.select(Event.seq).order_by(Event.seq)))
    # Each writer round commits at least five events (created, received, claimed, note, received).
    assert len(everything) >= WRITERS * ROUNDS * 5
    for name, seen in readers.items():
        # Every committed event was returned, once: none committed below a number already handed out.
        assert seen.seqs == everything, name
        # And the reader really raced the writers rather than reading a finished log.
        assert seen.live_pages >= 3, (name, seen.live_pages)


async def many_events(server: Harness, conversation_id: int, n: int) -> None:
    """``n`` events in one transaction, emitted the way every service emits them."""
    async with server.db.write() as tx:
        for i in range(n):
            tx.emit("note.added", conversation_id, None, bulk=i)


async def get_events(client: httpx.AsyncClient, **params: Any) -> dict[str, Any]:
    r = await client.get("/api/events", params=params)
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    assert set(body) == {"events", "last_seq"}
    return body


async def test_limit_default_and_clamp(server: Harness) -> None:
    admin, _ = await server.token_client("admin")
    account = await server.api_account(admin)
    conversation_id = (await server.inbound(admin, account["id"]))["conversation_id"]
    await many_events(server, conversation_id, 1058)
    async with server.db.read() as s:
        everything = list(await s.scalars(sa.select(Event.seq).order_by(Event.seq)))
    assert len(everything) == 1060

    default = await get_events(admin)
    assert [e["seq"] for e in default["events"]] == everything[:DEFAULT_LIMIT] == everything[:100]
    assert default["last_seq"] == everything[99]
    assert set(default["events"][0]) == {"seq", "type", "conversation_id", "actor_id", "at", "data"}
    assert [e["type"] for e in default["events"][:2]] == ["conversation.created", "message.received"]

    for asked in (1001, 5000, 10**9):
        clamped = await get_events(admin, limit=asked)
        assert [e["seq"] for e in clamped["events"]] == everything[:MAX_LIMIT] == everything[:1000], asked
        assert clamped["last_seq"] == everything[999]
    exact = await get_events(admin, limit=1000)
    assert len(exact["events"]) == 1000
    small = await get_events(admin, after=everything[10], limit=3)
    assert [e["seq"] for e in small["events"]] == everything[11:14]
    assert small["last_seq"] == everything[13]
    rest = await get_events(admin, after=everything[999], limit=1000)
    assert [e["seq"] for e in rest["events"]] == everything[1000:]
    assert rest["last_seq"] == everything[-1]


async def test_last_seq_is_after_when_nothing_follows(server: Harness) -> None:
    admin, _ = await server.token_client("admin")
    empty = await get_events(admin)
    assert empty == {"events": [], "last_seq": 0}
    assert await get_events(admin, after=42) == {"events": [], "last_seq": 42}

    account = await server.api_account(admin)
    await server.inbound(admin, account["id"])
    page = await get_events(admin, after=0)
    assert [e["type"] for e in page["events"]] == ["conversation.created", "message.received"]
    last = page["last_seq"]
    assert last == page["events"][-1]["seq"]
    assert await get_events(admin, after=last) == {"events": [], "last_seq": last}
    assert await get_events(admin, after=last + 1000, limit=10) == {"events": [], "last_seq": last + 1000}

    async with server.db.read() as s:
        assert await events_after(s, None, last, 10) == []
        assert [e.seq for e in await events_after(s, None, 0, 10)] == [e["seq"] for e in page["events"]]
