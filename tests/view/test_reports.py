"""Case attributes and ticket numbers in the read model (consumers/view/reports.py).

A row shows the attributes of the report that opened it, read from the case-events topic beside
the engine's records, whichever of the two topics is read first; `person_key` never; a report
sent twice keeps its first attributes; a report the engine refused is never shown. A case made
by an intake adapter (`<channel>:<number>`) is found by its upstream number alone.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from hypothesis import given
from hypothesis import strategies as st

from consumers.view.fold import TierOrder, ticket_of
from consumers.view.projection import Consumed, project
from consumers.view.queries import cases_found, list_cases
from consumers.view.reports import report_of, shown
from engine.core import Engine
from tests.view.streams import CASE_EVENTS, as_consumed, as_consumed_events, replay, stored_rows

EXAMPLES = Path(__file__).resolve().parents[2] / "workflows" / "examples"
UNTIL = datetime.fromisoformat("2026-06-01T00:00:00+08:00")


def _from_the_grid(lines: Iterable[bytes]) -> list[bytes]:
    """The dispute examples as the grid adapter would name them: `grid:<report number>`, and
    each report with a `person_key` (what the adapter adds for repeat disputes)."""
    out = []
    for line in lines:
        try:
            event = json.loads(line)
        except ValueError:
            continue  # the examples' broken lines: refused, nothing to show
        if not isinstance(event, dict) or not isinstance(event.get("case_id"), str):
            continue
        event["case_id"] = f"grid:{event['case_id']}"
        attributes = event.get("payload", {}).get("attributes")
        if event["type"] == "case.reported" and isinstance(attributes, dict):
            attributes["person_key"] = "pk-0f3a"
        out.append(json.dumps(event, ensure_ascii=False).encode())
    return out


@pytest.fixture(scope="module")
def grid_events() -> list[bytes]:
    return _from_the_grid((EXAMPLES / "dispute-escalation.jsonl").read_bytes().splitlines())


@pytest.fixture(scope="module")
def grid_run(engine: Engine, grid_events: list[bytes]) -> tuple[Any, list[bytes]]:
    return replay(engine, grid_events, UNTIL)


@pytest.mark.parametrize("reports_first", [True, False], ids=["reports-first", "records-first"])
def test_a_row_shows_its_reports_attributes_whichever_topic_comes_first(
    view_db: sa.Engine,
    tiers: TierOrder,
    grid_events: list[bytes],
    grid_run: tuple[Any, list[bytes]],
    reports_first: bool,
) -> None:
    run, published = grid_run
    records, reports = as_consumed(published), as_consumed_events(grid_events)
    items = reports + records if reports_first else records + reports
    for start in range(0, len(items), 7):  # batches that cut the two apart
        project(view_db, items[start : start + 7], tiers)
    rows = stored_rows(view_db)
    assert set(rows) == set(run.cases)
    for case_id, case in run.cases.items():
        assert "person_key" in case.attrs  # the engine has it ...
        assert dict(rows[case_id].attributes) == shown(case.attrs), case_id  # ... the view not
        assert "person_key" not in rows[case_id].attributes
        assert rows[case_id].attributes  # every example report names a category at least


def test_a_report_sent_twice_keeps_its_first_attributes_and_a_refused_one_is_not_shown(
    view_db: sa.Engine, tiers: TierOrder, grid_events: list[bytes], grid_run: Any
) -> None:
    _, published = grid_run
    first = next(json.loads(e) for e in grid_events if json.loads(e)["type"] == "case.reported")
    again = {**first, "payload": {**first["payload"], "attributes": {"category": "changed"}}}
    other = {**first, "event_id": "never-accepted", "payload": {"attributes": {"category": "x"}}}
    extra = [json.dumps(e).encode() for e in (again, other)]
    project(view_db, as_consumed_events(grid_events), tiers)
    project(view_db, [Consumed(CASE_EVENTS, 9, n, v) for n, v in enumerate(extra)], tiers)
    project(view_db, as_consumed(published), tiers)
    row = stored_rows(view_db)[first["case_id"]]
    assert row.opened_by == first["event_id"]
    assert dict(row.attributes) == shown(first["payload"]["attributes"])


def test_a_case_of_an_adapter_is_found_by_its_upstream_number_alone(
    view_db: sa.Engine, tiers: TierOrder, grid_run: Any
) -> None:
    run, published = grid_run
    project(view_db, as_consumed(published), tiers)
    case_id = sorted(run.cases)[0]
    number = case_id.removeprefix("grid:")
    with view_db.connect() as conn:
        found, _ = cases_found(conn, number)
        assert [r.case_id for r in found] == [case_id]
        assert [r.case_id for r in cases_found(conn, "grid:")[0]] == sorted(run.cases)
        status = run.cases[case_id]
        listed = list_cases(conn, "closed" if status.closed else "open", now=UNTIL,
                            search=number)  # fmt: skip
        assert [r.case_id for r in listed.rows] == [case_id]
        assert cases_found(conn, number[:-1])[0] == []  # a number is matched whole


@pytest.mark.unit
def test_the_ticket_is_the_number_after_the_channel() -> None:
    assert ticket_of("hotline-12345:T-0001") == "T-0001"
    assert ticket_of("court:(2026)浙0102民诉前调1号") == "(2026)浙0102民诉前调1号"
    assert ticket_of("FQ-D-2026-0001") == "FQ-D-2026-0001"


@pytest.mark.unit
def test_only_plain_attributes_and_no_person_key_are_kept() -> None:
    value = {
        "type": "case.reported", "case_id": "c", "event_id": "e",
        "payload": {"attributes": {"township": "T03", "person_key": "pk", "n": 3,
                                   "nested": {"a": 1}, "list": [1]}},
    }  # fmt: skip
    report = report_of(json.dumps(value).encode())
    assert report is not None
    assert report.attributes == {"township": "T03", "n": 3}


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(), inner, max_size=3),
    max_leaves=12,
)


@pytest.mark.unit
@given(
    st.one_of(
        st.binary(max_size=200),
        JSON.map(lambda v: json.dumps(v).encode()),
        st.fixed_dictionaries(
            {"type": st.just("case.reported")},
            optional={"case_id": JSON, "event_id": JSON, "payload": JSON},
        ).map(lambda v: json.dumps(v).encode()),
    )
)
def test_any_value_on_the_case_events_topic_is_a_report_or_none(value: bytes) -> None:
    """Outside input: whatever an integrator wrote, the view reads it or passes it by."""
    report = report_of(value)
    if report is not None:
        assert isinstance(report.case_id, str)
        assert isinstance(report.event_id, str)
        assert "person_key" not in report.attributes
        assert all(v is None or isinstance(v, str | int | float | bool)
                   for v in report.attributes.values())  # fmt: skip
