"""What clients send that does not fit: every such request is a clear 4xx JSON error and writes nothing.

Each refused request is checked against a snapshot of the tables before and after it; each endpoint's
valid base body is sent at the end, so a 400 can only have come from what was changed in it.
"""

from __future__ import annotations

import base64
import json
import logging
import secrets
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from tests.conftest import PASSWORD, Harness
from webcare import people
from webcare.models import (
    Account,
    ApiToken,
    Conversation,
    Department,
    Event,
    EventCounter,
    LoginFailure,
    Message,
    Reply,
    User,
    UserSession,
)
from webcare.schemas import UserIn

pytestmark = pytest.mark.anyio

MiB = 1 << 20
LIMIT = 256 * 1024
ACCOUNT_COLUMNS = (Account.id, Account.platform, Account.handle, Account.name, Account.department_id,
                   Account.settings, Account.credentials_encrypted, Account.restricted, Account.active)
TABLES = (Department, User, ApiToken, UserSession, LoginFailure, Conversation, Message, Reply, Event, EventCounter)

HOSTILE = [
    "<script>alert(1)</script>",
    "\"><img src=x onerror=alert(1)>",
    "\u202eevil.exe\u202c and \u2067rtl\u2069 \u200f",
    "emoji 🎉👩‍👩‍👧‍👦🏳️‍🌈 and 𝕳𝖊𝖑𝖑𝖔",  # noqa: RUF001 (look-alike letters on purpose)
    "z̷̢̛a̵͚l̴g̸o̶ ͟t̷e̵x̴t",
    "'; DROP TABLE conversations; -- %s %(x)s {0} ${x} {{x}}",
    "back\\slash \\u0000 and \\n literally",
    "tab\there\r\nnew line\n  trailing spaces  ",
    "\ufeffBOM \u00a0nbsp \u2028line sep",
    "日本語 العربية עברית हिन्दी",
    "%_% _ % \\% /",
]


@dataclass
class World:
    admin: httpx.AsyncClient
    agent: httpx.AsyncClient
    anonymous: httpx.AsyncClient
    admin_user: dict[str, Any]
    agent_user: dict[str, Any]
    expert_user: dict[str, Any]
    department_id: int
    account: dict[str, Any]
    x_account: dict[str, Any]
    conversation_id: int


async def token_user(server: Harness, role: str, department: str | None = "Parkeren",
                     ) -> tuple[httpx.AsyncClient, dict[str, Any]]:
    """A user with an API token and no password (no slow password hashing), and a client using the token."""
    email = f"{role}-{secrets.token_hex(4)}@test.webcare"
    user = await people.create_user(server.db, UserIn(email=email, name=f"{role.title()} {email[-22:-13]}",
                                                      role=role),  # type: ignore[arg-type]
                                    department_name=department)
    token = await people.create_token(server.db, email)
    return server.client(headers={"Authorization": f"Bearer {token}"}), user


async def build_world(server: Harness) -> World:
    admin, admin_user = await token_user(server, "admin")
    agent, agent_user = await token_user(server, "agent")
    _, expert_user = await token_user(server, "expert", "Vergunningen")
    account = await server.api_account(admin)
    r = await admin.post("/api/accounts", json={"platform": "x", "handle": "@stad", "name": "X",
                                                "department_id": account["department_id"]})
    assert r.status_code == 201, r.text
    conversation_id = (await server.inbound(admin, account["id"]))["conversation_id"]
    return World(admin, agent, server.client(), admin_user, agent_user, expert_user, account["department_id"],
                 account, r.json(), conversation_id)


async def snapshot(server: Harness) -> dict[str, list[Any]]:
    """Every row of the tables a request could write (accounts: the columns the API owns)."""
    out: dict[str, list[Any]] = {}
    async with server.db.read() as s:
        for model in TABLES:
            table = model.__table__  # type: ignore[attr-defined]
            rows = (await s.execute(sa.select(table).order_by(*table.primary_key.columns))).all()
            out[table.name] = [tuple(row) for row in rows]
        out["accounts"] = [tuple(row) for row in (await s.execute(
            sa.select(*ACCOUNT_COLUMNS).order_by(Account.id))).all()]
    return out


