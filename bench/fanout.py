"""Fan-out latency of the live stream: one change through the API, the event on every connected client,
next to a bare `websockets` server broadcasting the same payload to as many clients, in the same run.

    .venv/bin/python bench/fanout.py [--clients 100,1000] [--rounds 30] [--db sqlite]

For each client count: a fresh database and a real `webcare serve --no-workers` subprocess; that many
WebSocket clients on /api/live (one bearer token, as many sockets); then rounds that alternate a claim
and a release through `POST /api/conversations/{id}/claim|release`, each timed from just before the
API call to the event's arrival on every client (the API call's own round trip included). The
baseline is a `websockets` server in a subprocess of its own that, told "go" on a control socket,
`broadcast()`s the same payload (the bytes of a real claim event) to the same number of clients,
timed from sending "go". Both servers run on uvloop with permessage-deflate (what browsers
negotiate), the clients share this one process, and p50 and p99 are over the clients of one round,
then the median over the rounds. Memory per connection is the growth of the server process's
resident set while the clients connect, divided by their number.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Coroutine, Iterator
from pathlib import Path
from typing import Any

import httpx
import uvloop
from websockets.asyncio.client import ClientConnection, connect

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import SECRET, database, env_for, free_port, median, percentile
from connectors.base import Author, InboundMessage
from webcare import people
from webcare.db import Database
from webcare.ingest import ingest
from webcare.migrate import upgrade
from webcare.models import Account, Department
from webcare.schemas import UserIn

ROOT = Path(__file__).resolve().parent.parent


# The servers


@contextlib.contextmanager
def process(args: list[str], env: dict[str, str], ready: Callable[[], bool]) -> Iterator[int]:
    """A server subprocess; its pid once ``ready()``."""
    log = tempfile.NamedTemporaryFile(prefix="webcare-bench-fanout-", suffix=".log", delete=False)
    proc = subprocess.Popen(args, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True, cwd=ROOT)
    try:
        deadline = time.monotonic() + 60
        while not ready():
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"{args[2:4]} did not start: {Path(log.name).read_text()[-1000:]}")
            time.sleep(0.05)
        yield proc.pid
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        os.unlink(log.name)


def healthy(url: str) -> Callable[[], bool]:
    def check() -> bool:
        with contextlib.suppress(httpx.HTTPError):
            return httpx.get(url, timeout=1).status_code == 200
        return False

    return check


def listening(port: int) -> Callable[[], bool]:
    def check() -> bool:
        with socket.socket() as s:
            return s.connect_ex(("127.0.0.1", port)) == 0

    return check


def rss(pid: int) -> int:
    """Resident set size of a process, in bytes."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS")


def bare_server(port: int, payload_file: str) -> None:
    """The baseline: every socket but the control one gets the payload when the control one says go."""
    from websockets.asyncio.server import ServerConnection, broadcast, serve

    payload = Path(payload_file).read_text()
    clients: set[ServerConnection] = set()

    async def handler(ws: ServerConnection) -> None:
        if ws.request is not None and ws.request.path == "/control":
            async for _ in ws:
                broadcast(clients, payload)
            return
        clients.add(ws)
        try:
            await ws.wait_closed()
        finally:
            clients.discard(ws)

    async def main() -> None:
        async with serve(handler, "127.0.0.1", port, compression="deflate") as server:
            await server.serve_forever()

    uvloop.run(main())


# The clients


class Clients:
    """Sockets that each note when every frame arrives; ``round()`` waits until all got one more."""

    def __init__(self) -> None:
        self.sockets: list[ClientConnection] = []
        self.arrivals: list[list[float]] = []
        self.tasks: list[asyncio.Task[None]] = []
        self._changed = asyncio.Event()
        self.frames: list[str] = []

    async def open(self, n: int, url: str, headers: dict[str, str]) -> None:
        async def one() -> None:
            ws = await connect(url, additional_headers=headers, proxy=None, open_timeout=60, ping_interval=None,
                               max_size=2**24)
            self.sockets.append(ws)
            self.arrivals.append([])
            self.tasks.append(asyncio.create_task(self._read(ws, self.arrivals[-1])))

        for start in range(0, n, 50):
            await asyncio.gather(*(one() for _ in range(min(50, n - start))))

    async def _read(self, ws: ClientConnection, arrivals: list[float]) -> None:
        with contextlib.suppress(Exception):
            async for frame in ws:
                arrivals.append(time.perf_counter())
                if len(self.frames) < 3:
                    self.frames.append(str(frame))
                self._changed.set()

    async def wait_all(self, counts: list[int]) -> None:
        """Wait until client ``i`` has had ``counts[i]`` frames."""
        async with asyncio.timeout(60):
            while any(len(a) < c for a, c in zip(self.arrivals, counts, strict=True)):
                self._changed.clear()
                await self._changed.wait()

    async def close(self) -> None:
        for task in self.tasks:
            task.cancel()
        await asyncio.gather(*(ws.close() for ws in self.sockets), return_exceptions=True)
        await asyncio.gather(*self.tasks, return_exceptions=True)


async def measure(clients: Clients, trigger: Callable[[], Coroutine[Any, Any, None]]) -> tuple[float, float]:
    """One round: p50 and p99 (ms) from just before ``trigger()`` to the frame's arrival on each client."""
    done = [len(a) + 1 for a in clients.arrivals]
    t0 = time.perf_counter()
    await trigger()
    await clients.wait_all(done)
    latencies = [(a[d - 1] - t0) * 1000 for a, d in zip(clients.arrivals, done, strict=True)]
    return percentile(latencies, 0.5), percentile(latencies, 0.99)


# One client count


