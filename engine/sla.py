"""SLA clocks of a state: start on entry, pause, resume, extend.

Deadlines count from the *domain* time the case entered the state, never from processing time,
so a backlog in Kafka does not move anybody's legal deadline.
"""

from __future__ import annotations

from datetime import datetime

from engine.case import SlaClock
from engine.deadlines import Deadline
from engine.machine import CompiledWorkflow, to_duration
from schemas.workflow import SlaSpec


def _warning_at(spec: SlaSpec, entered_at: datetime, deadline: datetime) -> datetime:
    return entered_at + (deadline - entered_at) * spec.warn_at


def _clock(
    spec: SlaSpec, entered_at: datetime, result: Deadline, base: SlaClock | None = None
) -> SlaClock:
    missing = result.data_missing or (base.data_missing if base else False)
    warning_at = _warning_at(spec, entered_at, result.instant)
    if base is None:
        return SlaClock(deadline=result.instant, warning_at=warning_at, data_missing=missing)
    return base._replace(deadline=result.instant, warning_at=warning_at, data_missing=missing)


def _moved(
    spec: SlaSpec, entered_at: datetime, result: Deadline, base: SlaClock, at: datetime
) -> SlaClock:
    """A clock whose deadline moved (resume, extension): the warning is armed again when its
    new instant is still ahead, so the handler hears about the new deadline too."""
    clock = _clock(spec, entered_at, result, base)
    return clock._replace(warned=base.warned and clock.warning_at <= at)


def enter_sla(workflow: CompiledWorkflow, spec: SlaSpec, at: datetime) -> SlaClock:
    """The clock of a state entered at `at`."""
    return _clock(spec, at, workflow.deadline(at, to_duration(spec)))


def pause_sla(sla: SlaClock, at: datetime) -> SlaClock | str:
    """Stop the clock (e.g. while an appraisal runs); a string is the reason it cannot."""
    if sla.paused_at is not None:
        return "the SLA clock is already paused"
    if sla.breached:
        return "the deadline has already passed"
    return sla._replace(paused_at=at)


def resume_sla(
    workflow: CompiledWorkflow, spec: SlaSpec, sla: SlaClock, entered_at: datetime, at: datetime
) -> SlaClock | str:
    """Restart the clock; the deadline moves by the paused time, measured in the SLA's unit."""
    if sla.paused_at is None:
        return "the SLA clock is not paused"
    moved = workflow.deadlines.after_pause(sla.deadline, spec.unit, sla.paused_at, at)
    return _moved(spec, entered_at, moved, sla, at)._replace(paused_at=None)


def extend_sla(
    workflow: CompiledWorkflow, spec: SlaSpec, sla: SlaClock, entered_at: datetime, at: datetime
) -> SlaClock | str:
    """An authorised extension, at most `max_extensions` times per stay in the state."""
    if spec.extension is None or sla.extensions >= spec.max_extensions:
        return f"no extension left (at most {spec.max_extensions})"
    if sla.breached:
        return "the deadline has already passed"
    moved = workflow.deadlines.extend(sla.deadline, to_duration(spec.extension))
    return _moved(spec, entered_at, moved, sla, at)._replace(extensions=sla.extensions + 1)
