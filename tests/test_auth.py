"""Logging in and out, sessions, CSRF, tokens, login throttling and who may do what, over real HTTP."""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import secrets
import time
from http.cookies import SimpleCookie
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from argon2 import PasswordHasher

from tests.conftest import PASSWORD, Harness
from webcare import people
from webcare.auth import SESSION_COOKIE
from webcare.models import ApiToken, Department, LoginFailure, User, UserSession
from webcare.schemas import UserIn

pytestmark = pytest.mark.anyio


def assert_error(r: httpx.Response, status: int, code: str | None = None) -> dict[str, Any]:
    assert r.status_code == status, f"{r.request.method} {r.request.url}: {r.status_code} {r.text}"
    assert r.headers["content-type"].startswith("application/json")
    error = r.json()["error"]
    assert isinstance(error["code"], str) and error["code"]
    assert isinstance(error["message"], str) and error["message"]
    if code is not None:
        assert error["code"] == code, r.text
    return dict(error)


async def token_user(server: Harness, role: str, department: str | None = "Parkeren",
                     ) -> tuple[httpx.AsyncClient, dict[str, Any]]:
    """A user with an API token and no password (no slow password hashing), and a client using the token."""
    email = f"{role}-{secrets.token_hex(4)}@test.webcare"
    user = await people.create_user(server.db, UserIn(email=email, name=f"{role.title()} {email[:8]}",
                                                      role=role),  # type: ignore[arg-type]
                                    department_name=department)
    token = await people.create_token(server.db, email)
    return server.client(headers={"Authorization": f"Bearer {token}"}), user


async def login(server: Harness, email: str, password: str = PASSWORD) -> httpx.Response:
    return await server.client().post("/api/session", json={"email": email, "password": password})


def session_cookie(r: httpx.Response) -> str:
    value = r.cookies.get(SESSION_COOKIE)
    assert value, f"no session cookie in {r.headers.get_list('set-cookie')}"
    return value


def cookie_client(server: Harness, cookie: str, csrf: str | None = None) -> httpx.AsyncClient:
    headers = {"Cookie": f"{SESSION_COOKIE}={cookie}".encode()}
    if csrf is not None:
        headers["X-CSRF-Token"] = csrf.encode()
    return server.client(headers=headers)


async def count(server: Harness, model: Any, *where: Any) -> int:
    async with server.db.read() as s:
        return int(await s.scalar(sa.select(sa.func.count()).select_from(model).where(*where)) or 0)


async def test_login_answers_user_and_csrf_token_and_sets_a_safe_cookie(server: Harness) -> None:
    user = await server.user("agent")
    r = await login(server, user["email"])
    assert r.status_code == 200, r.text
    body = r.json()
    assert set(body) >= {"user", "csrf_token"}
    assert body["user"] == {"id": user["id"], "email": user["email"], "name": user["name"], "role": "agent",
                            "department_id": user["department_id"]}
    assert isinstance(body["csrf_token"], str) and len(body["csrf_token"]) >= 32

    [raw] = [h for h in r.headers.get_list("set-cookie") if h.startswith(f"{SESSION_COOKIE}=")]
    morsel = SimpleCookie(raw)[SESSION_COOKIE]
    assert morsel.value
    assert morsel["httponly"] is True
    assert morsel["samesite"].lower() in ("lax", "strict")
    assert morsel["path"] == "/"
    assert int(morsel["max-age"]) > 0
    flags = [part.strip().lower() for part in raw.split(";")]
    assert "httponly" in flags and any(f.startswith("samesite=") for f in flags)

    # The cookie alone authenticates reads: no CSRF header needed for a GET.
    me = await cookie_client(server, morsel.value).get("/api/me")
    assert me.status_code == 200, me.text
    assert me.json() == body["user"]
    assert body["csrf_token"] not in raw  # the CSRF token is not the cookie

    # The email is matched case-insensitively; each session has its own CSRF token.
    again = await login(server, "  " + user["email"].upper() + " ")
    assert again.status_code == 200, again.text
    assert again.json()["csrf_token"] != body["csrf_token"]
    assert session_cookie(again) != morsel.value
    assert await count(server, UserSession, UserSession.user_id == user["id"]) == 2


