"""The inbox in a real headless Chromium (Debian's, driven by Playwright) against a real uvicorn.

Each browser test runs on SQLite and PostgreSQL like the rest. Waiting is Playwright's own: its
locators wait until they match, and expect(...) retries its assertion until a timeout.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import re
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import PASSWORD, FakeServer, Harness, ServerThread, make_settings

playwright_api = pytest.importorskip("playwright.async_api")
Browser = playwright_api.Browser
Page = playwright_api.Page
expect = playwright_api.expect

pytestmark = pytest.mark.anyio

CHROMIUM = os.environ.get("WEBCARE_TEST_CHROMIUM", "/usr/bin/chromium")
HAVE_CHROMIUM = Path(CHROMIUM).exists()
BROWSER_REQUIRED = os.environ.get("WEBCARE_TEST_BROWSER") == "require"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]
ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts" / "frontend"
HOSTILE = ["<img src=x onerror=alert(1)>", "<script>alert(1)</script>"]

expect.set_options(timeout=15_000)


@pytest.fixture
async def launch() -> AsyncIterator[Callable[[], Awaitable[Any]]]:
    """Starts headless Chromiums (each one a separate browser, like two people's); closes them after."""
    if not HAVE_CHROMIUM:
        if BROWSER_REQUIRED:
            pytest.fail(f"Chromium is required (WEBCARE_TEST_BROWSER=require) but {CHROMIUM} is missing")
        pytest.skip(f"no Chromium at {CHROMIUM}; apt-get install chromium, or set WEBCARE_TEST_CHROMIUM")
    async with playwright_api.async_playwright() as p:
        browsers: list[Any] = []

        async def start() -> Any:
            browser = await p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
            browsers.append(browser)
            return browser

        try:
            yield start
        finally:
            for browser in browsers:
                await browser.close()


@dataclass
class Person:
    """One person at one browser, with what went wrong on their page."""

    page: Any
    user: dict[str, Any]
    problems: list[str] = field(default_factory=list)
    dialogs: list[str] = field(default_factory=list)

    def row(self, conversation_id: int) -> Any:
        return self.page.locator(f"#q-{conversation_id}")

    def check_clean(self) -> None:
        assert not self.dialogs, f"a dialog opened: {self.dialogs}"
        assert not self.problems, self.problems


async def open_as(launch: Callable[[], Awaitable[Any]], server: Harness, user: dict[str, Any], *,
                  width: int = 1280, height: int = 800, locale: str = "en-GB",
                  timezone: str = "Europe/Amsterdam", browser: Any = None) -> Person:
    """A fresh browser (or context) that logs in through the login form and shows the inbox."""
    browser = browser or await launch()
    context = await browser.new_context(viewport={"width": width, "height": height}, locale=locale,
                                        timezone_id=timezone)
    page = await context.new_page()
    person = Person(page, user)
    page.on("pageerror", lambda e: person.problems.append(f"page error: {e}"))
    page.on("console", lambda m: person.problems.append(f"console {m.type}: {m.text}")
            if m.type == "error" and "401" not in m.text else None)

    async def on_dialog(dialog: Any) -> None:
        person.dialogs.append(dialog.message)
        await dialog.dismiss()

    page.on("dialog", on_dialog)
    await page.goto(server.url)
    await log_in(page, user)
    return person


async def log_in(page: Any, user: dict[str, Any]) -> None:
    form = page.locator("form.login-form")
    await form.locator("input[name=email]").fill(user["email"])
    await form.locator("input[name=password]").fill(PASSWORD)
    await form.locator("button[type=submit]").click()
    await expect(page.locator(".queue-list")).to_be_attached()
    await expect(page.locator(".connection")).to_have_attribute("data-state", "live")


async def admin_client(server: Harness) -> httpx.AsyncClient:
    client, _ = await server.token_client("admin")
    return client


async def new_conversation(server: Harness, admin: httpx.AsyncClient, account_id: int, text: str,
                           **fields: Any) -> int:
    return int((await server.inbound(admin, account_id, text, **fields))["conversation_id"])


def shot(page: Any, name: str) -> Awaitable[Any]:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return page.screenshot(path=str(ARTIFACTS / f"{name}.png"))


# Logging in


async def test_log_in_with_a_wrong_then_the_right_password_and_out_again(
        server: Harness, launch: Callable[[], Awaitable[Any]]) -> None:
    user = await server.user("agent", name="Anouk Agent")
    browser = await launch()
    page = await (await browser.new_context(locale="en-GB")).new_page()
    await page.goto(server.url)
    await page.get_by_label("Email").fill(user["email"])
    await page.get_by_label("Password").fill("not the password")
    await page.get_by_role("button", name="Log in").click()
    await expect(page.get_by_role("alert")).to_have_text("That email and password do not match.")
    await page.get_by_label("Password").fill(PASSWORD)
    await page.get_by_role("button", name="Log in").click()
    await expect(page.locator(".who")).to_contain_text("Anouk Agent")
    await expect(page.get_by_role("link", name="Inbox")).to_have_attribute("aria-current", "page")
    # A reload keeps the session, and changes still carry the CSRF token.
    await page.reload()
    await expect(page.locator(".who")).to_contain_text("Anouk Agent")
    await page.get_by_role("button", name="Log out").click()
    await expect(page.locator("form.login-form")).to_be_visible()
    await expect(page.get_by_role("alert")).to_have_text("You are logged out.")
    await page.reload()
    await expect(page.locator("form.login-form")).to_be_visible()


async def test_a_new_role_shows_at_once_and_a_deactivated_user_is_logged_out(
        server: Harness, launch: Callable[[], Awaitable[Any]]) -> None:
    admin = await admin_client(server)
    user = await server.user("agent", name="Rutger Rol")
    person = await open_as(launch, server, user)
    page = person.page
    await expect(page.get_by_role("link", name="Dashboard")).to_have_count(0)
    # Made coordinator by an admin: the live stream ends (4001) and the page starts again as one.
    assert (await admin.patch(f"/api/users/{user['id']}", json={"role": "coordinator"})).status_code == 200
    await expect(page.get_by_role("link", name="Dashboard")).to_be_visible()
    await expect(page.locator(".who .role")).to_have_text("coordinator")
    # Deactivated: the login form, without anyone touching the page.
    assert (await admin.patch(f"/api/users/{user['id']}", json={"active": False})).status_code == 200
    await expect(page.locator("form.login-form")).to_be_visible()


# Working together


async def test_two_people_at_once_one_claims_and_the_other_sees_it_within_a_second(
        server: Harness, launch: Callable[[], Awaitable[Any]]) -> None:
    admin = await admin_client(server)
    account = await server.api_account(admin)
    anna_user = await server.user("agent", name="Anna de Wit")
    bram_user = await server.user("agent", name="Bram Bos")
    anna = await open_as(launch, server, anna_user)
    bram = await open_as(launch, server, bram_user)
    conv = await new_conversation(server, admin, account["id"], "Mijn container is niet geleegd")
    # It arrives in both queues without a reload.
    await expect(anna.row(conv)).to_contain_text("Mijn container is niet geleegd")
    await expect(bram.row(conv)).to_contain_text("Open")
    await bram.row(conv).click()
    await expect(bram.page.locator(".conversation-title")).to_contain_text("Burger")
    await anna.row(conv).click()
    # Each sees that the other has it open, in the conversation and in the queue.
    await expect(anna.page.locator(".presence")).to_have_text("Bram Bos also has this open.")
    await expect(bram.row(conv).locator(".tag-viewing")).to_have_text("Anna de Wit looking")

    async with anna.page.expect_response(lambda r: r.url.endswith(f"/api/conversations/{conv}/claim")) as claimed:
        await anna.page.keyboard.press("c")
    assert (await claimed.value).status == 200
    started = asyncio.get_running_loop().time()
    await expect(bram.row(conv).locator(".tag-claimed")).to_have_text("Claimed by Anna de Wit", timeout=1000)
    seen_after = asyncio.get_running_loop().time() - started
    await expect(bram.page.locator(".conversation-meta")).to_contain_text("Claimed by Anna de Wit", timeout=1000)
    print(f"Bram saw Anna's claim {seen_after * 1000:.0f} ms after it was answered")
    await expect(anna.row(conv).locator(".tag-mine")).to_have_text("Claimed by you")
    # Bram cannot claim it any more, and his composer says why.
    await expect(bram.page.get_by_role("button", name="Claim")).to_have_count(0)
    await expect(bram.page.locator(".composer-blocked")).to_contain_text("Anna de Wit has claimed")
    await expect(bram.page.locator("button.send")).to_be_disabled()
    # The counts beside the views follow too.
    await expect(anna.page.locator("a[data-view=mine] .count")).to_have_text("1")
    await expect(bram.page.locator("a[data-view=mine] .count")).to_have_text("0")
    # Anna releases it: Bram sees it open again and claims it himself.
    await anna.page.get_by_role("button", name="Release").click()
    await expect(bram.row(conv).locator(".tag-claimed")).to_have_count(0)
    await bram.page.get_by_role("button", name="Claim").click()
    await expect(anna.row(conv).locator(".tag-claimed")).to_have_text("Claimed by Bram Bos")
    anna.check_clean()
    bram.check_clean()


async def test_typing_is_shown_to_the_other_and_a_draft_survives_a_reload(
        server: Harness, launch: Callable[[], Awaitable[Any]]) -> None:
    admin = await admin_client(server)
    account = await server.api_account(admin)
    conv = await new_conversation(server, admin, account["id"], "Waar kan ik een vergunning aanvragen?")
    anna = await open_as(launch, server, await server.user("agent", name="Anna de Wit"))
    bram = await open_as(launch, server, await server.user("agent", name="Bram Bos"))
    for person in (anna, bram):
        await person.row(conv).click()
        await expect(person.page.locator(".conversation-title")).to_be_visible()
    await anna.page.keyboard.press("r")
    await expect(anna.page.locator("#composer-text")).to_be_focused()
    await anna.page.keyboard.type("Goedemiddag! U kunt de vergunning online aanvragen")
    await expect(bram.page.locator(".composer-warning")).to_have_text("Anna de Wit is typing a reply here too.")
    await expect(anna.page.locator(".counter")).to_have_text("50 characters")
    await anna.page.reload()
    await expect(anna.page.locator(".conversation-title")).to_be_visible()
    await expect(anna.page.locator("#composer-text")).to_have_value(
        "Goedemiddag! U kunt de vergunning online aanvragen")
    # Stopping leaves no warning behind.
    await anna.page.locator("#composer-text").blur()
    await expect(bram.page.locator(".composer-warning")).to_be_hidden()
    anna.check_clean()
    bram.check_clean()


async def test_escalate_to_an_expert_who_finds_it_in_escalated_to_me(
        server: Harness, launch: Callable[[], Awaitable[Any]]) -> None:
    admin = await admin_client(server)
    account = await server.api_account(admin)
    conv = await new_conversation(server, admin, account["id"],
                                  "Ik heb een boete gekregen terwijl ik een vergunning heb")
    coordinator = await open_as(launch, server, await server.user("coordinator", name="Cor Coördinator"))
    eva_user = await server.user("expert", name="Eva Expert", department="Juridisch")
    eva = await open_as(launch, server, eva_user)
    await eva.page.locator("a[data-view=escalated]").click()
    await expect(eva.page.locator(".queue-status")).to_have_text("Nothing here. Well done.")

    page = coordinator.page
    await coordinator.row(conv).click()
    await expect(page.locator(".conversation-title")).to_be_visible()
    await page.keyboard.press("e")
    dialog = page.get_by_role("dialog", name="Escalate")
    await expect(dialog).to_be_visible()
    await dialog.get_by_label("To").select_option(label="Eva Expert (expert, Juridisch)")
    await dialog.get_by_label("Note").fill("Bezwaar tegen een boete: kun jij dit overnemen?")
    await dialog.get_by_role("button", name="Escalate").click()
    await expect(dialog).to_have_count(0)
    await expect(page.locator(".conversation-meta")).to_contain_text("Escalated to Eva Expert")
    await expect(page.locator(".msg-note")).to_contain_text("Bezwaar tegen een boete")

    # Eva's view fills by itself, count and all.
    await expect(eva.row(conv)).to_contain_text("Escalated to Eva Expert")
    await expect(eva.page.locator("a[data-view=escalated] .count")).to_have_text("1")
    await eva.row(conv).click()
    await expect(eva.page.locator(".msg-note")).to_contain_text("kun jij dit overnemen?")
    await expect(eva.page.locator(".msg-note .msg-kind")).to_have_text("Internal note")
    # She hands it back; it leaves her view.
    await eva.page.get_by_role("button", name="Hand back").click()
    await expect(eva.row(conv)).to_have_count(0)
    # An account added after the pages loaded shows with its name, in the queue and among the views.
    r = await admin.post("/api/accounts", json={"platform": "api", "handle": "nieuw", "name": "Nieuw kanaal",
                                                "department_id": account["department_id"]})
    assert r.status_code == 201, r.text
    newcomer = await new_conversation(server, admin, r.json()["id"], "Via het nieuwe kanaal")
    await expect(coordinator.row(newcomer).locator(".row-account")).to_have_text("Nieuw kanaal")
    await expect(page.locator(f"a[data-view=account-{r.json()['id']}] .view-name")).to_have_text("Nieuw kanaal")
    coordinator.check_clean()
    eva.check_clean()


async def x_account(server: Harness, admin: httpx.AsyncClient, fake: FakeServer, handle: str) -> dict[str, Any]:
    departments = (await admin.get("/api/departments")).json()["items"]
    department = next((d for d in departments if d["name"] == "Parkeren"), None)
    if department is None:
        department = (await admin.post("/api/departments", json={"name": "Parkeren"})).json()
    r = await admin.post("/api/accounts", json={
        "platform": "x", "handle": handle, "name": f"Gemeente (X) {handle}", "department_id": department["id"],
        "settings": {"base_url": fake.x_url, "poll_interval": 1},
        "credentials": fake.fake.add_x_account(handle).credentials()})
    assert r.status_code == 201, r.text
    return dict(r.json())


async def test_reply_goes_out_shows_sent_a_failure_can_be_retried_and_the_conversation_closed(
        server: Harness, launch: Callable[[], Awaitable[Any]], fake_server: FakeServer) -> None:
    admin = await admin_client(server)
    handle = f"gemeente_{secrets.token_hex(3)}"
    await x_account(server, admin, fake_server, handle)
    agent = await open_as(launch, server, await server.user("coordinator", name="Cor Coördinator"))
    page = agent.page
    # A new account starts "from now on": mentions count from its first poll, which its health shows.
    await page.get_by_role("link", name="Accounts").click()
    await expect(page.get_by_role("row", name=f"@{handle}").locator(".health-label")).to_have_text(
        "Healthy", timeout=30_000)
    await page.get_by_role("link", name="Inbox").click()
    fake_server.fake.inject_x_mention(handle, f"@{handle} Hoe vraag ik een bezoekersvergunning aan?",
                                      author="jan_de_vries", author_name="Jan de Vries")
    # The worker polls the fake X; the conversation appears in the queue by itself.
    row = page.locator(".row", has_text="bezoekersvergunning")
    await expect(row).to_be_visible(timeout=30_000)
    await row.click()
    await expect(page.locator(".composer-from")).to_have_text(
        f"Goes out from @{handle} · Gemeente (X) {handle} on X.")
    await page.keyboard.press("r")
    await expect(page.locator("#composer-text")).to_be_focused()
    await page.keyboard.type("Dat kan online via de website. Groet, Anouk")
    await expect(page.locator(".counter")).to_have_text("43 / 280")
    await page.keyboard.press("Control+Enter")
    out = page.locator(".msg-out").last
    await expect(out.locator(".msg-text")).to_have_text("Dat kan online via de website. Groet, Anouk")
    await expect(out.locator(".state-label")).to_have_text(re.compile("Queued|Sending…|Sent"))
    await expect(out.locator(".state-label")).to_have_text("Sent", timeout=30_000)
    await expect(page.locator("#composer-text")).to_have_value("")
    assert [p.text for p in fake_server.fake.posts("x", handle)] == ["Dat kan online via de website. Groet, Anouk"]

    # The platform refuses the next one: the failure shows with its reason, and Retry sends it.
    fake_server.fake.add_fault("status", platform="x", method="POST", path="^/2/tweets$", status=403, times=1)
    await page.locator("#composer-text").fill("En in het weekend kan het ook.")
    await page.get_by_role("button", name="Send reply").click()
    failed = page.locator(".msg-out").last
    await expect(failed.locator(".state-label")).to_have_text("Failed", timeout=30_000)
    await expect(failed.locator(".state-reason")).not_to_be_empty()
    await failed.get_by_role("button", name="Retry").click()
    await expect(failed.locator(".state-label")).to_have_text("Sent", timeout=30_000)
    assert len(fake_server.fake.posts("x", handle)) == 2

    # Over the limit, nothing goes out.
    await page.locator("#composer-text").fill("x" * 281)
    await expect(page.locator(".counter")).to_have_text("281 / 280")
    await expect(page.get_by_role("button", name="Send reply")).to_be_disabled()
    await page.locator("#composer-text").fill("")

    await page.keyboard.press("Escape")
    await page.keyboard.press("x")
    dialog = page.get_by_role("dialog", name="Close the conversation")
    await dialog.get_by_label("No reply needed").check()
    await dialog.get_by_role("button", name="Close").click()
    await expect(page.locator(".conversation-meta .chip")).to_have_text("Closed")
    await expect(page.locator(".conversation-meta")).to_contain_text("No reply needed")
    await expect(row).to_have_count(0)
    await page.locator("a[data-view=closed]").click()
    await page.locator(".row", has_text="bezoekersvergunning").click()
    await page.get_by_role("button", name="Reopen").click()
    await expect(page.locator(".conversation-meta .chip")).to_have_text("Open")
    await expect(page.locator(".row", has_text="bezoekersvergunning")).to_have_count(0)
    agent.check_clean()


# Hostile text


async def test_markup_from_the_public_shows_as_text_and_never_runs(
        server: Harness, launch: Callable[[], Awaitable[Any]]) -> None:
    admin = await admin_client(server)
    account = await server.api_account(admin)
    convs = [await new_conversation(server, admin, account["id"], text,
                                    author={"id": f"h{i}", "handle": text[:60], "name": text})
             for i, text in enumerate(HOSTILE)]
    linked = await new_conversation(server, admin, account["id"],
                                    "See https://example.org/a?b=1 and javascript:alert(1) <a href=x>x</a>")
    agent = await open_as(launch, server, await server.user("agent"))
    page = agent.page
    await page.evaluate("window.__ran = false")
    for conv, text in zip(convs, HOSTILE, strict=True):
        await expect(agent.row(conv).locator(".row-preview")).to_have_text(text)
        await expect(agent.row(conv).locator(".author-name")).to_have_text(text)
        await agent.row(conv).click()
        await expect(page.locator(".msg-in .msg-text")).to_have_text(text)
        await expect(page.locator(".conversation-title")).to_contain_text(text)
        # A note and a reply with the same text show literally too.
        await page.keyboard.press("n")
        await expect(page.locator("#composer-text")).to_be_focused()
        await page.keyboard.type(text)
        await page.keyboard.press("Control+Enter")
        await expect(page.locator(".msg-note .msg-text")).to_have_text(text)
    assert await page.locator("#app img, #app script, #app iframe").count() == 0
    assert await page.evaluate("window.__ran") is False
    await agent.row(linked).click()
    message = page.locator(".msg-in .msg-text")
    await expect(message).to_have_text("See https://example.org/a?b=1 and javascript:alert(1) <a href=x>x</a>")
    links = message.locator("a")
    await expect(links).to_have_count(1)
    await expect(links).to_have_attribute("href", "https://example.org/a?b=1")
    await expect(links).to_have_attribute("rel", "noopener noreferrer nofollow ugc")
    agent.check_clean()


# Keyboard, languages and time


async def test_the_keyboard_alone_moves_opens_claims_and_shows_help(
        server: Harness, launch: Callable[[], Awaitable[Any]]) -> None:
    admin = await admin_client(server)
    account = await server.api_account(admin)
    convs = [await new_conversation(server, admin, account["id"], f"Vraag nummer {i}",
                                    author={"id": f"k{i}", "handle": f"k{i}", "name": f"Persoon {i}"})
             for i in range(3)]
    agent = await open_as(launch, server, await server.user("agent"))
    page = agent.page
    await expect(agent.row(convs[2])).to_have_attribute("aria-selected", "true")
    await page.keyboard.press("j")
    await expect(agent.row(convs[1])).to_have_attribute("aria-selected", "true")
    await page.keyboard.press("j")
    await page.keyboard.press("k")
    await expect(agent.row(convs[1])).to_have_attribute("aria-selected", "true")
    await page.keyboard.press("Enter")
    await expect(page.locator(".conversation-title")).to_have_text("Persoon 1 @k1")
    await page.keyboard.press("c")
    await expect(page.locator(".conversation-meta .tag-mine")).to_have_text("Claimed by you")
    await page.keyboard.press("?")
    help_dialog = page.get_by_role("dialog", name="Keyboard shortcuts")
    await expect(help_dialog).to_contain_text("Escalate")
    await page.keyboard.press("Escape")
    await expect(help_dialog).to_have_count(0)
    # The queue is a listbox whose active option screen readers follow.
    listbox = page.get_by_role("listbox")
    await expect(listbox).to_have_attribute("aria-activedescendant", f"q-{convs[1]}")
    await page.keyboard.press("2")
    await expect(page.locator("a[data-view=mine]")).to_have_attribute("aria-current", "page")
    await expect(agent.row(convs[1])).to_be_visible()
    agent.check_clean()


async def test_dutch_follows_the_browser_and_times_are_relative_and_local(
        server: Harness, launch: Callable[[], Awaitable[Any]]) -> None:
    admin = await admin_client(server)
    account = await server.api_account(admin)
    posted = (dt.datetime.now(dt.UTC) - dt.timedelta(minutes=12)).replace(microsecond=0)
    conv = await new_conversation(server, admin, account["id"], "Is de milieustraat open op zondag?",
                                  created_at=posted.isoformat())
    agent = await open_as(launch, server, await server.user("agent"), locale="nl-NL", timezone="Asia/Tokyo")
    page = agent.page
    await expect(page.locator("a[data-view=open] .view-name")).to_have_text("Alles open")
    wait = agent.row(conv).locator("time.row-time")
    await expect(wait).to_have_text("wacht 12 min")
    # On hover: the date and time in the person's own time zone (Tokyo's, here).
    tokyo = posted.astimezone(dt.timezone(dt.timedelta(hours=9)))
    await expect(wait).to_have_attribute("title", re.compile(re.escape(f"{tokyo:%H:%M:%S}")))
    # The switch wins over the browser, and is kept.
    await page.get_by_label("Taal").select_option("en")
    await expect(page.locator("a[data-view=open] .view-name")).to_have_text("All open")
    await expect(wait).to_have_text("waiting 12 min")
    await page.reload()
    await expect(page.locator("a[data-view=open] .view-name")).to_have_text("All open")
    agent.check_clean()


# Live: reconnecting


async def test_a_dropped_connection_resumes_from_the_last_seq_and_a_longer_loss_shows_a_banner(
        server: Harness, launch: Callable[[], Awaitable[Any]]) -> None:
    admin = await admin_client(server)
    account = await server.api_account(admin)
    first = await new_conversation(server, admin, account["id"], "Eerste vraag")
    browser = await launch()
    context = await browser.new_context(viewport={"width": 1280, "height": 800}, locale="en-GB")
    page = await context.new_page()
    sockets: list[Any] = []
    urls: list[str] = []
    refuse = {"on": False}
    attempted = asyncio.Event()

    async def route(ws: Any) -> None:
        urls.append(ws.url)
        attempted.set()
        if refuse["on"]:
            await ws.close(code=1011)
            return
        sockets.append((ws, ws.connect_to_server()))

    await page.route_web_socket("**/api/live*", route)
    await page.goto(server.url)
    await log_in(page, await server.user("agent"))
    await expect(page.locator(f"#q-{first}")).to_be_visible()
    # One event so the page knows a seq.
    second = await new_conversation(server, admin, account["id"], "Tweede vraag")
    await expect(page.locator(f"#q-{second}")).to_be_visible()

    await drop(sockets[-1])
    third = await new_conversation(server, admin, account["id"], "Derde vraag, terwijl de verbinding weg was")
    await expect(page.locator(f"#q-{third}")).to_be_visible()
    await expect(page.locator(".connection")).to_have_text("Reconnected, caught up")
    assert "after=" in urls[-1] and int(urls[-1].rsplit("after=", 1)[1]) > 0, urls
    await expect(page.locator(".banner")).to_be_hidden()

    # Away for longer: a banner says so, and goes when the stream is back.
    refuse["on"] = True
    await drop(sockets[-1])
    await expect(page.locator(".banner")).to_be_visible(timeout=20_000)
    await expect(page.locator(".banner")).to_contain_text("The connection is lost")
    fourth = await new_conversation(server, admin, account["id"], "Vierde vraag")
    # "Try now" tries at once (and, refused again, the banner stays).
    attempted.clear()
    await page.locator(".banner").get_by_role("button", name="Try now").click()
    await asyncio.wait_for(attempted.wait(), 10)
    await expect(page.locator(".banner")).to_be_visible()
    refuse["on"] = False
    await expect(page.locator(".banner")).to_be_hidden(timeout=20_000)
    await expect(page.locator(f"#q-{fourth}")).to_be_visible()
    await expect(page.locator(".connection")).to_have_text("Reconnected, caught up")


async def drop(pair: tuple[Any, Any]) -> None:
    """The network goes: both ends of the socket close."""
    page_side, server_side = pair
    await server_side.close(code=1001)
    await page_side.close(code=1011)


# Many conversations


async def test_a_long_queue_is_paged_not_rendered_whole(
        server: Harness, launch: Callable[[], Awaitable[Any]]) -> None:
    admin = await admin_client(server)
    account = await server.api_account(admin)
    numbers = iter(range(120))

    async def write() -> None:
        for i in numbers:
            await server.inbound(admin, account["id"], f"Vraag {i}", author={"id": f"m{i}", "handle": f"m{i}",
                                                                            "name": "M"})

    await asyncio.gather(*(write() for _ in range(6)))
    agent = await open_as(launch, server, await server.user("agent"))
    page = agent.page
    await expect(page.locator("a[data-view=open] .count")).to_have_text("120")
    await expect(page.locator(".row")).to_have_count(50)
    await page.locator(".queue-list").focus()
    await page.keyboard.press("End")
    await expect(page.locator(".row")).to_have_count(100)
    await page.locator(".queue-scroll").evaluate("el => el.scrollTop = el.scrollHeight")
    await expect(page.locator(".row")).to_have_count(120)
    await expect(page.locator(".queue-status")).to_have_text("That is everything.")
    agent.check_clean()


# Admin pages and screenshots


async def test_admin_pages_make_users_departments_and_accounts_and_show_health(
        server: Harness, launch: Callable[[], Awaitable[Any]], fake_server: FakeServer) -> None:
    admin_user = await server.user("admin", name="Ada Admin", department="Communicatie")
    admin = await open_as(launch, server, admin_user)
    page = admin.page
    await page.get_by_role("link", name="Departments").click()
    await page.get_by_text("New department").click()
    await page.get_by_label("Name").fill("Wijkbeheer")
    await page.get_by_role("button", name="Create").click()
    await expect(page.get_by_role("row", name="Wijkbeheer")).to_be_visible()

    await page.get_by_role("link", name="Users").click()
    await page.get_by_text("New user").click()
    email = f"wim-{secrets.token_hex(3)}@test.webcare"
    form = page.locator("details form")
    await form.get_by_label("Name").fill("Wim Wijk")
    await form.get_by_label("Email").fill(email)
    await form.get_by_label("Role").select_option("expert")
    await form.get_by_label("Department").select_option(label="Wijkbeheer")
    await form.get_by_label("Password").fill("een lang wachtwoord")
    await form.get_by_role("button", name="Create").click()
    row = page.get_by_role("row", name="Wim Wijk")
    await expect(row).to_contain_text(email)
    await expect(row).to_contain_text("Wijkbeheer")
    await row.get_by_role("button", name="Edit Wim Wijk").click()
    await page.locator("tr.editing").get_by_label("Role").select_option("agent")
    await page.locator("tr.editing").get_by_role("button", name="Save").click()
    await expect(page.get_by_role("row", name="Wim Wijk")).to_contain_text("agent")

    await page.get_by_role("link", name="Accounts").click()
    await page.get_by_text("New account").click()
    handle = f"wijk_{secrets.token_hex(3)}"
    credentials = fake_server.fake.add_x_account(handle).credentials()
    form = page.locator("details form")
    await form.get_by_label("Platform").select_option("x")
    await form.get_by_label("Handle").fill(handle)
    await form.get_by_label("Name", exact=True).fill("Wijkbeheer (X)")
    await form.get_by_label("Department", exact=True).select_option(label="Wijkbeheer")
    await form.get_by_label("API address (base_url)").fill(fake_server.x_url)
    await form.get_by_label("Seconds between polls").fill("1")
    for key, value in credentials.items():
        await form.get_by_label(key.replace("_", " ").capitalize(), exact=True).fill(value)
    await form.get_by_role("button", name="Create").click()
    account_row = page.get_by_role("row", name=f"Wijkbeheer (X) @{handle}")
    await expect(account_row).to_contain_text("Not polled yet")
    # The worker polls it; the page keeps showing the health it reports.
    await expect(account_row.locator(".health-label")).to_have_text("Healthy", timeout=30_000)
    await expect(account_row).to_contain_text("Last polled")
    # An account whose token was revoked says that it needs new credentials, and why.
    expired = f"verlopen_{secrets.token_hex(3)}"
    token = fake_server.fake.add_mastodon_account(expired).access_token
    with fake_server.fake.lock:
        fake_server.fake.mastodon_account(expired).revoked = True
    api = await admin_client(server)
    departments = (await api.get("/api/departments")).json()["items"]
    r = await api.post("/api/accounts", json={
        "platform": "mastodon", "handle": expired, "name": "Afval (Mastodon)",
        "department_id": next(d["id"] for d in departments if d["name"] == "Wijkbeheer"),
        "settings": {"base_url": fake_server.mastodon_url, "poll_interval": 1}, "credentials": {"access_token": token}})
    assert r.status_code == 201, r.text
    await server.api_account(api, department="Wijkbeheer")
    expired_row = page.get_by_role("row", name=f"@{expired}")
    await expect(expired_row.locator(".health-label")).to_have_text("Needs new credentials", timeout=30_000)
    await expect(expired_row.locator(".health-error")).not_to_be_empty()
    await expect(page.get_by_role("row", name="Website").locator(".health-label")).to_have_text(
        "Takes messages in by push")
    await shot(page, "admin-accounts-1280")
    await page.set_viewport_size({"width": 400, "height": 800})
    await shot(page, "admin-accounts-400")
    assert await page.evaluate("document.documentElement.scrollWidth <= innerWidth")
    admin.check_clean()


async def test_the_layout_holds_at_desktop_and_phone_size(
        server: Harness, launch: Callable[[], Awaitable[Any]]) -> None:
    admin = await admin_client(server)
    parking = await server.api_account(admin)
    texts = ["Waar kan ik een parkeervergunning aanvragen voor mijn nieuwe adres?",
             "Mijn container is vandaag niet geleegd, wat nu? https://example.org/foto/12345",
             "De parkeerautomaat bij het station doet het niet, kan ik toch betalen?",
             "Ik heb een boete gekregen terwijl ik een vergunning heb. Hoe maak ik bezwaar?"]
    convs = [await new_conversation(server, admin, parking["id"], text,
                                    author={"id": f"l{i}", "handle": f"burger{i}", "name": f"Burger {i}"})
             for i, text in enumerate(texts)]
    agent_user = await server.user("agent", name="Anouk Agent")
    colleague = await server.token_client("agent", name="Bram Bos")
    assert (await colleague[0].post(f"/api/conversations/{convs[0]}/claim")).status_code == 200
    agent = await open_as(launch, server, agent_user)
    page = agent.page
    await expect(agent.row(convs[0]).locator(".tag-claimed")).to_have_text("Claimed by Bram Bos")
    await shot(page, "inbox-1280")
    await agent.row(convs[1]).click()
    await page.keyboard.press("n")
    await expect(page.locator("#composer-text")).to_be_focused()
    await page.keyboard.type("Even navragen bij Afval.")
    await page.keyboard.press("Control+Enter")
    await expect(page.locator(".msg-note")).to_be_visible()
    await page.keyboard.press("Escape")
    await page.keyboard.press("r")
    await expect(page.locator("#composer-text")).to_be_focused()
    await page.keyboard.type("Goedemiddag, we komen morgen langs.")
    await page.keyboard.press("Control+Enter")
    await expect(page.locator(".msg-out .state-label")).to_have_text(re.compile("Queued|Sending…"))
    await shot(page, "conversation-1280")
    await assert_layout(page, [".views", ".queue", ".pane", ".composer"])

    await page.set_viewport_size({"width": 400, "height": 800})
    await expect(page.locator(".back")).to_be_visible()
    await expect(page.locator(".queue")).to_be_hidden()
    await shot(page, "conversation-400")
    await assert_layout(page, [".pane", ".composer", ".actions"])
    await page.locator(".back").click()
    await expect(page.locator(".queue")).to_be_visible()
    await expect(page.locator(".view-select")).to_be_visible()
    await shot(page, "inbox-400")
    await assert_layout(page, [".queue", ".row"])
    agent.check_clean()


async def assert_layout(page: Any, selectors: list[str]) -> None:
    """Nothing sticks out sideways, and each of these lies within the window."""
    assert await page.evaluate("document.documentElement.scrollWidth <= innerWidth"), "the page scrolls sideways"
    size = page.viewport_size
    for selector in selectors:
        box = await page.locator(selector).first.bounding_box()
        assert box is not None, selector
        assert box["x"] >= 0 and box["x"] + box["width"] <= size["width"] + 0.5, (selector, box)
        assert box["y"] >= 0 and box["y"] < size["height"], (selector, box)


# Screen readers and contrast

UNLABELLED = """() => [...document.querySelectorAll(
    'button, input, select, textarea, a[href], [role=option], [role=listbox], [role=toolbar], dialog')]
  .filter((el) => el.getClientRects().length)
  .filter((el) => !(el.getAttribute('aria-label') || el.getAttribute('aria-labelledby') || el.labels?.length
                    || el.textContent.trim() || el.title || el.placeholder))
  .map((el) => el.outerHTML.slice(0, 120))"""

# WCAG 2 contrast of every visible piece of text against the background it shows on (disabled controls are
# exempt, as WCAG has it): at least 4.5:1, or 3:1 for large text.
LOW_CONTRAST = """() => {
  const parse = (c) => { const m = c.match(/rgba?\\(([^)]+)\\)/); if (!m) return null;
    const p = m[1].split(',').map(Number); return { r: p[0], g: p[1], b: p[2], a: p.length > 3 ? p[3] : 1 }; };
  const f = (v) => { v /= 255; return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4; };
  const lum = ({ r, g, b }) => 0.2126 * f(r) + 0.7152 * f(g) + 0.0722 * f(b);
  const background = (el) => { for (let e = el; e; e = e.parentElement) {
    const c = parse(getComputedStyle(e).backgroundColor); if (c && c.a > 0.5) return c; }
    return { r: 255, g: 255, b: 255, a: 1 }; };
  const bad = [];
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  while (walker.nextNode()) {
    const node = walker.currentNode;
    const el = node.parentElement;
    if (!node.textContent.trim() || !el.getClientRects().length) continue;
    if (el.closest('.sr-only, [aria-hidden=true], :disabled, .toasts')) continue;
    const style = getComputedStyle(el);
    const fg = parse(style.color), bg = background(el);
    const [hi, lo] = [lum(fg), lum(bg)].sort((a, b) => b - a);
    const ratio = (hi + 0.05) / (lo + 0.05);
    const size = parseFloat(style.fontSize), bold = Number(style.fontWeight) >= 700;
    const need = size >= 24 || (size >= 18.66 && bold) ? 3 : 4.5;
    const text = node.textContent.trim().slice(0, 30);
    if (ratio < need) bad.push(`${el.tagName.toLowerCase()}.${el.className} "${text}" ${ratio.toFixed(2)}`);
  }
  return bad;
}"""


async def test_labels_focus_order_and_contrast_for_screen_readers_and_eyes(
        server: Harness, launch: Callable[[], Awaitable[Any]]) -> None:
    admin = await admin_client(server)
    account = await server.api_account(admin)
    claimed = await new_conversation(server, admin, account["id"], "Al geclaimd door een collega",
                                     author={"id": "a1", "handle": "een", "name": "Een"})
    colleague, _ = await server.token_client("agent", name="Bram Bos")
    assert (await colleague.post(f"/api/conversations/{claimed}/claim")).status_code == 200
    escalated = await new_conversation(server, admin, account["id"], "Voor de expert",
                                       author={"id": "a2", "handle": "twee", "name": "Twee"})
    r = await admin.post(f"/api/conversations/{escalated}/escalate", json={
        "department_id": (await admin.get("/api/departments")).json()["items"][0]["id"], "note": "graag"})
    assert r.status_code == 200, r.text
    conv = await new_conversation(server, admin, account["id"], "Wanneer wordt het grofvuil opgehaald?")

    browser = await launch()
    page = await (await browser.new_context(viewport={"width": 1280, "height": 800})).new_page()
    await page.goto(server.url)
    await expect(page.locator("form.login-form")).to_be_visible()
    assert await page.evaluate(UNLABELLED) == []
    assert await page.evaluate(LOW_CONTRAST) == []
    user = await server.user("admin", name="Ada Admin")
    await log_in(page, user)
    await page.locator(f"#q-{conv}").click()
    await expect(page.locator(".conversation-title")).to_be_visible()
    await page.keyboard.press("n")
    await expect(page.locator("#composer-text")).to_be_focused()
    await page.keyboard.type("Een notitie")
    await page.keyboard.press("Control+Enter")
    await expect(page.locator(".msg-note")).to_be_visible()
    await page.locator(".msg-in").hover()
    assert await page.evaluate(UNLABELLED) == []
    assert await page.evaluate(LOW_CONTRAST) == []
    # Focus goes from the queue to the conversation's actions, then on to the composer.
    await page.get_by_role("listbox").focus()
    await page.keyboard.press("Tab")
    await expect(page.get_by_role("button", name="Claim")).to_be_focused()
    await page.keyboard.press("Shift+Tab")
    await expect(page.get_by_role("listbox")).to_be_focused()
    # A dialog takes the focus, and gives it back when it closes.
    await page.get_by_role("button", name="Escalate").click()
    dialog = page.get_by_role("dialog", name="Escalate")
    await expect(dialog.get_by_label("To")).to_be_focused()
    assert await page.evaluate(UNLABELLED) == []
    await page.keyboard.press("Escape")
    await expect(dialog).to_have_count(0)
    await expect(page.get_by_role("button", name="Escalate")).to_be_focused()
    await page.get_by_role("link", name="Accounts").click()
    await expect(page.get_by_role("heading", name="Accounts")).to_be_visible()
    assert await page.evaluate(UNLABELLED) == []
    assert await page.evaluate(LOW_CONTRAST) == []


# Demo mode


class _Later:
    """An ASGI app set after the server's port is known (the demo's platform lives under that port)."""

    app: Any = None

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        await self.app(scope, receive, send)


async def test_the_demo_organisation_works_in_the_browser(
        db_url: str, launch: Callable[[], Awaitable[Any]]) -> None:
    from webcare.app import create_app
    from webcare.demo import Demo

    settings = make_settings(db_url, lease_sweep_seconds=0.2)
    later = _Later()
    running = ServerThread(later)
    demo = Demo(settings, f"{running.url}/_fake")
    email, password = await demo.seed()
    later.app = create_app(settings, demo=demo)
    with running:
        browser = await launch()
        page = await (await browser.new_context(viewport={"width": 1280, "height": 800}, locale="nl-NL")).new_page()
        await page.goto(running.url)
        await page.get_by_label("E-mailadres").fill(email)
        await page.get_by_label("Wachtwoord").fill(password)
        await page.get_by_role("button", name="Inloggen").click()
        await expect(page.locator(".who")).to_contain_text("Cor Coördinator")
        # The demo's own X account, on the built-in fake platform: polled, then a question comes in.
        await page.get_by_role("link", name="Accounts").click()
        await expect(page.get_by_role("row", name="Gemeente (X)").locator(".health-label")).to_have_text(
            "Gezond", timeout=30_000)
        question = f"Kan ik mijn parkeervergunning online verlengen? ({secrets.token_hex(3)})"
        demo.fake.inject_x_mention("gemeente", question, author="jan_de_vries", author_name="Jan de Vries")
        await page.get_by_role("link", name="Inbox").click()
        row = page.locator(".row", has_text=question)
        await expect(row).to_be_visible(timeout=30_000)
        await row.click()
        await page.keyboard.press("c")
        await expect(page.locator(".conversation-meta .tag-mine")).to_have_text("Door jou geclaimd")
        await page.keyboard.press("r")
        await expect(page.locator("#composer-text")).to_be_focused()
        await page.keyboard.type("Ja, dat kan via Mijn Gemeente.")
        await page.keyboard.press("Control+Enter")
        await expect(page.locator(".msg-out .state-label")).to_have_text("Verstuurd", timeout=30_000)
        assert "Ja, dat kan via Mijn Gemeente." in [p.text for p in demo.fake.posts("x", "gemeente")]
