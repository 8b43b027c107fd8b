"""House style: signatures, the platform's length counted with them, banned phrases and required elements,
per account with the department's as default; a reply that breaks one is refused (422) before anything
is stored, and the composer can check a draft without sending it."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from tests.conftest import Harness
from webcare.models import Message, Reply
from webcare.style import initials, platform_length, render

pytestmark = pytest.mark.anyio


async def setup(server: Harness, *, department: str = "Parkeren") -> tuple[httpx.AsyncClient, httpx.AsyncClient,
                                                                             dict[str, Any], int]:
    admin, _ = await server.token_client("admin")
    coordinator, _ = await server.token_client("coordinator")
    account = await server.api_account(admin, department=department)
    conversation = (await server.inbound(admin, account["id"], "Waar kan ik mijn parkeervergunning verlengen?",
                                         author={"id": "p-1", "handle": "pietje", "name": "Pietje Puk"}))
    return admin, coordinator, account, int(conversation["conversation_id"])


async def stored(server: Harness, conversation_id: int) -> tuple[int, int]:
    async with server.db.read() as s:
        replies = await s.scalar(sa.select(sa.func.count()).select_from(Reply)
                                 .where(Reply.conversation_id == conversation_id))
        outbound = await s.scalar(sa.select(sa.func.count()).select_from(Message)
                                  .where(Message.conversation_id == conversation_id, Message.direction == "out"))
    return int(replies or 0), int(outbound or 0)


def refused(r: httpx.Response, code: str) -> dict[str, Any]:
    assert r.status_code == 422, r.text
    error: dict[str, Any] = r.json()["error"]
    assert error["code"] == code and error["details"]["rule"] == code
    return error


async def test_the_signature_is_appended_with_the_agents_initials(server: Harness) -> None:
    _, coordinator, account, conv = await setup(server)
    r = await coordinator.put(f"/api/accounts/{account['id']}/style", json={"signature": "^{agent_initials}"})
    assert r.status_code == 200, r.text
    agent, _ = await server.token_client("agent", name="Anna de Vries")
    r = await agent.post(f"/api/conversations/{conv}/replies", json={"text": "Dat kan via de website.  "})
    assert r.status_code == 201, r.text
    assert r.json()["reply"]["text"] == "Dat kan via de website. ^AdV"
    detail = (await agent.get(f"/api/conversations/{conv}")).json()
    assert [m["text"] for m in detail["messages"] if m["direction"] == "out"] == ["Dat kan via de website. ^AdV"]
    # Signed by hand already: not twice.
    r = await agent.post(f"/api/conversations/{conv}/replies", json={"text": "Graag gedaan! ^AdV"})
    assert r.json()["reply"]["text"] == "Graag gedaan! ^AdV"


async def test_the_length_limit_counts_the_signature_and_refuses_before_the_outbox(server: Harness) -> None:
    _, coordinator, account, conv = await setup(server)
    await coordinator.put(f"/api/accounts/{account['id']}/style", json={"signature": "^{agent_initials}",
                                                                       "max_length": 40})
    agent, _ = await server.token_client("agent", name="Bo Bakker")
    fits = "x" * 36  # 36 + " ^BB" is exactly 40
    error = refused(await agent.post(f"/api/conversations/{conv}/replies", json={"text": fits + "y"}), "too_long")
    assert error["details"]["problems"][0]["length"] == 41 and error["details"]["problems"][0]["limit"] == 40
    assert "40" in error["message"]
    assert await stored(server, conv) == (0, 0), "nothing of a refused reply is stored"
    r = await agent.post(f"/api/conversations/{conv}/replies", json={"text": fits})
    assert r.status_code == 201, r.text
    assert await stored(server, conv) == (1, 1)


async def test_banned_phrases_and_required_elements_are_named_when_refused(server: Harness) -> None:
    _, coordinator, account, conv = await setup(server)
    r = await coordinator.put(f"/api/accounts/{account['id']}/style", json={
        "banned_phrases": ["helaas pindakaas", "daar gaan wij niet over"],
        "required": [{"name": "a greeting", "any_of": ["hoi {author}", "beste {author}", "dag {author}"]}]})
    assert r.status_code == 200, r.text
    agent, _ = await server.token_client("agent")
    error = refused(await agent.post(f"/api/conversations/{conv}/replies", json={
        "text": "Hoi Pietje Puk, HÉLAAS PINDAKAAS, dat kan niet."}), "banned_phrase")
    assert "helaas pindakaas" in error["message"]
    error = refused(await agent.post(f"/api/conversations/{conv}/replies", json={"text": "Dat kan online."}),
                    "missing_element")
    assert "a greeting" in error["message"]
    # Both broken at once: both listed, the first named.
    error = refused(await agent.post(f"/api/conversations/{conv}/replies", json={
        "text": "Daar gaan wij niet over."}), "banned_phrase")
    assert [p["rule"] for p in error["details"]["problems"]] == ["banned_phrase", "missing_element"]
    assert await stored(server, conv) == (0, 0)
    r = await agent.post(f"/api/conversations/{conv}/replies", json={"text": "Beste Pietje Puk, dat kan online."})
    assert r.status_code == 201, r.text


async def test_the_department_style_is_the_default_and_the_account_overrides_it(server: Harness) -> None:
    _, coordinator, account, conv = await setup(server, department="Afval")
    department_id = account["department_id"]
    r = await coordinator.put(f"/api/departments/{department_id}/style", json={
        "signature": "Team Afval", "banned_phrases": ["geen idee"]})
    assert r.status_code == 200, r.text
    agent, _ = await server.token_client("agent")
    r = await agent.post(f"/api/conversations/{conv}/replies", json={"text": "Morgen komen we langs."})
    assert r.json()["reply"]["text"] == "Morgen komen we langs. Team Afval"
    await coordinator.put(f"/api/accounts/{account['id']}/style", json={
        "signature": "^{agent_initials}", "banned_phrases": ["zoek het zelf uit"]})
    view = (await agent.get(f"/api/accounts/{account['id']}/style")).json()
    assert view["effective"]["signature"] == "^{agent_initials}"
    assert view["effective"]["sources"]["signature"] == "account"
    assert set(view["effective"]["banned_phrases"]) == {"geen idee", "zoek het zelf uit"}
    refused(await agent.post(f"/api/conversations/{conv}/replies", json={"text": "Geen idee eigenlijk"}),
            "banned_phrase")
    assert (await agent.get(f"/api/departments/{department_id}/style")).json()["style"]["signature"] == "Team Afval"


async def test_a_draft_is_checked_without_being_sent(server: Harness) -> None:
    _, coordinator, account, conv = await setup(server)
    await coordinator.put(f"/api/accounts/{account['id']}/style", json={
        "signature": "^{agent_initials}", "max_length": 30, "banned_phrases": ["helaas"]})
    agent, _ = await server.token_client("agent", name="Kim Jansen")
    r = await agent.post(f"/api/conversations/{conv}/replies/check", json={"text": "Helaas is dat niet mogelijk."})
    assert r.status_code == 200, r.text
    check = r.json()
    assert check["ok"] is False and check["text"] == "Helaas is dat niet mogelijk. ^KJ"
    assert check["length"] == 32 and check["limit"] == 30
    assert check["signature"] == "^KJ" and check["signature_added"] is True
    assert [p["rule"] for p in check["problems"]] == ["banned_phrase", "too_long"]
    assert check["approval"] == {"required": False, "rules": []}
    good = (await agent.post(f"/api/conversations/{conv}/replies/check", json={"text": "Dat kan online."})).json()
    assert good["ok"] is True and good["problems"] == []
    signed = (await agent.post(f"/api/conversations/{conv}/replies/check", json={"text": "Dat kan. ^KJ"})).json()
    assert signed["text"] == "Dat kan. ^KJ" and signed["signature_added"] is False, "signed already: not twice"
    assert await stored(server, conv) == (0, 0), "checking stores nothing"
    detail = (await agent.get(f"/api/conversations/{conv}")).json()
    assert detail["status"] == "open" and detail["claimed_by"] is None, "checking claims nothing"


async def test_only_coordinators_set_the_style_and_templates_are_checked(server: Harness) -> None:
    _, coordinator, account, _ = await setup(server)
    agent, _ = await server.token_client("agent")
    r = await agent.put(f"/api/accounts/{account['id']}/style", json={"signature": "^{agent_initials}"})
    assert r.status_code == 403, r.text
    r = await coordinator.put(f"/api/accounts/{account['id']}/style", json={"signature": "^{agent}"})
    assert r.status_code == 400 and r.json()["error"]["code"] == "unknown_variable"
    r = await coordinator.put(f"/api/accounts/{account['id']}/style", json={"max_length": 0})
    assert r.status_code == 400
    r = await coordinator.put("/api/departments/999999/style", json={})
    assert r.status_code == 404


def test_platform_lengths_are_counted_as_the_platforms_count() -> None:
    url = "https://www.example.com/a/very/long/path/that/goes/on/and/on/and/on"
    assert platform_length("x", f"Kijk op {url}", None) == len("Kijk op ") + 23
    assert platform_length("x", "日本", None) == 4
    assert platform_length("x", "Hé café", None) == 7
    # Mastodon: the connector puts the person's @mention in front, counted without its instance.
    assert platform_length("mastodon", "Dank je!", "jan@social.example") == len("@jan Dank je!")
    assert platform_length("mastodon", f"@jan@social.example zie {url}", "jan@social.example") == len("@jan zie ") + 23
    assert platform_length("email", "Beste Jan", None) == 9


def test_initials_and_variables() -> None:
    assert initials("Anna de Vries") == "AdV"
    assert initials("Kees van der Berg") == "KvdB"
    assert initials("prince") == "P"
    assert render("Hoi {author}, groet {agent_initials} van {account} {unknown}",
                  {"author": "Jan", "agent_initials": "AdV", "account": "@gemeente"}) == \
        "Hoi Jan, groet AdV van @gemeente {unknown}"
