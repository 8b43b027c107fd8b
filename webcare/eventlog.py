"""Reading the event log. Numbers are handed out under a row lock held until commit
(see :class:`webcare.models.EventCounter`), so a reader paging with ``after`` never misses one."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from webcare.access import Actor, event_visible
from webcare.conversations import iso
from webcare.db import Database
from webcare.models import Event

DEFAULT_LIMIT = 100
MAX_LIMIT = 1000


def event_json(e: Event) -> dict[str, Any]:
    return {"seq": e.seq, "type": e.type, "conversation_id": e.conversation_id, "actor_id": e.actor_id,
            "at": iso(e.at), "data": e.data}


async def events_after(session: AsyncSession, actor: Actor | None, after: int, limit: int) -> list[Event]:
    """Up to ``limit`` events after ``after`` that ``actor`` may see (all of them for None), oldest first."""
    stmt = sa.select(Event).where(Event.seq > after)
    if actor is not None:
        stmt = stmt.where(event_visible(actor))
    return list(await session.scalars(stmt.order_by(Event.seq).limit(limit)))


async def read_events(db: Database, actor: Actor, after: int, limit: int = DEFAULT_LIMIT) -> dict[str, Any]:
    limit = max(1, min(limit, MAX_LIMIT))
    async with db.read() as s:
        events = await events_after(s, actor, after, limit)
    return {"events": [event_json(e) for e in events], "last_seq": events[-1].seq if events else after}


async def last_seq(db: Database) -> int:
    async with db.read() as s:
        return int(await s.scalar(sa.select(sa.func.coalesce(sa.func.max(Event.seq), 0))) or 0)
