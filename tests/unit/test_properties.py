"""Properties of the core over random event sequences (hypothesis).

Whatever arrives — valid, out of order, late, duplicated, from the wrong source — the core never
raises, numbers records without gaps, keeps closed cases closed, keeps a timer exactly while the
state has a running clock, and gives the same output for the same input.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine.core import Engine
from engine.replay import Replay
from schemas.events import CaseEvent

pytestmark = pytest.mark.unit

TYPES = [
    "case.reported", "mediation.succeeded", "mediation.failed", "case.escalated",
    "case.referred", "confirmation.applied", "agreement.fulfilled", "confirmation.granted",
    "confirmation.refused", "case.withdrawn", "appraisal.started", "appraisal.finished",
    "deadline.extended", "nonsense.event",
]  # fmt: skip
SOURCES = ["grid", "center", "court", "police", "hotline-12345", "online", "stranger"]
START = datetime.fromisoformat("2025-09-20T09:00:00+08:00")

steps = st.lists(
    st.tuples(
        st.sampled_from(["c1", "c2", "c3"]),
        st.sampled_from(TYPES),
        st.sampled_from(SOURCES),
        st.integers(min_value=-3 * 24, max_value=20 * 24),  # hours after the previous event
        st.sampled_from(["neighbour", "labour", "medical", "traffic"]),
        st.integers(min_value=0, max_value=5),  # event id pool: small, so duplicates happen
    ),
    max_size=40,
)


def to_lines(raw_steps: list[tuple[str, str, str, int, str, int]]) -> list[bytes]:
    lines: list[bytes] = []
    at = START
    for n, (case_id, type_, source, hours, category, id_pool) in enumerate(raw_steps):
        at += timedelta(hours=hours)
        payload: dict[str, Any] = {}
        if type_ == "case.reported":
            payload = {"workflow": "dispute-escalation", "attributes": {"category": category}}
        event = CaseEvent(
            event_id=f"{case_id}-{id_pool if n % 3 == 0 else n}", case_id=case_id, type=type_,
            occurred_at=at, source=source, payload=payload,
        )  # fmt: skip
        lines.append(event.model_dump_json().encode())
    return lines


def run(engine: Engine, lines: list[bytes], until: datetime) -> tuple[Replay, list[str]]:
    replay = Replay(engine)
    out: list[str] = []
    for i, line in enumerate(lines):
        out.extend(r.model_dump_json() for r in replay.feed(line, f"prop:{i}"))
    out.extend(r.model_dump_json() for r in replay.advance(until))
    return replay, out


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(raw_steps=steps)
def test_core_invariants(
    engine: Engine, raw_steps: list[tuple[str, str, str, int, str, int]]
) -> None:
    lines = to_lines(raw_steps)
    until = START + timedelta(days=400)
    replay, out = run(engine, lines, until)
    _, again = run(engine, lines, until)
    assert out == again  # same input, same bytes

    seqs: dict[str, list[int]] = {}
    closed_at: dict[str, int] = {}
    for record in (r for r in (_parse(o) for o in out) if r["type"] != "event.rejected"):
        case_id = record["case_id"]
        seqs.setdefault(case_id, []).append(record["seq"])
        assert case_id not in closed_at, "a record after case.closed"
        if record["type"] == "case.closed":
            closed_at[case_id] = record["seq"]
    for case_id, numbers in seqs.items():
        assert numbers == list(range(1, len(numbers) + 1)), case_id

    for case in replay.cases.values():
        workflow = engine.workflow_of(case)
        assert workflow is not None
        state = workflow.state(case.state)
        assert case.closed == state.terminal
        assert (case.sla is not None) == (state.sla is not None and not state.terminal)
        running = case.sla is not None and case.sla.paused_at is None and not case.sla.breached
        assert bool(case.timers()) == running
        assert all(t.due > until for t in case.timers()), "a due timer was not fired"


def _parse(line: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(line)
    return data


@settings(max_examples=200, deadline=None)
@given(raw=st.binary(max_size=300))
def test_arbitrary_bytes_never_raise(engine: Engine, raw: bytes) -> None:
    replay = Replay(engine)
    records = list(replay.feed(raw, "fuzz:1"))
    assert all(r.type == "event.rejected" for r in records)
    assert len(records) == 1
