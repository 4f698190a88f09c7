"""SLA clocks of a state: start on entry, pause, resume, extend.

Deadlines count from a *domain* instant, never from processing time, so a backlog in Kafka does
not move anybody's legal deadline: by default the entry into the state, or (`from:`) the case's
opening or its last entry into a named earlier state. Warnings of working-day and working-hour
limits fall at a fraction of the *working* time, inside office hours.
"""

from __future__ import annotations

from datetime import datetime

from engine.case import Case, SlaClock
from engine.deadlines import Deadline
from engine.machine import CompiledWorkflow, to_duration
from schemas.workflow import SlaSpec

WORKING_UNITS = frozenset({"working_days", "working_hours"})


def anchor_at(case: Case, anchor: str) -> datetime:
    """The instant a period counts from: `entered` (this state), `opened`, or a marked state's
    last entry (a case that never entered it counts from entering the current state)."""
    if anchor == "opened":
        return case.opened_at
    if anchor == "entered":
        return case.entered_at
    return case.entered(anchor) or case.entered_at


def warning_at(
    workflow: CompiledWorkflow, spec: SlaSpec, start: datetime, deadline: datetime
) -> datetime:
    if spec.unit in WORKING_UNITS:
        return workflow.deadlines.working_fraction(start, deadline, spec.warn_at)
    return start + (deadline - start) * spec.warn_at


def _clock(
    workflow: CompiledWorkflow,
    spec: SlaSpec,
    start: datetime,
    result: Deadline,
    base: SlaClock | None = None,
    *,
    warned: bool = False,
) -> SlaClock:
    missing = result.data_missing or (base.data_missing if base else False)
    warning = warning_at(workflow, spec, start, result.instant)
    if base is None:
        return SlaClock(deadline=result.instant, warning_at=warning, warned=warned,
                        data_missing=missing, party=spec.owner == "party")  # fmt: skip
    return base._replace(deadline=result.instant, warning_at=warning, data_missing=missing)


def _moved(
    workflow: CompiledWorkflow,
    spec: SlaSpec,
    start: datetime,
    result: Deadline,
    base: SlaClock,
    *,
    at: datetime,
) -> SlaClock:
    """A clock whose deadline moved (resume, extension): the warning is armed again when its
    new instant is still ahead, so the handler hears about the new deadline too."""
    clock = _clock(workflow, spec, start, result, base)
    return clock._replace(warned=base.warned and clock.warning_at <= at)


def enter_sla(
    workflow: CompiledWorkflow, spec: SlaSpec, start: datetime, at: datetime | None = None
) -> SlaClock:
    """The clock of a limit counted from `start` (see `anchor_at`). Entered at `at`, a limit
    already passed by then (`from: opened`) breaches without a warning first."""
    result = workflow.deadline(start, to_duration(spec))
    passed = at is not None and result.instant <= at
    return _clock(workflow, spec, start, result, warned=passed)


def pause_sla(sla: SlaClock, at: datetime) -> SlaClock | str:
    """Stop the clock (e.g. while an appraisal runs); a string is the reason it cannot."""
    if sla.paused_at is not None:
        return "the SLA clock is already paused"
    if sla.breached:
        return "the deadline has already passed"
    return sla._replace(paused_at=at)


def resume_sla(
    workflow: CompiledWorkflow, spec: SlaSpec, sla: SlaClock, start: datetime, at: datetime
) -> SlaClock | str:
    """Restart the clock; the deadline moves by the paused time, measured in the SLA's unit."""
    if sla.paused_at is None:
        return "the SLA clock is not paused"
    moved = workflow.deadlines.after_pause(sla.deadline, spec.unit, sla.paused_at, at)
    return _moved(workflow, spec, start, moved, sla, at=at)._replace(paused_at=None)


def extend_sla(
    workflow: CompiledWorkflow, spec: SlaSpec, sla: SlaClock, start: datetime, at: datetime
) -> SlaClock | str:
    """An authorised extension, at most `max_extensions` times per stay in the state."""
    if spec.extension is None or sla.extensions >= spec.max_extensions:
        return f"no extension left (at most {spec.max_extensions})"
    if sla.breached:
        return "the deadline has already passed"
    moved = workflow.deadlines.extend(sla.deadline, to_duration(spec.extension))
    return _moved(workflow, spec, start, moved, sla, at=at)._replace(extensions=sla.extensions + 1)
