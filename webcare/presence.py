"""Presence: who has which conversation open, and who is typing a reply in it. Ephemeral, never stored.

Each live socket has at most one *seat*: the conversation its tab shows and whether its person is
typing. A hub keeps the seats of its own sockets and mirrors the seats other instances publish
through the broker; a mirrored seat that is not refreshed in time goes away, so an instance that
dies without a word leaves no ghosts behind for long. :class:`Presence` is the hub's side of it:
who of its sockets gets told what, and what the other instances hear.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from webcare.broker import Broker

if TYPE_CHECKING:
    from webcare.hub import Subscription

log = logging.getLogger(__name__)

#: A typing indicator the client does not renew within this many seconds stops by itself.
TYPING_SECONDS = 8.0
#: Each hub republishes its seats this often ...
REFRESH_SECONDS = 10.0
#: ... and forgets another instance's seat not heard of for this long.
REMOTE_SECONDS = 35.0
KINDS = (("presence.viewing", False), ("presence.typing", True))


@dataclass
class Seat:
    user_id: int
    name: str
    conversation_id: int
    #: Monotonic time until which the person counts as typing; None when not typing.
    typing_until: float | None = None
    #: Monotonic time after which a mirrored seat is forgotten; None for this hub's own seats.
    expires: float | None = None

    @property
    def typing(self) -> bool:
        return self.typing_until is not None


Users = tuple[tuple[int, str], ...]


class Board:
    """All seats this hub knows of, by socket key (``instance/number``) and by conversation."""

    def __init__(self) -> None:
        self.seats: dict[str, Seat] = {}
        self.by_conversation: defaultdict[int, set[str]] = defaultdict(set)

    def put(self, key: str, seat: Seat | None) -> set[int]:
        """Seat ``key`` (or unseat it for None); answers the conversations whose presence may have changed."""
        old = self.seats.pop(key, None)
        touched: set[int] = set()
        if old is not None:
            touched.add(old.conversation_id)
            keys = self.by_conversation[old.conversation_id]
            keys.discard(key)
            if not keys:
                del self.by_conversation[old.conversation_id]
        if seat is not None:
            self.seats[key] = seat
            self.by_conversation[seat.conversation_id].add(key)
            touched.add(seat.conversation_id)
        return touched

    def drop_instance(self, instance: str) -> set[int]:
        prefix = instance + "/"
        touched: set[int] = set()
        for key in [k for k in self.seats if k.startswith(prefix)]:
            touched |= self.put(key, None)
        return touched

    def expire(self, now: float) -> set[int]:
        """Stop typing indicators that were not renewed and forget mirrored seats not refreshed."""
        touched: set[int] = set()
        for key, seat in list(self.seats.items()):
            if seat.expires is not None and seat.expires <= now:
                touched |= self.put(key, None)
            elif seat.expires is None and seat.typing_until is not None and seat.typing_until <= now:
                seat.typing_until = None
                touched.add(seat.conversation_id)
        return touched

    def users(self, conversation_id: int, *, typing: bool) -> Users:
        """The people in the conversation (or typing in it), one entry per person, in a stable order."""
        found: dict[int, str] = {}
        for key in self.by_conversation.get(conversation_id, ()):
            seat = self.seats[key]
            if not typing or seat.typing:
                found[seat.user_id] = seat.name
        return tuple(sorted(found.items()))


def seat_message(instance: str, key: str, seat: Seat | None) -> dict[str, Any]:
    """What the broker carries to other instances for one seat (``c`` None: the seat is gone)."""
    if seat is None:
        return {"i": instance, "k": key, "c": None}
    return {"i": instance, "k": key, "c": seat.conversation_id, "u": seat.user_id, "n": seat.name,
            "t": seat.typing}


def gone_message(instance: str) -> dict[str, Any]:
    """This instance is stopping: forget all of its seats."""
    return {"i": instance, "gone": True}


def apply_message(board: Board, message: dict[str, Any], now: float) -> set[int]:
    """Mirror another instance's presence message; malformed ones change nothing."""
    instance = message.get("i")
    if not isinstance(instance, str):
        return set()
    if message.get("gone") is True:
        return board.drop_instance(instance)
    key, conversation_id = message.get("k"), message.get("c")
    if not isinstance(key, str) or not key.startswith(instance + "/"):
        return set()
    if conversation_id is None:
        return board.put(key, None)
    user_id, name = message.get("u"), message.get("n")
    if not isinstance(conversation_id, int) or not isinstance(user_id, int) or not isinstance(name, str):
        return set()
    # The origin decides when typing stops and tells us; mirrored typing needs no clock of its own.
    typing_until = now + REMOTE_SECONDS if message.get("t") is True else None
    old = board.seats.get(key)
    if (old is not None and old.conversation_id == conversation_id and old.user_id == user_id
            and old.typing == (typing_until is not None)):
        old.expires = now + REMOTE_SECONDS  # a refresh: nothing visible changes
        old.typing_until = typing_until
        return set()
    return board.put(key, Seat(user_id, name, conversation_id, typing_until, now + REMOTE_SECONDS))


def dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


