"""Procedural deadline arithmetic the way Chinese procedure counts it.

Why this is not just `start + timedelta`: under Civil Procedure Law art. 85 the day on which a
period begins is not counted, a period ends at 24:00 of its last day, and when the last day is
a public holiday (or weekend) the period ends on the first working day after it, where a
make-up working Saturday (调休) *is* a working day. All of that is about *local* dates in
China, whatever offset the triggering event carried, so every day computation is done on
dates in the calculator's zone (Asia/Shanghai by default).

Pure functions of their arguments: no wall clock, no I/O. The calendar may lack official data
for a year; the result then uses a Mon–Fri guess and says so with `data_missing=True`, so the
engine can surface the uncertainty instead of enforcing a possibly wrong limit.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Literal, get_args
from zoneinfo import ZoneInfo

from engine.calendar import BusinessCalendar

Unit = Literal["working_days", "calendar_days", "hours", "working_hours"]
UNITS: frozenset[str] = frozenset(get_args(Unit))
DAY_UNITS: frozenset[str] = frozenset({"working_days", "calendar_days"})
DEFAULT_TZ = "Asia/Shanghai"

_ONE_DAY = timedelta(days=1)
_TICK = timedelta(microseconds=1)
_ZERO = timedelta(0)


@dataclass(frozen=True, slots=True)
class Duration:
    """A procedural limit such as "15 working days"; amounts are whole units, never negative."""

    unit: Unit
    amount: int

    def __post_init__(self) -> None:
        if self.unit not in UNITS:
            raise ValueError(f"unknown unit {self.unit!r}; expected one of {sorted(UNITS)}")
        if type(self.amount) is not int or self.amount < 0:
            raise ValueError(f"amount must be a non-negative int, got {self.amount!r}")


@dataclass(frozen=True, slots=True)
class WorkingHours:
    """One daily window of office hours on working days (local wall-clock times)."""

    start: time = time(9)
    end: time = time(17)

    def __post_init__(self) -> None:
        if self.start.tzinfo is not None or self.end.tzinfo is not None:
            raise ValueError("working hours are local wall-clock times; give naive times")
        if not self.start < self.end:
            raise ValueError(f"working hours must start before they end: {self.start}–{self.end}")


@dataclass(frozen=True, slots=True)
class Deadline:
    """When a limit expires, and whether a guessed (uncovered) year went into computing it."""

    instant: datetime
    data_missing: bool

    def __post_init__(self) -> None:
        _require_aware(self.instant, "instant")


def _require_aware(value: datetime, name: str) -> datetime:
    # A naive datetime has no single instant; guessing its zone would shift limits by hours.
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{name} must be timezone-aware, got naive {value!r}")
    return value.astimezone(UTC)


def _default_tz() -> ZoneInfo:
    return ZoneInfo(DEFAULT_TZ)


class _Memo:
    """What a calculator has looked up per local date: whether it is a working day, and its
    office window in UTC. Both depend on the date alone (the calculator's calendar, zone and
    hours never change), and a working-time warning walks the same days twice per stay: the
    look-ups were a tenth of an event (issue 17). Grows by one entry per date ever consulted."""

    __slots__ = ("windows", "working")

    def __init__(self) -> None:
        self.working: dict[date, bool] = {}
        self.windows: dict[date, tuple[datetime, datetime]] = {}


class _Days:
    """Calendar look-ups that remember whether any consulted date was in an uncovered year."""

    __slots__ = ("calendar", "known", "missing")

    def __init__(self, calendar: BusinessCalendar, known: dict[date, bool] | None = None) -> None:
        self.calendar = calendar
        self.known = known if known is not None else {}
        self.missing = False

    def working(self, d: date) -> bool:
        if not self.calendar.covers(d.year):
            self.missing = True
        found = self.known.get(d)
        if found is None:
            found = self.known[d] = self.calendar.is_working_day(d)
        return found

    def roll(self, d: date) -> date:
        """`d`, or the first working day after it (art. 85: holidays push the last day)."""
        while not self.working(d):
            d += _ONE_DAY
        return d

    def nth_after(self, d: date, n: int) -> date:
        """The n-th working day strictly after `d` (n >= 1)."""
        while n > 0:
            d += _ONE_DAY
            if self.working(d):
                n -= 1
        return d

    def count_between(self, first: date, last: date) -> int:
        """Working days in the half-open interval (first, last]."""
        count = 0
        d = first
        while d < last:
            d += _ONE_DAY
            count += self.working(d)
        return count


@dataclass(frozen=True, slots=True)
class DeadlineCalculator:
    """Computes, extends and pauses deadlines against one calendar, zone and office window.

    Datetime arguments must be timezone-aware (any offset); results are in `tz`.
    """

    calendar: BusinessCalendar
    tz: ZoneInfo = field(default_factory=_default_tz)
    hours: WorkingHours = field(default_factory=WorkingHours)
    _memo: _Memo = field(default_factory=_Memo, compare=False, repr=False)

    def deadline(self, start: datetime, d: Duration) -> Deadline:
        """The limit `d` counted from `start`, the instant the case entered its state.

        Day units: the start day is not counted; the period ends at 24:00 of its last day, given
        as local midnight starting the next day. `calendar_days` N: last day is start day + N,
        rolled forward to a working day. `working_days` N: last day is the N-th working day
        after the start day; N=0 means the start day itself, rolled forward like any last day
        (so a 0-day limit begun on a holiday still ends on a working day). `hours` N: exactly
        N elapsed hours. `working_hours` N: N hours counted only inside the office window on
        working days, from `start` or from the next window opening; N=0 returns `start`.
        """
        at = _require_aware(start, "start")
        days = _Days(self.calendar, self._memo.working)
        if d.unit == "hours":
            instant = at + timedelta(hours=d.amount)
        elif d.unit == "working_hours":
            instant = self._add_working_time(at, timedelta(hours=d.amount), days)
        else:
            first = self._local_date(at)
            if d.unit == "calendar_days":
                last = days.roll(first + timedelta(days=d.amount))
            elif d.amount == 0:
                last = days.roll(first)
            else:
                last = days.nth_after(first, d.amount)
            instant = self._end_of(last)
        return Deadline(instant.astimezone(self.tz), days.missing)

    def extend(self, deadline: datetime, d: Duration) -> Deadline:
        """An authorised extension: move an existing deadline by `d`.

        Day units count from the deadline's last day L (the local date just before the
        deadline instant), exactly as if the period had started on L: +N calendar days ends at
        24:00 of L+N (rolled), +N working days at 24:00 of the N-th working day after L. Hour
        units add after the deadline instant. A zero amount returns the deadline unchanged
        (an extension of nothing must not re-roll an existing limit).
        """
        at = _require_aware(deadline, "deadline")
        if d.amount == 0:
            return Deadline(at.astimezone(self.tz), data_missing=False)
        if d.unit in DAY_UNITS:
            return self.deadline(at - _TICK, d)
        return self.deadline(at, d)

    def after_pause(
        self, deadline: datetime, unit: Unit, paused_from: datetime, paused_to: datetime
    ) -> Deadline:
        """The deadline after the clock stood still from `paused_from` to `paused_to`.

        The pause is measured in `unit` and added as an extension: calendar days = difference
        of the local dates; working days = working days d with from-date < d <= to-date;
        hours = elapsed time; working hours = office time inside the pause. A pause that
        measures zero leaves the deadline unchanged.
        """
        if unit not in UNITS:
            raise ValueError(f"unknown unit {unit!r}; expected one of {sorted(UNITS)}")
        frm = _require_aware(paused_from, "paused_from")
        to = _require_aware(paused_to, "paused_to")
        at = _require_aware(deadline, "deadline")
        if to < frm:
            raise ValueError(f"pause ends ({paused_to}) before it starts ({paused_from})")
        days = _Days(self.calendar, self._memo.working)
        if unit == "hours":
            instant = at + (to - frm)
        elif unit == "working_hours":
            paused = self._working_time_between(frm, to, days)
            instant = self._add_working_time(at, paused, days)
        else:
            first, last = self._local_date(frm), self._local_date(to)
            n = (last - first).days if unit == "calendar_days" else days.count_between(first, last)
            moved = self.extend(at, Duration(unit, n))
            return Deadline(moved.instant, moved.data_missing or days.missing)
        return Deadline(instant.astimezone(self.tz), days.missing)

    def working_fraction(self, start: datetime, end: datetime, fraction: float) -> datetime:
        """The instant at which `fraction` of the office time between `start` and `end` has
        passed: where a working-day limit warns, so a warning never lands at 04:00 in the
        middle of a holiday. With no office time in between, the plain elapsed fraction."""
        frm, to = _require_aware(start, "start"), _require_aware(end, "end")
        days = _Days(self.calendar, self._memo.working)
        total = self._working_time_between(frm, to, days)
        if total <= _ZERO:
            return (frm + (to - frm) * fraction).astimezone(self.tz)
        return self._add_working_time(frm, total * fraction, days).astimezone(self.tz)

    # -- helpers; all instants are handled in UTC, where datetime arithmetic is absolute -----

    def _local_date(self, at: datetime) -> date:
        return at.astimezone(self.tz).date()

    def _local_instant(self, d: date, t: time) -> datetime:
        return datetime.combine(d, t, tzinfo=self.tz).astimezone(UTC)

    def _end_of(self, d: date) -> datetime:
        """24:00 of local day `d`, i.e. the first instant of the next local day."""
        return self._local_instant(d + _ONE_DAY, time(0))

    def _window(self, d: date) -> tuple[datetime, datetime]:
        windows = self._memo.windows
        found = windows.get(d)
        if found is None:
            found = windows[d] = (
                self._local_instant(d, self.hours.start),
                self._local_instant(d, self.hours.end),
            )
        return found

    def _add_working_time(self, at: datetime, amount: timedelta, days: _Days) -> datetime:
        """The instant when `amount` of office time has elapsed after `at`."""
        if amount <= _ZERO:
            return at
        d = self._local_date(at)
        while True:
            if days.working(d):
                opens, closes = self._window(d)
                begin = max(at, opens)
                if begin < closes:
                    if amount <= closes - begin:
                        return begin + amount
                    amount -= closes - begin
            d += _ONE_DAY

    def _working_time_between(self, frm: datetime, to: datetime, days: _Days) -> timedelta:
        """Office time inside [frm, to]."""
        total = _ZERO
        d, last = self._local_date(frm), self._local_date(to)
        while frm < to and d <= last:
            if days.working(d):
                opens, closes = self._window(d)
                total += max(_ZERO, min(to, closes) - max(frm, opens))
            d += _ONE_DAY
        return total