def assert_error(r: httpx.Response, status: int, code: str | set[str] | None = None) -> dict[str, Any]:
    try:
        sent = r.request.content[:120]
    except httpx.RequestNotRead:
        sent = b"(streamed)"
    where = f"{r.request.method} {r.request.url} {sent!r}"
    assert r.status_code == status, f"{where}: {r.status_code} {r.text[:300]}"
    assert r.headers["content-type"].startswith("application/json"), where
    body = r.json()
    assert set(body) == {"error"}, where
    error = body["error"]
    assert {"code", "message"} <= set(error), where
    assert isinstance(error["code"], str) and error["code"], where
    assert isinstance(error["message"], str) and error["message"], where
    if isinstance(code, str):
        assert error["code"] == code, f"{where}: {r.text[:300]}"
    elif code is not None:
        assert error["code"] in code, f"{where}: {r.text[:300]}"
    return dict(error)


async def refused(server: Harness, client: httpx.AsyncClient, method: str, path: str, status: int,
                  code: str | set[str] | None = None, *, check: bool = True, **kwargs: Any) -> dict[str, Any]:
    """Send one request that must be refused with ``status`` and must leave every table as it was.

    ``check=False`` skips the snapshots, for requests sent inside an :func:`unchanged` block.
    """
    before = await snapshot(server) if check else None
    r = await client.request(method, path, **kwargs)
    error = assert_error(r, status, code)
    if check:
        assert await snapshot(server) == before, f"{method} {path} {kwargs} wrote something though it was refused"
    return error


@asynccontextmanager
async def unchanged(server: Harness, what: str) -> AsyncIterator[None]:
    """Every table is the same after the block as before it (writes are never undone, so none happened)."""
    before = await snapshot(server)
    yield
    assert await snapshot(server) == before, f"{what} wrote something though every request was refused"


@pytest.fixture
def no_unhandled_errors(caplog: pytest.LogCaptureFixture) -> Iterator[None]:
    """The server logs every 500 through webcare.http (its thread shares our logging); none may happen."""
    caplog.set_level(logging.ERROR, logger="webcare.http")
    yield
    records = caplog.get_records("setup") + caplog.get_records("call")
    unhandled = [r for r in records if r.name == "webcare.http" and r.levelno >= logging.ERROR]
    assert unhandled == [], [r.getMessage() for r in unhandled]


MALFORMED = [b"{", b'{"a": "x"', b"{'a': 'x'}", b'{"a": "x",}', b"not json", b'{"a": 1} trailing', b"\xff\xfe{}",
             b'{"a": "\\ud800"}', b'{"a": ' + b"[" * 300 + b"]" * 300 + b"}", b"   ", b"\n"]
NOT_AN_OBJECT = [b"[]", b'"text"', b"1", b"null", b"true", b'[{"text": "x"}]']


