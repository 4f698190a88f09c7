"""Business metrics derived from committed records and held cases (consumers/runtime/metrics.py).

The engine feeds them one committed batch at a time, with the store's cases as they were before
the batch; these tests do the same with the pure replay, so what is checked here is what
`fengqiao run` exports, without a broker.
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from consumers.runtime.case_gauges import FAMILIES
from consumers.runtime.metrics import (
    ESCALATION_BUCKETS,
    RECORD_TYPES,
    BusinessMetrics,
    EngineMetrics,
)
from consumers.synthetic import synthetic_stream
from engine.case import Case
from engine.core import Engine
from engine.registry import WorkflowRegistry
from engine.replay import Replay
from schemas.records import OutputRecord

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = sorted((ROOT / "workflows" / "examples").glob("*.jsonl"))
END = datetime.fromisoformat("2026-12-31T00:00:00+08:00")

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def samples(registry: CollectorRegistry) -> Samples:
    """Every exported sample, by (name, sorted labels)."""
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in registry.collect()
        for s in family.samples
    }


def value(registry: CollectorRegistry, name: str, **labels: str) -> float:
    """Sum of the samples of `name` whose labels include `labels`."""
    return sum(
        v
        for (n, ls), v in samples(registry).items()
        if n == name and labels.items() <= dict(ls).items()
    )


def event(case_id: str, n: int, type_: str, at: str, source: str, **payload: Any) -> bytes:
    return json.dumps({
        "event_id": f"{case_id}-{n}", "case_id": case_id, "type": type_, "occurred_at": at,
        "source": source, "payload": payload,
    }).encode()  # fmt: skip


class Shell:
    """What the engine loop does around the core, minus Kafka: batches of input, a store of
    committed cases, the metrics fed after each "commit" with the cases as they were before."""

    def __init__(self, engine: Engine, metrics: BusinessMetrics) -> None:
        self.store: dict[str, Case] = {}
        self.replay = Replay(engine, load=self.store.get)
        self.metrics = metrics

    def batch(self, lines: Iterable[bytes], until: datetime | None = None) -> list[OutputRecord]:
        records = [r for i, line in enumerate(lines) for r in self.replay.feed(line, f"t:{i}")]
        if until is not None:
            records.extend(self.replay.advance(until))
        changes = self.replay.take_changes()
        before = {case_id: self.store.get(case_id) for case_id in changes}
        for case_id, case in changes.items():
            if case is None:  # retired
                del self.store[case_id]
            else:
                self.store[case_id] = case
        entered = {c: case.entered_at for c, case in before.items() if case is not None}
        self.metrics.observe_records(records, entered_before=entered.get)
        for case_id, case in changes.items():
            self.metrics.tally.update(0, before[case_id], case)
        self.metrics.tally.publish()
        return records


@pytest.fixture
def fresh() -> CollectorRegistry:
    return CollectorRegistry()


def test_time_in_state_spans_batches_from_the_stored_entry_instant(
    fresh: CollectorRegistry, engine: Engine, registry: WorkflowRegistry
) -> None:
    shell = Shell(engine, BusinessMetrics.create(fresh, registry))
    report = {"workflow": "dispute-escalation", "attributes": {"category": "neighbour"}}
    shell.batch([event("c1", 0, "case.reported", "2026-03-02T09:00:00+08:00", "grid", **report)])
    assert value(fresh, "fengqiao_time_in_state_seconds_count") == 0  # nothing left yet
    # Next batch, 5 hours later: left the grid; within the same batch, 2 hours in the center.
    shell.batch([
        event("c1", 1, "mediation.failed", "2026-03-02T14:00:00+08:00", "grid"),
        event("c1", 2, "mediation.succeeded", "2026-03-02T16:00:00+08:00", "center",
              agreement_signed=True),
    ])  # fmt: skip
    grid = {"workflow": "dispute-escalation", "tier": "grid", "state": "grid.mediating"}
    center = {**grid, "tier": "center", "state": "center.mediating"}
    assert value(fresh, "fengqiao_time_in_state_seconds_sum", **grid) == 5 * 3600
    assert value(fresh, "fengqiao_time_in_state_seconds_sum", **center) == 2 * 3600
    assert value(fresh, "fengqiao_time_in_state_seconds_bucket", le="14400.0", **grid) == 0
    assert value(fresh, "fengqiao_time_in_state_seconds_bucket", le="28800.0", **grid) == 1


def test_counters_match_the_records_of_the_example_streams(
    fresh: CollectorRegistry, engine: Engine, registry: WorkflowRegistry
) -> None:
    shell = Shell(engine, BusinessMetrics.create(fresh, registry))
    records: list[OutputRecord] = []
    for path in EXAMPLES:
        records.extend(shell.batch(path.read_bytes().splitlines()))
    records.extend(shell.batch([], until=END))
    dumped = [r.model_dump(mode="json") for r in records]
    for kind in RECORD_TYPES:
        expected = sum(1 for r in dumped if r["type"] == kind)
        assert value(fresh, "fengqiao_records_emitted_total", type=kind) == expected, kind
    moves = [r for r in dumped if r["type"] == "case.transitioned"]
    assert value(fresh, "fengqiao_transitions_total") == len(moves)
    assert value(fresh, "fengqiao_time_in_state_seconds_count") == sum(
        1 for r in moves if r["from_state"] is not None
    )
    closed = [r for r in dumped if r["type"] == "case.closed"]
    assert closed, "the examples close cases"
    for r in closed:
        labels = {"workflow": r["workflow"], "outcome": r["outcome"],
                  "resolved_tier": r["resolved_tier"] or "none",
                  "on_time": "true" if r["on_time"] else "false",
                  "escalations": ESCALATION_BUCKETS[min(r["escalations"], 3)]}  # fmt: skip
        assert value(fresh, "fengqiao_cases_closed_total", **labels) >= 1, labels
    rated = [r for r in moves if r["trigger"] == "followup.rated"]
    satisfied = [r for r in rated if r["to_state"] == "resolved"]
    assert rated
    assert value(fresh, "fengqiao_transitions_total", trigger="followup.rated") == len(rated)
    assert value(
        fresh, "fengqiao_transitions_total", trigger="followup.rated", to_state="resolved"
    ) == len(satisfied)
    breaches = sum(1 for r in dumped if r["type"] == "sla.breached")
    assert breaches
    assert value(fresh, "fengqiao_sla_breaches_total") == breaches
    rejected = sum(1 for r in dumped if r["type"] == "event.rejected")
    assert value(fresh, "fengqiao_events_rejected_total") == rejected


def test_escalations_count_only_climbs_and_rungs_are_per_ladder(
    fresh: CollectorRegistry, engine: Engine, registry: WorkflowRegistry
) -> None:
    """The hotline's return bounce goes district → street: a tier entry, not an escalation."""
    shell = Shell(engine, BusinessMetrics.create(fresh, registry))
    order = {"workflow": "hotline-12345", "attributes": {"urgency": "general"}}
    shell.batch([
        event("h1", 0, "case.reported", "2026-03-02T09:00:00+08:00", "hotline-12345", **order),
        event("h1", 1, "order.returned", "2026-03-02T10:00:00+08:00", "hotline-12345"),
        event("h1", 2, "order.dispatched", "2026-03-02T11:00:00+08:00", "hotline-12345"),
        event("h1", 3, "order.replied", "2026-03-02T12:00:00+08:00", "hotline-12345"),
        event("h1", 4, "followup.rated", "2026-03-02T13:00:00+08:00", "hotline-12345",
              rating="satisfied"),
    ])  # fmt: skip
    assert value(fresh, "fengqiao_escalations_total", cause="event", from_tier="street") == 1
    assert value(fresh, "fengqiao_escalations_total", from_tier="district") == 0
    assert value(fresh, "fengqiao_tier_entries_total", tier="street") == 2
    assert value(fresh, "fengqiao_tier_entries_total", tier="district") == 1
    closed = {"workflow": "hotline-12345", "outcome": "resolved", "resolved_tier": "street",
              "resolved_rung": "1", "escalations": "1", "on_time": "true"}  # fmt: skip
    assert value(fresh, "fengqiao_cases_closed_total", **closed) == 1


