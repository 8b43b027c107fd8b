"""Ingest throughput: messages per second from fake platform pages to committed conversations,
next to a raw executemany insert of the same rows.

    .venv/bin/python bench/ingest.py [--db postgres,sqlite] [--messages 3000] [--rounds 5] [--accounts 1]

The ingest path is the real one: a Poller fetches Mastodon notification pages (80 a page, the API's
maximum) over HTTP from the fake platform (a process of its own) on loopback, the next page while the
current one is stored with its cursor in one transaction (dedupe, thread, open conversations, metrics rows,
events and, unless the account turns it off, assist: routing, fingerprints, links and surges). The
messages are bench/assist.py's realistic Dutch and English questions (sixteen kinds, so many alike: assist
finds repeats and gathers surges among them) from 1,000 people, new people each round so that the rounds
repeat one measurement. The path runs with assist on (the default) and off. Between runs the database is
analysed, as autovacuum would do in production (it is off on these machines). The baseline inserts the same
conversations and messages with two executemany statements in one transaction, nothing else. Medians over
the rounds.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import random
import secrets
import sys
import time
from pathlib import Path

import httpx
import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.assist import fill
from bench.common import SECRET, analyse, database, fake_platform, median
from webcare.connections import ConnectorPool
from webcare.db import Database
from webcare.migrate import upgrade
from webcare.models import Account, Conversation, Department, Message
from webcare.poller import Poller
from webcare.security import Keys
from webcare.settings import Secret


async def run_ingest(db: Database, fake_url: str, mentions: list[tuple[str, str]], assist: bool = True,
                     accounts: int = 1) -> float:
    """Messages per second polled and stored, the mentions dealt out over ``accounts`` accounts of one
    department that the poller polls at once (as it polls an organisation's accounts)."""
    keys = Keys(Secret(SECRET))
    pool = ConnectorPool(keys)
    control = httpx.AsyncClient(base_url=f"{fake_url}/_control", timeout=30)
    handles = ["bench" + secrets.token_hex(3) for _ in range(accounts)]
    account_ids = []
    async with db.write() as tx:
        dep = Department(name=handles[0])
        tx.session.add(dep)
        await tx.session.flush()
        for handle in handles:
            token = (await control.post("/mastodon/accounts", json={"username": handle})).json()["access_token"]
            account = Account(platform="mastodon", handle=handle, name=handle, department_id=dep.id,
                              settings={"base_url": f"{fake_url}/mastodon", "poll_interval": 1, "assist": assist},
                              credentials_encrypted=keys.encrypt_credentials({"access_token": token}))
            tx.session.add(account)
            await tx.session.flush()
            account_ids.append(account.id)
    poller = Poller(db, pool, "bench", max_pages=10_000)
    await poller.poll_due()  # the first poll sets the cursors to "now"
    n = len(mentions)
    for i, (text, author) in enumerate(mentions):
        r = await control.post("/mastodon/mentions", json={"account": handles[i % accounts], "text": text,
                                                           "author": author})
        r.raise_for_status()
    await control.aclose()
    async with db.write() as tx:
        await tx.session.execute(sa.update(Account).where(Account.id.in_(account_ids)).values(next_poll_at=None))
    t0 = time.perf_counter()
    await poller.poll_due()
    elapsed = time.perf_counter() - t0
    async with db.write() as tx:  # done: no later round polls these again
        await tx.session.execute(sa.update(Account).where(Account.id.in_(account_ids)).values(active=False))
    async with db.read() as s:
        got = await s.scalar(sa.select(sa.func.count()).select_from(Message)
                             .where(Message.account_id.in_(account_ids)))
    await pool.aclose()
    if got != n:
        async with db.read() as s:
            errors = list(await s.scalars(sa.select(Account.last_error).where(Account.id.in_(account_ids))))
        raise RuntimeError(f"ingested {got} of {n}: {errors}")
    return n / elapsed


async def run_raw(db: Database, mentions: list[tuple[str, str]]) -> float:
    async with db.write() as tx:
        dep = Department(name="raw" + secrets.token_hex(3))
        tx.session.add(dep)
        await tx.session.flush()
        account = Account(platform="api", handle=dep.name, name=dep.name, department_id=dep.id, settings={})
        tx.session.add(account)
        await tx.session.flush()
        account_id = account.id
    now = dt.datetime.now(dt.UTC)
    n = len(mentions)
    conversations = [{"account_id": account_id, "status": "open", "author_id": author, "author_handle": author,
                      "author_name": author, "subject_preview": text[:140], "waiting_since": now,
                      "last_message_at": now, "created_at": now, "updated_at": now, "version": 1}
                     for text, author in mentions]
    messages = [{"account_id": account_id, "direction": "in", "external_id": f"raw-{i}", "text": text,
                 "author_external_id": author, "author_handle": author, "author_name": author, "created_at": now,
                 "received_at": now} for i, (text, author) in enumerate(mentions)]
    t0 = time.perf_counter()
    async with db.write() as tx:
        ids = list(await tx.session.scalars(
            sa.insert(Conversation).returning(Conversation.id, sort_by_parameter_order=True), conversations))
        await tx.session.execute(sa.insert(Message), [{**m, "conversation_id": c} for m, c in zip(messages, ids,
                                                                                                   strict=True)])
    return n / (time.perf_counter() - t0)


def bench(kind: str, n: int, rounds: int, accounts: int) -> tuple[list[float], list[float], list[float]]:
    ingest_rates: list[float] = []
    plain_rates: list[float] = []
    raw_rates: list[float] = []
    with database(kind) as url, fake_platform() as fake_url:
        upgrade(url)

        async def go() -> None:
            db = Database(url)
            try:
                rng = random.Random(20261127)
                for r in range(rounds):
                    mentions = [(fill(rng), f"r{r}p{rng.randrange(1000)}@social.example") for _ in range(n)]
                    raw_rates.append(await run_raw(db, mentions))
                    await analyse(db)
                    # Turn about, so that neither always meets the larger database.
                    for assist in ((True, False) if r % 2 == 0 else (False, True)):
                        (ingest_rates if assist else plain_rates).append(
                            await run_ingest(db, fake_url, mentions, assist, accounts))
                        await analyse(db)
                    print(f"  {kind} round {r + 1}: raw {raw_rates[-1]:8.0f}/s   ingest {ingest_rates[-1]:8.0f}/s"
                          f"   without assist {plain_rates[-1]:8.0f}/s", flush=True)
            finally:
                await db.dispose()

        asyncio.run(go())
    return raw_rates, ingest_rates, plain_rates


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--db", default="postgres,sqlite")
    ap.add_argument("--messages", type=int, default=3000)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--accounts", type=int, default=1, help="accounts the messages are dealt out over, polled at once")
    args = ap.parse_args()
    rows = [(kind, *bench(kind, args.messages, args.rounds, args.accounts)) for kind in args.db.split(",")]
    print(f"\ningest, {args.messages} messages per round over {args.accounts} account(s), medians of {args.rounds} "
          "rounds; ratios as the ratio of the medians and (paired) the median of each round's ratio")
    print(f"{'database':10} {'raw/s':>9} {'ingest/s':>9} {'ingest/raw':>10} {'paired':>7} {'no assist/s':>12} "
          f"{'no assist/raw':>13} {'paired':>7}")
    for kind, raw, ingest, plain in rows:
        r, i, p = median(raw), median(ingest), median(plain)
        paired_i = median([a / b for a, b in zip(ingest, raw, strict=True)])
        paired_p = median([a / b for a, b in zip(plain, raw, strict=True)])
        print(f"{kind:10} {r:9.0f} {i:9.0f} {i / r:10.2f} {paired_i:7.2f} {p:12.0f} {p / r:13.2f} {paired_p:7.2f}")

if __name__ == "__main__":
    main()