async def test_a_bad_pair_is_401_and_says_nothing_about_which_half_was_wrong(server: Harness) -> None:
    user = await server.user("agent")
    wrong = await login(server, user["email"], "not the password")
    error = assert_error(wrong, 401, "bad_credentials")
    unknown = await login(server, f"nobody-{secrets.token_hex(4)}@test.webcare")
    assert assert_error(unknown, 401, "bad_credentials") == error
    empty = await login(server, user["email"], "")
    assert_error(empty, 401, "bad_credentials")
    for r in (wrong, unknown, empty):
        assert SESSION_COOKIE not in r.cookies
    assert await count(server, UserSession) == 0

    # A user without a password (token only) cannot log in with any password.
    _, tokened = await token_user(server, "agent")
    assert_error(await login(server, tokened["email"], ""), 401, "bad_credentials")
    assert_error(await login(server, tokened["email"], PASSWORD), 401, "bad_credentials")

    # Not logged in at all: 401 for reads and writes alike.
    anonymous = server.client()
    for method, path in [("GET", "/api/me"), ("GET", "/api/conversations"), ("GET", "/api/events"),
                         ("GET", "/api/users"), ("POST", "/api/departments"), ("DELETE", "/api/session"),
                         ("POST", "/api/conversations/1/claim")]:
        assert_error(await anonymous.request(method, path), 401, "not_authenticated")
    assert_error(await server.client(headers={"Authorization": "Basic YTpi"}).get("/api/me"), 401)
    assert_error(await server.client(headers={"Authorization": "Bearer wc_nope"}).get("/api/me"), 401, "bad_token")


async def test_cookie_changes_need_the_csrf_token_bearer_changes_do_not(server: Harness) -> None:
    admin = await server.user("admin")
    r = await login(server, admin["email"])
    cookie, csrf = session_cookie(r), r.json()["csrf_token"]
    other = await login(server, admin["email"])
    other_csrf = other.json()["csrf_token"]

    async def departments() -> int:
        return await count(server, Department)

    before = await departments()
    for headers in ({}, {"X-CSRF-Token": ""}, {"X-CSRF-Token": "wrong"}, {"X-CSRF-Token": csrf[:-1]},
                    {"X-CSRF-Token": csrf + "0"}, {"X-CSRF-Token": other_csrf}, {"X-CSRF-Token": cookie},
                    {"X-CSRF-Token": "é".encode()}):  # type: ignore[dict-item]
        c = cookie_client(server, cookie)
        assert_error(await c.post("/api/departments", json={"name": f"D {secrets.token_hex(3)}"}, headers=headers),
                     403, "csrf")
        assert_error(await c.patch(f"/api/users/{admin['id']}", json={"name": "Changed"}, headers=headers),
                     403, "csrf")
        assert_error(await c.delete("/api/session", headers=headers), 403, "csrf")
    assert await departments() == before
    async with server.db.read() as s:
        assert (await s.get(User, admin["id"])).name == admin["name"]  # type: ignore[union-attr]

    c = cookie_client(server, cookie)
    # Reads need no CSRF header; the session survived the refused logouts.
    assert (await c.get("/api/me")).status_code == 200
    assert (await c.get("/api/departments")).status_code == 200
    assert (await c.get("/api/conversations")).status_code == 200
    # With the right token the same change goes through.
    created = await c.post("/api/departments", json={"name": "Via cookie"}, headers={"X-CSRF-Token": csrf})
    assert created.status_code == 201, created.text
    assert await departments() == before + 1
    await bearer_tokens_need_no_csrf(server)


