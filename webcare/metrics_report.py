"""Reading the response-time metrics: counts, medians and p90s for any range, overall and per group,
and per day.

A range ``[from, to)`` is cut into whole local days, months and years, read from the pre-aggregated
counts (a year of data is a handful of rows per key and bucket), plus the partial days at either end,
read from the metrics rows themselves. Both kinds land in the same buckets, so the figures are those
of the exact rows in the range, up to the buckets' resolution (see :mod:`webcare.metrics`).
"""

from __future__ import annotations

import datetime as dt
import math
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from webcare.db import Database
from webcare.errors import BadRequest
from webcare.metrics import (
    ALL_TIME,
    BREACH,
    FIRST_RESPONSE,
    FIRST_RESPONSE_SLA,
    HIT,
    LOG_GAMMA,
    RESOLUTION,
    RESOLUTION_SLA,
    Snapshot,
    contributions,
    representative,
)
from webcare.metrics_models import ConversationMetrics, MetricCount
from webcare.models import Account, Department, User

M = ConversationMetrics
MC = MetricCount
GROUPS = {"account": "a", "department": "d", "user": "u"}
EARLIEST = dt.date(1970, 1, 1)
LATEST = dt.date(9999, 1, 1)
MAX_SERIES_DAYS = 400


def percentile(counts: Mapping[int, int], p: float) -> float | None:
    """``percentile_cont(p)`` of the durations the buckets stand for: the same interpolation PostgreSQL does."""
    total = sum(counts.values())
    if total <= 0:
        return None
    pos = p * (total - 1)
    lo, hi = math.floor(pos), math.ceil(pos)
    at_lo = at_hi = None
    seen = 0
    for b in sorted(counts):
        n = counts[b]
        if n <= 0:
            continue
        if at_lo is None and lo < seen + n:
            at_lo = representative(b)
        if hi < seen + n:
            at_hi = representative(b)
            break
        seen += n
    assert at_lo is not None and at_hi is not None
    return at_lo + (at_hi - at_lo) * (pos - lo)


@dataclass
class Tally:
    """One group's buckets and SLA outcomes."""

    buckets: dict[int, Counter[int]] = field(default_factory=lambda: defaultdict(Counter))

    def add(self, metric: int, b: int, n: int) -> None:
        self.buckets[metric][b] += n

    def merge(self, other: Tally) -> None:
        for metric, counts in other.buckets.items():
            self.buckets[metric].update(counts)

    def stats(self, metric: int) -> dict[str, Any]:
        counts = self.buckets.get(metric, Counter())
        return {"count": sum(counts.values()), "median": _round(percentile(counts, 0.5)),
                "p90": _round(percentile(counts, 0.9))}

    def sla(self) -> dict[str, Any]:
        fr, res = self.buckets.get(FIRST_RESPONSE_SLA, Counter()), self.buckets.get(RESOLUTION_SLA, Counter())
        return {"hits": fr[HIT] + res[HIT], "breaches": fr[BREACH] + res[BREACH],
                "first_response": {"hits": fr[HIT], "breaches": fr[BREACH]},
                "resolution": {"hits": res[HIT], "breaches": res[BREACH]}}

    def as_json(self) -> dict[str, Any]:
        return {"first_response": self.stats(FIRST_RESPONSE), "resolution": self.stats(RESOLUTION), "sla": self.sla()}


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 1)


def day_start(day: dt.date, tz: ZoneInfo) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(), tzinfo=tz).astimezone(dt.UTC)


Span = tuple[str, dt.date, dt.date, int]


@dataclass(frozen=True)
class Cut:
    """A range as signed periods of pre-aggregated counts, ``(grain, first, end, +1 | -1)`` with ``end``
    excluded, and instant intervals to read from the rows."""

    periods: tuple[Span, ...]
    raw: tuple[tuple[dt.datetime, dt.datetime | None], ...]


