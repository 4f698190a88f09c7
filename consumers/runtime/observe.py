"""A committed batch into metrics: the one place `run` and `demo` count what a batch did."""

from __future__ import annotations

from datetime import datetime

from consumers.runtime.metrics import EngineMetrics
from engine.batch import BatchResult

OTHER_SOURCE = "other"
"""`source` label of duplicates whose source no loaded workflow names: whatever a producer
writes into `source`, the label set stays bounded."""


def observe_batch(
    metrics: EngineMetrics,
    partition: int,
    result: BatchResult,
    *,
    committed_at: datetime | None = None,
) -> None:
    """Counters and histograms of the batch's records, and the gauges' tally moved from each
    changed case's before to its after (time in state needs when the case entered its previous
    state: the `before` copy says). `committed_at` (wall clock) feeds the processing latency;
    None where time is virtual (the demo). A retired case leaves the tally (it was closed, so
    it counted nothing) and is counted. Publishing the gauges is the caller's turn."""
    metrics.events.inc(result.events)
    for source, count in result.duplicates_by_source.items():
        label = source if source in metrics.sources else OTHER_SOURCE
        metrics.duplicates.labels(label).inc(count)
    entered = {c.case_id: c.before.entered_at for c in result.changes if c.before is not None}
    metrics.observe_records(
        [o.record for o in result.outputs], committed_at=committed_at, entered_before=entered.get
    )
    for change in result.changes:
        metrics.tally.update(partition, change.before, change.after)
    metrics.retired.inc(result.retired)
    metrics.corrections.observe(result)
