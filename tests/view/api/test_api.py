"""The API's routes over a town's read model, on SQLite and PostgreSQL: each answer checked
against the rows computed in Python (tests/view/test_queries.py checks the queries alone)."""

from __future__ import annotations

import csv
import io
from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient

from consumers.view import api
from consumers.view.fold import CaseRow
from consumers.view.queries import ListStatus, is_at_risk, is_overdue
from consumers.view.responses import CASE_COLUMNS
from tests.view.api.conftest import CALLERS, NOW
from tests.view.test_queries import expected_in

COUNTY = CALLERS["county"].headers
STATUSES: list[ListStatus] = ["open", "closed", "paused", "overdue", "at_risk"]


def deadline_order(rows: list[CaseRow]) -> list[str]:
    return [
        r.case_id
        for r in sorted(rows, key=lambda r: (r.deadline is None, r.deadline or NOW, r.case_id))
    ]


def page_through(
    client: TestClient, headers: dict[str, str], **params: Any
) -> list[dict[str, Any]]:
    """Every item of a list, following `next` (and never seeing a page twice)."""
    items: list[dict[str, Any]] = []
    after: str | None = None
    while True:
        query = {**params, **({"after": after} if after else {})}
        answer = client.get("/api/cases", params=query, headers=headers)
        assert answer.status_code == 200, answer.text
        body = answer.json()
        items += body["items"]
        if body["next"] is None:
            return items
        assert body["next"] != after
        after = body["next"]


def read_csv(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text)))


@pytest.mark.parametrize("status", STATUSES)
def test_each_list_pages_through_its_cases_in_deadline_order(
    client: TestClient, town_rows: dict[str, CaseRow], status: ListStatus
) -> None:
    wanted = deadline_order([r for r in town_rows.values() if expected_in(status)(r)])
    assert wanted
    items = page_through(client, COUNTY, status=status, limit=17)
    assert [i["case_id"] for i in items] == wanted
    for item in items:
        row = town_rows[item["case_id"]]
        assert item["overdue"] == is_overdue(row, NOW)
        assert item["at_risk"] == is_at_risk(row, NOW)
        assert item["state"] == row.state
        assert item["attributes"] == dict(row.attributes)


def test_filters_search_and_due_before(client: TestClient, town_rows: dict[str, CaseRow]) -> None:
    some = next(r for r in town_rows.values() if r.status == "open" and r.tier is not None)
    rung = {"workflow": some.workflow, "tier": some.tier, "state": some.state}
    found = page_through(client, COUNTY, status="open", **rung)
    expected = [
        r
        for r in town_rows.values()
        if r.status == "open"
        and (r.workflow, r.tier, r.state) == (some.workflow, some.tier, some.state)
    ]
    assert [i["case_id"] for i in found] == deadline_order(expected)

    prefix = some.case_id[:10]
    found = page_through(client, COUNTY, status="open", q=prefix, limit=5)
    expected = [
        r for r in town_rows.values() if r.status == "open" and r.case_id.startswith(prefix)
    ]
    assert [i["case_id"] for i in found] == deadline_order(expected)
    assert page_through(client, COUNTY, status="open", q=prefix.lower()) == []  # exact prefix

    cut = NOW - timedelta(days=3)
    found = page_through(client, COUNTY, status="overdue", due_before=cut.isoformat())
    expected = [
        r
        for r in town_rows.values()
        if is_overdue(r, NOW) and r.deadline is not None and r.deadline < cut
    ]
    assert expected
    assert [i["case_id"] for i in found] == deadline_order(expected)


def test_one_case_and_its_history(client: TestClient, town_rows: dict[str, CaseRow]) -> None:
    row = max(town_rows.values(), key=lambda r: r.last_seq)
    answer = client.get(f"/api/cases/{row.case_id}", headers=COUNTY)
    assert answer.status_code == 200
    body = answer.json()
    assert body["case_id"] == row.case_id
    assert body["workflow_version"] == row.workflow_version
    assert body["escalations"] == row.escalations
    assert (body["deadline"] is None) == (row.deadline is None)
    history = client.get(f"/api/cases/{row.case_id}/history", headers=COUNTY).json()
    assert [i["seq"] for i in history["items"]] == list(range(1, row.last_seq + 1))
    assert all(i["record"]["case_id"] == row.case_id for i in history["items"])
    for path in ("/api/cases/no-such-case", "/api/cases/no-such-case/history"):
        missing = client.get(path, headers=COUNTY)
        assert (missing.status_code, missing.json()) == (404, {"detail": "no such case"})


