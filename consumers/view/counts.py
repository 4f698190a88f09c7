"""The read model's counts: the backlog per rung, and the forecast of breaches to come.

Both are computed by the database (GROUP BY over the `cases` table, one statement each), never
by reading rows into Python: a million open cases must cost one scan, not a million objects.
Both take `visible`, the caller's scope as a WHERE clause, like every query of `queries`: a
count is a list that has been summed, and must not leak what the list would hide.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from consumers.view.queries import Visible, status_clause
from consumers.view.tables import cases

Rung = tuple[str, str | None, str]
"""Where a case stands: (workflow, tier, state)."""


@dataclass(frozen=True)
class BacklogRow:
    """The open cases of one rung, and how many of them are paused, overdue or at risk (the
    same conditions as the lists of `queries`, at the same `now`)."""

    workflow: str
    tier: str | None
    state: str
    open: int
    paused: int
    overdue: int
    at_risk: int


def backlog(
    conn: Connection, *, now: datetime, visible: Visible = None, workflow: str | None = None
) -> list[BacklogRow]:
    """The open cases per (workflow, tier, state), in that order."""
    c = cases.c

    def tally(condition: sa.ColumnElement[bool]) -> sa.ColumnElement[int]:
        return sa.func.coalesce(sa.func.sum(sa.case((condition, 1), else_=0)), 0)

    query = (
        sa.select(
            c.workflow,
            c.tier,
            c.state,
            sa.func.count().label("open"),
            tally(status_clause("paused", now)).label("paused"),
            tally(status_clause("overdue", now)).label("overdue"),
            tally(status_clause("at_risk", now)).label("at_risk"),
        )
        .where(status_clause("open", now))
        .group_by(c.workflow, c.tier, c.state)
        .order_by(c.workflow, c.tier.asc().nulls_first(), c.state)
    )
    if visible is not None:
        query = query.where(visible)
    if workflow is not None:
        query = query.where(c.workflow == workflow)
    counted = ("open", "paused", "overdue", "at_risk")
    return [
        BacklogRow(r.workflow, r.tier, r.state, *(int(r._mapping[name]) for name in counted))
        for r in conn.execute(query)
    ]


@dataclass(frozen=True)
class Day:
    """A calendar day of the forecast, in its time zone, cut to the horizon: `start` is the
    later of midnight and `now`, `end` the earlier of 24:00 and the horizon's end."""

    day: date
    start: datetime
    end: datetime


@dataclass(frozen=True)
class ForecastCell:
    day: date
    workflow: str
    tier: str | None
    state: str
    count: int


@dataclass(frozen=True)
class Forecast:
    """The breaches to expect if nobody acts: the open, running (not paused), not yet breached
    cases whose deadline falls in `(now, until]`, per day and rung (`cells`), per day (every
    day of the horizon, zeros included) and per rung."""

    now: datetime
    until: datetime
    zone: ZoneInfo
    cells: list[ForecastCell]
    days: list[tuple[date, int]]
    rungs: list[tuple[Rung, int]]

    @property
    def total(self) -> int:
        return sum(count for _, count in self.days)


def forecast_days(now: datetime, until: datetime, zone: ZoneInfo) -> list[Day]:
    """The days of the horizon `(now, until]` in `zone`. A deadline at 00:00 belongs to the day
    before: the engine's days end at 24:00 (a limit of "1 working day" from Monday runs to
    Monday 24:00, which is Tuesday 00:00)."""
    if until <= now:
        raise ValueError(f"the horizon must end after now: {until} <= {now}")
    first = (now.astimezone(zone)).date()
    last = (until.astimezone(zone) - timedelta(microseconds=1)).date()
    days: list[Day] = []
    day = first
    while day <= last:
        midnight = datetime.combine(day, time(), zone)
        next_midnight = datetime.combine(day + timedelta(days=1), time(), zone)
        days.append(Day(day, max(now, midnight), min(until, next_midnight)))
        day += timedelta(days=1)
    return days


def forecast(
    conn: Connection,
    *,
    now: datetime,
    hours: int,
    zone: ZoneInfo,
    visible: Visible = None,
    workflow: str | None = None,
) -> Forecast:
    """The forecast over the next `hours` from `now`, days in `zone`.

    The day of each deadline is computed by the database as a CASE over the days' ends
    (computed here, in Python, with the zone's rules): portable SQL, where date arithmetic in
    a time zone is not (SQLite has none)."""
    until = now + timedelta(hours=hours)
    days = forecast_days(now, until, zone)
    c = cases.c
    which_day = sa.case(
        *((c.deadline <= d.end, index) for index, d in enumerate(days)), else_=None
    ).label("day")
    due = sa.select(which_day, c.workflow, c.tier, c.state).where(
        c.status == "open",
        sa.not_(c.paused),
        sa.not_(c.breached),
        c.deadline > now,
        c.deadline <= until,
    )
    if visible is not None:
        due = due.where(visible)
    if workflow is not None:
        due = due.where(c.workflow == workflow)
    # Grouped outside: PostgreSQL does not match a GROUP BY expression with bound parameters
    # to the same expression in the select list.
    inner = due.subquery()
    query = sa.select(
        inner.c.day, inner.c.workflow, inner.c.tier, inner.c.state, sa.func.count()
    ).group_by(inner.c.day, inner.c.workflow, inner.c.tier, inner.c.state)
    cells = sorted(
        (
            ForecastCell(days[int(index)].day, wf, tier, state, int(count))
            for index, wf, tier, state, count in conn.execute(query)
        ),
        key=lambda cell: (cell.day, cell.workflow, cell.tier or "", cell.state),
    )
    per_day: dict[date, int] = {d.day: 0 for d in days}
    per_rung: dict[Rung, int] = defaultdict(int)
    for cell in cells:
        per_day[cell.day] += cell.count
        per_rung[(cell.workflow, cell.tier, cell.state)] += cell.count
    return Forecast(
        now=now,
        until=until,
        zone=zone,
        cells=cells,
        days=list(per_day.items()),
        rungs=sorted(per_rung.items(), key=lambda kv: (kv[0][0], kv[0][1] or "", kv[0][2])),
    )