def endpoints(w: World) -> list[tuple[str, str, dict[str, Any], int, list[dict[str, Any] | bytes]]]:
    """Per body-taking endpoint: method, path, a valid body, its success status, and bodies that do not fit."""
    conv = f"/api/conversations/{w.conversation_id}"
    author = {"id": "a-1", "handle": "h", "name": "N"}
    inbound = {"external_id": "bad-input-1", "author": author, "text": "hallo"}
    long_text = "x" * 20_001
    dep = w.department_id
    return [
        ("POST", "/api/session", {"email": "login@test.webcare", "password": PASSWORD}, 200, [
            {"email": "login@test.webcare"}, {"password": PASSWORD}, {},
            {"email": 1, "password": PASSWORD}, {"email": "login@test.webcare", "password": 12345678},
            {"email": None, "password": PASSWORD}, {"email": ["a"], "password": PASSWORD},
            {"email": "a" * 321, "password": PASSWORD}, {"email": "İ" * 300, "password": PASSWORD},
            {"email": "login@test.webcare", "password": PASSWORD, "remember": True},
            {"email": "login@test.webcare", "password": "a\u0000b"},
        ]),
        ("POST", "/api/departments", {"name": "Nieuw"}, 201, [
            {}, {"name": 1}, {"name": ""}, {"name": "   "}, {"name": None}, {"name": ["x"]}, {"name": True},
            {"name": {"nl": "x"}}, {"name": "x" * 201}, {"name": "a\u0000b"}, {"name": "ok", "id": 5},
        ]),
        ("POST", "/api/users", {"email": "nieuw@test.webcare", "name": "N", "role": "agent", "department_id": dep},
         201, [
            {}, {"name": "N", "role": "agent"}, {"email": "n@test.webcare", "role": "agent"},
            {"email": "n@test.webcare", "name": "N"}, {"email": "n@test.webcare", "name": "N", "role": "boss"},
            {"email": "n@test.webcare", "name": "N", "role": "Agent"},
            {"email": "n@test.webcare", "name": "N", "role": 1},
            {"email": "not-an-email", "name": "N", "role": "agent"}, {"email": 1, "name": "N", "role": "agent"},
            {"email": "n@test.webcare", "name": "N", "role": "agent", "department_id": str(dep)},
            {"email": "n@test.webcare", "name": "N", "role": "agent", "department_id": float(dep)},
            {"email": "n@test.webcare", "name": "N", "role": "agent", "department_id": True},
            {"email": "n@test.webcare", "name": "N", "role": "agent", "department_id": 0},
            {"email": "n@test.webcare", "name": "N", "role": "agent", "department_id": 2**31},
            {"email": "n@test.webcare", "name": "N", "role": "agent", "password": "short"},
            {"email": "n@test.webcare", "name": "N", "role": "agent", "password": 12345678},
            {"email": "n@test.webcare", "name": "", "role": "agent"},
            {"email": "n@test.webcare", "name": "N", "role": "agent", "active": True},
        ]),
        ("PATCH", f"/api/users/{w.agent_user['id']}", {"name": "Nieuwe naam"}, 200, [
            {"role": "boss"}, {"department_id": str(dep)}, {"active": "false"}, {"active": 1}, {"name": 1},
            {"name": None}, {"role": None}, {"active": None}, {"email": "x@test.webcare"}, {"password": "short"},
            {"id": 5}, {"name": "ok", "role": "boss"}, {"department_id": 2**40},
        ]),
        ("POST", "/api/accounts", {"platform": "api", "handle": "h", "name": "N", "department_id": dep}, 201, [
            {}, {"handle": "h", "name": "N", "department_id": dep},
            {"platform": "api", "name": "N", "department_id": dep},
            {"platform": "api", "handle": "h", "department_id": dep},
            {"platform": "api", "handle": "h", "name": "N"},
            {"platform": "myspace", "handle": "h", "name": "N", "department_id": dep},
            {"platform": "API", "handle": "h", "name": "N", "department_id": dep},
            {"platform": 1, "handle": "h", "name": "N", "department_id": dep},
            {"platform": "api", "handle": 1, "name": "N", "department_id": dep},
            {"platform": "api", "handle": "h", "name": "N", "department_id": str(dep)},
            {"platform": "api", "handle": "h", "name": "N", "department_id": dep, "settings": "x"},
            {"platform": "api", "handle": "h", "name": "N", "department_id": dep, "settings": []},
            {"platform": "api", "handle": "h", "name": "N", "department_id": dep, "settings": {"poll_interval": "60"}},
            {"platform": "api", "handle": "h", "name": "N", "department_id": dep, "settings": {"poll_interval": 0}},
            {"platform": "api", "handle": "h", "name": "N", "department_id": dep, "settings": {"poll_interval": True}},
            {"platform": "api", "handle": "h", "name": "N", "department_id": dep, "settings": {"base_url": "ftp://x"}},
            {"platform": "api", "handle": "h", "name": "N", "department_id": dep,
             "settings": {"callback_url": "not a url"}},
            {"platform": "api", "handle": "h", "name": "N", "department_id": dep,
             "settings": {"callback_url": "https://example.test/cb"}},  # a callback needs credentials.secret
            {"platform": "api", "handle": "h", "name": "N", "department_id": dep, "credentials": {"secret": 1}},
            {"platform": "api", "handle": "h", "name": "N", "department_id": dep, "credentials": "x"},
            {"platform": "api", "handle": "h", "name": "N", "department_id": dep, "credentials": {"secret": ""}},
            {"platform": "x", "handle": "h", "name": "N", "department_id": dep, "credentials": {"access_token": "t"}},
            {"platform": "api", "handle": "h", "name": "N", "department_id": dep, "restricted": "yes"},
            {"platform": "api", "handle": "h", "name": "N", "department_id": dep, "active": 1},
            {"platform": "api", "handle": "h", "name": "N", "department_id": dep, "settings": {"a\u0000": 1}},
            {"platform": "api", "handle": "h", "name": "N", "department_id": dep, "owner": "me"},
            b'{"platform": "api", "handle": "h", "name": "N", "department_id": %d, "settings": {"a": NaN}}' % dep,
            b'{"platform": "api", "handle": "h", "name": "N", "department_id": %d, "settings": {"a": [1e400]}}' % dep,
            b'{"platform": "api", "handle": "h", "name": "N", "department_id": %d, "settings": {"a": -Infinity}}' % dep,
        ]),
        ("PATCH", f"/api/accounts/{w.account['id']}", {"name": "Nieuwe naam"}, 200, [
            {"platform": "x"}, {"settings": "x"}, {"restricted": "true"}, {"department_id": str(dep)},
            {"settings": {"poll_interval": -1}}, {"settings": {"callback_url": "https://example.test/cb"}},
            {"credentials": {"secret": 5}}, {"handle": ""}, {"name": 5}, {"id": 1},
        ]),
        ("POST", f"/api/accounts/{w.account['id']}/inbound", inbound, 201, [
            {}, {"author": author, "text": "t"}, {"external_id": "e", "text": "t"},
            {"external_id": "e", "author": author},
            {**inbound, "external_id": 1}, {**inbound, "external_id": ""}, {**inbound, "external_id": "e" * 201},
            {**inbound, "author": "x"}, {**inbound, "author": {}}, {**inbound, "author": {"id": "1", "handle": "h"}},
            {**inbound, "author": {**author, "id": 1}}, {**inbound, "author": {**author, "avatar": "x"}},
            {**inbound, "text": 1}, {**inbound, "text": ""}, {**inbound, "text": long_text},
            {**inbound, "text": "a\u0000b"}, {**inbound, "created_at": "yesterday"},
            {**inbound, "created_at": 1_700_000_000}, {**inbound, "created_at": "2026-13-01T00:00:00Z"},
            {**inbound, "created_at": "9999-12-31T23:59:59-01:00"},
            {**inbound, "created_at": "0001-01-01T00:00:00+01:00"},
            {**inbound, "in_reply_to": 5}, {**inbound, "in_reply_to": ""}, {**inbound, "thread": "x"},
        ]),
        ("POST", f"{conv}/notes", {"text": "Een notitie"}, 201, [
            {}, {"text": ""}, {"text": "  \n\t "}, {"text": 1}, {"text": None}, {"text": ["a"]}, {"text": long_text},
            {"text": "x", "internal": True}, {"text": "a\u0000b"}, {"note": "x"},
        ]),
        ("POST", f"{conv}/escalate", {"user_id": w.expert_user["id"], "note": "Erik weet het"}, 200, [
            {}, {"note": "x"}, {"user_id": w.expert_user["id"], "department_id": dep, "note": "x"},
            {"user_id": str(w.expert_user["id"]), "note": "x"}, {"user_id": 1.5, "note": "x"},
            {"user_id": True, "note": "x"}, {"department_id": dep}, {"user_id": w.expert_user["id"], "note": ""},
            {"user_id": w.expert_user["id"], "note": "  "}, {"user_id": w.expert_user["id"], "note": 5},
            {"user_id": 0, "note": "x"}, {"user_id": -1, "note": "x"}, {"user_id": 2**63, "note": "x"},
            {"user_id": w.expert_user["id"], "note": "x", "urgent": True}, {"user_id": None, "note": "x"},
        ]),
        ("POST", f"{conv}/replies", {"text": "Ons antwoord"}, 201, [
            {}, {"text": ""}, {"text": " "}, {"text": 1}, {"text": None}, {"text": long_text}, {"text": "a\u0000b"},
            {"text": "x", "state": "sent"},
        ]),
        ("POST", f"{conv}/close", {"reason": "resolved"}, 200, [
            {}, {"reason": "bored"}, {"reason": "Resolved"}, {"reason": ""}, {"reason": 1}, {"reason": None},
            {"reason": ["resolved"]}, {"reason": "resolved", "note": "x"},
        ]),
    ]


