"""What publishing events costs the write path on PostgreSQL: the same writes with publishing off,
with the LISTEN/NOTIFY broker (NOTIFY after commit, coalesced, on its own connection), and, for
contrast, with a NOTIFY inside every business transaction.

    .venv/bin/python bench/notify.py [--writers 16] [--turns 12] [--writes 400] [--synchronous-commit on,off]

Every write is one unit of work through ``Database.write()``: a conditional UPDATE of one
conversation (each writer has its own) and one event, as a note or a claim makes. The three modes
take turns of ``--writes`` writes in rotation, so that a busy moment of the machine falls on all of
them alike; the rate is the total over the turns. A broker in a process of its own listens all
along, as another app instance would. PostgreSQL serialises the commits of transactions that
NOTIFY; ``synchronous_commit=off`` takes the fsync out, so that what is left is CPU and locks.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path

import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import database, median
from webcare.db import Database, Tx
from webcare.migrate import upgrade
from webcare.models import Account, Conversation, Department
from webcare.pgbroker import EVENTS_CHANNEL, PgBroker

Write = Callable[[Tx, int], Awaitable[None]]
MODES = ["off", "after_commit", "in_transaction"]


async def seed(url: str, n: int) -> list[int]:
    db = Database(url)
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
                for i in range(n)
            ])
        async with db.read() as s:
            return list(await s.scalars(sa.select(Conversation.id).order_by(Conversation.id)))
    finally:
        await db.dispose()


async def change(tx: Tx, conversation_id: int) -> None:
    await tx.session.execute(
        sa.update(Conversation).where(Conversation.id == conversation_id, Conversation.status != "closed")
        .values(updated_at=tx.now, version=Conversation.version + 1))
    tx.emit("note.added", conversation_id, None, text="bench")


async def change_and_notify(tx: Tx, conversation_id: int) -> None:
    await change(tx, conversation_id)
    await tx.session.execute(sa.text("SELECT pg_notify(:c, 'x')"), {"c": EVENTS_CHANNEL})


LISTENER = """
import asyncio, sys
from webcare.pgbroker import PgBroker

async def main() -> None:
    heard = 0

    def hear(seq):
        nonlocal heard
        heard += 1

    broker = PgBroker(sys.argv[1])
    await broker.start(hear, lambda message: None)
    while broker.listens == 0:
        await asyncio.sleep(0.01)
    print("ready", flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)
    await broker.stop()
    print(heard, flush=True)

asyncio.run(main())
"""


@contextlib.contextmanager
def other_instance(url: str) -> Iterator[Callable[[], int]]:
    """A broker listening in a process of its own, as another app instance would; counts what it hears."""
    proc = subprocess.Popen([sys.executable, "-c", LISTENER, url],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                            cwd=Path(__file__).resolve().parent.parent)
    assert proc.stdout is not None and proc.stdin is not None
    assert proc.stdout.readline().strip() == "ready"
    heard: list[int] = []

    def count() -> int:
        return heard[0] if heard else -1

    try:
        yield count
    finally:
        out, _ = proc.communicate("", timeout=30)
        heard.append(int(out.strip() or -1))


async def run_slice(db: Database, write: Write, ids: list[int], writes: int) -> float:
    """Seconds for ``writes`` units of work by ``len(ids)`` concurrent writers."""
    todo = writes

    async def writer(conversation_id: int) -> None:
        nonlocal todo
        while todo > 0:
            todo -= 1
            async with db.write() as tx:
                await write(tx, conversation_id)

    t0 = time.perf_counter()
    await asyncio.gather(*(writer(cid) for cid in ids))
    return time.perf_counter() - t0


async def run(url: str, ids: list[int], turns: int, per_turn: int) -> dict[str, list[float]]:
    """Seconds per turn for each mode; the modes take turns, so a busy moment of the machine falls on
    all of them alike."""
    dbs = {mode: Database(url, pool_size=len(ids)) for mode in MODES}
    publisher = PgBroker(url)
    await publisher.start(lambda seq: None, lambda message: None)
    dbs["after_commit"].add_commit_listener(publisher.published)
    writes: dict[str, Write] = {"off": change, "after_commit": change, "in_transaction": change_and_notify}
    seconds: dict[str, list[float]] = {mode: [] for mode in MODES}
    try:
        for mode in MODES:  # warm the pools and the statement caches
            await run_slice(dbs[mode], writes[mode], ids, per_turn // 2)
        for i in range(turns):
            for mode in MODES[i % 3:] + MODES[:i % 3]:
                seconds[mode].append(await run_slice(dbs[mode], writes[mode], ids, per_turn))
    finally:
        await publisher.stop()
        for db in dbs.values():
            await db.dispose()
    return seconds


async def set_synchronous_commit(url: str, value: str) -> None:
    db = Database(url)
    try:
        async with db.engine.connect() as conn:
            name = url.rsplit("/", 1)[1]
            await conn.execute(sa.text(f"ALTER DATABASE {name} SET synchronous_commit = {value}"))
            await conn.commit()
    finally:
        await db.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--writers", type=int, default=16)
    parser.add_argument("--turns", type=int, default=12, help="turns per mode")
    parser.add_argument("--writes", type=int, default=400, help="writes per turn")
    parser.add_argument("--synchronous-commit", default="on,off",
                        help="PostgreSQL's synchronous_commit for the writes: on (every commit waits for its fsync) "
                             "and/or off (commits bound by CPU and locks, where NOTIFY's own lock shows)")
    args = parser.parse_args()
    summary: list[str] = []
    with database("postgres") as url:
        upgrade(url)
        ids = asyncio.run(seed(url, args.writers))
        for sync in args.synchronous_commit.split(","):
            asyncio.run(set_synchronous_commit(url, sync))
            with other_instance(url) as heard:
                seconds = asyncio.run(run(url, ids, args.turns, args.writes))
            total = args.turns * args.writes
            rate = {mode: total / sum(seconds[mode]) for mode in MODES}
            lines = [f"\nPostgreSQL, synchronous_commit={sync}: {args.writers} writers, {args.turns} turns of "
                     f"{args.writes} writes per mode, the modes in rotation",
                     f"  publishing off                  {rate['off']:8.0f} writes/s   ratio 1.00"]
            for mode, label in (("after_commit", "NOTIFY after commit, coalesced"),
                                ("in_transaction", "NOTIFY in the transaction")):
                paired = median([off / other for off, other in zip(seconds["off"], seconds[mode], strict=True)])
                lines.append(f"  {label:31} {rate[mode]:8.0f} writes/s   ratio {rate[mode] / rate['off']:.2f}   "
                             f"(median of the turns' ratios {paired:.2f})")
            published = 2 * (total + args.writes // 2)
            lines.append(f"  another instance, listening, heard {heard()} NOTIFYs for the {published} writes that "
                         "published (after commit ones coalesced)")
            print(*lines, sep="\n", flush=True)
            summary += lines
    print("\n".join(summary))


if __name__ == "__main__":
    main()
