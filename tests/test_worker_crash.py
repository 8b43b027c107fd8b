"""A `webcare worker` process killed with SIGKILL mid-poll and mid-send, then another one started:
nothing is lost and nothing is doubled."""

from __future__ import annotations

import asyncio
import itertools
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa

from connectors.fake.graph_webhooks import deliver, mention_event
from tests.conftest import SECRET, FakeServer, free_port, make_settings
from webcare import people
from webcare.access import Actor
from webcare.db import Database
from webcare.models import Account, Department, Message, Reply, WebhookDelivery
from webcare.schemas import UserIn
from webcare.services import Services

pytestmark = pytest.mark.anyio


async def until(check: Callable[[], Awaitable[bool]], within: float, what: str) -> None:
    deadline = time.monotonic() + within
    while not await check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)


class Worker:
    """`webcare worker` as a real process, with short leases so a dead one is taken over quickly."""

    def __init__(self, db_url: str, log: Path, command: tuple[str, ...] = ("worker",),
                 lease_seconds: float = 2) -> None:
        self.log = log.open("ab")
        lease = str(lease_seconds)
        env = dict(os.environ, WEBCARE_DATABASE_URL=db_url, WEBCARE_SECRET_KEY=SECRET, WEBCARE_LOG_LEVEL="warning",
                   WEBCARE_POLL_LEASE_SECONDS=lease, WEBCARE_SEND_LEASE_SECONDS=lease,
                   WEBCARE_WEBHOOK_LEASE_SECONDS=lease, WEBCARE_WEBHOOK_SWEEP_SECONDS="0.2")
        self.proc = subprocess.Popen([sys.executable, "-m", "webcare", *command], env=env,
                                     stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True)

    def kill(self) -> None:
        os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(10)

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.kill()
        self.log.close()


@pytest.fixture
def workers(tmp_path: Path) -> Iterator[Callable[..., Worker]]:
    started: list[Worker] = []

    def start(db_url: str, command: tuple[str, ...] = ("worker",), lease_seconds: float = 2) -> Worker:
        started.append(Worker(db_url, tmp_path / "workers.log", command, lease_seconds))
        return started[-1]

    yield start
    for w in started:
        w.stop()


async def messages(db: Database, account_id: int) -> list[Message]:
    async with db.read() as s:
        return list(await s.scalars(sa.select(Message).where(Message.account_id == account_id,
                                                               Message.direction == "in")))


