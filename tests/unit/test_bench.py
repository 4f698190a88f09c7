"""The benchmarks' own arithmetic and data (the timed runs are never asserted on)."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pytest

from consumers.bench.common import percentiles, stream
from consumers.bench.scale import BURST, DUE, scale_case, templates

pytestmark = pytest.mark.unit

WORKFLOWS = Path(__file__).resolve().parents[2] / "workflows"


def test_percentiles_are_nearest_rank() -> None:
    figures = percentiles([float(n) for n in range(1, 101)])
    assert figures == {"p50": 50.0, "p95": 95.0, "p99": 99.0, "max": 100.0}
    assert percentiles([7.0]) == {"p50": 7.0, "p95": 7.0, "p99": 7.0, "max": 7.0}


def test_stream_has_the_requested_number_of_canonical_events() -> None:
    lines = stream(100)
    assert len(lines) == 100
    assert {"event_id", "case_id", "type", "occurred_at", "source"} <= set(json.loads(lines[0]))


def test_scale_cases_are_distinct_and_the_burst_falls_in_one_second() -> None:
    pool = templates(WORKFLOWS)
    assert pool
    cases = [scale_case(pool[n % len(pool)], n) for n in (0, 1, BURST - 1, BURST, BURST + 1)]
    assert len({c.case_id for c in cases}) == len(cases)
    dues = [c.next_due() for c in cases]
    assert all(d is not None for d in dues)
    in_burst = [d for d in dues if d is not None and DUE <= d < DUE + timedelta(seconds=1)]
    assert len(in_burst) == 3
    assert all(c.clock < DUE for c in cases)
    assert all(e.startswith(c.case_id) for c in cases for e in c.seen)
