"""What late events corrected: cases re-derived and records retracted (engine/correction.py).

Kept apart from the business counters because those count what was *committed*: a breach later
retracted stays in `fengqiao_sla_breaches_total`, as a counter cannot go down. Read a count net
of corrections as the committed count minus `fengqiao_records_retracted_total` of its type (the
read model of `fengqiao view` holds each case's corrected history itself).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import get_args

from prometheus_client import CollectorRegistry, Counter

from engine.batch import BatchResult
from engine.registry import WorkflowRegistry
from schemas.records import CaseRecord, RecordRetracted

RETRACTABLE = tuple(
    str(kind.model_fields["type"].default)
    for kind in get_args(CaseRecord)
    if kind is not RecordRetracted
)
"""The record types a retraction may name (a retraction is never retracted)."""


@dataclass
class CorrectionMetrics:
    """`fengqiao_corrections_total` and `fengqiao_records_retracted_total`."""

    corrections: Counter
    retracted: Counter

    @classmethod
    def create(
        cls, registry: CollectorRegistry, workflows: WorkflowRegistry | None = None
    ) -> CorrectionMetrics:
        """The two counters; with `workflows`, every workflow that has a correction horizon
        starts at 0 for each of its sources and each record type."""
        metrics = cls(
            corrections=Counter(
                "fengqiao_corrections_total",
                "Cases re-derived for an event delivered after later ones took effect, by the "
                "workflow and the late event's source.",
                ["workflow", "source"],
                registry=registry,
            ),
            retracted=Counter(
                "fengqiao_records_retracted_total",
                "Committed records a correction retracted, by workflow and the retracted "
                "record's type.",
                ["workflow", "type"],
                registry=registry,
            ),
        )
        for name, sources in _corrected(workflows):
            for source in sorted(sources):
                metrics.corrections.labels(name, source)
            for kind in RETRACTABLE:
                metrics.retracted.labels(name, kind)
        return metrics

    def observe(self, result: BatchResult) -> None:
        """Count a committed batch's corrections and retractions."""
        for (workflow, source), count in result.corrections.items():
            self.corrections.labels(workflow, source).inc(count)
        for output in result.outputs:
            record = output.record
            if isinstance(record, RecordRetracted):
                self.retracted.labels(record.workflow, record.retracted_type).inc()


def _corrected(workflows: WorkflowRegistry | None) -> Iterable[tuple[str, frozenset[str]]]:
    """(name, sources) of each workflow some loaded version of which has a correction horizon."""
    if workflows is None:
        return []
    return [
        (name, frozenset(s for w in versions.values() for s in w.sources))
        for name, versions in sorted(workflows.workflows.items())
        if any(w.correction for w in versions.values())
    ]