async def seed(url: str) -> tuple[str, int]:
    db = Database(url)
    try:
        user = await people.create_user(db, UserIn(email="agent@bench.webcare", name="Agent", role="admin",
                                                   password=None))
        token = await people.create_token(db, user["email"])
        async with db.write() as tx:
            dep = Department(name="Bench")
            tx.session.add(dep)
            await tx.session.flush()
            account = Account(platform="api", handle="bench", name="Bench", department_id=dep.id, settings={})
            tx.session.add(account)
            await tx.session.flush()
            account_id = account.id
        got = await ingest(db, account_id, InboundMessage(
            external_id="1", author=Author(id="u1", handle="burger", name="Burger"),
            text="Waar blijft mijn vergunning?", created_at=dt.datetime.now(dt.UTC)))
        return token, got.conversation_id
    finally:
        await db.dispose()


class Side:
    """One server with its clients: how to make it send one frame to all of them, and what it weighs."""

    def __init__(self, name: str, pid: int, url: str, headers: dict[str, str],
                 trigger: Callable[[], Coroutine[Any, Any, None]]) -> None:
        self.name, self.pid, self.url, self.headers, self.trigger = name, pid, url, headers, trigger
        self.clients = Clients()
        self.p50s: list[float] = []
        self.p99s: list[float] = []
        self.per_connection = 0.0
        #: The median time the API call itself took to answer (webcare only).
        self.api_call = 0.0

    async def connect(self, n: int) -> None:
        await self.clients.open(1, self.url, self.headers)
        # Warm up: the first socket and the first frames allocate what every later one reuses.
        for _ in range(4):
            await measure(self.clients, self.trigger)
        before = rss(self.pid)
        await self.clients.open(n - 1, self.url, self.headers)
        self.per_connection = (rss(self.pid) - before) / (n - 1)
        for _ in range(2):
            await measure(self.clients, self.trigger)

    async def round(self) -> None:
        p50, p99 = await measure(self.clients, self.trigger)
        self.p50s.append(p50)
        self.p99s.append(p99)


async def run(url: str, n: int, rounds: int) -> tuple[Side, Side, str]:
    token, conversation = await seed(url)
    headers = {"Authorization": f"Bearer {token}"}
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    args = [sys.executable, "-m", "webcare", "serve", "--no-workers", "--port", str(port)]
    with contextlib.ExitStack() as stack:
        pid = stack.enter_context(process(args, dict(env_for(url), WEBCARE_SECRET_KEY=SECRET),
                                          healthy(base + "/healthz")))
        api = httpx.AsyncClient(base_url=base, headers=headers, timeout=30)
        verbs = iter(["claim", "release"] * (rounds + 10))
        calls: list[float] = []

        async def change() -> None:
            t0 = time.perf_counter()
            resp = await api.post(f"/api/conversations/{conversation}/{next(verbs)}")
            calls.append((time.perf_counter() - t0) * 1000)
            assert resp.status_code == 200, resp.text

        ours = Side("webcare", pid, f"ws://127.0.0.1:{port}/api/live", headers, change)
        await ours.connect(n)
        payload = next(f for f in ours.clients.frames if '"conversation.claimed"' in f)
        payload_file = stack.enter_context(tempfile.NamedTemporaryFile("w", suffix=".json"))
        payload_file.write(payload)
        payload_file.flush()
        bare_port = free_port()
        bare_pid = stack.enter_context(process(
            [sys.executable, str(ROOT / "bench" / "fanout.py"), "--bare-server", str(bare_port), payload_file.name],
            dict(os.environ), listening(bare_port)))
        async with connect(f"ws://127.0.0.1:{bare_port}/control", proxy=None) as control:
            async def go() -> None:
                await control.send("go")

            bare = Side("bare", bare_pid, f"ws://127.0.0.1:{bare_port}/", {}, go)
            await bare.connect(n)
            # Round by round, in turns, so that a busy moment of the machine falls on both alike.
            for r in range(rounds):
                for side in (ours, bare) if r % 2 == 0 else (bare, ours):
                    await side.round()
            await ours.clients.close()
            await bare.clients.close()
        await api.aclose()
    ours.api_call = median(calls[-rounds:])
    return ours, bare, payload


def main() -> None:
    if len(sys.argv) == 4 and sys.argv[1] == "--bare-server":
        bare_server(int(sys.argv[2]), sys.argv[3])
        return
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clients", default="100,1000")
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--db", default="sqlite", choices=["sqlite", "postgres"])
    args = parser.parse_args()
    lines: list[str] = []
    for n in (int(c) for c in args.clients.split(",")):
        with database(args.db) as url:
            upgrade(url)
            ours, bare, payload = uvloop.run(run(url, n, args.rounds))
        p99, bare_p99 = median(ours.p99s), median(bare.p99s)
        target = 1.5 * bare_p99 + 10
        lines += [
            f"\n{n} clients ({args.db}, a {len(payload)}-byte event, medians of {args.rounds} rounds in turns):",
            f"  webcare (API call -> event)  p50 {median(ours.p50s):7.1f} ms   p99 {p99:7.1f} ms   "
            f"{ours.per_connection / 1024:6.1f} KiB per connection",
            f"  bare websockets broadcast    p50 {median(bare.p50s):7.1f} ms   p99 {bare_p99:7.1f} ms   "
            f"{bare.per_connection / 1024:6.1f} KiB per connection",
            f"  p99 ratio {p99 / bare_p99:.2f}; target p99 <= 1.5 x bare + 10 ms = {target:.1f} ms: "
            f"{'met' if p99 <= target else 'MISSED'}",
            f"  (the API call alone answered in {ours.api_call:.1f} ms, median)",
        ]
        print(*lines[-5:], sep="\n", flush=True)
    print("\n".join(lines))


if __name__ == "__main__":
    main()