async def bearer_tokens_need_no_csrf(server: Harness) -> None:
    admin, _ = await token_user(server, "admin")
    assert "X-CSRF-Token" not in admin.headers
    r = await admin.post("/api/departments", json={"name": "Via token"})
    assert r.status_code == 201, r.text
    r = await admin.patch(f"/api/users/{(await admin.get('/api/me')).json()['id']}", json={"name": "Renamed"})
    assert r.status_code == 200, r.text
    assert r.json()["name"] == "Renamed"

    # With both a bearer token and someone's session cookie, the token decides, and needs no CSRF.
    agent = await server.user("agent")
    cookie = session_cookie(await login(server, agent["email"]))
    both = server.client(headers={**admin.headers, "Cookie": f"{SESSION_COOKIE}={cookie}"})
    me = await both.get("/api/me")
    assert me.json()["role"] == "admin"
    assert (await both.post("/api/departments", json={"name": "Both"})).status_code == 201


async def test_logout_ends_the_session(server: Harness) -> None:
    user = await server.user("agent")
    r = await login(server, user["email"])
    cookie, csrf = session_cookie(r), r.json()["csrf_token"]
    keep = session_cookie(await login(server, user["email"]))  # a second session of the same user
    c = cookie_client(server, cookie, csrf)
    assert (await c.get("/api/me")).status_code == 200

    out = await c.delete("/api/session")
    assert out.status_code == 204, out.text
    cleared = [h for h in out.headers.get_list("set-cookie") if h.startswith(f"{SESSION_COOKIE}=")]
    assert cleared and ("max-age=0" in cleared[0].lower() or "expires=thu, 01 jan 1970" in cleared[0].lower())

    # The same cookie is worthless afterwards, for reads and for changes.
    assert_error(await cookie_client(server, cookie).get("/api/me"), 401, "not_authenticated")
    assert_error(await cookie_client(server, cookie, csrf).delete("/api/session"), 401)
    async with server.db.read() as s:
        digests = set(await s.scalars(sa.select(UserSession.token_hash).where(UserSession.user_id == user["id"])))
    assert len(digests) == 1
    # Only that session ended: the other one still works.
    assert (await cookie_client(server, keep).get("/api/me")).status_code == 200

    # Logging out with a bearer token is allowed and leaves the token working.
    tc, _ = await token_user(server, "agent")
    assert (await tc.delete("/api/session")).status_code == 204
    assert (await tc.get("/api/me")).status_code == 200


async def test_parallel_guesses_get_no_more_tries_than_the_limit(server: Harness) -> None:
    victim = await server.user("agent")
    limit = server.settings.login_max_failures
    answers = await asyncio.gather(*(login(server, victim["email"], f"guess {i}") for i in range(3 * limit)))
    codes = sorted(r.status_code for r in answers)
    assert codes == [401] * limit + [429] * (2 * limit), "each guess takes its place before its password is checked"
    assert await count(server, LoginFailure, LoginFailure.email == victim["email"]) == limit


async def test_login_throttling_per_email(server: Harness) -> None:
    victim = await server.user("agent")
    bystander = await server.user("agent")
    email = victim["email"]
    for i in range(10):
        # The email is normalised before counting: upper case and spaces count for the same address.
        attempt = email.upper() if i % 2 else f" {email} "
        assert_error(await login(server, attempt, f"wrong {i}"), 401, "bad_credentials")
    assert await count(server, LoginFailure, LoginFailure.email == email) == 10

    # The eleventh attempt is refused even with the right password, and is no login.
    assert_error(await login(server, email), 429, "too_many_attempts")
    assert_error(await login(server, email, "wrong again"), 429, "too_many_attempts")
    assert await count(server, UserSession, UserSession.user_id == victim["id"]) == 0
    # Other emails are not affected.
    assert (await login(server, bystander["email"])).status_code == 200

    # Unknown emails are throttled the same way (no hint whether the address exists).
    ghost = f"ghost-{secrets.token_hex(4)}@test.webcare"
    async with server.db.write() as tx:
        tx.session.add_all([LoginFailure(email=ghost) for _ in range(10)])
    assert_error(await login(server, ghost), 429, "too_many_attempts")

    # Failures older than the window no longer count.
    async with server.db.write() as tx:
        await tx.session.execute(sa.update(LoginFailure).where(LoginFailure.email == email).values(
            at=dt.datetime.now(dt.UTC) - dt.timedelta(seconds=server.settings.login_window_seconds + 60)))
    ok = await login(server, email)
    assert ok.status_code == 200, ok.text
    # A successful login forgets the failures of that email.
    assert await count(server, LoginFailure, LoginFailure.email == email) == 0


