"""Response-time metrics from scripted conversations whose times are known: a clock moved by hand
drives the real inbox, outbox and ingest; the figures come back through the HTTP API and are checked
against medians and p90s worked out by hand (PostgreSQL's percentile_cont: linear between ranks).

The figures are read from log-scale buckets, so each must lie within ``RELATIVE_ERROR`` of the
exact value; counts are exact.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import secrets
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from connectors.base import Author, InboundMessage
from tests.conftest import Harness, ServerThread, make_settings
from webcare import people
from webcare.access import Actor
from webcare.app import create_app
from webcare.connections import ConnectorPool
from webcare.db import Database
from webcare.inbox import Inbox
from webcare.ingest import ingest
from webcare.metrics import RELATIVE_ERROR, rebuild_counts
from webcare.metrics_models import MetricCount
from webcare.outbox import Outbox
from webcare.schemas import UserIn
from webcare.security import Keys

pytestmark = pytest.mark.anyio

MIN = 60.0
TOPICS = ["Waar blijft mijn parkeervergunning?", "De container in onze straat is niet geleegd.",
          "Hoe laat is het zwembad open op zondag?", "Er ligt een omgevallen boom op het fietspad.",
          "Kan ik mijn paspoort ook op zaterdag ophalen?", "Waarom is de rekening van de afvalstoffenheffing hoger?"]


class Clock:
    """The time every unit of work of the rig's database sees; moved by the test."""

    def __init__(self, at: dt.datetime) -> None:
        self.at = at

    def __call__(self) -> dt.datetime:
        return self.at


def utc(*args: int) -> dt.datetime:
    return dt.datetime(*args, tzinfo=dt.UTC)


@dataclass
class Rig:
    harness: Harness
    clock: Clock
    db: Database
    inbox: Inbox
    outbox: Outbox
    admin: httpx.AsyncClient
    coordinator: httpx.AsyncClient
    callback_url: str

    async def department(self, name: str) -> int:
        known = (await self.admin.get("/api/departments")).json()["items"]
        found = next((d["id"] for d in known if d["name"] == name), None)
        if found is not None:
            return int(found)
        r = await self.admin.post("/api/departments", json={"name": name})
        assert r.status_code == 201, r.text
        return int(r.json()["id"])

    async def account(self, department_id: int, handle: str) -> int:
        r = await self.admin.post("/api/accounts", json={
            "platform": "api", "handle": handle, "name": f"Site {handle}", "department_id": department_id,
            "settings": {"callback_url": self.callback_url}, "credentials": {"secret": "s" * 32}})
        assert r.status_code == 201, r.text
        return int(r.json()["id"])

    async def agent(self, name: str, department_id: int) -> Actor:
        user = await people.create_user(self.db, UserIn(  # type: ignore[arg-type]
            email=f"{secrets.token_hex(4)}@test.webcare", name=name, role="agent", department_id=department_id))
        return Actor(user["id"], user["email"], user["name"], user["role"], user["department_id"])

    async def post(self, account_id: int, posted: dt.datetime, *, in_reply_to: str | None = None,
                   handle: str | None = None) -> tuple[int, str]:
        """A message from the public, posted at ``posted`` by the platform's clock; (conversation, external id).

        Each from another person about another thing, so that no duplicate detection links them."""
        self.clock.at = max(self.clock.at, posted)
        external_id = secrets.token_hex(6)
        handle = handle or f"burger{external_id}"
        topic = TOPICS[int(external_id, 16) % len(TOPICS)]
        done = await ingest(self.db, account_id, InboundMessage(
            external_id=external_id, author=Author(f"id-{external_id}", handle, "Burger"),
            text=f"{topic} (zaak {external_id})", created_at=posted, in_reply_to=in_reply_to))
        return done.conversation_id, external_id

    async def reply(self, conversation_id: int, by: Actor, at: dt.datetime) -> None:
        """A reply written and sent at ``at`` (through the outbox and the account's callback)."""
        self.clock.at = at
        await self.inbox.reply(by, conversation_id, "Dank voor uw bericht, we zoeken het uit.")
        assert await self.outbox.drain() == 1

    async def close(self, conversation_id: int, by: Actor, at: dt.datetime, reason: str = "resolved") -> None:
        self.clock.at = at
        await self.inbox.close(by, conversation_id, reason)

    async def conversation(self, account_id: int, posted: dt.datetime, *, by: Actor,
                           reply_after: float | None = None, close_after: float | None = None,
                           reason: str = "resolved") -> int:
        cid, _ = await self.post(account_id, posted)
        if reply_after is not None:
            await self.reply(cid, by, posted + dt.timedelta(minutes=reply_after))
        if close_after is not None:
            await self.close(cid, by, posted + dt.timedelta(minutes=close_after), reason)
        return cid

    async def get(self, path: str, **params: Any) -> Any:
        r = await self.coordinator.get(path, params=params)
        assert r.status_code == 200, r.text
        return r.json()


