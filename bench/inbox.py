"""The inbox in a browser with a long queue: how soon it opens and is usable, next to a bare page load.

    .venv/bin/python bench/inbox.py [--db sqlite,postgres] [--conversations 5000] [--rounds 5]

A real `webcare serve` (no workers) on a database seeded with open conversations, and Debian's headless
Chromium driven by Playwright. Each round is a fresh browser context (no cache) that already holds a
session cookie, so the login form is not what is timed. Measured in the page, from the start of the
navigation:

- baseline: a bare page load of the same server (``/healthz``: one request, nothing to run);
- open: the inbox is usable: the first page of the queue is on screen with its rows, the views carry
  their counts (``All open`` shows the full number), and the live stream is connected;
- conversation: from pressing Enter on the selected row to its messages being on screen;
- next page: from pressing End (the last loaded row) to the next page of rows being on screen.

Also reported: how many rows the page holds (the queue is paged by the API's cursor, not rendered
whole) and what the API calls took, as the browser saw them: the views with their counts and the
first page of the queue (one request), and the next page. Medians over the rounds.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import secrets
import statistics
import sys
from pathlib import Path
from typing import Any

import httpx
import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import database, serve
from webcare import people
from webcare.db import Database
from webcare.migrate import upgrade
from webcare.models import Account, Conversation, Department, Message
from webcare.schemas import UserIn

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]
PASSWORD = "bench-password-1"

# Records, in the page, when the inbox first became usable (see the module docstring).
WATCH = """
window.__usable = null;
const check = () => {
  if (window.__usable !== null) return;
  const rows = document.querySelectorAll(".queue-list .row").length;
  const count = document.querySelector("a[data-view=open] .count");
  const live = document.querySelector(".connection[data-state=live]");
  if (rows > 0 && count && count.textContent === String(window.__expected) && live) {
    window.__usable = performance.now();
  }
};
new MutationObserver(check).observe(document, { subtree: true, childList: true, characterData: true,
  attributes: true, attributeFilter: ["data-state"] });
"""


async def seed(url: str, n: int) -> str:
    """``n`` open conversations on three accounts, each with one message; answers a user's email."""
    db = Database(url)
    try:
        email = f"bench-{secrets.token_hex(3)}@bench.webcare"
        await people.create_user(db, UserIn(email=email, name="Bench Agent", role="agent", password=PASSWORD),
                                 department_name="Parkeren")
        async with db.write() as tx:
            dep = await tx.session.scalar(sa.select(Department).where(Department.name == "Parkeren"))
            assert dep is not None
            accounts = [Account(platform=p, handle=f"gemeente_{p}", name=f"Gemeente ({p})", department_id=dep.id,
                                settings={}) for p in ("x", "mastodon", "api")]
            tx.session.add_all(accounts)
            await tx.session.flush()
            account_ids = [a.id for a in accounts]
        now = dt.datetime.now(dt.UTC)
        text = "Vraag {}: wanneer wordt het grofvuil opgehaald in Noord? Mijn container staat er nog steeds."
        conversations = []
        for i in range(n):
            at = now - dt.timedelta(seconds=30 * (n - i))
            conversations.append({"account_id": account_ids[i % 3], "status": "open", "author_id": f"p{i}",
                                  "author_handle": f"burger{i}", "author_name": f"Burger {i}",
                                  "subject_preview": text.format(i), "waiting_since": at, "last_message_at": at,
                                  "created_at": at, "updated_at": at, "version": 1})
        async with db.write() as tx:
            ids = list(await tx.session.scalars(
                sa.insert(Conversation).returning(Conversation.id, sort_by_parameter_order=True), conversations))
            await tx.session.execute(sa.insert(Message), [
                {"account_id": c["account_id"], "conversation_id": cid, "direction": "in", "external_id": f"b-{cid}",
                 "text": c["subject_preview"], "author_external_id": c["author_id"],
                 "author_handle": c["author_handle"], "author_name": c["author_name"],
                 "created_at": c["created_at"], "received_at": c["created_at"]}
                for c, cid in zip(conversations, ids, strict=True)])
        return email
    finally:
        await db.dispose()


async def round_trip(browser: Any, base: str, email: str, n: int) -> dict[str, float]:
    context = await browser.new_context(viewport={"width": 1280, "height": 800}, locale="en-GB")
    try:
        login = await context.request.post(f"{base}/api/session", data={"email": email, "password": PASSWORD})
        assert login.ok, await login.text()
        page = await context.new_page()

        await page.goto(f"{base}/healthz")
        bare = await page.evaluate("performance.getEntriesByType('navigation')[0].loadEventEnd")

        await page.add_init_script(f"window.__expected = {n};\n{WATCH}")
        await page.goto(f"{base}/#/inbox/open")
        await page.wait_for_function("() => window.__usable !== null", timeout=30_000)
        usable = await page.evaluate("window.__usable")
        rows = await page.locator(".queue-list .row").count()
        views_api = await page.evaluate(
            "performance.getEntriesByType('resource').find((e) => e.name.includes('/api/views')).duration")

        # Open the selected conversation with the keyboard.
        await page.evaluate("window.__t = performance.now()")
        await page.keyboard.press("Enter")
        await page.locator(".msg-in").first.wait_for()
        opened = await page.evaluate("performance.now() - window.__t")

        # The next page of the queue.
        await page.locator(".queue-list").focus()
        await page.evaluate("window.__t = performance.now()")
        await page.keyboard.press("End")
        await page.wait_for_function(f"() => document.querySelectorAll('.queue-list .row').length > {rows}")
        next_page = await page.evaluate("performance.now() - window.__t")
        queue_api = await page.evaluate(
            "performance.getEntriesByType('resource').findLast((e) => e.name.includes('/api/conversations?')).duration")
        return {"bare": bare, "open": usable, "conversation": opened, "next": next_page, "rows": rows,
                "queue_api": queue_api, "views_api": views_api}
    finally:
        await context.close()


async def measure(base: str, email: str, n: int, rounds: int) -> list[dict[str, float]]:
    from playwright.async_api import async_playwright

    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            await round_trip(browser, base, email, n)  # warm the server and the browser binary
            return [await round_trip(browser, base, email, n) for _ in range(rounds)]
        finally:
            await browser.close()


def bench(kind: str, n: int, rounds: int) -> dict[str, float]:
    with database(kind) as url:
        upgrade(url)
        email = asyncio.run(seed(url, n))
        with serve(url) as base:
            with httpx.Client(base_url=base) as client:
                client.post("/api/session", json={"email": email, "password": PASSWORD}).raise_for_status()
                views = client.get("/api/views").json()["items"]
            assert next(v for v in views if v["key"] == "open")["count"] == n
            results = asyncio.run(measure(base, email, n, rounds))
    return {key: statistics.median(r[key] for r in results) for key in results[0]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--db", default="sqlite,postgres")
    parser.add_argument("--conversations", type=int, default=5000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    print(f"{args.conversations} open conversations, medians of {args.rounds} rounds, times in ms\n")
    print("| database | bare page load (baseline) | inbox open and usable | open a conversation (Enter) "
          "| next page (End) | rows in the page | GET /api/conversations (next page) "
          "| GET /api/views?first=open (views, counts, first page) |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for kind in args.db.split(","):
        m = bench(kind, args.conversations, args.rounds)
        print(f"| {kind} | {m['bare']:.0f} | {m['open']:.0f} | {m['conversation']:.0f} | {m['next']:.0f} "
              f"| {m['rows']:.0f} | {m['queue_api']:.0f} | {m['views_api']:.0f} |", flush=True)


if __name__ == "__main__":
    main()
