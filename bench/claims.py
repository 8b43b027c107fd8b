"""Claims per second and latency through the HTTP API, next to a raw SQL conditional UPDATE.

    .venv/bin/python bench/claims.py [--db sqlite,postgres] [--clients 16] [--claims 2000] [--rounds 3]

For each database: a fresh schema, `--clients` users with API tokens, and enough open conversations.
Then, alternating in each round, the raw baseline (the same conditional UPDATE a claim needs, one
autocommitted statement per claim over `--clients` connections) and the API path (`--clients`
concurrent HTTP clients against a real `webcare serve` subprocess, every claim a POST .../claim that
also checks the token, writes the event and answers the conversation). Medians over the rounds.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import sys
import time
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import create_async_engine

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import KeepAlive, database, env_for, median, percentile, serve
from webcare.db import Database
from webcare.migrate import upgrade
from webcare.models import Account, Conversation, Department


async def seed(url: str, clients: int, conversations: int) -> tuple[list[str], list[int]]:
    import os

    from webcare import people
    from webcare.schemas import UserIn

    os.environ.update(env_for(url))
    db = Database(url)
    tokens: list[str] = []
    try:
        async with db.write() as tx:
            dep = Department(name="Bench")
            tx.session.add(dep)
            await tx.session.flush()
            account = Account(platform="api", handle="bench", name="Bench", department_id=dep.id, settings={})
            tx.session.add(account)
            await tx.session.flush()
            now = dt.datetime.now(dt.UTC)
            await tx.session.execute(sa.insert(Conversation), [
                {"account_id": account.id, "status": "open", "author_id": f"u{i}", "author_handle": f"u{i}",
                 "author_name": f"U {i}", "subject_preview": "Waar is mijn vergunning?", "waiting_since": now,
                 "last_message_at": now, "created_at": now, "updated_at": now, "version": 1}
                for i in range(conversations)
            ])
        for i in range(clients):
            user = await people.create_user(db, UserIn(email=f"agent{i}@bench.webcare", name=f"Agent {i}",
                                                       role="agent", password=None))
            tokens.append(await people.create_token(db, user["email"]))
        async with db.read() as s:
            ids = list(await s.scalars(sa.select(Conversation.id).order_by(Conversation.id)))
    finally:
        await db.dispose()
    return tokens, ids


async def run_api(base: str, tokens: list[str], ids: list[int]) -> tuple[float, list[float]]:
    queue = list(reversed(ids))
    latencies: list[float] = []
    host, port = base.removeprefix("http://").split(":")
    http = [KeepAlive(host, int(port), {"Authorization": f"Bearer {t}"}) for t in tokens]

    async def worker(client: KeepAlive) -> None:
        while queue:
            cid = queue.pop()
            t0 = time.perf_counter()
            status, body = await client.request("POST", f"/api/conversations/{cid}/claim")
            latencies.append(time.perf_counter() - t0)
            if status != 200:
                raise RuntimeError(f"claim {cid}: {status} {body[:200]!r}")

    try:
        for c in http:  # open the keep-alive connections before the clock starts
            await c.request("GET", "/healthz")
        t0 = time.perf_counter()
        await asyncio.gather(*(worker(c) for c in http))
        elapsed = time.perf_counter() - t0
    finally:
        for c in http:
            await c.close()
    return len(ids) / elapsed, latencies


async def run_raw(url: str, clients: int, ids: list[int]) -> tuple[float, list[float]]:
    is_sqlite = url.startswith("sqlite")
    engine = create_async_engine(url, pool_size=1 if is_sqlite else clients, max_overflow=0,
                                 connect_args={"timeout": 30} if is_sqlite else {})
    if is_sqlite:
        async with engine.connect() as conn:
            await conn.exec_driver_sql("PRAGMA journal_mode=WAL")
    queue = list(reversed(ids))
    latencies: list[float] = []
    stmt = sa.text(
        "UPDATE conversations SET status = 'claimed', claimed_by_id = :user, claimed_at = :now, "
        "lease_expires_at = :lease, version = version + 1 "
        "WHERE id = :id AND status <> 'closed' AND (claimed_by_id IS NULL OR lease_expires_at <= :now)"
    )

    async def worker(user: int) -> None:
        async with engine.connect() as conn:
            while queue:
                cid = queue.pop()
                t0 = time.perf_counter()
                now = dt.datetime.now(dt.UTC)
                values = {"user": user, "now": now if not is_sqlite else now.replace(tzinfo=None),
                          "lease": now + dt.timedelta(minutes=15), "id": cid}
                if is_sqlite:
                    values["lease"] = values["lease"].replace(tzinfo=None)
                result = await conn.execute(stmt, values)
                await conn.commit()
                latencies.append(time.perf_counter() - t0)
                if result.rowcount != 1:
                    raise RuntimeError(f"raw claim of {cid} updated {result.rowcount} rows")

    try:
        t0 = time.perf_counter()
        await asyncio.gather(*(worker(i + 1) for i in range(clients)))
        elapsed = time.perf_counter() - t0
    finally:
        await engine.dispose()
    return len(ids) / elapsed, latencies


def bench(kind: str, clients: int, claims: int, rounds: int) -> dict[str, float]:
    with database(kind) as url:
        upgrade(url)
        tokens, ids = asyncio.run(seed(url, clients, claims * rounds * 2))
        api_rates: list[float] = []
        raw_rates: list[float] = []
        api_lat: list[float] = []
        raw_lat: list[float] = []
        with serve(url) as base:
            for r in range(rounds):
                raw_ids = ids[(2 * r) * claims:(2 * r + 1) * claims]
                api_ids = ids[(2 * r + 1) * claims:(2 * r + 2) * claims]
                rate, lat = asyncio.run(run_raw(url, clients, raw_ids))
                raw_rates.append(rate)
                raw_lat.extend(lat)
                rate, lat = asyncio.run(run_api(base, tokens, api_ids))
                api_rates.append(rate)
                api_lat.extend(lat)
                print(f"  {kind} round {r + 1}: raw {raw_rates[-1]:8.0f}/s   api {api_rates[-1]:8.0f}/s", flush=True)
    result = {
        "raw_per_s": median(raw_rates), "api_per_s": median(api_rates),
        "raw_p50_ms": percentile(raw_lat, 0.5) * 1000, "raw_p99_ms": percentile(raw_lat, 0.99) * 1000,
        "api_p50_ms": percentile(api_lat, 0.5) * 1000, "api_p99_ms": percentile(api_lat, 0.99) * 1000,
    }
    result["ratio"] = result["api_per_s"] / result["raw_per_s"]
    return result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--db", default="postgres,sqlite")
    ap.add_argument("--clients", type=int, default=16)
    ap.add_argument("--claims", type=int, default=2000, help="claims per path per round")
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    rows = []
    for kind in args.db.split(","):
        rows.append((kind, bench(kind, args.clients, args.claims, args.rounds)))
    print(f"\nclaims, {args.clients} concurrent clients, {args.claims} claims per path per round, "
          f"median of {args.rounds} rounds")
    print(f"{'database':10} {'raw/s':>8} {'raw p50':>8} {'raw p99':>8} {'api/s':>8} {'api p50':>8} {'api p99':>8} "
          f"{'api/raw':>8}")
    for kind, r in rows:
        print(f"{kind:10} {r['raw_per_s']:8.0f} {r['raw_p50_ms']:6.2f}ms {r['raw_p99_ms']:6.2f}ms "
              f"{r['api_per_s']:8.0f} {r['api_p50_ms']:6.2f}ms {r['api_p99_ms']:6.2f}ms {r['ratio']:8.2f}")


if __name__ == "__main__":
    main()