async def _callback(request: Request) -> Response:
    return JSONResponse({"id": "cb-" + secrets.token_hex(6)})


@pytest.fixture
async def rig(db_url: str) -> AsyncIterator[Rig]:
    """A server without background workers for reading, and an inbox, outbox and ingest on a database whose
    clock the test moves, replying through a callback receiver on loopback."""
    settings = make_settings(db_url)
    clock = Clock(utc(2026, 1, 5, 8))
    db = Database(db_url, clock=clock)
    pool = ConnectorPool(Keys(settings.secret_key), timeout=10)
    receiver = Starlette(routes=[Route("/hook", _callback, methods=["POST"])])
    with ServerThread(create_app(settings, workers=False)) as running, ServerThread(receiver) as hooks:
        harness = Harness(running.url, settings, db)
        try:
            admin, _ = await harness.token_client("admin")
            coordinator, _ = await harness.token_client("coordinator")
            yield Rig(harness, clock, db, Inbox(db, settings), Outbox(db, pool), admin, coordinator,
                      f"{hooks.url}/hook")
        finally:
            for c in harness.clients:
                await c.aclose()
            await pool.aclose()
            await db.dispose()


def near(got: float | None, want: float) -> bool:
    """Within the buckets' error of the exact value (and the 0.1 s the API rounds to)."""
    return got is not None and abs(got - want) <= want * RELATIVE_ERROR + 0.05


def check(stats: dict[str, Any], count: int, median: float, p90: float) -> None:
    assert stats["count"] == count, stats
    assert near(stats["median"], median), (stats, median)
    assert near(stats["p90"], p90), (stats, p90)


@dataclass
class Script:
    a: int
    b: int
    parkeren: int
    afval: int
    anna: Actor
    bram: Actor
    ids: dict[str, int]


async def scripted(rig: Rig) -> Script:
    """Nine conversations in the first week of March 2026 (CET, UTC+1); minutes after the post."""
    parkeren, afval = await rig.department("Parkeren"), await rig.department("Afval")
    a, b = await rig.account(parkeren, "parkeren"), await rig.account(afval, "afval")
    anna, bram = await rig.agent("Anna", parkeren), await rig.agent("Bram", afval)
    c = rig.conversation
    ids = {
        "A1": await c(a, utc(2026, 3, 2, 8), by=anna, reply_after=10, close_after=60),
        "A2": await c(a, utc(2026, 3, 2, 9), by=anna, reply_after=20, close_after=120),
        "A3": await c(a, utc(2026, 3, 3, 8), by=anna, reply_after=30, close_after=180),
        "A4": await c(a, utc(2026, 3, 3, 12), by=bram, reply_after=40, close_after=240),
        "A5": await c(a, utc(2026, 3, 4, 8), by=anna, reply_after=50),
        "B1": await c(b, utc(2026, 3, 4, 10), by=bram, reply_after=5, close_after=30),
        "B2": await c(b, utc(2026, 3, 5, 10), by=bram, reply_after=120, close_after=600),
        "B3": await c(b, utc(2026, 3, 5, 11), by=bram, close_after=15, reason="no_reply_needed"),
        "B4": await c(b, utc(2026, 3, 5, 12), by=bram, close_after=1, reason="spam"),
    }
    return Script(a, b, parkeren, afval, anna, bram, ids)


