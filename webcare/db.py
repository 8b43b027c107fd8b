"""The database: engines, units of work and the event log's write side.

A *unit of work* is one transaction. ``Database.write()`` yields a :class:`Tx`; services add rows
and ``tx.emit(...)`` events, and on leaving the block the events get their numbers and are
inserted as the last statements before commit. Listeners hear the new last number after commit.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import functools
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import orjson
import sqlalchemy as sa
from sqlalchemy import event as sa_event
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession, create_async_engine

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
    #: The organisation's time zone, for anything that counts local days.
    zone: str = "Europe/Amsterdam"

    def emit(self, type: str, conversation_id: int | None, actor_id: int | None, **data: Any) -> None:
        self.events.append(PendingEvent(type, conversation_id, actor_id, data, self.now))


class Database:
    """Engines for one database URL; SQLite gets one in-process writer, PostgreSQL a pool."""

    def __init__(self, url: str, *, pool_size: int = 20, echo: bool = False,
                 clock: Callable[[], dt.datetime] = utcnow, zone: str = "Europe/Amsterdam") -> None:
        self.url = url
        #: Gives each unit of work its ``now``; tests pass a clock they move by hand.
        self.clock = clock
        self.zone = zone
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
            # No pre-ping: it costs a round trip per checkout; recycling bounds a connection's age instead.
            # The pool keeps as many connections as a busy server uses at once (a request takes one for its
            # token and one for its change, the live stream one per commit): connections beyond the pool are
            # closed when given back, and a new one costs a PostgreSQL backend, a handshake and every
            # statement prepared again; that churn took a quarter of the server's time under 16 clients.
            self.engine = create_async_engine(url, echo=echo, pool_size=pool_size, max_overflow=pool_size // 2,
                                              pool_recycle=1800)
            self.write_engine = self.engine
        self._write_lock = asyncio.Lock() if self.is_sqlite else None
        # Single-statement reads need no transaction: on PostgreSQL that saves BEGIN and ROLLBACK.
        self._autocommit = self.engine if self.is_sqlite else self.engine.execution_options(
            isolation_level="AUTOCOMMIT")

    def add_commit_listener(self, listener: CommitListener) -> None:
        """``listener(last_seq)`` runs after every commit that wrote events."""
        self._listeners.append(listener)

    @asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncSession]:
        async with AsyncSession(self.engine, expire_on_commit=False) as session:
            yield session

    @asynccontextmanager
    async def connect(self) -> AsyncIterator[AsyncConnection]:
        """A connection for one read statement, outside any transaction where the engine allows."""
        async with self._autocommit.connect() as conn:
            yield conn

    @asynccontextmanager
    async def write(self) -> AsyncIterator[Tx]:
        """One write transaction; its events are numbered and inserted last, listeners run after commit."""
        if self._write_lock is not None:
            await self._write_lock.acquire()
        try:
            async with AsyncSession(self.write_engine, expire_on_commit=False) as session, session.begin():
                tx = Tx(session, now=self.clock(), zone=self.zone)
                yield tx
                last = await _append_events(tx)
        finally:
            if self._write_lock is not None:
                self._write_lock.release()
        if last is not None:
            self.committed(last)

    def committed(self, last_seq: int) -> None:
        """Tell the listeners that events up to ``last_seq`` committed (for writes made outside ``write()``)."""
        for listener in self._listeners:
            listener(last_seq)

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
    rows = [{"type": e.type, "conversation_id": e.conversation_id, "actor_id": e.actor_id, "at": e.at,
             "data": e.data} for e in tx.events]
    if tx.session.get_bind().dialect.name == "postgresql":
        # One round trip: take the numbers and insert the rows in a single statement.
        rows_json = orjson.dumps(rows, option=orjson.OPT_NON_STR_KEYS).decode()
        return int((await tx.session.execute(_pg_append(n), {"n": n, "rows": rows_json})).scalar_one())
    last: int = (
        await tx.session.execute(
            sa.update(EventCounter).where(EventCounter.id == 1)
            .values(last_seq=EventCounter.last_seq + n).returning(EventCounter.last_seq)
        )
    ).scalar_one()
    first = last - n + 1
    await tx.session.execute(sa.insert(Event), [{"seq": first + i, **row} for i, row in enumerate(rows)])
    return last


@functools.cache
def _pg_append(n: int) -> sa.TextClause:
    return sa.text(
        "WITH counter AS (UPDATE event_counter SET last_seq = last_seq + :n WHERE id = 1 RETURNING last_seq), "
        "inserted AS (INSERT INTO events (seq, type, conversation_id, actor_id, at, data) "
        "SELECT counter.last_seq - :n + e.ordinality, e.value->>'type', (e.value->>'conversation_id')::int, "
        "(e.value->>'actor_id')::int, (e.value->>'at')::timestamptz, e.value->'data' "
        "FROM counter, jsonb_array_elements(CAST(:rows AS jsonb)) WITH ORDINALITY AS e(value, ordinality) "
        "RETURNING seq) "
        "SELECT last_seq FROM counter"
    )


def _sqlite_setup(engine: AsyncEngine, *, begin: str) -> None:
    @sa_event.listens_for(engine.sync_engine, "connect")
    def _connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy, not the driver, start transactions, so that BEGIN IMMEDIATE is ours to say.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        for pragma in ("journal_mode=WAL", "busy_timeout=10000", "foreign_keys=ON", "synchronous=NORMAL"):
            cursor.execute(f"PRAGMA {pragma}")
        cursor.close()
        # SQLite's own lower() folds ASCII only; the queue's search lowers its needle in Python, so
        # "Été" would not even find itself. Fold as Python does, as PostgreSQL does in a UTF-8 locale.
        dbapi_connection.create_function("lower", 1, _lower, deterministic=True)

    @sa_event.listens_for(engine.sync_engine, "begin")
    def _begin(conn: Any) -> None:
        conn.exec_driver_sql(begin)


def _lower(value: Any) -> Any:
    return value.lower() if isinstance(value, str) else value
