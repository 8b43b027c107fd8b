"""SLA targets on business hours: deadlines over a weekend, a holiday and both daylight-saving
changes (worked out by hand), hits and breaches, the sweeper's one breach per conversation and
target (also with two sweepers at once), the warning on the live stream, the backlog, and the API
that manages targets and hours."""

from __future__ import annotations

import asyncio
import datetime as dt
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from tests.test_live import open_live, receive_event, running
from tests.test_metrics import Rig, utc
from tests.test_metrics import rig as rig  # the fixture
from webcare.db import Database
from webcare.metrics import settle_overdue
from webcare.metrics_models import ConversationMetrics

pytestmark = pytest.mark.anyio

OFFICE = {d: [["09:00", "17:00"]] for d in ("mon", "tue", "wed", "thu", "fri")}


def ok(r: httpx.Response, status: int = 200) -> Any:
    assert r.status_code == status, f"{r.request.method} {r.request.url}: {r.status_code} {r.text}"
    return r.json() if r.content else None


async def row(rig: Rig, conversation_id: int) -> ConversationMetrics:
    async with rig.db.read() as s:
        found = await s.get(ConversationMetrics, conversation_id)
    assert found is not None
    return found


async def breach_events(rig: Rig, conversation_id: int | None = None) -> list[dict[str, Any]]:
    out, after = [], 0
    while True:
        page = ok(await rig.coordinator.get("/api/events", params={"after": after, "limit": 1000}))
        if not page["events"]:
            break
        out += page["events"]
        after = page["last_seq"]
    return [e for e in out if e["type"] == "conversation.sla_breached"
            and (conversation_id is None or e["conversation_id"] == conversation_id)]


async def target(rig: Rig, **body: Any) -> dict[str, Any]:
    return dict(ok(await rig.coordinator.post("/api/sla/targets", json=body), 201))