def cut(start: dt.datetime | None, end: dt.datetime | None, tz: ZoneInfo) -> Cut:
    raw: list[tuple[dt.datetime, dt.datetime | None]] = []
    if start is not None and end is not None and start >= end:
        return Cut((), ())
    if start is None and end is None:
        return Cut((("t", ALL_TIME, ALL_TIME + dt.timedelta(days=1), 1),), ())
    if start is None:
        first = EARLIEST
    else:
        d = start.astimezone(tz).date()
        first = d if start == day_start(d, tz) else d + dt.timedelta(days=1)
        if first != d:
            stop = day_start(first, tz)
            raw.append((start, stop if end is None else min(stop, end)))
    if end is None:
        last = LATEST
    else:
        last = end.astimezone(tz).date()
        tail = day_start(last, tz)
        if end != tail and (start is None or tail >= start):
            raw.append((max(tail, start) if start else tail, end))
    if first >= last:
        return Cut((), tuple(raw))
    months_from = first if first.day == 1 else _next_month(first)
    years_from = months_from if months_from.month == 1 else dt.date(months_from.year + 1, 1, 1)
    months_to, years_to = last.replace(day=1), dt.date(last.year, 1, 1)
    spans: list[Span]
    if years_from < years_to:
        spans = [*_days(first, months_from), *_months(months_from, years_from), ("y", years_from, years_to, 1),
                 *_months(years_to, months_to), *_days(months_to, last)]
    elif months_from <= months_to:
        spans = [*_days(first, months_from), *_months(months_from, months_to), *_days(months_to, last)]
    else:
        spans = _days(first, last)
    return Cut(tuple(s for s in spans if s[1] < s[2]), tuple(raw))


def _days(a: dt.date, b: dt.date) -> list[Span]:
    """Whole days [a, b) of one month: as days, or as the month less the days outside it when that reads
    fewer periods (a month costs about what a day does, thirty days thirty times that)."""
    if a >= b:
        return []
    month, after = a.replace(day=1), _next_month(a)
    if 1 + (after - month).days - (b - a).days < (b - a).days:
        return [("m", month, after, 1), ("d", month, a, -1), ("d", b, after, -1)]
    return [("d", a, b, 1)]


def _months(a: dt.date, b: dt.date) -> list[Span]:
    """Whole months [a, b) of one year, likewise as months or as the year less the months outside it."""
    if a >= b:
        return []
    year, after = dt.date(a.year, 1, 1), dt.date(a.year + 1, 1, 1)
    inside = (b.year - a.year) * 12 + b.month - a.month
    if 1 + 12 - inside < inside:
        return [("y", year, after, 1), ("m", year, a, -1), ("m", b, after, -1)]
    return [("m", a, b, 1)]


