"""What the browser app needs from the server: the pages served behind the API, the views with their
counts, the claimed_by filter, the CSRF token after a reload, and presence for a queue on screen."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import Harness
from tests.test_live import conversation, open_live, presence, receive

pytestmark = pytest.mark.anyio

MODULES = sorted(p.name for p in (Path(__file__).resolve().parents[1] / "frontend" / "js").glob("*.js"))
#: Modules the first screen of someone logged in does without; they load when first needed.
LAZY = {"admin.js", "dialogs.js", "login.js"}


def assert_json_error(r: httpx.Response, status: int, code: str) -> None:
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/json")
    assert r.json()["error"]["code"] == code


async def test_the_pages_are_served_at_the_root_and_the_api_keeps_its_answers(server: Harness) -> None:
    c = server.client()
    page = await c.get("/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert '<script type="module" src="/js/main.js">' in page.text
    csp = page.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "object-src 'none'" in csp and "unsafe-inline" not in csp
    assert page.headers["x-content-type-options"] == "nosniff"
    # Every module of the first screen is preloaded at once: no waterfall of imports before the inbox shows.
    preloaded = {m for m in MODULES if f'<link rel="modulepreload" href="/js/{m}">' in page.text}
    assert preloaded == set(MODULES) - LAZY, preloaded
    module = await c.get("/js/main.js")
    assert module.status_code == 200 and "javascript" in module.headers["content-type"]
    assert int(module.headers["content-length"]) == len(module.content) > 0
    # A page that has a module already revalidates it cheaply.
    again = await c.get("/js/main.js", headers={"If-None-Match": module.headers["etag"]})
    assert again.status_code == 304 and not again.content
    assert (await c.head("/")).status_code == 200
    assert (await c.get("/healthz")).json() == {"status": "ok"}
    # The API still answers for itself: JSON errors, 405 with Allow, 401 before anything.
    assert_json_error(await c.get("/api/nope"), 404, "not_found")
    assert_json_error(await c.get("/nope.html"), 404, "not_found")
    assert_json_error(await c.delete("/"), 404, "not_found")
    assert_json_error(await c.post("/index.html"), 404, "not_found")
    wrong = await c.get("/api/conversations/1/claim")
    assert_json_error(wrong, 405, "method_not_allowed")
    assert "POST" in wrong.headers["allow"]
    assert_json_error(await c.get("/api/conversations"), 401, "not_authenticated")
    # Nothing outside frontend/ is reachable through the mount.
    for path in ("/../pyproject.toml", "/%2e%2e/pyproject.toml", "/js/../../webcare/app.py"):
        r = await c.get(path)
        assert r.status_code == 404 and "create_app" not in r.text and "[project]" not in r.text, path


async def test_a_reloaded_page_gets_its_csrf_token_back(server: Harness) -> None:
    user = await server.user("agent")
    c = server.client()
    login = await c.post("/api/session", json={"email": user["email"], "password": "correct horse battery"})
    token = login.json()["csrf_token"]
    again = await c.get("/api/session/csrf")
    assert again.status_code == 200 and again.json() == {"csrf_token": token}
    admin, _ = await server.token_client("admin")
    assert (await admin.get("/api/session/csrf")).json() == {"csrf_token": None}
    assert_json_error(await server.client().get("/api/session/csrf"), 401, "not_authenticated")


async def listing(client: httpx.AsyncClient, params: dict[str, Any]) -> list[int]:
    """Every conversation id of a queue listing, through all its pages."""
    ids: list[int] = []
    cursor = None
    while True:
        page = {**params, "limit": 2, **({"cursor": cursor} if cursor else {})}
        r = await client.get("/api/conversations", params=page)
        assert r.status_code == 200, r.text
        ids += [i["id"] for i in r.json()["items"]]
        cursor = r.json()["next_cursor"]
        if not cursor:
            return ids


async def test_views_count_exactly_what_opening_them_lists(server: Harness) -> None:
    admin, _ = await server.token_client("admin")
    agent, agent_user = await server.token_client("agent", department="Parkeren")
    colleague, _ = await server.token_client("agent", department="Parkeren")
    parking = await server.api_account(admin, department="Parkeren")
    waste = await server.api_account(admin, department="Afval")
    hidden = await server.api_account(admin, department="Afval", restricted=True)
    convs = [int((await server.inbound(admin, acc["id"], author={"id": f"p{i}", "handle": f"p{i}", "name": "P"}))
                 ["conversation_id"]) for i, acc in enumerate([parking, parking, parking, waste, waste, waste, hidden])]
    p1, p2, p3, w1, w2, w3, _h = convs
    assert (await agent.post(f"/api/conversations/{p1}/claim")).status_code == 200
    assert (await agent.post(f"/api/conversations/{w1}/claim")).status_code == 200
    assert (await colleague.post(f"/api/conversations/{p2}/claim")).status_code == 200
    r = await admin.post(f"/api/conversations/{w2}/escalate",
                         json={"user_id": agent_user["id"], "note": "jij weet dit"})
    assert r.status_code == 200, r.text
    departments = (await admin.get("/api/departments")).json()["items"]
    parkeren = next(d["id"] for d in departments if d["name"] == "Parkeren")
    r = await admin.post(f"/api/conversations/{w3}/escalate", json={"department_id": parkeren, "note": "parkeren?"})
    assert r.status_code == 200, r.text
    assert (await admin.post(f"/api/conversations/{p3}/close", json={"reason": "spam"})).status_code == 200

    views = (await agent.get("/api/views")).json()["items"]
    by_key = {v["key"]: v for v in views}
    assert [v["key"] for v in views][:6] == ["open", "mine", "escalated", "department", "answered", "closed"]
    expected = {"open": {p1, p2, w1, w2, w3}, "mine": {p1, w1}, "escalated": {w2, w3},
                "department": {p1, p2, w3}, "answered": set(), "closed": {p3},
                f"account-{parking['id']}": {p1, p2}, f"account-{waste['id']}": {w1, w2, w3}}
    # The restricted account of another department is no view of the agent's, and counts nowhere.
    assert f"account-{hidden['id']}" not in by_key
    for key, ids in expected.items():
        view = by_key[key]
        listed = await listing(agent, view["filter"])
        assert set(listed) == ids, (key, listed, view)
        # Closed is the whole history: no count to keep up.
        assert view["count"] == (None if key == "closed" else len(ids)), (key, view)
    assert by_key[f"account-{parking['id']}"]["account_id"] == parking["id"]
    # With first=<key>, the answer brings that view's first page of the queue along.
    together = (await agent.get("/api/views", params={"first": "mine", "limit": 1})).json()
    assert together["first"]["key"] == "mine" and together["first"]["next_cursor"]
    assert [i["id"] for i in together["first"]["items"]] == (await listing(agent, by_key["mine"]["filter"]))[:1]
    assert "first" not in (await agent.get("/api/views", params={"first": f"account-{hidden['id']}"})).json()
    assert_json_error(await agent.get("/api/views", params={"first": "open", "limit": 0}), 400, "invalid_query")
    # A coordinator sees the restricted account too, with its own view.
    coordinator, _ = await server.token_client("coordinator", department="Communicatie")
    theirs = {v["key"]: v for v in (await coordinator.get("/api/views")).json()["items"]}
    assert theirs[f"account-{hidden['id']}"]["count"] == 1 and theirs["open"]["count"] == 6
    assert "department" in theirs and theirs["mine"]["count"] == 0
    # Without a department there is no department view.
    loner, _ = await server.token_client("agent", department=None)
    assert "department" not in {v["key"] for v in (await loner.get("/api/views")).json()["items"]}


async def test_the_queue_filters_on_who_claimed(server: Harness) -> None:
    admin, _ = await server.token_client("admin")
    agent, agent_user = await server.token_client("agent")
    account = await server.api_account(admin)
    first = int((await server.inbound(admin, account["id"]))["conversation_id"])
    await server.inbound(admin, account["id"], author={"id": "u-2", "handle": "ander", "name": "Ander"})
    assert (await agent.post(f"/api/conversations/{first}/claim")).status_code == 200
    assert await listing(agent, {"claimed_by": "me"}) == [first]
    assert await listing(admin, {"claimed_by": str(agent_user["id"])}) == [first]
    assert await listing(admin, {"claimed_by": "me"}) == []
    for bad in ("you", "-1", "1e3", "٣", str(2**40)):
        assert_json_error(await agent.get("/api/conversations", params={"claimed_by": bad}), 400, "invalid_query")


async def test_a_queue_on_screen_follows_who_looks_and_types(server: Harness) -> None:
    admin, _ = await server.token_client("admin")
    first = await conversation(server, admin)
    second = await conversation(server, admin)
    hidden = await conversation(server, admin, department="Afval", restricted=True)
    anna_client, _ = await server.session_client(name="Anna", department="Parkeren")
    bram_client, bram = await server.token_client("coordinator", name="Bram")
    async with open_live(server.url, bram_client) as b:
        # Bram already has the first one open when Anna's queue starts following it.
        await b.send(json.dumps({"type": "presence.viewing", "conversation_id": first}))
        assert await presence(b, "presence.viewing", first) == []
        async with open_live(server.url, anna_client) as a:
            await a.send(json.dumps({"type": "presence.watch", "conversation_ids": [first, second, hidden]}))
            assert await presence(a, "presence.viewing", first) == [{"id": bram["id"], "name": "Bram"}]
            # A restricted conversation of another department says nothing, not even that someone is there.
            await b.send(json.dumps({"type": "presence.viewing", "conversation_id": hidden}))
            assert await presence(a, "presence.viewing", first) == []
            await b.send(json.dumps({"type": "presence.typing", "conversation_id": second, "typing": True}))
            frame = await receive(a)
            assert frame == {"type": "presence.viewing", "conversation_id": second,
                             "users": [{"id": bram["id"], "name": "Bram"}]}, "no word of the hidden one in between"
            assert await presence(a, "presence.typing", second) == [{"id": bram["id"], "name": "Bram"}]
            # Following nothing any more: changes stop; Anna's own viewing still reports as before.
            await a.send(json.dumps({"type": "presence.watch", "conversation_ids": []}))
            await a.send(json.dumps({"type": "presence.viewing", "conversation_id": first}))
            assert await presence(a, "presence.viewing", first) == []
            await b.send(json.dumps({"type": "presence.viewing", "conversation_id": first}))
            frames = [await receive(a)]
            while frames[-1] != {"type": "presence.viewing", "conversation_id": first,
                                 "users": [{"id": bram["id"], "name": "Bram"}]}:
                frames.append(await receive(a))
            assert not [f for f in frames if f.get("conversation_id") == second], frames
            # Bad lists are refused, and the stream goes on.
            for bad in ('{"type": "presence.watch"}', '{"type": "presence.watch", "conversation_ids": ["1"]}',
                        '{"type": "presence.watch", "conversation_ids": [true]}',
                        json.dumps({"type": "presence.watch", "conversation_ids": list(range(1, 102))})):
                await a.send(bad)
                reply = await receive(a)
                while reply["type"] != "error":
                    reply = await receive(a)
                assert reply["error"]["code"] == "invalid_message", bad
            assert (await admin.post(f"/api/conversations/{second}/claim")).status_code == 200
            assert (await receive(a)).get("type") != "error"