def test_breach_escalation_is_caused_by_breach_and_leaves_an_overdue_gauge_at_the_top(
    fresh: CollectorRegistry, engine: Engine, registry: WorkflowRegistry
) -> None:
    shell = Shell(engine, BusinessMetrics.create(fresh, registry))
    order = {"workflow": "hotline-12345", "attributes": {"urgency": "general"}}
    shell.batch([event("h2", 0, "case.reported", "2026-03-02T09:00:00+08:00", "hotline-12345",
                       **order)])  # fmt: skip
    shell.batch([], until=datetime.fromisoformat("2026-05-01T00:00:00+08:00"))
    up = value(fresh, "fengqiao_escalations_total", cause="breach")
    assert up == 2  # street → district → city supervision, both by breach
    top = {"workflow": "hotline-12345", "tier": "city", "state": "city.supervising"}
    assert value(fresh, "fengqiao_cases_overdue", **top) == 1  # city supervision only reports
    assert value(fresh, "fengqiao_cases_open", **top) == 1
    assert value(fresh, "fengqiao_cases_at_risk", **top) == 0


def test_gauges_follow_pause_warning_and_closing(
    fresh: CollectorRegistry, engine: Engine, registry: WorkflowRegistry
) -> None:
    shell = Shell(engine, BusinessMetrics.create(fresh, registry))
    report = {"workflow": "dispute-escalation", "attributes": {"category": "traffic"}}
    center = {"workflow": "dispute-escalation", "tier": "center", "state": "center.mediating"}
    shell.batch([event("p1", 0, "case.reported", "2026-03-02T09:00:00+08:00", "police",
                       **report)])  # fmt: skip
    assert value(fresh, "fengqiao_cases_open", **center) == 1
    shell.batch([], until=datetime.fromisoformat("2026-03-27T09:00:00+08:00"))  # past 80 %
    assert value(fresh, "fengqiao_cases_at_risk", **center) == 1
    shell.batch([event("p1", 1, "appraisal.started", "2026-03-27T10:00:00+08:00", "center")])
    assert value(fresh, "fengqiao_cases_paused", **center) == 1
    shell.batch([event("p1", 2, "case.withdrawn", "2026-03-28T10:00:00+08:00", "center")])
    for family in ("fengqiao_cases_open", "fengqiao_cases_paused", "fengqiao_cases_at_risk"):
        assert value(fresh, family, **center) == 0, family