async def test_bodies_that_do_not_fit_are_400_and_write_nothing(server: Harness, no_unhandled_errors: None) -> None:
    w = await build_world(server)
    login_user = await server.user("agent")
    table = endpoints(w)
    for method, path, valid, _, bad in table:
        client = w.anonymous if path == "/api/session" else w.admin
        async with unchanged(server, f"{method} {path}"):
            for raw in MALFORMED:
                await refused(server, client, method, path, 400, "malformed_json", check=False, content=raw)
            await refused(server, client, method, path, 400, "malformed_json", check=False)  # no body at all
            await refused(server, client, method, path, 400, "malformed_json", check=False, content=b"")
            for raw in NOT_AN_OBJECT:
                await refused(server, client, method, path, 400, "invalid_body", check=False, content=raw)
            await refused(server, client, method, path, 400, "invalid_body", check=False,
                          json={**valid, "unknown_field": 1})
            for body in bad:
                content = body if isinstance(body, bytes) else json.dumps(body).encode()
                await refused(server, client, method, path, 400, None, check=False, content=content,
                              headers={"Content-Type": "application/json"})
    # A body that does not fit the schema names the field.
    error = await refused(server, w.admin, "POST", "/api/departments", 400, "invalid_body", json={"name": 1})
    assert "name" in error["message"]

    # The x account is not a door for pushed messages.
    await refused(server, w.admin, "POST", f"/api/accounts/{w.x_account['id']}/inbound", 400, "not_an_api_account",
                  json={"external_id": "e", "author": {"id": "1", "handle": "h", "name": "n"}, "text": "t"})

    # The valid bases go through: what was refused above was refused for what was changed in it.
    # (Last, because a queued reply is the outbox worker's to change: no snapshots after this.)
    for method, path, valid, status, _ in table:
        client = w.anonymous if path == "/api/session" else w.admin
        if path == "/api/session":
            valid = {"email": login_user["email"], "password": PASSWORD}
        r = await client.request(method, path, json=valid)
        assert r.status_code == status, f"{method} {path}: {r.status_code} {r.text}"


