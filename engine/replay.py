"""Replay a stream of raw events through the core on a virtual clock (`fengqiao simulate`).

The clock is the latest `occurred_at` read so far: before each event, every case's timers due by
then fire (in due order, then case id), exactly as the Kafka loop fires them when its watermark
passes. At the end, timers fire up to `until`. Same input → same records, byte for byte.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime

from engine.case import Case
from engine.core import Decision, Engine
from engine.decode import decode_event
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


class Replay:
    """In-memory cases + timer index driven by one ordered input stream."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.cases: dict[str, Case] = {}
        self.timers = TimerIndex()
        self.watermark: datetime | None = None
        self.stats = ReplayStats()

    def feed(self, raw: bytes, origin: str) -> Iterator[OutputRecord]:
        """Decode and apply one input; yield the records it causes (timers first)."""
        self.stats.events += 1
        event = decode_event(raw, origin)
        if not isinstance(event, CaseEvent):
            yield from self._count([event])
            return
        if self.watermark is None or event.occurred_at > self.watermark:
            yield from self.advance(event.occurred_at)
        decision = self.engine.apply(self.cases.get(event.case_id), event, origin)
        if decision.duplicate:
            self.stats.duplicates += 1
        yield from self._settle(event.case_id, decision)

    def advance(self, now: datetime) -> Iterator[OutputRecord]:
        """Move the watermark to `now`, firing every timer due by then."""
        if self.watermark is None or now > self.watermark:
            self.watermark = now
        for case_id in self.timers.pop_due(now):
            decision = self.engine.advance(self.cases[case_id], now)
            yield from self._settle(case_id, decision)

    def _settle(self, case_id: str, decision: Decision) -> Iterator[OutputRecord]:
        if decision.case is not None:
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