def _next_month(day: dt.date) -> dt.date:
    return dt.date(day.year + day.month // 12, day.month % 12 + 1, 1)


def _period_filter(periods: Iterable[Span]) -> sa.ColumnElement[bool]:
    return sa.or_(*(sa.and_(MC.grain == grain, MC.period >= lo, MC.period < hi) for grain, lo, hi, _ in periods))


async def _raw(session: AsyncConnection, a: dt.datetime, b: dt.datetime | None,
               ) -> list[tuple[Any, tuple[int, int, dt.datetime, int]]]:
    """The contributions made within [a, b), read from the rows."""
    def within(col: Any) -> sa.ColumnElement[bool]:
        return sa.and_(col >= a, col < b) if b is not None else col >= a

    rows = (await session.execute(
        sa.select(*(getattr(M, name) for name in Snapshot.__slots__))
        .where(sa.or_(within(M.first_response_at), within(M.resolved_at),
                      sa.and_(M.fr_sla == "breached", within(M.fr_due_at)),
                      sa.and_(M.res_sla == "breached", within(M.res_due_at))))
    )).all()
    return [(row, c) for row in rows for c in contributions(row) if a <= c[2] and (b is None or c[2] < b)]


def _key(row: Any, dim: str, user: int) -> int:
    return int(row.account_id if dim == "a" else row.department_id if dim == "d" else user)


async def tallies(session: AsyncConnection, start: dt.datetime | None, end: dt.datetime | None, dim: str,
                  tz: ZoneInfo) -> dict[int, Tally]:
    """Per key of ``dim``, the buckets of everything within [start, end)."""
    plan = cut(start, end, tz)
    out: dict[int, Tally] = defaultdict(Tally)
    if plan.periods:
        n: Any = MC.n
        if any(sign < 0 for *_, sign in plan.periods):
            # Spans may nest (a year less three months, one of which is added back less some days): each
            # row counts with the sum of the signs of the spans that hold it.
            n = MC.n * sum((sa.case((_period_filter([p]), p[3]), else_=0) for p in plan.periods), sa.literal(0))
        where = sa.and_(MC.dim == dim, _period_filter(plan.periods))
        if session.dialect.name == "postgresql":
            # One row per key and metric with its buckets as arrays: thousands of rows fewer to send and
            # decode. A bucket may come more than once (from several periods); the tally adds them up.
            for key, metric, buckets, ns in await session.execute(
                    sa.select(MC.key, MC.metric, sa.func.array_agg(MC.bucket), sa.func.array_agg(n))
                    .where(where).group_by(MC.key, MC.metric)):
                tally = out[key]
                for b, count in zip(buckets, ns, strict=True):
                    tally.add(metric, b, int(count))
        else:
            for key, metric, b, count in await session.execute(
                    sa.select(MC.key, MC.metric, MC.bucket, sa.func.sum(n)).where(where)
                    .group_by(MC.key, MC.metric, MC.bucket)):
                out[key].add(metric, b, int(count))
    for a, z in plan.raw:
        if session.dialect.name == "postgresql":
            for key, metric, bk, count in await session.execute(_raw_counts(dim, a, z)):
                out[key].add(metric, bk, int(count))
        else:
            for row, (metric, bk, _, user) in await _raw(session, a, z):
                out[_key(row, dim, user)].add(metric, bk, 1)
    return out


def _bucket_sql(seconds: Any) -> Any:
    # webcare.metrics.bucket in SQL. A value on a bucket's very edge may land on either side of it by
    # rounding; both neighbours' middles lie within the same factor sqrt(GAMMA) of it, so the bound holds.
    return sa.case((seconds < 1, 0), else_=sa.cast(sa.func.floor(sa.func.ln(seconds) / LOG_GAMMA), sa.Integer) + 1)


def _raw_counts(dim: str, a: dt.datetime, b: dt.datetime | None) -> sa.Select[Any]:
    """What :func:`_raw` and :func:`webcare.metrics.contributions` give, counted by PostgreSQL itself."""
    key: Any = {"a": M.account_id, "d": M.department_id, "u": sa.func.coalesce(M.first_responder_id, 0)}[dim]

    def within(col: Any) -> sa.ColumnElement[bool]:
        return sa.and_(col >= a, col < b) if b is not None else col >= a

    def part(metric: int, bk: Any, *where: Any) -> sa.Select[Any]:
        return sa.select(key.label("key"), sa.literal(metric).label("metric"), bk.label("bucket")).where(*where)

    parts = sa.union_all(
        part(FIRST_RESPONSE, _bucket_sql(M.first_response_seconds), within(M.first_response_at),
             M.first_response_seconds.is_not(None)),
        part(FIRST_RESPONSE_SLA, sa.literal(HIT), M.fr_sla == "hit", within(M.first_response_at)),
        part(FIRST_RESPONSE_SLA, sa.literal(BREACH), M.fr_sla == "breached", within(M.fr_due_at)),
        part(RESOLUTION, _bucket_sql(M.resolution_seconds), within(M.resolved_at), M.resolution_seconds.is_not(None)),
        part(RESOLUTION_SLA, sa.literal(HIT), M.res_sla == "hit", within(M.resolved_at)),
        part(RESOLUTION_SLA, sa.literal(BREACH), M.res_sla == "breached", within(M.res_due_at)),
    ).subquery()
    return sa.select(parts.c.key, parts.c.metric, parts.c.bucket, sa.func.count()).group_by(
        parts.c.key, parts.c.metric, parts.c.bucket)


async def names(session: AsyncConnection, dim: str, keys: Iterable[int]) -> dict[int, str]:
    ids = [k for k in keys if k]
    if not ids:
        return {}
    model: Any = {"a": Account, "d": Department, "u": User}[dim]
    return {i: n for i, n in await session.execute(sa.select(model.id, model.name).where(model.id.in_(ids)))}


def parse_instant(raw: str | None, name: str) -> dt.datetime | None:
    if raw is None or raw == "":
        return None
    try:
        value = dt.datetime.fromisoformat(raw.replace("Z", "+00:00") if raw.endswith("Z") else raw)
    except ValueError:
        raise BadRequest(f"{name} must be an ISO 8601 date or timestamp", code="invalid_query") from None
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)
    try:
        return value.astimezone(dt.UTC)
    except OverflowError:
        raise BadRequest(f"{name} is out of range", code="invalid_query") from None