class Presence:
    """This process's side of presence: the seats of its own sockets and the mirrored ones of the
    other instances, who of its sockets gets told what, and what the other instances hear."""

    def __init__(self, broker: Broker, instance: str) -> None:
        self.broker = broker
        self.instance = instance
        self.board = Board()
        #: This process's sockets by the conversation they have open ...
        self._viewers: dict[int, set[Subscription]] = {}
        #: ... and by the conversations they follow from a list.
        self._watchers: dict[int, set[Subscription]] = {}

    def view(self, sub: Subscription, conversation_id: int | None, typing: bool = False) -> None:
        """The socket's tab shows ``conversation_id`` (None: nothing); ``typing`` renews or stops its indicator."""
        seat = self.board.seats.get(sub.key)
        if conversation_id is not None and seat is not None and seat.conversation_id == conversation_id:
            was_typing = seat.typing
            seat.typing_until = time.monotonic() + TYPING_SECONDS if typing else None
            if was_typing == typing:
                return
            self._show({conversation_id})
            self.broker.publish_presence(seat_message(self.instance, sub.key, seat))
            return
        if seat is None and conversation_id is None:
            return
        if sub.viewing is not None:
            viewers = self._viewers.get(sub.viewing)
            if viewers is not None:
                viewers.discard(sub)
                if not viewers:
                    del self._viewers[sub.viewing]
        sub.viewing = conversation_id
        sub.last_shown.clear()
        new: Seat | None = None
        if conversation_id is not None:
            new = Seat(sub.actor.id, sub.actor.name, conversation_id,
                       time.monotonic() + TYPING_SECONDS if typing else None)
            self._viewers.setdefault(conversation_id, set()).add(sub)
        self._show(self.board.put(sub.key, new))
        self.broker.publish_presence(seat_message(self.instance, sub.key, new))

    def watch(self, sub: Subscription, conversation_ids: Iterable[int]) -> None:
        """The socket follows who views and types in these conversations (replacing what it followed);
        it gets the presence of each newly followed one that has someone in it, then every change."""
        wanted = frozenset(conversation_ids)
        for conversation_id in sub.watching - wanted:
            watchers = self._watchers.get(conversation_id)
            if watchers is not None:
                watchers.discard(sub)
                if not watchers:
                    del self._watchers[conversation_id]
            for kind, _ in KINDS:
                sub.watch_shown.pop((kind, conversation_id), None)
        added = wanted - sub.watching
        sub.watching = wanted
        for conversation_id in sorted(added):
            self._watchers.setdefault(conversation_id, set()).add(sub)
            self._show_watchers(conversation_id, {sub})

    def forget(self, sub: Subscription) -> None:
        """The socket is closing: it views, types in and follows nothing any more."""
        self.view(sub, None)
        self.watch(sub, ())

    def heard(self, message: dict[str, Any]) -> None:
        """Another instance's presence message, through the broker."""
        if message.get("i") != self.instance:
            self._show(apply_message(self.board, message, time.monotonic()))

    def _show(self, conversation_ids: set[int]) -> None:
        """Send the presence of these conversations to this process's sockets that have them open."""
        for conversation_id in conversation_ids:
            watchers = self._watchers.get(conversation_id)
            if watchers:
                self._show_watchers(conversation_id, watchers)
            viewers = self._viewers.get(conversation_id)
            if not viewers:
                continue
            for kind, typing in KINDS:
                users = self.board.users(conversation_id, typing=typing)
                for sub in viewers:
                    others = [{"id": uid, "name": name} for uid, name in users if uid != sub.actor.id]
                    if sub.last_shown.get(kind) == others:
                        continue
                    sub.last_shown[kind] = others
                    sub.push(dumps({"type": kind, "conversation_id": conversation_id, "users": others}))

    def _show_watchers(self, conversation_id: int, watchers: set[Subscription]) -> None:
        for kind, typing in KINDS:
            users = self.board.users(conversation_id, typing=typing)
            for sub in watchers:
                others = [{"id": uid, "name": name} for uid, name in users if uid != sub.actor.id]
                # Nobody there is what a watcher assumes of a conversation it starts to follow.
                if sub.watch_shown.get((kind, conversation_id), []) == others:
                    continue
                sub.watch_shown[(kind, conversation_id)] = others
                sub.push(dumps({"type": kind, "conversation_id": conversation_id, "users": others}))

    async def run(self) -> None:
        """Housekeeping: typing that was not renewed stops, mirrored seats not refreshed go, and this
        instance's seats are republished now and then for the others."""
        last_refresh = time.monotonic()
        while True:
            await asyncio.sleep(1)
            now = time.monotonic()
            try:
                stopped = [key for key, seat in self.board.seats.items()
                           if seat.expires is None and seat.typing_until is not None and seat.typing_until <= now]
                self._show(self.board.expire(now))
                for key in stopped:
                    self.broker.publish_presence(seat_message(self.instance, key, self.board.seats[key]))
                if now - last_refresh >= REFRESH_SECONDS:
                    last_refresh = now
                    for key, seat in self.board.seats.items():
                        if seat.expires is None:
                            self.broker.publish_presence(seat_message(self.instance, key, seat))
            except Exception:
                log.exception("presence housekeeping failed; trying again")