async def test_a_killed_worker_loses_and_doubles_nothing(db_url: str, fake_server: FakeServer,
                                                         workers: Callable[..., Worker]) -> None:
    fake = fake_server.fake
    services = Services.build(make_settings(db_url))
    db = services.db
    try:
        creds = fake.add_x_account("stadhuis").credentials()
        async with db.write() as tx:
            dep = Department(name="Publiekszaken")
            tx.session.add(dep)
            await tx.session.flush()
            account = Account(platform="x", handle="stadhuis", name="Stadhuis", department_id=dep.id,
                              settings={"base_url": fake_server.x_url, "poll_interval": 1, "page_size": 10},
                              credentials_encrypted=services.keys.encrypt_credentials(creds))
            tx.session.add(account)
            await tx.session.flush()
            account_id = account.id
        agent = await people.create_user(db, UserIn(email="a@crash.test", name="Agent", role="agent"))
        actor = Actor(agent["id"], agent["email"], agent["name"], "agent", None)

        async def polled_once() -> bool:
            async with db.read() as s:
                return await s.scalar(sa.select(Account.cursor).where(Account.id == account_id)) is not None

        # Mid-poll: the mentions request hangs after the fake has answered nothing yet; kill the worker then.
        first = workers(db_url)
        await until(polled_once, 60, "the first poll")
        expected = {fake.inject_x_mention("stadhuis", f"Melding {i}", author=f"p{i}").id for i in range(25)}
        before = len(fake.requests)
        fake.add_fault("delay", platform="x", path="/mentions", delay=30, times=1)

        async def fetching() -> bool:
            return any(r["path"].endswith("/mentions") for r in fake.requests[before:])

        await until(fetching, 30, "a poll in flight")
        first.kill()
        fake.release()
        second = workers(db_url)

        async def all_in() -> bool:
            return len(await messages(db, account_id)) >= len(expected)

        await until(all_in, 60, "every mention after the takeover")
        assert sorted(m.external_id for m in await messages(db, account_id)) == sorted(expected)

        # Mid-send: the platform stores the reply, then hangs before answering; kill the worker then.
        conversation_id = (await messages(db, account_id))[0].conversation_id
        fake.add_fault("hang_after", platform="x", method="POST", path="^/2/tweets$", delay=30, times=1)
        reply = await services.inbox.reply(actor, conversation_id, "Dank u, we zoeken het uit.")

        async def posted() -> bool:
            return len(fake.posts("x", "stadhuis")) == 1

        await until(posted, 30, "the reply to reach the platform")
        second.kill()
        fake.release()
        workers(db_url)

        async def sent() -> bool:
            async with db.read() as s:
                return await s.scalar(sa.select(Reply.state).where(Reply.id == reply["id"])) == "sent"

        await until(sent, 60, "the reply to be recorded as sent")
        posts = fake.posts("x", "stadhuis")
        assert len(posts) == 1, "the reply was not posted again"
        async with db.read() as s:
            assert await s.scalar(sa.select(Reply.external_id).where(Reply.id == reply["id"])) == posts[0].id
        assert len(await messages(db, account_id)) == len(expected)
    finally:
        await services.connectors.aclose()
        await db.dispose()


@pytest.mark.parametrize("stream", ["comments", "messenger"])
async def test_a_killed_worker_loses_and_doubles_nothing_on_facebook(db_url: str, fake_server: FakeServer,
                                                                     workers: Callable[..., Worker],
                                                                     stream: str) -> None:
    """The same for a Facebook Page: killed while reading comments (or Messenger) and while posting a reply."""
    fake = fake_server.fake
    w = fake.graph
    services = Services.build(make_settings(db_url))
    db = services.db
    try:
        page = w.add_page("stadskantoor", "Stadskantoor")
        post = w.add_post(page, "Het stadskantoor is vanaf maandag verbouwd.")
        async with db.write() as tx:
            dep = Department(name="Publiekszaken")
            tx.session.add(dep)
            await tx.session.flush()
            account = Account(platform="facebook", handle=page.username, name=page.name, department_id=dep.id,
                              settings={"base_url": f"{fake_server.url}/graph", "page_id": page.id,
                                        "poll_interval": 1, "messenger": stream == "messenger"},
                              credentials_encrypted=services.keys.encrypt_credentials(
                                  {"page_access_token": page.token, "app_secret": page.app_secret}))
            tx.session.add(account)
            await tx.session.flush()
            account_id = account.id
        agent = await people.create_user(db, UserIn(email="a@crash.test", name="Agent", role="agent"))
        actor = Actor(agent["id"], agent["email"], agent["name"], "agent", None)

        async def polled_once() -> bool:
            async with db.read() as s:
                return await s.scalar(sa.select(Account.cursor).where(Account.id == account_id)) is not None

        first = workers(db_url)
        await until(polled_once, 60, "the first poll")
        expected = set()
        for i in range(25):
            person = w.person(f"p{i}", f"Persoon {i}")
            if stream == "comments":
                expected.add(w.add_comment("facebook", post.id, person.id, f"Melding {i}").id)
            else:
                expected.add(w.add_direct_message(page, "messenger", person.id, f"Melding {i}").id)
        # Mid-poll: the read hangs before Graph has answered anything; kill the worker then.
        reading = r"/comments$" if stream == "comments" else r"/conversations$"
        before = len(fake.requests)
        fake.add_fault("delay", platform="graph", method="GET", path=reading, delay=30, times=1)

        async def fetching() -> bool:
            return any(re.search(reading, r["path"]) for r in fake.requests[before:])

        await until(fetching, 30, "a poll in flight")
        first.kill()
        fake.release()
        second = workers(db_url)

        async def all_in() -> bool:
            return len(await messages(db, account_id)) >= len(expected)

        await until(all_in, 60, "every message after the takeover")
        assert sorted(m.external_id for m in await messages(db, account_id)) == sorted(expected)

        # Mid-send: Graph stores the reply, then hangs before answering; kill the worker then.
        conversation_id = (await messages(db, account_id))[0].conversation_id
        posting = r"/comments$" if stream == "comments" else r"/messages$"
        fake.add_fault("hang_after", platform="graph", method="POST", path=posting, delay=30, times=1)
        reply = await services.inbox.reply(actor, conversation_id, "Dank u, we zoeken het uit.")

        async def posted() -> bool:
            return len(fake.posts("facebook", page.username)) == 1

        await until(posted, 30, "the reply to reach the platform")
        second.kill()
        fake.release()
        workers(db_url)

        async def sent() -> bool:
            async with db.read() as s:
                return await s.scalar(sa.select(Reply.state).where(Reply.id == reply["id"])) == "sent"

        await until(sent, 60, "the reply to be recorded as sent")
        posts = fake.posts("facebook", page.username)
        assert len(posts) == 1, "the reply was not posted again"
        async with db.read() as s:
            assert await s.scalar(sa.select(Reply.external_id).where(Reply.id == reply["id"])) == posts[0].id
        assert len(await messages(db, account_id)) == len(expected)
    finally:
        await services.connectors.aclose()
        await db.dispose()