def group_dim(raw: str | None) -> str | None:
    if raw is None or raw == "":
        return None
    if raw not in GROUPS:
        raise BadRequest(f"group_by must be one of {', '.join(GROUPS)}", code="invalid_query")
    return GROUPS[raw]


async def response_times(db: Database, start: dt.datetime | None, end: dt.datetime | None,
                         group_by: str | None) -> dict[str, Any]:
    tz = ZoneInfo(db.zone)
    dim = group_dim(group_by)
    async with db.connect() as s:  # Core rows: no ORM bookkeeping for thousands of counts
        # Any dimension adds up to the overall figures; departments are the fewest keys.
        per_key = await tallies(s, start, end, dim or "d", tz)
        named = await names(s, dim, per_key) if dim else {}
    overall = Tally()
    for tally in per_key.values():
        overall.merge(tally)
    groups = []
    if dim is not None:
        for key in sorted(per_key, key=lambda k: (named.get(k) is None, (named.get(k) or "").lower(), k)):
            groups.append({"key": key or None, "name": named.get(key), **per_key[key].as_json()})
    return {"from": _iso(start), "to": _iso(end), "group_by": group_by or None, "overall": overall.as_json(),
            "groups": groups}


async def series(db: Database, start: dt.datetime | None, end: dt.datetime | None,
                 group_by: str | None) -> dict[str, Any]:
    """Per local day of the organisation (whole days from the one holding ``from`` to the one before ``to``)."""
    tz = ZoneInfo(db.zone)
    dim = group_dim(group_by)
    today = dt.datetime.now(dt.UTC).astimezone(tz).date()
    last = (end - dt.timedelta(microseconds=1)).astimezone(tz).date() if end else today
    first = start.astimezone(tz).date() if start else last - dt.timedelta(days=29)
    if first > last:
        raise BadRequest("from must come before to", code="invalid_query")
    if (last - first).days >= MAX_SERIES_DAYS:
        raise BadRequest(f"a series covers at most {MAX_SERIES_DAYS} days", code="invalid_query")
    days = [first + dt.timedelta(days=i) for i in range((last - first).days + 1)]
    per: dict[tuple[dt.date, int], Tally] = defaultdict(Tally)
    async with db.connect() as s:
        rows = await s.execute(
            sa.select(MC.period, MC.key, MC.metric, MC.bucket, MC.n)
            .where(MC.dim == (dim or "d"), MC.grain == "d", MC.period >= first, MC.period <= last))
        for period, key, metric, b, n in rows:
            per[(period, key)].add(metric, b, int(n))
        keys = sorted({k for _, k in per})
        named = await names(s, dim, keys) if dim else {}
    overall = []
    for day in days:
        t = Tally()
        for (d, _), tally in per.items():
            if d == day:
                t.merge(tally)
        overall.append({"day": day.isoformat(), **t.as_json()})
    groups = [{"key": key or None, "name": named.get(key),
               "days": [{"day": day.isoformat(), **per.get((day, key), Tally()).as_json()} for day in days]}
              for key in keys] if dim else []
    return {"from": first.isoformat(), "to": last.isoformat(), "timezone": db.zone, "group_by": group_by or None,
            "days": [d.isoformat() for d in days], "overall": overall, "groups": groups}


def _iso(value: dt.datetime | None) -> str | None:
    return value.isoformat().replace("+00:00", "Z") if value else None
