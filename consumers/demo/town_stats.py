"""The demo's figures, computed from the output records alone (as an operator downstream would).

Why from the records and not from the engine's internals: the records are the contract
(DESIGN §4), the same bytes `fengqiao run` writes to `fengqiao.transitions`; figures that can be
recomputed from them are figures an operator can trust and reproduce. It also makes a resumed
demo exact: the tally is rebuilt by reading the records file back.

Definitions (BRIEF.md, "What operators measure"), per workflow:
- resolved = closed with outcome resolved, confirmed or withdrawn; resolution rate = resolved ÷
  closed;
- local resolution rate = resolved on the two lowest rungs of the ladder (不出村、不出镇: grid
  or mediation center) ÷ resolved;
- mediation success rate = mediations ending in agreement (`mediation.succeeded`) ÷ mediations
  concluded (leaving a state where `mediation.succeeded` is possible, except by withdrawal or
  referral elsewhere: those were never mediatable);
- on-time rate = closed on time ÷ closed;
- escalation rate = climbs out of a rung ÷ entries into a rung;
- satisfaction = call-back ratings that resolved the case ÷ ratings (`followup.rated`).
"""

from __future__ import annotations

import itertools
from collections import Counter
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from engine.registry import WorkflowRegistry

RESOLVED_OUTCOMES = frozenset({"resolved", "confirmed", "withdrawn"})
AGREEMENT_TRIGGER = "mediation.succeeded"
NOT_MEDIATED = ("withdrawn", "referred")
"""Triggers ending so leave a mediation without concluding it (BRIEF: 165 of 193 accepted were
mediatable; the success rate counts those)."""
RATING_TRIGGER = "followup.rated"
LOCAL_RUNGS = 2
OPEN = "open"


@dataclass(frozen=True)
class Ladder:
    """What the tally needs to know of a workflow: its rungs and its mediation states."""

    tiers: tuple[str, ...]
    mediation_states: frozenset[str]

    def rank(self, tier: str | None) -> int:
        return self.tiers.index(tier) if tier in self.tiers else -1


def ladders_of(registry: WorkflowRegistry) -> dict[str, Ladder]:
    ladders: dict[str, Ladder] = {}
    for name in registry.workflows:
        workflow = registry.newest(name)
        assert workflow is not None
        mediating = frozenset(s for t, s in workflow.allowed if t == AGREEMENT_TRIGGER)
        ladders[name] = Ladder(tuple(workflow.spec.tiers), mediating)
    return ladders


@dataclass
class TierCounts:
    entered: int = 0
    resolved: int = 0
    escalated: int = 0
    breached: int = 0


@dataclass
class WorkflowCounts:
    opened: int = 0
    closed: int = 0
    on_time: int = 0
    resolved: int = 0
    resolved_local: int = 0
    mediated: int = 0
    agreed: int = 0
    rated: int = 0
    satisfied: int = 0
    warnings: int = 0
    breaches: int = 0
    outcomes: Counter[str] = field(default_factory=Counter)


@dataclass(slots=True)
class _Track:
    workflow: str
    tier: str | None
    path: list[str]
    opened: datetime
    end: str = OPEN


@dataclass(frozen=True)
class Ratios:
    """The domain ratios of one workflow (None where nothing was measured)."""

    local_resolution: float | None
    mediation_success: float | None
    on_time: float | None
    escalation: float | None
    satisfaction: float | None
    resolution: float | None


def _ratio(part: int, whole: int) -> float | None:
    return part / whole if whole else None


