"""Races that a look-up cannot see are decided by the database and answered 409, never 500; an
escalation goes only to someone who can see the conversation."""

from __future__ import annotations

import asyncio

import pytest

from tests.conftest import Harness

pytestmark = pytest.mark.anyio


async def test_creating_the_same_department_at_once_is_one_201_and_409s(server: Harness) -> None:
    admin, _ = await server.token_client("admin")
    answers = await asyncio.gather(*(admin.post("/api/departments", json={"name": "Wijkbeheer"}) for _ in range(12)))
    codes = sorted(r.status_code for r in answers)
    assert codes == [201] + [409] * 11, codes
    assert all(r.json()["error"]["code"] in ("department_exists", "conflict") for r in answers if r.status_code == 409)
    names = [d["name"] for d in (await admin.get("/api/departments")).json()["items"]]
    assert names.count("Wijkbeheer") == 1


async def test_creating_the_same_user_at_once_is_one_201_and_409s(server: Harness) -> None:
    admin, _ = await server.token_client("admin")
    body = {"email": "dubbel@test.webcare", "name": "Dubbel", "role": "agent"}
    answers = await asyncio.gather(*(admin.post("/api/users", json=body) for _ in range(8)))
    assert sorted(r.status_code for r in answers) == [201] + [409] * 7


async def test_escalation_goes_only_to_who_can_see_the_account(server: Harness) -> None:
    admin, _ = await server.token_client("admin")
    account = await server.api_account(admin, department="Vergunningen", restricted=True)
    conversation = (await server.inbound(admin, account["id"]))["conversation_id"]
    outsider = await server.user("expert", department="Afval")
    insider = await server.user("expert", department="Vergunningen")
    deps = {d["name"]: d["id"] for d in (await admin.get("/api/departments")).json()["items"]}

    r = await admin.post(f"/api/conversations/{conversation}/escalate", json={"user_id": outsider["id"], "note": "?"})
    assert r.status_code == 422 and r.json()["error"]["code"] == "assignee_cannot_see"
    r = await admin.post(f"/api/conversations/{conversation}/escalate",
                         json={"department_id": deps["Afval"], "note": "?"})
    assert r.status_code == 422 and r.json()["error"]["code"] == "assignee_cannot_see"
    detail = (await admin.get(f"/api/conversations/{conversation}")).json()
    assert detail["status"] == "open" and [m["direction"] for m in detail["messages"]] == ["in"], "nothing written"

    r = await admin.post(f"/api/conversations/{conversation}/escalate",
                         json={"user_id": insider["id"], "note": "Jij weet dit."})
    assert r.status_code == 200 and r.json()["conversation"]["assignee"]["id"] == insider["id"]
