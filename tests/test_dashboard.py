"""The coordinators' dashboard in a real headless Chromium: charts drawn by Chart.js from the metrics API,
the backlog, and the conversations close to their SLA or past it, following the live stream.

Response times are scripted as in test_metrics.py: an inbox, outbox and ingest on a database whose clock
the test moves, against a server (without connector workers) that the browser reads. Each test runs on
SQLite and PostgreSQL.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import re
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tests.conftest import Harness, ServerThread, make_settings
from tests.test_frontend import HOSTILE, LOW_CONTRAST, UNLABELLED, expect, open_as, shot
from tests.test_frontend import launch as launch  # the fixture
from tests.test_metrics import Clock, Rig, near
from webcare.app import create_app
from webcare.connections import ConnectorPool
from webcare.db import Database
from webcare.inbox import Inbox
from webcare.metrics import settle_overdue
from webcare.outbox import Outbox
from webcare.security import Keys

pytestmark = pytest.mark.anyio

ZONE = ZoneInfo("Europe/Amsterdam")  # the organisation's, as the settings have it by default
MIN = 60.0
CHART_DATA = """(name) => {
  const chart = Chart.getChart(document.querySelector(`[data-chart="${name}"] canvas`));
  return chart ? { labels: chart.data.labels, datasets: chart.data.datasets.map((d) => ({ label: d.label,
    data: d.data })) } : null;
}"""


async def _callback(request: Request) -> Response:
    return JSONResponse({"id": "cb-" + secrets.token_hex(6)})


@contextlib.asynccontextmanager
async def board(db_url: str, **overrides: Any) -> AsyncIterator[Rig]:
    """A server for the browser and a rig (test_metrics.Rig) whose clock the test moves to script the past."""
    settings = make_settings(db_url, **{"lease_sweep_seconds": 0.2, "live_poll_seconds": 0.2, **overrides})
    clock = Clock(dt.datetime.now(dt.UTC) - dt.timedelta(days=5))
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


def local_day(days_ago: int, hour: int = 10) -> dt.datetime:
    """``hour`` o'clock in the organisation's zone, ``days_ago`` days before today there, in UTC."""
    day = dt.datetime.now(ZONE).date() - dt.timedelta(days=days_ago)
    return dt.datetime.combine(day, dt.time(hour), tzinfo=ZONE).astimezone(dt.UTC)


async def open_dashboard(launch: Callable[[], Awaitable[Any]], server: Harness, user: dict[str, Any],
                         **kwargs: Any) -> Any:
    person = await open_as(launch, server, user, **kwargs)
    async with person.page.expect_response(lambda r: "/api/metrics/series?" in r.url) as answer:
        await person.page.get_by_role("link", name="Dashboard").click()
    person.series = await (await answer.value).json()
    return person


async def chart(page: Any, name: str, until: str = "true") -> Any:
    """The data of the chart ``name`` once it is drawn and ``until`` (JavaScript on it, ``c``) holds."""
    # A function, not an expression: the page's CSP forbids the eval Playwright would poll an expression with.
    await page.wait_for_function(
        f"(name) => {{ const c = window.Chart && ({CHART_DATA})(name); return c && ({until}); }}", arg=name)
    return await page.evaluate(CHART_DATA, name)


async def test_the_charts_show_what_the_api_answers_per_account_and_department(
        db_url: str, launch: Callable[[], Awaitable[Any]]) -> None:
    async with board(db_url, sla_sweep_seconds=3600) as rig:
        parkeren, afval = await rig.department("Parkeren"), await rig.department("Afval")
        a = await rig.account(parkeren, "parkeren")
        r = await rig.admin.patch(f"/api/accounts/{await rig.account(afval, 'afval')}", json={"name": HOSTILE[0]})
        assert r.status_code == 200, r.text
        b = r.json()["id"]
        anna, bram = await rig.agent("Anna", parkeren), await rig.agent("Bram", afval)
        r = await rig.coordinator.post("/api/sla/targets", json={"metric": "first_response", "within_minutes": 30,
                                                                 "clock": "calendar"})
        assert r.status_code == 201, r.text
        c = rig.conversation
        await c(a, local_day(3), by=anna, reply_after=10, close_after=60)
        await c(a, local_day(3, 11), by=anna, reply_after=20, close_after=120)
        await c(b, local_day(3, 12), by=bram, reply_after=30, close_after=90)
        await c(a, local_day(2), by=anna, reply_after=40, close_after=300)  # a breach, by the reply
        await c(b, local_day(2, 11), by=bram, reply_after=5, close_after=30)
        overdue = await c(a, local_day(2, 12), by=anna)  # never answered: the sweep breaches it
        await c(b, local_day(1), by=bram, reply_after=60, close_after=600)
        now = dt.datetime.now(dt.UTC)
        soon, _ = await rig.post(b, now - dt.timedelta(minutes=10), handle=HOSTILE[1])
        rig.clock.at = now
        assert await settle_overdue(rig.db) == 1

        coordinator = await open_dashboard(launch, rig.harness, await rig.harness.user("coordinator"))
        page = coordinator.page
        series = coordinator.series
        assert series["group_by"] == "account" and len(series["days"]) == 30
        assert series["days"][-1] == dt.datetime.now(ZONE).date().isoformat()
        drawn = await chart(page, "first-response")
        assert len(drawn["labels"]) == 30
        assert [d["label"] for d in drawn["datasets"]] == [g["name"] for g in series["groups"]]
        for dataset, group in zip(drawn["datasets"], series["groups"], strict=True):
            assert dataset["data"] == [d["first_response"]["median"] for d in group["days"]]
        by_name = {d["label"]: d["data"] for d in drawn["datasets"]}
        assert near(by_name["Site parkeren"][-4], 15 * MIN) and near(by_name["Site parkeren"][-3], 40 * MIN)
        assert near(by_name[HOSTILE[0]][-4], 30 * MIN) and near(by_name[HOSTILE[0]][-2], 60 * MIN)
        assert by_name["Site parkeren"][-1] is None
        resolution = await chart(page, "resolution")
        assert [d["data"] for d in resolution["datasets"]] == [
            [d["resolution"]["median"] for d in g["days"]] for g in series["groups"]]
        sla = await chart(page, "sla")
        assert sla["datasets"][0]["data"] == [d["sla"]["hits"] for d in series["overall"]]
        assert sla["datasets"][1]["data"] == [d["sla"]["breaches"] for d in series["overall"]]
        assert sla["datasets"][1]["data"][-3:] == [2, 1, 0]  # the late reply and the sweep; the hour-late reply
        # The same numbers as a table, for screen readers and for reading them exactly.
        figure = page.locator("[data-chart=first-response]")
        await expect(figure.locator("canvas")).to_have_attribute("role", "img")
        await expect(figure.locator("canvas")).to_have_attribute("aria-label", re.compile("in the table below"))
        table = figure.locator("table")
        await expect(table.locator("tbody tr")).to_have_count(30)
        await expect(table.locator("thead th").nth(2)).to_have_text(HOSTILE[0])
        await expect(table.locator("tbody tr").nth(26).locator("td").first).to_have_attribute(
            "data-value", str(by_name["Site parkeren"][-4]))
        await expect(table).to_be_hidden()
        await figure.get_by_text("Show the numbers").click()
        await expect(table).to_be_visible()
        await figure.get_by_text("Show the numbers").click()

        # The backlog: the numbers the API gives, and what is close to its target or past it.
        backlog = (await rig.coordinator.get("/api/metrics/backlog")).json()
        assert backlog["overall"]["waiting"] == 2
        await expect(page.locator("[data-tile=waiting] dd")).to_have_text("2")
        await expect(page.locator("[data-tile=open] dd")).to_have_text(str(backlog["overall"]["open"]))
        await expect(page.locator("[data-tile=breached] dd")).to_have_text("1")
        await expect(page.locator("[data-tile=at_risk] dd")).to_have_text("1")
        breached = page.locator(f".risk-breached [data-conversation='{overdue}']")
        await expect(breached).to_contain_text("First response")
        await expect(breached.locator(".risk-when")).to_contain_text("overdue")
        at_risk = page.locator(f".risk-at_risk [data-conversation='{soon}']")
        await expect(at_risk.locator(".risk-account")).to_have_text(HOSTILE[0])
        await expect(at_risk.locator(".risk-when")).to_have_text(re.compile(r"due in (19|20) min"))
        bars = await chart(page, "backlog")
        assert bars["labels"] == [g["name"] for g in backlog["accounts"]]
        assert bars["datasets"][0]["data"] == [g["open"] for g in backlog["accounts"]]
        # Every control named, every piece of text readable against its background.
        assert await page.evaluate(UNLABELLED) == []
        assert await page.evaluate(LOW_CONTRAST) == []
        await page.locator(".dashboard").evaluate("(el) => el.scrollTo(0, 0)")
        await shot(page, "dashboard-1280")
        await page.locator(".dashboard").evaluate("(el) => el.scrollTo(0, el.scrollHeight)")
        await shot(page, "dashboard-1280-below")
        await page.locator(".dashboard").evaluate("(el) => el.scrollTo(0, 0)")

        # Per department, and a shorter range: the page asks again and draws what comes back.
        async with page.expect_response(lambda r: "/api/metrics/series?" in r.url) as answer:
            await page.get_by_label("Per", exact=True).select_option("department")
        per_department = await (await answer.value).json()
        assert per_department["group_by"] == "department"
        drawn = await chart(page, "first-response", "c.datasets.some((d) => d.label === 'Afval')")
        assert [d["label"] for d in drawn["datasets"]] == [g["name"] for g in per_department["groups"]]
        assert sorted(d["label"] for d in drawn["datasets"]) == ["Afval", "Parkeren"]
        assert [d["data"] for d in drawn["datasets"]] == [
            [d["first_response"]["median"] for d in g["days"]] for g in per_department["groups"]]
        yesterday = (dt.datetime.now(ZONE).date() - dt.timedelta(days=1)).isoformat()
        async with page.expect_response(lambda r: "/api/metrics/series?" in r.url) as answer:
            await page.get_by_label("From", exact=True).fill(yesterday)
        assert (await (await answer.value).json())["days"][0] == yesterday
        await chart(page, "first-response", "c.labels.length === 2")
        # Since yesterday only Afval answered anything: its row, then everything together.
        await expect(page.locator(".summary tbody th")).to_have_text(["Afval", "Everything"])

        # The exports follow the range and grouping, and download with the page's own session.
        link = page.get_by_role("link", name="response times")
        href = await link.get_attribute("href")
        assert href is not None and "group_by=department" in href and "from=" in href
        csv = await page.request.get(rig.harness.url + href)
        assert csv.ok and csv.headers["content-type"].startswith("text/csv")
        assert (await csv.text()).startswith("key,name,first_response_count")
        for name in ("conversations", "backlog"):
            href = await page.get_by_role("link", name=name, exact=True).get_attribute("href")
            assert (await page.request.get(rig.harness.url + href)).ok

        await page.set_viewport_size({"width": 400, "height": 800})
        await expect(page.locator("[data-chart=backlog] canvas")).to_be_visible()
        await shot(page, "dashboard-400")
        await page.locator("[data-chart=first-response]").scroll_into_view_if_needed()
        await shot(page, "dashboard-400-charts")
        assert await page.evaluate("document.documentElement.scrollWidth <= innerWidth"), "scrolls sideways"
        assert await page.locator("#app img, #app script").count() == 0
        coordinator.check_clean()


async def test_an_agent_has_no_dashboard(db_url: str, launch: Callable[[], Awaitable[Any]]) -> None:
    async with board(db_url, sla_sweep_seconds=3600) as rig:
        agent = await open_as(launch, rig.harness, await rig.harness.user("agent"))
        page = agent.page
        asked: list[str] = []
        page.on("request", lambda r: asked.append(r.url) if "/api/metrics/" in r.url else None)
        await expect(page.get_by_role("link", name="Inbox")).to_be_visible()
        await expect(page.get_by_role("link", name="Dashboard")).to_have_count(0)
        # Typing the address shows the inbox, and nothing asks for the figures (the API would refuse: 403).
        await page.goto(f"{rig.harness.url}/#/dashboard")
        await expect(page.locator(".queue-list")).to_be_attached()
        await expect(page.locator(".dashboard")).to_have_count(0)
        assert asked == []
        agent.check_clean()


async def test_a_conversation_that_crosses_its_target_shows_up_live(
        db_url: str, launch: Callable[[], Awaitable[Any]]) -> None:
    async with board(db_url, sla_sweep_seconds=0.1) as rig:
        account = await rig.harness.api_account(rig.admin)
        target = await rig.coordinator.post("/api/sla/targets", json={"metric": "first_response",
                                                                      "within_minutes": 60, "clock": "calendar"})
        assert target.status_code == 201, target.text
        coordinator = await open_dashboard(launch, rig.harness, await rig.harness.user("coordinator"),
                                           locale="nl-NL")
        page = coordinator.page
        await expect(page.locator(".risk-at_risk")).to_have_count(0)
        await expect(page.get_by_text("Niets dat binnenkort verloopt.")).to_be_visible()
        await page.evaluate("window.__stayed = true")
        # Posted 45 minutes ago: due in a quarter of an hour, so it is close to breaching.
        posted = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=45)
        created = await rig.harness.inbound(rig.admin, account["id"], HOSTILE[0], created_at=posted.isoformat(),
                                            author={"id": "h", "handle": HOSTILE[1], "name": HOSTILE[1]})
        cid = created["conversation_id"]
        item = page.locator(f".risk-at_risk [data-conversation='{cid}']")
        await expect(item.locator(".risk-subject")).to_have_text(HOSTILE[0])
        await expect(item.locator(".risk-when")).to_have_text(re.compile(r"nog (14|15) min"))
        await expect(page.locator("[data-tile=at_risk] dd")).to_have_text("1")
        # The target tightens to half an hour: the sweeper breaches it, and the page moves it over by itself.
        r = await rig.coordinator.patch(f"/api/sla/targets/{target.json()['id']}", json={"within_minutes": 30})
        assert r.status_code == 200, r.text
        breached = page.locator(f".risk-breached [data-conversation='{cid}']")
        await expect(breached.locator(".risk-subject")).to_have_text(HOSTILE[0])
        await expect(breached.locator(".risk-when")).to_contain_text("te laat")
        await expect(breached).to_contain_text("Eerste reactie")
        await expect(page.locator(f".risk-at_risk [data-conversation='{cid}']")).to_have_count(0)
        await expect(page.locator("[data-tile=breached] dd")).to_have_text("1")
        await expect(page.locator("#announcer")).to_have_text(f"SLA overschreden (Eerste reactie): {HOSTILE[0]}")
        assert await page.evaluate("window.__stayed") is True
        assert await page.locator("#app img, #app script").count() == 0
        await shot(page, "dashboard-breach-1280")
        # Another language builds the page again, charts and all, with the same list.
        await page.get_by_label("Taal").select_option("en")
        await expect(page.get_by_role("heading", name="SLA: close to breaching and breached")).to_be_visible()
        await expect(page.locator(f".risk-breached [data-conversation='{cid}']")).to_contain_text("First response")
        await chart(page, "sla", "c.datasets[0]?.label === 'SLA hits'")
        assert await page.evaluate("Object.keys(Chart.instances).length") == 4
        coordinator.check_clean()


async def test_the_library_is_served_from_our_origin_and_nothing_else_of_node_modules(server: Harness) -> None:
    async with httpx.AsyncClient(base_url=server.url) as client:
        r = await client.get("/vendor/chart.umd.min.js")
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/javascript")
        assert r.text.startswith("/*!\n * Chart.js v4.")
        assert "script-src 'self'" in r.headers["content-security-policy"]
        assert (await client.get("/vendor/chart.umd.min.js", headers={"If-None-Match": r.headers["etag"]})
                ).status_code == 304
        for path in ("/vendor/chart.js/package.json", "/vendor/chart.umd.js", "/node_modules/chart.js/package.json",
                     "/node_modules/.package-lock.json"):
            assert (await client.get(path)).status_code == 404, path
