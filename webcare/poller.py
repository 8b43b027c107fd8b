"""Polling accounts: each active account is fetched on its schedule by one worker at a time.

A worker takes an account by a conditional UPDATE of its poll lease; a worker that dies lets the
lease run out and another takes over. Each page of messages is stored in one transaction together
with the cursor that follows it, so a crash repeats a fetch and the unique constraint on messages
absorbs the repeat. Errors set the account's next poll (the platform's reset time, or a backoff)
and its health, so one account's trouble never holds up another's.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import random
from typing import Any

import sqlalchemy as sa

from connectors.base import AuthExpired, Page, Permanent, RateLimited, Transient
from webcare.connections import POLLED, ConnectorPool
from webcare.db import Database
from webcare.ingest import store_page
from webcare.models import Account

log = logging.getLogger(__name__)

A = Account
# Built once: it runs with every page stored.
_KEEP_LEASE = (sa.update(A).where(A.id == sa.bindparam("account_id"), A.poll_owner == sa.bindparam("owner"))
               .values(cursor=sa.bindparam("cursor", type_=A.cursor.type),
                       poll_lease_expires_at=sa.bindparam("lease_until", type_=A.poll_lease_expires_at.type),
                       last_polled_at=sa.bindparam("now", type_=A.last_polled_at.type))
               .returning(A.id))
DEFAULT_POLL_INTERVAL = 60.0


class LostLease(Exception):
    """Another worker holds the account now; what this one fetched is dropped (it will be fetched again)."""


class Poller:
    def __init__(self, db: Database, connectors: ConnectorPool, worker_id: str, *, lease_seconds: float = 120.0,
                 max_pages: int = 20, backoff_base: float = 5.0, backoff_cap: float = 900.0,
                 tick_seconds: float = 1.0, concurrency: int = 8) -> None:
        self.db = db
        self.connectors = connectors
        self.worker_id = worker_id
        self.lease = dt.timedelta(seconds=lease_seconds)
        self.max_pages = max_pages
        self.backoff_base = backoff_base
        self.backoff_cap = backoff_cap
        self.tick_seconds = tick_seconds
        self.concurrency = concurrency
        self._slots = asyncio.Semaphore(concurrency)
        self._running: dict[int, asyncio.Task[None]] = {}

    async def run(self) -> None:
        """Poll due accounts until cancelled, each in its own task so a slow one delays no other."""
        try:
            while True:
                try:
                    # No more than it can poll at once: accounts taken only to wait for a slot would be
                    # kept from the other workers, which may have slots free.
                    free = self.concurrency - len(self._running)
                    for account_id in await self._take_due(free) if free > 0 else []:
                        self._running[account_id] = asyncio.create_task(self._poll_guarded(account_id))
                except Exception:
                    log.exception("looking for accounts to poll failed; trying again")
                await asyncio.sleep(self.tick_seconds)
        finally:
            for task in self._running.values():
                task.cancel()
            await asyncio.gather(*self._running.values(), return_exceptions=True)

    async def poll_due(self) -> int:
        """Poll every account that is due now and wait for them; the number polled (for tests and tools)."""
        ids = await self._take_due()
        await asyncio.gather(*(self._poll_guarded(i) for i in ids))
        return len(ids)

    async def _take_due(self, limit: int = 50) -> list[int]:
        async with self.db.write() as tx:
            now = tx.now
            free = sa.or_(A.poll_owner.is_(None), A.poll_lease_expires_at <= now)
            due = sa.and_(A.active.is_(True), A.needs_reauth.is_(False), A.platform.in_(POLLED),
                          sa.or_(A.next_poll_at.is_(None), A.next_poll_at <= now), free,
                          A.id.not_in(list(self._running)) if self._running else sa.true())
            candidates = list(await tx.session.scalars(sa.select(A.id).where(due).order_by(A.next_poll_at, A.id)
                                                       .limit(limit)))
            taken = []
            for account_id in candidates:
                won = (await tx.session.execute(
                    sa.update(A).where(A.id == account_id, due)
                    .values(poll_owner=self.worker_id, poll_lease_expires_at=now + self.lease).returning(A.id)
                )).scalar_one_or_none()
                if won is not None:
                    taken.append(account_id)
            return taken

    async def _poll_guarded(self, account_id: int) -> None:
        try:
            async with self._slots:
                await self.poll(account_id)
        except Exception:
            log.exception("polling account %s failed unexpectedly", account_id)
            await self._finish(account_id, error="internal error while polling", delay=self._backoff(1), failed=True)
        finally:
            self._running.pop(account_id, None)

    async def poll(self, account_id: int) -> None:
        """Fetch pages of one account this worker holds the lease of, storing each with its cursor."""
        async with self.db.read() as s:
            account = await s.get(A, account_id)
        if account is None or account.poll_owner != self.worker_id:
            return
        interval = float(account.settings.get("poll_interval") or DEFAULT_POLL_INTERVAL)
        cursor = account.cursor
        fetching: asyncio.Task[Page] | None = None
        try:
            connector = self.connectors.get(account)
            fetching = asyncio.create_task(connector.fetch(cursor))
            for n in range(self.max_pages):
                page: Page = await fetching
                # The next page is asked for while this one is stored: its cursor is known already, and a
                # page fetched but never stored is only fetched again (the cursor moves with the store).
                if page.has_more and n + 1 < self.max_pages:
                    fetching = asyncio.create_task(connector.fetch(page.cursor))
                await store_page(self.db, account_id, page.messages, self._keep_lease(account_id, page.cursor))
                cursor = page.cursor
                if not page.has_more:
                    break
        except LostLease:
            log.info("account %s was taken over by another worker", account_id)
            return
        except RateLimited as e:
            await self._finish(account_id, error=str(e), delay=max(e.reset_at - _now(), dt.timedelta(seconds=1)),
                               failed=False)
        except Transient as e:
            await self._finish(account_id, error=str(e), delay=None, failed=True)
        except AuthExpired as e:
            await self._finish(account_id, error=f"the credentials need renewing: {e}", delay=None, failed=True,
                               reauth=True)
        except Permanent as e:
            await self._finish(account_id, error=str(e), delay=dt.timedelta(seconds=self.backoff_cap), failed=True)
        else:
            await self._finish(account_id, error=None, delay=dt.timedelta(seconds=interval), failed=False)
        finally:
            if fetching is not None:  # a page asked for ahead but not wanted (a failed store, a lost lease)
                fetching.cancel()  # nothing, when it was awaited already
                await asyncio.gather(fetching, return_exceptions=True)

    def _keep_lease(self, account_id: int, cursor: dict[str, Any]) -> Any:
        """The statement that stores the cursor with a page, only while this worker holds the lease."""
        async def apply(tx: Any) -> None:
            done = (await tx.session.execute(_KEEP_LEASE, {
                "account_id": account_id, "owner": self.worker_id, "cursor": cursor,
                "lease_until": tx.now + self.lease, "now": tx.now})).scalar_one_or_none()
            if done is None:
                raise LostLease
        return apply

    def _backoff(self, failures: int) -> dt.timedelta:
        ceiling = min(self.backoff_cap, self.backoff_base * 2 ** max(failures - 1, 0))
        return dt.timedelta(seconds=random.uniform(ceiling / 2, ceiling))

    async def _finish(self, account_id: int, *, error: str | None, delay: dt.timedelta | None, failed: bool,
                      reauth: bool = False) -> None:
        async with self.db.write() as tx:
            account = await tx.session.get(A, account_id)
            if account is None or account.poll_owner != self.worker_id:
                return
            failures = account.poll_failures + 1 if failed else 0
            values: dict[str, Any] = {
                "poll_owner": None, "poll_lease_expires_at": None, "poll_failures": failures,
                "next_poll_at": tx.now + (delay if delay is not None else self._backoff(failures)),
            }
            if error is not None:
                values.update(last_error=error, last_error_at=tx.now)
                log.warning("polling account %s: %s", account_id, error)
            if reauth:
                values["needs_reauth"] = True
            await tx.session.execute(sa.update(A).where(A.id == account_id, A.poll_owner == self.worker_id)
                                     .values(**values))


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)
