"""Business time: a weekly schedule and holidays in a time zone, and the arithmetic SLA clocks need.

Pure: no database and no clock of its own. A schedule is local wall-clock time, so an opening of
09:00-17:00 is eight hours on both sides of a daylight-saving change, while a day open around the
clock lasts 23 or 25 hours on the change days. The arithmetic walks real instants (aware UTC
datetimes), converting each local opening and closing on its own date. A local time the clocks skip
(02:30 on the spring change in Europe/Amsterdam) counts from the moment the clocks jump; a time they
pass twice (02:30 on the autumn change) counts at its first occurrence.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
DAY_MINUTES = 24 * 60
#: How far ahead :meth:`Calendar.add` looks before giving up (a schedule that is never open).
HORIZON_DAYS = 3 * 366

_HHMM = re.compile(r"^([01]\d|2[0-4]):([0-5]\d)$")

#: Minutes after local midnight: [start, end), 0 <= start < end <= 1440.
Opening = tuple[int, int]


class CalendarError(ValueError):
    """A schedule, holiday or time zone that does not make sense, with a message for a person."""


def zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise CalendarError(f"unknown time zone {name!r}; use an IANA name such as Europe/Amsterdam") from None


def parse_minutes(text: str) -> int:
    """``"09:30"`` as minutes after midnight; ``"24:00"`` is the end of the day."""
    m = _HHMM.match(text)
    if not m or (m.group(1) == "24" and m.group(2) != "00"):
        raise CalendarError(f"{text!r} is not a time of day as HH:MM (00:00 to 24:00)")
    return int(m.group(1)) * 60 + int(m.group(2))


def format_minutes(minutes: int) -> str:
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


@dataclass(frozen=True)
class Calendar:
    """When an organisation (or a department) is open: per weekday its openings, minus holidays."""

    tz: ZoneInfo
    #: Monday first; each day's openings sorted and not overlapping.
    week: tuple[tuple[Opening, ...], ...]
    holidays: frozenset[dt.date] = field(default_factory=frozenset)

    def __post_init__(self) -> None:
        if len(self.week) != 7:
            raise CalendarError("a week has seven days")
        for name, openings in zip(DAYS, self.week, strict=True):
            end = -1
            for start, stop in openings:
                if not 0 <= start < stop <= DAY_MINUTES:
                    raise CalendarError(f"{name}: an opening must start before it ends, within the day")
                if start < end:
                    raise CalendarError(f"{name}: openings overlap")
                end = stop
        if not any(self.week):
            raise CalendarError("the schedule must be open at some time in the week")

    @classmethod
    def build(cls, timezone: str, week: Mapping[str, Sequence[Sequence[str]]],
              holidays: Iterable[str | dt.date] = ()) -> Calendar:
        """From the stored (and API) form: ``{"mon": [["09:00", "17:00"]], ...}``, ISO dates as holidays."""
        unknown = set(week) - set(DAYS)
        if unknown:
            raise CalendarError(f"unknown day {sorted(unknown)[0]!r}; use {', '.join(DAYS)}")
        days: list[tuple[Opening, ...]] = []
        for name in DAYS:
            openings: list[Opening] = []
            for pair in week.get(name, ()):
                if len(pair) != 2:
                    raise CalendarError(f"{name}: an opening is a pair [start, end]")
                openings.append((parse_minutes(pair[0]), parse_minutes(pair[1])))
            days.append(tuple(sorted(openings)))
        dates: set[dt.date] = set()
        for h in holidays:
            if isinstance(h, dt.date):
                dates.add(h)
                continue
            try:
                dates.add(dt.date.fromisoformat(h))
            except ValueError:
                raise CalendarError(f"holiday {h!r} is not a date as YYYY-MM-DD") from None
        return cls(zone(timezone), tuple(days), frozenset(dates))

    def as_json(self) -> dict[str, Any]:
        return {"timezone": self.tz.key,
                "week": {name: [[format_minutes(s), format_minutes(e)] for s, e in openings]
                         for name, openings in zip(DAYS, self.week, strict=True)},
                "holidays": sorted(d.isoformat() for d in self.holidays)}

    def local_date(self, at: dt.datetime) -> dt.date:
        return at.astimezone(self.tz).date()

    def openings_on(self, day: dt.date) -> list[tuple[dt.datetime, dt.datetime]]:
        """The day's openings as UTC instants (none on a holiday)."""
        if day in self.holidays:
            return []
        out = []
        for start, stop in self.week[day.weekday()]:
            a, b = instant(day, start, self.tz), instant(day, stop, self.tz)
            if a < b:  # an opening wholly inside the skipped hour lasts no time at all
                out.append((a, b))
        return out

    def is_open(self, at: dt.datetime) -> bool:
        return any(a <= at < b for a, b in self.openings_on(self.local_date(at)))

    def openings(self, start: dt.datetime, end: dt.datetime) -> Iterator[tuple[dt.datetime, dt.datetime]]:
        """The open stretches within [start, end), in order."""
        # Arithmetic on instants: an aware datetime in a zone would add wall-clock time.
        start, end = start.astimezone(dt.UTC), end.astimezone(dt.UTC)
        day = self.local_date(start) - dt.timedelta(days=1)  # the first local day may begin before ``start``
        last = self.local_date(end)
        while day <= last:
            for a, b in self.openings_on(day):
                a, b = max(a, start), min(b, end)
                if a < b:
                    yield a, b
            day += dt.timedelta(days=1)

    def business_seconds(self, start: dt.datetime, end: dt.datetime) -> float:
        """How much of [start, end) lies within opening hours."""
        return sum((b - a).total_seconds() for a, b in self.openings(start, end))

    def add(self, start: dt.datetime, seconds: float) -> dt.datetime:
        """The instant at which ``seconds`` of business time have passed since ``start``."""
        start = start.astimezone(dt.UTC)
        if seconds <= 0:
            return start
        remaining = dt.timedelta(seconds=seconds)
        day = self.local_date(start) - dt.timedelta(days=1)
        for _ in range(HORIZON_DAYS):
            for a, b in self.openings_on(day):
                a = max(a, start)
                if a >= b:
                    continue
                if remaining <= b - a:
                    return a + remaining
                remaining -= b - a
            day += dt.timedelta(days=1)
        raise CalendarError(f"the schedule has no {seconds:.0f} business seconds within {HORIZON_DAYS} days")


