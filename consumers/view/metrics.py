"""The view's own Prometheus metrics, on a registry passed in (`fengqiao view` serves it at
`/metrics`; tests give each consumer a fresh one).

They answer the on-call questions about the read side itself: is it behind the engine
(`fengqiao_view_consumer_lag`, per partition of the topics it reads), is it moving
(`fengqiao_view_records_total`, `fengqiao_view_last_batch_timestamp_seconds`), what does a batch
cost (`fengqiao_view_batch_duration_seconds`), how big is it (`fengqiao_view_cases` by status),
and is it struggling with its database (`fengqiao_view_retries_total`). The case metrics
themselves (open, overdue, …) stay the engine's: the view would only repeat them.

Labels are partition numbers and fixed words, never a case id (DESIGN §7).
"""

from __future__ import annotations

from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from consumers.view.projection import Projected

BATCH_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)
"""A batch is one database transaction: milliseconds on SQLite, up to seconds under load."""
REQUEST_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5)
"""An API call or a page: the target is 50 ms at the 99th percentile (README, Benchmarks)."""


@dataclass(frozen=True)
class ViewMetrics:
    consumer_lag: Gauge
    records: Counter
    batch_seconds: Histogram
    last_batch: Gauge
    cases: Gauge
    retries: Counter
    partitions: Gauge
    request_seconds: Histogram

    @classmethod
    def create(cls, registry: CollectorRegistry) -> ViewMetrics:
        """The metrics, each labelled series present from the start (at 0), so that a rule
        over `rate(...)` sees the first increase."""
        r = registry
        metrics = cls(
            consumer_lag=Gauge(
                "fengqiao_view_consumer_lag",
                "Committed records not yet in the read model, by topic (transitions, "
                "case-events) and partition.",
                ["topic", "partition"], registry=r,
            ),
            records=Counter(
                "fengqiao_view_records_total",
                "Records consumed, by what the projection did with them: applied (new to a "
                "case's history), duplicate (seen before), skipped (already projected), ignored "
                "(neither a case record nor a report), report (a case report, for its attributes).",
                ["outcome"], registry=r,
            ),
            batch_seconds=Histogram(
                "fengqiao_view_batch_duration_seconds",
                "One batch into the read model: decode, fold, write, commit.",
                buckets=BATCH_BUCKETS, registry=r,
            ),
            last_batch=Gauge(
                "fengqiao_view_last_batch_timestamp_seconds",
                "Unix time of the last batch committed to the read model.", registry=r,
            ),
            cases=Gauge(
                "fengqiao_view_cases", "Rows of the read model, by status (open, closed).",
                ["status"], registry=r,
            ),
            retries=Counter(
                "fengqiao_view_retries_total",
                "Batches rolled back and read again: conflict (another writer moved the "
                "offsets), database (the database failed or could not be reached).",
                ["reason"], registry=r,
            ),
            partitions=Gauge(
                "fengqiao_view_partitions_assigned",
                "Partitions the view reads (of the transitions and case-events topics).",
                registry=r,
            ),
            request_seconds=Histogram(
                "fengqiao_view_request_duration_seconds",
                "API calls and console pages, by route template (never a case id) and status.",
                ["route", "status"], buckets=REQUEST_BUCKETS, registry=r,
            ),
        )  # fmt: skip
        for outcome in ("applied", "duplicate", "skipped", "ignored", "report"):
            metrics.records.labels(outcome)
        for reason in ("conflict", "database"):
            metrics.retries.labels(reason)
        return metrics

    def request(self, route: str, status: int, seconds: float) -> None:
        """One answered request (the app's guard calls it)."""
        self.request_seconds.labels(route, str(status)).observe(seconds)

    def projected(self, result: Projected) -> None:
        self.records.labels("applied").inc(result.applied)
        self.records.labels("duplicate").inc(result.duplicates)
        self.records.labels("skipped").inc(result.skipped)
        self.records.labels("ignored").inc(result.ignored)
        self.records.labels("report").inc(result.reports)
