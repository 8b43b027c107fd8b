"""The ``webcare`` command as scripts use it: a real process, configured through the environment."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import anyio
import pytest
import sqlalchemy as sa

from tests.conftest import PASSWORD, SECRET, Harness
from tests.test_migrations import assert_at_head, empty_database, tables
from webcare.models import Department, User


def cli_env(database_url: str, secret: str | None = SECRET) -> dict[str, str]:
    """The caller's environment without any WEBCARE_* setting of its own, plus ours."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("WEBCARE_")}
    env["WEBCARE_DATABASE_URL"] = database_url
    if secret is not None:
        env["WEBCARE_SECRET_KEY"] = secret
    return env


async def webcare(*args: str, env: dict[str, str], cwd: Path, stdin: str | None = None
                  ) -> subprocess.CompletedProcess[bytes]:
    with anyio.fail_after(60):
        return await anyio.run_process([sys.executable, "-m", "webcare", *args], input=(stdin or "").encode(),
                                       env=env, cwd=cwd, check=False)


def text(output: bytes) -> str:
    return output.decode("utf-8", "replace")


@pytest.fixture(params=["sqlite", "postgres"])
def empty_db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    with empty_database(request, request.param, tmp_path) as url:
        yield url


def test_migrate_brings_an_empty_database_to_head(empty_db_url: str, tmp_path: Path) -> None:
    assert tables(empty_db_url) == set()
    done = subprocess.run([sys.executable, "-m", "webcare", "migrate"], env=cli_env(empty_db_url), cwd=tmp_path,
                          capture_output=True, timeout=60, check=False)
    assert done.returncode == 0, text(done.stderr)
    assert_at_head(empty_db_url)
    assert not (tmp_path / "webcare.db").exists(), "it used the configured database, not the default one"


@pytest.mark.anyio
async def test_user_add_and_token_create(server: Harness, tmp_path: Path) -> None:
    env = cli_env(server.settings.database_url)
    department = f"Afval {secrets.token_hex(3)}"
    email = f"cli-{secrets.token_hex(3)}@test.webcare"

    async with server.db.read() as s:
        assert await s.scalar(sa.select(Department).where(Department.name == department)) is None
    done = await webcare("user", "add", email, "--name", "Cli Person", "--role", "coordinator",
                         "--department", department, "--password-stdin", env=env, cwd=tmp_path,
                         stdin=PASSWORD + "\n")
    assert done.returncode == 0, text(done.stderr)
    assert email in text(done.stderr)

    async with server.db.read() as s:
        user = await s.scalar(sa.select(User).where(User.email == email))
        assert user is not None
        assert (user.name, user.role, user.active) == ("Cli Person", "coordinator", True)
        created = await s.scalar(sa.select(Department).where(Department.name == department))
        assert created is not None and user.department_id == created.id

    # The password came from standard input (without its newline): it logs in.
    r = await server.client().post("/api/session", json={"email": email, "password": PASSWORD})
    assert r.status_code == 200, r.text
    assert r.json()["user"]["role"] == "coordinator"

    # The rest runs as five processes at once, as scripts might: on SQLite, writers in other
    # processes wait for each other (busy timeout) rather than fail.
    other = f"cli2-{secrets.token_hex(3)}@test.webcare"
    bad = f"cli3-{secrets.token_hex(3)}@test.webcare"
    runs = {
        # A department that exists (in any case) is used, not made twice.
        "second": ["user", "add", other, "--name", "Second", "--role", "agent", "--department", department.upper()],
        # The email exists (in any case): exit 1 with a message, nothing changed.
        "again": ["user", "add", email.upper(), "--name", "Again", "--role", "agent"],
        # A role that does not exist is refused before anything is stored.
        "bad_role": ["user", "add", bad, "--name", "Bad", "--role", "superuser"],
        "token": ["token", "create", email],
        "nobody": ["token", "create", "nobody@test.webcare"],
    }
    results: dict[str, subprocess.CompletedProcess[bytes]] = {}

    async def run(name: str) -> None:
        results[name] = await webcare(*runs[name], env=env, cwd=tmp_path)

    async with anyio.create_task_group() as tg:
        for name in runs:
            tg.start_soon(run, name)

    assert results["second"].returncode == 0, text(results["second"].stderr)
    async with server.db.read() as s:
        second = await s.scalar(sa.select(User).where(User.email == other))
        assert second is not None and second.department_id == created.id
        assert second.password_hash is None
        same_name = await s.scalar(sa.select(sa.func.count()).select_from(Department)
                                   .where(sa.func.lower(Department.name) == department.lower()))
        assert same_name == 1

    again = results["again"]
    assert again.returncode == 1, (again.returncode, text(again.stderr))
    assert "exists" in text(again.stderr) and email in text(again.stderr)
    assert "Traceback" not in text(again.stderr)

    bad_role = results["bad_role"]
    assert bad_role.returncode != 0
    assert "superuser" in text(bad_role.stderr) and "role" in text(bad_role.stderr)
    async with server.db.read() as s:
        assert await s.scalar(sa.select(User.id).where(User.email == bad)) is None
        names = list(await s.scalars(sa.select(User.name).where(User.email == email)))
    assert names == ["Cli Person"]

    # A token for the user just made: printed alone on standard output, and it authenticates.
    assert results["token"].returncode == 0, text(results["token"].stderr)
    out = text(results["token"].stdout)
    token = out.strip()
    assert out == token + "\n", "the token alone, on one line"
    assert token and not any(ch.isspace() for ch in token)
    r = await server.client(headers={"Authorization": f"Bearer {token}"}).get("/api/me")
    assert r.status_code == 200, r.text
    assert (r.json()["id"], r.json()["email"], r.json()["role"]) == (user.id, email, "coordinator")

    nobody = results["nobody"]
    assert nobody.returncode == 1
    assert nobody.stdout == b""
    assert "nobody@test.webcare" in text(nobody.stderr)
    r = await server.client(headers={"Authorization": "Bearer wc_not-a-token"}).get("/api/me")
    assert r.status_code == 401, "a token that was never created does not authenticate"


@pytest.mark.parametrize("secret", [None, "", "too-short-" + "x" * 21], ids=["missing", "empty", "31-chars"])
@pytest.mark.parametrize("command", [["migrate"], ["token", "create", "someone@test.webcare"],
                                     ["user", "add", "someone@test.webcare", "--name", "S", "--role", "agent"]],
                         ids=["migrate", "token", "user"])
def test_secret_key_is_required(command: list[str], secret: str | None, tmp_path: Path) -> None:
    if secret is not None:
        assert len(secret) < 32
    database = tmp_path / "never.db"
    done = subprocess.run([sys.executable, "-m", "webcare", *command],
                          env=cli_env(f"sqlite+aiosqlite:///{database}", secret), cwd=tmp_path,
                          input=b"", capture_output=True, timeout=60, check=False)
    assert done.returncode != 0
    assert done.stdout == b""
    err = text(done.stderr)
    assert "WEBCARE_SECRET_KEY" in err and "32" in err, err
    assert "Traceback" not in err
    # It stopped before touching anything.
    assert not database.exists()
    assert list(tmp_path.iterdir()) == []