def instant(day: dt.date, minutes: int, tz: ZoneInfo) -> dt.datetime:
    """The UTC instant of local wall time ``minutes`` after midnight on ``day`` (1440: the next midnight)."""
    naive = dt.datetime.combine(day, dt.time()) + dt.timedelta(minutes=minutes)
    at = naive.replace(tzinfo=tz).astimezone(dt.UTC)
    if at.astimezone(tz).replace(tzinfo=None) == naive:
        return at
    # The clocks skip this wall time. Reading it with the offset after the jump gives an instant before
    # the jump, with the offset before it one after; the jump lies between: find it to the second.
    lo = naive.replace(tzinfo=tz, fold=1).astimezone(dt.UTC)
    hi = at
    if lo > hi:
        lo, hi = hi, lo
    while hi - lo > dt.timedelta(seconds=1):
        mid = lo + (hi - lo) / 2
        if mid.astimezone(tz).replace(tzinfo=None) < naive:
            lo = mid
        else:
            hi = mid
    return hi.replace(microsecond=0) if hi.microsecond else hi


def office_hours(tz: str) -> Calendar:
    """The built-in default: Monday to Friday, 09:00 to 17:00, no holidays."""
    nine_to_five = ((9 * 60, 17 * 60),)
    return Calendar(zone(tz), (nine_to_five,) * 5 + ((), ()))
