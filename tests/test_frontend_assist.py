"""Smart assist in a real headless Chromium against a real uvicorn: the house style while typing, saved
replies from the composer, approvals between two people, and the panels beside a conversation.

Like tests/test_frontend.py (whose browser fixture and helpers these share), each runs on SQLite and
PostgreSQL, and waits only on conditions: Playwright's locators and expect(...) retry until a timeout.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
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

pytestmark = pytest.mark.anyio

__all__ = ["launch"]  # the browser fixture, shared with tests/test_frontend.py


async def open_conversation(person: Any, conversation_id: int) -> None:
    await person.row(conversation_id).click()
    await expect(person.page.locator(".conversation-title")).to_be_visible()


async def test_the_house_style_shows_while_typing_and_a_refused_reply_names_the_rule(
        server: Harness, launch: Callable[[], Awaitable[Any]]) -> None:
    admin = await admin_client(server)
    account = await server.api_account(admin)
    coordinator, _ = await server.token_client("coordinator")
    r = await coordinator.put(f"/api/accounts/{account['id']}/style", json={
        "signature": "^{agent_initials}", "max_length": 60, "banned_phrases": ["helaas"]})
    assert r.status_code == 200, r.text
    conv = await new_conversation(server, admin, account["id"], "Kan ik mijn container omruilen?")
    agent = await open_as(launch, server, await server.user("agent", name="Anouk Agent"))
    page = agent.page
    checks: list[str] = []
    page.on("request", lambda req: checks.append(req.url) if req.url.endswith("/replies/check") else None)
    await open_conversation(agent, conv)
    await page.keyboard.press("r")
    await expect(page.locator("#composer-text")).to_be_focused()
    typed = "Helaas kan dat niet."
    await page.keyboard.type(typed)
    problem = page.locator(".style-problem")
    await expect(problem).to_have_text("House style: the phrase “helaas” is not allowed.")
    await expect(page.locator(".style-note.note-signature")).to_have_text("Signed with “^AA” when it goes out.")
    await expect(page.locator(".style-note.note-length")).to_have_text("24 / 60 with the signature.")
    # Typing pauses are checked, not every keystroke; stale checks are cancelled.
    assert 1 <= len(checks) < len(typed) / 2, checks
    # The composer's field says what is wrong with it to a screen reader too.
    described = await page.locator("#composer-text").get_attribute("aria-describedby")
    assert await problem.first.evaluate("(el, ids) => ids.split(' ').includes(el.parentElement.id)", described)
    await shot(page, "assist-style-1280")

    # Sent anyway: the server refuses it, names the rule, and nothing is lost.
    async with page.expect_response(lambda r: r.url.endswith(f"/api/conversations/{conv}/replies")) as sent:
        await page.keyboard.press("Control+Enter")
    assert (await sent.value).status == 422
    await expect(page.locator(".composer-blocked")).to_have_text("House style: the phrase “helaas” is not allowed.")
    await expect(page.locator("#composer-text")).to_have_value(typed)
    await expect(page.locator(".msg-out")).to_have_count(0)

    # Too long with the signature counted against the limit.
    await page.locator("#composer-text").fill("Dat kan. " + "Wij ruilen de container graag voor u om. " * 2)
    await expect(problem).to_have_text(re.compile(r"Too long with the signature: \d+ of 60 characters\."))
    await page.locator("#composer-text").fill("Dat kan, we ruilen hem morgen om.")
    await expect(problem).to_have_count(0)
    await page.keyboard.press("Control+Enter")
    await expect(page.locator(".msg-out .msg-text")).to_have_text("Dat kan, we ruilen hem morgen om. ^AA")
    await expect(page.locator("#composer-text")).to_have_value("")
    await expect(page.locator(".style-problem, .style-note")).to_have_count(0)
    # The browser logs the refused send (the 422 this test asked for); nothing else may show up.
    agent.problems = [p for p in agent.problems if "status of 422" not in p]
    agent.check_clean()


async def test_saved_replies_are_found_despite_a_typo_and_inserted_for_the_author(
        server: Harness, launch: Callable[[], Awaitable[Any]]) -> None:
    admin = await admin_client(server)
    account = await server.api_account(admin)
    coordinator, _ = await server.token_client("coordinator")
    for title, text in [
        ("Parkeervergunning aanvragen", "Beste {author}, een parkeervergunning vraagt u aan via Mijn Loket. "
                                        "^{agent_initials}"),
        ("Container omruilen", "Een andere container bestelt u op de website."),
        (HOSTILE[0], f"{HOSTILE[1]} voor {{author}}"),
    ]:
        r = await coordinator.post("/api/saved-replies", json={
            "department_id": account["department_id"], "title": title, "text": text})
        assert r.status_code == 201, r.text
    # No name: the saved reply speaks to the person by their handle.
    conv = await new_conversation(server, admin, account["id"], "Hoe krijg ik een vergunning voor parkeren?",
                                  author={"id": "jdv", "handle": "jan_de_vries", "name": ""})
    agent = await open_as(launch, server, await server.user("agent", name="Anouk Agent"))
    page = agent.page
    await page.evaluate("window.__ran = false")
    await open_conversation(agent, conv)
    await page.keyboard.press("r")
    await expect(page.locator("#composer-text")).to_be_focused()
    await page.keyboard.type("Goedemiddag! ")
    # The keyboard reaches the search from the composer, and a typo still finds the reply.
    await page.keyboard.press("Tab")
    search = page.get_by_role("combobox", name="Saved reply")
    await expect(search).to_be_focused()
    await page.keyboard.type("parkeervergunnig")
    option = page.get_by_role("option", name=re.compile("Parkeervergunning aanvragen"))
    await expect(option).to_have_attribute("aria-selected", "true")
    await expect(search).to_have_attribute("aria-expanded", "true")
    await expect(search).to_have_attribute("aria-activedescendant", await option.get_attribute("id") or "")
    await expect(option.locator(".saved-preview")).to_have_text(
        "Beste jan_de_vries, een parkeervergunning vraagt u aan via Mijn Loket. ^AA")
    await shot(page, "assist-saved-replies-1280")
    await page.keyboard.press("Enter")
    composer = page.locator("#composer-text")
    await expect(composer).to_have_value(
        "Goedemiddag! Beste jan_de_vries, een parkeervergunning vraagt u aan via Mijn Loket. ^AA")
    await expect(composer).to_be_focused()
    await expect(page.get_by_role("listbox", name="Saved replies")).to_be_hidden()
    await expect(page.locator(".counter")).to_have_text(re.compile(r"^8\d characters$"))

    # Markup in a saved reply is text, in the list and in the composer.
    await composer.fill("")
    await search.focus()
    await page.keyboard.type("img src")
    hostile = page.get_by_role("option").filter(has_text=HOSTILE[0])
    await expect(hostile.locator(".saved-title")).to_have_text(HOSTILE[0])
    await expect(hostile.locator(".saved-preview")).to_have_text(f"{HOSTILE[1]} voor jan_de_vries")
    # Escape closes the list and leaves the field; the arrows open it again; a click inserts.
    await page.keyboard.press("Escape")
    await expect(search).to_have_attribute("aria-expanded", "false")
    await expect(search).to_be_focused()
    await page.keyboard.press("ArrowDown")
    await hostile.click()
    await expect(composer).to_have_value(f"{HOSTILE[1]} voor jan_de_vries")
    assert await page.locator("#app img, #app script").count() == 0
    assert await page.evaluate("window.__ran") is False
    assert await page.evaluate(UNLABELLED) == []
    agent.check_clean()


async def test_coordinators_keep_saved_replies_on_their_own_page(
        server: Harness, launch: Callable[[], Awaitable[Any]]) -> None:
    admin = await admin_client(server)
    account = await server.api_account(admin)
    agent = await open_as(launch, server, await server.user("agent"))
    await expect(agent.page.get_by_role("link", name="Saved replies")).to_have_count(0)
    person = await open_as(launch, server, await server.user("coordinator", name="Cor Coördinator"))
    page = person.page
    await page.get_by_role("link", name="Saved replies").click()
    await expect(page.get_by_role("heading", name="Saved replies")).to_be_visible()
    await expect(page.locator(".table-wrap .hint")).to_have_text("No saved replies yet.")
    await page.get_by_text("New saved reply").click()
    form = page.locator(".create form")
    await form.get_by_label("Title").fill("Afvalkalender")
    await form.get_by_label("Department").select_option(label="Parkeren")
    await form.get_by_label("Text").fill("Hoi {author}, de afvalkalender staat op de website. {unknown}")
    await form.get_by_role("button", name="Create").click()
    await expect(form.get_by_role("alert")).to_contain_text("unknown variable {unknown}")
    await form.get_by_label("Text").fill("Hoi {author}, de afvalkalender staat op de website.")
    await form.get_by_role("button", name="Create").click()
    row = page.get_by_role("row", name=re.compile("Afvalkalender"))
    await expect(row).to_contain_text("Hoi {author}, de afvalkalender staat op de website.")
    await expect(row).to_contain_text("Parkeren")
    # One made elsewhere shows up by itself.
    coordinator, _ = await server.token_client("coordinator")
    r = await coordinator.post("/api/saved-replies", json={
        "department_id": account["department_id"], "title": "Openingstijden", "text": "Wij zijn open van 9 tot 5."})
    assert r.status_code == 201, r.text
    await expect(page.get_by_role("row", name=re.compile("Openingstijden"))).to_be_visible()
    await page.get_by_role("button", name="Edit Afvalkalender").click()
    editing = page.locator("tr.editing form")
    await editing.get_by_label("Title").fill("Afvalkalender 2025")
    await editing.get_by_role("button", name="Save").click()
    await expect(page.get_by_role("row", name=re.compile("Afvalkalender 2025"))).to_be_visible()
    await shot(page, "assist-saved-page-1280")
    assert await page.evaluate(UNLABELLED) == []
    assert await page.evaluate(LOW_CONTRAST) == []
    await page.set_viewport_size({"width": 400, "height": 800})
    await shot(page, "assist-saved-page-400")
    await assert_layout(page, [".saved-replies", ".data"])
    await page.set_viewport_size({"width": 1280, "height": 800})
    await page.get_by_role("button", name="Delete Openingstijden").click()
    await expect(page.get_by_text("Delete “Openingstijden”?")).to_be_visible()
    await page.get_by_role("button", name="Delete", exact=True).click()
    await expect(page.get_by_role("row", name=re.compile("Openingstijden"))).to_have_count(0)
    items = (await coordinator.get("/api/saved-replies")).json()["items"]
    assert [i["title"] for i in items] == ["Afvalkalender 2025"]
    person.problems = [p for p in person.problems if "status of 400" not in p]  # the refused {unknown}
    person.check_clean()
    agent.check_clean()


async def posts(fake: FakeServer, handle: str) -> list[str]:
    """What the fake X published for the account, through its control API."""
    async with httpx.AsyncClient(base_url=fake.url) as control:
        r = await control.get("/_control/posts", params={"platform": "x", "account": handle})
    assert r.status_code == 200, r.text
    return [p["text"] for p in r.json()["posts"]]


async def test_a_reply_waits_for_approval_then_goes_out_once_or_comes_back_with_a_comment(
        server: Harness, launch: Callable[[], Awaitable[Any]], fake_server: FakeServer) -> None:
    admin = await admin_client(server)
    handle = f"gemeente_{secrets.token_hex(3)}"
    account = await x_account(server, admin, fake_server, handle)
    coordinator_api, _ = await server.token_client("coordinator")
    r = await coordinator_api.post("/api/approval-rules", json={
        "name": "Nieuwe collega's", "account_id": account["id"], "author_role": "agent"})
    assert r.status_code == 201, r.text
    browser = await launch()
    cor = await open_as(launch, server, await server.user("coordinator", name="Cor Coördinator"), browser=browser)
    anouk = await open_as(launch, server, await server.user("agent", name="Anouk Agent"), browser=browser)
    # The account counts mentions from its first poll on.
    await cor.page.get_by_role("link", name="Accounts").click()
    await expect(cor.page.get_by_role("row", name=f"@{handle}").locator(".health-label")).to_have_text(
        "Healthy", timeout=30_000)
    await cor.page.get_by_role("link", name="Approvals").click()
    approvals = cor.page.locator(".approval")
    await expect(cor.page.locator(".approvals-count")).to_have_text("Nothing waits for approval.")

    fake_server.fake.inject_x_mention(handle, f"@{handle} Mag ik mijn auto op de stoep parkeren?",
                                      author="jan_de_vries", author_name="Jan de Vries")
    page = anouk.page
    row = page.locator(".row", has_text="op de stoep parkeren")
    await expect(row).to_be_visible(timeout=30_000)
    await row.click()
    await expect(page.locator(".conversation-title")).to_contain_text("Jan de Vries")
    await page.keyboard.press("r")
    await expect(page.locator("#composer-text")).to_be_focused()
    await page.keyboard.type("Nee, dat mag niet.")
    await expect(page.locator(".style-note.note-approval")).to_have_text(
        "Waits for a coordinator's approval before it goes out (Nieuwe collega's).")
    await page.keyboard.press("Control+Enter")
    out = page.locator(".msg-out").last
    await expect(out.locator(".state-label")).to_have_text("Awaiting approval")
    await expect(page.locator(".assist-waiting")).to_have_text("Your reply waits for approval (Nieuwe collega's).")

    # It appears on the coordinator's page by itself, and is approved there.
    card = approvals.filter(has_text="Nee, dat mag niet.")
    await expect(card).to_be_visible()
    await expect(card).to_contain_text("To Jan de Vries on Gemeente (X)")
    await expect(card).to_contain_text("By Anouk Agent")
    await expect(card).to_contain_text("Rule: Nieuwe collega's")
    await shot(cor.page, "assist-approvals-1280")
    assert await cor.page.evaluate(UNLABELLED) == []
    assert await cor.page.evaluate(LOW_CONTRAST) == []
    await cor.page.set_viewport_size({"width": 400, "height": 800})
    await shot(cor.page, "assist-approvals-400")
    await assert_layout(cor.page, [".approvals", ".approval"])
    await cor.page.set_viewport_size({"width": 1280, "height": 800})
    await card.get_by_role("button", name="Approve").click()
    await expect(approvals).to_have_count(0)
    await expect(cor.page.locator(".approvals-count")).to_have_text("Nothing waits for approval.")
    await expect(out.locator(".state-label")).to_have_text("Sent", timeout=30_000)
    assert await posts(fake_server, handle) == ["Nee, dat mag niet."]

    # The next one is sent back with a comment, which its author sees and answers.
    await page.locator("#composer-text").fill("Nee.")
    await page.keyboard.press("Control+Enter")
    await expect(page.locator(".msg-out").last.locator(".state-label")).to_have_text("Awaiting approval")
    card = approvals.filter(has_text="Nee.")
    await card.get_by_role("button", name="Send back").click()
    await expect(card.get_by_role("alert")).to_have_text("Write what should change before sending it back.")
    await card.get_by_label("Comment for the author").fill("Graag vriendelijker, en noem de regels.")
    await card.get_by_role("button", name="Send back").click()
    await expect(approvals).to_have_count(0)
    back = page.locator(".msg-out").last
    await expect(back.locator(".state-label")).to_have_text("Sent back")
    await expect(page.locator(".assist-comment-by")).to_have_text("Cor Coördinator sent your reply back:")
    await expect(page.locator(".assist-comment")).to_have_text("Graag vriendelijker, en noem de regels.")
    await shot(page, "assist-sent-back-1280")
    await page.get_by_label("Edited reply").fill("Helaas niet: op de stoep parkeren is niet toegestaan.")
    await page.get_by_role("button", name="Submit again").click()
    await expect(back.locator(".state-label")).to_have_text("Awaiting approval")
    await expect(back.locator(".msg-text")).to_have_text("Helaas niet: op de stoep parkeren is niet toegestaan.")
    card = approvals.filter(has_text="op de stoep parkeren is niet toegestaan")
    await expect(card.locator(".approval-earlier")).to_contain_text("Graag vriendelijker")
    await card.get_by_role("button", name="Approve").click()
    await expect(back.locator(".state-label")).to_have_text("Sent", timeout=30_000)
    assert await posts(fake_server, handle) == ["Nee, dat mag niet.",
                                                "Helaas niet: op de stoep parkeren is niet toegestaan."]
    cor.check_clean()
    anouk.check_clean()


async def test_the_panel_shows_a_similar_answered_question_its_answer_and_the_links(
        server: Harness, launch: Callable[[], Awaitable[Any]], fake_server: FakeServer) -> None:
    admin = await admin_client(server)
    handle = f"gemeente_{secrets.token_hex(3)}"
    await x_account(server, admin, fake_server, handle)
    coordinator_api, _ = await server.token_client("coordinator")
    afval = (await admin.post("/api/departments", json={"name": "Afval"})).json()
    r = await coordinator_api.post("/api/routing-rules", json={
        "name": "Grofvuil", "department_id": afval["id"], "keywords": ["grofvuil"]})
    assert r.status_code == 201, r.text
    person = await open_as(launch, server, await server.user("coordinator", name="Cor Coördinator"))
    page = person.page
    await page.evaluate("window.__ran = false")
    await page.get_by_role("link", name="Accounts").click()
    await expect(page.get_by_role("row", name=f"@{handle}").locator(".health-label")).to_have_text(
        "Healthy", timeout=30_000)
    await page.get_by_role("link", name="Inbox").click()

    fake_server.fake.inject_x_mention(handle, f"@{handle} Wanneer wordt het grofvuil opgehaald in Noord?",
                                      author="bewoner1", author_name="Bewoner Een")
    first = page.locator(".row", has_text="opgehaald in Noord")
    await expect(first).to_be_visible(timeout=30_000)
    await first.click()
    await expect(page.locator(".conversation-title")).to_contain_text("Bewoner Een")
    # Why it is here: the routing rule, from the conversation itself.
    await expect(page.locator(".assist-route")).to_contain_text("Routed to Afval by rule “Grofvuil”.")
    answer = f"{HOSTILE[0]} Grofvuil in Noord halen we op dinsdag op."
    await page.keyboard.press("r")
    await page.locator("#composer-text").fill(answer)
    await page.keyboard.press("Control+Enter")
    await expect(page.locator(".msg-out .state-label")).to_have_text("Sent", timeout=30_000)

    fake_server.fake.inject_x_mention(handle, f"@{handle} Wanneer halen jullie het grofvuil op in Noord?",
                                      author="bewoner2", author_name="Bewoner Twee")
    second = page.locator(".row", has_text="halen jullie het grofvuil")
    await expect(second).to_be_visible(timeout=30_000)
    await second.click()
    await expect(page.locator(".conversation-title")).to_contain_text("Bewoner Twee")
    similar = page.locator(".similar")
    await expect(similar).to_have_count(1)
    await expect(similar.locator(".similar-text")).to_contain_text("Wanneer wordt het grofvuil opgehaald in Noord?")
    await expect(similar.locator(".similar-answer .msg-text")).to_have_text(answer)
    await expect(similar).to_contain_text("Answer by Cor Coördinator")
    panel = page.get_by_role("region", name="Similar questions that were answered")
    await expect(panel).to_be_visible()
    await shot(page, "assist-panels-1280")
    await similar.get_by_role("button", name="Use this answer").click()
    await expect(page.locator("#composer-text")).to_have_value(answer)
    await expect(page.locator("#composer-text")).to_be_focused()
    assert await page.locator("#app img, #app script").count() == 0
    assert await page.evaluate("window.__ran") is False
    assert await page.evaluate(UNLABELLED) == []
    assert await page.evaluate(LOW_CONTRAST) == []
    await page.set_viewport_size({"width": 400, "height": 800})
    await page.locator(".similar").scroll_into_view_if_needed()
    await shot(page, "assist-panels-400")
    await assert_layout(page, [".pane", ".composer"])
    person.check_clean()


async def test_a_cross_post_shows_which_conversation_came_first(
        server: Harness, launch: Callable[[], Awaitable[Any]]) -> None:
    admin = await admin_client(server)
    parking = await server.api_account(admin)
    waste = await server.api_account(admin, department="Afval")
    author = {"id": "dup-1", "handle": "herhaler", "name": "Herhaler"}
    question = "Mijn container is al twee weken niet geleegd, wanneer komen jullie?"
    first = await new_conversation(server, admin, parking["id"], question, author=author)
    again = await new_conversation(server, admin, waste["id"], question, author=author)
    detail = (await admin.get(f"/api/conversations/{again}")).json()
    assert [link["conversation_id"] for link in detail["links"]] == [first], detail["links"]
    person = await open_as(launch, server, await server.user("agent"))
    await open_conversation(person, again)
    link = person.page.locator(".assist-link")
    await expect(link).to_contain_text(f"Repeats #{first}, the first one")
    await link.get_by_role("link", name=f"#{first}").click()
    await expect(person.page.locator(".assist-link")).to_contain_text(f"Repeated in #{again}")
    person.check_clean()
