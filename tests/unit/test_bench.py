"""The benchmarks' own arithmetic and data (the timed runs are never asserted on)."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from consumers.bench.common import percentiles, stream
from consumers.bench.passthrough import Copies, main, sends_for
from consumers.bench.scale import BURST, DUE, scale_case, templates
from consumers.runtime.settings import load_settings

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


@given(st.floats(min_value=1, max_value=8, allow_nan=False), st.integers(0, 3000))
def test_copies_spread_k_writes_per_event_evenly(per_event: float, events: int) -> None:
    """The write-matched pass-through writes round(N × K) records for N inputs, each input at
    least once: its rate is the engine's write volume, not more, not less."""
    copies = Copies(per_event)
    counts = [copies.next() for _ in range(events)]
    assert all(c >= 1 for c in counts)
    assert abs(sum(counts) - events * per_event) < 1


def test_the_first_copy_goes_to_transitions_and_the_rest_to_the_changelog() -> None:
    settings = load_settings({})
    sends = sends_for(settings, 2, b"case-1", b"{}", copies=3)
    changelog = [settings.topic_case_state] * 2
    assert [s.topic for s in sends] == [settings.topic_transitions, *changelog]
    assert {(s.partition, s.key, s.value) for s in sends} == {(2, b"case-1", b"{}")}


def test_copies_are_padded_to_the_engine_record_size_and_stay_json() -> None:
    (send,) = sends_for(load_settings({}), 0, None, b'{"a": 1}', copies=1, size=20)
    assert send.value is not None
    assert len(send.value) == 20
    assert json.loads(send.value) == {"a": 1}
    (longer,) = sends_for(load_settings({}), 0, None, b'{"a": 1}', copies=1, size=3)
    assert longer.value == b'{"a": 1}'  # never cut


def test_fewer_than_one_write_per_event_is_refused() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        Copies(0.5)
    for argv in (["--writes-per-event", "0.5"], ["--writes-per-event", "nan"],
                 ["--bytes-per-write", "-1"]):  # fmt: skip
        with pytest.raises(SystemExit) as refused:
            main(argv)
        assert refused.value.code == 2
