"""The read model's queries (consumers/view/queries.py) on SQLite and PostgreSQL: one case, its
history, and every list paged through by keyset, checked against the rows computed in Python."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import date, datetime, timedelta

import pytest
import sqlalchemy as sa

from consumers.demo.town import Town, TownSpec
from consumers.view.fold import CaseRow, TierOrder
from consumers.view.projection import Consumed, project
from consumers.view.queries import (
    Cursor,
    ListStatus,
    case_by_id,
    history_of,
    list_cases,
)
from engine.core import Engine
from engine.registry import WorkflowRegistry
from tests.view.streams import TOPIC, as_consumed, by_case, encode, replay, retraction, stored_rows

TOWN = TownSpec(population=15_000, start=date(2026, 1, 5), days=40)
STOPPED = datetime.fromisoformat("2026-02-14T00:00:00+08:00")  # the end of the town's 40 days
NOW = STOPPED + timedelta(days=20)
"""The view's clock runs ahead of the engine's (an engine stopped for 20 days): deadlines pass
unreported, some cases are at risk, paused ones are neither."""


@pytest.fixture(scope="module")
def published(registry: WorkflowRegistry, engine: Engine) -> list[bytes]:
    """Forty days of a small town, the clock stopped on day 40: open, closed, paused, overdue
    and at-risk cases."""
    town = Town(TOWN, registry)
    assert town.end == STOPPED
    return replay(engine, [e.raw for e in town.events()], STOPPED)[1]


def expected_in(status: ListStatus) -> Callable[[CaseRow], bool]:
    def running(r: CaseRow) -> bool:
        return r.status == "open" and not r.paused

    return {
        "open": lambda r: r.status == "open",
        "closed": lambda r: r.status == "closed",
        "paused": lambda r: r.status == "open" and r.paused,
        "overdue": lambda r: (
            running(r) and (r.breached or (r.deadline is not None and r.deadline <= NOW))
        ),
        "at_risk": lambda r: (
            running(r)
            and not r.breached
            and r.warning_at is not None
            and r.deadline is not None
            and r.warning_at <= NOW < r.deadline
        ),
    }[status]


@pytest.mark.parametrize("status", ["open", "closed", "paused", "overdue", "at_risk"])
def test_paging_through_a_list_gives_every_case_once_in_deadline_order(
    view_db: sa.Engine, published: list[bytes], tiers: TierOrder, status: ListStatus
) -> None:
    project(view_db, as_consumed(published), tiers)
    rows = stored_rows(view_db)
    wanted = sorted(
        (r for r in rows.values() if expected_in(status)(r)),
        key=lambda r: (r.deadline is None, r.deadline or NOW, r.case_id),
    )
    assert wanted
    seen: list[CaseRow] = []
    after: Cursor | None = None
    with view_db.connect() as conn:
        while True:
            page = list_cases(conn, status, now=NOW, after=after, limit=7)
            seen += page.rows
            if page.next is None:
                break
            after = page.next
    assert [r.case_id for r in seen] == [r.case_id for r in wanted]
    assert seen == wanted


def test_filters_narrow_a_list(
    view_db: sa.Engine, published: list[bytes], tiers: TierOrder
) -> None:
    project(view_db, as_consumed(published), tiers)
    rows = stored_rows(view_db).values()
    some = next(r for r in rows if r.status == "open" and r.tier is not None)
    with view_db.connect() as conn:
        page = list_cases(conn, "open", now=NOW, workflow=some.workflow, tier=some.tier,
                          state=some.state, limit=1000)  # fmt: skip
    rung = (some.workflow, some.tier, some.state)
    expected = {
        r.case_id for r in rows if r.status == "open" and (r.workflow, r.tier, r.state) == rung
    }
    assert {r.case_id for r in page.rows} == expected
    assert page.next is None
    with view_db.connect() as conn, pytest.raises(ValueError, match="limit"):
        list_cases(conn, "open", now=NOW, limit=0)


def test_one_case_and_its_history(
    view_db: sa.Engine, published: list[bytes], tiers: TierOrder
) -> None:
    histories = by_case(published)
    case_id, records = max(histories.items(), key=lambda kv: len(kv[1]))
    undo = retraction(records[-1], len(records) + 1)
    project(view_db, as_consumed(published), tiers)
    project(view_db, [Consumed(TOPIC, 99, 0, encode([undo])[0])], tiers)
    with view_db.connect() as conn:
        row = case_by_id(conn, case_id)
        assert row == stored_rows(view_db)[case_id]
        assert case_by_id(conn, "no-such-case") is None
        entries = history_of(conn, case_id)
        assert history_of(conn, "no-such-case") == []
    assert [e.seq for e in entries] == list(range(1, len(records) + 2))
    assert [dict(e.record) for e in entries] == [*records, undo]
    assert [e.retracted for e in entries] == [False] * (len(records) - 1) + [True, False]
    assert entries[0].occurred_at == datetime.fromisoformat(records[0]["occurred_at"])
    assert json.dumps(entries[-1].record)
