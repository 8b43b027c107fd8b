"""What the benchmarks share: throw-away databases, a real `webcare serve` subprocess, and statistics."""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import httpx
import sqlalchemy as sa

from webcare.db import Database

PG_ADMIN = os.environ.get("WEBCARE_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")
SECRET = "bench-secret-" + "s" * 40


@contextlib.contextmanager
def database(kind: str) -> Iterator[str]:
    """A fresh, empty database of ``kind`` (sqlite or postgres) as a SQLAlchemy URL; gone afterwards."""
    if kind == "sqlite":
        d = tempfile.mkdtemp(prefix="webcare-bench-")
        try:
            yield f"sqlite+aiosqlite:///{d}/bench.db"
        finally:
            shutil.rmtree(d, ignore_errors=True)
        return
    name = "webcare_bench_" + secrets.token_hex(4)
    asyncio.run(_pg(f"CREATE DATABASE {name}"))
    try:
        yield PG_ADMIN.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://") + f"/{name}"
    finally:
        asyncio.run(_pg(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))


async def _pg(sql: str) -> None:
    conn = await asyncpg.connect(PG_ADMIN)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def env_for(url: str) -> dict[str, str]:
    return dict(os.environ, WEBCARE_DATABASE_URL=url, WEBCARE_SECRET_KEY=SECRET, WEBCARE_LOG_LEVEL="warning")


@contextlib.contextmanager
def serve(url: str) -> Iterator[str]:
    """`webcare serve --no-workers` in a subprocess; yields its base URL once /healthz answers."""
    port = free_port()
    log = tempfile.NamedTemporaryFile(prefix="webcare-bench-serve-", suffix=".log", delete=False)
    proc = subprocess.Popen([sys.executable, "-m", "webcare", "serve", "--no-workers", "--port", str(port)],
                            env=env_for(url), stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(base + "/healthz", timeout=1).status_code == 200:
                    break
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"webcare serve did not start: {Path(log.name).read_text()[-500:]}")
            time.sleep(0.1)
        yield base
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        os.unlink(log.name)


async def analyse(db: Database) -> None:
    """Fresh planner statistics, as autovacuum keeps them in production: PostgreSQL on these machines runs
    without autovacuum, and a database filled by a benchmark would otherwise be planned as if empty (a
    prepared statement's generic plan then scanned an account's every message for a page's duplicates)."""
    if db.engine.dialect.name == "postgresql":
        async with db.connect() as conn:
            await conn.execute(sa.text("ANALYZE"))


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    k = (len(ordered) - 1) * p
    lo, hi = int(k), min(int(k) + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


def median(values: list[float]) -> float:
    return statistics.median(values)


@contextlib.contextmanager
def fake_platform() -> Iterator[str]:
    """The fake platform in a process of its own, so serving it costs the measured process nothing."""
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "connectors.fake", "--port", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(base + "/_control/faults", timeout=1).status_code == 200:
                    break
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("the fake platform did not start")
            time.sleep(0.1)
        yield base
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(15)


class KeepAlive:
    """A bare HTTP/1.1 keep-alive client for load generation: it costs the measuring process far less
    CPU per request than a full client library, so the server, not the load generator, is what is timed."""

    def __init__(self, host: str, port: int, headers: dict[str, str]) -> None:
        self.host, self.port = host, port
        self.extra = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def request(self, method: str, path: str, body: bytes = b"") -> tuple[int, bytes]:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        assert self.reader is not None
        head = (f"{method} {path} HTTP/1.1\r\nHost: {self.host}\r\n{self.extra}"
                f"Content-Length: {len(body)}\r\nContent-Type: application/json\r\n\r\n")
        self.writer.write(head.encode() + body)
        status_line = await self.reader.readline()
        status = int(status_line.split()[1])
        length = 0
        while (line := await self.reader.readline()) not in (b"\r\n", b""):
            name, _, value = line.decode().partition(":")
            if name.lower() == "content-length":
                length = int(value)
        return status, await self.reader.readexactly(length)

    async def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            await self.writer.wait_closed()
