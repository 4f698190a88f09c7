"""Scoped tokens never see another scope's cases: through every list (each status, paged and
searched), the count (backlog), every export (CSV) and the forecast, on both databases.

For each kind of scope (workflows; workflows and a case-id prefix; a case-id prefix; an
attribute prefix) what the API returns is compared with the rows the scope allows, computed in
Python from the whole read model; each scope must see some cases and miss others, or the test
would prove nothing.
"""

from __future__ import annotations

import csv
import io
from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient

from consumers.view.fold import CaseRow
from consumers.view.queries import is_at_risk, is_overdue
from tests.view.api.conftest import CALLERS, NOW, SCOPED, Caller
from tests.view.api.test_api import STATUSES, deadline_order, page_through
from tests.view.test_queries import expected_in

HORIZON = 24 * 31


@pytest.fixture(params=SCOPED)
def caller(request: pytest.FixtureRequest) -> Caller:
    return CALLERS[request.param]


def visible(caller: Caller, rows: dict[str, CaseRow]) -> list[CaseRow]:
    return [r for r in rows.values() if caller.sees(r)]


def csv_ids(client: TestClient, caller: Caller, route: str, **params: Any) -> list[str]:
    answer = client.get(route, params={**params, "format": "csv"}, headers=caller.headers)
    assert answer.status_code == 200
    return [r["case_id"] for r in csv.DictReader(io.StringIO(answer.text))]


def test_each_scope_sees_some_cases_and_not_others(
    caller: Caller, town_rows: dict[str, CaseRow]
) -> None:
    seen = visible(caller, town_rows)
    assert 0 < len(seen) < len(town_rows)
    assert any(is_overdue(r, NOW) for r in seen)


def test_no_list_and_no_export_leaks(
    client: TestClient, caller: Caller, town_rows: dict[str, CaseRow]
) -> None:
    seen = visible(caller, town_rows)
    for status in STATUSES:
        wanted = deadline_order([r for r in seen if expected_in(status)(r)])
        listed = page_through(client, caller.headers, status=status, limit=25)
        assert [i["case_id"] for i in listed] == wanted, status
        assert csv_ids(client, caller, "/api/cases", status=status) == wanted, status


def test_searches_and_filters_stay_in_scope(
    client: TestClient, caller: Caller, town_rows: dict[str, CaseRow]
) -> None:
    hidden = [r for r in town_rows.values() if not caller.sees(r) and r.status == "open"]
    assert hidden
    for row in hidden[:5]:
        assert page_through(client, caller.headers, status="open", q=row.case_id) == []
        for state in ("open", "overdue"):
            found = page_through(
                client, caller.headers, status=state, state=row.state, tier=row.tier
            )
            assert all(caller.sees(town_rows[i["case_id"]]) for i in found)
        for suffix in ("", "/history", "/history?format=csv"):
            answer = client.get(f"/api/cases/{row.case_id}{suffix}", headers=caller.headers)
            assert answer.status_code == 404


def test_the_backlog_counts_only_the_scope(
    client: TestClient, caller: Caller, town_rows: dict[str, CaseRow]
) -> None:
    expected: dict[tuple[Any, ...], list[int]] = {}
    for r in visible(caller, town_rows):
        if r.status == "open":
            counts = expected.setdefault((r.workflow, r.tier, r.state), [0, 0, 0, 0])
            for n, flag in enumerate((True, r.paused, is_overdue(r, NOW), is_at_risk(r, NOW))):
                counts[n] += int(flag)
    body = client.get("/api/backlog", headers=caller.headers).json()
    got = {
        (g["workflow"], g["tier"], g["state"]): [g["open"], g["paused"], g["overdue"], g["at_risk"]]
        for g in body["rungs"]
    }
    assert got == expected
    assert body["totals"]["open"] == sum(c[0] for c in expected.values())
    exported = client.get("/api/backlog?format=csv", headers=caller.headers).text
    rows = list(csv.DictReader(io.StringIO(exported)))
    assert sum(int(r["open"]) for r in rows) == body["totals"]["open"]


def test_the_forecast_counts_only_the_scope(
    client: TestClient, caller: Caller, town_rows: dict[str, CaseRow]
) -> None:
    everyone = client.get(
        "/api/forecast", params={"hours": HORIZON}, headers=CALLERS["county"].headers
    ).json()
    body = client.get("/api/forecast", params={"hours": HORIZON}, headers=caller.headers).json()
    due = [
        r
        for r in visible(caller, town_rows)
        if r.status == "open"
        and not r.paused
        and not r.breached
        and r.deadline is not None
        and NOW < r.deadline <= NOW + timedelta(hours=HORIZON)
    ]
    assert body["total"] == len(due) < everyone["total"]
    rungs = {(g["workflow"], g["tier"], g["state"]) for g in body["by_rung"]}
    assert rungs == {(r.workflow, r.tier, r.state) for r in due}
    exported = client.get(
        "/api/forecast", params={"hours": HORIZON, "format": "csv"}, headers=caller.headers
    ).text
    rows = list(csv.DictReader(io.StringIO(exported)))
    assert sum(int(r["count"]) for r in rows) == len(due)
    assert {r["workflow"] for r in rows} <= {w for w, _, _ in rungs}