async def test_a_tampered_or_expired_cookie_is_401(server: Harness) -> None:
    user = await server.user("agent")
    r = await login(server, user["email"])
    cookie = session_cookie(r)
    assert (await cookie_client(server, cookie).get("/api/me")).status_code == 200

    token, stamp, signature = cookie.rsplit(".", 2)
    # The first character of the signature: all its bits count (the last one's low bits are padding).
    flip = "A" if signature[0] != "A" else "g"
    other_token = "wc_" + secrets.token_urlsafe(32)
    for bad in [f"{token}.{stamp}.{flip}{signature[1:]}",       # signature changed
                f"{token[:-1]}{'A' if token[-1] != 'A' else 'B'}.{stamp}.{signature}",  # token changed
                f"{other_token}.{stamp}.{signature}",            # someone else's token, this signature
                f"{token}.{stamp}",                              # signature missing
                token, "", "garbage", "a.b.c", "é.é.é"]:
        assert_error(await cookie_client(server, bad).get("/api/me"), 401, "not_authenticated")

    # A session the server no longer knows (or that expired) is 401 even with a valid signature: changed
    # through another process (here: in the database directly), within the time a process may remember it.
    async with server.db.write() as tx:
        await tx.session.execute(sa.update(UserSession).where(UserSession.user_id == user["id"]).values(
            expires_at=dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1)))
    deadline = time.monotonic() + server.settings.auth_cache_seconds + 5
    while (r := await cookie_client(server, cookie).get("/api/me")).status_code == 200:
        assert time.monotonic() < deadline, "the session still worked long after it expired"
        await asyncio.sleep(0.05)
    assert_error(r, 401, "not_authenticated")


async def test_a_deactivated_user_or_a_changed_password_ends_sessions(server: Harness) -> None:
    admin, _ = await token_user(server, "admin")
    user = await server.user("agent")
    r = await login(server, user["email"])
    session = cookie_client(server, session_cookie(r), r.json()["csrf_token"])
    token = await people.create_token(server.db, user["email"])
    bearer = server.client(headers={"Authorization": f"Bearer {token}"})
    assert (await session.get("/api/me")).status_code == 200
    assert (await bearer.get("/api/me")).status_code == 200

    r = await admin.patch(f"/api/users/{user['id']}", json={"active": False})
    assert r.status_code == 200, r.text
    assert r.json()["active"] is False

    assert_error(await session.get("/api/me"), 401)
    assert_error(await bearer.get("/api/me"), 401, "bad_token")
    assert_error(await login(server, user["email"]), 401, "bad_credentials")
    assert await count(server, UserSession, UserSession.user_id == user["id"]) == 0
    assert await count(server, ApiToken, ApiToken.user_id == user["id"]) == 0
    listed = {u["id"]: u for u in (await admin.get("/api/users")).json()["items"]}
    assert listed[user["id"]]["active"] is False

    # Reactivated, the user can log in again; the old token stays revoked.
    assert (await admin.patch(f"/api/users/{user['id']}", json={"active": True})).status_code == 200
    assert (await login(server, user["email"])).status_code == 200
    assert_error(await bearer.get("/api/me"), 401, "bad_token")
    await a_changed_password_ends_sessions(server)


async def a_changed_password_ends_sessions(server: Harness) -> None:
    admin, _ = await token_user(server, "admin")
    user = await server.user("agent")
    cookie = session_cookie(await login(server, user["email"]))
    r = await admin.patch(f"/api/users/{user['id']}", json={"password": "a brand new password"})
    assert r.status_code == 200, r.text
    assert_error(await cookie_client(server, cookie).get("/api/me"), 401)
    assert_error(await login(server, user["email"]), 401, "bad_credentials")
    assert (await login(server, user["email"], "a brand new password")).status_code == 200