async def test_medians_and_p90s_overall_and_per_account_department_and_user(rig: Rig) -> None:
    s = await scripted(rig)
    report = await rig.get("/api/metrics/response-times")
    # First responses 5, 10, 20, 30, 40, 50, 120 min: the median is the 4th; p90 sits at rank 5.4, between
    # 50 and 120 min: 50 + 0.4 * 70 = 78 min.
    check(report["overall"]["first_response"], 7, 30 * MIN, 78 * MIN)
    # Resolutions 15 (no reply needed), 30, 60, 120, 180, 240, 600 min; the spam counts for nothing.
    check(report["overall"]["resolution"], 7, 120 * MIN, (240 + 0.4 * 360) * MIN)
    assert report["overall"]["sla"] == {"hits": 0, "breaches": 0, "first_response": {"hits": 0, "breaches": 0},
                                        "resolution": {"hits": 0, "breaches": 0}}
    assert report["groups"] == []

    by_account = {g["key"]: g for g in (await rig.get("/api/metrics/response-times", group_by="account"))["groups"]}
    assert set(by_account) == {s.a, s.b}
    assert by_account[s.a]["name"] == "Site parkeren"
    check(by_account[s.a]["first_response"], 5, 30 * MIN, 46 * MIN)  # 10..50: rank 3.6
    check(by_account[s.b]["first_response"], 2, 62.5 * MIN, 108.5 * MIN)  # 5 and 120
    check(by_account[s.b]["resolution"], 3, 30 * MIN, (30 + 0.8 * 570) * MIN)  # 15, 30, 600

    by_department = {g["key"]: g for g in
                     (await rig.get("/api/metrics/response-times", group_by="department"))["groups"]}
    assert by_department[s.parkeren]["first_response"] == by_account[s.a]["first_response"]
    assert by_department[s.afval]["resolution"] == by_account[s.b]["resolution"]

    by_user = {g["key"]: g for g in (await rig.get("/api/metrics/response-times", group_by="user"))["groups"]}
    assert set(by_user) == {s.anna.id, s.bram.id, None}
    assert by_user[s.anna.id]["name"] == "Anna" and by_user[None]["name"] is None
    check(by_user[s.anna.id]["first_response"], 4, 25 * MIN, 44 * MIN)  # 10, 20, 30, 50
    check(by_user[s.bram.id]["first_response"], 3, 40 * MIN, 104 * MIN)  # 5, 40, 120
    check(by_user[s.anna.id]["resolution"], 3, 120 * MIN, 168 * MIN)  # 60, 120, 180
    # Closed without a reply: nobody answered it.
    check(by_user[None]["resolution"], 1, 15 * MIN, 15 * MIN)
    assert by_user[None]["first_response"]["count"] == 0 and by_user[None]["first_response"]["median"] is None


