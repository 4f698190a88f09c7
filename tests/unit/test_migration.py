"""Workflow versions side by side, and moving open cases between them (`case.migrated`)."""

from __future__ import annotations

import shutil
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from engine.case import Case
from engine.core import Engine
from engine.registry import WorkflowRegistry
from schemas.events import CaseEvent
from schemas.records import CaseMigrated

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
REPORTED = "2025-09-26T10:00:00+08:00"


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory) -> Engine:
    """dispute-escalation v1 as shipped, and a v2 whose grid rung allows 5 working days."""
    folder = tmp_path_factory.mktemp("workflows")
    v1 = ROOT / "workflows" / "dispute-escalation.yaml"
    shutil.copy(v1, folder / "dispute-escalation.yaml")
    text = v1.read_text(encoding="utf-8")
    v2 = text.replace("version: 1", "version: 2").replace("grid.mediating", "grid.handling")
    v2 = v2.replace(
        "sla: {working_days: 3, warn_at: 0.67,", "sla: {working_days: 5, warn_at: 0.67,"
    )
    (folder / "dispute-escalation-v2.yaml").write_text(v2, encoding="utf-8")
    return Engine(WorkflowRegistry.load(folder))


def ev(n: int, type_: str, at: str, source: str = "grid", **payload: Any) -> CaseEvent:
    return CaseEvent(event_id=f"e{n}", case_id="c1", type=type_,
                     occurred_at=datetime.fromisoformat(at), source=source,
                     payload=payload)  # fmt: skip


def open_v1_case(engine: Engine) -> Case:
    """A case opened before v2 existed: build it on v1 by hand, as a restored record would be."""
    v1_only = Engine(WorkflowRegistry.load(ROOT / "workflows"))
    case = v1_only.apply(None, ev(0, "case.reported", REPORTED, workflow="dispute-escalation",
                                  attributes={"category": "neighbour"})).case  # fmt: skip
    assert case is not None
    assert case.version == 1
    return case


def migrate(n: int, sla: str, at: str = "2025-09-29T09:00:00+08:00", **extra: Any) -> CaseEvent:
    payload = {"from_version": 1, "to_version": 2,
               "state_map": {"grid.mediating": "grid.handling"}, "sla": sla, **extra}  # fmt: skip
    return ev(n, "case.migrated", at, source="migrate", **payload)


def test_new_cases_take_the_newest_version_and_old_ones_keep_theirs(engine: Engine) -> None:
    fresh = engine.apply(None, ev(9, "case.reported", REPORTED, workflow="dispute-escalation"))
    assert fresh.case is not None
    assert (fresh.case.version, fresh.case.state) == (2, "grid.handling")
    old = open_v1_case(engine)
    moved = engine.apply(old, ev(1, "mediation.failed", "2025-09-27T10:00:00+08:00"))
    assert moved.case is not None
    assert (moved.case.version, moved.case.state) == (1, "center.mediating")


@pytest.mark.parametrize(
    ("policy", "deadline"),
    [
        ("keep", "2025-10-01T00:00:00+08:00"),  # v1's 3 working days, unchanged
        # 5 working days from Friday 09-26: Sunday 09-28 (make-up), 09-29, 09-30, then National
        # Day to 10-08, then 10-09 and 10-10: the limit ends at 24:00 on 10-10.
        ("recompute", "2025-10-11T00:00:00+08:00"),
        ("earliest", "2025-10-01T00:00:00+08:00"),
    ],
)
def test_migration_moves_the_case_with_the_chosen_sla_policy(
    engine: Engine, policy: str, deadline: str
) -> None:
    decision = engine.apply(open_v1_case(engine), migrate(1, policy))
    assert decision.rejection is None, decision.rejection
    (record,) = decision.records
    assert isinstance(record, CaseMigrated)
    assert (record.workflow_version, record.from_version) == (2, 1)
    assert (record.from_state, record.to_state, record.sla_policy) == (
        "grid.mediating", "grid.handling", policy,
    )  # fmt: skip
    assert record.sla is not None
    assert record.sla.deadline == datetime.fromisoformat(deadline)
    assert decision.case is not None
    assert (decision.case.version, decision.case.state) == (2, "grid.handling")
    again = engine.apply(decision.case, migrate(1, policy))
    assert again.duplicate


