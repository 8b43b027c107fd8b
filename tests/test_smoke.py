from __future__ import annotations

import pytest

from tests.conftest import Harness

pytestmark = pytest.mark.anyio


async def test_health_and_openapi(server: Harness) -> None:
    c = server.client()
    assert (await c.get("/healthz")).status_code == 200
    assert (await c.get("/readyz")).json() == {"status": "ok"}
    spec = (await c.get("/openapi.json")).json()
    assert "/api/conversations/{id}/claim" in spec["paths"]


async def test_claim_flow(server: Harness) -> None:
    admin, _ = await server.token_client("admin")
    account = await server.api_account(admin)
    conv = (await server.inbound(admin, account["id"]))["conversation_id"]
    agent, user = await server.session_client("agent")
    r = await agent.post(f"/api/conversations/{conv}/claim")
    assert r.status_code == 200, r.text
    assert r.json()["conversation"]["claimed_by"]["id"] == user["id"]
