"""One batch through the core: the step that `run`, `demo`, the benchmarks and the fuzz test share.

A shell hands `BatchReplay.step` a batch of raw inputs (and, when its clock says so, the instant
up to which idle cases' timers fire) and gets back a `BatchResult`: every output record with the
input that caused it, and every changed case as a before/after pair with its snapshot bytes.
The shell then makes the batch durable its own way — one Kafka transaction (`fengqiao run`), a
JSONL log and SQLite (`fengqiao demo`) — and reports how that went:

- `confirm()` once the changed cases are in its store (the store is what the next batch reads);
- `rewind(cases)` when it could not (an aborted transaction): the cases as the store still has
  them rebuild the timer index, and the batch is as if it never ran.

Until one of the two is called no new batch may start (`BatchLifecycleError`): a shell cannot
silently keep going on state it never stored. The encodings (`Output.value`, `CaseChange.snapshot`)
are the wire format of the transitions, dead-letter and changelog topics, written once here.

A closed case retired in the batch (engine/retention.py) is a change with no `after`: the shell
deletes it from its store and writes a tombstone (its key, a null value) to the changelog. One
batch retires at most `MAX_RETIREMENTS_PER_BATCH` cases by the clock, so that the first start
with a retention over years of closed cases spreads their tombstones over many transactions
(each well within the transaction timeout) instead of one.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import NamedTuple

from engine.case import Case
from engine.core import Engine
from engine.decode import KafkaKey
from engine.problems import FengqiaoError
from engine.replay import Replay
from engine.stores.codec import encode_case
from schemas.records import EventRejected, OutputRecord

MAX_RETIREMENTS_PER_BATCH = 2000
"""Retirements the clock makes in one batch step (a tombstone costs about what a snapshot does
to send); the others wait for the next step. Events are never held back by it."""


class BatchLifecycleError(FengqiaoError):
    """A batch step out of order (a bug in the shell, never retryable)."""

    retryable = False


class BatchState(enum.Enum):
    READY = "ready"
    """No batch in hand: `step` may run."""
    PENDING = "pending"
    """A batch was decided; the shell must `confirm` or `rewind` it."""
    FAILED = "failed"
    """A step raised half-way (e.g. the store's `load`): only `rewind` may follow."""


@dataclass(frozen=True, slots=True)
class Input:
    """One raw input and where it came from (`topic/partition/offset`, `file:line`)."""

    raw: bytes
    origin: str
    headers: Mapping[str, str] | None = None
    """Kafka headers of the input, kept on its dead letter if it is refused."""
    key: KafkaKey | None = None
    """The Kafka key it came with, which must be the event's case_id (`key_mismatch`
    otherwise); None for inputs that are no Kafka record (file lines, the demo, the
    benchmarks): there is no key to check."""


class Output(NamedTuple):
    """An output record, the index of the input that caused it (None: a timer fired by the
    clock), and the workflow of its case when known (for logs and metrics).

    A NamedTuple (immutable, like a frozen dataclass, whose `__init__` costs a call of
    `object.__setattr__` per field): one is made per output record."""

    record: OutputRecord
    source: int | None
    workflow: str | None

    @property
    def refused(self) -> bool:
        return self.record.type == "event.rejected"

    @property
    def key(self) -> bytes | None:
        return self.record.case_id.encode() if self.record.case_id else None

    @property
    def value(self) -> bytes:
        return self.record.model_dump_json().encode()


class CaseChange(NamedTuple):
    """A case this batch changed: as the store had it (None: new) and as it is now (None:
    retired; `before` is then the closed case the store holds). A NamedTuple, like `Output`."""

    before: Case | None
    after: Case | None = None

    @property
    def case_id(self) -> str:
        case = self.after or self.before
        assert case is not None, "a change has a case before or after it"
        return case.case_id

    @property
    def retired(self) -> bool:
        return self.after is None

    @property
    def snapshot(self) -> bytes | None:
        """The changelog value: the case's snapshot, or None (a tombstone) once retired."""
        return None if self.after is None else encode_case(self.after).encode()


@dataclass(frozen=True, slots=True)
class BatchResult:
    outputs: tuple[Output, ...]
    changes: tuple[CaseChange, ...]
    """In case_id order."""
    events: int
    duplicates_by_source: Mapping[str, int]
    """Inputs dropped because their event_id was already applied to the case, by the event's
    `source`."""
    retired: int = 0
    """Closed cases retired in this batch (each a change with no `after`, unless a re-sent
    report opened a new case under its id in the same batch)."""
    corrections: Mapping[tuple[str, str], int] = field(default_factory=dict)
    """Cases re-derived for a late event (engine/correction.py), by (workflow, its source)."""

    @property
    def upserts(self) -> dict[str, Case]:
        """What the store must write: each changed case that is not retired."""
        return {c.case_id: c.after for c in self.changes if c.after is not None}

    @property
    def deletes(self) -> list[str]:
        """What the store must delete: the retired cases."""
        return [c.case_id for c in self.changes if c.after is None]

    @property
    def duplicates(self) -> int:
        return sum(self.duplicates_by_source.values())

    @property
    def records(self) -> list[OutputRecord]:
        """The case records (what goes to the transitions topic)."""
        return [o.record for o in self.outputs if not o.refused]

    @property
    def refusals(self) -> list[EventRejected]:
        return [o.record for o in self.outputs if isinstance(o.record, EventRejected)]

    @property
    def empty(self) -> bool:
        return not self.outputs and not self.changes and not self.events


class BatchReplay:
    """The cases of one partition (or one demo town), fed batch by batch against a store."""

    def __init__(
        self,
        engine: Engine,
        load: Callable[[str], Case | None],
        restored: Iterable[Case] = (),
        *,
        resume_watermark: bool = False,
    ) -> None:
        """`load` reads a case from the shell's store; `restored` are the store's cases (their
        timers are indexed); `resume_watermark` starts the event-time watermark at the latest
        case clock (the `events` clock resumes where the store is)."""
        self._store_load = load
        self._replay = Replay(engine, load=self._load)
        self._before: dict[str, Case | None] = {}
        self.state = BatchState.READY
        self._index(restored, resume_watermark)
        self._stored_watermark = self._replay.watermark
        """The watermark as of the last stored batch: a rewind goes back to it too (the
        batch is then fed again and must fire the timers it fired the first time)."""

    @property
    def next_due(self) -> datetime | None:
        return self._replay.timers.peek()

    @property
    def pending_timers(self) -> int:
        """Cases with a pending SLA timer (closed cases waiting to retire are not counted)."""
        return self._replay.pending_timers

    def step(
        self,
        inputs: Sequence[Input],
        *,
        fire_until: datetime | None = None,
        fire_due_at: datetime | None = None,
    ) -> BatchResult:
        """Feed `inputs` in order, then move the clock: to `fire_until` whatever is due (a
        virtual day's end), or to `fire_due_at` only if a timer is due by then (the wall clock:
        it must not move the event-time watermark for nothing)."""
        if self.state is not BatchState.READY:
            raise BatchLifecycleError(f"the last batch is {self.state.value}: confirm or rewind it")
        try:
            if fire_until is not None:
                result = self._step(inputs, fire_until, only_if_due=False)
            else:
                result = self._step(inputs, fire_due_at, only_if_due=True)
        except BaseException:
            self.state = BatchState.FAILED  # cached cases and timers are half-updated now
            raise
        self.state = BatchState.PENDING
        return result

    def _step(
        self, inputs: Sequence[Input], fire_until: datetime | None, *, only_if_due: bool
    ) -> BatchResult:
        replay = self._replay
        duplicates = dict(replay.stats.duplicates_by_source)
        corrections = dict(replay.stats.corrections)
        retired = replay.stats.retired
        replay.retire_budget = MAX_RETIREMENTS_PER_BATCH
        outputs: list[Output] = []
        for index, item in enumerate(inputs):
            for record in replay.feed(item.raw, item.origin, item.key):
                workflow = self._workflow(record)
                if isinstance(record, EventRejected) and item.headers:
                    outputs.append(Output(_with_headers(record, item.headers), index, workflow))
                else:
                    outputs.append(Output(record, index, workflow))
        due = replay.timers.peek()  # after the inputs: they may have made a timer due
        if fire_until is not None and not (only_if_due and (due is None or due > fire_until)):
            outputs.extend(Output(r, None, self._workflow(r)) for r in replay.advance(fire_until))
        changes: list[CaseChange] = []
        for case_id, case in replay.take_changes().items():
            before = self._before.get(case_id)
            if before is not None or case is not None:  # opened and retired here: not stored
                changes.append(CaseChange(before, case))
        self._before.clear()
        now = replay.stats.duplicates_by_source
        by_source = {s: n - duplicates.get(s, 0) for s, n in sorted(now.items())
                     if n > duplicates.get(s, 0)}  # fmt: skip
        corrected = {k: n - corrections.get(k, 0) for k, n in replay.stats.corrections.items()
                     if n > corrections.get(k, 0)}  # fmt: skip
        return BatchResult(tuple(outputs), tuple(changes), len(inputs), by_source,
                           replay.stats.retired - retired, corrected)  # fmt: skip

    def confirm(self) -> None:
        """The shell stored the last batch's changes: the next batch may start."""
        if self.state is not BatchState.PENDING:
            raise BatchLifecycleError("no batch to confirm")
        self._stored_watermark = self._replay.watermark
        self.state = BatchState.READY

    def rewind(self, restored: Iterable[Case]) -> None:
        """Forget everything not stored: `restored` (the store's cases) rebuild the timers.
        Allowed in any state (an abort may come before or after a step)."""
        self._replay.discard(restored)
        self._replay.watermark = self._stored_watermark
        self._before.clear()
        self.state = BatchState.READY

    def _load(self, case_id: str) -> Case | None:
        case = self._store_load(case_id)
        self._before.setdefault(case_id, case)  # as the store had it when the batch first read it
        return case

    def _workflow(self, record: OutputRecord) -> str | None:
        if not isinstance(record, EventRejected) or record.workflow is not None:
            return record.workflow
        known = self._replay.cases.get(record.case_id or "")
        return known.workflow if known is not None else None

    def _index(self, restored: Iterable[Case], resume_watermark: bool) -> None:
        replay = self._replay
        for case in restored:
            replay.track(case)
            if resume_watermark and (replay.watermark is None or case.clock > replay.watermark):
                replay.watermark = case.clock


def _with_headers(record: EventRejected, headers: Mapping[str, str]) -> EventRejected:
    """The dead letter keeps the input's Kafka headers (tracing ids, the producer's name)."""
    return record.model_copy(update={"headers": dict(headers)})
