"""Keyset pagination through the API (hypothesis): whatever the status, filters, scope and page
size, following `next` visits every matching case exactly once, in deadline order (none last),
ties broken by case id; every page but the last is full; the CSV export says the same.

The town's deadlines tie a lot (working-day limits end at 24:00), so the tie-break is what
most page boundaries test.
"""

from __future__ import annotations

import csv
import io
from collections import Counter
from datetime import timedelta
from typing import Any

from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from consumers.view.fold import CaseRow
from tests.view.api.conftest import CALLERS, NOW
from tests.view.api.test_api import STATUSES, deadline_order
from tests.view.test_queries import expected_in

WORKFLOWS = ["dispute-escalation", "hotline-12345", "petition"]


def test_the_town_has_tied_deadlines(town_rows: dict[str, CaseRow]) -> None:
    ties = Counter(r.deadline for r in town_rows.values() if r.deadline is not None)
    assert max(ties.values()) >= 5


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_following_next_visits_every_case_once_in_deadline_order(
    client: TestClient, town_rows: dict[str, CaseRow], data: st.DataObject
) -> None:
    caller = CALLERS[data.draw(st.sampled_from(sorted(CALLERS)), "caller")]
    status = data.draw(st.sampled_from(STATUSES), "status")
    limit = data.draw(st.integers(1, 60), "limit")
    params: dict[str, Any] = {"status": status}
    workflows = sorted(caller.scope.workflows) if caller.scope.workflows else WORKFLOWS
    if data.draw(st.booleans(), "by workflow"):
        params["workflow"] = data.draw(st.sampled_from(workflows), "workflow")
    if data.draw(st.booleans(), "search"):
        some = data.draw(st.sampled_from(sorted(town_rows)), "like")
        params["q"] = some[: data.draw(st.integers(1, len(some)), "length")]
    cut = None
    if data.draw(st.booleans(), "due before"):
        cut = NOW + timedelta(hours=data.draw(st.integers(-30 * 24, 30 * 24), "hours"))
        params["due_before"] = cut.isoformat()

    def matches(row: CaseRow) -> bool:
        return (
            caller.sees(row)
            and expected_in(status)(row)
            and row.workflow == params.get("workflow", row.workflow)
            and row.case_id.startswith(params.get("q", ""))
            and (cut is None or (row.deadline is not None and row.deadline < cut))
        )

    wanted = deadline_order([r for r in town_rows.values() if matches(r)])
    seen: list[str] = []
    after: str | None = None
    while True:
        query = {**params, "limit": limit, **({"after": after} if after else {})}
        body = client.get("/api/cases", params=query, headers=caller.headers).json()
        ids = [item["case_id"] for item in body["items"]]
        seen += ids
        if body["next"] is None:
            assert len(ids) <= limit
            break
        assert len(ids) == limit
        after = body["next"]
    assert seen == wanted
    exported = client.get(
        "/api/cases", params={**params, "format": "csv"}, headers=caller.headers
    ).text
    assert [r["case_id"] for r in csv.DictReader(io.StringIO(exported))] == wanted
