"""Demo mode: an organisation with departments, people and accounts, and a public that keeps writing."""

from __future__ import annotations

import asyncio
import logging
import random
import secrets
from typing import Any

import sqlalchemy as sa
from starlette.types import ASGIApp

from connectors.base import Author, InboundMessage
from connectors.fake import FakePlatform
from connectors.fake import create_app as create_fake_app
from webcare import people
from webcare.db import Database
from webcare.ingest import ingest
from webcare.models import Account, Message, User, utcnow
from webcare.schemas import Role, UserIn
from webcare.security import Keys
from webcare.settings import Settings

log = logging.getLogger(__name__)

PASSWORD = "webcare-demo"
DEPARTMENTS = ("Parkeren", "Afval", "Communicatie")
USERS: tuple[tuple[str, str, Role, str], ...] = (
    ("admin@demo.webcare", "Ada Admin", "admin", "Communicatie"),
    ("coordinator@demo.webcare", "Cor Coördinator", "coordinator", "Communicatie"),
    ("agent@demo.webcare", "Anouk Agent", "agent", "Parkeren"),
    ("agent2@demo.webcare", "Bram Baan", "agent", "Afval"),
    ("expert@demo.webcare", "Eva Expert", "expert", "Parkeren"),
)
ACCOUNTS = (("api", "gemeente_parkeren", "Parkeren (website)", "Parkeren"),
            ("api", "gemeente_afval", "Afval (app)", "Afval"))
#: Accounts on the built-in fake platform; replies made in the inbox appear there.
PLATFORM_ACCOUNTS = (("x", "gemeente", "Gemeente (X)", "Communicatie"),
                     ("x", "gemeente_afval", "Afval (X)", "Afval"),
                     ("mastodon", "gemeente", "Gemeente (Mastodon)", "Communicatie"),
                     ("facebook", "gemeente", "Gemeente (Facebook)", "Communicatie"),
                     ("instagram", "gemeente", "Gemeente (Instagram)", "Communicatie"))
PUBLIC = (
    ("p1", "jan_de_vries", "Jan de Vries"), ("p2", "marieke82", "Marieke"), ("p3", "tom_k", "Tom Kramer"),
    ("p4", "expat_sarah", "Sarah Jones"), ("p5", "fietsfan", "Fatima el Amrani"), ("p6", "rotterdamrob", "Rob"),
)
QUESTIONS = (
    "Waar kan ik een parkeervergunning aanvragen voor mijn nieuwe adres?",
    "Mijn container is vandaag niet geleegd, wat nu?",
    "How do I get a visitor's parking permit?",
    "De parkeerautomaat bij het station doet het niet, kan ik toch betalen?",
    "Wanneer wordt het grofvuil opgehaald in Noord?",
    "Is the recycling centre open on Sunday?",
    "Ik heb een boete gekregen terwijl ik een vergunning heb. Hoe maak ik bezwaar?",
    "Er staat al drie dagen een kapotte fiets voor mijn deur, wie ruimt dat op?",
    "Can I pay my parking fine online?",
    "Waarom is de milieustraat gesloten?",
)
FOLLOW_UPS = ("Nog iets: kan dat ook digitaal?", "Thanks! And what about weekends?", "Ik wacht nog steeds op antwoord…")


