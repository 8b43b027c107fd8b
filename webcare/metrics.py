"""Response-time metrics, kept at write time: each change to a conversation updates its
:class:`~webcare.models.ConversationMetrics` row and the pre-aggregated counts in the same transaction.

What a row *contributes* to the counts is a pure function of the row (:func:`contributions`): its first
response and resolution as log-scale buckets, its SLA outcomes as hit or breach, each at the moment it
became known (a hit when the reply went out, a breach when the deadline passed). A change computes the
contributions before and after and adds the difference, so the counts always equal what the rows say,
whichever order changes come in; :func:`rebuild_counts` recomputes them from the rows alone.

Buckets: bucket 0 holds durations under a second; bucket ``b >= 1`` holds ``[GAMMA**(b-1), GAMMA**b)``
seconds and stands for its geometric middle, ``GAMMA**(b-1/2)``. Every duration of a second or more is
thus represented within a factor ``sqrt(GAMMA)``: a relative error of at most 1.98 % (under a second,
at most half a second), and the same bound holds for a percentile interpolated between two of them.
"""

from __future__ import annotations

import datetime as dt
import math
from collections import Counter
from collections.abc import Iterable, Sequence
from typing import Any, cast
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from webcare import sla
from webcare.conversations import iso
from webcare.db import Database, Tx
from webcare.metrics_models import ConversationMetrics, MetricCount
from webcare.models import Account, Conversation

M = ConversationMetrics
COUNTS = cast(sa.Table, MetricCount.__table__)
COLUMNS = ("dim", "grain", "period", "key", "metric", "bucket", "n")

GAMMA = 1.04
LOG_GAMMA = math.log(GAMMA)
#: The largest error of a duration of a second or more as its bucket reports it.
RELATIVE_ERROR = math.sqrt(GAMMA) - 1

FIRST_RESPONSE, RESOLUTION, FIRST_RESPONSE_SLA, RESOLUTION_SLA = 1, 2, 3, 4
BREACH, HIT = 0, 1
DIMS = ("a", "d", "u")
GRAINS = ("d", "m", "y", "t")
#: The period of the all-time grain.
ALL_TIME = dt.date(1970, 1, 1)

#: (metric, bucket, when, user key)
Contribution = tuple[int, int, dt.datetime, int]
CountKey = tuple[str, str, dt.date, int, int, int]


def bucket(seconds: float) -> int:
    if seconds < 1:
        return 0
    return math.floor(math.log(seconds) / LOG_GAMMA) + 1


def representative(b: int) -> float:
    """The duration a bucket stands for."""
    return 0.5 if b == 0 else GAMMA ** (b - 0.5)


def contributions(row: Any) -> list[Contribution]:
    """What one metrics row (an ORM object or a row with its columns) adds to the counts."""
    user = row.first_responder_id or 0
    out: list[Contribution] = []
    if row.first_response_at is not None and row.first_response_seconds is not None:
        out.append((FIRST_RESPONSE, bucket(row.first_response_seconds), row.first_response_at, user))
    if row.fr_sla == "hit" and row.first_response_at is not None:
        out.append((FIRST_RESPONSE_SLA, HIT, row.first_response_at, user))
    elif row.fr_sla == "breached" and row.fr_due_at is not None:
        out.append((FIRST_RESPONSE_SLA, BREACH, row.fr_due_at, user))
    if row.resolved_at is not None and row.resolution_seconds is not None:
        out.append((RESOLUTION, bucket(row.resolution_seconds), row.resolved_at, user))
    if row.res_sla == "hit" and row.resolved_at is not None:
        out.append((RESOLUTION_SLA, HIT, row.resolved_at, user))
    elif row.res_sla == "breached" and row.res_due_at is not None:
        out.append((RESOLUTION_SLA, BREACH, row.res_due_at, user))
    return out


def periods(day: dt.date) -> tuple[tuple[str, dt.date], ...]:
    """The periods a local day counts in: itself, its month, its year, and all time (so that the all-time
    figures read one row per key and bucket however many years there are)."""
    return ("d", day), ("m", day.replace(day=1)), ("y", day.replace(month=1, day=1)), ("t", ALL_TIME)


def count_keys(row: Any, contribution: Contribution, tz: ZoneInfo) -> list[CountKey]:
    metric, b, at, user = contribution
    day = at.astimezone(tz).date()
    keys = (("a", row.account_id), ("d", row.department_id), ("u", user))
    return [(dim, grain, period, key, metric, b) for grain, period in periods(day) for dim, key in keys]


def tally(rows: Iterable[Any], tz: ZoneInfo, sign: int = 1, into: Counter[CountKey] | None = None,
          ) -> Counter[CountKey]:
    counts: Counter[CountKey] = Counter() if into is None else into
    for row in rows:
        for c in contributions(row):
            for k in count_keys(row, c, tz):
                counts[k] += sign
    return counts


