"""Replay an ordered stream of raw events through the core: `simulate`, and each Kafka partition.

The clock is a watermark: before each event, every timer due by then fires. Cases are visited in
order of their next due instant (then case id), each firing all its timers due by the watermark;
order *within* a case is what DESIGN §6 promises, across cases records may interleave.
`simulate` moves the watermark to the latest `occurred_at` read so far and at the end to
`--until`; the Kafka loop runs one `Replay` per assigned partition and moves it the same way (or
with the wall clock while caught up). Sharing this one path is what makes `run` equal
`simulate`. Same input → same records, byte for byte.

For Kafka, `load` reads cases from the partition's state store; changed cases are kept here until
the shell has committed its transaction and calls `take_changes` (or `discard` after an abort).
A closed case whose retention has passed (engine/retention.py) is dropped when the clock passes
its retirement, or when an event after it comes; `take_changes` reports it as None, and until
then it is not read from the store again (the store still holds it).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime

from engine.case import Case
from engine.core import Engine
from engine.decision import Decision
from engine.decode import KafkaKey, decode_event
from engine.timers import TimerIndex
from schemas.events import CaseEvent
from schemas.records import OutputRecord


@dataclass
class ReplayStats:
    events: int = 0
    records: int = 0
    rejected: int = 0
    duplicates: int = 0
    timers_fired: int = 0
    retired: int = 0
    """Closed cases retired (dropped after their retention)."""
    by_reason: dict[str, int] = field(default_factory=dict)
    duplicates_by_source: dict[str, int] = field(default_factory=dict)
    """Duplicates by the event's `source` (its channel): a channel that re-sends shows here."""
    corrections: dict[tuple[str, str], int] = field(default_factory=dict)
    """Cases re-derived for a late event (engine/correction.py), by (workflow, event source)."""


class Replay:
    """In-memory cases + timer index driven by one ordered input stream."""

    def __init__(self, engine: Engine, load: Callable[[str], Case | None] | None = None) -> None:
        self.engine = engine
        self.cases: dict[str, Case] = {}
        """Cases read or changed so far (everything, when there is no `load`)."""
        self.changed: set[str] = set()
        self.timers = TimerIndex()
        """Each case's next instant on the clock: a timer, or a closed case's retirement."""
        self.retiring: set[str] = set()
        """Cases whose entry in `timers` is a retirement, not an SLA timer."""
        self.retired: set[str] = set()
        """Retired since the last `take_changes`: still in the store, no longer to be read."""
        self.retire_budget: int | None = None
        """Retirements the clock may still make (None: any number): the shell bounds what one
        transaction carries; the rest wait for the next turn of the clock."""
        self.watermark: datetime | None = None
        self.stats = ReplayStats()
        self._load = load

    def case(self, case_id: str) -> Case | None:
        found = self.cases.get(case_id)
        if found is None and self._load is not None and case_id not in self.retired:
            found = self._load(case_id)
            if found is not None:
                self.cases[case_id] = found
        return found

    @property
    def pending_timers(self) -> int:
        """Cases with a pending SLA timer (not counting closed cases waiting to retire)."""
        return len(self.timers) - len(self.retiring)

    def track(self, case: Case) -> None:
        """Index the timers of a case restored from a store (no records, no change)."""
        at = self.engine.fire_at(case)
        self.timers.set(case.case_id, at)
        if case.closed and at is not None:
            self.retiring.add(case.case_id)
        else:
            self.retiring.discard(case.case_id)

    def take_changes(self) -> dict[str, Case | None]:
        """Cases changed since the last call, None for a retired one (with a `load`, the
        cache is dropped too)."""
        changes = {case_id: self.cases.get(case_id) for case_id in sorted(self.changed)}
        self.changed.clear()
        self.retired.clear()
        if self._load is not None:
            self.cases.clear()
        return changes

    def discard(self, restored: Iterable[Case]) -> None:
        """Forget an aborted batch: cached cases and the timer index are rebuilt from the store."""
        self.cases.clear()
        self.changed.clear()
        self.retired.clear()
        self.retiring.clear()
        self.timers = TimerIndex()
        for case in restored:
            self.track(case)

    def feed(self, raw: bytes, origin: str, key: KafkaKey | None = None) -> Iterator[OutputRecord]:
        """Decode and apply one input; yield the records it causes (timers first). `key`: the
        Kafka key the input came with (None: no Kafka record, nothing to check)."""
        self.stats.events += 1
        event = decode_event(raw, origin, key)
        if not isinstance(event, CaseEvent):
            yield from self._count([event])
            return
        if self.watermark is None or event.occurred_at > self.watermark:
            yield from self.advance(event.occurred_at)
        decision = self.engine.apply(self.case(event.case_id), event, origin, self.watermark)
        if decision.corrected and decision.case is not None:
            by = (decision.case.workflow, event.source)
            self.stats.corrections[by] = self.stats.corrections.get(by, 0) + 1
        if decision.duplicate:
            self.stats.duplicates += 1
            by_source = self.stats.duplicates_by_source
            by_source[event.source] = by_source.get(event.source, 0) + 1
        yield from self._settle(event.case_id, decision)

    def advance(self, now: datetime) -> Iterator[OutputRecord]:
        """Move the watermark to `now`, firing every timer due by then and retiring the closed
        cases whose retention has passed (as many as `retire_budget` allows)."""
        if self.watermark is None or now > self.watermark:
            self.watermark = now
        deferred: list[Case] = []
        for case_id in self.timers.pop_due(now):
            case = self.case(case_id)
            if case is None:
                self.retiring.discard(case_id)
                continue
            if case.closed and self.retire_budget is not None:
                if self.retire_budget <= 0:
                    deferred.append(case)  # still retired for any event after its instant
                    continue
                self.retire_budget -= 1
            decision = self.engine.advance(case, now)
            yield from self._settle(case_id, decision)
        for case in deferred:
            self.track(case)

    def _settle(self, case_id: str, decision: Decision) -> Iterator[OutputRecord]:
        if decision.retired:
            self._retire(case_id)
        if decision.case is not None:
            if decision.records or decision.case is not self.cases.get(case_id):
                self.changed.add(case_id)
            self.cases[case_id] = decision.case
            self.track(decision.case)
        out: list[OutputRecord] = list(decision.records)
        out.extend(decision.also_refused)
        if decision.rejection is not None:
            out.append(decision.rejection)
        yield from self._count(out)

    def _retire(self, case_id: str) -> None:
        self.stats.retired += 1
        self.cases.pop(case_id, None)
        self.timers.set(case_id, None)
        self.retiring.discard(case_id)
        self.changed.add(case_id)
        if self._load is not None:
            self.retired.add(case_id)

    def _count(self, records: Iterable[OutputRecord]) -> Iterator[OutputRecord]:
        for record in records:
            self.stats.records += 1
            if record.type in ("sla.warning", "sla.breached"):
                self.stats.timers_fired += 1
            if record.type == "event.rejected":
                self.stats.rejected += 1
                self.stats.by_reason[record.reason] = self.stats.by_reason.get(record.reason, 0) + 1
            yield record
