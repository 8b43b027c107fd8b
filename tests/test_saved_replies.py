"""Saved replies: shared across the organisation, owned by a department, managed by coordinators, found by
fuzzy search from the composer and filled in for the conversation at hand."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.conftest import Harness

pytestmark = pytest.mark.anyio

LIBRARY = [
    ("Grofvuil ophalen", "Hoi {author}, grofvuil meldt u aan via de website; wij halen het binnen vijf werkdagen op. "
                         "^{agent_initials}"),
    ("Parkeervergunning verlengen", "Beste {author}, uw parkeervergunning verlengt u in Mijn Loket. "
                                    "Groet, {account} ^{agent_initials}"),
    ("Storing website", "Hoi {author}, er is een storing op onze website. We werken aan een oplossing."),
    ("Openingstijden stadhuis", "Het stadhuis is open van maandag tot en met vrijdag, 9:00 tot 17:00."),
]


async def library(server: Harness) -> tuple[httpx.AsyncClient, httpx.AsyncClient, list[dict[str, Any]], int]:
    admin, _ = await server.token_client("admin")
    coordinator, _ = await server.token_client("coordinator")
    department = (await admin.post("/api/departments", json={"name": "KCC"})).json()["id"]
    saved = []
    for title, text in LIBRARY:
        r = await coordinator.post("/api/saved-replies", json={"department_id": department, "title": title,
                                                               "text": text})
        assert r.status_code == 201, r.text
        saved.append(r.json())
    return admin, coordinator, saved, department


async def test_coordinators_manage_saved_replies_for_everyone(server: Harness) -> None:
    admin, coordinator, saved, department = await library(server)
    agent, _ = await server.token_client("agent", department="Afval")
    items = (await agent.get("/api/saved-replies")).json()["items"]
    assert {i["title"] for i in items} == {t for t, _ in LIBRARY}, "shared across the organisation"
    assert all(i["department"] == "KCC" for i in items)
    assert (await agent.post("/api/saved-replies", json={"department_id": department, "title": "x",
                                                         "text": "y"})).status_code == 403
    assert (await agent.delete(f"/api/saved-replies/{saved[0]['id']}")).status_code == 403

    r = await coordinator.post("/api/saved-replies", json={"department_id": department, "title": "Grofvuil ophalen",
                                                           "text": "Nog een keer"})
    assert r.status_code == 409 and r.json()["error"]["code"] == "saved_reply_exists"
    r = await coordinator.post("/api/saved-replies", json={"department_id": department, "title": "Fout",
                                                           "text": "Hoi {naam}"})
    assert r.status_code == 400 and r.json()["error"]["code"] == "unknown_variable"
    r = await coordinator.patch(f"/api/saved-replies/{saved[3]['id']}", json={"text": "Open op werkdagen."})
    assert r.status_code == 200 and r.json()["text"] == "Open op werkdagen."
    r = await coordinator.patch(f"/api/saved-replies/{saved[3]['id']}", json={"title": "Storing website"})
    assert r.status_code == 409
    assert (await coordinator.delete(f"/api/saved-replies/{saved[3]['id']}")).status_code == 200
    assert (await coordinator.delete(f"/api/saved-replies/{saved[3]['id']}")).status_code == 404
    assert len((await agent.get("/api/saved-replies")).json()["items"]) == 3
    other = (await admin.post("/api/departments", json={"name": "Leeg"})).json()["id"]
    assert (await agent.get("/api/saved-replies", params={"department_id": other})).json()["items"] == []


async def test_fuzzy_search_from_the_composer_finds_through_typos(server: Harness) -> None:
    await library(server)
    agent, _ = await server.token_client("agent")

    async def titles(q: str) -> list[str]:
        r = await agent.get("/api/saved-replies", params={"q": q})
        assert r.status_code == 200, r.text
        return [i["title"] for i in r.json()["items"]]

    assert (await titles("grofvul"))[0] == "Grofvuil ophalen"
    assert (await titles("parkeervergunig"))[0] == "Parkeervergunning verlengen"
    assert (await titles("storing"))[0] == "Storing website"
    assert (await titles("Mijn Loket"))[0] == "Parkeervergunning verlengen", "the text is searched too"
    assert await titles("xylofoon") == []


async def test_variables_are_filled_in_for_the_conversation_and_ranked_by_its_question(server: Harness) -> None:
    admin, _, saved, _ = await library(server)
    agent, _ = await server.token_client("agent", name="Sanne van Dijk")
    account = await server.api_account(admin)
    conversation = (await server.inbound(admin, account["id"], "Hoe kan ik mijn parkeervergunning verlengen?",
                                         author={"id": "p-9", "handle": "marloes", "name": "Marloes"}))
    cid = conversation["conversation_id"]
    items = (await agent.get("/api/saved-replies", params={"conversation_id": cid})).json()["items"]
    assert items[0]["title"] == "Parkeervergunning verlengen"
    assert items[0]["rendered"] == ("Beste Marloes, uw parkeervergunning verlengt u in Mijn Loket. "
                                    "Groet, Website ^SvD")
    r = await agent.post(f"/api/saved-replies/{saved[0]['id']}/render", json={"conversation_id": cid})
    assert r.json()["text"].startswith("Hoi Marloes, grofvuil meldt u aan")
    r = await agent.post(f"/api/saved-replies/{saved[0]['id']}/render", json={})
    assert r.json()["text"].startswith("Hoi {author}, grofvuil") and r.json()["text"].endswith("^SvD")
    assert (await agent.post("/api/saved-replies/999999/render", json={})).status_code == 404
