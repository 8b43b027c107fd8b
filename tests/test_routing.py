"""Routing rules: keywords and fuzzy phrases send a new conversation to a department's view or suggest an
expert; the first rule in order decides; why it was routed shows on the conversation."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from tests.conftest import Harness
from webcare.models import Event

pytestmark = pytest.mark.anyio


async def department(admin: httpx.AsyncClient, name: str) -> int:
    deps = (await admin.get("/api/departments")).json()["items"]
    found = next((d for d in deps if d["name"] == name), None)
    if found is None:
        found = (await admin.post("/api/departments", json={"name": name})).json()
    return int(found["id"])


async def new_rule(coordinator: httpx.AsyncClient, **fields: Any) -> dict[str, Any]:
    r = await coordinator.post("/api/routing-rules", json=fields)
    assert r.status_code == 201, r.text
    return dict(r.json())


async def incoming(server: Harness, admin: httpx.AsyncClient, account_id: int, text: str) -> dict[str, Any]:
    conversation_id = (await server.inbound(admin, account_id, text))["conversation_id"]
    r = await admin.get(f"/api/conversations/{conversation_id}")
    assert r.status_code == 200, r.text
    return dict(r.json())


async def test_keywords_and_fuzzy_phrases_route_to_a_department_with_the_reason(server: Harness) -> None:
    admin, _ = await server.token_client("admin")
    coordinator, _ = await server.token_client("coordinator")
    account = await server.api_account(admin, department="Communicatie")
    afval = await department(admin, "Afval")
    parkeren = await department(admin, "Parkeren")
    await new_rule(coordinator, name="Grofvuil", department_id=afval, keywords=["grofvuil", "container*"])
    await new_rule(coordinator, name="Vergunningen", department_id=parkeren,
                   phrases=["parkeervergunning verlengen", "bezoekersparkeren"], threshold=85)

    by_keyword = await incoming(server, admin, account["id"], "Wanneer wordt het GROFVUIL opgehaald?")
    assert by_keyword["assignee"] == {"type": "department", "id": afval, "name": "Afval"}
    assert by_keyword["status"] == "open"
    assert by_keyword["routing"]["rule_name"] == "Grofvuil"
    assert by_keyword["routing"]["reason"] == "keyword 'grofvuil'"
    assert by_keyword["routing"]["department"] == {"id": afval, "name": "Afval"}
    prefix = await incoming(server, admin, account["id"], "De containers bij ons zitten vol")
    assert prefix["routing"]["reason"] == "keyword 'container*'"

    # A typo and words in between do not hide a phrase.
    fuzzy = await incoming(server, admin, account["id"], "Hoe kan ik mijn parkeervergunnig verlengen aub?")
    assert fuzzy["assignee"]["id"] == parkeren
    assert fuzzy["routing"]["reason"].startswith("phrase 'parkeervergunning verlengen'")
    nothing = await incoming(server, admin, account["id"], "Hoe laat is het stadhuis open?")
    assert nothing["routing"] is None and nothing["assignee"] is None
    # Not a whole word: "grofvuilcontainer" is no keyword match for "grofvuil" (and no prefix rule covers it).
    assert (await incoming(server, admin, account["id"], "Mijn grofvuilcontainertje is weg"))["routing"] is None

    in_view = (await admin.get("/api/conversations", params={"department_id": afval})).json()["items"]
    assert {by_keyword["id"], prefix["id"]} <= {c["id"] for c in in_view}
    assert fuzzy["id"] not in {c["id"] for c in in_view}
    async with server.db.read() as s:
        routed = list(await s.execute(sa.select(Event.conversation_id, Event.data)
                                      .where(Event.type == "conversation.routed").order_by(Event.seq)))
    assert [cid for cid, _ in routed] == [by_keyword["id"], prefix["id"], fuzzy["id"]]
    assert routed[0][1]["department_id"] == afval and routed[0][1]["reason"] == "keyword 'grofvuil'"


async def test_the_first_rule_in_order_decides_and_experts_are_suggested(server: Harness) -> None:
    admin, _ = await server.token_client("admin")
    coordinator, _ = await server.token_client("coordinator")
    _, expert = await server.token_client("expert", name="Erik Expert")
    account = await server.api_account(admin, department="Communicatie")
    other_account = await server.api_account(admin, department="Wonen")
    wonen = await department(admin, "Wonen")
    general = await new_rule(coordinator, name="Alles over bomen", department_id=wonen, keywords=["boom", "bomen"],
                             position=10)
    specific = await new_rule(coordinator, name="Boomziekte", expert_user_id=expert["id"],
                              phrases=["eikenprocessierups"], position=1)
    scoped = await new_rule(coordinator, name="Alleen Wonen", department_id=wonen, keywords=["lekkage"],
                            account_id=other_account["id"], position=5)

    detail = await incoming(server, admin, account["id"], "Er zit eikenprocessierups in de bomen bij de school!")
    assert detail["routing"]["rule_id"] == specific["id"]
    assert detail["routing"]["suggested_expert"] == {"id": expert["id"], "name": "Erik Expert"}
    assert detail["routing"]["department"] is None and detail["assignee"] is None, "a suggestion, not an assignment"
    assert (await incoming(server, admin, account["id"], "Mag ik deze boom kappen?"))["routing"]["rule_id"] == \
        general["id"]
    assert (await incoming(server, admin, account["id"], "Lekkage in de hal"))["routing"] is None
    assert (await incoming(server, admin, other_account["id"], "Lekkage in de hal"))["routing"]["rule_id"] == \
        scoped["id"]

    r = await coordinator.patch(f"/api/routing-rules/{general['id']}", json={"position": 0})
    assert r.status_code == 200 and r.json()["position"] == 0
    assert [x["id"] for x in (await admin.get("/api/routing-rules")).json()["items"]][:2] == \
        [general["id"], specific["id"]]
    tried = await coordinator.post("/api/routing-rules/test", json={"text": "eikenprocessierups in een boom"})
    assert tried.json()["match"]["rule_id"] == general["id"]
    await coordinator.patch(f"/api/routing-rules/{general['id']}", json={"active": False})
    tried = await coordinator.post("/api/routing-rules/test", json={"text": "eikenprocessierups in een boom"})
    assert tried.json()["match"]["rule_id"] == specific["id"]
    assert (await coordinator.delete(f"/api/routing-rules/{specific['id']}")).status_code == 200
    assert (await coordinator.post("/api/routing-rules/test", json={"text": "eikenprocessierups"})).json() == \
        {"match": None}


async def test_coordinators_manage_the_rules_and_bad_rules_are_refused(server: Harness) -> None:
    admin, _ = await server.token_client("admin")
    coordinator, _ = await server.token_client("coordinator")
    agent, _ = await server.token_client("agent")
    afval = await department(admin, "Afval")
    assert (await agent.post("/api/routing-rules", json={"name": "x", "department_id": afval,
                                                         "keywords": ["x"]})).status_code == 403
    assert (await agent.get("/api/routing-rules")).status_code == 200
    r = await coordinator.post("/api/routing-rules", json={"name": "leeg", "department_id": afval})
    assert r.status_code == 400 and "keyword" in r.json()["error"]["message"]
    r = await coordinator.post("/api/routing-rules", json={"name": "nergens heen", "keywords": ["x"]})
    assert r.status_code == 400
    r = await coordinator.post("/api/routing-rules", json={"name": "x", "department_id": 999999, "keywords": ["x"]})
    assert r.status_code == 404
    r = await coordinator.post("/api/routing-rules", json={"name": "x", "department_id": afval, "keywords": ["x"],
                                                           "threshold": 20})
    assert r.status_code == 400
    assert (await coordinator.patch("/api/routing-rules/999999", json={"active": False})).status_code == 404
