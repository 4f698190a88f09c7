"""The timing rules of the workflow language, on small workflows written next to their tests.

`timeout_to` (a lapse to any state, not an escalation), what a limit or window counts from
(`from: opened | STATE`), windows on transitions (`window_closed`), limits owned by a party
(outside `on_time`), and where warnings of working-time limits fall. Each workflow is a few
lines of inline YAML, checked by `check_file` and loaded like the shipped ones, so a test reads
the rule next to the exact instants it must produce; the counting is in the comments (Chinese
procedural counting: start day not counted, days end at 24:00 Asia/Shanghai, a last day on a
holiday or weekend rolls to the next working day).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, time, timedelta
from pathlib import Path
from textwrap import dedent
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.case import Case
from engine.core import Decision, Engine
from engine.registry import WorkflowRegistry
from engine.stores.codec import decode_case, encode_case
from engine.validate import check_file
from schemas.events import CaseEvent
from schemas.records import CaseClosed, CaseRecord, CaseTransitioned, SlaBreached, SlaChanged

pytestmark = pytest.mark.unit

SH = ZoneInfo("Asia/Shanghai")


def at(text: str) -> datetime:
    return datetime.fromisoformat(text)


def load(folder: Path, text: str) -> Engine:
    """An engine for one inline workflow; `check_file` first, so a typo here fails readably."""
    path = folder / "workflow.yaml"
    path.write_text(dedent(text), encoding="utf-8")
    workflow, problems = check_file(str(path), path.read_bytes())
    assert problems == [], "\n".join(str(p) for p in problems)
    assert workflow is not None
    return Engine(WorkflowRegistry.load(folder))


@dataclass
class Story:
    """One case told event by event; each step keeps the case it produced."""

    engine: Engine
    workflow: str
    case: Case | None = None
    sent: int = 0
    records: list[CaseRecord] = field(default_factory=list)

    def send(self, type_: str, when: str, source: str = "", **payload: Any) -> Decision:
        self.sent += 1
        event = CaseEvent(
            event_id=f"e{self.sent}", case_id="c1", type=type_, occurred_at=at(when),
            source=source or self.engine.registry.workflows[self.workflow][1].spec.sources[0],
            payload=payload,
        )  # fmt: skip
        decision = self.engine.apply(self.case, event)
        self.case = decision.case
        self.records = list(decision.records)
        return decision

    def ok(self, type_: str, when: str, source: str = "", **payload: Any) -> Case:
        decision = self.send(type_, when, source, **payload)
        assert decision.rejection is None, decision.rejection
        assert decision.case is not None
        return decision.case

    def report(self, when: str, source: str = "", **attributes: Any) -> Case:
        return self.ok("case.reported", when, source, workflow=self.workflow, attributes=attributes)

    def advance(self, when: str) -> list[CaseRecord]:
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


def moves(records: list[CaseRecord]) -> list[tuple[str | None, str, str | None, str, str]]:
    return [
        (r.from_state, r.to_state, r.from_tier, r.to_tier or "", r.trigger)
        for r in records
        if isinstance(r, CaseTransitioned)
    ]


# -- timeout_to: a lapse to any state; escalate_to still climbs -------------------------------

LAPSE = """
    # Court pre-litigation mediation (诉前调解) that lapses is filed for litigation on the same
    # rung: a lapse, not an escalation. The grid still climbs on breach.
    name: lapse
    version: 1
    tiers: [grid, court]
    sources: [grid, court]
    states:
      grid.mediating:
        tier: grid
        sla: {working_days: 3, escalate_to: court.mediating}
      court.mediating:
        tier: court
        sla: {calendar_days: 30, timeout_to: court.filing}
      court.filing:
        tier: court
        sla: {calendar_days: 7, timeout_to: litigation}
      resolved: {terminal: true, outcome: resolved}
      litigation: {terminal: true, outcome: litigation}
    routing:
      - dest: grid.mediating
    transitions:
      - trigger: mediation.succeeded
        source: [grid.mediating, court.mediating]
        dest: resolved
      - trigger: case.filed
        source: court.filing
        dest: litigation
    events:
      mediation.succeeded: {}
      case.filed: {}