async def test_any_range_whole_days_and_partial_ones(rig: Rig) -> None:
    await scripted(rig)
    rt = "/api/metrics/response-times"
    # Partial days at both ends (read from the rows), whole days between (from the counts). First responses
    # sent in range: A4 (40), A5 (50), B1 (5); resolutions: A3 (180), A4 (240), B1 (30).
    report = await rig.get(rt, **{"from": "2026-03-03T10:00:00Z", "to": "2026-03-05T10:30:00Z"})
    check(report["overall"]["first_response"], 3, 40 * MIN, 48 * MIN)
    check(report["overall"]["resolution"], 3, 180 * MIN, 228 * MIN)
    # Whole local days 3 and 4 March (Amsterdam midnight): A3, A4, A5, B1 answered; A3, A4, B1 resolved.
    whole = await rig.get(rt, **{"from": "2026-03-03T00:00:00+01:00", "to": "2026-03-05T00:00:00+01:00"})
    check(whole["overall"]["first_response"], 4, 35 * MIN, 47 * MIN)
    assert whole["overall"]["resolution"]["count"] == 3
    # Whole months and days around them: all of it.
    everything = await rig.get(rt, **{"from": "2026-02-15T00:00:00+01:00", "to": "2027-02-01T00:00:00+01:00"})
    alltime = await rig.get(rt)
    assert everything["overall"] == alltime["overall"]
    # Within one day, from its midnight; and nothing at all.
    day = await rig.get(rt, **{"from": "2026-03-02T00:00:00+01:00", "to": "2026-03-02T09:30:00Z"})
    check(day["overall"]["first_response"], 2, 15 * MIN, 19 * MIN)  # A1 (10), A2 (20)
    empty = await rig.get(rt, **{"from": "2026-06-01T00:00:00Z", "to": "2026-06-02T00:00:00Z"})
    assert empty["overall"]["first_response"] == {"count": 0, "median": None, "p90": None}


async def test_the_counts_are_what_the_rows_say(rig: Rig) -> None:
    """Kept at write time, the counts equal a rebuild from the rows alone."""
    await scripted(rig)

    async def counts() -> set[tuple[Any, ...]]:
        async with rig.db.read() as s:
            return {tuple(r) for r in await s.execute(
                sa.select(MetricCount.dim, MetricCount.grain, MetricCount.period, MetricCount.key,
                          MetricCount.metric, MetricCount.bucket, MetricCount.n).where(MetricCount.n != 0))}

    kept = await counts()
    assert kept and all(n > 0 for *_, n in kept)
    assert await rebuild_counts(rig.db) == 9
    assert await counts() == kept


async def test_reopening_takes_a_resolution_back_until_it_closes_again(rig: Rig) -> None:
    dep = await rig.department("Parkeren")
    account = await rig.account(dep, "parkeren")
    anna = await rig.agent("Anna", dep)
    cid, first = await rig.post(account, utc(2026, 3, 4, 10))
    await rig.reply(cid, anna, utc(2026, 3, 4, 10, 5))
    await rig.close(cid, anna, utc(2026, 3, 4, 10, 30))
    report = await rig.get("/api/metrics/response-times")
    check(report["overall"]["resolution"], 1, 30 * MIN, 30 * MIN)
    # The person writes again two days later: reopened, not resolved any more.
    again, _ = await rig.post(account, utc(2026, 3, 6, 9), in_reply_to=first)
    assert again == cid
    report = await rig.get("/api/metrics/response-times")
    assert report["overall"]["resolution"]["count"] == 0
    check(report["overall"]["first_response"], 1, 5 * MIN, 5 * MIN)
    await rig.reply(cid, anna, utc(2026, 3, 6, 9, 30))
    await rig.close(cid, anna, utc(2026, 3, 6, 10))
    report = await rig.get("/api/metrics/response-times")
    check(report["overall"]["resolution"], 1, 48 * 60 * MIN, 48 * 60 * MIN)
    check(report["overall"]["first_response"], 1, 5 * MIN, 5 * MIN)  # only the first one counts
    # The resolution moved to the day it happened.
    moved = await rig.get("/api/metrics/response-times", **{"from": "2026-03-06T00:00:00+01:00"})
    assert moved["overall"]["resolution"]["count"] == 1
    rows = await _conversation_rows(rig)
    assert rows[0]["replies"] == "2" and rows[0]["reopened"] == "1"
    assert rows[0]["resolution_seconds"] == str(48 * 3600.0)