def test_backlog_counts_the_open_cases_of_each_rung(
    client: TestClient, town_rows: dict[str, CaseRow]
) -> None:
    expected: dict[tuple[Any, ...], list[int]] = {}
    for r in town_rows.values():
        if r.status == "open":
            counts = expected.setdefault((r.workflow, r.tier, r.state), [0, 0, 0, 0])
            for n, flag in enumerate((True, r.paused, is_overdue(r, NOW), is_at_risk(r, NOW))):
                counts[n] += int(flag)
    body = client.get("/api/backlog", headers=COUNTY).json()
    got = {
        (g["workflow"], g["tier"], g["state"]): [g["open"], g["paused"], g["overdue"], g["at_risk"]]
        for g in body["rungs"]
    }
    assert got == expected
    assert body["totals"]["overdue"] == sum(c[2] for c in expected.values()) > 0
    one = client.get("/api/backlog", params={"workflow": "petition"}, headers=COUNTY).json()
    assert {g["workflow"] for g in one["rungs"]} == {"petition"}


def test_csv_exports_say_what_the_json_says(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(api, "PAGE_MAX", 9)  # the export streams page after page
    items = page_through(client, COUNTY, status="overdue")
    answer = client.get("/api/cases", params={"status": "overdue", "format": "csv"}, headers=COUNTY)
    assert answer.status_code == 200
    assert answer.headers["content-type"] == "text/csv; charset=utf-8"
    assert "attachment" in answer.headers["content-disposition"]
    assert answer.text.splitlines()[0] == ",".join(CASE_COLUMNS)
    rows = read_csv(answer.text)
    assert len(items) > 9
    assert [r["case_id"] for r in rows] == [i["case_id"] for i in items]
    assert {r["overdue"] for r in rows} == {"true"}
    by_accept = client.get(
        "/api/cases", params={"status": "overdue"}, headers={**COUNTY, "Accept": "text/csv"}
    )
    assert by_accept.text == answer.text

    backlog = client.get("/api/backlog", headers=COUNTY).json()
    exported = read_csv(client.get("/api/backlog?format=csv", headers=COUNTY).text)
    assert [int(r["overdue"]) for r in exported] == [g["overdue"] for g in backlog["rungs"]]

    forecast = client.get("/api/forecast?hours=240", headers=COUNTY).json()
    exported = read_csv(client.get("/api/forecast?hours=240&format=csv", headers=COUNTY).text)
    assert sum(int(r["count"]) for r in exported) == forecast["total"]

    case_id = items[0]["case_id"]
    history = client.get(f"/api/cases/{case_id}/history", headers=COUNTY).json()["items"]
    exported = read_csv(client.get(f"/api/cases/{case_id}/history?format=csv", headers=COUNTY).text)
    assert [int(r["seq"]) for r in exported] == [h["seq"] for h in history]


def test_forecast_counts_the_running_cases_due_within_the_horizon(
    client: TestClient, town_rows: dict[str, CaseRow]
) -> None:
    """Against Python over the rows (test_forecast.py checks the days by hand)."""
    for hours in (1, 72, 24 * 31):
        until = NOW + timedelta(hours=hours)
        due = [
            r
            for r in town_rows.values()
            if r.status == "open"
            and not r.paused
            and not r.breached
            and r.deadline is not None
            and NOW < r.deadline <= until
        ]
        body = client.get("/api/forecast", params={"hours": hours}, headers=COUNTY).json()
        assert body["total"] == len(due) == sum(d["count"] for d in body["by_day"])
        by_rung = {(g["workflow"], g["tier"], g["state"]): g["count"] for g in body["by_rung"]}
        expected: dict[tuple[Any, ...], int] = {}
        for r in due:
            expected[(r.workflow, r.tier, r.state)] = (
                expected.get((r.workflow, r.tier, r.state), 0) + 1
            )
        assert by_rung == expected
    assert body["total"] > 0


def test_bad_requests_are_json_errors(client: TestClient) -> None:
    cases = [
        ("/api/cases?after=not-a-cursor", 400),
        ("/api/cases?status=lost", 422),
        ("/api/cases?limit=0", 422),
        ("/api/cases?limit=1001", 422),
        ("/api/cases?due_before=2026-03-01T00:00:00", 422),  # no UTC offset
        ("/api/forecast?hours=0", 422),
        ("/api/forecast?hours=10000", 422),
        ("/api/cases?format=xml", 422),
        ("/api/nothing-here", 404),
    ]
    for path, status in cases:
        answer = client.get(path, headers=COUNTY)
        assert answer.status_code == status, path
        assert answer.headers["content-type"] == "application/json"
        assert "detail" in answer.json()
        assert "Traceback" not in answer.text


def test_every_answer_says_no_store(client: TestClient) -> None:
    for path in ("/api/cases", "/api/backlog", "/healthz", "/api/cases/nope"):
        answer = client.get(path, headers=COUNTY)
        assert answer.headers["cache-control"] == "no-store"
        assert answer.headers["x-content-type-options"] == "nosniff"
