"""The background work of one process: polling accounts, delivering replies, expiring claims.

``webcare serve`` runs it beside the HTTP app unless ``--no-workers``; ``webcare worker`` runs it alone.
Several processes may run it against one database: leases keep each account with one poller and each
reply with one sender at a time.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import socket

from webcare.broker import broker_for
from webcare.db import Database
from webcare.inbox import Inbox
from webcare.metrics import settle_overdue
from webcare.outbox import Outbox
from webcare.poller import Poller
from webcare.services import Services

log = logging.getLogger(__name__)


def worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"


class Workers:
    def __init__(self, services: Services, *, connectors: bool = True) -> None:
        self.services = services
        settings = services.settings
        self.poller = Poller(services.db, services.connectors, worker_id(), lease_seconds=settings.poll_lease_seconds)
        self.outbox = Outbox(services.db, services.connectors, lease_seconds=settings.send_lease_seconds)
        self.with_connectors = connectors
        self._tasks: list[asyncio.Task[None]] = []

    def start(self) -> None:
        self._tasks.append(asyncio.create_task(sweep_leases(self.services.inbox, self.services.settings
                                                            .lease_sweep_seconds), name="lease-sweeper"))
        self._tasks.append(asyncio.create_task(sweep_sla(self.services.db, self.services.settings.sla_sweep_seconds),
                                               name="sla-sweeper"))
        if self.with_connectors:
            self._tasks.append(asyncio.create_task(self.poller.run(), name="poller"))
            self._tasks.append(asyncio.create_task(self.outbox.run(), name="outbox"))
            self._tasks.append(asyncio.create_task(
                self.services.deliveries.run(self.services.settings.webhook_sweep_seconds), name="webhook-sweeper"))

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()


async def sweep_leases(inbox: Inbox, every: float) -> None:
    """Claims are leases: one that saw no activity in time goes back to the queue by itself."""
    while True:
        await asyncio.sleep(every)
        try:
            expired = await inbox.expire_leases()
            if expired:
                log.info("returned %d expired claims to the queue", expired)
        except Exception:
            log.exception("lease sweep failed; trying again later")


async def sweep_sla(db: Database, every: float) -> None:
    """Conversations that crossed an SLA target get their breach, and the live stream its warning."""
    while True:
        await asyncio.sleep(every)
        try:
            for _ in range(100):  # a big backlog of breaches goes out in rounds of a few hundred
                if not await settle_overdue(db):
                    break
        except Exception:
            log.exception("SLA sweep failed; trying again later")


async def run_forever(services: Services) -> None:
    """``webcare worker``: the workers alone, until SIGTERM or SIGINT."""
    import signal

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    # What this process commits is announced like the app's own commits, so browsers connected to any
    # instance see it at once rather than at their hub's next poll (PostgreSQL; SQLite has no channel).
    broker = broker_for(services.settings)
    await broker.start(lambda _seq: None, lambda _presence: None)
    services.db.add_commit_listener(broker.published)
    workers = Workers(services)
    workers.start()
    log.info("worker running")
    try:
        await stop.wait()
    finally:
        await workers.stop()
        await broker.stop()
        await services.connectors.aclose()
        await services.db.dispose()