def test_gauges_of_a_restarted_engine_equal_those_counted_up_batch_by_batch(
    engine: Engine, registry: WorkflowRegistry
) -> None:
    """Incremental gauges (per batch) == gauges recounted from the restored cases: a restart
    brings them back instead of resetting them to zero."""
    live = CollectorRegistry()
    shell = Shell(engine, BusinessMetrics.create(live, registry))
    lines = synthetic_stream(400, seed=11)
    rng = random.Random(5)  # batch sizes, not secrets
    position = 0
    watermark = datetime.fromisoformat("2025-03-01T00:00:00+08:00")
    while position < len(lines):
        size = rng.randint(1, 80)
        watermark += timedelta(days=rng.randint(0, 3))
        shell.batch(lines[position : position + size], until=watermark)
        position += size
    restarted = CollectorRegistry()
    metrics = BusinessMetrics.create(restarted, registry)
    metrics.observe_cases(shell.store.values())
    gauges = {name for name, _ in FAMILIES.values()}
    live_gauges = {k: v for k, v in samples(live).items() if k[0] in gauges}
    assert live_gauges == {k: v for k, v in samples(restarted).items() if k[0] in gauges}
    assert sum(v for (n, _), v in live_gauges.items() if n == "fengqiao_cases_open") > 0
    assert sum(v for (n, _), v in live_gauges.items() if n == "fengqiao_cases_overdue") > 0


def _series(registry: CollectorRegistry) -> set[tuple[str, tuple[tuple[str, str], ...]]]:
    return set(samples(registry))


