"""Smart assist's cost: matching one new message against the last 30 days of conversations, next to
rapidfuzz's raw ``process.extract`` over the same strings, and the ingest path with assist on and off.

    .venv/bin/python bench/assist.py [--db postgres,sqlite] [--corpus 100000] [--probes 150]
                                     [--messages 2000]

*Matching*: a database holds ``--corpus`` conversations spread over 30 days (realistic Dutch and English
webcare questions from 20,000 people, and a DigiD outage in the last half hour that is a surge already).
Each probe is one new conversation: a person repeating an earlier question, a new question, or one more
message about the outage. We time ``linking.link_new`` for it inside a transaction that is rolled back
(the real path: narrowing queries, fingerprint and link INSERTs, fuzzy matching and the guard). The
baseline is ``process.extract(text, all_strings, scorer=token_set_ratio, limit=5)`` over the corpus'
normalised strings, already in memory, for the same probes in the same run.

*Ingest*: the poller's path (fetch a page of ``--page`` (40; the Mastodon connector asks for up to 80,
a poll every few seconds finds fewer) from the fake Mastodon over HTTP, store it with its
cursor in one transaction) for two accounts fed the same realistic messages, one with assist on and one
with ``settings.assist = false``, in the same database with its 30 days of history. They take turns
page by page (the order alternating), so that a busy machine or a growing database favours neither;
each page is timed on its own. Rates are a page's messages over the median page time; the ratio is also
given as the median of the paired pages' ratios.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import random
import secrets
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import httpx
import sqlalchemy as sa
from rapidfuzz import fuzz, process
from sqlalchemy.ext.asyncio import AsyncSession

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import SECRET, database, fake_platform, median, percentile
from connectors.base import Author
from webcare.assist_models import Fingerprint
from webcare.connections import ConnectorPool
from webcare.db import Database, Tx
from webcare.linking import link_new
from webcare.matching import author_key
from webcare.migrate import upgrade
from webcare.models import Account, Conversation, Department, Message
from webcare.normalize import normalise
from webcare.poller import Poller
from webcare.security import Keys
from webcare.settings import Secret

NOW = dt.datetime.now(dt.UTC).replace(microsecond=0)
DAYS = 30
PEOPLE = 20_000
STREETS = [f"{a}{b}" for a in ("Vondel", "Kerk", "Molen", "Dorps", "Stations", "Linden", "Beuken", "School",
                                "Haven", "Markt", "Wilhelmina", "Oranje", "Prinsen", "Kastanje", "Esdoorn")
           for b in ("straat", "laan", "weg", "plein", "kade", "singel")]
DISTRICTS = ["Noord", "Oost", "Zuid", "West", "Centrum", "Nieuw-West", "Zuidoost"]
THINGS = ["paspoort", "rijbewijs", "parkeervergunning", "uittreksel", "bouwvergunning", "ID-kaart",
          "afvalpas", "gehandicaptenparkeerkaart"]
DAYS_OF_WEEK = ["maandag", "dinsdag", "woensdag", "donderdag", "vrijdag", "zaterdag"]
TEMPLATES = [
    "Wanneer wordt het grofvuil opgehaald in {district}?",
    "De container in de {street} is al {n} dagen niet geleegd",
    "Mijn parkeervergunning voor kenteken {plate} is verlopen, hoe verleng ik die?",
    "Hoe vraag ik een {thing} aan?",
    "Is de {road} vandaag afgesloten?",
    "Lantaarnpaal kapot in de {street} bij nummer {n}",
    "Can I pay my parking fine online? Ticket {ticket}",
    "Wanneer is het zwembad in {district} weer open?",
    "Er ligt afval naast de container in de {street}, wie ruimt dit op?",
    "Tram {line} rijdt niet, wat is er aan de hand?",
    "Hoe laat is het stadhuis open op {day}?",
    "Mijn {thing} is nog steeds niet binnen, aangevraagd op {n} {month}",
    "Boom omgewaaid in de {street}, blokkeert de stoep",
    "Why is my garbage not collected in {street}?",
    "Geluidsoverlast in de {street}, feest tot {n} uur 's nachts",
    "Wie gaat de gaten in het fietspad langs de {street} repareren?",
]
OUTAGE = [
    "@gemeente de website ligt eruit, ik kan niet inloggen met DigiD",
    "Is jullie site down? DigiD login werkt niet",
    "Your website is down, can't log in with DigiD",
    "Website van de gemeente doet het niet? Krijg steeds een foutmelding bij DigiD inloggen",
    "Kan niet inloggen met DigiD op jullie website, storing?",
]
DRESSING = [("", ""), ("@gemeente ", ""), ("Hoi, ", " Alvast bedankt!"), ("", " ??"), ("@gemeente ", " 😡"),
            ("Hallo ", "!")]


def fill(rng: random.Random) -> str:
    template = rng.choice(TEMPLATES)
    text = template.format(
        district=rng.choice(DISTRICTS), street=rng.choice(STREETS), n=rng.randint(2, 30), thing=rng.choice(THINGS),
        plate=f"{rng.randint(10, 99)}-{rng.choice('ABCDGHJKL')}{rng.choice('NPRSTVXZ')}-{rng.randint(10, 99)}",
        road=f"{rng.choice('AN')}{rng.randint(1, 50)}", ticket=rng.randint(10_000, 99_999), line=rng.randint(1, 26),
        day=rng.choice(DAYS_OF_WEEK), month=rng.choice(["januari", "maart", "juni", "oktober"]))
    before, after = rng.choice(DRESSING)
    return before + text + after


@dataclass
class Corpus:
    account_ids: list[int]
    rows: list[tuple[int, int, str, str, dt.datetime]]  # conversation id, account id, handle, text, posted


async def seed(db: Database, size: int, rng: random.Random) -> Corpus:
    async with db.write() as tx:
        account_ids = []
        for i in range(6):
            dep = Department(name=f"Afdeling {i}")
            tx.session.add(dep)
            await tx.session.flush()
            account = Account(platform="api", handle=f"gemeente{i}", name=f"@gemeente{i}", department_id=dep.id,
                              settings={})
            tx.session.add(account)
            await tx.session.flush()
            account_ids.append(account.id)
    span = DAYS * 86_400
    plan = sorted(((NOW - dt.timedelta(seconds=rng.uniform(1_800, span)), f"bewoner{rng.randrange(PEOPLE)}",
                    fill(rng)) for _ in range(size)), key=lambda p: p[0])
    rows: list[tuple[int, int, str, str, dt.datetime]] = []
    table = cast(sa.Table, Conversation.__table__)
    for start in range(0, len(plan), 5_000):
        batch = plan[start:start + 5_000]
        accounts = [rng.choice(account_ids) for _ in batch]
        async with db.write() as tx:
            ids = list(await tx.session.scalars(
                sa.insert(table).returning(table.c.id, sort_by_parameter_order=True),
                [{"account_id": a, "status": "answered", "author_id": h, "author_handle": h, "author_name": h,
                  "subject_preview": text[:140], "waiting_since": None, "last_message_at": at, "created_at": at,
                  "updated_at": at, "version": 1} for a, (at, h, text) in zip(accounts, batch, strict=True)]))
            fingerprints = []
            for cid, a, (at, h, text) in zip(ids, accounts, batch, strict=True):
                norm = normalise(text)
                fingerprints.append({"conversation_id": cid, "account_id": a, "author_key": author_key(Author(h, h, h)),
                                     "text_hash": norm.hash, "norm_text": norm.text,
                                     "keys": " ".join(sorted(norm.keys)), "posted_at": at})
                rows.append((cid, a, h, text, at))
            await tx.session.execute(sa.insert(Fingerprint), fingerprints)
    # The outage of the last half hour goes through the real path, so it is a surge already.
    for i in range(40):
        at = NOW - dt.timedelta(minutes=30 - i * 0.7)
        handle = f"getroffen{i}"
        text = rng.choice(OUTAGE)
        async with db.write() as tx:
            cid = await new_conversation(tx.session, account_ids[0], handle, text, at)
            await link_new(tx, account_ids[0], [(cid, Author(handle, handle, handle), text, at)])
        rows.append((cid, account_ids[0], handle, text, at))
    async with db.write() as tx:  # statistics, as autovacuum (or SQLite's optimize) keeps them in production
        await tx.session.execute(sa.text("ANALYZE"))
    return Corpus(account_ids, rows)


async def new_conversation(session: AsyncSession, account_id: int, handle: str, text: str, at: dt.datetime) -> int:
    return int((await session.execute(sa.insert(Conversation).values(
        account_id=account_id, status="open", author_id=handle, author_handle=handle, author_name=handle,
        subject_preview=text[:140], waiting_since=at, last_message_at=at, created_at=at, updated_at=at, version=1,
    ).returning(Conversation.id))).scalar_one())


def probes(corpus: Corpus, n: int, rng: random.Random) -> list[tuple[str, str, str]]:
    """(kind, handle, text): repeats of the last two days, new questions, and the outage."""
    recent = [r for r in corpus.rows if r[4] > NOW - dt.timedelta(hours=48) and r[2].startswith("bewoner")]
    out = []
    for i in range(n):
        kind = ("repeat", "new", "surge")[i % 3]
        if kind == "repeat":
            _, _, handle, text, _ = rng.choice(recent)
            out.append((kind, handle, "@gemeente_help " + text + " Nog steeds geen antwoord!"))
        elif kind == "new":
            out.append((kind, f"nieuw{i}", fill(rng)))
        else:
            out.append((kind, f"ook{i}", rng.choice(OUTAGE) + rng.choice(["", " Wat is er aan de hand?", " 😡"])))
    return out


async def time_matching(db: Database, corpus: Corpus, cases: list[tuple[str, str, str]]
                        ) -> tuple[dict[str, list[float]], list[int]]:
    """Seconds per probe through link_new, by kind; and how many links each made (rolled back after)."""
    times: dict[str, list[float]] = {"repeat": [], "new": [], "surge": []}
    linked: list[int] = []
    for kind, handle, text in cases:
        async with AsyncSession(db.write_engine, expire_on_commit=False) as session:
            await session.begin()
            tx = Tx(session)
            cid = await new_conversation(session, corpus.account_ids[1], handle, text, NOW)
            if db.url.startswith("postgresql"):
                # As the ingest path does (webcare.assist.new_conversations, in its first statement): plans
                # made for each statement's values, not a generic one after five runs.
                await session.execute(sa.select(sa.func.set_config("plan_cache_mode", "force_custom_plan", True)))
            t0 = time.perf_counter()
            await link_new(tx, corpus.account_ids[1], [(cid, Author(handle, handle, handle), text, NOW)])
            times[kind].append(time.perf_counter() - t0)
            linked.append(sum(1 for e in tx.events if (e.type == "conversation.linked" and e.conversation_id == cid)
                              or cid in e.data.get("members", ())))
            await session.rollback()
    return times, linked


def time_raw(strings: list[str], cases: list[tuple[str, str, str]]) -> list[float]:
    out = []
    for _, _, text in cases:
        query = normalise(text).text
        t0 = time.perf_counter()
        process.extract(query, strings, scorer=fuzz.token_set_ratio, limit=5)
        out.append(time.perf_counter() - t0)
    return out


async def paired_ingest(db: Database, fake_url: str, n: int, rng: random.Random, page: int = 40
                        ) -> tuple[list[float], list[float]]:
    """Seconds per page with assist on and off, the two accounts polled page by page in turns."""
    keys = Keys(Secret(SECRET))
    pool = ConnectorPool(keys)
    control = httpx.AsyncClient(base_url=f"{fake_url}/_control", timeout=30)
    accounts: dict[bool, tuple[int, str]] = {}
    for assist in (True, False):
        handle = f"bench{'on' if assist else 'off'}{secrets.token_hex(3)}"
        token = (await control.post("/mastodon/accounts", json={"username": handle})).json()["access_token"]
        async with db.write() as tx:
            dep = Department(name=handle)
            tx.session.add(dep)
            await tx.session.flush()
            account = Account(platform="mastodon", handle=handle, name=handle, department_id=dep.id,
                              settings={"base_url": f"{fake_url}/mastodon", "page_size": page, "poll_interval": 1,
                                        "assist": assist},
                              credentials_encrypted=keys.encrypt_credentials({"access_token": token}))
            tx.session.add(account)
            await tx.session.flush()
            accounts[assist] = (account.id, handle)
    poller = Poller(db, pool, "bench", max_pages=1)
    for account_id, _ in accounts.values():
        await take(db, account_id)
        await poller.poll(account_id)  # the first poll sets the cursor to "now"
    for _ in range(n):
        text, author = fill(rng), f"p{rng.randrange(1000)}@social.example"
        for _, handle in accounts.values():
            r = await control.post("/mastodon/mentions", json={"account": handle, "text": text, "author": author})
            r.raise_for_status()
    await control.aclose()
    times: dict[bool, list[float]] = {True: [], False: []}
    for page_number in range(-(-n // page)):
        for assist in ((True, False) if page_number % 2 else (False, True)):
            account_id = accounts[assist][0]
            await take(db, account_id)
            t0 = time.perf_counter()
            await poller.poll(account_id)
            times[assist].append(time.perf_counter() - t0)
    async with db.read() as s:
        for account_id, _ in accounts.values():
            got = await s.scalar(sa.select(sa.func.count()).select_from(Message)
                                 .where(Message.account_id == account_id))
            if got != n:
                raise RuntimeError(f"account {account_id} took in {got} of {n} messages")
    await pool.aclose()
    return times[True], times[False]


async def take(db: Database, account_id: int) -> None:
    """Hand the account's poll lease to the benchmark's poller."""
    async with db.write() as tx:
        await tx.session.execute(sa.update(Account).where(Account.id == account_id).values(
            poll_owner="bench", poll_lease_expires_at=tx.now + dt.timedelta(minutes=5)))


def bench(kind: str, args: argparse.Namespace) -> dict[str, Any]:
    rng = random.Random(20261127)
    result: dict[str, Any] = {}
    with database(kind) as url, fake_platform() as fake_url:
        upgrade(url)

        async def go() -> None:
            db = Database(url)
            try:
                t0 = time.perf_counter()
                corpus = await seed(db, args.corpus, rng)
                print(f"  {kind}: seeded {len(corpus.rows)} conversations in {time.perf_counter() - t0:.0f} s",
                      flush=True)
                async with db.read() as s:
                    strings = list(await s.scalars(sa.select(Fingerprint.norm_text)))
                cases = probes(corpus, args.probes, rng)
                await time_matching(db, corpus, cases[:15])  # warm-up: connections, statement caches
                times, linked = await time_matching(db, corpus, cases)
                raw = time_raw(strings, cases)
                result["match"] = {k: v for k, v in times.items()}
                result["all"] = [t for v in times.values() for t in v]
                result["raw"] = raw
                result["strings"] = len(strings)
                result["linked"] = {k: sum(1 for (c, _, _), n in zip(cases, linked, strict=True) if c == k and n)
                                    for k in times}
                result["per_kind"] = {k: sum(1 for c, _, _ in cases if c == k) for k in times}
                on, off = await paired_ingest(db, fake_url, args.messages, rng, args.page)
                result["ingest_on"], result["ingest_off"] = on, off
                print(f"  {kind}: ingest pages of {args.page}, median assist off {median(off) * 1000:.1f} ms, "
                      f"on {median(on) * 1000:.1f} ms", flush=True)
            finally:
                await db.dispose()

        asyncio.run(go())
    return result


def ms(values: list[float]) -> str:
    return f"{median(values) * 1000:8.2f} {percentile(values, 0.9) * 1000:8.2f}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--db", default="postgres,sqlite")
    ap.add_argument("--corpus", type=int, default=100_000)
    ap.add_argument("--probes", type=int, default=150)
    ap.add_argument("--messages", type=int, default=2000)
    ap.add_argument("--page", type=int, default=40, help="messages a page (the Mastodon connector asks for up to 80)")
    args = ap.parse_args()
    results = {kind: bench(kind, args) for kind in args.db.split(",")}
    print(f"\nmatching one new message against {args.corpus} conversations of {DAYS} days, "
          f"{args.probes} probes (ms: median, p90)")
    print(f"{'database':10} {'what':34} {'median':>8} {'p90':>8}")
    for kind, r in results.items():
        print(f"{kind:10} {'assist: link_new (all probes)':34} {ms(r['all'])}")
        for k, values in r["match"].items():
            label = f"  {k} ({r['linked'][k]}/{r['per_kind'][k]} linked)"
            print(f"{kind:10} {label:34} {ms(values)}")
        label = f"raw process.extract ({r['strings']} strings)"
        print(f"{kind:10} {label:34} {ms(r['raw'])}")
        print(f"{kind:10} {'raw / assist (medians)':34} {median(r['raw']) / median(r['all']):8.1f}x")
    print(f"\ningest with assist on and off, {args.messages} messages each, pages of {args.page} in turns (medians)")
    print(f"{'database':10} {'off ms':>8} {'on ms':>8} {'off/s':>7} {'on/s':>7} {'on/off':>7} {'paired':>7}")
    for kind, r in results.items():
        on, off = median(r["ingest_on"]), median(r["ingest_off"])
        paired = median([b / a for a, b in zip(r["ingest_on"], r["ingest_off"], strict=True)])
        print(f"{kind:10} {off * 1000:8.1f} {on * 1000:8.1f} {args.page / off:7.0f} {args.page / on:7.0f} "
              f"{off / on:7.2f} {paired:7.2f}")

if __name__ == "__main__":
    main()