@pytest.mark.parametrize(
    ("event", "reason"),
    [
        (migrate(2, "keep", state_map={"center.mediating": "center.mediating"}),
         "invalid_transition"),
        (migrate(2, "keep", to_version=7), "workflow_unknown"),
        (migrate(2, "keep", state_map={"grid.mediating": "resolved"}), "invalid_transition"),
        (migrate(2, "sideways"), "schema_invalid"),
        (ev(2, "case.migrated", "2025-09-29T09:00:00+08:00", source="grid", from_version=1,
            to_version=2, state_map={"grid.mediating": "grid.handling"}, sla="keep"),
         "unauthorized_source"),
    ],
)  # fmt: skip
def test_bad_migrations_are_refused(engine: Engine, event: CaseEvent, reason: str) -> None:
    decision = engine.apply(open_v1_case(engine), event)
    assert decision.rejection is not None
    assert decision.rejection.reason == reason


def test_a_preview_version_takes_no_new_cases_but_open_ones_can_move_to_it() -> None:
    """The shipped dispute-escalation v2 is a preview: reports still open on v1, and a pilot
    case is moved to v2 by a migration event (how a new ladder is trialled)."""
    shipped = Engine(WorkflowRegistry.load(ROOT / "workflows"))
    newest = shipped.registry.newest("dispute-escalation")
    preview = shipped.registry.get("dispute-escalation", 2)
    assert newest is not None
    assert preview is not None
    assert (newest.version, preview.spec.preview) == (1, True)
    case = open_v1_case(shipped)
    payload = {"from_version": 1, "to_version": 2,
               "state_map": {"grid.mediating": "grid.mediating"}, "sla": "keep"}  # fmt: skip
    moved = shipped.apply(case, ev(1, "case.migrated", "2025-09-29T09:00:00+08:00",
                                   source="migrate", **payload))  # fmt: skip
    assert moved.rejection is None
    assert moved.case is not None
    assert (moved.case.version, moved.case.state) == (2, "grid.mediating")
    failed = shipped.apply(moved.case, ev(2, "mediation.failed", "2025-09-29T10:00:00+08:00"))
    assert failed.case is not None
    assert (failed.case.state, failed.case.tier) == ("township.mediating", "township")


def test_a_workflow_with_only_preview_versions_opens_no_case(tmp_path: Path) -> None:
    minimal = (ROOT / "tests" / "fixtures" / "valid" / "minimal.yaml").read_text(encoding="utf-8")
    (tmp_path / "minimal.yaml").write_text(
        minimal.replace("version: 1\n", "version: 1\npreview: true\n"), encoding="utf-8"
    )
    engine = Engine(WorkflowRegistry.load(tmp_path))
    decision = engine.apply(None, ev(0, "case.reported", REPORTED, workflow="minimal"))
    assert decision.case is None
    assert decision.rejection is not None
    assert decision.rejection.reason == "workflow_unknown"
    assert decision.rejection.detail == (
        "minimal has only preview versions; new cases need one without `preview`"
    )


def test_a_case_migrated_into_a_party_window_keeps_it_the_partys(tmp_path: Path) -> None:
    """With `keep`, the old clock moves over; the owner must come from the new state's spec,
    or the gauges would count the parties' lapse as the organ's overdue work."""
    shipped = Engine(WorkflowRegistry.load(ROOT / "workflows"))
    case = open_v1_case(shipped)
    agreed = shipped.apply(case, ev(1, "mediation.succeeded", "2025-09-26T11:00:00+08:00",
                                    agreement_signed=True)).case  # fmt: skip
    assert agreed is not None
    assert agreed.state == "agreement.reached"
    assert agreed.sla is not None
    assert not agreed.sla.party  # version 1 knows no party windows
    payload = {"from_version": 1, "to_version": 2,
               "state_map": {"agreement.reached": "agreement.reached"}, "sla": "keep"}  # fmt: skip
    moved = shipped.apply(agreed, ev(2, "case.migrated", "2025-09-29T09:00:00+08:00",
                                     source="migrate", **payload)).case  # fmt: skip
    assert moved is not None
    assert moved.sla is not None
    assert (moved.version, moved.sla.party) == (2, True)
