"""The timing rules of the workflow language: `timeout_to`, `owner: party`, and what a limit
counts from (`from: opened | STATE`), on small workflows written next to their tests.

`timeout_to` is a lapse to any state (trigger `sla.timed_out`), not an escalation; a party's
lapsed window is reported but is no breach of the organ; a limit may count from the case's
opening or from the last entry into an earlier state, and keeps that anchor through pauses,
extensions and snapshots. Each workflow is a few lines of YAML loaded like the shipped ones
(`tests/unit/timing.py`), so a test reads the rule beside the exact instants it must produce,
with the counting in comments: the start day is not counted, days end at 24:00 Asia/Shanghai,
and a last day on a weekend or holiday rolls to the next working day.
Windows on transitions and where warnings fall: `test_timing_windows.py`.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from consumers.runtime.case_gauges import case_keys
from engine.case import Case
from engine.core import Engine
from engine.stores.codec import decode_case, encode_case
from schemas.records import CaseClosed, SlaBreached, SlaChanged
from tests.unit.timing import Story, at, load, moves

pytestmark = pytest.mark.unit


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
def lapse_engine(tmp_path_factory: pytest.TempPathFactory) -> Engine:
    return load(tmp_path_factory.mktemp("lapse"), LAPSE)


@pytest.fixture
def lapse(lapse_engine: Engine) -> Story:
    return Story(lapse_engine, "lapse", "grid")


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
      opinion.final: {terminal: true, outcome: closed}
      reviewed: {terminal: true, outcome: resolved}
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
def review_engine(tmp_path_factory: pytest.TempPathFactory) -> Engine:
    return load(tmp_path_factory.mktemp("review"), REVIEW)


@pytest.fixture
def review(review_engine: Engine) -> Story:
    return Story(review_engine, "review", "petition")


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
    assert closed.outcome == "closed"
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


# -- from: opened, from: STATE -------------------------------------------------------------------

HOTLINE = """
    # 12345 urgent orders: respond within 2 hours, handle within 24 hours *of the call*; the
    # caller is called back within 3 working days of a reply, and an unsatisfied reply is
    # reworked within 5 working days of that reply. A review office may reopen an order
    # directly into rework (it was never replied to here).
    name: hotline
    version: 1
    tiers: [center]
    sources: [hotline, review]
    states:
      dispatched:
        tier: center
        sla: {hours: 2}
      handling:
        tier: center
        sla: {hours: 24, from: opened, extension: {hours: 24}, max_extensions: 1}
      replied:
        tier: center
        sla: {working_days: 3}
      reworking:
        tier: center
        sla: {working_days: 5, from: replied}
      closed: {terminal: true, outcome: resolved}
    routing:
      - dest: reworking
        allowed_sources: [review]
      - dest: dispatched
    transitions:
      - trigger: order.responded
        source: dispatched
        dest: handling
      - trigger: order.replied
        source: [handling, reworking]
        dest: replied
      - trigger: caller.unsatisfied
        source: replied
        dest: reworking
      - trigger: caller.satisfied
        source: replied
        dest: closed
    clock:
      pause: [order.held]
      resume: [order.resumed]
      extend: [order.extended]
    events:
      order.responded: {}
      order.replied: {}
      caller.unsatisfied: {}
      caller.satisfied: {}
      order.held: {}
      order.resumed: {}
      order.extended: {}
