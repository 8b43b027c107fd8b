"""The database: engines, units of work and the event log's write side.

A *unit of work* is one transaction. ``Database.write()`` yields a :class:`Tx`; services add rows
and ``tx.emit(...)`` events, and on leaving the block the events get their numbers and are
inserted as the last statements before commit. Listeners hear the new last number after commit.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event as sa_event
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, create_async_engine

from webcare.models import Event, EventCounter, utcnow

log = logging.getLogger(__name__)

CommitListener = Callable[[int], None]


@dataclass
class PendingEvent:
    type: str
    conversation_id: int | None
    actor_id: int | None
    data: dict[str, Any]
    at: dt.datetime


@dataclass
class Tx:
    """One write transaction: a session plus the events it will commit."""

    session: AsyncSession
    events: list[PendingEvent] = field(default_factory=list)
    now: dt.datetime = field(default_factory=utcnow)

    def emit(self, type: str, conversation_id: int | None, actor_id: int | None, **data: Any) -> None:
        self.events.append(PendingEvent(type, conversation_id, actor_id, data, self.now))


class Database:
    """Engines for one database URL; SQLite gets one in-process writer, PostgreSQL a pool."""

    def __init__(self, url: str, *, pool_size: int = 10, echo: bool = False) -> None:
        self.url = url
        self.is_sqlite = url.startswith("sqlite")
        self._listeners: list[CommitListener] = []
        if self.is_sqlite:
            # WAL lets readers run beside the writer; writes in this process queue on a lock and
            # start with BEGIN IMMEDIATE, so a writer never fails half-way on a lock upgrade, and
            # the busy timeout covers writers in other processes (the CLI, a worker).
            self.engine = create_async_engine(url, echo=echo, pool_size=pool_size, max_overflow=0)
            _sqlite_setup(self.engine, begin="BEGIN")
            self.write_engine = create_async_engine(url, echo=echo, pool_size=1, max_overflow=0)
            _sqlite_setup(self.write_engine, begin="BEGIN IMMEDIATE")
        else:
            self.engine = create_async_engine(url, echo=echo, pool_size=pool_size, max_overflow=pool_size,
                                              pool_pre_ping=True)
            self.write_engine = self.engine
        self._write_lock = asyncio.Lock() if self.is_sqlite else None

    def add_commit_listener(self, listener: CommitListener) -> None:
        """``listener(last_seq)`` runs after every commit that wrote events."""
        self._listeners.append(listener)

    @asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncSession]:
        async with AsyncSession(self.engine, expire_on_commit=False) as session:
            yield session

    @asynccontextmanager
    async def write(self) -> AsyncIterator[Tx]:
        """One write transaction; its events are numbered and inserted last, listeners run after commit."""
        if self._write_lock is not None:
            await self._write_lock.acquire()
        try:
            async with AsyncSession(self.write_engine, expire_on_commit=False) as session, session.begin():
                tx = Tx(session)
                yield tx
                last = await _append_events(tx)
        finally:
            if self._write_lock is not None:
                self._write_lock.release()
        if last is not None:
            for listener in self._listeners:
                listener(last)

    async def dispose(self) -> None:
        await self.engine.dispose()
        if self.write_engine is not self.engine:
            await self.write_engine.dispose()

    async def ping(self) -> None:
        async with self.engine.connect() as conn:
            await conn.execute(sa.text("SELECT 1"))


async def _append_events(tx: Tx) -> int | None:
    """Number and insert the transaction's events; the counter UPDATE holds its lock until commit."""
    if not tx.events:
        return None
    n = len(tx.events)
    last: int = (
        await tx.session.execute(
            sa.update(EventCounter).where(EventCounter.id == 1)
            .values(last_seq=EventCounter.last_seq + n).returning(EventCounter.last_seq)
        )
    ).scalar_one()
    first = last - n + 1
    await tx.session.execute(
        sa.insert(Event),
        [
            {"seq": first + i, "type": e.type, "conversation_id": e.conversation_id, "actor_id": e.actor_id,
             "at": e.at, "data": e.data}
            for i, e in enumerate(tx.events)
        ],
    )
    return last


def _sqlite_setup(engine: AsyncEngine, *, begin: str) -> None:
    @sa_event.listens_for(engine.sync_engine, "connect")
    def _connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy, not the driver, start transactions, so that BEGIN IMMEDIATE is ours to say.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        for pragma in ("journal_mode=WAL", "busy_timeout=10000", "foreign_keys=ON", "synchronous=NORMAL"):
            cursor.execute(f"PRAGMA {pragma}")
        cursor.close()

    @sa_event.listens_for(engine.sync_engine, "begin")
    def _begin(conn: Any) -> None:
        conn.exec_driver_sql(begin)