class Snapshot:
    """The columns :func:`contributions` reads, copied before a row changes."""

    __slots__ = (
        "account_id",
        "department_id",
        "first_responder_id",
        "first_response_at",
        "first_response_seconds",
        "fr_due_at",
        "fr_sla",
        "res_due_at",
        "res_sla",
        "resolution_seconds",
        "resolved_at",
    )

    def __init__(self, row: Any) -> None:
        for name in self.__slots__:
            setattr(self, name, getattr(row, name))


async def add_counts(session: AsyncSession, counts: Counter[CountKey]) -> None:
    """Add ``counts`` to the table in one statement; rows in key order, so concurrent writers never deadlock."""
    rows = [{"dim": k[0], "grain": k[1], "period": k[2], "key": k[3], "metric": k[4], "bucket": k[5], "n": n}
            for k, n in sorted(counts.items()) if n]
    if not rows:
        return
    insert = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
    stmt = insert(COUNTS)
    stmt = stmt.on_conflict_do_update(index_elements=[c.name for c in COUNTS.primary_key.columns],
                                      set_={"n": COUNTS.c.n + stmt.excluded.n})
    await session.execute(stmt, rows)


async def locked(tx: Tx, conversation_id: int) -> ConversationMetrics | None:
    """The conversation's metrics row, locked until commit (SQLite has one writer at a time anyway)."""
    return cast(ConversationMetrics | None, await tx.session.scalar(
        sa.select(M).where(M.conversation_id == conversation_id).with_for_update()
        .execution_options(populate_existing=True)))


async def _changed(tx: Tx, row: ConversationMetrics, before: Snapshot) -> None:
    tz = ZoneInfo(tx.zone)
    counts = tally([row], tz)
    tally([before], tz, -1, counts)
    await tx.session.flush()
    await add_counts(tx.session, counts)


def _breached(tx: Tx, row: ConversationMetrics, target: str) -> None:
    due = row.fr_due_at if target == "first_response" else row.res_due_at
    tx.emit("conversation.sla_breached", row.conversation_id, None, target=target,
            target_id=row.fr_target_id if target == "first_response" else row.res_target_id,
            due_at=iso(due), account_id=row.account_id,
            department_id=row.department_id)


# ---------------------------------------------------------------------------------------------- the hooks


async def started(tx: Tx, account_id: int, conversations: Sequence[tuple[int, dt.datetime]], *,
                  department_id: int | None = None) -> None:
    """New conversations ``(id, the person's post)`` of one account (of ``department_id``, when the caller
    knows it): their rows, with SLA deadlines."""
    if not conversations:
        return
    if department_id is None:
        department_id = await tx.session.scalar(sa.select(Account.department_id).where(Account.id == account_id))
    assert department_id is not None
    rows = await start_rows(tx, account_id, department_id, conversations)
    await tx.session.execute(sa.insert(cast(sa.Table, M.__table__)), rows)


async def start_rows(tx: Tx, account_id: int, department_id: int,
                     conversations: Sequence[tuple[int | None, dt.datetime]]) -> list[dict[str, Any]]:
    """The metrics rows of new conversations, for a caller that inserts them itself (``conversation_id``
    may be None there, for ids the same statement gives)."""
    plan = await sla.plan_for(tx.session, account_id, department_id, tx.zone)
    rows = []
    for conversation_id, at in conversations:
        fr_target, fr_due = plan.due("first_response", at)
        res_target, res_due = plan.due("resolution", at)
        rows.append({"conversation_id": conversation_id, "account_id": account_id, "department_id": department_id,
                     "started_at": at, "replies": 0, "escalated": False, "reopened": 0,
                     "fr_target_id": fr_target, "fr_due_at": fr_due, "res_target_id": res_target,
                     "res_due_at": res_due})
    return rows


async def reply_sent(tx: Tx, conversation_id: int, user_id: int) -> None:
    """A reply went out: the first one is the first response, measured from the oldest message waiting.

    Call it before the conversation is marked answered (which clears ``waiting_since``)."""
    # The conversation's row first, then the metrics row: the order every other change takes them in
    # (close, reopen, a new message), so a reply recorded while someone closes cannot deadlock.
    waiting = await tx.session.scalar(sa.select(Conversation.waiting_since)
                                      .where(Conversation.id == conversation_id).with_for_update())
    row = await locked(tx, conversation_id)
    if row is None:
        return
    before = Snapshot(row)
    row.replies += 1
    if row.first_response_at is None:
        since = waiting or row.started_at
        row.first_response_at = tx.now
        row.first_response_seconds = max(0.0, (tx.now - since).total_seconds())
        row.first_responder_id = user_id
        if row.fr_sla is None and row.fr_due_at is not None:
            row.fr_sla = "hit" if tx.now <= row.fr_due_at else "breached"
            if row.fr_sla == "breached":
                _breached(tx, row, "first_response")
    await _changed(tx, row, before)


