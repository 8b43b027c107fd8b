"""The hub: one per process, between the event log and every live socket of this process.

On a wake-up (a commit in this process, a broker hint from another instance, or the slow poll)
the hub reads the new events *once*, encodes each once into one ASGI message, and appends them to
a bounded buffer of recent events shared by all sockets. It sends them at once to each socket that
is idle (a send that cannot finish at once is left to a task) and wakes the senders of the others.
It never waits for a socket.

Each socket's sender keeps a cursor: the ``seq`` up to which it has sent every event its user may
see. It moves the cursor through the shared buffer, or, for history older than the buffer (a
client resuming with ``after``), through the event log page by page. One cursor that only moves
forward: no duplicate. Event numbers are taken under a row lock held until commit, so the
committed events are always ``1..k`` without holes and the buffer holds a run of consecutive
numbers: no gap. So a socket's queue is the part of the buffer after its cursor (plus a few
presence frames of its own), bounded by the buffer's size; a socket that falls out of the buffer
cannot keep up and is closed with 4000, and the client resumes from its last ``seq``.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
import logging
import secrets
from collections import deque
from collections.abc import Iterable, Sequence
from typing import Any, NamedTuple

import sqlalchemy as sa
from starlette.types import Message, Send

from webcare.access import Actor
from webcare.broker import Broker
from webcare.conversations import iso
from webcare.db import Database
from webcare.eventlog import event_json, events_after, last_seq
from webcare.models import Account, Conversation, Event
from webcare.presence import Presence, gone_message

log = logging.getLogger(__name__)

#: Events read from the log per query.
BATCH = 1000
#: Events per query when a socket catches up on history older than the buffer.
REPLAY_PAGE = 500
#: The buffer also stays under this many bytes of encoded events.
BUFFER_BYTES = 32 * 1024 * 1024
#: Presence and error frames one socket may have waiting.
OWN_FRAMES = 256


def dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def frame(text: str) -> Message:
    """The ASGI message that sends ``text`` as one WebSocket text frame."""
    return {"type": "websocket.send", "text": text}


class Entry(NamedTuple):
    """One event in the buffer: encoded once into one message that every socket sends as it is,
    with what deciding its visibility takes."""

    seq: int
    message: Message
    size: int
    conversation_id: int | None
    restricted: bool | None
    department_id: int | None


class Subscription:
    """One socket's place at the hub: its user, its own frames (presence, errors) and its presence."""

    __slots__ = ("actor", "cursor", "dropped", "gone", "inflight", "items", "key", "last_shown", "parked", "ready",
                 "send", "viewing", "watch_shown", "watching")

    def __init__(self, actor: Actor, key: str) -> None:
        self.actor = actor
        self.key = key
        #: Every event up to this one has been sent to the socket, or was not for its user.
        self.cursor = 0
        #: The server's ``send`` for this socket, once it is pumped.
        self.send: Send | None = None
        #: The socket's sender is idle, waiting for something to send: the hub may send for it.
        self.parked = False
        #: A frame the hub began to send that had to wait for the socket: the sender finishes it first.
        self.inflight: asyncio.Task[None] | None = None
        #: The socket is closed; sending is over.
        self.gone = False
        #: Frames for this socket alone, sent between events.
        self.items: deque[Message] = deque()
        #: Set whenever there may be something to send.
        self.ready = asyncio.Event()
        #: The socket cannot keep up: it must be closed with 4000.
        self.dropped = False
        self.viewing: int | None = None
        #: The presence last sent to this socket, per message type, so unchanged snapshots are not resent.
        self.last_shown: dict[str, Any] = {}
        #: The conversations whose presence this socket follows without having them open (a queue on screen).
        self.watching: frozenset[int] = frozenset()
        #: The presence last sent for watched conversations, per (message type, conversation).
        self.watch_shown: dict[tuple[str, int], Any] = {}

    def push(self, text: str) -> None:
        if len(self.items) >= OWN_FRAMES:
            self.dropped = True
        else:
            self.items.append(frame(text))
        self.ready.set()


