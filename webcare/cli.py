"""The ``webcare`` command: serve, migrate, user add, token create."""

from __future__ import annotations

import argparse
import asyncio
import getpass
import logging
import sys
from collections.abc import Sequence

from webcare.errors import AppError
from webcare.settings import Settings, SettingsError


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="webcare", description="A joint webcare inbox.")
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="migrate if needed, then serve the app")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument("--demo", action="store_true", help="seed a demo organisation that keeps receiving messages")
    serve.add_argument("--no-workers", action="store_true", help="run no background workers in this process")

    sub.add_parser("worker", help="poll connectors and deliver replies, without HTTP")
    sub.add_parser("migrate", help="bring the database schema to the newest version")

    user = sub.add_parser("user", help="manage users").add_subparsers(dest="user_command", required=True)
    add = user.add_parser("add", help="create a user")
    add.add_argument("email")
    add.add_argument("--name", required=True)
    add.add_argument("--role", required=True, choices=["agent", "expert", "coordinator", "admin"])
    add.add_argument("--department", help="department name; created if missing")
    add.add_argument("--password-stdin", action="store_true", help="read the password from standard input")

    token = sub.add_parser("token", help="manage API tokens").add_subparsers(dest="token_command", required=True)
    create = token.add_parser("create", help="print a new API token for a user")
    create.add_argument("email")

    args = parser.parse_args(argv)
    try:
        if args.command == "serve":
            return _serve(args)
        settings = Settings.from_env()
        if args.command == "worker":
            return _worker(settings)
        if args.command == "migrate":
            from webcare.migrate import upgrade

            upgrade(settings.database_url)
            print("database is at the newest schema", file=sys.stderr)
            return 0
        if args.command == "user":
            return asyncio.run(_user_add(settings, args))
        if args.command == "token":
            return asyncio.run(_token_create(settings, args.email))
    except SettingsError as e:
        print(f"webcare: {e}", file=sys.stderr)
        return 2
    except AppError as e:
        print(f"webcare: {e.message}", file=sys.stderr)
        return 1
    return 2


async def _user_add(settings: Settings, args: argparse.Namespace) -> int:
    from pydantic import ValidationError

    from webcare import people
    from webcare.db import Database
    from webcare.schemas import UserIn

    if args.password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
        if not password:
            print("webcare: --password-stdin read an empty password", file=sys.stderr)
            return 1
    elif sys.stdin.isatty():
        password = getpass.getpass("Password: ")
    else:
        password = ""
    try:
        data = UserIn(email=args.email, name=args.name, role=args.role, password=password or None)
    except ValidationError as e:
        problem = e.errors()[0]
        print(f"webcare: {'.'.join(map(str, problem['loc']))}: {problem['msg']}", file=sys.stderr)
        return 1
    db = Database(settings.database_url, pool_size=1)
    try:
        user = await people.create_user(db, data, department_name=args.department)
    finally:
        await db.dispose()
    print(f"created {user['role']} {user['email']} (id {user['id']})", file=sys.stderr)
    return 0


async def _token_create(settings: Settings, email: str) -> int:
    from webcare import people
    from webcare.db import Database

    db = Database(settings.database_url, pool_size=1)
    try:
        token = await people.create_token(db, email)
    finally:
        await db.dispose()
    print(token)
    return 0


def _worker(settings: Settings) -> int:
    from webcare.migrate import upgrade
    from webcare.services import Services
    from webcare.workers import run_forever

    _logging(settings)
    upgrade(settings.database_url)

    async def main() -> None:
        await run_forever(Services.build(settings))

    asyncio.run(main())
    return 0


def _serve(args: argparse.Namespace) -> int:
    import uvicorn

    from webcare.app import create_app
    from webcare.migrate import upgrade

    settings = Settings.from_env(secret_fallback=_demo_secret() if args.demo else None)
    _logging(settings)
    upgrade(settings.database_url)
    demo = None
    if args.demo:
        from webcare.demo import Demo

        local = "127.0.0.1" if args.host in ("0.0.0.0", "::", "") else args.host
        demo = Demo(settings, f"http://{local}:{args.port}/_fake")
        login = asyncio.run(demo.seed())
        print(f"\n  Webcare demo at http://{args.host}:{args.port}/\n  log in as {login[0]} / {login[1]}\n",
              flush=True)
    app = create_app(settings, demo=demo, workers=not args.no_workers)
    # The demo's accounts poll the fake platform in this same process every few seconds: keep that out of the log.
    uvicorn.run(app, host=args.host, port=args.port, log_level=settings.log_level.lower(), proxy_headers=True,
                access_log=not args.demo)
    return 0


def _logging(settings: Settings) -> None:
    logging.basicConfig(level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # Every platform request would be a line otherwise; errors still reach the log through our own loggers.
    logging.getLogger("httpx").setLevel(logging.WARNING)


def _demo_secret() -> str:
    """Demo mode runs without WEBCARE_SECRET_KEY: a random key kept beside the database."""
    import os
    import secrets

    path = ".webcare-demo-secret"
    if os.path.exists(path):
        with open(path) as f:
            return f.read().strip()
    key = secrets.token_urlsafe(48)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(key)
    return key


if __name__ == "__main__":
    raise SystemExit(main())
