"""What each console page shows, read from the read model in one connection: plain data for the
templates (no markup here, no HTTP there).

Every function takes `visible`, the caller's scope as a WHERE clause, and hands it to every
query it runs: the funnel, the lists, the forecast, the case and its history, the search. A
case outside the scope is absent from the counts and lists and its page is a 404, exactly as if
it did not exist: a township supervisor cannot even learn that another township's id is taken.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy.engine import Connection

from consumers.view import charts, labels
from consumers.view.counts import BacklogRow, backlog, forecast
from consumers.view.fold import CaseRow, TierOrder, is_retraction
from consumers.view.queries import (
    Cursor,
    HistoryEntry,
    ListStatus,
    Visible,
    case_by_id,
    cases_found,
    history_of,
    list_cases,
)

LIST_LIMIT = 50
"""Rows of each list on the backlog page; the rest are a click away (the search page pages)."""

Link = Callable[..., str]
"""`link(route_name, **query)`: the path of a console page, with its query string."""


@dataclass(frozen=True)
class Ladder:
    """A workflow's rungs over all its loaded versions, lowest first, and the newest version's
    own rungs (`current`: where new cases climb, shown even when empty)."""

    rungs: tuple[str, ...]
    current: frozenset[str]

    def index(self, tier: str | None) -> int | None:
        return self.rungs.index(tier) if tier in self.rungs else None


def ladders(tiers: TierOrder | None) -> dict[str, Ladder]:
    """Each workflow's ladder: the newest version's, with the rungs only older versions have
    inserted after the rung below them in their own ladder (a v1 `center` above `grid` when v2
    replaced it with `township` and `county`): cases of every version stand on one funnel."""
    versions: dict[str, list[tuple[int, tuple[str, ...]]]] = defaultdict(list)
    for (workflow, version), rungs in (tiers or {}).items():
        versions[workflow].append((version, tuple(rungs)))
    found = {}
    for workflow, known in versions.items():
        known.sort(reverse=True)
        merged = list(known[0][1])
        for _, older in known[1:]:
            for i, tier in enumerate(older):
                if tier not in merged:
                    below = [t for t in older[:i] if t in merged]
                    merged.insert(merged.index(below[-1]) + 1 if below else 0, tier)
        found[workflow] = Ladder(tuple(merged), frozenset(known[0][1]))
    return found


# -- the backlog ------------------------------------------------------------------------------


@dataclass(frozen=True)
class WorkflowBacklog:
    workflow: str
    open: int
    overdue: int
    at_risk: int
    paused: int
    funnel: charts.Funnel
    states: list[BacklogRow]


@dataclass(frozen=True)
class Backlog:
    workflows: list[WorkflowBacklog]
    totals: dict[str, int]
    overdue: list[CaseRow]
    at_risk: list[CaseRow]
    forecast: charts.DayBars
    forecast_total: int
    forecast_rungs: list[tuple[str, str | None, str, int]]
    hours: int


def backlog_page(
    conn: Connection,
    *,
    now: datetime,
    hours: int,
    zone: ZoneInfo,
    visible: Visible,
    workflow: str | None,
    ladder_of: Mapping[str, Ladder],
    link: Link,
) -> Backlog:
    rows = backlog(conn, now=now, visible=visible, workflow=workflow)
    per_workflow: dict[str, list[BacklogRow]] = defaultdict(list)
    for row in rows:
        per_workflow[row.workflow].append(row)
    workflows = [
        _workflow_backlog(name, states, ladder_of.get(name), link)
        for name, states in sorted(per_workflow.items())
    ]
    totals = {key: sum(getattr(r, key) for r in rows)
              for key in ("open", "overdue", "at_risk", "paused")}  # fmt: skip

    def first(status: ListStatus) -> list[CaseRow]:
        return list_cases(conn, status, now=now, limit=LIST_LIMIT, workflow=workflow,
                          visible=visible).rows  # fmt: skip

    ahead = forecast(conn, now=now, hours=hours, zone=zone, visible=visible, workflow=workflow)
    days = [day for day, _ in ahead.days]
    per_series: dict[str, dict[date, int]] = defaultdict(lambda: defaultdict(int))
    for cell in ahead.cells:
        per_series[cell.workflow][cell.day] += cell.count
    stacks = [(name, [per_series[name][d] for d in days]) for name in sorted(per_series)]
    day_label = {d: f"{d:%m-%d} {labels.WEEKDAYS[d.weekday()]}" for d in days}
    return Backlog(
        workflows=workflows,
        totals=totals,
        overdue=first("overdue"),
        at_risk=first("at_risk"),
        forecast=charts.day_bars(days, stacks, day_label=day_label),
        forecast_total=ahead.total,
        forecast_rungs=[(wf, tier, state, n) for (wf, tier, state), n in ahead.rungs],
        hours=hours,
    )


def _workflow_backlog(
    workflow: str, states: list[BacklogRow], ladder: Ladder | None, link: Link
) -> WorkflowBacklog:
    """The funnel: the ladder's rungs in order (the newest version's even when empty: where a
    case would climb; older versions' when they hold cases), then rungs no ladder loaded names
    by size, then cases with no rung."""
    per_tier: dict[str | None, list[BacklogRow]] = defaultdict(list)
    for row in states:
        per_tier[row.tier].append(row)
    ladder = ladder or Ladder((), frozenset())
    order: list[str | None] = [t for t in ladder.rungs if t in ladder.current or t in per_tier]
    others = [t for t in per_tier if t is not None and t not in order]
    order += sorted(others, key=lambda t: (-sum(r.open for r in per_tier[t]), t))
    if None in per_tier:
        order.append(None)
    rungs = []
    for tier in order:
        found = per_tier.get(tier, [])
        index = ladder.index(tier)
        if index is None and tier is not None:  # after the ladder's, in the funnel's order
            index = len(ladder.rungs) + order.index(tier)
        query: dict[str, Any] = {"status": "open", "workflow": workflow}
        if tier is not None:
            query["tier"] = tier
        rungs.append(charts.RungCount(
            tier, labels.rung(tier), sum(r.open for r in found),
            sum(r.overdue for r in found), sum(r.at_risk for r in found),
            sum(r.paused for r in found), charts.rung_color(index),
            link("console_search", **query)))  # fmt: skip
    return WorkflowBacklog(
        workflow=workflow,
        open=sum(r.open for r in states),
        overdue=sum(r.overdue for r in states),
        at_risk=sum(r.at_risk for r in states),
        paused=sum(r.paused for r in states),
        funnel=charts.funnel(rungs),
        states=states,
    )


# -- one case ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Entry:
    """One row of the case's record table."""

    entry: HistoryEntry
    described: labels.Described


