"""Telling one case of a small inline workflow, for the timing-rule tests.

The timing rules are easiest to read next to the workflow they apply to, so those tests write
a few lines of YAML and drive one case through the real `check_file`, registry and `Engine`,
step by step, holding on to the case and records each step produced (`Story`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from textwrap import dedent
from typing import Any

from engine.case import Case
from engine.core import Engine
from engine.decision import Decision
from engine.registry import WorkflowRegistry
from engine.validate import check_file
from schemas.events import CaseEvent
from schemas.records import CaseRecord, CaseTransitioned


def at(text: str) -> datetime:
    return datetime.fromisoformat(text)


def load(folder: Path, text: str) -> Engine:
    """An engine for one inline workflow; `check_file` first, so a slip in the YAML fails with
    the validator's own lines rather than a bare `InvalidWorkflowError`."""
    path = folder / "workflow.yaml"
    path.write_text(dedent(text), encoding="utf-8")
    workflow, problems = check_file(str(path), path.read_bytes())
    assert problems == [], "\n".join(str(p) for p in problems)
    assert workflow is not None
    return Engine(WorkflowRegistry.load(folder))


@dataclass
class Story:
    """One case (`c1`) told step by step; each step keeps the case and records it produced.

    `on(case)` goes back to an earlier case, to try several events from the same point."""

    engine: Engine
    workflow: str
    source: str
    case: Case | None = None
    sent: int = 0
    records: list[CaseRecord] = field(default_factory=list)

    def on(self, case: Case) -> Story:
        self.case = case
        return self

    def send(self, type_: str, when: str, source: str = "", **payload: Any) -> Decision:
        self.sent += 1
        event = CaseEvent(
            event_id=f"e{self.sent}", case_id="c1", type=type_, occurred_at=at(when),
            source=source or self.source, payload=payload,
        )  # fmt: skip
        decision = self.engine.apply(self.case, event)
        self.case = decision.case
        self.records = list(decision.records)
        return decision

    def ok(self, type_: str, when: str, source: str = "", **payload: Any) -> Case:
        """`send`, which must be accepted."""
        decision = self.send(type_, when, source, **payload)
        assert decision.rejection is None, decision.rejection
        assert decision.case is not None
        return decision.case

    def report(self, when: str, source: str = "", **attributes: Any) -> Case:
        return self.ok("case.reported", when, source, workflow=self.workflow, attributes=attributes)

    def advance(self, when: str) -> list[CaseRecord]:
        """Let time pass: fire the timers due by `when`."""
        assert self.case is not None
        decision = self.engine.advance(self.case, at(when))
        self.case = decision.case
        self.records = list(decision.records)
        return self.records

    @property
    def deadline(self) -> datetime:
        assert self.case is not None
        assert self.case.sla is not None
        return self.case.sla.deadline

    @property
    def warning(self) -> datetime:
        assert self.case is not None
        assert self.case.sla is not None
        return self.case.sla.warning_at


Move = tuple[str | None, str, str | None, str | None, str]


def moves(records: list[CaseRecord]) -> list[Move]:
    """(from state, to state, from tier, to tier, trigger) of each transition."""
    return [
        (r.from_state, r.to_state, r.from_tier, r.to_tier, r.trigger)
        for r in records
        if isinstance(r, CaseTransitioned)
    ]