async def test_deadlines_over_a_weekend_a_holiday_and_both_dst_changes(rig: Rig) -> None:
    dep = await rig.department("Parkeren")
    a = await rig.account(dep, "parkeren")
    anna = await rig.agent("Anna", dep)
    ok(await rig.coordinator.put("/api/business-hours/organisation",
                                 json={"week": OFFICE, "holidays": ["2026-04-06"]}))  # Easter Monday
    # First response: an hour of business time, or four calendar hours for a message outside opening hours.
    await target(rig, metric="first_response", within_minutes=60, clock="business", outside_hours_minutes=240)
    await target(rig, metric="resolution", within_minutes=16 * 60, account_id=a)

    # Sunday 29 March 01:30 CET, the night the clocks go forward: outside hours, so four real hours: 04:30 UTC
    # (06:30 CEST). Resolution: Monday and Tuesday 09:00-17:00 CEST: Tuesday 17:00 CEST, 15:00 UTC.
    c3, _ = await rig.post(a, utc(2026, 3, 29, 0, 30))
    m = await row(rig, c3)
    assert (m.fr_due_at, m.res_due_at) == (utc(2026, 3, 29, 4, 30), utc(2026, 3, 31, 15))

    # Friday 3 April 16:30 CEST: half an hour on Friday, Easter Monday closed, the other half on Tuesday:
    # 09:30 CEST (07:30 UTC). Resolution: Friday 0.5 h + Tuesday 8 h + Wednesday 7.5 h: Wednesday 16:30 CEST.
    c1, _ = await rig.post(a, utc(2026, 4, 3, 14, 30))
    m = await row(rig, c1)
    assert (m.fr_due_at, m.res_due_at) == (utc(2026, 4, 7, 7, 30), utc(2026, 4, 8, 14, 30))
    # Saturday 4 April 10:00 CEST, outside hours: 14:00 CEST. Resolution: Tuesday and Wednesday, 17:00 CEST.
    c2, _ = await rig.post(a, utc(2026, 4, 4, 8))
    m = await row(rig, c2)
    assert (m.fr_due_at, m.res_due_at) == (utc(2026, 4, 4, 12), utc(2026, 4, 8, 15))

    await rig.reply(c1, anna, utc(2026, 4, 7, 7, 20))  # ten minutes to spare
    await rig.reply(c2, anna, utc(2026, 4, 7, 7, 25))  # three days late
    await rig.close(c1, anna, utc(2026, 4, 8, 14))
    await rig.close(c2, anna, utc(2026, 4, 9, 8))
    assert ((await row(rig, c1)).fr_sla, (await row(rig, c1)).res_sla) == ("hit", "hit")
    assert ((await row(rig, c2)).fr_sla, (await row(rig, c2)).res_sla) == ("breached", "breached")
    report = ok(await rig.coordinator.get("/api/metrics/response-times"))
    assert report["overall"]["sla"] == {"hits": 2, "breaches": 2, "first_response": {"hits": 1, "breaches": 1},
                                        "resolution": {"hits": 1, "breaches": 1}}
    # A reply that comes too late still warns, once, with the deadline it missed.
    events = await breach_events(rig, c2)
    assert [(e["data"]["target"], e["data"]["due_at"]) for e in events] == [
        ("first_response", "2026-04-04T12:00:00Z"), ("resolution", "2026-04-08T15:00:00Z")]

    # The autumn change, on a department's own hours (08:00-20:00 every day) and a calendar of its own:
    # Saturday 24 October 19:00 CEST + 3 business hours: one hour on Saturday, then Sunday from 08:00 CET
    # (07:00 UTC, an hour later in UTC than the day before): 10:00 CET, 09:00 UTC.
    late = await rig.department("Late")
    b = await rig.account(late, "late")
    daily = {d: [["08:00", "20:00"]] for d in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")}
    ok(await rig.coordinator.put(f"/api/departments/{late}/business-hours", json={"week": daily}))
    await target(rig, metric="first_response", within_minutes=180, department_id=late)
    c4, _ = await rig.post(b, utc(2026, 10, 24, 17))
    assert (await row(rig, c4)).fr_due_at == utc(2026, 10, 25, 9)
    # The department's own target holds for first response; for resolution only account A has one.
    assert (await row(rig, c4)).res_due_at is None


async def test_the_sweeper_breaches_once_per_conversation_and_target(rig: Rig, db_url: str) -> None:
    dep = await rig.department("Parkeren")
    a = await rig.account(dep, "parkeren")
    anna = await rig.agent("Anna", dep)
    await target(rig, metric="first_response", within_minutes=60, clock="calendar")
    await target(rig, metric="resolution", within_minutes=120, clock="calendar")
    t0 = utc(2026, 5, 4, 10)
    cid, _ = await rig.post(a, t0)
    rig.clock.at = t0 + dt.timedelta(minutes=59)
    assert await settle_overdue(rig.db) == 0
    # Two sweepers (two processes, say) at once, a minute past the first deadline.
    rig.clock.at = t0 + dt.timedelta(minutes=61)
    other = Database(db_url, clock=rig.clock)
    try:
        done = await asyncio.gather(settle_overdue(rig.db), settle_overdue(other), settle_overdue(rig.db))
    finally:
        await other.dispose()
    assert sorted(done) == [0, 0, 1]
    events = await breach_events(rig, cid)
    assert [(e["data"]["target"], e["data"]["due_at"]) for e in events] == [("first_response", "2026-05-04T11:00:00Z")]
    # The reply comes late: still that one warning, and a breach in the counts, on the deadline's day.
    await rig.reply(cid, anna, t0 + dt.timedelta(minutes=90))
    rig.clock.at = t0 + dt.timedelta(minutes=121)
    assert await settle_overdue(rig.db) == 1  # now the resolution target
    assert await settle_overdue(rig.db) == 0
    events = await breach_events(rig, cid)
    assert [e["data"]["target"] for e in events] == ["first_response", "resolution"]
    assert all(e["data"]["account_id"] == a and e["actor_id"] is None for e in events)
    report = ok(await rig.coordinator.get("/api/metrics/response-times", params={"group_by": "user"}))
    assert report["overall"]["sla"]["breaches"] == 2 and report["overall"]["sla"]["hits"] == 0
    # The breach counts with whoever answered, once someone did.
    anna_group = next(g for g in report["groups"] if g["key"] == anna.id)
    assert anna_group["sla"]["first_response"] == {"hits": 0, "breaches": 1}
    # Closing later changes no decided outcome.
    await rig.close(cid, anna, t0 + dt.timedelta(minutes=200))
    assert len(await breach_events(rig, cid)) == 2
    assert ok(await rig.coordinator.get("/api/metrics/response-times"))["overall"]["sla"]["breaches"] == 2


async def test_a_breach_reaches_the_live_stream(db_url: str) -> None:
    async with running(db_url, sla_sweep_seconds=0.05) as server:
        admin, _ = await server.token_client("admin")
        account = await server.api_account(admin)
        ok(await admin.post("/api/sla/targets", json={"metric": "first_response", "within_minutes": 60,
                                                      "clock": "calendar"}), 201)
        async with open_live(server.url, admin) as ws:
            posted = dt.datetime.now(dt.UTC) - dt.timedelta(hours=2)
            created = await server.inbound(admin, account["id"], created_at=posted.isoformat())
            while True:
                event = await receive_event(ws)
                if event["type"] == "conversation.sla_breached":
                    break
            assert event["conversation_id"] == created["conversation_id"]
            assert event["data"]["target"] == "first_response"


async def test_the_backlog(rig: Rig) -> None:
    dep = await rig.department("Parkeren")
    a = await rig.account(dep, "parkeren")
    other = await rig.account(await rig.department("Afval"), "afval")
    anna = await rig.agent("Anna", dep)
    await target(rig, metric="first_response", within_minutes=60, clock="calendar")
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    rig.clock.at = now
    overdue, _ = await rig.post(a, now - dt.timedelta(hours=2))
    soon, _ = await rig.post(a, now - dt.timedelta(minutes=50))
    fresh, _ = await rig.post(a, now - dt.timedelta(minutes=5))
    answered, _ = await rig.post(other, now - dt.timedelta(minutes=30))
    rig.clock.at = now
    await rig.reply(answered, anna, now)
    await rig.inbox.claim(anna, fresh)
    assert await settle_overdue(rig.db) == 1

    backlog = ok(await rig.coordinator.get("/api/metrics/backlog"))
    assert backlog["overall"]["waiting"] == 3 and backlog["overall"]["answered"] == 1
    accounts = {g["key"]: g for g in backlog["accounts"]}
    assert (accounts[a]["open"], accounts[a]["claimed"], accounts[a]["waiting"]) == (2, 1, 3)
    assert accounts[a]["oldest_waiting_since"] == (now - dt.timedelta(hours=2)).isoformat().replace("+00:00", "Z")
    assert 7200 <= accounts[a]["oldest_waiting_seconds"] < 7260
    assert accounts[other]["waiting"] == 0 and accounts[other]["answered"] == 1
    assert backlog["departments"][0]["key"] == dep
    assert [c["conversation_id"] for c in backlog["oldest_waiting"]] == [overdue, soon, fresh]
    assert [c["conversation_id"] for c in backlog["at_risk"]] == [soon]
    assert 0 < backlog["at_risk"][0]["seconds_left"] <= 600
    assert [(c["conversation_id"], c["target"]) for c in backlog["breached"]] == [(overdue, "first_response")]
    wider = ok(await rig.coordinator.get("/api/metrics/backlog", params={"within": 3600}))
    assert [c["conversation_id"] for c in wider["at_risk"]] == [soon, fresh]
    text = (await rig.coordinator.get("/api/metrics/backlog.csv")).text
    assert text.splitlines()[0].startswith("kind,key,name,open,claimed")
    assert f"account,{a},Site parkeren,2,1,0,0,3," in text


async def test_managing_targets_and_hours(rig: Rig) -> None:
    dep = await rig.department("Parkeren")
    a = await rig.account(dep, "parkeren")
    agent, _ = await rig.harness.token_client("agent")
    body = {"metric": "first_response", "within_minutes": 60}
    assert (await agent.post("/api/sla/targets", json=body)).status_code == 403
    created = await target(rig, **body)
    assert created["scope"] == "organisation" and created["clock"] == "business"
    assert ok(await agent.get("/api/sla/targets"))["items"] == [created]
    r = await rig.coordinator.post("/api/sla/targets", json=body)
    assert r.status_code == 409 and r.json()["error"]["code"] == "target_exists"
    for bad in ({**body, "account_id": a, "department_id": dep}, {**body, "within_minutes": 0},
                {**body, "metric": "happiness"}, {**body, "colour": "red"}, {**body, "within_minutes": "60"}):
        r = await rig.coordinator.post("/api/sla/targets", json=bad)
        assert r.status_code == 400, (bad, r.text)
    r = await rig.coordinator.post("/api/sla/targets", json={**body, "account_id": 999_999})
    assert r.status_code == 404

    # A conversation waiting now gets its deadline from the hours; changing the target or the hours moves it.
    monday = utc(2026, 6, 1, 8)  # 10:00 CEST
    cid, _ = await rig.post(a, monday)
    assert (await row(rig, cid)).fr_due_at == utc(2026, 6, 1, 9)
    ok(await rig.coordinator.patch(f"/api/sla/targets/{created['id']}", json={"within_minutes": 420}))
    assert (await row(rig, cid)).fr_due_at == utc(2026, 6, 1, 15)  # 17:00 CEST
    ok(await rig.coordinator.put(f"/api/departments/{dep}/business-hours",
                                 json={"timezone": "Europe/London", "week": {"mon": [["09:00", "12:00"]]}}))
    # Seven hours of Mondays 09:00-12:00 in London (08:00 UTC on): 3 + 3 + 1, so 10:00 BST on 15 June.
    assert (await row(rig, cid)).fr_due_at == utc(2026, 6, 15, 9)
    hours = ok(await agent.get("/api/business-hours"))["items"]
    assert hours[0]["scope"] == "organisation" and hours[0]["built_in"] and hours[0]["timezone"] == "Europe/Amsterdam"
    assert hours[1]["department_id"] == dep and hours[1]["week"]["mon"] == [["09:00", "12:00"]]
    assert (await rig.coordinator.delete(f"/api/departments/{dep}/business-hours")).status_code == 204
    assert (await rig.coordinator.delete(f"/api/departments/{dep}/business-hours")).status_code == 404
    assert (await row(rig, cid)).fr_due_at == utc(2026, 6, 1, 15)
    assert (await rig.coordinator.delete(f"/api/sla/targets/{created['id']}")).status_code == 204
    assert (await rig.coordinator.delete(f"/api/sla/targets/{created['id']}")).status_code == 404
    assert (await row(rig, cid)).fr_due_at is None

    for bad_hours in ({"week": {"mon": [["09:00", "12:00"], ["11:00", "13:00"]]}}, {"week": {}},
                      {"week": OFFICE, "timezone": "Mars/Olympus"}, {"week": {"mon": [["9", "12"]]}},
                      {"week": OFFICE, "holidays": ["Easter"]}, {"week": {"funday": [["09:00", "12:00"]]}}):
        r = await rig.coordinator.put("/api/business-hours/organisation", json=bad_hours)
        assert r.status_code == 400, (bad_hours, r.text)
    r = await rig.coordinator.put("/api/departments/999999/business-hours", json={"week": OFFICE})
    assert r.status_code == 404
    assert (await agent.put("/api/business-hours/organisation", json={"week": OFFICE})).status_code == 403
    ok(await rig.coordinator.put("/api/business-hours/organisation", json={"week": OFFICE}))
    assert not ok(await agent.get("/api/business-hours"))["items"][0]["built_in"]
    async with rig.db.read() as s:
        assert await s.scalar(sa.select(sa.func.count()).select_from(ConversationMetrics)) == 1