async def _finish(sub: Subscription, sending: Any, waiting: Any) -> None:
    """Drive a started ``send`` to its end, as a task would have: it waits for what it yielded."""
    try:
        while True:
            try:
                if waiting is None:
                    await asyncio.sleep(0)
                else:
                    # What a task does with a future its coroutine yielded before it awaits it.
                    waiting._asyncio_future_blocking = False
                    await waiting
            except asyncio.CancelledError:
                sending.close()
                raise
            except BaseException as e:
                waiting = sending.throw(e)
            else:
                waiting = sending.send(None)
    except StopIteration:
        pass
    except Exception:
        sub.gone = True


def may_see(actor: Actor, entry: Entry) -> bool:
    """:func:`webcare.access.event_visible` for one event already read, in Python."""
    if actor.sees_everything or entry.conversation_id is None or not entry.restricted:
        return True
    return entry.department_id == actor.department_id


class Hub:
    def __init__(self, db: Database, broker: Broker, *, poll_seconds: float = 5.0, buffer_size: int = 5000) -> None:
        self.db = db
        self.broker = broker
        self.poll_seconds = poll_seconds
        self.buffer_size = buffer_size
        self.instance = secrets.token_hex(6)
        #: The last event read from the log; every event up to it has committed.
        self.last = 0
        #: Recent events, numbered ``first`` to ``last`` without holes.
        self._buffer: list[Entry] = []
        self._buffer_bytes = 0
        self.first = 1
        self.subscriptions: set[Subscription] = set()
        self.presence = Presence(broker, self.instance)
        self._wanted = asyncio.Event()
        self._numbers = 0
        self._tasks: list[asyncio.Task[None]] = []

    async def start(self) -> None:
        self.last = await last_seq(self.db)
        self.first = self.last + 1
        await self.broker.start(self.wake, self.presence.heard)
        self._wanted.set()
        self._tasks = [asyncio.create_task(self._read_loop(), name="hub-reader"),
                       asyncio.create_task(self.presence.run(), name="hub-presence")]

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self.broker.publish_presence(gone_message(self.instance))
        await self.broker.stop()

    # Reading the log

    def wake(self, seq: int | None) -> None:
        """Events up to ``seq`` committed (None: maybe something did); read them soon."""
        if seq is None or seq > self.last:
            self._wanted.set()

    async def _read_loop(self) -> None:
        failures = 0
        while True:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.poll_seconds):
                    await self._wanted.wait()
            self._wanted.clear()
            try:
                await self.catch_up()
                failures = 0
            except Exception:
                failures += 1
                log.exception("reading the event log failed; trying again")
                await asyncio.sleep(min(0.1 * 2 ** failures, self.poll_seconds))
                self._wanted.set()

    async def catch_up(self) -> None:
        """Read every event after :attr:`last` into the buffer and wake the senders."""
        batch = min(BATCH, self.buffer_size)
        while True:
            # Columns, not entities: this runs on every commit, and the ORM's bookkeeping is wasted here.
            async with self.db.connect() as conn:
                rows = (await conn.execute(
                    sa.select(Event.seq, Event.type, Event.conversation_id, Event.actor_id, Event.at, Event.data,
                              Account.restricted, Account.department_id)
                    .outerjoin(Conversation, Conversation.id == Event.conversation_id)
                    .outerjoin(Account, Account.id == Conversation.account_id)
                    .where(Event.seq > self.last).order_by(Event.seq).limit(batch)
                )).all()
            if rows:
                self._append(rows)
            if len(rows) < batch:
                return

    def _append(self, rows: Sequence[sa.Row[int, str, int | None, int | None, dt.datetime, dict[str, Any], bool,
                                            int]]) -> None:
        # The outer joins make ``restricted`` and ``department_id`` None for events without a conversation.
        for seq, type_, conversation_id, actor_id, at, data, restricted, department_id in rows:
            # What :func:`webcare.eventlog.event_json` makes of an Event (the replay's frames), from its columns.
            text = dumps({"seq": seq, "type": type_, "conversation_id": conversation_id, "actor_id": actor_id,
                          "at": iso(at), "data": data})
            self._buffer.append(Entry(seq, frame(text), len(text), conversation_id, restricted, department_id))
            self._buffer_bytes += len(text)
        self.last = rows[-1][0]
        drop = max(0, len(self._buffer) - self.buffer_size)
        self._buffer_bytes -= sum(e.size for e in self._buffer[:drop])
        while self._buffer_bytes > BUFFER_BYTES and drop < len(self._buffer) - 1:
            self._buffer_bytes -= self._buffer[drop].size
            drop += 1
        if drop:
            del self._buffer[:drop]
            self.first += drop
        for sub in self.subscriptions:
            if sub.parked and not sub.items and sub.inflight is None:
                self._send_now(sub)
            else:
                sub.ready.set()

    def _send_now(self, sub: Subscription) -> None:
        """Send an idle socket the new events from here, without waking its sender: at a thousand sockets,
        a thousand task switches per event are most of the fan-out's cost. A send that cannot finish at
        once (the socket is not draining) is left to a task, and the sender is woken to wait for it."""
        assert sub.send is not None
        while sub.cursor < self.last:
            entry = self.entry(sub.cursor + 1)
            if entry is None:
                break
            sub.cursor = entry.seq
            if not may_see(sub.actor, entry):
                continue
            sending = sub.send(entry.message)
            try:
                waiting = sending.send(None)  # type: ignore[attr-defined]
            except StopIteration:
                continue
            except Exception:
                sub.gone = True
                break
            sub.inflight = asyncio.ensure_future(_finish(sub, sending, waiting))
            break
        else:
            return
        sub.ready.set()

    def entry(self, seq: int) -> Entry | None:
        """Event ``seq`` from the buffer; None when it is no longer (or not yet) there."""
        i = seq - self.first
        return self._buffer[i] if 0 <= i < len(self._buffer) else None

    # Sockets

    def subscribe(self, actor: Actor) -> Subscription:
        self._numbers += 1
        sub = Subscription(actor, f"{self.instance}/{self._numbers}")
        self.subscriptions.add(sub)
        return sub

    def unsubscribe(self, sub: Subscription) -> None:
        """Forget the socket and its presence; safe to call more than once."""
        if sub in self.subscriptions:
            self.presence.forget(sub)
            self.subscriptions.discard(sub)

    async def pump(self, sub: Subscription, after: int | None, send: Send) -> None:
        """Send one socket, in order, the events after ``after`` (from now on for None) that its user may
        see, then each new one as the hub reads it, with its own frames in between. Returns when the
        socket is gone or cannot keep up (:attr:`Subscription.dropped`)."""
        sub.send = send
        sub.cursor = self.last if after is None else after
        live = after is None
        items = sub.items
        try:
            while not sub.dropped and not sub.gone:
                if sub.inflight is not None:
                    await sub.inflight
                    sub.inflight = None
                elif items:
                    await send(items.popleft())
                elif sub.cursor >= self.last:
                    live = True
                    sub.ready.clear()
                    sub.parked = True
                    try:
                        await sub.ready.wait()
                    finally:
                        sub.parked = False
                elif sub.cursor + 1 >= self.first:
                    live = True
                    while sub.cursor < self.last and not items:
                        entry = self.entry(sub.cursor + 1)
                        if entry is None:
                            # It fell out of the buffer while we waited for the socket to take what came before.
                            sub.dropped = True
                            break
                        sub.cursor = entry.seq
                        if may_see(sub.actor, entry):
                            await send(entry.message)
                elif live:
                    sub.dropped = True
                else:
                    # History older than the buffer: from the log. Everything up to ``known`` has committed,
                    # so a page that is not full has every visible event up to it.
                    known = self.last
                    async with self.db.read() as session:
                        events = await events_after(session, sub.actor, sub.cursor, REPLAY_PAGE)
                    for event in events:
                        await send(frame(dumps(event_json(event))))
                        sub.cursor = event.seq
                    if len(events) < REPLAY_PAGE:
                        sub.cursor = max(sub.cursor, known)
        finally:
            sub.gone = True
            if sub.inflight is not None:
                sub.inflight.cancel()
        if sub.dropped:
            log.info("a live socket of user %d fell too far behind; closing it", sub.actor.id)

    # Presence: the hub lets only its subscribed sockets in

    def set_presence(self, sub: Subscription, conversation_id: int | None, typing: bool = False) -> None:
        """The socket's tab shows ``conversation_id`` (None: nothing); ``typing`` renews or stops its indicator."""
        if sub in self.subscriptions:
            self.presence.view(sub, conversation_id, typing)

    def watch(self, sub: Subscription, conversation_ids: Iterable[int]) -> None:
        """The socket follows who views and types in these conversations (replacing what it followed)."""
        if sub in self.subscriptions:
            self.presence.watch(sub, conversation_ids)
