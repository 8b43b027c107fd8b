"""Demo mode: an organisation with departments, people and accounts, and a public that keeps writing."""

from __future__ import annotations

import asyncio
import logging
import random
import secrets

import sqlalchemy as sa

from connectors.base import Author, InboundMessage
from webcare import people
from webcare.db import Database
from webcare.ingest import ingest
from webcare.models import Account, Message, User, utcnow
from webcare.schemas import Role, UserIn
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
    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    async def seed(self) -> tuple[str, str]:
        """Create the demo organisation once; answers the login to print."""
        db = Database(self.settings.database_url, pool_size=1)
        try:
            async with db.read() as s:
                seeded = await s.scalar(sa.select(User.id).where(User.email == USERS[0][0]))
            if seeded is None:
                for email, name, role, department in USERS:
                    await people.create_user(db, UserIn(email=email, name=name, role=role, password=PASSWORD),
                                             department_name=department)
                async with db.write() as tx:
                    for platform, handle, name, department in ACCOUNTS:
                        dep = await people.ensure_department(tx.session, department)
                        tx.session.add(Account(platform=platform, handle=handle, name=name, department_id=dep.id,
                                               settings={}))
                for department in DEPARTMENTS:
                    async with db.write() as tx:
                        await people.ensure_department(tx.session, department)
        finally:
            await db.dispose()
        return USERS[1][0], PASSWORD

    async def run(self, db: Database, interval: float = 8.0) -> None:
        """Keep the inbox filling: new questions, and now and then a follow-up to an earlier one."""
        rng = random.Random()
        while True:
            try:
                await self._one(db, rng)
            except Exception:
                log.exception("the demo public failed to write; trying again")
            await asyncio.sleep(rng.uniform(interval / 2, interval * 1.5))

    async def _one(self, db: Database, rng: random.Random) -> None:
        async with db.read() as s:
            account_ids = list(await s.scalars(sa.select(Account.id).where(Account.platform == "api")))
            earlier = (await s.execute(
                sa.select(Message.account_id, Message.external_id, Message.author_external_id)
                .where(Message.direction == "in").order_by(Message.id.desc()).limit(20)
            )).all()
        if not account_ids:
            return
        if earlier and rng.random() < 0.2:
            account_id, parent, author_id = rng.choice(earlier)
            author = next((p for p in PUBLIC if p[0] == author_id), PUBLIC[0])
            text, in_reply_to = rng.choice(FOLLOW_UPS), parent
        else:
            account_id, author = rng.choice(account_ids), rng.choice(PUBLIC)
            text, in_reply_to = rng.choice(QUESTIONS), None
        await ingest(db, account_id, InboundMessage(
            external_id=f"demo-{secrets.token_hex(6)}", author=Author(*author), text=text, created_at=utcnow(),
            in_reply_to=in_reply_to))
