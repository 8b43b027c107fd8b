"""The PostgreSQL broker: LISTEN/NOTIFY between app instances that share one database.

Notifications carry numbers only (``webcare_events``: the last committed ``seq``) or one socket's
presence (``webcare_presence``: a small JSON object); the event table is the truth.

*Publishing* happens after commit, outside the business transaction, on a connection of its own:
PostgreSQL serialises the commits of transactions that NOTIFY, so a NOTIFY inside every write
would line the writes up behind one lock. Instead a commit only records its number, and one
notifier sends the highest number not yet sent; commits that land while it is busy, or within
:data:`NOTIFY_INTERVAL` after, share the next NOTIFY. The writer never waits for it. This
process's own hub is woken directly, without the round trip.

*Listening* uses a dedicated connection. When it drops (a restart, ``pg_terminate_backend``, a
cut network found out by a ping), the listener reconnects with backoff and then asks the hub to
catch up from its last ``seq``; the hub also polls slowly, so a lost notification costs latency,
never an event.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections import deque
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from webcare.broker import EventsCallback, PresenceCallback

if TYPE_CHECKING:
    import asyncpg

log = logging.getLogger(__name__)

EVENTS_CHANNEL = "webcare_events"
PRESENCE_CHANNEL = "webcare_presence"
#: ``application_name`` of the connections, so an operator (or a test) can find them.
LISTENER_NAME = "webcare-listener"
NOTIFIER_NAME = "webcare-notifier"
#: PostgreSQL refuses payloads of 8000 bytes or more.
MAX_PAYLOAD = 7900
RETRY_FIRST = 0.05
RETRY_MAX = 5.0
CONNECT_TIMEOUT = 10.0
#: Seconds after a NOTIFY in which further commits wait to share the next one: at most 40 NOTIFYs a
#: second per instance whatever the write rate (bench/notify.py), for at most this much more latency
#: to the other instances under sustained writes. A commit after a quiet spell is told at once.
NOTIFY_INTERVAL = 0.025
#: Presence messages waiting for the notifier; the oldest go first when PostgreSQL is away for long.
PRESENCE_BACKLOG = 10_000

_NOTIFY = "SELECT pg_notify(c, p) FROM unnest($1::text[], $2::text[]) AS t(c, p)"


def asyncpg_dsn(url: str) -> str:
    """The SQLAlchemy URL (``postgresql+asyncpg://...``) as a DSN for ``asyncpg.connect``."""
    u = sa.engine.make_url(url)
    # The dialect's own options mean nothing to asyncpg, which would send them as server settings.
    query = {k: v for k, v in u.query.items() if not k.startswith("prepared_statement")}
    return u.set(drivername="postgresql", query=query).render_as_string(hide_password=False)


class PgBroker:
    def __init__(self, url: str, *, poll_seconds: float = 5.0) -> None:
        self.dsn = asyncpg_dsn(url)
        #: How often a quiet listener connection is asked whether it is still alive.
        self.ping_seconds = poll_seconds
        self._on_events: EventsCallback | None = None
        self._on_presence: PresenceCallback | None = None
        self._committed = 0
        self._notified = 0
        self._presence: deque[str] = deque(maxlen=PRESENCE_BACKLOG)
        self._outbox = asyncio.Event()
        self._notifier: asyncpg.Connection | None = None
        self._tasks: list[asyncio.Task[None]] = []
        #: How many times the listener has connected (the first time included).
        self.listens = 0

    async def start(self, on_events: EventsCallback, on_presence: PresenceCallback) -> None:
        self._on_events = on_events
        self._on_presence = on_presence
        self._tasks = [asyncio.create_task(self._listen(), name="pg-listener"),
                       asyncio.create_task(self._notify(), name="pg-notifier")]

    def published(self, last_seq: int) -> None:
        if self._on_events is not None:
            # This process's hub need not wait for the round trip through PostgreSQL.
            self._on_events(last_seq)
        if last_seq > self._committed:
            self._committed = last_seq
            self._outbox.set()

    def publish_presence(self, message: dict[str, Any]) -> None:
        payload = json.dumps(message, ensure_ascii=False, separators=(",", ":"))
        if len(payload.encode()) > MAX_PAYLOAD:
            log.warning("a presence message of %d bytes is too big for NOTIFY; dropped", len(payload))
            return
        self._presence.append(payload)
        self._outbox.set()

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []
        # A last word: what committed and who left, so the other instances need not wait for the poll.
        with contextlib.suppress(Exception):
            async with asyncio.timeout(2):
                await self._send_pending()
        if self._notifier is not None:
            with contextlib.suppress(Exception):
                async with asyncio.timeout(2):
                    await self._notifier.close()
            self._notifier = None
        self._on_events = self._on_presence = None

    # Publishing

    async def _notify(self) -> None:
        retry = RETRY_FIRST
        while True:
            await self._outbox.wait()
            self._outbox.clear()
            try:
                await self._send_pending()
                retry = RETRY_FIRST
                # Commits in the next moments share one NOTIFY, so a busy writer pays for few of them.
                await asyncio.sleep(NOTIFY_INTERVAL)
            except Exception as e:
                log.warning("NOTIFY failed (%s); trying again in %.2fs", e, retry)
                if self._notifier is not None:
                    self._notifier.terminate()
                    self._notifier = None
                await asyncio.sleep(retry)
                retry = min(retry * 2, RETRY_MAX)
                self._outbox.set()

    async def _send_pending(self) -> None:
        while self._committed > self._notified or self._presence:
            if self._notifier is None or self._notifier.is_closed():
                self._notifier = await _connect(self.dsn, NOTIFIER_NAME)
            seq = self._committed
            if not self._presence:
                # The common case, in the simple query protocol: one message, no parse, no bind.
                await self._notifier.execute(f"NOTIFY {EVENTS_CHANNEL}, '{int(seq)}'")
                self._notified = max(self._notified, seq)
                continue
            channels: list[str] = []
            payloads: list[str] = []
            if seq > self._notified:
                channels.append(EVENTS_CHANNEL)
                payloads.append(str(seq))
            presence = list(self._presence)
            channels += [PRESENCE_CHANNEL] * len(presence)
            payloads += presence
            await self._notifier.execute(_NOTIFY, channels, payloads)
            self._notified = max(self._notified, seq)
            for _ in presence:
                self._presence.popleft()

    # Listening

    async def _listen(self) -> None:
        retry = RETRY_FIRST
        while True:
            conn: asyncpg.Connection | None = None
            try:
                conn = await _connect(self.dsn, LISTENER_NAME)
                retry = RETRY_FIRST
                await self._listen_on(conn)
                log.warning("the LISTEN connection dropped; reconnecting")
            except asyncio.CancelledError:
                raise
            except Exception as e:
                log.warning("the LISTEN connection failed (%s); reconnecting in %.2fs", e, retry)
            finally:
                if conn is not None and not conn.is_closed():
                    conn.terminate()
            await asyncio.sleep(retry)
            retry = min(retry * 2, RETRY_MAX)

    async def _listen_on(self, conn: asyncpg.Connection) -> None:
        """Listen on ``conn`` until it drops."""
        lost = asyncio.Event()
        conn.add_termination_listener(lambda _conn: lost.set())
        await conn.add_listener(EVENTS_CHANNEL, self._heard_events)
        await conn.add_listener(PRESENCE_CHANNEL, self._heard_presence)
        self.listens += 1
        # Whatever committed while nobody listened is in the table: the hub reads from its last seq.
        if self._on_events is not None:
            self._on_events(None)
        while not lost.is_set():
            try:
                async with asyncio.timeout(self.ping_seconds):
                    await lost.wait()
            except TimeoutError:
                # A connection can die without a word (a cut network): ask it something.
                async with asyncio.timeout(CONNECT_TIMEOUT):
                    await conn.fetchval("SELECT 1")

    def _heard_events(self, conn: object, pid: int, channel: str, payload: str) -> None:
        if self._on_events is None:
            return
        try:
            self._on_events(int(payload))
        except ValueError:
            self._on_events(None)

    def _heard_presence(self, conn: object, pid: int, channel: str, payload: str) -> None:
        if self._on_presence is None:
            return
        try:
            message = json.loads(payload)
        except ValueError:
            return
        if isinstance(message, dict):
            self._on_presence(message)


async def _connect(dsn: str, name: str) -> asyncpg.Connection:
    import asyncpg

    return await asyncpg.connect(dsn, timeout=CONNECT_TIMEOUT, server_settings={"application_name": name})
