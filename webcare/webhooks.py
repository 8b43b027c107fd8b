"""Webhook deliveries made durable: stored before the platform gets its 200, processed after it, swept
when a crash or a failure left one undone.

``accept`` stores each account's verified entries as a ``WebhookDelivery`` in one short transaction;
its ``next_attempt_at`` is a lease for the process that answered. After the answer, ``process`` reads
the announced items back through the account's connector and stores them with ``store_page``, marking
the delivery done (and bringing the account's poll forward) in that same transaction. A process that
dies in between leaves the row undone; ``sweep``, run by the workers, takes every undone delivery whose
lease or backoff ran out and processes it again. That is at least once and in any order: the unique
(account, external id) of messages makes a repeat store nothing new. Instagram mentions come only this
way, so a platform that cannot be reached gets retried with backoff rather than the delivery dropped;
only what can never succeed (Meta says no for good) or keeps failing is given up, with the reason kept.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import random
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import sqlalchemy as sa

from connectors.base import ConnectorError, InboundMessage, Permanent, RateLimited
from webcare.connections import ConnectorPool
from webcare.db import Database, Tx
from webcare.ingest import store_page
from webcare.models import Account, WebhookDelivery

log = logging.getLogger(__name__)

D = WebhookDelivery
#: How soon after a delivery the account's reconciling poll runs.
POKE_DELAY = dt.timedelta(seconds=5)
#: Processed deliveries are kept this long (for looking into what arrived), then deleted by the sweep.
RETENTION = dt.timedelta(days=7)


class Deliveries:
    def __init__(self, db: Database, connectors: ConnectorPool, *, lease_seconds: float = 60.0,
                 backoff_base: float = 5.0, backoff_cap: float = 3600.0, max_attempts: int = 12) -> None:
        self.db = db
        self.connectors = connectors
        self.lease = dt.timedelta(seconds=lease_seconds)
        self.backoff_base = backoff_base
        self.backoff_cap = backoff_cap
        self.max_attempts = max_attempts

    async def accept(self, work: Mapping[int, Mapping[str, Any]]) -> list[int]:
        """Store each account's part of a verified delivery; the ids, for processing after the answer."""
        async with self.db.write() as tx:
            rows = [D(account_id=account_id, payload=dict(payload), received_at=tx.now,
                      next_attempt_at=tx.now + self.lease, attempts=1) for account_id, payload in work.items()]
            tx.session.add_all(rows)
            await tx.session.flush()
            return [row.id for row in rows]

    async def process_all(self, delivery_ids: list[int]) -> None:
        for delivery_id in delivery_ids:
            await self.process(delivery_id)

    async def process(self, delivery_id: int) -> bool:
        """Read the delivery's items back and store them; whether it is done now."""
        try:
            async with self.db.read() as s:
                delivery = await s.get(D, delivery_id)
                account = await s.get(Account, delivery.account_id) if delivery is not None else None
            if delivery is None or delivery.done:
                return True
            if account is None:
                return True  # the account is gone, and its deliveries with it
            try:
                messages = await self._read(account, delivery.payload)
            except Permanent as e:
                await self._give_up(delivery_id, f"the platform refused to show what it announced: {e}")
                return True
            except RateLimited as e:
                await self._retry(delivery_id, str(e), e.reset_at)
                return False
            except ConnectorError as e:
                await self._retry(delivery_id, str(e), None)
                return False
            await store_page(self.db, account.id, messages, _done(delivery_id, account.id))
            return True
        except Exception as e:
            log.exception("processing webhook delivery %s failed", delivery_id)
            await self._retry(delivery_id, f"internal error: {type(e).__name__}", None)
            return False

    async def _read(self, account: Account, payload: Mapping[str, Any]) -> list[InboundMessage]:
        reader: Callable[[list[dict[str, Any]]], Awaitable[list[InboundMessage]]] | None = getattr(
            self.connectors.get(account), "from_webhook", None)
        entries = [e for e in payload.get("entry") or [] if isinstance(e, dict)]
        return await reader(entries) if reader is not None and entries else []

    async def sweep(self, limit: int = 50) -> int:
        """Process every delivery left undone whose lease or backoff ran out, oldest first; how many."""
        async with self.db.write() as tx:
            due = sa.and_(D.done.is_(False), D.next_attempt_at <= tx.now)
            ids = list(await tx.session.scalars(sa.select(D.id).where(due).order_by(D.id).limit(limit)))
            taken = list(await tx.session.scalars(
                sa.update(D).where(D.id.in_(ids), due)
                .values(next_attempt_at=tx.now + self.lease, attempts=D.attempts + 1).returning(D.id))) if ids else []
            await tx.session.execute(sa.delete(D).where(D.done.is_(True), D.done_at < tx.now - RETENTION))
        for delivery_id in sorted(taken):
            await self.process(delivery_id)
        return len(taken)

    async def run(self, every: float) -> None:
        """Sweep until cancelled."""
        while True:
            try:
                while await self.sweep() > 0:
                    pass
            except Exception:
                log.exception("the webhook sweep failed; trying again later")
            await asyncio.sleep(every)

    async def _retry(self, delivery_id: int, error: str, at: dt.datetime | None) -> None:
        async with self.db.write() as tx:
            attempts = await tx.session.scalar(sa.select(D.attempts).where(D.id == delivery_id, D.done.is_(False)))
            if attempts is None:
                return
            if attempts >= self.max_attempts:
                await self._give_up_in(tx, delivery_id, f"gave up after {attempts} attempts: {error}")
                return
            ceiling = min(self.backoff_cap, self.backoff_base * 2 ** max(attempts - 1, 0))
            when = at if at is not None else tx.now + dt.timedelta(seconds=random.uniform(ceiling / 2, ceiling))
            await tx.session.execute(sa.update(D).where(D.id == delivery_id, D.done.is_(False))
                                     .values(next_attempt_at=when, last_error=error[:2000]))
        log.warning("webhook delivery %s: %s; trying again later", delivery_id, error)

    async def _give_up(self, delivery_id: int, error: str) -> None:
        async with self.db.write() as tx:
            await self._give_up_in(tx, delivery_id, error)

    async def _give_up_in(self, tx: Tx, delivery_id: int, error: str) -> None:
        log.warning("webhook delivery %s given up: %s", delivery_id, error)
        await tx.session.execute(sa.update(D).where(D.id == delivery_id, D.done.is_(False))
                                 .values(done=True, done_at=tx.now, last_error=error[:2000]))


def _done(delivery_id: int, account_id: int) -> Callable[[Tx], Awaitable[None]]:
    """Marks the delivery done and brings the account's poll forward, with the messages it brought."""
    async def apply(tx: Tx) -> None:
        soon = tx.now + POKE_DELAY
        await tx.session.execute(sa.update(Account).where(Account.id == account_id, Account.next_poll_at > soon)
                                 .values(next_poll_at=soon))
        await tx.session.execute(sa.update(D).where(D.id == delivery_id)
                                 .values(done=True, done_at=tx.now, last_error=None))
    return apply