async def patch_null_semantics(server: Harness) -> None:
    w = await build_world(server)
    user_path = f"/api/users/{w.agent_user['id']}"
    # An empty patch changes nothing.
    before = await snapshot(server)
    r = await w.admin.patch(user_path, json={})
    assert r.status_code == 200 and r.json()["name"] == w.agent_user["name"]
    assert await snapshot(server) == before
    # null clears what may be empty (a department), and is refused for what may not.
    r = await w.admin.patch(user_path, json={"department_id": None})
    assert r.status_code == 200 and r.json()["department_id"] is None
    for key in ("name", "role", "active"):
        error = await refused(server, w.admin, "PATCH", user_path, 400, "invalid_body", json={key: None})
        assert key in error["message"]
    # Accounts ignore null for what they cannot be without.
    r = await w.admin.patch(f"/api/accounts/{w.account['id']}", json={"name": None, "department_id": None,
                                                                       "restricted": None})
    assert r.status_code == 200, r.text
    assert (r.json()["name"], r.json()["department_id"], r.json()["restricted"]) == (
        w.account["name"], w.account["department_id"], False)


async def test_unknown_ids_are_404_and_null_patches_fit_or_not(server: Harness, no_unhandled_errors: None) -> None:
    w = await build_world(server)
    gone = 999_999
    conv = f"/api/conversations/{gone}"
    inactive_client, inactive = await token_user(server, "expert")
    assert (await w.admin.patch(f"/api/users/{inactive['id']}", json={"active": False})).status_code == 200
    inbound = {"external_id": "e", "author": {"id": "1", "handle": "h", "name": "n"}, "text": "t"}
    cases: list[tuple[str, str, Any, str]] = [
        ("PATCH", f"/api/users/{gone}", {"name": "x"}, "user_not_found"),
        ("PATCH", f"/api/accounts/{gone}", {"name": "x"}, "account_not_found"),
        ("GET", f"/api/accounts/{gone}", None, "account_not_found"),
        ("POST", f"/api/accounts/{gone}/inbound", inbound, "account_not_found"),
        ("GET", conv, None, "conversation_not_found"),
        ("POST", f"{conv}/claim", None, "conversation_not_found"),
        ("POST", f"{conv}/release", None, "conversation_not_found"),
        ("POST", f"{conv}/reopen", None, "conversation_not_found"),
        ("POST", f"{conv}/notes", {"text": "x"}, "conversation_not_found"),
        ("POST", f"{conv}/replies", {"text": "x"}, "conversation_not_found"),
        ("POST", f"{conv}/close", {"reason": "spam"}, "conversation_not_found"),
        ("POST", f"{conv}/escalate", {"user_id": w.expert_user["id"], "note": "x"}, "conversation_not_found"),
        ("POST", "/api/users", {"email": "z@test.webcare", "name": "Z", "role": "agent", "department_id": gone},
         "department_not_found"),
        ("POST", "/api/accounts", {"platform": "api", "handle": "h", "name": "n", "department_id": gone},
         "department_not_found"),
        ("PATCH", f"/api/users/{w.agent_user['id']}", {"department_id": gone}, "department_not_found"),
        ("PATCH", f"/api/accounts/{w.account['id']}", {"department_id": gone}, "department_not_found"),
        ("POST", f"/api/conversations/{w.conversation_id}/escalate", {"user_id": gone, "note": "x"},
         "user_not_found"),
        ("POST", f"/api/conversations/{w.conversation_id}/escalate", {"user_id": inactive["id"], "note": "x"},
         "user_not_found"),
        ("POST", f"/api/conversations/{w.conversation_id}/escalate", {"department_id": gone, "note": "x"},
         "department_not_found"),
    ]
    for method, path, body, code in cases:
        kwargs = {"json": body} if body is not None else {}
        await refused(server, w.admin, method, path, 404, code, **kwargs)
    # Ids beyond any row id, and id 0, are unknown too (not an overflow in the database).
    for big in (0, 2**31, 2**63, 10**30):
        for method, path in [("GET", f"/api/conversations/{big}"), ("POST", f"/api/conversations/{big}/claim"),
                             ("PATCH", f"/api/users/{big}"), ("GET", f"/api/accounts/{big}"),
                             ("POST", f"/api/accounts/{big}/inbound")]:
            kwargs = {"json": {"name": "x"}} if method == "PATCH" else {}
            if path.endswith("/inbound"):
                kwargs = {"json": inbound}
            await refused(server, w.admin, method, path, 404, **kwargs)
    assert inactive_client is not None
    await patch_null_semantics(server)