async def test_a_daily_series(rig: Rig) -> None:
    s = await scripted(rig)
    series = await rig.get("/api/metrics/series", group_by="account",
                           **{"from": "2026-03-02T00:00:00+01:00", "to": "2026-03-06T00:00:00+01:00"})
    assert series["days"] == ["2026-03-02", "2026-03-03", "2026-03-04", "2026-03-05"]
    assert series["timezone"] == "Europe/Amsterdam"
    assert [d["first_response"]["count"] for d in series["overall"]] == [2, 2, 2, 1]
    assert [d["resolution"]["count"] for d in series["overall"]] == [2, 2, 1, 2]
    b = next(g for g in series["groups"] if g["key"] == s.b)
    assert [d["first_response"]["count"] for d in b["days"]] == [0, 0, 1, 1]
    check(b["days"][3]["resolution"], 2, (15 + 0.5 * 585) * MIN, (15 + 0.9 * 585) * MIN)


async def _conversation_rows(rig: Rig, **params: str) -> list[dict[str, str]]:
    r = await rig.coordinator.get("/api/metrics/conversations.csv", params=params)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/csv")
    return list(csv.DictReader(io.StringIO(r.text)))


async def test_csv_exports(rig: Rig) -> None:
    s = await scripted(rig)
    rows = await _conversation_rows(rig)
    assert [int(r["conversation_id"]) for r in rows] == sorted(s.ids.values())
    a1 = rows[0]
    assert a1["account"] == "Site parkeren" and a1["department"] == "Parkeren" and a1["status"] == "closed"
    assert a1["started_at"] == "2026-03-02T08:00:00Z" and a1["first_response_at"] == "2026-03-02T08:10:00Z"
    assert float(a1["first_response_seconds"]) == 600 and a1["answered_by"] == "Anna"
    assert float(a1["resolution_seconds"]) == 3600 and a1["replies"] == "1" and a1["escalated"] == "false"
    spam = next(r for r in rows if int(r["conversation_id"]) == s.ids["B4"])
    assert spam["close_reason"] == "spam" and spam["resolved_at"] == ""
    assert len(await _conversation_rows(rig, **{"from": "2026-03-05T00:00:00Z"})) == 3

    r = await rig.coordinator.get("/api/metrics/response-times.csv", params={"group_by": "account"})
    table = list(csv.reader(io.StringIO(r.text)))
    assert table[0][:3] == ["key", "name", "first_response_count"]
    assert table[1][:3] == ["overall", "", "7"] and len(table) == 4

    # Text from the public never becomes a spreadsheet formula.
    await rig.post(s.a, utc(2026, 3, 6, 8), handle="=HYPERLINK(\"http://evil\")")
    evil = (await _conversation_rows(rig))[-1]
    assert evil["author_handle"].startswith("'=")


async def test_who_may_ask_and_what_is_refused(rig: Rig) -> None:
    agent, _ = await rig.harness.token_client("agent")
    for path in ("/api/metrics/response-times", "/api/metrics/backlog", "/api/metrics/series",
                 "/api/metrics/conversations.csv", "/api/metrics/response-times.csv", "/api/metrics/backlog.csv"):
        r = await agent.get(path)
        assert r.status_code == 403 and r.json()["error"]["code"] == "forbidden", (path, r.text)
    assert (await rig.harness.client().get("/api/metrics/response-times")).status_code == 401
    for params, word in (({"from": "yesterday"}, "from"), ({"to": "2026-13-01"}, "to"),
                         ({"group_by": "weekday"}, "group_by"),
                         ({"from": "2026-03-02T00:00:00Z", "to": "2026-03-01T00:00:00Z"}, "from"),
                         ({"from": "9999-12-31T23:59:59-23:59"}, "from")):
        r = await rig.coordinator.get("/api/metrics/response-times", params=params)
        assert r.status_code == 400 and word in r.json()["error"]["message"], (params, r.text)
    r = await rig.coordinator.get("/api/metrics/series", params={"from": "2020-01-01T00:00:00Z",
                                                                 "to": "2026-01-01T00:00:00Z"})
    assert r.status_code == 400
    assert (await rig.coordinator.get("/api/metrics/backlog", params={"within": "-1"})).status_code == 400