class Demo:
    """The demo organisation and its public. ``fake_url`` is where this process serves ``fake_app()``."""

    def __init__(self, settings: Settings, fake_url: str) -> None:
        self.settings = settings
        self.fake_url = fake_url.rstrip("/")
        self.fake = FakePlatform()
        self.keys = Keys(settings.secret_key)

    def fake_app(self) -> ASGIApp:
        return create_fake_app(self.fake)

    async def seed(self) -> tuple[str, str]:
        """Create the demo organisation once, and connect its platform accounts to this run's fake platform;
        answers the login to print."""
        db = Database(self.settings.database_url, pool_size=1)
        try:
            async with db.read() as s:
                seeded = await s.scalar(sa.select(User.id).where(User.email == USERS[0][0]))
            if seeded is None:
                for email, name, role, department in USERS:
                    await people.create_user(db, UserIn(email=email, name=name, role=role, password=PASSWORD),
                                             department_name=department)
                async with db.write() as tx:
                    for department in DEPARTMENTS:
                        await people.ensure_department(tx.session, department)
                    for platform, handle, name, department in ACCOUNTS:
                        dep = await people.ensure_department(tx.session, department)
                        tx.session.add(Account(platform=platform, handle=handle, name=name, department_id=dep.id,
                                               settings={}))
            await self._connect_platform_accounts(db)
        finally:
            await db.dispose()
        return USERS[1][0], PASSWORD

    async def _connect_platform_accounts(self, db: Database) -> None:
        # The fake platform starts empty with every run: register the accounts on it afresh, and start
        # their cursors over, since the ids of an earlier run mean nothing to this one.
        async with db.write() as tx:
            for platform, handle, name, department in PLATFORM_ACCOUNTS:
                settings: dict[str, Any] = {"base_url": f"{self.fake_url}/{platform}", "poll_interval": 3}
                if platform == "x":
                    credentials = self.fake.add_x_account(handle, name).credentials()
                elif platform == "mastodon":
                    credentials = {"access_token": str(self.fake.add_mastodon_account(handle, name).access_token)}
                else:
                    credentials, graph = self._graph_account(platform)
                    settings = {**graph, "base_url": f"{self.fake_url}/graph", "poll_interval": 3}
                account = await tx.session.scalar(
                    sa.select(Account).where(Account.platform == platform, Account.handle == handle))
                if account is None:
                    dep = await people.ensure_department(tx.session, department)
                    account = Account(platform=platform, handle=handle, name=name, department_id=dep.id)
                    tx.session.add(account)
                account.settings = settings
                account.credentials_encrypted = self.keys.encrypt_credentials(credentials)
                account.cursor = None
                account.next_poll_at = None
                account.needs_reauth = False
                account.poll_owner = None

    def _graph_account(self, platform: str) -> tuple[dict[str, str], dict[str, Any]]:
        """The demo's Facebook page and its linked Instagram account on the fake Graph API, with a post each."""
        page = self.fake.graph.add_page("gemeente", "Gemeente", instagram="gemeente.nl")
        if not self.fake.graph.posts:
            self.fake.graph.add_post(page, "Vanaf maandag is de milieustraat ook op zondag open.")
            self.fake.graph.add_medium(str(page.ig_user_id), "Nieuwe afvalbakken in het Vondelpark 🌳")
        settings: dict[str, Any] = {"page_id": page.id, "verify_token": "demo-verify"}
        if platform == "facebook":
            return {"page_access_token": page.token, "app_secret": page.app_secret}, settings
        return {"access_token": page.token, "app_secret": page.app_secret}, {**settings, "ig_user_id": page.ig_user_id}

    async def run(self, db: Database, interval: float = 6.0) -> None:
        """Keep the inbox filling: new questions on every platform, and now and then a follow-up."""
        rng = random.Random()
        while True:
            try:
                await self._one(db, rng)
            except Exception:
                log.exception("the demo public failed to write; trying again")
            await asyncio.sleep(rng.uniform(interval / 2, interval * 1.5))

    async def _one(self, db: Database, rng: random.Random) -> None:
        pid, handle, name = rng.choice(PUBLIC)
        roll = rng.random()
        if roll < 0.35:
            account = rng.choice([h for p, h, _, _ in PLATFORM_ACCOUNTS if p == "x"])
            posted = self.fake.posts("x", account)
            # Sometimes the person answers our reply, which continues (or reopens) the conversation.
            parent = rng.choice(posted).id if posted and rng.random() < 0.3 else None
            text = rng.choice(FOLLOW_UPS) if parent else rng.choice(QUESTIONS)
            await asyncio.to_thread(self.fake.inject_x_mention, account, text, author=handle, author_name=name,
                                    in_reply_to=parent)
        elif roll < 0.5:
            await asyncio.to_thread(self._graph_public, rng, handle, name)
        elif roll < 0.65:
            posted = self.fake.posts("mastodon", "gemeente")
            parent = rng.choice(posted).id if posted and rng.random() < 0.3 else None
            text = rng.choice(FOLLOW_UPS) if parent else rng.choice(QUESTIONS)
            await asyncio.to_thread(self.fake.inject_mastodon_mention, "gemeente", text,
                                    author=f"{handle}@social.example", author_name=name, in_reply_to_id=parent)
        else:
            await self._api_message(db, rng, Author(pid, handle, name))

    def _graph_public(self, rng: random.Random, handle: str, name: str) -> None:
        w = self.fake.graph
        person = w.person(handle, name)
        page = w.page("gemeente")
        choice = rng.random()
        if choice < 0.4 and w.posts:
            w.add_comment("facebook", rng.choice(list(w.posts)), person.id, rng.choice(QUESTIONS))
        elif choice < 0.7 and w.media:
            medium = rng.choice([m for m in w.media.values() if m.owner_id == page.ig_user_id])
            w.add_comment("instagram", medium.id, person.id, rng.choice(QUESTIONS))
        else:
            w.add_direct_message(page, "messenger", person.id, rng.choice(QUESTIONS))

    async def _api_message(self, db: Database, rng: random.Random, author: Author) -> None:
        async with db.read() as s:
            account_ids = list(await s.scalars(sa.select(Account.id).where(Account.platform == "api")))
            earlier = (await s.execute(
                sa.select(Message.account_id, Message.external_id)
                .join(Account, Account.id == Message.account_id)
                .where(Message.direction == "in", Account.platform == "api", Message.author_external_id == author.id)
                .order_by(Message.id.desc()).limit(5)
            )).all()
        if not account_ids:
            return
        if earlier and rng.random() < 0.3:
            account_id, parent = rng.choice(earlier)
            text, in_reply_to = rng.choice(FOLLOW_UPS), parent
        else:
            account_id, text, in_reply_to = rng.choice(account_ids), rng.choice(QUESTIONS), None
        await ingest(db, account_id, InboundMessage(
            external_id=f"demo-{secrets.token_hex(6)}", author=author, text=text, created_at=utcnow(),
            in_reply_to=in_reply_to))
