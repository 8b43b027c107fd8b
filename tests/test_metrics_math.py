"""The arithmetic under the metrics, without a database: buckets and their error bound, percentiles
as percentile_cont computes them, and how a range is cut into periods and partial days."""

from __future__ import annotations

import datetime as dt
import math
import random
import statistics
from collections import Counter
from zoneinfo import ZoneInfo

import pytest

from webcare.metrics import GAMMA, RELATIVE_ERROR, bucket, representative
from webcare.metrics_report import cut, percentile

AMS = ZoneInfo("Europe/Amsterdam")


def exact_percentile(values: list[float], p: float) -> float:
    """PostgreSQL's percentile_cont."""
    ordered = sorted(values)
    pos = p * (len(ordered) - 1)
    lo, hi = math.floor(pos), math.ceil(pos)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)


def test_the_bound() -> None:
    assert RELATIVE_ERROR == pytest.approx(0.0198, abs=1e-4)
    for seconds in (1, 1.5, 59, 60, 61, 3599.9, 86_400, 7 * 86_400, 365 * 86_400, 10 * 365 * 86_400):
        b = bucket(seconds)
        assert GAMMA ** (b - 1) <= seconds * (1 + 1e-12) and seconds < GAMMA ** b * (1 + 1e-12)
        assert abs(representative(b) - seconds) <= seconds * RELATIVE_ERROR * (1 + 1e-9)
    assert bucket(0) == bucket(0.99) == 0 and representative(0) == 0.5


@pytest.mark.parametrize("seed", range(5))
def test_percentiles_stay_within_the_bound(seed: int) -> None:
    rng = random.Random(seed)
    values = [math.exp(rng.gauss(math.log(1800), 1.4)) + 1 for _ in range(rng.randint(1, 3000))]
    counts = Counter(bucket(v) for v in values)
    for p in (0.5, 0.9, 0.0, 1.0, 0.25):
        want = exact_percentile(values, p)
        got = percentile(counts, p)
        assert got is not None and abs(got - want) <= want * RELATIVE_ERROR * (1 + 1e-9), (p, got, want)
    assert percentile(Counter(), 0.5) is None


def test_percentiles_of_exact_buckets_interpolate_as_percentile_cont() -> None:
    values = [representative(b) for b in (10, 20, 30, 40)]
    counts = Counter({10: 1, 20: 1, 30: 1, 40: 1})
    for p in (0.5, 0.9, 0.1):
        assert percentile(counts, p) == pytest.approx(exact_percentile(values, p))
    assert percentile(Counter({50: 3}), 0.9) == pytest.approx(representative(50))
    assert statistics.median(values) == pytest.approx(percentile(counts, 0.5))


def utc(*args: int) -> dt.datetime:
    return dt.datetime(*args, tzinfo=dt.UTC)


def coverage(start: dt.datetime, end: dt.datetime) -> None:
    """Every hour from three days before to three days after the range is read once if inside, else never:
    periods with their signs, plus the partial days read from the rows."""
    plan = cut(start, end, AMS)
    for grain, lo, hi, sign in plan.periods:
        assert grain in ("d", "m", "y") and sign in (1, -1) and lo < hi
        if grain == "m":
            assert lo.day == 1 and hi.day == 1
        if grain == "y":
            assert (lo.month, lo.day, hi.month, hi.day) == (1, 1, 1, 1)
    at = start - dt.timedelta(days=3) + dt.timedelta(minutes=7)
    while at < end + dt.timedelta(days=3):
        day = at.astimezone(AMS).date()
        net = sum(sign for _, lo, hi, sign in plan.periods if lo <= day < hi)
        net += sum(1 for a, b in plan.raw if a <= at and (b is None or at < b))
        assert net == (1 if start <= at < end else 0), (at, plan)
        at += dt.timedelta(hours=1)


@pytest.mark.parametrize(("start", "end"), [
    (utc(2026, 3, 3, 10), utc(2026, 3, 5, 10, 30)),
    (utc(2026, 3, 2, 23), utc(2026, 3, 4, 23)),  # Amsterdam midnights: whole days only
    (utc(2025, 11, 17, 6, 5), utc(2027, 2, 3, 18)),  # days, months, a year, months, days
    (utc(2025, 2, 17, 6, 5), utc(2027, 11, 3, 18)),  # most of a month or year: the whole less the rest
    (utc(2026, 10, 2, 10, 17), utc(2026, 11, 1, 10, 17)),  # the benchmark's thirty days
    (utc(2026, 10, 15), utc(2026, 11, 10)),  # days of two months, no whole month
    (utc(2026, 3, 28, 12), utc(2026, 3, 30, 12)),  # over the spring change
    (utc(2026, 10, 24, 12), utc(2026, 10, 26, 12)),  # over the autumn change
    (utc(2026, 5, 1, 10), utc(2026, 5, 1, 11)),  # within one day
    (utc(2026, 4, 30, 22), utc(2026, 5, 1, 11)),  # from a midnight to within that day
])
def test_a_cut_covers_the_range_exactly_once(start: dt.datetime, end: dt.datetime) -> None:
    coverage(start, end)


def test_most_of_a_month_is_the_month_less_the_rest() -> None:
    plan = cut(utc(2026, 10, 2, 10, 17), utc(2026, 11, 1, 10, 17), AMS)
    assert plan.periods == (("m", dt.date(2026, 10, 1), dt.date(2026, 11, 1), 1),
                            ("d", dt.date(2026, 10, 1), dt.date(2026, 10, 3), -1))


def test_open_ends() -> None:
    assert cut(None, None, AMS).periods == (("t", dt.date(1970, 1, 1), dt.date(1970, 1, 2), 1),)
    assert cut(None, utc(2030, 1, 1), AMS).periods[0] == ("y", dt.date(1970, 1, 1), dt.date(2030, 1, 1), 1)
    tail = cut(utc(2026, 3, 3, 10), None, AMS)
    assert tail.raw == ((utc(2026, 3, 3, 10), utc(2026, 3, 3, 23)),)
    head = cut(None, utc(2026, 3, 3, 10), AMS)
    assert head.raw == ((utc(2026, 3, 2, 23), utc(2026, 3, 3, 10)),)
    assert cut(utc(2026, 3, 3), utc(2026, 3, 3), AMS) == cut(utc(2026, 3, 4), utc(2026, 3, 3), AMS)
    assert cut(utc(2026, 3, 3), utc(2026, 3, 3), AMS).periods == ()