async def test_a_webhook_delivery_outlives_the_process_that_answered_it(db_url: str, fake_server: FakeServer,
                                                                       workers: Callable[..., Worker]) -> None:
    """An Instagram mention (which no poll can find) is answered 200 by `webcare serve`, which is killed while it
    reads the mention back; a `webcare worker` started afterwards sweeps the stored delivery: the mention is in
    the inbox exactly once."""
    fake = fake_server.fake
    w = fake.graph
    services = Services.build(make_settings(db_url))
    db = services.db
    try:
        page = w.add_page("gemeente-pagina", "Gemeente", instagram="gemeente.nl")
        async with db.write() as tx:
            dep = Department(name="Communicatie")
            tx.session.add(dep)
            await tx.session.flush()
            account = Account(platform="instagram", handle="gemeente.nl", name="Gemeente", department_id=dep.id,
                              settings={"base_url": f"{fake_server.url}/graph", "ig_user_id": page.ig_user_id,
                                        "page_id": page.id, "poll_interval": 3600},
                              credentials_encrypted=services.keys.encrypt_credentials(
                                  {"access_token": page.token, "app_secret": page.app_secret}))
            tx.session.add(account)
            await tx.session.flush()
            account_id = account.id
        port = free_port()
        server = workers(db_url, ("serve", "--no-workers", "--port", str(port)))
        url = f"http://127.0.0.1:{port}/webhooks/meta"

        async def serving() -> bool:
            try:
                async with httpx.AsyncClient(timeout=2) as client:
                    return (await client.get(url)).status_code == 403
            except httpx.TransportError:
                return False

        await until(serving, 60, "webcare serve to answer")
        author = w.person("henk")
        medium = w.add_medium(str(page.ig_user_id), "a post by @henk", owner_id=author.id)
        mention = w.add_comment("instagram", medium.id, author.id, "@gemeente.nl de stoep ligt open")
        before = len(fake.requests)
        reading = f"/{page.ig_user_id}$"
        fake.add_fault("delay", platform="graph", method="GET", path=reading, delay=30, times=1)
        assert await deliver(url, page.app_secret, [mention_event(page, mention)]) == [200]

        async def reading_back() -> bool:
            return any(re.search(reading, r["path"]) for r in fake.requests[before:])

        await until(reading_back, 30, "the delivery's processing in flight")
        server.kill()
        fake.release()
        assert await messages(db, account_id) == []
        async with db.read() as s:
            [delivery] = list(await s.scalars(sa.select(WebhookDelivery)))
        assert not delivery.done, "accepted and stored, not processed"
        workers(db_url)

        async def swept() -> bool:
            async with db.read() as s:
                return await s.scalar(sa.select(WebhookDelivery.done)) is True

        await until(swept, 60, "the sweep to process the delivery")
        assert [m.external_id for m in await messages(db, account_id)] == [mention.id]
    finally:
        await services.connectors.aclose()
        await db.dispose()


