"""The broker: how a hub hears that events committed, and what other hubs' sockets are doing.

A broker carries two things between the hubs of the app instances that share one database:

- *commit hints*: "events up to this ``seq`` have committed". Only the number travels; the hub
  reads the events themselves from the event log, which is the truth. A hint that gets lost costs
  latency (the hub also polls), never an event.
- *presence*: the ephemeral who-is-viewing and who-is-typing of one socket, as a small JSON
  object. Presence is not stored anywhere; a hub forgets remote presence that is not refreshed.

Two implementations: :class:`InProcessBroker` here for a single instance (the SQLite default), and
:class:`webcare.pgbroker.PgBroker` (LISTEN/NOTIFY) when several instances share one PostgreSQL.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

from webcare.settings import Settings

#: Called with the last committed ``seq``, or None for "something may have committed: look".
EventsCallback = Callable[[int | None], None]
#: Called with a presence message another instance published.
PresenceCallback = Callable[[dict[str, Any]], None]


class Broker(Protocol):
    async def start(self, on_events: EventsCallback, on_presence: PresenceCallback) -> None:
        """Begin delivering hints and other instances' presence to the callbacks."""
        ...

    def published(self, last_seq: int) -> None:
        """Events up to ``last_seq`` committed in this process (a :class:`Database` commit listener).

        Never blocks and never fails the caller's write: it runs after the commit.
        """
        ...

    def publish_presence(self, message: dict[str, Any]) -> None:
        """Tell the other instances about a change in this instance's presence."""
        ...

    async def stop(self) -> None: ...


class InProcessBroker:
    """One instance: a commit wakes this process's hub directly; there is nobody else to tell."""

    def __init__(self) -> None:
        self._on_events: EventsCallback | None = None

    async def start(self, on_events: EventsCallback, on_presence: PresenceCallback) -> None:
        self._on_events = on_events

    def published(self, last_seq: int) -> None:
        if self._on_events is not None:
            self._on_events(last_seq)

    def publish_presence(self, message: dict[str, Any]) -> None:
        pass

    async def stop(self) -> None:
        self._on_events = None


def broker_for(settings: Settings) -> Broker:
    """The database URL chooses: SQLite gets the in-process broker, PostgreSQL LISTEN/NOTIFY."""
    if settings.is_sqlite:
        return InProcessBroker()
    from webcare.pgbroker import PgBroker

    return PgBroker(settings.database_url, poll_seconds=settings.live_poll_seconds)
