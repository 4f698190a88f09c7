"""The functional core: `(case | None, event) → (new case, records, timers)`, and timer firing.

No I/O, no wall clock, no randomness: time comes from the event (`occurred_at`) or from the
watermark the caller passes to `advance`. That is what makes `fengqiao simulate` a faithful
replay of `fengqiao run`, and what lets the Kafka shell retry a batch after a crash and get the
same records. No input makes these functions raise: every refusal is an `EventRejected`.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from pydantic import ValidationError

from engine import context as inputs
from engine.case import Case, Checkpoint, Timer
from engine.correction import (
    correct,
    correction_point,
    keep_within,
    timer_checkpoint,
    with_checkpoint,
)
from engine.decision import Decision
from engine.machine import BREACH_TRIGGER, TIMEOUT_TRIGGER, CompiledWorkflow, Step
from engine.migration import apply_migration
from engine.records import RecordBuilder, rejection
from engine.refusal import Refusal
from engine.registry import WorkflowRegistry
from engine.retention import check_retention, retired_by, retirement_fires_at
from engine.sla import anchor_at, enter_sla, extend_sla, pause_sla, resume_sla
from engine.vocabulary import fields_problem
from schemas.events import MIGRATION_TYPE, PAYLOAD_MODELS, CaseEvent, CaseReported
from schemas.records import CaseRecord, RejectionReason

MAX_TIMERS_PER_ADVANCE = 64
"""A chain of escalations fires at most a few timers; the bound only guards against loops."""
ZERO = timedelta(0)


class Engine:
    """Applies events and fires timers for the workflows of one registry."""

    def __init__(self, registry: WorkflowRegistry, retention: timedelta | None = None) -> None:
        """`retention`: how long a closed case is kept, in domain time, before it is retired
        (engine/retention.py); None keeps closed cases for ever."""
        self.registry = registry
        self.retention = check_retention(retention)

    def with_retention(self, retention: timedelta | None) -> Engine:
        """This engine's workflows with another retention (the service's setting)."""
        return self if retention == self.retention else Engine(self.registry, retention)

    def workflow_of(self, case: Case) -> CompiledWorkflow | None:
        return self.registry.get(case.workflow, case.version)

    def apply(
        self, case: Case | None, event: CaseEvent, origin: str = "", now: datetime | None = None
    ) -> Decision:
        """Apply one event; timers of the case due at or before the event fire first. A closed
        case past its retention at the event's time is retired first: the event finds none.
        An event behind what already took effect in its case, within the workflow's correction
        horizon, re-derives the case (engine/correction.py), whose timers then fire up to
        `now` (the clock's instant; default: the event's)."""
        if case is not None and retired_by(case, self.retention, event.occurred_at):
            return self._open(event, origin)._replace(retired=True)
        if case is not None and event.event_id in case.seen:
            return Decision(case, duplicate=True)
        if case is not None:
            index = correction_point(self, case, event)
            if index is not None:
                at = event.occurred_at if now is None else max(now, event.occurred_at)
                return correct(self, case, event, origin, now=at, index=index)
        return self.apply_in_order(case, event, origin)

    def apply_in_order(self, case: Case | None, event: CaseEvent, origin: str = "") -> Decision:
        """Apply one event where it stands in its case (no correction), keeping a checkpoint of
        it when the workflow has a correction horizon."""
        if case is None:
            return with_checkpoint(self, self._open(event, origin), None, event, origin)
        fired = self.advance(case, event.occurred_at, by_event=True)
        assert fired.case is not None
        result = self._on_case(fired.case, event)
        if isinstance(result, Refusal):
            refused = self._refuse(event, origin, result, fired.case, list(fired.records))
            return with_checkpoint(self, refused, case, event, origin)
        moved, records = result
        decision = Decision(moved.remember(event.event_id), (*fired.records, *records))
        return with_checkpoint(self, decision, case, event, origin)

    def _on_case(self, case: Case, event: CaseEvent) -> tuple[Case, list[CaseRecord]] | Refusal:
        workflow = self.workflow_of(case)
        if workflow is None:
            return Refusal("workflow_unknown", f"{case.workflow}@{case.version} is not loaded")
        builder = RecordBuilder(workflow, case, event.event_id, event.occurred_at)
        result: Case | Refusal
        if event.type == MIGRATION_TYPE and not case.closed:
            result = apply_migration(self.registry, builder, event)
        else:
            problem = self._check_event(workflow, case, event)
            if problem is not None:
                return problem
            kind = workflow.clock_events.get(event.type)
            result = (
                self._clock(workflow, builder, kind, event)
                if kind
                else self._transition(workflow, builder, event)
            )
        if isinstance(result, Refusal):
            return result
        return result, builder.records

    def fire_at(self, case: Case) -> datetime | None:
        """When the next timer of `case` fires on a clock: its due instant, plus the allowed
        lateness of the sources that may still act on the case's state (`lateness:`). For a
        closed case, when it retires (None: kept for ever)."""
        due = case.next_due()
        if due is None:
            return retirement_fires_at(case, self.retention, self.workflow_of(case))
        workflow = self.workflow_of(case)
        return due + workflow.lateness.get(case.state, ZERO) if workflow else due

    def advance(self, case: Case, now: datetime, *, by_event: bool = False) -> Decision:
        """Fire, in due order, every timer of `case` whose time has come at `now`: on a clock,
        its due instant plus the state's allowed lateness; `by_event` (an event of the case
        that happened at `now`), its due instant: the act itself shows the limit had passed.
        A closed case whose retirement has come is retired (`Decision.retired`, no case)."""
        if case.closed:
            at = self.fire_at(case)
            return Decision(None, retired=True) if at is not None and at <= now else Decision(case)
        workflow = self.workflow_of(case)
        records: list[CaseRecord] = []
        checkpoints: list[Checkpoint] = []
        for _ in range(MAX_TIMERS_PER_ADVANCE):
            due = case.next_due()
            if workflow is None or due is None:
                break
            wait = ZERO if by_event else workflow.lateness.get(case.state, ZERO)
            if due + wait > now:
                break
            timer = case.timers()[0]
            # A limit counted from an earlier instant (`from: opened`) may have passed before
            # the case entered the state: it fires as the case enters, not as a late record.
            builder = RecordBuilder(workflow, case, timer.timer_id, max(timer.due, case.clock))
            fired = self._fire(workflow, builder, timer)
            if workflow.correction and not by_event:  # an event's own checkpoint covers these
                checkpoints.append(timer_checkpoint(case, timer.due, builder.records))
            case = fired
            records.extend(builder.records)
        if checkpoints and workflow is not None:
            case = keep_within(case, tuple(checkpoints), workflow.correction)
        return Decision(case, tuple(records))

    # -- opening a case ------------------------------------------------------------------

    def _open(self, event: CaseEvent, origin: str) -> Decision:
        if event.type != "case.reported":
            return self._refuse(
                event,
                origin,
                Refusal("unknown_case", f"no open case {event.case_id!r} for {event.type!r}"),
            )
        try:
            payload = CaseReported.model_validate(event.payload)
        except ValidationError as err:
            return self._refuse(event, origin, Refusal("schema_invalid", inputs.short(err)))
        workflow = self.registry.newest(payload.workflow)
        if workflow is None:
            detail = (
                f"{payload.workflow} has only preview versions; new cases need one without "
                "`preview`"
                if payload.workflow in self.registry.workflows
                else f"no workflow named {payload.workflow!r}"
            )
            return self._refuse(event, origin, Refusal("workflow_unknown", detail))
        problem = inputs.opening_problem(workflow, event.source, payload)
        if problem is not None:
            return self._refuse(event, origin, problem)
        at = event.occurred_at.astimezone(workflow.tz)
        case = Case(
            case_id=event.case_id, workflow=workflow.name, version=workflow.version, state="",
            tier=None, seq=0, clock=at, opened_at=at, entered_at=at, entered_seq=0,
            attrs=dict(payload.attributes),
        )  # fmt: skip
        context = inputs.context(workflow, case, event, at)
        dest, detail = inputs.route(workflow, event.source, context)
        if dest is None:
            reason: RejectionReason = (
                "unauthorized_source" if detail.startswith("source") else "guard_failed"
            )
            return self._refuse(event, origin, Refusal(reason, detail))
        builder = RecordBuilder(workflow, case, event.event_id, at)
        case = self._enter(workflow, builder, dest, "case.reported")
        return Decision(case.remember(event.event_id), tuple(builder.records))

    # -- events on an open case ------------------------------------------------------------

    def _check_event(
        self, workflow: CompiledWorkflow, case: Case, event: CaseEvent
    ) -> Refusal | None:
        if case.closed:
            return Refusal("invalid_transition", f"case is closed in state {case.state!r}")
        model = PAYLOAD_MODELS.get(event.type)
        if model is not None:
            try:
                model.model_validate(event.payload)
            except ValidationError as err:
                return Refusal("schema_invalid", inputs.short(err))
        if event.source not in workflow.sources:
            return Refusal(
                "unauthorized_source", f"{event.source!r} is not a source of {workflow.name}"
            )
        declared = workflow.spec.events.get(event.type)
        allowed = declared.allowed_sources if declared is not None else None
        if allowed is not None and event.source not in allowed:
            return Refusal("unauthorized_source", f"{event.source!r} may not send {event.type!r}")
        if declared is not None and declared.payload:
            wrong = fields_problem("payload", declared.payload, event.payload)
            if wrong is not None:
                return Refusal("schema_invalid", wrong)
        return None

    def _transition(
        self, workflow: CompiledWorkflow, builder: RecordBuilder, event: CaseEvent
    ) -> Case | Refusal:
        case = builder.case
        allowed = workflow.allowed.get((event.type, case.state))
        if allowed is None:
            return Refusal(
                "invalid_transition", f"no transition on {event.type!r} from {case.state!r}"
            )
        if event.source not in allowed:
            return Refusal(
                "unauthorized_source", f"{event.source!r} may not send {event.type!r} here"
            )
        step = Step(case.state, event.source, inputs.context(workflow, case, event, builder.at))
        # The act's own time, not the case clock: a request made inside the window stays in
        # time even when a timer at the window's close was fired first (a lagging consumer).
        step.window_open = inputs.window(workflow, case, event.occurred_at)
        if not workflow.fire(event.type, step):
            if step.window_closed is not None and step.guard_error is None:
                return Refusal("window_closed", step.window_closed)
            return Refusal("guard_failed", step.guard_error or f"no guard of {event.type!r} held")
        return self._enter(workflow, builder, step.state, event.type)

    def _clock(
        self, workflow: CompiledWorkflow, builder: RecordBuilder, kind: str, event: CaseEvent
    ) -> Case | Refusal:
        case = builder.case
        spec = workflow.state(case.state).sla
        if case.sla is None or spec is None:
            return Refusal("invalid_transition", f"state {case.state!r} has no SLA clock to {kind}")
        sla = case.sla
        start = anchor_at(case, spec.counted_from)
        if kind == "pause":
            new = pause_sla(sla, builder.at)
        elif kind == "resume":
            new = resume_sla(workflow, spec, sla, start, builder.at)
        else:
            new = extend_sla(workflow, spec, sla, start, builder.at)
        if isinstance(new, str):
            return Refusal("invalid_transition", new)
        action = {"pause": "paused", "resume": "resumed", "extend": "extended"}[kind]
        case = case._replace(sla=new)
        builder.sla_changed(case, action)  # type: ignore[arg-type]
        return builder.case

    # -- timers and entering states --------------------------------------------------------

    def _fire(self, workflow: CompiledWorkflow, builder: RecordBuilder, timer: Timer) -> Case:
        case = builder.case
        assert case.sla is not None
        if timer.kind == "warning":
            builder.sla_warning(case._replace(sla=case.sla._replace(warned=True)))
            return builder.case
        spec = workflow.state(case.state).sla
        party = spec is not None and spec.owner == "party"
        breached = case._replace(sla=case.sla._replace(breached=True, warned=True),
                                 breaches=case.breaches + (0 if party else 1))  # fmt: skip
        builder.sla_breached(breached, owner="party" if party else "organ")
        if spec is None or (spec.escalate_to is None and spec.timeout_to is None):
            return builder.case  # report only
        trigger = BREACH_TRIGGER if spec.escalate_to else TIMEOUT_TRIGGER
        step = Step(case.state, "engine", {})
        if not workflow.fire(trigger, step):
            return builder.case
        return self._enter(workflow, builder, step.state, trigger)

    def _enter(
        self, workflow: CompiledWorkflow, builder: RecordBuilder, dest: str, trigger: str
    ) -> Case:
        case = builder.case
        at = builder.at
        state = workflow.state(dest)
        from_tier = case.tier
        to_tier = state.tier or from_tier
        climbed = (
            from_tier is not None
            and to_tier is not None
            and workflow.tier_index[to_tier] > workflow.tier_index[from_tier]
        )
        moved = case._replace(state=dest, tier=to_tier, entered_at=at, entered_seq=case.seq + 1,
                        escalations=case.escalations + int(climbed), sla=None,
                        closed=state.terminal)  # fmt: skip
        if dest in workflow.marked_states:
            moved = moved.marked(dest, at)
        if state.sla and not state.terminal:
            start = anchor_at(moved, state.sla.counted_from)
            moved = moved._replace(sla=enter_sla(workflow, state.sla, start, at))
        builder.transitioned(moved, from_state=case.state or None, from_tier=from_tier,
                             trigger=trigger)  # fmt: skip
        if state.terminal:
            builder.closed(builder.case)
        return builder.case

    def _refuse(
        self,
        event: CaseEvent,
        origin: str,
        refusal: Refusal,
        case: Case | None = None,
        records: list[CaseRecord] | None = None,
    ) -> Decision:
        record = rejection(event, origin, refusal.reason, refusal.detail, case=case)
        return Decision(case, tuple(records or ()), record)
