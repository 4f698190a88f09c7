"""Late events, corrected: a case re-derived in domain-time order, and what changed retracted.

A grid officer's app syncs when it has signal. If its event arrives after something later in
the case already took effect (the deadline timer fired and escalated the case, or a later act
was applied), applying it at the case's clock would make the record say what did not happen: a
settlement made in time recorded as a breach and an agreement at the center. Within the
workflow's correction horizon (`correction:`), the engine instead:

1. takes the case as it was just before the first input that took effect after the late event's
   instant (a `Checkpoint`: each case keeps one per input within the horizon);
2. applies the late event and the events of the later checkpoints from there, in domain-time
   order (stable: equal instants keep their delivery order), firing the case's timers between
   them as `simulate` would, and then the timers due by the clock's `now`;
3. publishes a `record.retracted` for every live record those later inputs had made, then the
   re-derived records, `seq` continuing (so a consumer applies the retractions, then the new
   records, in one transaction).

So, after retractions, the case's committed history is what `simulate` makes of the inputs in
time order. If the late event is refused where it belongs, nothing after it changes: it is
refused and nothing is retracted. An event refused before and refused again in the re-derivation
gets no second dead letter; one accepted before and refused now gets one (its records are among
those retracted). A re-derivation starts from a checkpoint, never before the case's report: an
event that happened before the case was reported is not corrected (it is applied at the clock).

Retraction is at the granularity of inputs: a record after the late event's instant that comes
out the same is retracted and published again (its `seq` changes, and the history must stay in
order). The cost is per case and per input within the horizon: a snapshot of the case and the
event, in memory and in the changelog; workflows without `correction:` keep none.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from engine.case import Case, Checkpoint
from engine.decision import Decision
from engine.records import RecordBuilder
from schemas.events import CaseEvent
from schemas.records import CaseRecord, EventRejected

if TYPE_CHECKING:
    from engine.core import Engine


def with_checkpoint(
    engine: Engine, decision: Decision, before: Case | None, event: CaseEvent, origin: str
) -> Decision:
    """`decision` (for `event` on `before`), its case keeping a checkpoint of the input when its
    workflow has a correction horizon."""
    case = decision.case
    if case is None or decision.duplicate or decision.retired:
        return decision
    workflow = engine.workflow_of(case)
    if workflow is None or not workflow.correction:
        return decision
    at = event.occurred_at if before is None else max(event.occurred_at, before.clock)
    produced = tuple(r.type for r in decision.records)
    checkpoint = Checkpoint(at, _bare(before), produced, event, origin,
                            decision.rejection is not None)  # fmt: skip
    history = _within((*case.history, checkpoint), case.clock - workflow.correction)
    return decision._replace(case=case._replace(history=history))


def timer_checkpoint(before: Case, due: datetime, records: list[CaseRecord]) -> Checkpoint:
    """The checkpoint of a timer that fired on the clock (the caller keeps it with the case)."""
    return Checkpoint(due, _bare(before), tuple(r.type for r in records))


def keep_within(case: Case, checkpoints: tuple[Checkpoint, ...], horizon: timedelta) -> Case:
    """`case` with `checkpoints` added to its history, less those past the horizon."""
    return case._replace(history=_within((*case.history, *checkpoints), case.clock - horizon))


def correction_point(engine: Engine, case: Case, event: CaseEvent) -> int | None:
    """The index of the checkpoint to re-derive `case` from for the late `event`, or None
    (the event is in order, the workflow has no horizon, or the event is past it)."""
    if not case.history:
        return None
    workflow = engine.workflow_of(case)
    horizon = workflow.correction if workflow is not None else None
    if not horizon or event.occurred_at < case.clock - horizon:
        return None
    for index, checkpoint in enumerate(case.history):
        if checkpoint.at > event.occurred_at:
            return index if checkpoint.before is not None else None
    return None


def correct(
    engine: Engine, case: Case, event: CaseEvent, origin: str, *, now: datetime, index: int
) -> Decision:
    """Re-derive `case` from checkpoint `index` with the late `event` in its place in time."""
    later = case.history[index:]
    base = later[0].before
    workflow = engine.workflow_of(case)
    assert base is not None, "correction_point never chooses the opening checkpoint"
    assert workflow is not None, "correction_point found the case's workflow"
    retractions = RecordBuilder(workflow, case, event.event_id, case.clock)
    for checkpoint in later:
        assert checkpoint.before is not None
        for seq, kind in enumerate(checkpoint.produced, checkpoint.before.seq + 1):
            retractions.retracted(retractions.case, seq, kind)
    inputs: list[tuple[CaseEvent, str, bool | None]] = [
        (c.event, c.origin, c.refused) for c in later if c.event is not None
    ]
    inputs.append((event, origin, None))
    inputs.sort(key=lambda item: item[0].occurred_at)
    current = base._replace(seq=retractions.case.seq, history=case.history[:index])
    records: list[CaseRecord] = []
    refused: list[EventRejected] = []
    for replayed, replayed_origin, was_refused in inputs:
        decision = engine.apply_in_order(current, replayed, replayed_origin)
        assert decision.case is not None, "an open case is never retired by an event"
        rejection = decision.rejection
        if rejection is not None and was_refused is None:
            # refused where it belongs: every other input comes out as it did
            return Decision(case, (), rejection)
        if rejection is not None and not was_refused:
            refused.append(rejection)
        records.extend(decision.records)
        current = decision.case
    tail = engine.advance(current, now)
    return Decision(
        tail.case,
        (*retractions.records, *records, *tail.records),
        retired=tail.retired,
        corrected=True,
        also_refused=tuple(refused),
    )


def _bare(case: Case | None) -> Case | None:
    """A checkpoint's case without checkpoints of its own."""
    return case._replace(history=()) if case is not None and case.history else case


def _within(history: tuple[Checkpoint, ...], since: datetime) -> tuple[Checkpoint, ...]:
    """The checkpoints a late event within the horizon may still need (those from `since`)."""
    if not history or history[0].at >= since:
        return history
    return tuple(c for c in history if c.at >= since)
