"""What a guard reads, where a new case goes, and a refusal's short detail: the core's helpers.

Kept apart from engine/core.py, which holds the decisions themselves; these are the inputs the
decisions are made from (a guard's context, a window's close, the routing rules).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime

from pydantic import ValidationError

from engine.case import Case
from engine.guards import GuardError
from engine.machine import ATTRIBUTES, CompiledWorkflow, to_duration
from engine.refusal import Refusal
from engine.sla import anchor_at
from engine.vocabulary import fields_problem, with_instants
from schemas.events import CaseEvent, CaseReported
from schemas.workflow import WindowSpec


def context(
    workflow: CompiledWorkflow, case: Case, event: CaseEvent, at: datetime
) -> dict[str, object]:
    """What a CEL guard may read. Plain dicts and scalars: CEL converts them natively; declared
    `timestamp` fields become datetimes, so they compare with `now`. The case's and the event's
    own instants stay in their zones: a guard converts those it reads (`Guard.evaluate`), and
    most read none (each conversion costs thousands of instructions)."""
    attrs: Mapping[str, object] = case.attrs
    payload: Mapping[str, object] = event.payload
    instants = workflow.instant_fields
    if instants:
        names = instants.get(ATTRIBUTES, frozenset())
        attrs = with_instants(attrs, names)
        if event.type == "case.reported" and isinstance(payload.get("attributes"), dict):
            reported = payload["attributes"]
            assert isinstance(reported, dict)
            payload = {**payload, "attributes": with_instants(reported, names)}
        payload = with_instants(payload, instants.get(event.type, frozenset()))
    return {
        "event": {
            "type": event.type,
            "source": event.source,
            "occurred_at": event.occurred_at,
            "payload": payload,
        },
        "case": {
            "state": case.state,
            "tier": case.tier or "",
            "workflow": case.workflow,
            "attrs": attrs,
            "escalations": case.escalations,
            "opened_at": case.opened_at,
            "entered_at": case.entered_at,
        },
        "now": at,
    }


def window(
    workflow: CompiledWorkflow, case: Case, at: datetime
) -> Callable[[WindowSpec], datetime | None]:
    """For the machine's window condition: None while `at` is inside the window, else the
    instant it closed. Windows count like deadlines (Chinese procedural counting)."""

    def closed_at(window: WindowSpec) -> datetime | None:
        start = anchor_at(case, window.counted_from)
        end = workflow.deadline(start, to_duration(window)).instant
        return None if at < end else end

    return closed_at


def opening_problem(
    workflow: CompiledWorkflow, source: str, payload: CaseReported
) -> Refusal | None:
    if source not in workflow.sources:
        return Refusal("unauthorized_source", f"{source!r} may not report {workflow.name} cases")
    wrong = fields_problem("attributes", workflow.spec.attributes, payload.attributes)
    return Refusal("schema_invalid", wrong) if wrong is not None else None


def route(
    workflow: CompiledWorkflow, source: str, context: dict[str, object]
) -> tuple[str | None, str]:
    """The first rule open to `source` whose guard holds.

    A guard that fails to evaluate refuses the case rather than falling through to the next rule:
    silently routing a case to the wrong rung is worse than a visible dead-letter record.
    """
    permitted = [r for r in workflow.routes if source in r.allowed_sources]
    if not permitted:
        return None, f"source {source!r} may not open a case by any routing rule"
    for route in permitted:
        if route.guard is None:
            return route.dest, ""
        try:
            if route.guard.evaluate(context):
                return route.dest, ""
        except GuardError as err:
            return None, f"routing guard {route.guard.source.strip()!r}: {err}"
    return None, "no routing rule matched"


def short(err: ValidationError) -> str:
    parts = [f"{'.'.join(str(p) for p in e['loc']) or 'payload'}: {e['msg']}" for e in err.errors()]
    return "; ".join(parts[:5])
