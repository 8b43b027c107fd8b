"""Presence: who has which conversation open, and who is typing a reply in it. Ephemeral, never stored.

Each live socket has at most one *seat*: the conversation its tab shows and whether its person is
typing. A hub keeps the seats of its own sockets and mirrors the seats other instances publish
through the broker; a mirrored seat that is not refreshed in time goes away, so an instance that
dies without a word leaves no ghosts behind for long.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import Any

#: A typing indicator the client does not renew within this many seconds stops by itself.
TYPING_SECONDS = 8.0
#: Each hub republishes its seats this often ...
REFRESH_SECONDS = 10.0
#: ... and forgets another instance's seat not heard of for this long.
REMOTE_SECONDS = 35.0


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
