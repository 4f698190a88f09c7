"""The forecast against figures worked out by hand from the workflows and the calendar.

Seven cases go through the engine, its clock stopping at the last report (Wednesday 4 March
2026, 11:00 Beijing time); the view's clock reads 12:00 that day. Their deadlines, by hand
(grid mediation: 3 working days from the day after the report, days ending at 24:00; 2026's
calendar has Saturday 28 February as a make-up working day):

- D, reported Thu 26 Feb (grid): 27, 28 (a Saturday, worked), 2 Mar: due Tue 3 Mar 00:00;
  breached then, escalated to the center: 30 calendar days, due 3 Apr 00:00.
- A, reported Mon 2 Mar: 3, 4, 5: due Fri 6 Mar 00:00 (Thursday's 24:00).
- F, reported Mon 2 Mar, settled on the 3rd: closed, no deadline.
- B, reported Tue 3 Mar: 4, 5, 6: due Sat 7 Mar 00:00 (Friday's 24:00).
- E, reported Tue 3 Mar, an appraisal from 15:00: paused (its Sat 7 Mar 00:00 frozen).
- C, reported Wed 4 Mar: 5, 6, 9: due Tue 10 Mar 00:00.
- H, an urgent 12345 work order of Wed 4 Mar 11:00: a response within 2 hours, due 13:00.
"""

from __future__ import annotations

import json
from datetime import date, datetime
from typing import Any

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from consumers.runtime.clock import FixedClock
from consumers.view.app import create_app
from consumers.view.fold import TierOrder
from consumers.view.projection import project
from engine.core import Engine
from tests.view.api.conftest import CALLERS, make_access
from tests.view.streams import as_consumed, replay, stored_rows

NOW = datetime.fromisoformat("2026-03-04T12:00:00+08:00")
GRID = ("dispute-escalation", "grid", "grid.mediating")
URGENT = ("hotline-12345", "street", "urgent.responding")


def event(case_id: str, type_: str, at: str, source: str, payload: dict[str, Any]) -> bytes:
    return json.dumps(
        {
            "event_id": f"{source}-{case_id}-{type_}",
            "case_id": case_id,
            "type": type_,
            "occurred_at": f"{at}+08:00",
            "source": source,
            "payload": payload,
        }
    ).encode()


def dispute(case_id: str, at: str) -> bytes:
    attributes = {"category": "neighbour", "village": "V03", "risk": "yellow", "claimed_yuan": 900}
    payload = {"workflow": "dispute-escalation", "attributes": attributes}
    return event(case_id, "case.reported", at, "grid", payload)


EVENTS = [
    dispute("D", "2026-02-26T09:00:00"),
    dispute("A", "2026-03-02T10:00:00"),
    dispute("F", "2026-03-02T11:00:00"),
    dispute("B", "2026-03-03T09:00:00"),
    dispute("E", "2026-03-03T09:30:00"),
    event("F", "mediation.succeeded", "2026-03-03T10:00:00", "grid", {}),
    event("E", "appraisal.started", "2026-03-03T15:00:00", "grid", {"kind": "injury"}),
    dispute("C", "2026-03-04T08:00:00"),
    event(
        "H",
        "case.reported",
        "2026-03-04T11:00:00",
        "hotline-12345",
        {
            "workflow": "hotline-12345",
            "attributes": {"urgency": "urgent", "category": "water", "district": "D03"},
        },
    ),
]


@pytest.fixture
def client(view_db: sa.Engine, engine: Engine, tiers: TierOrder) -> TestClient:
    project(view_db, as_consumed(replay(engine, EVENTS, None)[1]), tiers)
    return TestClient(create_app(view_db, make_access(), clock=FixedClock(NOW)))


