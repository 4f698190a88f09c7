"""Moving an open case to another version of its workflow (`case.migrated` events).

Migrations travel as ordinary events through the case-events topic, so they are exactly-once,
ordered with the case's other events and audited in the output like any transition. The state
mapping is explicit (no guessing by name) and the SLA policy is chosen by the operator.
"""

from __future__ import annotations

from datetime import datetime

from pydantic import ValidationError

from engine.case import Case, SlaClock
from engine.machine import CompiledWorkflow
from engine.records import RecordBuilder
from engine.refusal import Refusal
from engine.registry import WorkflowRegistry
from engine.sla import anchor_at, enter_sla, warning_at
from schemas.events import MIGRATION_SOURCE, CaseEvent, CaseMigration
from schemas.workflow import SlaSpec


def apply_migration(  # noqa: PLR0911 - one refusal per precondition, in order
    registry: WorkflowRegistry, builder: RecordBuilder, event: CaseEvent
) -> Case | Refusal:
    """The migrated case, or why it cannot move."""
    case = builder.case
    if event.source != MIGRATION_SOURCE:
        return Refusal("unauthorized_source", f"only {MIGRATION_SOURCE!r} may migrate cases")
    try:
        spec = CaseMigration.model_validate(event.payload)
    except ValidationError as err:
        return Refusal("schema_invalid", "; ".join(str(e["msg"]) for e in err.errors()[:5]))
    if case.version != spec.from_version:
        return Refusal(
            "invalid_transition", f"case is on version {case.version}, not {spec.from_version}"
        )
    target = registry.get(case.workflow, spec.to_version)
    if target is None:
        return Refusal("workflow_unknown", f"{case.workflow}@{spec.to_version} is not loaded")
    to_state = spec.state_map.get(case.state)
    if to_state is None:
        return Refusal("invalid_transition", f"the state map has no entry for {case.state!r}")
    state = target.spec.states.get(to_state)
    if state is None or state.terminal:
        detail = f"{to_state!r} is not an open state of version {target.version}"
        return Refusal("invalid_transition", detail)
    if to_state in target.marked_states:  # a later `from: <to_state>` counts from its entry
        case = case.marked(to_state, case.entered_at)
    sla = _sla(target, state.sla, case, builder.at, spec.sla)
    moved = case._replace(version=target.version, state=to_state, tier=state.tier or case.tier,
                          sla=sla)  # fmt: skip
    builder.workflow = target
    builder.migrated(moved, from_version=case.version, from_state=case.state, policy=spec.sla)
    return builder.case


def _sla(
    target: CompiledWorkflow, spec: SlaSpec | None, case: Case, at: datetime, policy: str
) -> SlaClock | None:
    if spec is None:
        return None
    start = anchor_at(case, spec.counted_from)
    recomputed = enter_sla(target, spec, start)
    old = case.sla
    if old is None or policy == "recompute":
        return recomputed._replace(warned=recomputed.warning_at <= at)
    kept = old._replace(
        warning_at=warning_at(target, spec, start, old.deadline), party=spec.owner == "party"
    )
    if policy == "keep" or kept.deadline <= recomputed.deadline:
        return kept
    return recomputed._replace(warned=recomputed.warning_at <= at)
