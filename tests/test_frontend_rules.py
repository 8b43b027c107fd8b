"""The coordinators' rule pages in a real headless Chromium against a real uvicorn: routing rules that route a
new message, the house style and approval rules that the composer and the reply path then keep, and surges
that show up live and are answered as a whole, one personalised reply per person on the platform.

Like tests/test_frontend_assist.py (whose browser fixture and helpers these share), each runs on SQLite and
PostgreSQL, and waits only on conditions: Playwright's locators and expect(...) retry until a timeout.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from tests.conftest import FakeServer, Harness
from tests.test_frontend import (
    HOSTILE,
    LOW_CONTRAST,
    UNLABELLED,
    admin_client,
    assert_layout,
    expect,
    launch,
    new_conversation,
    open_as,
    shot,
    x_account,
)
from tests.test_frontend_assist import open_conversation, posts

pytestmark = pytest.mark.anyio

__all__ = ["launch"]  # the browser fixture, shared with tests/test_frontend.py

RULE_PAGES = ["Routing", "House style", "Surges"]


async def test_a_rule_made_in_the_page_routes_a_new_message_and_agents_do_not_see_the_pages(
        server: Harness, launch: Callable[[], Awaitable[Any]]) -> None:
    admin = await admin_client(server)
    account = await server.api_account(admin)
    r = await admin.post("/api/departments", json={"name": "Afval"})
    assert r.status_code == 201, r.text
    agent = await open_as(launch, server, await server.user("agent"))
    for name in RULE_PAGES:
        await expect(agent.page.get_by_role("link", name=name, exact=True)).to_have_count(0)
    # Typed in, the address of a page for coordinators falls through to the inbox.
    await agent.page.goto(f"{server.url}/#/routing")
    await expect(agent.page.get_by_role("heading", name="All open")).to_be_visible()
    await expect(agent.page.get_by_role("heading", name="Routing rules")).to_have_count(0)

    person = await open_as(launch, server, await server.user("coordinator", name="Cor Coördinator"))
    page = person.page
    await page.evaluate("window.__ran = false")
    await page.get_by_role("link", name="Routing", exact=True).click()
    await expect(page.get_by_role("heading", name="Routing rules")).to_be_visible()
    await expect(page.locator(".table-wrap .hint")).to_have_text("No routing rules yet.")
    await page.get_by_text("New routing rule").click()
    form = page.locator(".create form")
    name = f"Grofvuil {HOSTILE[0]}"
    await form.get_by_label("Name").fill(name)
    # What the server refuses is said beside the form, and nothing is made.
    await form.get_by_role("button", name="Create").click()
    await expect(form.get_by_role("alert")).to_have_text(
        "a routing rule needs a department_id, an expert_user_id or both")
    await form.get_by_label("Department").select_option(label="Afval")
    await form.get_by_role("button", name="Create").click()
    await expect(form.get_by_role("alert")).to_have_text("a routing rule needs at least one keyword or phrase")
    await form.get_by_label("Keywords").fill("grofvuil\nbankstel*")
    await form.get_by_role("button", name="Create").click()
    row = page.locator("tbody tr").filter(has_text="grofvuil, bankstel*")
    await expect(row.locator("th")).to_have_text(name)
    await expect(row).to_contain_text("Afval")
    # One made elsewhere shows up by itself, below it.
    coordinator, _ = await server.token_client("coordinator")
    r = await coordinator.post("/api/routing-rules", json={
        "name": "Parkeren", "department_id": account["department_id"], "phrases": ["parkeervergunning aanvragen"],
        "position": 100})
    assert r.status_code == 201, r.text
    parkeren = page.locator("tbody tr").filter(has_text="parkeervergunning")
    await expect(parkeren).to_be_visible()
    await expect(page.locator("tbody th")).to_have_text([name, "Parkeren"])
    await shot(page, "rules-routing-1280")
    assert await page.evaluate(UNLABELLED) == []
    assert await page.evaluate(LOW_CONTRAST) == []
    await page.set_viewport_size({"width": 400, "height": 800})
    await shot(page, "rules-routing-400")
    await assert_layout(page, [".routing-rules", ".data"])
    await page.set_viewport_size({"width": 1280, "height": 800})

    # Moved up, turned off and on again: the order and the state are the server's.
    await page.get_by_role("button", name="Move Parkeren up").click()
    await expect(page.locator("tbody th")).to_have_text(["Parkeren", name])
    await expect(page.get_by_role("button", name="Move Parkeren down")).to_be_focused()
    listed = (await coordinator.get("/api/routing-rules")).json()["items"]
    assert [rule["name"] for rule in listed] == ["Parkeren", name]
    await page.get_by_role("button", name="Turn off Parkeren").click()
    await expect(parkeren.locator(".chip")).to_have_text("Off")
    assert [rule["active"] for rule in (await coordinator.get("/api/routing-rules")).json()["items"]] == [False, True]
    # Edited in place: a keyword more.
    await page.get_by_role("button", name=f"Edit {name}").click()
    editing = page.locator("tr.editing form")
    await editing.get_by_label("Keywords").fill("grofvuil\nbankstel*\nmatras")
    await editing.get_by_role("button", name="Save").click()
    await expect(page.locator("tbody tr").filter(has_text="grofvuil, bankstel*, matras")).to_be_visible()
    # The try box says which rule a text would meet.
    await page.get_by_text("Try a message").click()
    await page.get_by_label("Message text").fill("Wanneer halen jullie mijn oude matras op?")
    await page.get_by_role("button", name="Which rule?").click()
    await expect(page.locator(".routing-try-answer")).to_have_text(
        f"Rule “{name}” would route it: keyword 'matras'.")

    # A new message is routed by it, and the conversation says why.
    conv = await new_conversation(server, admin, account["id"], "Wanneer wordt het grofvuil opgehaald in Noord?")
    detail = (await coordinator.get(f"/api/conversations/{conv}")).json()
    assert detail["routing"]["rule_name"] == name, detail.get("routing")
    await page.get_by_role("link", name="Inbox").click()
    await open_conversation(person, conv)
    route = page.locator(".assist-route")
    await expect(route).to_contain_text(f"Routed to Afval by rule “{name}”.")
    await expect(route).to_contain_text("Why: keyword 'grofvuil'")

    await page.get_by_role("link", name="Routing", exact=True).click()
    await page.get_by_role("button", name="Delete Parkeren").click()
    await expect(page.get_by_text("Delete rule “Parkeren”?")).to_be_visible()
    await page.get_by_role("button", name="Delete", exact=True).click()
    await expect(parkeren).to_have_count(0)
    assert [rule["name"] for rule in (await coordinator.get("/api/routing-rules")).json()["items"]] == [name]
    assert await page.locator("#app img, #app script").count() == 0
    assert await page.evaluate("window.__ran") is False
    person.problems = [p for p in person.problems if "status of 400" not in p]  # the two refused on purpose
    person.check_clean()
    agent.check_clean()


async def test_house_style_and_an_approval_rule_made_in_the_page_are_kept_by_the_reply_path(
        server: Harness, launch: Callable[[], Awaitable[Any]]) -> None:
    admin = await admin_client(server)
    account = await server.api_account(admin)
    conv = await new_conversation(server, admin, account["id"], "Kan ik mijn container omruilen?")
    person = await open_as(launch, server, await server.user("coordinator", name="Cor Coördinator"))
    page = person.page
    await page.get_by_role("link", name="House style").click()
    await expect(page.get_by_role("heading", name="House style", exact=True)).to_be_visible()
    await page.get_by_label("House style of").select_option(label="Website")
    form = page.locator("form.house-form")
    await form.get_by_label("Signature").fill("^{agent_initials} {nobody}")
    await form.get_by_label("Banned phrases").fill("helaas\nzoals eerder gezegd")
    await form.get_by_label("Required elements").fill("a greeting")
    await form.get_by_role("button", name="Save house style").click()
    await expect(form.get_by_role("alert")).to_have_text("Line 1: write it as “name: option; option”.")
    await form.get_by_label("Required elements").fill("")
    await form.get_by_role("button", name="Save house style").click()
    await expect(form.get_by_role("alert")).to_contain_text("unknown variable {nobody}")
    await form.get_by_label("Signature").fill("^{agent_initials}")
    await form.get_by_role("button", name="Save house style").click()
    effective = page.locator(".house-effective")
    await expect(effective).to_contain_text("helaas, zoals eerder gezegd")
    await expect(effective.locator("dd").first).to_have_text("^{agent_initials} (this account)")
    style = (await admin.get(f"/api/accounts/{account['id']}/style")).json()["style"]
    assert style["banned_phrases"] == ["helaas", "zoals eerder gezegd"] and style["signature"] == "^{agent_initials}"

    # An approval rule for agents on this account; one without any condition is refused here already.
    await page.get_by_text("New approval rule").click()
    rules = page.locator(".approval-rule-form")
    await rules.get_by_label("Name").fill(f"Nieuwe collega's {HOSTILE[0]}")
    await rules.get_by_role("button", name="Create").click()
    await expect(rules.get_by_role("alert")).to_have_text("Choose at least one condition.")
    await rules.get_by_label("Account").select_option(label="Website")
    await rules.get_by_label("Author role").select_option(label="agent")
    await rules.get_by_role("button", name="Create").click()
    rule_row = page.locator(".approval-rules tbody tr")
    await expect(rule_row.locator("th")).to_have_text(f"Nieuwe collega's {HOSTILE[0]}")
    await expect(rule_row).to_contain_text("Account: Website · Author role: agent")
    await shot(page, "rules-house-style-1280")
    assert await page.evaluate(UNLABELLED) == []
    assert await page.evaluate(LOW_CONTRAST) == []
    await page.set_viewport_size({"width": 400, "height": 800})
    await shot(page, "rules-house-style-400")
    await assert_layout(page, [".house-style-page", ".house-form"])
    await page.set_viewport_size({"width": 1280, "height": 800})

    # The composer's check refuses the banned phrase, in the words of the page.
    await page.get_by_role("link", name="Inbox").click()
    await open_conversation(person, conv)
    await page.keyboard.press("r")
    await expect(page.locator("#composer-text")).to_be_focused()
    await page.keyboard.type("Helaas kan dat niet.")
    await expect(page.locator(".style-problem")).to_have_text("House style: the phrase “helaas” is not allowed.")
    await expect(page.locator(".style-note.note-signature")).to_have_text("Signed with “^CC” when it goes out.")

    # An agent's reply on the account waits for approval by the rule made in the page.
    agent, _ = await server.token_client("agent", name="Anouk Agent")
    r = await agent.post(f"/api/conversations/{conv}/replies", json={"text": "Dat kan, morgen al."})
    assert r.status_code == 201, r.text
    assert r.json()["reply"]["state"] == "awaiting_approval"
    waiting = (await admin.get("/api/approvals")).json()["items"]
    assert [(w["conversation_id"], [rule["name"] for rule in w["rules"]]) for w in waiting] == [
        (conv, [f"Nieuwe collega's {HOSTILE[0]}"])]

    # Deleted in the page, it holds the next reply no longer.
    await page.get_by_role("link", name="House style").click()
    await page.get_by_role("button", name=f"Delete Nieuwe collega's {HOSTILE[0]}").click()
    await page.get_by_role("button", name="Delete", exact=True).click()
    await expect(page.locator(".approval-rules .hint")).to_have_text("No approval rules yet.")
    assert (await admin.get("/api/approval-rules")).json()["items"] == []
    assert await page.locator("#app img, #app script").count() == 0
    person.problems = [p for p in person.problems if "status of 400" not in p]  # the unknown {nobody}
    person.check_clean()


SURGE = [
    ("kees", "Kees", "Waarom is de Coolsingel afgesloten? Sta al 20 min vast"),
    ("fatima", "Fatima", "Coolsingel dicht?? Hoe lang gaat dit duren"),
    ("tom", HOSTILE[0], "What's going on at Coolsingel, road closed?"),
    ("els", "Els", "Coolsingel afgesloten en geen omleiding aangegeven, belachelijk"),
]


async def test_a_surge_shows_up_live_and_one_saved_reply_answers_each_person_once(
        server: Harness, launch: Callable[[], Awaitable[Any]], fake_server: FakeServer) -> None:
    admin = await admin_client(server)
    handle = f"gemeente_{secrets.token_hex(3)}"
    account = await x_account(server, admin, fake_server, handle)
    coordinator, _ = await server.token_client("coordinator")
    r = await coordinator.post("/api/saved-replies", json={
        "department_id": account["department_id"], "title": "Coolsingel afgesloten",
        "text": "Hoi {author}, de Coolsingel is tot 18:00 afgesloten. ^{agent_initials}"})
    assert r.status_code == 201, r.text
    person = await open_as(launch, server, await server.user("coordinator", name="Cor Coördinator"))
    page = person.page
    await page.evaluate("window.__ran = false")
    # The account counts mentions from its first poll on.
    await page.get_by_role("link", name="Accounts").click()
    await expect(page.get_by_role("row", name=f"@{handle}").locator(".health-label")).to_have_text(
        "Healthy", timeout=30_000)
    await page.get_by_role("link", name="Surges").click()
    await expect(page.locator(".surges-count")).to_have_text("No surges right now.")

    for author, author_name, text in SURGE[:3]:
        fake_server.fake.inject_x_mention(handle, f"@{handle} {text}", author=author, author_name=author_name)
    surge = page.locator(".surge")
    await expect(surge).to_have_count(1, timeout=30_000)
    await expect(surge.locator(".surge-meta")).to_contain_text("3 conversations", timeout=30_000)
    await expect(surge.locator(".surge-topic")).to_contain_text("coolsingel")
    await expect(page.locator("#announcer")).to_have_text(re.compile("A new surge|A surge grew"))
    await surge.get_by_role("button", name="Show the conversations").click()
    await expect(surge.locator(".surge-member")).to_have_count(3)
    await expect(surge.locator(".surge-author").filter(has_text=HOSTILE[0])).to_have_text(HOSTILE[0])
    # A fourth person joins it, live.
    author, author_name, text = SURGE[3]
    fake_server.fake.inject_x_mention(handle, f"@{handle} {text}", author=author, author_name=author_name)
    await expect(surge.locator(".surge-meta")).to_contain_text("4 conversations", timeout=30_000)
    await expect(surge.locator(".surge-member")).to_have_count(4)
    await expect(surge.locator(".surge-meta")).to_contain_text("4 wait for an answer")

    await surge.get_by_label("Saved reply").select_option(label="Coolsingel afgesloten")
    await expect(surge.locator(".surge-preview-text")).to_have_text(
        "Hoi Kees, de Coolsingel is tot 18:00 afgesloten. ^CC")
    await shot(page, "rules-surges-1280")
    assert await page.evaluate(UNLABELLED) == []
    assert await page.evaluate(LOW_CONTRAST) == []
    await page.set_viewport_size({"width": 400, "height": 800})
    await shot(page, "rules-surges-400")
    await assert_layout(page, [".surges", ".surge"])
    await page.set_viewport_size({"width": 1280, "height": 800})

    await surge.get_by_role("button", name="Answer 4 waiting").click()
    await expect(surge.get_by_text("Send this reply to 4 people?")).to_be_visible()
    async with page.expect_response(lambda r: r.url.endswith("/replies") and "/api/clusters/" in r.url) as answered:
        await surge.get_by_role("button", name="Yes, send").click()
    assert (await answered.value).status == 200
    results = surge.locator(".surge-result")
    await expect(results).to_have_count(4)
    await expect(surge.locator(".result-skipped")).to_have_count(0)
    # Until the replies are sent the conversations still wait, but not for this page: no second answer.
    await expect(surge.get_by_role("button", name="Answer 0 waiting")).to_be_disabled()
    # Each reply goes out, and the surge has nothing left waiting: the button to answer again is gone with it.
    await expect(surge.locator(".surge-meta")).to_contain_text("0 wait for an answer", timeout=30_000)
    await expect(surge.locator(".surge-member .chip")).to_have_text(["Answered"] * 4, timeout=30_000)
    await expect(surge.get_by_role("button", name=re.compile("Answer"))).to_be_disabled()
    await shot(page, "rules-surges-answered-1280")
    published = await posts(fake_server, handle)
    assert sorted(published) == sorted(f"Hoi {name}, de Coolsingel is tot 18:00 afgesloten. ^CC"
                                       for _, name, _ in SURGE), published
    assert await page.locator("#app img, #app script").count() == 0
    assert await page.evaluate("window.__ran") is False
    person.check_clean()
