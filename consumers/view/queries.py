"""What the API and the CLI read from the read model: one case, its history, and lists in
deadline order with keyset pagination.

Keyset, not OFFSET: a supervisor paging through a million open cases must get page 500 as
fast as page 1 (the `(status, deadline, case_id)` index serves both), and a case moving while
they page cannot make another appear twice. Statuses that depend on the time (`overdue`,
`at_risk`) take `now` as an argument: the caller owns the clock.

Every query takes `visible`, the caller's scope as a WHERE clause (`access.Scope.clause`): it
is part of the SQL, so no page, count or export can hold a case outside the scope, whatever
the other filters say. Left out, nothing is hidden (the CLI on the database itself).
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


Visible = sa.ColumnElement[bool] | None
"""A condition on `cases` that a row must meet to be seen at all (None: every row)."""


def case_by_id(conn: Connection, case_id: str, visible: Visible = None) -> CaseRow | None:
    """The case's row; None when there is none, or none the caller may see."""
    query = sa.select(cases).where(cases.c.case_id == case_id, *_seen(visible))
    found = conn.execute(query).first()
    return CaseRow(**found._mapping) if found is not None else None


def history_of(conn: Connection, case_id: str, visible: Visible = None) -> list[HistoryEntry]:
    """Every record of the case in `seq` order, retracted ones and retractions included (the
    caller shows or hides them; the row is the fold of the others). With `visible`, only while
    the case's row is visible: a history says as much as its row (empty otherwise)."""
    query = sa.select(history).where(history.c.case_id == case_id).order_by(history.c.seq)
    if visible is not None:
        shown = sa.select(cases.c.case_id).where(cases.c.case_id == case_id, visible)
        query = query.where(sa.exists(shown))
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
    due_before: datetime | None = None,
    search: str | None = None,
    visible: Visible = None,
) -> Page:
    """One page of the cases in `status`, by deadline (soonest first, none last), then id.
    `due_before`: a deadline before that instant (cases without one left out); `search`: a
    case id prefix or an upstream ticket number (`search_clause`)."""
    if not 0 < limit <= PAGE_MAX:
        raise ValueError(f"limit must be 1..{PAGE_MAX}, not {limit}")
    query = sa.select(cases).where(status_clause(status, now), *_seen(visible))
    for column, wanted in ((cases.c.workflow, workflow), (cases.c.tier, tier),
                           (cases.c.state, state)):  # fmt: skip
        if wanted is not None:
            query = query.where(column == wanted)
    if due_before is not None:
        query = query.where(cases.c.deadline < due_before)
    if search is not None:
        query = query.where(search_clause(search))
    if after is not None:
        query = query.where(_after(after))
    query = query.order_by(cases.c.deadline.asc().nulls_last(), cases.c.case_id).limit(limit + 1)
    rows = [CaseRow(**r._mapping) for r in conn.execute(query)]
    if len(rows) <= limit:
        return Page(rows, None)
    last = rows[limit - 1]
    return Page(rows[:limit], Cursor(last.deadline, last.case_id))


def search_clause(text: str) -> sa.ColumnElement[bool]:
    """What a search box finds: case ids that start with `text` (exactly: case-sensitive on both
    databases), and the case whose upstream number is `text` (a 12345 ticket, a grid report
    number), whatever channel prefix its id carries (`fold.ticket_of`)."""
    return sa.or_(starts_with(cases.c.case_id, text), cases.c.ticket == text)


def starts_with(column: sa.ColumnElement[Any], prefix: str) -> sa.ColumnElement[bool]:
    """`column` begins with `prefix`, compared exactly. Not LIKE: SQLite's LIKE ignores the
    case of ASCII letters (a scope `t03` would see `T03…`), and `%` or `_` in the prefix would
    be wildcards. `substr` counts characters on both databases, as `len` does."""
    return sa.func.substr(column, 1, len(prefix)) == prefix


def is_overdue(row: CaseRow, now: datetime) -> bool:
    """What `list_cases(status="overdue")` selects, for one row in hand (kept beside the SQL)."""
    running = row.status == "open" and not row.paused
    return running and (row.breached or (row.deadline is not None and row.deadline <= now))


def is_at_risk(row: CaseRow, now: datetime) -> bool:
    """What `list_cases(status="at_risk")` selects: warned of (its warning instant passed), not
    yet past its deadline."""
    running = row.status == "open" and not row.paused and not row.breached
    if not running or row.warning_at is None or row.deadline is None:
        return False
    return row.warning_at <= now < row.deadline


def _seen(visible: Visible) -> tuple[sa.ColumnElement[bool], ...]:
    return () if visible is None else (visible,)


def status_clause(status: ListStatus, now: datetime) -> sa.ColumnElement[bool]:
    """The SQL condition of a list's status at `now` (the backlog counts with the same)."""
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


def cases_found(
    conn: Connection,
    text: str,
    *,
    after: str | None = None,
    limit: int = 50,
    workflow: str | None = None,
    tier: str | None = None,
    visible: Visible = None,
) -> tuple[list[CaseRow], str | None]:
    """The cases `text` finds (`search_clause`: an id prefix, a ticket number), open and
    closed, in id order, a page at a time: the rows, and the id to pass as `after` for the next
    page (None on the last). The console's search: a supervisor types the start of an id (an
    area code, a date) or a ticket number and expects every case it names, whatever its status,
    in the order ids are read.
    The primary key serves the order; the search is a filter on it, so a text that matches
    nothing reads the whole table (one index scan)."""
    if not 0 < limit <= PAGE_MAX:
        raise ValueError(f"limit must be 1..{PAGE_MAX}, not {limit}")
    query = sa.select(cases).where(*_seen(visible))
    if text:
        query = query.where(search_clause(text))
    for column, wanted in ((cases.c.workflow, workflow), (cases.c.tier, tier)):
        if wanted is not None:
            query = query.where(column == wanted)
    if after is not None:
        query = query.where(cases.c.case_id > after)
    query = query.order_by(cases.c.case_id).limit(limit + 1)
    rows = [CaseRow(**r._mapping) for r in conn.execute(query)]
    if len(rows) <= limit:
        return rows, None
    return rows[:limit], rows[limit - 1].case_id
