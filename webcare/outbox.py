"""The outbox: replies go out through their platform exactly once.

A reply is committed as ``queued`` before anything is sent. A worker takes it by moving it to
``sending`` under a lease and an attempt token, sends it, and records ``sent`` with the platform's id
only if its token still holds. Whenever an attempt may have reached the platform without us learning
the outcome (a timeout, a 5xx, a lost response, a worker that died while ``sending``), the reply is
marked ``outcome_unknown`` and the next attempt first asks the platform (``find_sent``) before posting
again. Failures that cannot heal are ``failed`` with the reason, visible in the conversation, and a
person can queue the reply again.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import random
import secrets
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from connectors.base import AuthExpired, ConnectorError, OutboundReply, Permanent, RateLimited, Transient
from webcare import metrics
from webcare.connections import ConnectorPool
from webcare.db import Database, Tx
from webcare.linking import close_linked
from webcare.models import Account, Conversation, Message, Reply, User

log = logging.getLogger(__name__)

R = Reply


@dataclass(frozen=True)
class Taken:
    reply_id: int
    token: str
    attempts: int
    outcome_unknown: bool


class Outbox:
    def __init__(self, db: Database, connectors: ConnectorPool, *, lease_seconds: float = 60.0,
                 max_attempts: int = 8, backoff_base: float = 2.0, backoff_cap: float = 300.0,
                 tick_seconds: float = 1.0) -> None:
        self.db = db
        self.connectors = connectors
        self.lease = dt.timedelta(seconds=lease_seconds)
        self.max_attempts = max_attempts
        self.backoff_base = backoff_base
        self.backoff_cap = backoff_cap
        self.tick_seconds = tick_seconds
        self._wake = asyncio.Event()
        db.add_commit_listener(lambda _seq: self._wake.set())

    async def run(self) -> None:
        """Deliver due replies until cancelled; woken by local commits, and every tick regardless."""
        while True:
            try:
                await self.drain()
            except Exception:
                log.exception("the outbox failed a round; trying again")
            self._wake.clear()
            try:
                await asyncio.wait_for(self._wake.wait(), self.tick_seconds)
            except TimeoutError:
                pass

    async def drain(self) -> int:
        """Take and deliver every reply that is due now; the number taken."""
        total = 0
        while True:
            taken = await self._take(limit=20)
            if not taken:
                return total
            total += len(taken)
            await asyncio.gather(*(self._deliver(t) for t in taken))

    async def _take(self, limit: int) -> list[Taken]:
        async with self.db.write() as tx:
            now = tx.now
            due = sa.or_(sa.and_(R.state == "queued", R.next_attempt_at <= now),
                         sa.and_(R.state == "sending", R.lease_expires_at <= now))
            ids = list(await tx.session.scalars(
                sa.select(R.id).where(due).order_by(R.next_attempt_at, R.id).limit(limit)))
            taken = []
            for reply_id in ids:
                token = secrets.token_hex(16)
                row = (await tx.session.execute(
                    sa.update(R).where(R.id == reply_id, due)
                    # A reply still 'sending' after its lease ran out was perhaps posted by a worker that died.
                    .values(state="sending", attempt_token=token, lease_expires_at=now + self.lease,
                            attempts=R.attempts + 1,
                            outcome_unknown=sa.or_(R.outcome_unknown, R.state == "sending"))
                    .returning(R.attempts, R.outcome_unknown)
                )).first()
                if row is not None:
                    taken.append(Taken(reply_id, token, row.attempts, row.outcome_unknown))
            return taken

    async def _deliver(self, taken: Taken) -> None:
        async with self.db.read() as s:
            row = (await s.execute(
                sa.select(R, Message.text, Account, User.name)
                .join(Message, Message.id == R.message_id).join(Account, Account.id == R.account_id)
                .join(User, User.id == R.user_id).where(R.id == taken.reply_id)
            )).one()
        reply, text, account, author_name = row
        out = OutboundReply(reply_id=reply.id, conversation_id=reply.conversation_id, text=text,
                            in_reply_to=reply.in_reply_to, idempotency_key=reply.idempotency_key,
                            author_name=author_name, thread_id=reply.thread_id)
        if not self.connectors.can_send(account):
            # An API channel without a callback URL: its replies wait until one is set.
            await self._requeue(taken, dt.timedelta(seconds=30), None, unknown=taken.outcome_unknown, count=False)
            return
        try:
            connector = self.connectors.get(account)
            if taken.outcome_unknown:
                found = await connector.find_sent(out)
                if found is not None:
                    await self._sent(taken, found)
                    return
            external_id = await connector.send_reply(out)
        except RateLimited as e:
            await self._requeue(taken, max(e.reset_at - _now(), dt.timedelta(seconds=1)), str(e),
                                unknown=taken.outcome_unknown, count=False)
        except Transient as e:
            # A timeout or 5xx while posting leaves the outcome open: ask the platform before the next try.
            if taken.attempts >= self.max_attempts:
                await self._failed(taken, f"gave up after {taken.attempts} attempts: {e}", unknown=True)
            else:
                await self._requeue(taken, self._backoff(taken.attempts), str(e), unknown=True)
        except AuthExpired as e:
            await self._failed(taken, f"the account's credentials need renewing: {e}", unknown=taken.outcome_unknown,
                               account_id=account.id)
        except Permanent as e:
            await self._failed(taken, str(e), unknown=taken.outcome_unknown)
        except ConnectorError as e:
            await self._requeue(taken, self._backoff(taken.attempts), str(e), unknown=True)
        except Exception as e:
            log.exception("delivering reply %s failed unexpectedly", taken.reply_id)
            await self._requeue(taken, self._backoff(taken.attempts), f"internal error: {type(e).__name__}",
                                unknown=True)
        else:
            await self._sent(taken, external_id)

    def _backoff(self, attempts: int) -> dt.timedelta:
        # Full jitter: spreads retries of many replies after one outage.
        ceiling = min(self.backoff_cap, self.backoff_base * 2 ** max(attempts - 1, 0))
        return dt.timedelta(seconds=random.uniform(ceiling / 2, ceiling))

    async def _sent(self, taken: Taken, external_id: str) -> None:
        async with self.db.write() as tx:
            reply = (await tx.session.scalars(
                sa.update(R).where(R.id == taken.reply_id, R.attempt_token == taken.token, R.state == "sending")
                .values(state="sent", external_id=external_id, sent_at=tx.now, lease_expires_at=None,
                        attempt_token=None, last_error=None, outcome_unknown=False)
                .returning(R)
            )).one_or_none()
            if reply is None:
                # Our lease ran out and another attempt holds the reply now; it will find this post.
                log.warning("reply %s was posted as %s after its lease ran out", taken.reply_id, external_id)
                return
            await tx.session.execute(sa.update(Message).where(Message.id == reply.message_id)
                                     .values(external_id=external_id))
            # Before _answered, which clears waiting_since: the first response is measured from it.
            await metrics.reply_sent(tx, reply.conversation_id, reply.user_id)
            status = await _answered(tx, reply.conversation_id)
            if status == "answered":
                await close_linked(tx, reply.conversation_id, reply.user_id)
            tx.emit("reply.sent", reply.conversation_id, reply.user_id, reply_id=reply.id,
                    message_id=reply.message_id, external_id=external_id, status=status)

    async def _requeue(self, taken: Taken, delay: dt.timedelta, error: str | None, *, unknown: bool,
                       count: bool = True) -> None:
        async with self.db.write() as tx:
            values: dict[str, Any] = {"state": "queued", "next_attempt_at": tx.now + delay, "lease_expires_at": None,
                                      "attempt_token": None, "outcome_unknown": unknown}
            if error is not None:
                values["last_error"] = error
            if not count:
                values["attempts"] = R.attempts - 1
            await tx.session.execute(sa.update(R).where(R.id == taken.reply_id, R.attempt_token == taken.token)
                                     .values(**values))

    async def _failed(self, taken: Taken, error: str, *, unknown: bool, account_id: int | None = None) -> None:
        async with self.db.write() as tx:
            reply = (await tx.session.scalars(
                sa.update(R).where(R.id == taken.reply_id, R.attempt_token == taken.token)
                .values(state="failed", last_error=error, lease_expires_at=None, attempt_token=None,
                        outcome_unknown=unknown)
                .returning(R)
            )).one_or_none()
            if reply is None:
                return
            if account_id is not None:
                await tx.session.execute(sa.update(Account).where(Account.id == account_id).values(
                    needs_reauth=True, last_error=error, last_error_at=tx.now))
            tx.emit("reply.failed", reply.conversation_id, reply.user_id, reply_id=reply.id,
                    message_id=reply.message_id, error=error)


async def _answered(tx: Tx, conversation_id: int) -> str:
    """A sent reply answers the conversation, unless it was closed meanwhile."""
    c = Conversation
    for _ in range(10):
        current = await tx.session.scalar(
            sa.select(c).where(c.id == conversation_id).execution_options(populate_existing=True))
        assert current is not None
        if current.status == "closed":
            return current.status
        done = (await tx.session.execute(
            sa.update(c).where(c.id == conversation_id, c.version == current.version)
            .values(status="answered", waiting_since=None, claimed_by_id=None, claimed_at=None, lease_expires_at=None,
                    assignee_user_id=None, assignee_department_id=None, version=current.version + 1,
                    updated_at=tx.now).returning(c.id)
        )).scalar_one_or_none()
        if done is not None:
            return "answered"
    raise RuntimeError(f"conversation {conversation_id} kept changing while its reply was recorded")


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)
