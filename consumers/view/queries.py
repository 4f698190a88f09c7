"""What the API and the CLI read from the read model: one case, its history, and lists in
deadline order with keyset pagination.

Keyset, not OFFSET: a supervisor paging through a million open cases must get page 500 as
fast as page 1 (the `(status, deadline, case_id)` index serves both), and a case moving while
they page cannot make another appear twice. Statuses that depend on the time (`overdue`,
`at_risk`) take `now` as an argument: the caller owns the clock.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from consumers.view.fold import CaseRow
from consumers.view.tables import cases, history

ListStatus = Literal["open", "closed", "overdue", "at_risk", "paused"]
PAGE_MAX = 1000


@dataclass(frozen=True)
class HistoryEntry:
    """One record of a case as published; `retracted`: a later retraction took it back."""

    seq: int
    record_id: str
    type: str
    occurred_at: datetime
    retracted: bool
    record: Mapping[str, Any]


@dataclass(frozen=True)
class Cursor:
    """Where a page ended: the next page starts after this case in (deadline, case_id) order,
    cases without a deadline last."""

    deadline: datetime | None
    case_id: str


@dataclass(frozen=True)
class Page:
    rows: list[CaseRow]
    next: Cursor | None
    """None on the last page."""


def case_by_id(conn: Connection, case_id: str) -> CaseRow | None:
    found = conn.execute(sa.select(cases).where(cases.c.case_id == case_id)).first()
    return CaseRow(**found._mapping) if found is not None else None


def history_of(conn: Connection, case_id: str) -> list[HistoryEntry]:
    """Every record of the case in `seq` order, retracted ones and retractions included (the
    caller shows or hides them; the row is the fold of the others)."""
    query = sa.select(history).where(history.c.case_id == case_id).order_by(history.c.seq)
    return [
        HistoryEntry(
            seq=r.seq,
            record_id=r.record_id,
            type=r.type,
            occurred_at=r.occurred_at,
            retracted=r.retracted,
            record=r.record,
        )
        for r in conn.execute(query)
    ]


def list_cases(
    conn: Connection,
    status: ListStatus,
    *,
    now: datetime,
    after: Cursor | None = None,
    limit: int = 50,
    workflow: str | None = None,
    tier: str | None = None,
    state: str | None = None,
) -> Page:
    """One page of the cases in `status`, by deadline (soonest first, none last), then id."""
    if not 0 < limit <= PAGE_MAX:
        raise ValueError(f"limit must be 1..{PAGE_MAX}, not {limit}")
    query = sa.select(cases).where(_status(status, now))
    for column, wanted in ((cases.c.workflow, workflow), (cases.c.tier, tier),
                           (cases.c.state, state)):  # fmt: skip
        if wanted is not None:
            query = query.where(column == wanted)
    if after is not None:
        query = query.where(_after(after))
    query = query.order_by(cases.c.deadline.asc().nulls_last(), cases.c.case_id).limit(limit + 1)
    rows = [CaseRow(**r._mapping) for r in conn.execute(query)]
    if len(rows) <= limit:
        return Page(rows, None)
    last = rows[limit - 1]
    return Page(rows[:limit], Cursor(last.deadline, last.case_id))


def _status(status: ListStatus, now: datetime) -> sa.ColumnElement[bool]:
    c = cases.c
    open_ = c.status == "open"
    if status == "open":
        return open_
    if status == "closed":
        return c.status == "closed"
    if status == "paused":
        return sa.and_(open_, c.paused)
    running = sa.and_(open_, sa.not_(c.paused))
    if status == "overdue":
        return sa.and_(running, sa.or_(c.breached, c.deadline <= now))
    # at risk: warned of, not yet past
    return sa.and_(running, sa.not_(c.breached), c.warning_at <= now, c.deadline > now)


def _after(cursor: Cursor) -> sa.ColumnElement[bool]:
    c = cases.c
    if cursor.deadline is None:
        return sa.and_(c.deadline.is_(None), c.case_id > cursor.case_id)
    return sa.or_(
        c.deadline > cursor.deadline,
        sa.and_(c.deadline == cursor.deadline, c.case_id > cursor.case_id),
        c.deadline.is_(None),
    )