async def test_two_worker_processes_never_poll_one_account_at_once(db_url: str, fake_server: FakeServer,
                                                                   workers: Callable[..., Worker]) -> None:
    """Two `webcare worker` processes on one database share twelve accounts (more than one worker polls at
    once, so both must): every fetch of an account's notifications ends before the next one for that
    account starts, both processes poll, and every mention is stored once."""
    fake = fake_server.fake
    services = Services.build(make_settings(db_url))
    db = services.db
    handles = [f"dienst{i}" for i in range(12)]
    try:
        async with db.write() as tx:
            dep = Department(name="Dienstverlening")
            tx.session.add(dep)
            await tx.session.flush()
            for handle in handles:
                token = fake.add_mastodon_account(handle).access_token
                tx.session.add(Account(
                    platform="mastodon", handle=handle, name=handle, department_id=dep.id,
                    settings={"base_url": fake_server.mastodon_url, "poll_interval": 1, "page_size": 5},
                    credentials_encrypted=services.keys.encrypt_credentials({"access_token": token})))
        # Every fetch takes a while, so that two processes polling one account at once would overlap.
        fake.add_fault("delay", platform="mastodon", path="/notifications", delay=0.15, times=None)
        # Long leases: this is about sharing, not taking over from a dead worker (the test above).
        pids = {workers(db_url, lease_seconds=60).proc.pid for _ in range(2)}
        expected: set[str] = set()
        owners: set[str] = set()

        async def stored() -> set[str]:
            async with db.read() as s:
                return set(await s.scalars(sa.select(Message.external_id).where(Message.direction == "in")))

        async def polled_by_both() -> bool:
            async with db.read() as s:
                rows = (await s.execute(sa.select(Account.poll_owner, Account.cursor))).all()
            owners.update(o for o, _ in rows if o)
            # Every account polled once (the first poll starts from "now": what came before it is not
            # fetched), and both processes seen holding accounts.
            return all(c is not None for _, c in rows) and {int(o.split(":")[1]) for o in owners} == pids

        await until(polled_by_both, 60, "both workers to poll every account once")
        for round_ in range(3):  # mentions arrive while both poll, several pages an account
            for i, handle in enumerate(handles):
                for n in range(6):
                    expected.add(fake.inject_mastodon_mention(handle, f"Vraag {round_}-{i}-{n}",
                                                              author=f"p{n}@social.example").id)

            async def all_in() -> bool:
                return expected <= await stored()

            await until(all_in, 60, f"round {round_ + 1} of mentions")
        async with db.read() as s:
            rows = (await s.execute(sa.select(Message.external_id, sa.func.count()).where(Message.direction == "in")
                                    .group_by(Message.external_id))).all()
        assert {external_id for external_id, _ in rows} == expected
        assert all(n == 1 for _, n in rows), "a mention stored twice"

        fetches: dict[str, list[tuple[float, float]]] = {}
        for r in list(fake.requests):
            if r["platform"] == "mastodon" and r["path"].endswith("/notifications") and r["ended"] is not None:
                fetches.setdefault(r["account"], []).append((r["started"], r["ended"]))
        assert set(fetches) == set(handles)
        for handle, spans in fetches.items():
            spans.sort()
            assert len(spans) >= 4, f"{handle} was polled only {len(spans)} times"
            for (_, ended), (started, _) in itertools.pairwise(spans):
                assert started >= ended, f"two fetches of {handle} in flight at once"
    finally:
        await services.connectors.aclose()
        await db.dispose()
