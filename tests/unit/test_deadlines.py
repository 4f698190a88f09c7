"""Deadline arithmetic: art. 85 counting, local dates, pauses, extensions, missing data.

Calendar facts (checked against chinesecalendar 1.11.0): National Day 2025 is off from
10-01 to 10-08 and 2025-09-28 (Sun) / 2025-10-11 (Sat) are make-up working days; Spring
Festival 2026 is off from 02-15 to 02-23 with 02-14 (Sat) and 02-28 (Sat) working. 2027 has no
data. Year 2099 is a FICTIONAL override used only here.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.calendar import BusinessCalendar
from engine.deadlines import (
    Deadline,
    DeadlineCalculator,
    Duration,
    Unit,
    WorkingHours,
)

pytestmark = pytest.mark.unit

SH = ZoneInfo("Asia/Shanghai")
CAL = BusinessCalendar.chinese()
CALC = DeadlineCalculator(CAL, SH)
DAY_UNITS: tuple[Unit, ...] = ("calendar_days", "working_days")
ALL_UNITS: tuple[Unit, ...] = ("calendar_days", "working_days", "hours", "working_hours")


def sh(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=SH)


def end_of(day: date) -> datetime:
    """24:00 of a local day, as the calculator represents it."""
    return datetime.combine(day + timedelta(days=1), time(0), tzinfo=SH)


def ok(instant: datetime) -> Deadline:
    return Deadline(instant, data_missing=False)


# -- calendar days ------------------------------------------------------------------------


def test_defaults() -> None:
    calc = DeadlineCalculator(CAL)
    assert calc.tz == SH
    assert calc.hours == WorkingHours(time(9), time(17))


def test_calendar_days_ending_on_national_day_rolls_to_first_working_day() -> None:
    # 2025-09-16 + 15 days = 2025-10-01 (holiday through 10-08) -> 2025-10-09.
    result = CALC.deadline(sh(2025, 9, 16, 10), Duration("calendar_days", 15))
    assert result == ok(end_of(date(2025, 10, 9)))
    assert result.instant.tzinfo == SH


def test_calendar_days_ending_on_ordinary_weekend_rolls_to_monday() -> None:
    # 2025-03-01 (Sat) + 7 = 2025-03-08 (Sat) -> Monday 2025-03-10.
    result = CALC.deadline(sh(2025, 3, 1, 9), Duration("calendar_days", 7))
    assert result == ok(end_of(date(2025, 3, 10)))


def test_calendar_days_ending_on_make_up_sunday_does_not_roll() -> None:
    # 2025-09-18 + 10 = 2025-09-28, a Sunday made a working day.
    result = CALC.deadline(sh(2025, 9, 18, 14), Duration("calendar_days", 10))
    assert result == ok(end_of(date(2025, 9, 28)))


@pytest.mark.parametrize("clock", [time(0), time(12), time(23, 59, 59, 999999)])
def test_start_day_is_not_counted(clock: time) -> None:
    start = datetime.combine(date(2025, 3, 3), clock, tzinfo=SH)  # Monday
    assert CALC.deadline(start, Duration("calendar_days", 1)) == ok(end_of(date(2025, 3, 4)))
    assert CALC.deadline(start, Duration("working_days", 1)) == ok(end_of(date(2025, 3, 4)))


def test_zero_days_end_with_the_start_day_rolled_if_needed() -> None:
    monday = sh(2025, 3, 3, 10)
    for unit in DAY_UNITS:
        assert CALC.deadline(monday, Duration(unit, 0)) == ok(end_of(date(2025, 3, 3)))
        holiday = CALC.deadline(sh(2025, 10, 1, 10), Duration(unit, 0))
        assert holiday == ok(end_of(date(2025, 10, 9)))


# -- working days -------------------------------------------------------------------------


def test_working_days_across_spring_festival_2026() -> None:
    # From Thu 2026-02-12: Fri 02-13 (1), Sat 02-14 make-up (2), holiday 02-15..02-23,
    # Tue 02-24 (3).
    result = CALC.deadline(sh(2026, 2, 12, 15), Duration("working_days", 3))
    assert result == ok(end_of(date(2026, 2, 24)))


def test_working_days_count_make_up_saturday() -> None:
    # Fri 2025-10-10 + 1 working day = Sat 2025-10-11 (make-up working day).
    result = CALC.deadline(sh(2025, 10, 10, 11), Duration("working_days", 1))
    assert result == ok(end_of(date(2025, 10, 11)))


def test_working_days_skip_the_whole_national_day_holiday() -> None:
    # Tue 2025-09-30 + 1 working day: 10-01..10-08 are off -> Thu 2025-10-09.
    result = CALC.deadline(sh(2025, 9, 30, 16), Duration("working_days", 1))
    assert result == ok(end_of(date(2025, 10, 9)))


def test_fifteen_working_days_real_case() -> None:
    # From Mon 2025-09-22: 23,24,25,26 (4), Sun 28 make-up (5), 29,30 (7), holiday,
    # 10-09, 10-10 (9), Sat 10-11 make-up (10), 13..17 (15).
    result = CALC.deadline(sh(2025, 9, 22, 9), Duration("working_days", 15))
    assert result == ok(end_of(date(2025, 10, 17)))


# -- time zones ---------------------------------------------------------------------------


def test_start_in_utc_late_evening_is_next_local_day() -> None:
    # 2025-03-06 20:00 UTC is Fri 2025-03-07 04:00 in Shanghai: the start day is Friday,
    # so one working day later is Monday 03-10 (not Friday, as UTC dates would give).
    start = datetime(2025, 3, 6, 20, tzinfo=UTC)
    result = CALC.deadline(start, Duration("working_days", 1))
    assert result == ok(end_of(date(2025, 3, 10)))
    assert result.instant == datetime(2025, 3, 10, 16, tzinfo=UTC)
    assert result.instant.tzinfo == SH


def test_any_offset_is_accepted() -> None:
    tokyo = timezone(timedelta(hours=9))
    start = datetime(2025, 9, 17, 0, 30, tzinfo=tokyo)  # = 2025-09-16 23:30 in Shanghai
    result = CALC.deadline(start, Duration("calendar_days", 15))
    assert result == ok(end_of(date(2025, 10, 9)))


def test_naive_datetimes_are_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        CALC.deadline(datetime(2025, 3, 3, 9), Duration("hours", 1))
    with pytest.raises(ValueError, match="timezone-aware"):
        CALC.after_pause(sh(2025, 3, 3), "hours", datetime(2025, 3, 1), sh(2025, 3, 2))
    with pytest.raises(ValueError, match="timezone-aware"):
        Deadline(datetime(2025, 3, 3), data_missing=False)


# -- missing calendar data ----------------------------------------------------------------


def test_year_without_data_is_flagged() -> None:
    # 2026-12-20 + 15 = 2027-01-04 (Mon): computed Mon–Fri, but flagged.
    result = CALC.deadline(sh(2026, 12, 20, 9), Duration("calendar_days", 15))
    assert result == Deadline(end_of(date(2027, 1, 4)), data_missing=True)
    crossing = CALC.deadline(sh(2026, 12, 30, 9), Duration("working_days", 3))
    assert crossing.data_missing
    assert crossing.instant == end_of(date(2027, 1, 4))  # 12-31, 01-01 (guess), 01-04


def test_covered_dates_only_are_not_flagged() -> None:
    assert not CALC.deadline(sh(2026, 12, 30, 9), Duration("calendar_days", 1)).data_missing
    # Hours never consult the calendar.
    assert not CALC.deadline(sh(2027, 5, 1), Duration("hours", 48)).data_missing


def test_working_hours_into_uncovered_year_are_flagged() -> None:
    result = CALC.deadline(sh(2026, 12, 31, 16), Duration("working_hours", 2))
    assert result == Deadline(sh(2027, 1, 1, 10), data_missing=True)


def test_override_file_makes_fictional_2099_covered(tmp_path: Path) -> None:
    (tmp_path / "cn-2099.yaml").write_text(
        "# FICTIONAL test data\n"
        "year: 2099\n"
        "holidays:\n"
        "  - {from: 2099-02-09, to: 2099-02-15, name: Fictional Festival}\n"
        "workdays: [2099-02-07]\n",
        encoding="utf-8",
    )
    calc = DeadlineCalculator(BusinessCalendar.chinese(tmp_path), SH)
    start = sh(2099, 2, 6, 10)  # Friday
    # Sat 02-07 is a make-up day (1); 02-09..02-15 off; Mon 02-16 (2).
    assert calc.deadline(start, Duration("working_days", 2)) == ok(end_of(date(2099, 2, 16)))
    # +4 calendar days = Tue 02-10, inside the fictional holiday -> Mon 02-16.
    assert calc.deadline(start, Duration("calendar_days", 4)) == ok(end_of(date(2099, 2, 16)))
    # Without the file the same computation is a flagged guess.
    guess = CALC.deadline(start, Duration("calendar_days", 4))
    assert guess == Deadline(end_of(date(2099, 2, 10)), data_missing=True)


# -- hours and working hours ----------------------------------------------------------------


def test_hours_are_absolute_and_never_roll() -> None:
    result = CALC.deadline(sh(2025, 10, 1, 10), Duration("hours", 48))
    assert result == ok(sh(2025, 10, 3, 10))


def test_hours_are_elapsed_time_across_a_dst_change() -> None:
    berlin = ZoneInfo("Europe/Berlin")
    calc = DeadlineCalculator(BusinessCalendar(), berlin)
    start = datetime(2025, 3, 29, 12, tzinfo=berlin)  # CET; clocks jump on 03-30 02:00
    result = calc.deadline(start, Duration("hours", 24))
    assert result.instant == datetime(2025, 3, 30, 13, tzinfo=berlin)  # CEST, not 12:00
    # Same-tzinfo datetime subtraction is wall-clock in Python, so compare in UTC.
    assert result.instant.astimezone(UTC) - start.astimezone(UTC) == timedelta(hours=24)
    assert result.data_missing is False


@pytest.mark.parametrize(
    ("start", "amount", "expected"),
    [
        (sh(2025, 3, 7, 16), 3, sh(2025, 3, 10, 11)),  # Fri 16:00 over night and weekend
        (sh(2025, 3, 7, 18), 1, sh(2025, 3, 10, 10)),  # after hours: next opening
        (sh(2025, 3, 8, 12), 1, sh(2025, 3, 10, 10)),  # Saturday
        (sh(2025, 3, 10, 7), 2, sh(2025, 3, 10, 11)),  # before opening
        (sh(2025, 3, 10, 9), 8, sh(2025, 3, 10, 17)),  # exactly a full day: ends at closing
        (sh(2025, 3, 10, 9), 9, sh(2025, 3, 11, 10)),
        (sh(2025, 3, 10, 12, 30), 24, sh(2025, 3, 13, 12, 30)),
        (sh(2025, 9, 30, 16), 2, sh(2025, 10, 9, 10)),  # over National Day
        (sh(2025, 9, 26, 16), 2, sh(2025, 9, 28, 10)),  # Sat off, make-up Sunday works
        (sh(2025, 3, 8, 12), 0, sh(2025, 3, 8, 12)),  # zero: no time at all
    ],
)
def test_working_hours(start: datetime, amount: int, expected: datetime) -> None:
    assert CALC.deadline(start, Duration("working_hours", amount)) == ok(expected)


def test_custom_working_window() -> None:
    calc = DeadlineCalculator(CAL, SH, WorkingHours(time(8, 30), time(12)))
    result = calc.deadline(sh(2025, 3, 7, 11), Duration("working_hours", 2))
    assert result == ok(sh(2025, 3, 10, 9, 30))


def test_working_hours_from_another_offset() -> None:
    start = datetime(2025, 3, 7, 7, tzinfo=UTC)  # Fri 15:00 in Shanghai
    result = CALC.deadline(start, Duration("working_hours", 3))
    assert result == ok(sh(2025, 3, 10, 10))


# -- extend -------------------------------------------------------------------------------


def test_extend_calendar_days_counts_from_last_day_and_rolls() -> None:
    # Deadline 24:00 of 2025-10-09; +30 days = Sat 2025-11-08 -> Mon 2025-11-10.
    result = CALC.extend(end_of(date(2025, 10, 9)), Duration("calendar_days", 30))
    assert result == ok(end_of(date(2025, 11, 10)))


def test_extend_working_days() -> None:
    # Last day Fri 2026-02-13; +2: Sat 02-14 make-up (1), Tue 02-24 (2).
    result = CALC.extend(end_of(date(2026, 2, 13)), Duration("working_days", 2))
    assert result == ok(end_of(date(2026, 2, 24)))


def test_extend_deadline_given_in_utc() -> None:
    deadline = datetime(2025, 3, 10, 16, tzinfo=UTC)  # = 24:00 of Mon 2025-03-10 in Shanghai
    result = CALC.extend(deadline, Duration("working_days", 1))
    assert result == ok(end_of(date(2025, 3, 11)))


def test_extend_hours_and_working_hours() -> None:
    assert CALC.extend(sh(2025, 3, 7, 17), Duration("hours", 5)) == ok(sh(2025, 3, 7, 22))
    friday_close = sh(2025, 3, 7, 17)
    assert CALC.extend(friday_close, Duration("working_hours", 1)) == ok(sh(2025, 3, 10, 10))
    midnight = end_of(date(2025, 3, 10))
    assert CALC.extend(midnight, Duration("working_hours", 2)) == ok(sh(2025, 3, 11, 11))


@pytest.mark.parametrize("unit", ALL_UNITS)
def test_extend_by_zero_is_identity_even_on_a_holiday(unit: Unit) -> None:
    deadline = end_of(date(2025, 10, 1))  # last day is a holiday; zero must not re-roll it
    assert CALC.extend(deadline, Duration(unit, 0)) == ok(deadline)


def test_extend_into_uncovered_year_is_flagged() -> None:
    result = CALC.extend(end_of(date(2026, 12, 31)), Duration("calendar_days", 1))
    assert result == Deadline(end_of(date(2027, 1, 1)), data_missing=True)


# -- after_pause --------------------------------------------------------------------------


def test_pause_in_calendar_days_uses_local_dates() -> None:
    # Paused 03-01 10:00 -> 03-06 09:00: 5 local dates later. Last day Wed 03-19 + 5 = Mon 03-24.
    result = CALC.after_pause(
        end_of(date(2025, 3, 19)), "calendar_days", sh(2025, 3, 1, 10), sh(2025, 3, 6, 9)
    )
    assert result == ok(end_of(date(2025, 3, 24)))
    # The same pause given in UTC: 03-05 16:30 UTC is already 03-06 00:30 in Shanghai.
    utc = CALC.after_pause(
        end_of(date(2025, 3, 19)),
        "calendar_days",
        datetime(2025, 3, 1, 2, tzinfo=UTC),
        datetime(2025, 3, 5, 16, 30, tzinfo=UTC),
    )
    assert utc == result


def test_pause_in_working_days_counts_days_after_the_pause_start() -> None:
    # Fri 03-07 15:00 -> Mon 03-10 10:00: working days in (03-07, 03-10] = {03-10}.
    result = CALC.after_pause(
        end_of(date(2025, 3, 20)), "working_days", sh(2025, 3, 7, 15), sh(2025, 3, 10, 10)
    )
    assert result == ok(end_of(date(2025, 3, 21)))


def test_pause_over_national_day_is_one_working_day() -> None:
    # (09-30, 10-09] holds one working day, 10-09. Deadline last day Fri 10-10 -> Sat 10-11.
    result = CALC.after_pause(
        end_of(date(2025, 10, 10)), "working_days", sh(2025, 9, 30, 12), sh(2025, 10, 9, 12)
    )
    assert result == ok(end_of(date(2025, 10, 11)))


def test_pause_in_hours_adds_elapsed_time() -> None:
    result = CALC.after_pause(
        sh(2025, 3, 12, 12), "hours", sh(2025, 3, 7, 15), sh(2025, 3, 10, 10, 30)
    )
    assert result == ok(sh(2025, 3, 12, 12) + timedelta(hours=67, minutes=30))


def test_pause_in_working_hours_adds_office_time() -> None:
    # Pause Fri 15:00 -> Mon 10:00 holds 2 h (Fri) + 1 h (Mon) of office time.
    # Deadline Tue 03-11 16:00 + 3 working hours -> Wed 03-12 11:00.
    result = CALC.after_pause(
        sh(2025, 3, 11, 16), "working_hours", sh(2025, 3, 7, 15), sh(2025, 3, 10, 10)
    )
    assert result == ok(sh(2025, 3, 12, 11))


def test_pause_outside_working_time_changes_nothing() -> None:
    deadline = end_of(date(2025, 3, 12))
    saturday, sunday = sh(2025, 3, 8, 9), sh(2025, 3, 9, 18)
    assert CALC.after_pause(deadline, "working_hours", saturday, sunday) == ok(deadline)
    assert CALC.after_pause(deadline, "working_days", saturday, sunday) == ok(deadline)
    same_day = CALC.after_pause(deadline, "calendar_days", sh(2025, 3, 4, 9), sh(2025, 3, 4, 18))
    assert same_day == ok(deadline)


@pytest.mark.parametrize("unit", ALL_UNITS)
def test_zero_pause_is_identity(unit: Unit) -> None:
    deadline = end_of(date(2025, 10, 1))
    at = sh(2025, 3, 4, 10)
    assert CALC.after_pause(deadline, unit, at, at) == ok(deadline)


def test_pause_spanning_uncovered_year_is_flagged() -> None:
    result = CALC.after_pause(
        end_of(date(2026, 12, 1)), "working_days", sh(2026, 12, 30), sh(2027, 1, 5)
    )
    assert result.data_missing
    # (12-30, 01-05] -> 12-31, 01-01 (guess), 01-04, 01-05 = 4; after Tue 12-01: Mon 12-07.
    assert result.instant == end_of(date(2026, 12, 7))


def test_invalid_pauses_are_refused() -> None:
    with pytest.raises(ValueError, match="before it starts"):
        CALC.after_pause(sh(2025, 3, 12), "hours", sh(2025, 3, 8), sh(2025, 3, 7))
    with pytest.raises(ValueError, match="unknown unit"):
        CALC.after_pause(sh(2025, 3, 12), "weeks", sh(2025, 3, 7), sh(2025, 3, 8))  # type: ignore[arg-type]


# -- value objects ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("unit", "amount", "message"),
    [
        ("weeks", 1, "unknown unit"),
        ("hours", -1, "non-negative"),
        ("hours", True, "non-negative"),
        ("hours", 1.5, "non-negative"),
    ],
)
def test_invalid_durations(unit: str, amount: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Duration(unit, amount)  # type: ignore[arg-type]


def test_invalid_working_hours() -> None:
    with pytest.raises(ValueError, match="start before"):
        WorkingHours(time(17), time(9))
    with pytest.raises(ValueError, match="naive"):
        WorkingHours(time(9, tzinfo=UTC), time(17))


# -- properties ---------------------------------------------------------------------------

ZONES = st.sampled_from([UTC, SH, ZoneInfo("America/New_York"), timezone(timedelta(hours=-11))])
# Starts and amounts are bounded so every consulted date stays inside covered 2004..2026.
STARTS = st.datetimes(
    min_value=datetime(2004, 1, 2), max_value=datetime(2026, 10, 31), timezones=ZONES
)
DAY_AMOUNTS = st.integers(min_value=0, max_value=40)
HOUR_AMOUNTS = st.integers(min_value=0, max_value=200)
UNIT_AMOUNTS = st.one_of(
    st.tuples(st.sampled_from(DAY_UNITS), DAY_AMOUNTS),
    st.tuples(st.sampled_from(("hours", "working_hours")), HOUR_AMOUNTS),
)
PROPS = settings(max_examples=150, deadline=None)


@PROPS
@given(start=STARTS, unit_amount=UNIT_AMOUNTS)
def test_deadline_is_never_before_start(start: datetime, unit_amount: tuple[Unit, int]) -> None:
    result = CALC.deadline(start, Duration(*unit_amount))
    assert result.instant >= start
    assert result.instant.tzinfo == SH
    assert not result.data_missing


@PROPS
@given(start=STARTS, unit_amount=UNIT_AMOUNTS, more=st.integers(0, 20))
def test_deadline_is_monotone_in_amount(
    start: datetime, unit_amount: tuple[Unit, int], more: int
) -> None:
    unit, n = unit_amount
    assert (
        CALC.deadline(start, Duration(unit, n)).instant
        <= CALC.deadline(start, Duration(unit, n + more)).instant
    )


@PROPS
@given(start=STARTS, unit=st.sampled_from(DAY_UNITS), n=DAY_AMOUNTS)
def test_day_units_end_at_local_midnight_after_a_working_day(
    start: datetime, unit: Unit, n: int
) -> None:
    result = CALC.deadline(start, Duration(unit, n))
    assert result.instant.time() == time(0)
    assert result.instant.tzinfo == SH
    last_day = (result.instant - timedelta(microseconds=1)).date()
    assert CAL.is_working_day(last_day)
    assert last_day > start.astimezone(SH).date() or n == 0
    if unit == "calendar_days":
        assert last_day >= start.astimezone(SH).date() + timedelta(days=n)


@PROPS
@given(start=STARTS, n=st.integers(1, 30), m=st.integers(0, 30))
def test_working_days_extension_composes(start: datetime, n: int, m: int) -> None:
    first = CALC.deadline(start, Duration("working_days", n))
    assert CALC.extend(first.instant, Duration("working_days", m)) == CALC.deadline(
        start, Duration("working_days", n + m)
    )
    assert CALC.deadline(start, Duration("working_days", n + 1)).instant > first.instant  # strictly


@PROPS
@given(start=STARTS, n=HOUR_AMOUNTS, m=HOUR_AMOUNTS)
def test_working_hours_extension_composes_and_lands_in_a_window(
    start: datetime, n: int, m: int
) -> None:
    first = CALC.deadline(start, Duration("working_hours", n))
    combined = CALC.deadline(start, Duration("working_hours", n + m))
    assert CALC.extend(first.instant, Duration("working_hours", m)) == combined
    if n + m > 0:
        local = combined.instant.astimezone(SH)
        assert CAL.is_working_day(local.date())
        assert time(9) < local.time() <= time(17)


@PROPS
@given(
    deadline=STARTS,
    unit=st.sampled_from(ALL_UNITS),
    frm=STARTS,
    length=st.timedeltas(min_value=timedelta(0), max_value=timedelta(days=20)),
)
def test_pause_never_shortens_and_hours_pause_adds_exactly(
    deadline: datetime, unit: Unit, frm: datetime, length: timedelta
) -> None:
    to = (frm.astimezone(UTC) + length).astimezone(frm.tzinfo)  # elapsed, not wall-clock
    result = CALC.after_pause(deadline, unit, frm, to)
    assert result.instant >= deadline
    assert CALC.after_pause(deadline, unit, frm, frm) == ok(deadline.astimezone(SH))
    if unit == "hours":
        assert result.instant - deadline == length


@PROPS
@given(
    start=st.datetimes(
        min_value=datetime(2030, 1, 1), max_value=datetime(2040, 1, 1), timezones=st.just(SH)
    ),
    unit=st.sampled_from(DAY_UNITS),
    n=DAY_AMOUNTS,
)
def test_uncovered_years_are_always_flagged(start: datetime, unit: Unit, n: int) -> None:
    result = CALC.deadline(start, Duration(unit, n))
    assert result.data_missing
    last_day = (result.instant - timedelta(microseconds=1)).date()
    assert last_day.weekday() < 5