"""


@pytest.fixture(scope="module")
def lapse(tmp_path_factory: pytest.TempPathFactory) -> Story:
    return Story(load(tmp_path_factory.mktemp("lapse"), LAPSE), "lapse")


def test_escalate_to_still_climbs_on_sla_breached(lapse: Story) -> None:
    lapse.report("2026-03-11T10:00:00+08:00")  # Wed
    # 3 working days: Thu 12, Fri 13, Mon 16; the limit ends at 24:00 of Monday.
    assert lapse.deadline == at("2026-03-17T00:00:00+08:00")
    records = lapse.advance("2026-03-17T00:00:00+08:00")
    assert [r.type for r in records] == ["sla.warning", "sla.breached", "case.transitioned"]
    assert moves(records) == [
        ("grid.mediating", "court.mediating", "grid", "court", "sla.breached")
    ]
    assert lapse.case is not None
    assert lapse.case.escalations == 1


def test_timeout_to_lapses_on_the_same_rung_and_then_into_a_terminal_state(
    lapse: Story,
) -> None:
    lapse.report("2026-03-11T10:00:00+08:00")
    lapse.advance("2026-03-17T00:00:00+08:00")  # climbed to court.mediating at 03-17 00:00
    # 30 calendar days from 03-17: the last day is Thu 04-16.
    assert lapse.deadline == at("2026-04-17T00:00:00+08:00")
    records = lapse.advance("2026-04-17T00:00:00+08:00")
    assert [r.type for r in records] == ["sla.warning", "sla.breached", "case.transitioned"]
    assert moves(records) == [
        ("court.mediating", "court.filing", "court", "court", "sla.timed_out")
    ]
    assert lapse.case is not None
    assert lapse.case.escalations == 1  # the same rung: no escalation
    # 7 calendar days from 04-17: the last day is Fri 04-24.
    assert lapse.deadline == at("2026-04-25T00:00:00+08:00")
    records = lapse.advance("2026-04-25T00:00:00+08:00")
    assert moves(records) == [("court.filing", "litigation", "court", "court", "sla.timed_out")]
    closed = records[-1]
    assert isinstance(closed, CaseClosed)
    assert closed.occurred_at == at("2026-04-25T00:00:00+08:00")
    assert (closed.outcome, closed.resolved_tier, closed.escalations) == ("litigation", "court", 1)
    assert not closed.on_time
    assert lapse.case.closed
    assert lapse.case.timers() == ()


# -- owner: party -------------------------------------------------------------------------------

REVIEW = """
    # Petition: the county's opinion leaves the petitioner 30 days to request review. That is
    # the petitioner's window, not the county's limit; unrequested, the opinion becomes final.
    name: review
    version: 1
    tiers: [county, city]
    sources: [petition]
    states:
      county.handling:
        tier: county
        sla: {calendar_days: 60}
      opinion.issued:
        tier: county
        sla: {calendar_days: 30, owner: party, timeout_to: opinion.final}
      city.reviewing:
        tier: city
        sla: {calendar_days: 30}
      opinion.final: {terminal: true, outcome: opinion_final}
      reviewed: {terminal: true, outcome: reviewed}
    routing:
      - dest: county.handling
    transitions:
      - trigger: opinion.given
        source: county.handling
        dest: opinion.issued
      - trigger: review.requested
        source: opinion.issued
        dest: city.reviewing
      - trigger: review.decided
        source: city.reviewing
        dest: reviewed
    events:
      opinion.given: {}
      review.requested: {}
      review.decided: {}
"""


@pytest.fixture(scope="module")
def review(tmp_path_factory: pytest.TempPathFactory) -> Story:
    return Story(load(tmp_path_factory.mktemp("review"), REVIEW), "review")


def _party_lapse(story: Story) -> tuple[SlaBreached, CaseClosed]:
    story.ok("opinion.given", "2026-03-18T10:00:00+08:00")
    # 30 calendar days from Wed 03-18: the last day is Fri 04-17.
    assert story.deadline == at("2026-04-18T00:00:00+08:00")
    records = story.advance("2026-04-18T00:00:00+08:00")
    assert [r.type for r in records] == [
        "sla.warning", "sla.breached", "case.transitioned", "case.closed",
    ]  # fmt: skip
    assert moves(records) == [
        ("opinion.issued", "opinion.final", "county", "county", "sla.timed_out")
    ]
    breached, closed = records[1], records[-1]
    assert isinstance(breached, SlaBreached)
    assert isinstance(closed, CaseClosed)
    assert closed.outcome == "opinion_final"
    return breached, closed


def test_a_partys_lapsed_window_is_no_breach_of_the_organ(review: Story) -> None:
    review.report("2026-03-02T10:00:00+08:00")
    breached, closed = _party_lapse(review)
    assert (breached.owner, breached.state) == ("party", "opinion.issued")
    assert closed.on_time
    assert review.case is not None
    assert review.case.breaches == 0


def test_an_organs_breach_still_makes_the_case_late(review: Story) -> None:
    review.report("2026-01-05T10:00:00+08:00")  # Mon
    # 60 calendar days from 01-05: the last day is Fri 03-06; the county answers late.
    assert review.deadline == at("2026-03-07T00:00:00+08:00")
    records = review.advance("2026-03-07T00:00:00+08:00")
    assert [(r.type, getattr(r, "owner", None)) for r in records] == [
        ("sla.warning", None), ("sla.breached", "organ"),
    ]  # fmt: skip
    breached, closed = _party_lapse(review)
    assert breached.owner == "party"
    assert not closed.on_time
    assert review.case is not None
    assert review.case.breaches == 1