async def test_oversized_bodies_are_413_and_write_nothing(server: Harness, no_unhandled_errors: None) -> None:
    w = await build_world(server)
    conv = f"/api/conversations/{w.conversation_id}"
    targets = [
        ("POST", "/api/session"), ("DELETE", "/api/session"), ("POST", "/api/departments"), ("POST", "/api/users"),
        ("PATCH", f"/api/users/{w.agent_user['id']}"), ("POST", "/api/accounts"),
        ("PATCH", f"/api/accounts/{w.account['id']}"), ("POST", f"/api/accounts/{w.account['id']}/inbound"),
        ("POST", f"{conv}/claim"), ("POST", f"{conv}/release"), ("POST", f"{conv}/escalate"),
        ("POST", f"{conv}/notes"), ("POST", f"{conv}/replies"), ("POST", f"{conv}/close"), ("POST", f"{conv}/reopen"),
    ]
    # A JSON document of 1 MiB: valid JSON, just too big.
    big = json.dumps({"text": "x" * MiB}).encode()

    def chunks() -> Any:
        async def gen() -> AsyncIterator[bytes]:
            for _ in range(16):
                yield b" " * (MiB // 16)
        return gen()

    for method, path in targets:
        client = w.anonymous if path == "/api/session" and method == "POST" else w.admin
        await refused(server, client, method, path, 413, "payload_too_large", content=big)
        # Without a Content-Length (chunked), the size is counted while reading.
        await refused(server, client, method, path, 413, "payload_too_large", content=chunks())

    # Just up to the limit is fine (whitespace is valid JSON); one byte more is not.
    note = b'{"text": "past the padding"}'
    r = await w.agent.post(f"{conv}/notes", content=note + b" " * (LIMIT - len(note)))
    assert r.status_code == 201, r.text
    await refused(server, w.agent, "POST", f"{conv}/notes", 413, "payload_too_large",
                  content=note + b" " * (LIMIT - len(note) + 1))
    # A body-less verb with a small body just works.
    r = await w.agent.post(f"{conv}/claim", content=b"{}")
    assert r.status_code == 200, r.text


async def test_invalid_queries_unknown_paths_and_wrong_methods(server: Harness, no_unhandled_errors: None) -> None:
    w = await build_world(server)

    def b64(value: Any) -> str:
        raw = value if isinstance(value, bytes) else json.dumps(value).encode()
        return base64.urlsafe_b64encode(raw).decode().rstrip("=")

    bad_cursors = ["garbage", "!!!", "é", b64([]), b64(["x", 1]), b64(["2024-01-01T00:00:00", 1]),
                   b64(["2024-01-01T00:00:00+00:00", "1"]), b64(["2024-01-01T00:00:00+00:00", 10**30]),
                   b64(["2024-01-01T00:00:00+00:00", True]), b64(["2024-01-01T00:00:00+00:00", 1, 2]),
                   b64({"a": 1, "b": 2}), b64(1), b64(["0001-01-01T00:00:00+01:00", 1]),
                   b64(["9999-12-31T23:59:59-01:00", 1]), b64(b"\xff\xfe"), b64([None, None])]
    queue_cases: list[tuple[dict[str, str], str]] = [
        ({"limit": "abc"}, "invalid_query"), ({"limit": "0"}, "invalid_query"), ({"limit": "-1"}, "invalid_query"),
        ({"limit": "201"}, "invalid_query"), ({"limit": "1.5"}, "invalid_query"), ({"limit": "1e3"}, "invalid_query"),
        ({"limit": str(10**30)}, "invalid_query"),
        ({"status": "bogus"}, "invalid_query"), ({"status": "open,bogus"}, "invalid_query"),
        ({"status": "OPEN"}, "invalid_query"), ({"account_id": "abc"}, "invalid_query"),
        ({"account_id": str(10**30)}, "invalid_query"), ({"account_id": str(2**31)}, "invalid_query"),
        ({"department_id": "x"}, "invalid_query"), ({"department_id": str(2**40)}, "invalid_query"),
        ({"assignee": "bob"}, "invalid_query"), ({"assignee": "-1"}, "invalid_query"),
        ({"assignee": "²"}, "invalid_query"), ({"assignee": str(10**30)}, "invalid_query"),
        ({"q": "a\u0000b"}, "invalid_query"),
        *[({"cursor": c}, "invalid_cursor") for c in bad_cursors],
    ]
    for params, code in queue_cases:
        await refused(server, w.agent, "GET", "/api/conversations", 400, code, params=params)
    for params in ({"after": "abc"}, {"limit": "abc"}, {"after": "1.5"}, {"after": str(10**30)}, {"limit": "x1"}):
        await refused(server, w.agent, "GET", "/api/events", 400, "invalid_query", params=params)

    # What is valid: empty values mean "not given", limit on events is clamped, and a real cursor works.
    for params in ({"status": ""}, {"status": ","}, {"limit": ""}, {"q": ""}, {"account_id": ""}):
        r = await w.agent.get("/api/conversations", params=params)
        assert r.status_code == 200, r.text
        assert [i["id"] for i in r.json()["items"]] == [w.conversation_id]
    for limit in ("0", "-5", "5000"):
        r = await w.agent.get("/api/events", params={"limit": limit})
        assert r.status_code == 200, r.text
        assert 1 <= len(r.json()["events"]) <= 1000
    assert len((await w.agent.get("/api/events", params={"limit": "0"})).json()["events"]) == 1
    second = (await server.inbound(w.admin, w.account["id"]))["conversation_id"]
    page = (await w.agent.get("/api/conversations", params={"limit": 1})).json()
    assert page["next_cursor"]
    rest = (await w.agent.get("/api/conversations", params={"limit": 1, "cursor": page["next_cursor"]})).json()
    assert {page["items"][0]["id"], rest["items"][0]["id"]} == {w.conversation_id, second}
    await unknown_paths_and_wrong_methods_answer_json(server)


async def unknown_paths_and_wrong_methods_answer_json(server: Harness) -> None:
    w = await build_world(server)
    for method, path in [("GET", "/api/nope"), ("GET", "/nope"), ("POST", "/api/nope"),
                         ("GET", "/api/conversations/abc"), ("GET", "/api/conversations/-1"),
                         ("POST", "/api/conversations/1/frobnicate"),
                         ("GET", "/api/conversations/1/messages"), ("DELETE", "/"), ("GET", "/api/users/me/x")]:
        await refused(server, w.admin, method, path, 404, "not_found")
    for method, path, allowed in [
        ("PUT", f"/api/conversations/{w.conversation_id}", {"GET"}),
        ("DELETE", f"/api/users/{w.agent_user['id']}", {"PATCH"}),
        ("GET", f"/api/users/{w.agent_user['id']}", {"PATCH"}),
        ("GET", f"/api/conversations/{w.conversation_id}/claim", {"POST"}),
        ("PATCH", "/api/departments", {"GET", "POST"}),
        ("POST", "/api/me", {"GET"}),
        ("PUT", "/api/session", {"POST", "DELETE"}),
        ("DELETE", "/api/conversations", {"GET"}),
        ("GET", f"/api/accounts/{w.account['id']}/inbound", {"POST"}),
        ("POST", "/api/events", {"GET"}),
    ]:
        r = await w.admin.request(method, path)
        assert_error(r, 405, "method_not_allowed")
        # Allow names methods this path takes (those of one route when several share the path).
        allow = {m.strip() for m in r.headers["allow"].split(",")} - {"HEAD"}
        assert allow and allow <= allowed and method not in allow, r.headers
    # Unauthenticated requests to unknown paths are 404 as well, not 401.
    await refused(server, w.anonymous, "GET", "/api/nope", 404, "not_found")


async def test_hostile_text_is_stored_and_returned_exactly(server: Harness, no_unhandled_errors: None) -> None:
    w = await build_world(server)
    url = f"/api/accounts/{w.account['id']}/inbound"
    stored_texts: dict[int, str] = {}
    for i, text in enumerate(HOSTILE):
        author = {"id": text[:200], "handle": text[:200], "name": text[:200]}
        r = await w.admin.post(url, json={"external_id": f"{text[:150]}-{i}", "author": author, "text": text})
        assert r.status_code == 201, r.text
        conv, message_id = r.json()["conversation_id"], r.json()["message_id"]
        note = await w.agent.post(f"/api/conversations/{conv}/notes", json={"text": text})
        assert note.status_code == 201 and note.json()["note"]["text"] == text
        reply = await w.agent.post(f"/api/conversations/{conv}/replies", json={"text": text})
        assert reply.status_code == 201, reply.text

        d = (await w.agent.get(f"/api/conversations/{conv}")).json()
        # The inbound message and the note exactly; the reply through house style, which may trim the
        # end of the text (where it would add a signature; none is set here).
        assert [(m["direction"], m["text"]) for m in d["messages"][:2]] == [("in", text), ("note", text)]
        assert d["messages"][2]["direction"] == "out" and d["messages"][2]["text"] in (text, text.rstrip())
        assert d["messages"][0]["author"] == {"type": "public", "id": author["id"], "handle": author["handle"],
                                              "name": author["name"]}
        assert d["messages"][0]["external_id"] == f"{text[:150]}-{i}"
        assert d["author"] == {"id": author["id"], "handle": author["handle"], "name": author["name"]}
        async with server.db.read() as s:
            stored = await s.get(Message, message_id)
            assert stored is not None and stored.text == text and stored.author_name == author["name"]
        stored_texts[conv] = text
        # Searching for the hostile text finds it, literally.
        found = await w.agent.get("/api/conversations", params={"q": text.strip()[:40]})
        assert found.status_code == 200, found.text
        assert conv in [item["id"] for item in found.json()["items"]]

    # The event log carries the texts exactly as well.
    events = (await w.agent.get("/api/events", params={"after": 0, "limit": 1000})).json()["events"]
    for conv, text in stored_texts.items():
        by_type = {e["type"]: e for e in events if e["conversation_id"] == conv}
        assert by_type["message.received"]["data"]["message"]["text"] == text
        assert by_type["note.added"]["data"]["message"]["text"] == text
        assert by_type["reply.queued"]["data"]["message"]["text"] in (text, text.rstrip())
        assert by_type["conversation.created"]["data"]["author"]["name"] == text[:200]
    assert len(stored_texts) == len(HOSTILE)

    # Names of departments, users and accounts too (these trim surrounding whitespace).
    for text in (t.strip() for t in HOSTILE):
        dep = await w.admin.post("/api/departments", json={"name": text[:200]})
        assert dep.status_code == 201 and dep.json()["name"] == text[:200], dep.text
        user = await w.admin.post("/api/users", json={"email": f"h{secrets.token_hex(4)}@test.webcare",
                                                      "name": text[:200], "role": "agent"})
        assert user.status_code == 201 and user.json()["name"] == text[:200], user.text
        account = await w.admin.post("/api/accounts", json={"platform": "api", "handle": text[:200], "name": text[:200],
                                                            "department_id": dep.json()["id"],
                                                            "settings": {text: text}})
        assert account.status_code == 201, account.text
        got = (await w.admin.get(f"/api/accounts/{account.json()['id']}")).json()
        assert (got["handle"], got["name"], got["settings"]) == (text[:200], text[:200], {text: text})
    # JSON out is JSON: the raw body carries the text as text, and the type says so.
    r = await w.agent.get(f"/api/conversations/{conv}")
    assert r.headers["content-type"].startswith("application/json")
    assert json.loads(r.content)["messages"][0]["text"] == HOSTILE[-1]