@dataclass(frozen=True)
class CasePage:
    row: CaseRow
    entries: list[Entry]
    timeline: charts.Timeline


def case_page(
    conn: Connection,
    case_id: str,
    *,
    now: datetime,
    zone: ZoneInfo,
    visible: Visible,
    tiers: TierOrder,
    ladder_of: Mapping[str, Ladder],
) -> CasePage | None:
    """The case's row, its records and its timeline; None when it is not there to be seen.
    Escalations are read against the case's own version's ladder; rung colours are the
    funnel's."""
    row = case_by_id(conn, case_id, visible)
    if row is None:
        return None
    own = tiers.get((row.workflow, row.workflow_version))
    history = history_of(conn, case_id, visible)
    entries = [Entry(e, labels.describe(e.record, own, zone)) for e in history]
    data = timeline_input(row, entries, now, ladder_of.get(row.workflow))
    words = {"state": labels.WORDS["state"], "limit": labels.WORDS["limit"],
             "records": labels.WORDS["records"]}  # fmt: skip
    return CasePage(row, entries, charts.timeline(data, zone, row_labels=words))


def timeline_input(
    row: CaseRow, entries: Sequence[Entry], now: datetime, ladder: Ladder | None
) -> charts.TimelineInput:
    """Stays from the live records (what the row is the fold of), marks for every record:
    retracted ones are drawn too, struck through, so the page shows what was taken back."""
    stays: list[charts.Stay] = []
    marks: list[charts.Mark] = []
    closed_at: datetime | None = None
    for item in entries:
        e, d = item.entry, item.described
        title = f"{d.label} · {e.occurred_at.isoformat()} · {d.detail}".rstrip(" ·")
        marks.append(charts.Mark(d.kind, e.occurred_at, title, e.retracted))
        if e.retracted or is_retraction(e.record):
            continue
        if e.type in ("case.transitioned", "case.migrated"):
            if stays:
                stays[-1] = _ended(stays[-1], e.occurred_at)
            index = ladder.index(d.tier) if ladder else None
            stays.append(charts.Stay(d.to_state or row.state, index, e.occurred_at, None,
                                     d.deadline))  # fmt: skip
        elif e.type == "sla.changed" and stays and d.deadline is not None:
            last = stays[-1]
            stays[-1] = charts.Stay(last.state, last.tier_index, last.start, None, d.deadline)
        elif e.type == "case.closed":
            closed_at = e.occurred_at
    if stays and closed_at is not None:
        stays[-1] = _ended(stays[-1], closed_at)
    return charts.TimelineInput(stays, marks, now if row.status == "open" else None)


def _ended(stay: charts.Stay, at: datetime) -> charts.Stay:
    return charts.Stay(stay.state, stay.tier_index, stay.start, at, stay.deadline)


# -- search -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Found:
    rows: list[CaseRow]
    next_query: dict[str, str] | None
    """The query string of the next page; None on the last."""


def search_page(
    conn: Connection,
    *,
    q: str,
    status: ListStatus | None,
    workflow: str | None,
    tier: str | None,
    after: str | None,
    after_deadline: datetime | None,
    now: datetime,
    visible: Visible,
    limit: int = LIST_LIMIT,
) -> Found:
    """By id prefix or ticket number in id order (every status), or a list by status in
    deadline order (with the search, workflow and rung as filters); a page at a time, by keyset."""
    base = {k: v for k, v in (("q", q), ("status", status), ("workflow", workflow),
                              ("tier", tier)) if v}  # fmt: skip
    if status is None:
        rows, last = cases_found(conn, q, after=after, limit=limit, visible=visible,
                                 workflow=workflow, tier=tier)  # fmt: skip
        return Found(rows, {**base, "after": last} if last is not None else None)
    cursor = Cursor(after_deadline, after) if after is not None else None
    page = list_cases(conn, status, now=now, after=cursor, limit=limit, workflow=workflow,
                      tier=tier, search=q or None, visible=visible)  # fmt: skip
    if page.next is None:
        return Found(page.rows, None)
    more = {**base, "after": page.next.case_id}
    if page.next.deadline is not None:
        more["after_deadline"] = page.next.deadline.isoformat()
    return Found(page.rows, more)
