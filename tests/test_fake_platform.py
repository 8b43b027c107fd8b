"""The fake platforms on the wire: their JSON, paging, headers and errors, and the control API."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import httpx
import pytest

from connectors.fake import FakePlatform, create_app
from tests.conftest import FakeServer, ServerThread, free_port

pytestmark = pytest.mark.anyio
ISO_RESET = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$")


async def control(c: httpx.AsyncClient, path: str, body: dict[str, Any] | None = None) -> Any:
    r = await c.post(f"/_control{path}", json=body or {})
    assert r.status_code in (200, 201), r.text
    return r.json()


async def test_x_speaks_api_v2(fake_server: FakeServer) -> None:
    async with httpx.AsyncClient(base_url=fake_server.url) as c:
        account = await control(c, "/x/accounts", {"username": "gemeente", "name": "Gemeente"})
        token = account["credentials"]["access_token"]
        oauth = {"Authorization": f'OAuth oauth_consumer_key="ck", oauth_token="{token}", oauth_signature="any"'}
        me = await c.get("/x/2/users/me", headers=oauth)
        assert me.json() == {"data": {"id": account["id"], "name": "Gemeente", "username": "gemeente"}}
        assert {"x-rate-limit-limit", "x-rate-limit-remaining", "x-rate-limit-reset"} <= set(me.headers)
        assert me.headers["x-rate-limit-reset"].isdigit()

        mentions = f"/x/2/users/{account['id']}/mentions"
        empty = await c.get(mentions, headers=oauth)
        assert empty.json() == {"meta": {"result_count": 0}}

        ids = [(await control(c, "/x/mentions", {"account": "gemeente", "text": f"v{i}", "author": "jan"}))["id"]
               for i in range(7)]
        assert ids == sorted(ids, key=int) and all(i.isdigit() for i in ids)
        first = (await c.get(mentions, headers=oauth, params={"max_results": 5, "expansions": "author_id",
                                                              "tweet.fields": "created_at,author_id"})).json()
        assert [t["id"] for t in first["data"]] == ids[:1:-1]
        assert first["data"][0]["edit_history_tweet_ids"] == [ids[-1]]
        assert first["data"][0]["created_at"].endswith("Z")
        assert [u["username"] for u in first["includes"]["users"]] == ["jan"]
        assert first["meta"]["newest_id"] == ids[-1] and first["meta"]["oldest_id"] == ids[2]
        last = (await c.get(mentions, headers=oauth, params={"max_results": 5,
                                                             "pagination_token": first["meta"]["next_token"]})).json()
        assert [t["id"] for t in last["data"]] == [ids[1], ids[0]]
        assert "next_token" not in last["meta"] and "includes" not in last
        since = (await c.get(mentions, headers=oauth, params={"since_id": ids[4]})).json()
        assert [t["id"] for t in since["data"]] == [ids[6], ids[5]]

        unsigned = await c.get(mentions)
        assert unsigned.status_code == 401
        assert unsigned.json() == {"title": "Unauthorized", "detail": "Unauthorized", "type": "about:blank",
                                   "status": 401}
        bad = await c.get(mentions, headers=oauth, params={"max_results": 1})
        assert bad.status_code == 400 and bad.json()["title"] == "Invalid Request"

        posted = await c.post("/x/2/tweets", headers=oauth, json={"text": "hoi", "reply": {
            "in_reply_to_tweet_id": ids[0]}})
        assert posted.status_code == 201
        assert posted.json()["data"]["edit_history_tweet_ids"] == [posted.json()["data"]["id"]]


async def test_x_429_always_says_when_it_resets(fake_server: FakeServer) -> None:
    fake = fake_server.fake
    account = fake.add_x_account("gemeente")
    fake.add_fault("status", platform="x", status=429)  # no reset given: the fake still sends one
    async with httpx.AsyncClient(base_url=fake_server.x_url) as c:
        r = await c.get("/2/users/me", headers={"Authorization": f"Bearer {account.access_token}"})
    assert r.status_code == 429
    assert int(r.headers["x-rate-limit-reset"]) > fake.now()
    assert r.headers["x-rate-limit-remaining"] == "0"
    assert r.json()["title"] == "Too Many Requests"


async def test_x_direct_messages(fake_server: FakeServer) -> None:
    fake = fake_server.fake
    account = fake.add_x_account("gemeente")
    event = fake.inject_x_dm("gemeente", "privé", sender="jan")
    auth = {"Authorization": f"Bearer {account.access_token}"}
    async with httpx.AsyncClient(base_url=fake_server.x_url) as c:
        events = (await c.get("/2/dm_events", headers=auth, params={
            "dm_event.fields": "sender_id,dm_conversation_id", "expansions": "sender_id"})).json()
        assert events["data"] == [{"id": event.id, "event_type": "MessageCreate", "text": "privé",
                                   "dm_conversation_id": event.dm_conversation_id, "sender_id": event.sender_id}]
        assert events["includes"]["users"][0]["username"] == "jan"
        sent = await c.post(f"/2/dm_conversations/{event.dm_conversation_id}/messages", headers=auth,
                            json={"text": "antwoord"})
        assert sent.status_code == 201
        assert sent.json()["data"]["dm_conversation_id"] == event.dm_conversation_id
        account.dm_access = False
        forbidden = await c.get("/2/dm_events", headers=auth)
        assert forbidden.status_code == 403 and forbidden.json()["reason"] == "client-not-enrolled"


async def test_mastodon_speaks_its_api(fake_server: FakeServer) -> None:
    async with httpx.AsyncClient(base_url=fake_server.url) as c:
        token = (await control(c, "/mastodon/accounts", {"username": "gemeente"}))["access_token"]
        auth = {"Authorization": f"Bearer {token}"}
        statuses = [await control(c, "/mastodon/mentions", {"account": "gemeente", "text": f"vraag {i}"})
                    for i in range(5)]
        r = await c.get("/mastodon/api/v1/notifications", headers=auth, params={"types[]": "mention", "limit": 2})
        page = r.json()
        assert [n["status"]["id"] for n in page] == [statuses[4]["id"], statuses[3]["id"]]
        assert page[0]["type"] == "mention" and page[0]["account"]["acct"] == "burger@elders.example"
        assert r.links["next"]["url"].endswith(f"max_id={page[1]['id']}")
        assert r.links["prev"]["url"].endswith(f"min_id={page[0]['id']}")
        assert ISO_RESET.match(r.headers["x-ratelimit-reset"])

        oldest = (await c.get("/mastodon/api/v1/notifications", headers=auth, params={"limit": 5})).json()[-1]
        # min_id: the items immediately newer than it, newest first.
        newer = await c.get("/mastodon/api/v1/notifications", headers=auth, params={"min_id": oldest["id"],
                                                                                    "limit": 2})
        assert [n["status"]["id"] for n in newer.json()] == [statuses[2]["id"], statuses[1]["id"]]
        top = await c.get("/mastodon/api/v1/notifications", headers=auth, params={"min_id": page[0]["id"]})
        assert top.json() == [] and "link" not in top.headers

        form = await c.post("/mastodon/api/v1/statuses", headers=auth,
                            data={"status": "@burger@elders.example hoi", "in_reply_to_id": statuses[0]["id"],
                                  "visibility": "private"})
        assert form.status_code == 200
        body = form.json()
        assert (body["in_reply_to_id"], body["visibility"]) == (statuses[0]["id"], "private")
        assert body["mentions"][0]["acct"] == "burger@elders.example"
        assert 'class="u-url mention"' in body["content"]

        blank = await c.post("/mastodon/api/v1/statuses", headers=auth, json={"status": " "})
        assert blank.status_code == 422 and blank.json() == {"error": "Validation failed: Text can't be blank"}
        missing = await c.get("/mastodon/api/v1/statuses/1", headers=auth)
        assert missing.status_code == 404 and missing.json() == {"error": "Record not found"}
        anonymous = await c.get("/mastodon/api/v1/notifications")
        assert anonymous.status_code == 401 and anonymous.json() == {"error": "The access token is invalid"}


async def test_faults_are_counted_listed_and_cleared(fake_server: FakeServer) -> None:
    fake = fake_server.fake
    account = fake.add_mastodon_account("gemeente")
    auth = {"Authorization": f"Bearer {account.access_token}"}
    async with httpx.AsyncClient(base_url=fake_server.url) as c:
        fault = await control(c, "/faults", {"kind": "status", "status": 503, "times": 2, "platform": "mastodon"})
        assert fault["times"] == 2
        statuses = [(await c.get("/mastodon/api/v1/notifications", headers=auth)).status_code for _ in range(3)]
        assert statuses == [503, 503, 200]
        await control(c, "/faults", {"kind": "status", "status": 500, "times": None})
        assert len((await c.get("/_control/faults")).json()["faults"]) == 1
        assert (await c.delete("/_control/faults")).json() == {"faults": []}
        assert (await c.get("/mastodon/api/v1/notifications", headers=auth)).status_code == 200
        wrong = await c.post("/_control/faults", json={"kind": "explode"})
        assert wrong.status_code == 400
        unknown = await c.post("/_control/x/mentions", json={"account": "nobody", "text": "hoi"})
        assert unknown.status_code == 404

        await control(c, "/faults", {"kind": "status", "status": 429, "body": {"error": "slow down"},
                                     "reset": 2_000_000_000})
        limited = await c.get("/mastodon/api/v1/notifications", headers=auth)
        assert limited.json() == {"error": "slow down"}
        assert limited.headers["x-ratelimit-reset"] == "2033-05-18T03:33:20.000000Z"

        assert [r["path"] for r in (await c.get("/_control/requests")).json()["requests"]][:1] == [
            "/api/v1/notifications"]
        await control(c, "/reset")
        assert fake.m_accounts == {} and fake.requests == []


async def test_two_fakes_do_not_share_anything() -> None:
    one, two = FakePlatform(), FakePlatform()
    with ServerThread(create_app(one)) as a, ServerThread(create_app(two)) as b:
        async with httpx.AsyncClient() as c:
            await control_at(c, a.url, "/x/accounts", {"username": "gemeente"})
            assert (await c.post(f"{b.url}/_control/x/mentions",
                                 json={"account": "gemeente", "text": "hoi"})).status_code == 404
    assert one.x_accounts and not two.x_accounts


async def control_at(c: httpx.AsyncClient, root: str, path: str, body: dict[str, Any]) -> Any:
    r = await c.post(f"{root}/_control{path}", json=body)
    assert r.status_code == 201, r.text
    return r.json()


def test_it_runs_standalone_with_seeded_accounts(tmp_path: Path) -> None:
    seed = tmp_path / "seed.json"
    seed.write_text(json.dumps({"x": [{"username": "gemeente", "access_token": "42-demo", "consumer_key": "ck",
                                       "consumer_secret": "cs", "access_token_secret": "ats"}],
                                "mastodon": [{"username": "gemeente", "access_token": "demo-token"}]}))
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "connectors.fake", "--port", str(port), "--seed", str(seed)],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            cwd=Path(__file__).parent.parent)
    started = threading.Event()
    output: list[str] = []

    def watch() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            output.append(line)
            if "Application startup complete" in line:
                started.set()

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    try:
        assert started.wait(30), "".join(output)
        r = httpx.get(f"http://127.0.0.1:{port}/mastodon/api/v1/accounts/verify_credentials",
                      headers={"Authorization": "Bearer demo-token"})
        assert r.json()["username"] == "gemeente"
        assert any("x/gemeente" in line and "42-demo" in line for line in output)
    finally:
        proc.terminate()
        proc.wait(30)
        watcher.join(30)
        assert proc.stdout is not None
        proc.stdout.close()