"""


@pytest.fixture(scope="module")
def hotline_engine(tmp_path_factory: pytest.TempPathFactory) -> Engine:
    return load(tmp_path_factory.mktemp("hotline"), HOTLINE)


@pytest.fixture
def hotline(hotline_engine: Engine) -> Story:
    return Story(hotline_engine, "hotline", "hotline")


def test_from_opened_counts_from_the_call_so_a_late_entry_leaves_less_time(
    hotline: Story,
) -> None:
    hotline.report("2026-03-02T10:00:00+08:00")
    hotline.ok("order.responded", "2026-03-02T11:30:00+08:00")
    # 24 hours from the call (10:00), not from entering `handling` (11:30).
    assert hotline.deadline == at("2026-03-03T10:00:00+08:00")
    # Hours warn at the elapsed fraction, from the same anchor: 10:00 + 0.8 × 24 h.
    assert hotline.warning == at("2026-03-03T05:12:00+08:00")


def test_from_opened_entered_after_the_limit_breaches_at_the_next_advance(
    hotline: Story,
) -> None:
    hotline.report("2026-03-02T10:00:00+08:00")
    # Responded a day late: the 2-hour limit of `dispatched` breaches first (report only).
    hotline.ok("order.responded", "2026-03-03T12:00:00+08:00")
    assert [r.type for r in hotline.records] == [
        "sla.warning", "sla.breached", "case.transitioned",
    ]  # fmt: skip
    assert hotline.deadline == at("2026-03-03T10:00:00+08:00")  # already two hours ago
    records = hotline.advance("2026-03-03T12:00:00+08:00")
    # no warning first: the limit had passed before the case entered the state
    assert [r.type for r in records] == ["sla.breached"]
    breached = records[-1]
    assert isinstance(breached, SlaBreached)
    assert (breached.state, breached.deadline) == ("handling", at("2026-03-03T10:00:00+08:00"))
    assert hotline.case is not None
    assert hotline.case.breaches == 2
    assert hotline.case.timers() == ()


def test_from_a_state_counts_from_its_last_entry(hotline: Story) -> None:
    hotline.report("2026-03-02T10:00:00+08:00")
    hotline.ok("order.responded", "2026-03-02T10:30:00+08:00")
    replied = hotline.ok("order.replied", "2026-03-04T09:00:00+08:00")  # Wed
    assert replied.marks == (("replied", at("2026-03-04T09:00:00+08:00")),)
    # 3 working days from the reply: Thu 05, Fri 06, Mon 09.
    assert hotline.deadline == at("2026-03-10T00:00:00+08:00")
    hotline.on(replied).ok("caller.unsatisfied", "2026-03-06T15:00:00+08:00")
    # 5 working days from the reply (Wed 03-04), not from entering rework (Fri 03-06):
    # Thu 05, Fri 06, Mon 09, Tue 10, Wed 11.
    assert hotline.deadline == at("2026-03-12T00:00:00+08:00")
    hotline.ok("order.replied", "2026-03-10T10:00:00+08:00")
    hotline.ok("caller.unsatisfied", "2026-03-11T10:00:00+08:00")
    # The second reply (Tue 03-10) is the last entry: Wed 11, Thu 12, Fri 13, Mon 16, Tue 17.
    assert hotline.deadline == at("2026-03-18T00:00:00+08:00")
    assert hotline.case is not None
    assert hotline.case.marks == (("replied", at("2026-03-10T10:00:00+08:00")),)


def test_the_anchor_survives_a_snapshot_round_trip(hotline: Story) -> None:
    hotline.report("2026-03-02T10:00:00+08:00")
    hotline.ok("order.responded", "2026-03-02T10:30:00+08:00")
    replied = hotline.ok("order.replied", "2026-03-04T09:00:00+08:00")
    snapshot = replied.to_dict()
    assert snapshot["marks"] == [["replied", "2026-03-04T09:00:00+08:00"]]
    for restored in (Case.from_dict(snapshot), decode_case(encode_case(replied))):
        assert restored == replied
        # The restored case still counts rework from the reply (Wed 03-04), as above.
        hotline.on(restored).ok("caller.unsatisfied", "2026-03-06T15:00:00+08:00")
        assert hotline.deadline == at("2026-03-12T00:00:00+08:00")


def test_a_case_that_never_entered_the_anchor_counts_from_its_own_entry(
    hotline: Story,
) -> None:
    case = hotline.report("2026-03-02T10:00:00+08:00", source="review")
    assert (case.state, case.marks) == ("reworking", ())
    # 5 working days from entering rework (Mon 03-02): Tue 03 … Mon 09.
    assert hotline.deadline == at("2026-03-10T00:00:00+08:00")
    assert "marks" not in case.to_dict()  # older snapshots read the same


def test_pause_resume_and_extension_keep_the_anchor(hotline: Story) -> None:
    hotline.report("2026-03-02T10:00:00+08:00")
    hotline.ok("order.responded", "2026-03-02T11:00:00+08:00")
    assert (hotline.deadline, hotline.warning) == (
        at("2026-03-03T10:00:00+08:00"), at("2026-03-03T05:12:00+08:00"),
    )  # fmt: skip
    hotline.ok("order.held", "2026-03-02T12:00:00+08:00")
    hotline.ok("order.resumed", "2026-03-02T15:00:00+08:00")
    # Paused 3 hours: the deadline moves by 3 h; the warning is 0.8 of the 27 h from the call
    # (10:00 + 21 h 36 min), not of the 26 h from entering `handling` (that would be 07:48).
    assert (hotline.deadline, hotline.warning) == (
        at("2026-03-03T13:00:00+08:00"), at("2026-03-03T07:36:00+08:00"),
    )  # fmt: skip
    hotline.ok("order.extended", "2026-03-02T16:00:00+08:00")
    # +24 h: 0.8 of 51 h from the call is 40 h 48 min (from the entry: 03-04 03:00).
    assert (hotline.deadline, hotline.warning) == (
        at("2026-03-04T13:00:00+08:00"), at("2026-03-04T02:48:00+08:00"),
    )  # fmt: skip
    changed = [r for r in hotline.records if isinstance(r, SlaChanged)]
    assert [c.action for c in changed] == ["extended"]


def test_a_limit_already_passed_on_entry_fires_as_the_case_enters_not_as_a_late_record(
    hotline: Story,
) -> None:
    hotline.report("2026-03-02T10:00:00+08:00")
    hotline.ok("order.responded", "2026-03-03T12:00:00+08:00")
    records = hotline.advance("2026-03-03T12:00:00+08:00")
    assert [(r.type, r.occurred_at, r.late) for r in records] == [
        ("sla.breached", at("2026-03-03T12:00:00+08:00"), False),
    ]


def test_a_lapsed_party_window_is_not_overdue_work_in_the_gauges(tmp_path: Path) -> None:
    engine = load(
        tmp_path,
        """
        name: waiting
        version: 1
        tiers: [office]
        sources: [office]
        states:
          answered:
            tier: office
            sla: {calendar_days: 30, owner: party}
          done:
            terminal: true
            outcome: closed
        routing:
          - dest: answered
        transitions:
          - trigger: case.concluded
            source: answered
            dest: done
        events:
          case.concluded: {}
        """,
    )
    story = Story(engine, "waiting", "office")
    story.report("2026-03-02T10:00:00+08:00")
    story.advance("2026-04-10T00:00:00+08:00")
    assert story.case is not None
    assert story.case.sla is not None
    assert story.case.sla.breached
    assert story.case.sla.party
    assert [key[0] for key in case_keys(story.case)] == ["open"]
    # the flag survives a snapshot round-trip (older snapshots, without it, read as organ's)
    assert decode_case(encode_case(story.case)).sla == story.case.sla
