"""The engine's Prometheus metrics, built on a registry passed in (tests use a fresh one).

Two kinds, one place (DESIGN §7; names are a contract once dashboards and rules use them):

- **Business metrics** are derived from what the engine *committed*: `observe_records` turns a
  batch of output records into counters and histograms (transitions, SLA warnings and breaches,
  closures, time in state, processing latency), and `CaseTally` (case_gauges.py) turns the
  cases held into gauges (open, at risk, overdue, paused). `fengqiao run` feeds them after each
  commit; the demo feeds the same functions, so a dashboard reads the same for both.
- **Engine metrics** (batches, transactions, lag, restore, cases held and retired after their
  retention) are set by the Kafka loop itself.

Label values are bounded sets taken from the loaded workflows (names, states, tiers, triggers,
outcomes), the fixed rejection reasons and partition numbers: never a case id, event id or
anything personal. Names carry the `fengqiao_` prefix and Prometheus' `_total`/`_seconds` suffixes.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TypeVar, cast, get_args

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Enum,
    Gauge,
    Histogram,
    ProcessCollector,
)

from consumers.runtime.case_gauges import NO_TIER, CaseTally, seed_keys
from consumers.runtime.correction_metrics import CorrectionMetrics
from engine.case import Case
from engine.machine import BREACH_TRIGGER, TIMEOUT_TRIGGER
from engine.registry import WorkflowRegistry
from schemas.events import MIGRATION_SOURCE
from schemas.records import (
    CaseClosed,
    CaseTransitioned,
    EventRejected,
    OutputRecord,
    RejectionReason,
    SlaBreached,
    SlaChanged,
    SlaWarning,
)

HOUR = 3600.0
DAY = 24 * HOUR

TIME_IN_STATE_BUCKETS = (
    15 * 60, HOUR, 2 * HOUR, 4 * HOUR, 8 * HOUR, DAY, 2 * DAY, 3 * DAY, 5 * DAY, 7 * DAY,
    14 * DAY, 21 * DAY, 30 * DAY, 45 * DAY, 60 * DAY, 90 * DAY,
)  # fmt: skip
"""Limits run from hours (urgent hotline orders) to weeks (30-day mediation, 60-day petitions)."""

LATENCY_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600)
"""Event time → committed: milliseconds when caught up, minutes when a backlog builds."""

DURATION_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)

ESCALATION_BUCKETS = ("0", "1", "2", "3+")
"""`escalations` label of closed cases: how many rungs a case climbed, bucketed (bounded)."""

RECORD_TYPES: tuple[str, ...] = tuple(
    str(kind.model_fields["type"].default) for kind in get_args(OutputRecord)
)
"""Every output record type (the `type` label of `fengqiao_records_emitted_total`)."""

NO_STATE = "none"
"""`from_state` of the transition that opens a case."""

EnteredBefore = Callable[[str], datetime | None]
Labelled = TypeVar("Labelled", Counter, Histogram)


def _never(_case_id: str) -> datetime | None:
    return None


def escalation_bucket(escalations: int) -> str:
    return ESCALATION_BUCKETS[min(escalations, len(ESCALATION_BUCKETS) - 1)]


@dataclass(frozen=True)
class BusinessMetrics:
    """What committed records and held cases say about the disputes (plus rejections and the
    processing latency, which records carry too). `fengqiao demo` uses exactly this."""

    records: Counter
    rejected: Counter
    latency_seconds: Histogram
    transitions: Counter
    tier_entries: Counter
    escalations: Counter
    sla_warnings: Counter
    sla_breaches: Counter
    sla_changes: Counter
    closed: Counter
    time_in_state: Histogram
    tally: CaseTally
    rungs: dict[tuple[str, int], dict[str, int]] = field(default_factory=dict)
    """Tier → position in the ladder (0 = lowest), per workflow version."""
    party_states: set[tuple[str, int, str]] = field(default_factory=set)
    """States whose limit is a party's window (`owner: party`): not the organ's warnings."""
    children: dict[tuple[int, tuple[str, ...]], Any] = field(default_factory=dict)
    """Labelled children by (metric, label values): `labels()` costs ~2 µs a call, and every
    record needs a few (bounded: the label sets are)."""

    @classmethod
    def create(
        cls, registry: CollectorRegistry, workflows: WorkflowRegistry | None = None
    ) -> BusinessMetrics:
        """All business metrics on `registry`; with `workflows`, the series that rules and
        dashboards read are exported at 0 from the start (a 0, not "no data", before the first
        case) and escalations can tell up from down the ladder."""
        r = registry
        metrics = cls(
            records=Counter("fengqiao_records_emitted_total", "Output records committed, by type.",
                            ["type"], registry=r),
            rejected=Counter("fengqiao_events_rejected_total",
                             "Input events refused to the dead-letter topic, by reason.",
                             ["reason"], registry=r),
            latency_seconds=Histogram(
                "fengqiao_processing_latency_seconds",
                "Domain time of an output record (event occurred_at, timer due) to its commit.",
                buckets=LATENCY_BUCKETS, registry=r),
            transitions=Counter("fengqiao_transitions_total",
                                "State changes of cases (from_state none: a case was opened).",
                                ["workflow", "from_state", "to_state", "trigger"], registry=r),
            tier_entries=Counter("fengqiao_tier_entries_total",
                                 "Cases entering a tier (opened on it, or moved to it).",
                                 ["workflow", "tier"], registry=r),
            escalations=Counter("fengqiao_escalations_total",
                                "Cases climbing the ladder, by cause (breach: SLA timer "
                                "escalate_to; timeout: timeout_to; event).",
                                ["workflow", "from_tier", "to_tier", "cause"], registry=r),
            sla_warnings=Counter("fengqiao_sla_warnings_total",
                                 "SLA warnings fired, by workflow and state.",
                                 ["workflow", "state"], registry=r),
            sla_breaches=Counter("fengqiao_sla_breaches_total",
                                 "SLA deadlines breached, by workflow and state.",
                                 ["workflow", "state"], registry=r),
            sla_changes=Counter("fengqiao_sla_changes_total",
                                "SLA clocks paused, resumed or extended.",
                                ["workflow", "state", "action"], registry=r),
            closed=Counter("fengqiao_cases_closed_total",
                           "Cases closed, by outcome, resolved tier and its rung (1 = lowest), "
                           "rungs climbed (0, 1, 2, 3+) and whether within the deadline.",
                           ["workflow", "outcome", "resolved_tier", "resolved_rung",
                            "escalations", "on_time"], registry=r),
            time_in_state=Histogram("fengqiao_time_in_state_seconds",
                                    "Domain time a case spent in a state, observed on leaving it.",
                                    ["workflow", "tier", "state"],
                                    buckets=TIME_IN_STATE_BUCKETS, registry=r),
            tally=CaseTally.create(r),
        )  # fmt: skip
        for reason in get_args(RejectionReason):
            metrics.rejected.labels(reason)
        for kind in RECORD_TYPES:
            metrics.records.labels(kind)
        if workflows is not None:
            metrics.seed(workflows)
        return metrics

    def seed(self, workflows: WorkflowRegistry) -> None:
        """Learn the ladders and export the zero series of every workflow loaded."""
        for versions in workflows.workflows.values():
            for compiled in versions.values():
                spec = compiled.spec
                self.rungs[(spec.name, spec.version)] = dict(compiled.tier_index)
                for tier in spec.tiers:
                    self.tier_entries.labels(spec.name, tier)
                for name, state in spec.states.items():
                    if state.sla is not None and not state.terminal:
                        if state.sla.owner == "party":
                            self.party_states.add((spec.name, spec.version, name))
                            continue
                        self.sla_warnings.labels(spec.name, name)
                        self.sla_breaches.labels(spec.name, name)
        self.tally.seed(seed_keys(workflows))

    def _child(self, metric: Labelled, *labels: str) -> Labelled:
        key = (id(metric), labels)
        child = self.children.get(key)
        if child is None:
            child = self.children[key] = metric.labels(*labels)
        return cast("Labelled", child)

    def observe_records(
        self,
        records: Iterable[OutputRecord],
        *,
        committed_at: datetime | None = None,
        entered_before: EnteredBefore = _never,
    ) -> None:
        """Count a committed batch of output records, in the order they were produced.

        `entered_before(case_id)` says when the case entered the state it was in before these
        records (None for a new case): the time spent in a state is observed when a transition
        leaves it, and records do not repeat when the state was entered. Within the batch the
        records themselves say it. `committed_at` (wall clock) gives each record's processing
        latency; leave it out where there is no commit (a replay of history).
        """
        entered: dict[str, datetime | None] = {}
        counts: dict[Counter, int] = defaultdict(int)  # each series incremented once per batch
        child = self._child
        for record in records:
            counts[child(self.records, record.type)] += 1
            if isinstance(record, EventRejected):
                counts[child(self.rejected, record.reason)] += 1
                continue
            if committed_at is not None:
                lag = (committed_at - record.occurred_at).total_seconds()
                self.latency_seconds.observe(max(0.0, lag))
            if isinstance(record, CaseTransitioned):
                case_id = record.case_id
                since = entered[case_id] if case_id in entered else entered_before(case_id)
                self._transitioned(record, since, counts)
                entered[case_id] = record.occurred_at
            elif isinstance(record, SlaWarning) and not self._party_window(record):
                counts[child(self.sla_warnings, record.workflow, record.state)] += 1
            elif isinstance(record, SlaBreached) and record.owner == "organ":
                # A party's lapsed window (owner party) is no breach by the organ.
                counts[child(self.sla_breaches, record.workflow, record.state)] += 1
            elif isinstance(record, SlaChanged):
                counts[child(self.sla_changes, record.workflow, record.state, record.action)] += 1
            elif isinstance(record, CaseClosed):
                counts[self._closed(record)] += 1
        for series, n in counts.items():
            series.inc(n)

    def _transitioned(
        self, record: CaseTransitioned, since: datetime | None, counts: dict[Counter, int]
    ) -> None:
        workflow = record.workflow
        counts[self._child(
            self.transitions, workflow, record.from_state or NO_STATE, record.to_state,
            record.trigger,
        )] += 1  # fmt: skip
        if record.from_state is not None and since is not None:
            seconds = max(0.0, (record.occurred_at - since).total_seconds())
            tier = record.from_tier or NO_TIER
            self._child(self.time_in_state, workflow, tier, record.from_state).observe(seconds)
        if record.to_tier is None or record.to_tier == record.from_tier:
            return
        counts[self._child(self.tier_entries, workflow, record.to_tier)] += 1
        if record.from_tier is None:
            return  # opened on this tier
        rungs = self.rungs.get((workflow, record.workflow_version), {})
        low, high = rungs.get(record.from_tier), rungs.get(record.to_tier)
        if low is not None and high is not None and high > low:  # climbed (not a bounce down)
            cause = {BREACH_TRIGGER: "breach", TIMEOUT_TRIGGER: "timeout"}.get(
                record.trigger, "event"
            )
            counts[self._child(self.escalations, workflow, record.from_tier, record.to_tier,
                               cause)] += 1  # fmt: skip

    def _party_window(self, record: SlaWarning) -> bool:
        return (record.workflow, record.workflow_version, record.state) in self.party_states

    def _closed(self, record: CaseClosed) -> Counter:
        """The `closed` series a closing record counts in."""
        rungs = self.rungs.get((record.workflow, record.workflow_version), {})
        tier = record.resolved_tier
        rung = str(rungs[tier] + 1) if tier is not None and tier in rungs else NO_TIER
        return self._child(self.closed, record.workflow, record.outcome, tier or NO_TIER, rung,
                           escalation_bucket(record.escalations),
                           "true" if record.on_time else "false")  # fmt: skip

    def observe_cases(self, cases: Iterable[Case], partition: int = 0) -> None:
        """Recount the case gauges of one partition from all its cases, and publish them
        (the demo's whole run is one partition)."""
        self.tally.replace(partition, cases)
        self.tally.publish()


@dataclass(frozen=True)
class EngineMetrics:
    """The Kafka loop's own figures, plus the business metrics it feeds."""

    business: BusinessMetrics
    corrections: CorrectionMetrics
    events: Counter
    duplicates: Counter
    transactions: Counter
    transaction_seconds: Histogram
    batch_seconds: Histogram
    consumer_lag: Gauge
    last_commit: Gauge
    partitions: Gauge
    pending_timers: Gauge
    cases: Gauge
    retired: Counter
    restore_seconds: Histogram
    restore_remaining: Gauge
    group_state: Enum
    group_generation: Gauge
    rebalances: Counter
    group_lag: Gauge
    sources: frozenset[str] = frozenset()
    """The loaded workflows' sources and `migrate`: values of the `source` label of duplicates."""

    @classmethod
    def create(
        cls, registry: CollectorRegistry, workflows: WorkflowRegistry | None = None
    ) -> EngineMetrics:
        r = registry
        metrics = cls(
            business=BusinessMetrics.create(registry, workflows),
            corrections=CorrectionMetrics.create(registry, workflows),
            events=Counter("fengqiao_events_consumed_total",
                           "Input events consumed, counted when their batch commits.", registry=r),
            duplicates=Counter("fengqiao_events_duplicate_total",
                               "Input events dropped (event_id already applied), by source.",
                               ["source"], registry=r),
            transactions=Counter("fengqiao_transactions_total",
                                 "Kafka transactions, by outcome (committed, aborted).",
                                 ["outcome"], registry=r),
            transaction_seconds=Histogram(
                "fengqiao_transaction_duration_seconds",
                "Kafka part of a batch: begin_transaction to a committed commit_transaction.",
                buckets=DURATION_BUCKETS, registry=r),
            batch_seconds=Histogram(
                "fengqiao_batch_duration_seconds",
                "A whole batch: first record processed to transaction committed.",
                buckets=DURATION_BUCKETS, registry=r),
            consumer_lag=Gauge("fengqiao_consumer_lag",
                               "Input records not yet consumed: highwater minus position.",
                               ["partition"], registry=r),
            last_commit=Gauge("fengqiao_last_commit_timestamp_seconds",
                              "Unix time of the last committed transaction.", registry=r),
            partitions=Gauge("fengqiao_partitions_assigned",
                             "Input partitions this process owns.", registry=r),
            pending_timers=Gauge("fengqiao_pending_timers", "Cases with a pending SLA timer.",
                                 registry=r),
            cases=Gauge("fengqiao_cases_in_store", "Cases held: open, or closed and retained.",
                        registry=r),
            retired=Counter("fengqiao_cases_retired_total", "Closed cases retired.", registry=r),
            restore_seconds=Histogram(
                "fengqiao_restore_duration_seconds",
                "Time to restore one partition's cases from the changelog.",
                buckets=(0.05, 0.1, 0.5, 1, 5, 10, 30, 60, 120), registry=r),
            restore_remaining=Gauge(
                "fengqiao_restore_remaining_records",
                "Changelog records still to read while restoring a partition.",
                ["partition"], registry=r),
            group_state=Enum("fengqiao_consumer_group_state",
                             "This member's state in the engine's consumer group.",
                             states=["unjoined", "rebalancing", "stable"], registry=r),
            group_generation=Gauge("fengqiao_consumer_group_generation",
                                   "Generation of the group this member last joined.",
                                   registry=r),
            rebalances=Counter("fengqiao_consumer_group_rebalances_total",
                               "Assignments received (one per completed rebalance).", registry=r),
            group_lag=Gauge("fengqiao_group_lag",
                            "Input records the whole group has not committed yet, over every "
                            "partition of case-events (seen from this member).", registry=r),
            sources=workflows.sources() | {MIGRATION_SOURCE} if workflows else frozenset(),
        )  # fmt: skip
        for outcome in ("committed", "aborted"):
            metrics.transactions.labels(outcome)
        for source in sorted(metrics.sources):
            metrics.duplicates.labels(source)
        ProcessCollector(registry=r)  # process_* (CPU, memory, open files): the health board
        return metrics

    @property
    def tally(self) -> CaseTally:
        return self.business.tally

    def observe_cases(self, cases: Iterable[Case], partition: int = 0) -> None:
        """`BusinessMetrics.observe_cases`."""
        self.business.observe_cases(cases, partition)

    def observe_records(
        self,
        records: Iterable[OutputRecord],
        *,
        committed_at: datetime | None = None,
        entered_before: EnteredBefore = _never,
    ) -> None:
        """`BusinessMetrics.observe_records`."""
        self.business.observe_records(
            records, committed_at=committed_at, entered_before=entered_before
        )

    def forget_partition(self, partition: int) -> None:
        """A partition left this process: its cases and per-partition series go with it."""
        self.tally.drop(partition)
        self.consumer_lag.remove(str(partition))
        self.restore_remaining.remove(str(partition))
