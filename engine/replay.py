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
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime

from engine.case import Case
from engine.core import Decision, Engine
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
    by_reason: dict[str, int] = field(default_factory=dict)
    duplicates_by_source: dict[str, int] = field(default_factory=dict)
    """Duplicates by the event's `source` (its channel): a channel that re-sends shows here."""


class Replay:
    """In-memory cases + timer index driven by one ordered input stream."""

    def __init__(self, engine: Engine, load: Callable[[str], Case | None] | None = None) -> None:
        self.engine = engine
        self.cases: dict[str, Case] = {}
        """Cases read or changed so far (everything, when there is no `load`)."""
        self.changed: set[str] = set()
        self.timers = TimerIndex()
        self.watermark: datetime | None = None
        self.stats = ReplayStats()
        self._load = load

    def case(self, case_id: str) -> Case | None:
        found = self.cases.get(case_id)
        if found is None and self._load is not None:
            found = self._load(case_id)
            if found is not None:
                self.cases[case_id] = found
        return found

    def track(self, case: Case) -> None:
        """Index the timers of a case restored from a store (no records, no change)."""
        self.timers.set(case.case_id, case.next_due())

    def take_changes(self) -> dict[str, Case]:
        """Cases changed since the last call (with a `load`, the cache is dropped too)."""
        changes = {case_id: self.cases[case_id] for case_id in sorted(self.changed)}
        self.changed.clear()
        if self._load is not None:
            self.cases.clear()
        return changes

    def discard(self, restored: Iterable[Case]) -> None:
        """Forget an aborted batch: cached cases and the timer index are rebuilt from the store."""
        self.cases.clear()
        self.changed.clear()
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
        decision = self.engine.apply(self.case(event.case_id), event, origin)
        if decision.duplicate:
            self.stats.duplicates += 1
            by_source = self.stats.duplicates_by_source
            by_source[event.source] = by_source.get(event.source, 0) + 1
        yield from self._settle(event.case_id, decision)

    def advance(self, now: datetime) -> Iterator[OutputRecord]:
        """Move the watermark to `now`, firing every timer due by then."""
        if self.watermark is None or now > self.watermark:
            self.watermark = now
        for case_id in self.timers.pop_due(now):
            case = self.case(case_id)
            if case is None:
                continue
            decision = self.engine.advance(case, now)
            yield from self._settle(case_id, decision)

    def _settle(self, case_id: str, decision: Decision) -> Iterator[OutputRecord]:
        if decision.case is not None:
            if decision.records or decision.case is not self.cases.get(case_id):
                self.changed.add(case_id)
            self.cases[case_id] = decision.case
            self.timers.set(case_id, decision.case.next_due())
        out: list[OutputRecord] = list(decision.records)
        if decision.rejection is not None:
            out.append(decision.rejection)
        yield from self._count(out)

    def _count(self, records: Iterable[OutputRecord]) -> Iterator[OutputRecord]:
        for record in records:
            self.stats.records += 1
            if record.type in ("sla.warning", "sla.breached"):
                self.stats.timers_fired += 1
            if record.type == "event.rejected":
                self.stats.rejected += 1
                self.stats.by_reason[record.reason] = self.stats.by_reason.get(record.reason, 0) + 1
            yield record