class Tally:
    """Counts per workflow and tier, daily series and case paths, fed one record at a time."""

    def __init__(self, ladders: dict[str, Ladder], start: date, tz: ZoneInfo) -> None:
        self.ladders = ladders
        self.start = start
        self.tz = tz
        self.tiers: dict[tuple[str, str], TierCounts] = {
            (wf, tier): TierCounts() for wf, ladder in ladders.items() for tier in ladder.tiers
        }
        self.workflows: dict[str, WorkflowCounts] = {wf: WorkflowCounts() for wf in ladders}
        self.daily: dict[str, Counter[tuple[str, int]]] = {
            kind: Counter() for kind in ("opened", "closed", "warnings", "breaches")
        }
        self.close_days: dict[str, list[float]] = {wf: [] for wf in ladders}
        self.rejected: Counter[str] = Counter()
        self.records = 0
        self.holiday_data_missing = 0
        self._cases: dict[str, _Track] = {}

    # -- feeding -----------------------------------------------------------------------------

    def add(self, record: dict[str, Any]) -> None:
        """Count one output record (as its JSON object)."""
        self.records += 1
        kind = record["type"]
        if kind == "event.rejected":
            self.rejected[record["reason"]] += 1
            return
        wf = record["workflow"]
        if wf not in self.ladders:
            return
        if kind == "case.transitioned":
            self._transitioned(wf, record)
        elif kind == "sla.warning":
            self.workflows[wf].warnings += 1
            self.daily["warnings"][(wf, self._day(record))] += 1
        elif kind == "sla.breached":
            self._breached(wf, record)
        elif kind == "case.closed":
            self._closed(wf, record)

    def _day(self, record: dict[str, Any]) -> int:
        return (self._local(record).date() - self.start).days

    def _local(self, record: dict[str, Any]) -> datetime:
        return datetime.fromisoformat(record["occurred_at"]).astimezone(self.tz)

    def _transitioned(self, wf: str, record: dict[str, Any]) -> None:
        ladder, counts = self.ladders[wf], self.workflows[wf]
        from_tier, to_tier, case_id = record["from_tier"], record["to_tier"], record["case_id"]
        sla = record.get("sla")
        if sla and sla.get("holiday_data_missing"):
            self.holiday_data_missing += 1
        track = self._cases.get(case_id)
        if record["from_state"] is None or track is None:
            counts.opened += 1
            self.daily["opened"][(wf, self._day(record))] += 1
            track = self._cases[case_id] = _Track(wf, to_tier, [], self._local(record))
        if to_tier is not None and to_tier != from_tier:
            self.tiers[(wf, to_tier)].entered += 1
            if not track.path or ladder.rank(to_tier) > ladder.rank(track.path[-1]):
                track.path.append(to_tier)
            if from_tier is not None and ladder.rank(to_tier) > ladder.rank(from_tier):
                self.tiers[(wf, from_tier)].escalated += 1
        track.tier = to_tier
        trigger = record["trigger"]
        if record["from_state"] in ladder.mediation_states and not trigger.endswith(NOT_MEDIATED):
            counts.mediated += 1
            counts.agreed += trigger == AGREEMENT_TRIGGER
        if trigger == RATING_TRIGGER:
            counts.rated += 1
            counts.satisfied += record["to_state"] == "resolved"

    def _breached(self, wf: str, record: dict[str, Any]) -> None:
        self.workflows[wf].breaches += 1
        self.daily["breaches"][(wf, self._day(record))] += 1
        track = self._cases.get(record["case_id"])
        if track is not None and track.tier is not None:
            self.tiers[(wf, track.tier)].breached += 1

    def _closed(self, wf: str, record: dict[str, Any]) -> None:
        counts, outcome, tier = self.workflows[wf], record["outcome"], record["resolved_tier"]
        counts.closed += 1
        counts.on_time += bool(record["on_time"])
        counts.outcomes[outcome] += 1
        self.daily["closed"][(wf, self._day(record))] += 1
        if outcome in RESOLVED_OUTCOMES:
            counts.resolved += 1
            if tier in self.ladders[wf].tiers[:LOCAL_RUNGS]:
                counts.resolved_local += 1
            if (wf, tier) in self.tiers:
                self.tiers[(wf, tier)].resolved += 1
        track = self._cases.get(record["case_id"])
        if track is not None:
            track.end = outcome
            elapsed = self._local(record) - track.opened
            self.close_days[wf].append(elapsed.total_seconds() / 86400)

    # -- reading -----------------------------------------------------------------------------

    def ratios(self, wf: str | None = None) -> Ratios:
        """The domain ratios of one workflow, or of all of them together."""
        names = [wf] if wf else list(self.workflows)
        c = [self.workflows[n] for n in names]
        rows = [t for (n, _), t in self.tiers.items() if n in names]
        return Ratios(
            local_resolution=_ratio(sum(x.resolved_local for x in c), sum(x.resolved for x in c)),
            mediation_success=_ratio(sum(x.agreed for x in c), sum(x.mediated for x in c)),
            on_time=_ratio(sum(x.on_time for x in c), sum(x.closed for x in c)),
            escalation=_ratio(sum(t.escalated for t in rows), sum(t.entered for t in rows)),
            satisfaction=_ratio(sum(x.satisfied for x in c), sum(x.rated for x in c)),
            resolution=_ratio(sum(x.resolved for x in c), sum(x.closed for x in c)),
        )

    def open_cases(self, wf: str | None = None) -> int:
        return sum(1 for t in self._cases.values() if t.end == OPEN and wf in (None, t.workflow))

    def flows(self, wf: str) -> Counter[tuple[str, str]]:
        """Cases per link of the escalation flow: "reported" → each rung climbed → the end
        (an outcome, or "open"). Every case contributes one unit along its path."""
        links: Counter[tuple[str, str]] = Counter()
        for track in self._cases.values():
            if track.workflow != wf or not track.path:
                continue
            nodes = ["reported", *track.path, track.end]
            for a, b in itertools.pairwise(nodes):
                links[(a, b)] += 1
        return links
