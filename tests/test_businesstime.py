"""Business-time arithmetic against values worked out by hand: weekends, holidays and both
daylight-saving changes of Europe/Amsterdam (2026: clocks forward on 29 March at 02:00 CET,
back on 25 October at 03:00 CEST)."""

from __future__ import annotations

import datetime as dt

import pytest

from webcare.businesstime import Calendar, CalendarError, instant, office_hours, zone

AMS = zone("Europe/Amsterdam")
H = 3600.0


def utc(*args: int) -> dt.datetime:
    return dt.datetime(*args, tzinfo=dt.UTC)


def local(*args: int) -> dt.datetime:
    """A wall-clock time in Amsterdam (the first of two, in the autumn's repeated hour)."""
    return dt.datetime(*args, tzinfo=AMS)


def every_day(*opening: str) -> Calendar:
    return Calendar.build("Europe/Amsterdam", {d: [list(opening)] for d in ("mon", "tue", "wed", "thu", "fri",
                                                                             "sat", "sun")})


OFFICE = Calendar.build("Europe/Amsterdam", {d: [["09:00", "17:00"]] for d in ("mon", "tue", "wed", "thu", "fri")},
                        holidays=["2026-04-06", "2026-04-27"])  # Easter Monday, King's Day


def test_a_weekend_is_skipped() -> None:
    # Friday 6 March 16:30 CET (15:30 UTC): half an hour on Friday, the other half on Monday from 09:00 CET.
    start = local(2026, 3, 6, 16, 30)
    assert start == utc(2026, 3, 6, 15, 30)
    assert OFFICE.add(start, H) == utc(2026, 3, 9, 8, 30)
    assert OFFICE.business_seconds(start, utc(2026, 3, 9, 8, 30)) == H
    # From Saturday noon to Monday noon: Monday 09:00-12:00 only.
    assert OFFICE.business_seconds(local(2026, 3, 7, 12), local(2026, 3, 9, 12)) == 3 * H


def test_a_holiday_is_skipped() -> None:
    # Thursday 2 April 16:00 CEST + 16 business hours: Thursday 1 h, Friday 8 h, the weekend and Easter
    # Monday closed, Tuesday 7 h: Tuesday 7 April 16:00 CEST, 14:00 UTC.
    start = local(2026, 4, 2, 16)
    assert start == utc(2026, 4, 2, 14)
    assert OFFICE.add(start, 16 * H) == utc(2026, 4, 7, 14)
    assert OFFICE.business_seconds(start, utc(2026, 4, 7, 14)) == 16 * H
    # A message on the holiday itself waits until Tuesday's opening.
    assert OFFICE.add(local(2026, 4, 6, 10), 60) == utc(2026, 4, 7, 7, 1)
    assert not OFFICE.is_open(local(2026, 4, 6, 10))
    assert OFFICE.is_open(local(2026, 4, 7, 10))


def test_office_hours_keep_their_length_over_the_spring_change() -> None:
    # Friday 27 March 16:00 CET (15:00 UTC) + 2 h: Friday 1 h, then Monday 30 March 09:00-10:00 CEST (07:00 UTC on).
    assert OFFICE.add(local(2026, 3, 27, 16), 2 * H) == utc(2026, 3, 30, 8)
    # Friday (CET) and Monday (CEST) are eight hours each.
    assert OFFICE.business_seconds(local(2026, 3, 27, 9), local(2026, 3, 30, 17)) == 16 * H
    assert local(2026, 3, 30, 17) == utc(2026, 3, 30, 15)


def test_a_day_open_around_the_clock_lasts_23_and_25_hours_on_the_change_days() -> None:
    always = every_day("00:00", "24:00")
    assert always.business_seconds(local(2026, 3, 29), local(2026, 3, 30)) == 23 * H
    assert always.business_seconds(local(2026, 10, 25), local(2026, 10, 26)) == 25 * H
    assert always.business_seconds(local(2026, 3, 28), local(2026, 3, 29)) == 24 * H
    # Open all the time, business time is real time: 24 h after Saturday noon CET is Sunday 13:00 CEST.
    due = always.add(local(2026, 3, 28, 12), 24 * H)
    assert due == utc(2026, 3, 29, 11)
    assert due.astimezone(AMS).hour == 13