async def closed(tx: Tx, conversation_id: int, reason: str) -> None:
    """Closed: resolved (unless spam, which counts for nothing), and the targets decided."""
    row = await locked(tx, conversation_id)
    if row is None:
        return
    before = Snapshot(row)
    now = tx.now
    if reason == "spam":
        row.fr_sla = row.fr_sla or ("void" if row.fr_due_at is not None else None)
        row.res_sla = row.res_sla or ("void" if row.res_due_at is not None else None)
    else:
        row.resolved_at = now
        row.resolution_seconds = max(0.0, (now - row.started_at).total_seconds())
        if row.fr_sla is None and row.fr_due_at is not None and row.first_response_at is None:
            # Closed without a reply: no first response is owed any more, unless it was owed already.
            row.fr_sla = "breached" if now > row.fr_due_at else "void"
            if row.fr_sla == "breached":
                _breached(tx, row, "first_response")
        if row.res_sla is None and row.res_due_at is not None:
            row.res_sla = "hit" if now <= row.res_due_at else "breached"
            if row.res_sla == "breached":
                _breached(tx, row, "resolution")
    await _changed(tx, row, before)


async def reopened(tx: Tx, conversation_id: int, at: dt.datetime) -> None:
    """Reopened at ``at``: it is not resolved any more; a first response owed again runs from ``at``."""
    row = await locked(tx, conversation_id)
    if row is None:
        return
    before = Snapshot(row)
    row.reopened += 1
    row.resolved_at = None
    row.resolution_seconds = None
    if row.res_sla in ("hit", "void"):
        row.res_sla = None
    if row.fr_sla == "void" and row.first_response_at is None:
        plan = await sla.plan_for(tx.session, row.account_id, row.department_id, tx.zone)
        row.fr_target_id, row.fr_due_at = plan.due("first_response", at)
        row.fr_sla = None
    await _changed(tx, row, before)


async def escalated(tx: Tx, conversation_id: int) -> None:
    await tx.session.execute(sa.update(M).where(M.conversation_id == conversation_id).values(escalated=True))


async def settle_overdue(db: Database, *, limit: int = 500) -> int:
    """Mark every target whose deadline passed undecided as breached, with one event each; the number.

    Several processes may run this at once: rows are taken with SKIP LOCKED and changed only while
    undecided, so each conversation and target breaches once."""
    async with db.write() as tx:
        now = tx.now
        breached: list[tuple[ConversationMetrics, Snapshot]] = []
        seen: dict[int, ConversationMetrics] = {}
        for target, sla_col, due_col, done_col in (("first_response", M.fr_sla, M.fr_due_at, M.first_response_at),
                                                   ("resolution", M.res_sla, M.res_due_at, M.resolved_at)):
            rows = list(await tx.session.scalars(
                sa.select(M).where(sla_col.is_(None), due_col <= now, done_col.is_(None))
                .order_by(due_col).limit(limit).with_for_update(skip_locked=True)))
            for row in rows:
                if row.conversation_id not in seen:
                    seen[row.conversation_id] = row
                    breached.append((row, Snapshot(row)))
                if target == "first_response":
                    row.fr_sla = "breached"
                else:
                    row.res_sla = "breached"
                _breached(tx, row, target)
        if not breached:
            return 0
        tz = ZoneInfo(tx.zone)
        counts = tally([row for row, _ in breached], tz)
        tally([before for _, before in breached], tz, -1, counts)
        await tx.session.flush()
        await add_counts(tx.session, counts)
        return sum(1 for e in tx.events if e.type == "conversation.sla_breached")


async def rebuild_counts(db: Database, *, batch: int = 5000) -> int:
    """Recompute every count from the metrics rows (after a change of the organisation's time zone, or to
    check them); the number of rows read."""
    tz = ZoneInfo(db.zone)
    columns = [getattr(M, name) for name in Snapshot.__slots__] + [M.conversation_id]
    counts: Counter[CountKey] = Counter()
    seen = 0
    async with db.read() as s:
        after = 0
        while True:
            rows = (await s.execute(sa.select(*columns).where(M.conversation_id > after)
                                    .order_by(M.conversation_id).limit(batch))).all()
            if not rows:
                break
            tally(rows, tz, into=counts)
            seen += len(rows)
            after = rows[-1].conversation_id
    async with db.write() as tx:
        await tx.session.execute(sa.delete(MetricCount))
        records = [(*k, n) for k, n in sorted(counts.items()) if n]
        if tx.session.get_bind().dialect.name == "postgresql":
            # COPY: millions of rows in seconds, where inserts would take minutes.
            raw = await (await tx.session.connection()).get_raw_connection()
            await raw.driver_connection.copy_records_to_table(  # type: ignore[union-attr]
                "metric_counts", records=records, columns=list(COLUMNS))
        else:
            for i in range(0, len(records), batch):
                await tx.session.execute(sa.insert(COUNTS), [dict(zip(COLUMNS, r, strict=True))
                                                             for r in records[i:i + batch]])
    return seen
