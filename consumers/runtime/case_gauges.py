"""Gauges of the cases held right now (open, at risk, overdue, paused, holiday data missing).

They are *derived from the cases*, never counted up from records: a restarted engine restores
its partitions' cases from the changelog and the gauges come back with them, instead of starting
at zero. To stay cheap on big partitions the tally is incremental: a full pass over a
partition's cases once, when it is restored, then per committed batch only the changed cases
(their contribution before the batch is removed, their contribution after it added). A revoked
partition's share is dropped, so each engine process reports only the partitions it owns and
`sum` across processes gives the whole picture.

Label values come from the case's workflow definition (workflow name, tier, state), never from
the case itself: the set of series is bounded by the workflows loaded.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Literal

from prometheus_client import CollectorRegistry, Gauge

from engine.case import Case
from engine.registry import WorkflowRegistry

Family = Literal["open", "at_risk", "overdue", "paused", "holiday_data_missing"]
Key = tuple[Family, str, str, str]
"""(family, workflow, tier, state)."""

NO_TIER = "none"
"""Label value of a case that has not stood on any rung (only possible in unusual workflows)."""

FAMILIES: dict[Family, tuple[str, str]] = {
    "open": ("fengqiao_cases_open", "Open cases now, by workflow, tier and state."),
    "at_risk": (
        "fengqiao_cases_at_risk",
        "Open cases past the SLA warning instant of their state but not yet past its deadline.",
    ),
    "overdue": (
        "fengqiao_cases_overdue",
        "Open cases past the deadline of their state (breached and not escalated away).",
    ),
    "paused": ("fengqiao_cases_paused", "Open cases whose SLA clock is paused (e.g. appraisal)."),
    "holiday_data_missing": (
        "fengqiao_deadlines_holiday_data_missing",
        "Open cases whose current deadline was computed without holiday data for its year.",
    ),
}


def case_keys(case: Case) -> list[Key]:
    """What one case contributes to the gauges (nothing once closed)."""
    if case.closed:
        return []
    labels = (case.workflow, case.tier or NO_TIER, case.state)
    keys: list[Key] = [("open", *labels)]
    sla = case.sla
    if sla is not None:
        if sla.party:
            pass  # the party's window: its lapse is not the organ's overdue work
        elif sla.breached:
            keys.append(("overdue", *labels))
        elif sla.warned:
            keys.append(("at_risk", *labels))
        if sla.paused_at is not None:
            keys.append(("paused", *labels))
        if sla.data_missing:
            keys.append(("holiday_data_missing", *labels))
    return keys


def seed_keys(workflows: WorkflowRegistry) -> list[Key]:
    """Every (workflow, tier, state) an open case can stand in, for every family.

    Exported at 0 from the start so that dashboards and rules see a series (and a 0, not "no
    data") before the first case arrives. A tier-less state keeps the case's last tier, so it is
    seeded once per tier of its workflow.
    """
    keys: set[Key] = set()
    for versions in workflows.workflows.values():
        for compiled in versions.values():
            spec = compiled.spec
            for name, state in spec.states.items():
                if state.terminal:
                    continue
                for tier in [state.tier] if state.tier else list(spec.tiers):
                    for family in FAMILIES:
                        keys.add((family, spec.name, tier, name))
    return sorted(keys)


@dataclass
class CaseTally:
    """Per-partition counts of cases by gauge key; `publish` writes the totals to the gauges."""

    gauges: dict[Family, Gauge]
    by_partition: dict[int, Counter[Key]] = field(default_factory=dict)
    total: Counter[Key] = field(default_factory=Counter)
    dirty: set[Key] = field(default_factory=set)

    @classmethod
    def create(cls, registry: CollectorRegistry) -> CaseTally:
        gauges = {
            family: Gauge(name, doc, ["workflow", "tier", "state"], registry=registry)
            for family, (name, doc) in FAMILIES.items()
        }
        return cls(gauges)

    def seed(self, keys: Iterable[Key]) -> None:
        self.dirty.update(keys)
        self.publish()

    def add(self, partition: int, case: Case, sign: int = 1) -> None:
        counts = self.by_partition.setdefault(partition, Counter())
        for key in case_keys(case):
            counts[key] += sign
            self.total[key] += sign
            self.dirty.add(key)

    def update(self, partition: int, before: Case | None, after: Case | None) -> None:
        """A committed change of one case (after None: retired)."""
        if before is not None:
            self.add(partition, before, -1)
        if after is not None:
            self.add(partition, after)

    def drop(self, partition: int) -> None:
        """Forget a partition (revoked, or about to be restored from scratch)."""
        counts = self.by_partition.pop(partition, Counter())
        for key, n in counts.items():
            self.total[key] -= n
            self.dirty.add(key)

    def replace(self, partition: int, cases: Iterable[Case]) -> None:
        """Recount one partition from all its cases (the demo, or a full restore)."""
        self.drop(partition)
        self.by_partition[partition] = Counter()
        for case in cases:
            self.add(partition, case)

    def publish(self) -> None:
        """Write the totals of the keys that changed since the last call (zeros stay exported)."""
        for key in self.dirty:
            family, workflow, tier, state = key
            self.gauges[family].labels(workflow, tier, state).set(self.total.get(key, 0))
        self.dirty.clear()