def test_the_engine_set_the_deadlines_worked_out_by_hand(
    client: TestClient, view_db: sa.Engine
) -> None:
    rows = stored_rows(view_db)
    deadlines = {case_id: row.deadline for case_id, row in rows.items()}
    assert deadlines == {
        "D": datetime.fromisoformat("2026-04-03T00:00:00+08:00"),
        "A": datetime.fromisoformat("2026-03-06T00:00:00+08:00"),
        "F": None,
        "B": datetime.fromisoformat("2026-03-07T00:00:00+08:00"),
        "E": datetime.fromisoformat("2026-03-07T00:00:00+08:00"),
        "C": datetime.fromisoformat("2026-03-10T00:00:00+08:00"),
        "H": datetime.fromisoformat("2026-03-04T13:00:00+08:00"),
    }
    assert rows["E"].paused
    assert rows["F"].status == "closed"
    assert (rows["H"].workflow, rows["H"].tier, rows["H"].state) == URGENT


def forecast(client: TestClient, hours: int, **params: str) -> dict[str, Any]:
    answer = client.get(
        "/api/forecast", params={"hours": hours, **params}, headers=CALLERS["county"].headers
    )
    assert answer.status_code == 200, answer.text
    body: dict[str, Any] = answer.json()
    return body


def days(body: dict[str, Any]) -> dict[date, int]:
    return {date.fromisoformat(d["day"]): d["count"] for d in body["by_day"]}


def rungs(body: dict[str, Any]) -> dict[tuple[str, str, str], int]:
    return {(r["workflow"], r["tier"], r["state"]): r["count"] for r in body["by_rung"]}


def test_seventy_two_hours(client: TestClient) -> None:
    """Until Saturday 12:00: H today, A on Thursday (its 24:00), B on Friday; not E (paused),
    C (next week), D (escalated, a month ahead), F (closed)."""
    body = forecast(client, 72)
    assert body["now"] == "2026-03-04T04:00:00Z"
    assert body["until"] == "2026-03-07T04:00:00Z"
    assert body["zone"] == "Asia/Shanghai"
    assert days(body) == {
        date(2026, 3, 4): 1,
        date(2026, 3, 5): 1,
        date(2026, 3, 6): 1,
        date(2026, 3, 7): 0,
    }
    assert rungs(body) == {GRID: 2, URGENT: 1}
    assert body["total"] == 3
    cells = [(c["day"], c["workflow"], c["count"]) for c in body["cells"]]
    assert cells == [
        ("2026-03-04", "hotline-12345", 1),
        ("2026-03-05", "dispute-escalation", 1),
        ("2026-03-06", "dispute-escalation", 1),
    ]


def test_the_horizon_includes_its_last_instant(client: TestClient) -> None:
    """59 hours end at Friday 23:00, before B's deadline; 60 end on it (Saturday 00:00, which
    is Friday's 24:00: no Saturday in the forecast). One hour ends on H's deadline."""
    assert days(forecast(client, 59)) == {
        date(2026, 3, 4): 1,
        date(2026, 3, 5): 1,
        date(2026, 3, 6): 0,
    }
    assert days(forecast(client, 60)) == {
        date(2026, 3, 4): 1,
        date(2026, 3, 5): 1,
        date(2026, 3, 6): 1,
    }
    assert days(forecast(client, 1)) == {date(2026, 3, 4): 1}
    assert rungs(forecast(client, 1)) == {URGENT: 1}


def test_a_workflow_filter_and_the_csv(client: TestClient) -> None:
    body = forecast(client, 72, workflow="dispute-escalation")
    assert rungs(body) == {GRID: 2}
    answer = client.get(
        "/api/forecast?hours=72", headers={**CALLERS["county"].headers, "Accept": "text/csv"}
    )
    assert answer.text.splitlines() == [
        "day,workflow,tier,state,count",
        "2026-03-04,hotline-12345,street,urgent.responding,1",
        "2026-03-05,dispute-escalation,grid,grid.mediating,1",
        "2026-03-06,dispute-escalation,grid,grid.mediating,1",
    ]