def test_openings_across_the_skipped_and_the_repeated_hour() -> None:
    nights = every_day("00:00", "06:00")
    assert nights.business_seconds(local(2026, 3, 29), local(2026, 3, 30)) == 5 * H
    assert nights.business_seconds(local(2026, 10, 25), local(2026, 10, 26)) == 7 * H
    # 01:30 CET plus one hour: half an hour to the jump at 02:00 CET, half an hour after it: 03:30 CEST.
    start = local(2026, 3, 29, 1, 30)
    assert start == utc(2026, 3, 29, 0, 30)
    assert nights.add(start, H) == utc(2026, 3, 29, 1, 30)


def test_a_skipped_wall_time_counts_from_the_jump() -> None:
    # 02:30 does not exist on 29 March: it is taken as the jump itself, 01:00 UTC (03:00 CEST).
    assert instant(dt.date(2026, 3, 29), 150, AMS) == utc(2026, 3, 29, 1)
    sunday = Calendar.build("Europe/Amsterdam", {"sun": [["02:30", "04:00"]]})
    assert sunday.business_seconds(local(2026, 3, 29), local(2026, 3, 30)) == H
    # 02:30 on 25 October comes twice: the first (CEST, 00:30 UTC) counts; 03:00 CET is 02:00 UTC.
    autumn = Calendar.build("Europe/Amsterdam", {"sun": [["02:30", "03:00"]]})
    assert autumn.openings_on(dt.date(2026, 10, 25)) == [(utc(2026, 10, 25, 0, 30), utc(2026, 10, 25, 2))]


def test_zero_and_the_start_inside_an_opening() -> None:
    assert OFFICE.add(local(2026, 3, 10, 10), 0) == local(2026, 3, 10, 10)
    assert OFFICE.add(local(2026, 3, 10, 10), 30 * 60) == local(2026, 3, 10, 10, 30)
    # Exactly at closing time, the next minute is the next morning's first.
    assert OFFICE.add(local(2026, 3, 10, 17), 60) == local(2026, 3, 11, 9, 1)
    assert not OFFICE.is_open(local(2026, 3, 10, 17))
    assert OFFICE.is_open(local(2026, 3, 10, 9))


def test_split_days_and_the_round_trip() -> None:
    split = Calendar.build("Europe/Amsterdam", {"mon": [["13:00", "17:00"], ["08:00", "12:00"]]},
                           holidays=[dt.date(2026, 1, 5)])
    assert split.week[0] == ((480, 720), (780, 1020))
    # Monday 12 January 11:00 CET + 3 h: one hour to noon, two after the lunch break: 15:00 CET.
    assert split.add(local(2026, 1, 12, 11), 3 * H) == local(2026, 1, 12, 15)
    again = Calendar.build(**split.as_json())  # type: ignore[arg-type]
    assert again == split
    assert split.as_json()["holidays"] == ["2026-01-05"]


def test_the_built_in_default() -> None:
    default = office_hours("Europe/Amsterdam")
    assert default.add(local(2026, 3, 6, 16, 30), H) == utc(2026, 3, 9, 8, 30)


@pytest.mark.parametrize(("week", "holidays", "problem"), [
    ({"mon": [["09:00", "08:00"]]}, [], "start before it ends"),
    ({"mon": [["09:00", "12:00"], ["11:00", "13:00"]]}, [], "overlap"),
    ({"mon": [["9:00", "12:00"]]}, [], "HH:MM"),
    ({"mon": [["09:00", "24:30"]]}, [], "HH:MM"),
    ({"mon": [["09:00"]]}, [], "pair"),
    ({"monday": [["09:00", "12:00"]]}, [], "unknown day"),
    ({}, [], "open at some time"),
    ({"mon": [["09:00", "12:00"]]}, ["5 May"], "YYYY-MM-DD"),
])
def test_nonsense_is_refused(week: dict[str, list[list[str]]], holidays: list[str], problem: str) -> None:
    with pytest.raises(CalendarError, match=problem):
        Calendar.build("Europe/Amsterdam", week, holidays)


def test_an_unknown_zone_is_refused() -> None:
    with pytest.raises(CalendarError, match="unknown time zone"):
        zone("Europe/Atlantis")
    with pytest.raises(CalendarError, match="unknown time zone"):
        zone("../etc/passwd")