def _replayed(cases: int, registry: WorkflowRegistry, engine: Engine) -> CollectorRegistry:
    fresh = CollectorRegistry()
    shell = Shell(engine, BusinessMetrics.create(fresh, registry))
    lines = synthetic_stream(cases, seed=3)
    for start in range(0, len(lines), 500):
        shell.batch(lines[start : start + 500])
    for path in EXAMPLES:
        shell.batch(path.read_bytes().splitlines())
    shell.batch([], until=END)
    return fresh


def _vocabulary(registry: WorkflowRegistry) -> set[str]:
    words = {"none", "true", "false", "breach", "timeout", "event", "paused", "resumed",
             "extended"}  # fmt: skip
    words |= set(ESCALATION_BUCKETS) | set(RECORD_TYPES)
    words |= {"sla.breached", "sla.timed_out", "case.reported"}
    words |= {"malformed", "schema_invalid", "unknown_case", "invalid_transition",
              "unauthorized_source", "guard_failed", "workflow_unknown",
              "window_closed", "key_mismatch"}  # fmt: skip
    for versions in registry.workflows.values():
        for compiled in versions.values():
            spec = compiled.spec
            words |= {spec.name, *spec.tiers, *spec.states, *(t.trigger for t in spec.transitions)}
            words |= {s.outcome for s in spec.states.values() if s.outcome}
            words |= {str(i + 1) for i in range(len(spec.tiers))}
    return words


def _label_values(series: set[tuple[str, tuple[tuple[str, str], ...]]]) -> Iterator[str]:
    for _, labels in series:
        for key, label in labels:
            if key != "le":  # histogram bucket bounds are fixed at definition
                yield label


def test_label_sets_stay_bounded_as_cases_grow(engine: Engine, registry: WorkflowRegistry) -> None:
    small = _series(_replayed(200, registry, engine))
    large = _series(_replayed(3000, registry, engine))
    # Fifteen times the cases, the same series: labels name states, never cases.
    assert large == small
    vocabulary = _vocabulary(registry)
    strays = {v for v in _label_values(large) if v not in vocabulary}
    assert strays == set(), "label values outside the workflows' vocabulary"
    assert not any(v.startswith("bench-") for v in _label_values(large))


def test_engine_metrics_export_zero_series_before_the_first_case(
    fresh: CollectorRegistry, registry: WorkflowRegistry
) -> None:
    EngineMetrics.create(fresh, registry)
    exported = samples(fresh)
    names = {n for n, _ in exported}
    assert {"fengqiao_cases_open", "fengqiao_cases_overdue", "fengqiao_events_rejected_total",
            "fengqiao_transactions_total", "fengqiao_tier_entries_total",
            "fengqiao_sla_breaches_total", "process_resident_memory_bytes"} <= names  # fmt: skip
    open_states = {dict(ls)["state"] for n, ls in exported if n == "fengqiao_cases_open"}
    assert {"grid.mediating", "street.handling", "township.handling"} <= open_states
    assert all(v == 0 for (n, _), v in exported.items()
               if n.startswith("fengqiao_cases_") and not n.endswith("_created"))  # fmt: skip
    aborted = value(fresh, "fengqiao_transactions_total", outcome="aborted")
    assert aborted == 0


def test_processing_latency_is_commit_time_minus_domain_time(
    fresh: CollectorRegistry, engine: Engine
) -> None:
    metrics = BusinessMetrics.create(fresh)
    replay = Replay(engine)
    report = {"workflow": "dispute-escalation", "attributes": {"category": "neighbour"}}
    at = datetime(2026, 3, 2, 1, 0, tzinfo=UTC)
    records = list(replay.feed(event("l1", 0, "case.reported", at.isoformat(), "grid", **report),
                               "t:0"))  # fmt: skip
    metrics.observe_records(records, committed_at=at + timedelta(seconds=3))
    assert value(fresh, "fengqiao_processing_latency_seconds_count") == len(records) == 1
    assert value(fresh, "fengqiao_processing_latency_seconds_sum") == 3.0
    assert value(fresh, "fengqiao_processing_latency_seconds_bucket", le="2.5") == 0
    assert value(fresh, "fengqiao_processing_latency_seconds_bucket", le="5.0") == 1
