"""The engine's Prometheus metrics, built on a registry passed in (tests use a fresh one).

Label values are bounded sets (reasons, record types, outcomes): never a case id or anything
personal. Names carry the `fengqiao_` prefix and Prometheus' `_total`/`_seconds` suffixes.
"""

from __future__ import annotations

from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram


@dataclass(frozen=True)
class EngineMetrics:
    events: Counter
    rejected: Counter
    duplicates: Counter
    records: Counter
    transactions: Counter
    transaction_seconds: Histogram
    pending_timers: Gauge
    cases: Gauge
    restore_seconds: Histogram

    @classmethod
    def create(cls, registry: CollectorRegistry) -> EngineMetrics:
        return cls(
            events=Counter(
                "fengqiao_events_consumed_total", "Input events consumed.", registry=registry
            ),
            rejected=Counter(
                "fengqiao_events_rejected_total",
                "Input events refused to the dead-letter topic, by reason.",
                ["reason"],
                registry=registry,
            ),
            duplicates=Counter(
                "fengqiao_events_duplicate_total",
                "Input events dropped because their event_id was already applied.",
                registry=registry,
            ),
            records=Counter(
                "fengqiao_records_emitted_total",
                "Output records committed, by type.",
                ["type"],
                registry=registry,
            ),
            transactions=Counter(
                "fengqiao_transactions_total",
                "Kafka transactions, by outcome (committed, aborted).",
                ["outcome"],
                registry=registry,
            ),
            transaction_seconds=Histogram(
                "fengqiao_transaction_duration_seconds",
                "Time from the start of a batch to its committed transaction.",
                buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
                registry=registry,
            ),
            pending_timers=Gauge(
                "fengqiao_pending_timers", "Cases with a pending SLA timer.", registry=registry
            ),
            cases=Gauge(
                "fengqiao_cases_in_store",
                "Cases held for the assigned partitions.",
                registry=registry,
            ),
            restore_seconds=Histogram(
                "fengqiao_restore_duration_seconds",
                "Time to restore one partition's cases from the changelog.",
                buckets=(0.05, 0.1, 0.5, 1, 5, 10, 30, 60, 120),
                registry=registry,
            ),
        )