async def test_roles_decide_who_may_change_what(server: Harness) -> None:
    admin, _ = await token_user(server, "admin")
    account = await server.api_account(admin)
    deps = (await admin.get("/api/departments")).json()["items"]
    agent_client, agent = await token_user(server, "agent")
    expert_client, _ = await token_user(server, "expert")
    coordinator_client, _ = await token_user(server, "coordinator")
    user_body = {"email": f"new-{secrets.token_hex(3)}@test.webcare", "name": "New", "role": "agent"}
    account_body = {"platform": "api", "handle": "h", "name": "N", "department_id": deps[0]["id"]}
    inbound_body = {"external_id": "x-1", "author": {"id": "a", "handle": "a", "name": "A"}, "text": "hallo"}
    forbidden_for_staff = [
        ("POST", "/api/users", user_body),
        ("PATCH", f"/api/users/{agent['id']}", {"role": "admin"}),
        ("POST", "/api/accounts", account_body),
        ("PATCH", f"/api/accounts/{account['id']}", {"name": "Mine now"}),
        ("POST", "/api/departments", {"name": "Rogue"}),
    ]
    tables = (User, Department, ApiToken)

    async def counts() -> list[int]:
        return [await count(server, t) for t in tables]

    before = await counts()
    for client in (agent_client, expert_client, coordinator_client):
        for method, path, body in forbidden_for_staff:
            assert_error(await client.request(method, path, json=body), 403, "forbidden")
    for client in (agent_client, expert_client):
        assert_error(await client.post(f"/api/accounts/{account['id']}/inbound", json=inbound_body), 403, "forbidden")
    assert await counts() == before
    async with server.db.read() as s:
        assert (await s.get(User, agent["id"])).role == "agent"  # type: ignore[union-attr]
    assert (await admin.get(f"/api/accounts/{account['id']}")).json()["name"] == account["name"]
    assert (await admin.get(f"/api/conversations?account_id={account['id']}")).json()["items"] == []

    # Everyone may read the shared lists.
    for client in (agent_client, expert_client, coordinator_client):
        for path in ("/api/users", "/api/departments", "/api/accounts", "/api/conversations", "/api/events"):
            assert (await client.get(path)).status_code == 200, path

    # Coordinators and admins may use the generic API channel's inbound door.
    r = await coordinator_client.post(f"/api/accounts/{account['id']}/inbound", json=inbound_body)
    assert r.status_code == 201, r.text
    r = await admin.post(f"/api/accounts/{account['id']}/inbound", json={**inbound_body, "external_id": "x-2"})
    assert r.status_code == 201, r.text
    # And an admin may do what the others may not.
    for method, path, body in forbidden_for_staff:
        r = await admin.request(method, path, json=body)
        assert r.status_code in (200, 201), f"{method} {path}: {r.text}"


async def test_passwords_and_tokens_are_stored_only_as_hashes(server: Harness) -> None:
    user = await server.user("agent")
    r = await login(server, user["email"])
    cookie = session_cookie(r)
    session_token = cookie.rsplit(".", 2)[0]
    api_token = await people.create_token(server.db, user["email"])

    async with server.db.read() as s:
        stored = await s.get(User, user["id"])
        assert stored is not None and stored.password_hash is not None
        assert stored.password_hash.startswith("$argon2id$")
        assert PASSWORD not in stored.password_hash
        assert PasswordHasher().verify(stored.password_hash, PASSWORD)
        token_hashes = list(await s.scalars(sa.select(ApiToken.token_hash).where(ApiToken.user_id == user["id"])))
        session_hashes = list(await s.scalars(
            sa.select(UserSession.token_hash).where(UserSession.user_id == user["id"])))
        everything = []
        for table in (User.__table__, ApiToken.__table__, UserSession.__table__):
            everything += [str(v) for row in (await s.execute(sa.select(table))).all() for v in row]
    assert token_hashes == [hashlib.sha256(api_token.encode()).hexdigest()]
    assert session_hashes == [hashlib.sha256(session_token.encode()).hexdigest()]
    for secret in (PASSWORD, api_token, session_token, cookie):
        assert not any(secret in value for value in everything)

    # The API never hands out a password hash.
    users = (await server.client(headers={"Authorization": f"Bearer {api_token}"}).get("/api/users")).text
    assert "argon2" not in users and "password" not in users
