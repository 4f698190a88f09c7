"""The core's contract (DESIGN §4, §6) on hand-written scenarios of the dispute ladder."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pytest

from engine.case import Case
from engine.core import Engine
from engine.decision import Decision
from schemas.events import CaseEvent
from schemas.records import CaseClosed, CaseTransitioned, SlaChanged

pytestmark = pytest.mark.unit

WF = "dispute-escalation"


def ev(
    n: int, type_: str, at: str, source: str = "grid", case: str = "c1", **payload: Any
) -> CaseEvent:
    return CaseEvent(
        event_id=f"e{n}", case_id=case, type=type_, occurred_at=datetime.fromisoformat(at),
        source=source, payload=payload,
    )  # fmt: skip


def report(engine: Engine, at: str = "2025-09-26T10:00:00+08:00", **attrs: Any) -> Decision:
    return engine.apply(
        None, ev(0, "case.reported", at, workflow=WF, attributes=attrs or {"category": "neighbour"})
    )


def opened(engine: Engine, **attrs: Any) -> Case:
    case = report(engine, **attrs).case
    assert case is not None
    return case


def test_report_routes_to_grid_with_a_three_working_day_limit(engine: Engine) -> None:
    decision = report(engine)
    (record,) = decision.records
    assert isinstance(record, CaseTransitioned)
    assert (record.from_state, record.to_state, record.to_tier) == (None, "grid.mediating", "grid")
    assert record.seq == 1
    # Reported Friday 2025-09-26; Sunday 09-28 is a make-up working day, so the third working day
    # is Tuesday 09-30 and the limit ends at its 24:00.
    assert record.sla is not None
    assert record.sla.deadline == datetime.fromisoformat("2025-10-01T00:00:00+08:00")
    assert [t.kind for t in decision.timers] == ["warning", "deadline"]


def test_cross_jurisdiction_and_police_transfers_start_at_the_center(engine: Engine) -> None:
    assert opened(engine, cross_jurisdiction=True).state == "center.mediating"
    police = engine.apply(
        None,
        ev(1, "case.reported", "2025-09-26T10:00:00+08:00", source="police", workflow=WF),
    )
    assert police.case is not None
    assert police.case.state == "center.mediating"


def test_court_diversion_starts_at_the_court_rung(engine: Engine) -> None:
    decision = engine.apply(
        None, ev(1, "case.reported", "2026-03-02T09:00:00+08:00", source="court", workflow=WF)
    )
    assert decision.case is not None
    assert decision.case.state == "court.mediating"


def test_breach_escalates_and_seq_stays_contiguous(engine: Engine) -> None:
    case = opened(engine)
    decision = engine.advance(case, datetime.fromisoformat("2025-10-02T00:00:00+08:00"))
    types = [r.type for r in decision.records]
    assert types == ["sla.warning", "sla.breached", "case.transitioned"]
    assert [r.seq for r in decision.records] == [2, 3, 4]
    assert decision.case is not None
    assert decision.case.state == "center.mediating"
    assert decision.records[-1].caused_by == "c1/1/deadline"


def test_timers_due_before_an_event_fire_first(engine: Engine) -> None:
    case = opened(engine)
    decision = engine.apply(case, ev(2, "mediation.succeeded", "2025-10-03T10:00:00+08:00",
                                     source="center"))  # fmt: skip
    assert [r.type for r in decision.records] == [
        "sla.warning", "sla.breached", "case.transitioned", "case.transitioned",
    ]  # fmt: skip
    last = decision.records[-1]
    assert isinstance(last, CaseTransitioned)
    assert (last.from_state, last.to_state) == ("center.mediating", "agreement.reached")


def test_success_to_confirmation_closes_with_the_tier_that_settled_it(engine: Engine) -> None:
    case = opened(engine)
    steps: list[tuple[str, str, str, dict[str, Any]]] = [
        ("mediation.succeeded", "2025-09-29T10:00:00+08:00", "grid", {"agreement_signed": True}),
        ("confirmation.applied", "2025-09-30T10:00:00+08:00", "grid", {}),
        ("confirmation.granted", "2025-10-10T10:00:00+08:00", "court", {}),
    ]
    decision = Decision(case)
    for n, (type_, at, source, payload) in enumerate(steps, start=1):
        assert decision.case is not None
        decision = engine.apply(decision.case, ev(n, type_, at, source=source, **payload))
        assert decision.rejection is None, decision.rejection
    closed = decision.records[-1]
    assert isinstance(closed, CaseClosed)
    assert (closed.outcome, closed.resolved_tier, closed.escalations) == ("confirmed", "grid", 0)
    assert closed.on_time
    assert decision.case is not None
    assert decision.case.timers() == ()


@pytest.mark.parametrize(
    ("case_exists", "event", "reason"),
    [
        (False, ev(5, "mediation.failed", "2025-09-27T10:00:00+08:00"), "unknown_case"),
        (True, ev(5, "confirmation.granted", "2025-09-27T10:00:00+08:00", source="court"),
         "invalid_transition"),
        (True, ev(5, "case.escalated", "2025-09-27T10:00:00+08:00", source="grid"),
         "unauthorized_source"),
        (True, ev(5, "mediation.failed", "2025-09-27T10:00:00+08:00", source="nobody"),
         "unauthorized_source"),
        (True, ev(5, "case.reported", "2025-09-27T10:00:00+08:00", workflow=WF),
         "invalid_transition"),
        (False, ev(5, "case.reported", "2025-09-27T10:00:00+08:00", workflow="nope"),
         "workflow_unknown"),
        (False, ev(5, "case.reported", "2025-09-27T10:00:00+08:00"), "schema_invalid"),
        (True, ev(5, "appraisal.finished", "2025-09-27T10:00:00+08:00"), "invalid_transition"),
    ],
)  # fmt: skip
def test_refusals_carry_the_reason(
    engine: Engine, case_exists: bool, event: CaseEvent, reason: str
) -> None:
    case = opened(engine) if case_exists else None
    decision = engine.apply(case, event, origin="test:1")
    assert decision.rejection is not None
    assert decision.rejection.reason == reason
    assert decision.rejection.origin == "test:1"
    assert decision.case == case
    assert decision.records == ()


def test_guards_choose_between_transitions_of_one_trigger(engine: Engine) -> None:
    # Labour disputes must go to arbitration before court: a failed labour mediation is referred.
    labour = opened(engine, category="labour")
    assert labour.state == "center.mediating"
    failed = engine.apply(labour, ev(1, "mediation.failed", "2025-09-28T10:00:00+08:00"))
    assert failed.case is not None
    assert failed.case.state == "referred"
    traffic = opened(engine, category="traffic")
    failed = engine.apply(traffic, ev(1, "mediation.failed", "2025-09-28T10:00:00+08:00"))
    assert failed.case is not None
    assert failed.case.state == "court.mediating"


def test_a_declared_payload_field_of_the_wrong_type_is_refused_with_its_name(
    engine: Engine,
) -> None:
    case = opened(engine)
    # `agreement_signed` is declared a bool: "yes" is refused before any guard reads it (a guard
    # would silently take it as false and send the case down the wrong branch).
    decision = engine.apply(
        case, ev(1, "mediation.succeeded", "2025-09-27T10:00:00+08:00", agreement_signed="yes")
    )
    assert decision.rejection is not None
    assert decision.rejection.reason == "schema_invalid"
    assert decision.rejection.detail == (
        "payload.agreement_signed: expected a bool, got 'yes' (in state 'grid.mediating')"
    )
    assert decision.case is not None
    assert decision.case.state == "grid.mediating"


def test_undeclared_payload_fields_are_accepted_and_ignored(engine: Engine) -> None:
    case = opened(engine)
    decision = engine.apply(
        case, ev(1, "mediation.failed", "2025-09-27T10:00:00+08:00", mediator_note_id="n-7")
    )
    assert decision.rejection is None
    assert decision.case is not None
    assert decision.case.state == "center.mediating"


def test_duplicate_event_id_is_dropped_not_rejected(engine: Engine) -> None:
    case = opened(engine)
    event = ev(1, "mediation.failed", "2025-09-27T10:00:00+08:00")
    first = engine.apply(case, event)
    again = engine.apply(first.case, event)
    assert again.duplicate
    assert again.records == ()
    assert again.rejection is None
    assert again.case == first.case


def test_pause_stops_the_clock_and_resume_moves_the_deadline(engine: Engine) -> None:
    case = opened(engine, category="medical")  # starts at the center: 30 calendar days
    assert case.sla is not None
    before = case.sla.deadline
    paused = engine.apply(case, ev(1, "appraisal.started", "2025-09-28T10:00:00+08:00"))
    assert paused.case is not None
    assert paused.case.timers() == ()
    resumed = engine.apply(paused.case, ev(2, "appraisal.finished", "2025-10-08T10:00:00+08:00"))
    record = resumed.records[-1]
    assert isinstance(record, SlaChanged)
    assert record.action == "resumed"
    assert resumed.case is not None
    assert resumed.case.sla is not None
    assert (resumed.case.sla.deadline - before).days >= 10


def test_extension_is_bounded(engine: Engine) -> None:
    case = opened(engine, category="medical")
    once = engine.apply(case, ev(1, "deadline.extended", "2025-09-28T10:00:00+08:00"))
    assert once.rejection is None
    twice = engine.apply(once.case, ev(2, "deadline.extended", "2025-09-29T10:00:00+08:00"))
    assert twice.rejection is not None
    assert twice.rejection.reason == "invalid_transition"
    assert "at most 1" in twice.rejection.detail


def test_late_event_is_applied_at_the_case_clock_and_marked(engine: Engine) -> None:
    case = opened(engine, category="medical")
    later = engine.apply(case, ev(1, "appraisal.started", "2025-10-05T10:00:00+08:00"))
    assert later.case is not None
    late = engine.apply(later.case, ev(2, "appraisal.finished", "2025-10-01T10:00:00+08:00"))
    record = late.records[-1]
    assert record.late
    assert record.occurred_at == later.case.clock
    assert late.case is not None
    assert late.case.sla is not None
    assert later.case.sla is not None
    assert late.case.sla.deadline >= later.case.sla.deadline


def test_case_snapshot_round_trips(engine: Engine) -> None:
    case = opened(engine, category="medical")
    paused = engine.apply(case, ev(1, "appraisal.started", "2025-10-05T10:00:00+08:00")).case
    assert paused is not None
    assert Case.from_dict(paused.to_dict()) == paused
