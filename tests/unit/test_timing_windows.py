"""Windows on transitions (`within:`, refused as `window_closed`) and where SLA warnings fall,
on small workflows written next to their tests (`tests/unit/timing.py`).

A window counts like a deadline (Chinese procedural counting: the start day is not counted,
days end at 24:00 Asia/Shanghai, a last day on a weekend or holiday rolls to the next working
day), so the 2025 National Day and 2026 Spring Festival holidays lengthen a 30-day window. A
warning of a working-day or working-hour limit falls at `warn_at` of the *office time* between
start and deadline, so it reaches somebody at work; calendar-day and hour limits keep the
elapsed fraction.
"""

from __future__ import annotations

from datetime import datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.case import Case
from engine.core import Engine
from tests.unit.timing import Story, at, load

pytestmark = pytest.mark.unit

SH = ZoneInfo("Asia/Shanghai")


# -- windows on transitions ------------------------------------------------------------------

CONFIRMATION = """
    # Judicial confirmation: the parties apply within 30 days of the agreement (Civil
    # Procedure Law art. 205); a party may object within 10 working days of the mediation's
    # start. Later events are refused, not routed.
    name: confirmation
    version: 1
    tiers: [grid]
    sources: [grid, court]
    states:
      grid.mediating: {tier: grid}
      agreement.reached: {}
      confirming: {}
      confirmed: {terminal: true, outcome: confirmed}
      performed: {terminal: true, outcome: resolved}
    routing:
      - dest: grid.mediating
    transitions:
      - trigger: mediation.succeeded
        source: grid.mediating
        dest: agreement.reached
      - trigger: confirmation.applied
        source: agreement.reached
        dest: confirming
        within: {calendar_days: 30}
      - trigger: objection.raised
        source: agreement.reached
        dest: grid.mediating
        within: {working_days: 10, from: grid.mediating}
      - trigger: confirmation.granted
        source: confirming
        dest: confirmed
        allowed_sources: [court]
      - trigger: agreement.performed
        source: agreement.reached
        dest: performed
    events:
      mediation.succeeded: {}
      confirmation.applied: {}
      objection.raised: {}
      confirmation.granted: {}
      agreement.performed: {}
"""


@pytest.fixture(scope="module")
def confirmation_engine(tmp_path_factory: pytest.TempPathFactory) -> Engine:
    return load(tmp_path_factory.mktemp("confirmation"), CONFIRMATION)


@pytest.fixture
def confirmation(confirmation_engine: Engine) -> Story:
    return Story(confirmation_engine, "confirmation", "grid")


def _agreed(story: Story, when: str) -> Case:
    story.report(when)
    return story.ok("mediation.succeeded", when)


@pytest.mark.parametrize(
    ("agreed", "inside", "closes"),
    [
        # 30 days from Wed 03-04: the last day is Fri 04-03, an ordinary working day.
        ("2026-03-04T10:00:00+08:00", "2026-04-03T23:59:59+08:00", "2026-04-04T00:00:00+08:00"),
        # 30 days from Mon 2025-09-01: 10-01 is National Day, off until Wed 10-08, so the
        # window rolls to Thu 10-09 (10-02, the nominal close, is well inside).
        ("2025-09-01T15:00:00+08:00", "2025-10-02T10:00:00+08:00", "2025-10-10T00:00:00+08:00"),
        # 30 days from Sat 2026-01-17: 02-16 is Spring Festival, off until Mon 02-23, so the
        # window rolls to Tue 02-24.
        ("2026-01-17T10:00:00+08:00", "2026-02-24T23:59:59+08:00", "2026-02-25T00:00:00+08:00"),
    ],
    ids=["ordinary-day", "national-day-2025", "spring-festival-2026"],
)
def test_a_window_accepts_until_it_closes_and_refuses_from_then_on(
    confirmation: Story, agreed: str, inside: str, closes: str
) -> None:
    case = _agreed(confirmation, agreed)
    accepted = confirmation.on(case).send("confirmation.applied", inside)
    assert accepted.rejection is None
    assert accepted.case is not None
    assert accepted.case.state == "confirming"
    for when in (closes, (at(closes) + timedelta(days=40)).isoformat()):
        refused = confirmation.on(case).send("confirmation.applied", when)
        assert refused.rejection is not None
        assert refused.rejection.reason == "window_closed"
        assert refused.rejection.detail == (
            f"the window of 30 calendar days from entered closed at {closes} "
            "(in state 'agreement.reached')"
        )
        assert refused.case == case
        assert refused.records == ()


def test_a_window_from_a_state_counts_from_its_last_entry(confirmation: Story) -> None:
    case = _agreed(confirmation, "2026-03-02T10:00:00+08:00")  # Mon; grid.mediating entered
    # 10 working days from Mon 03-02: Tue 03 … Mon 16.
    inside = confirmation.on(case).send("objection.raised", "2026-03-16T18:00:00+08:00")
    assert inside.rejection is None
    assert inside.case is not None
    assert inside.case.marks == (("grid.mediating", at("2026-03-16T18:00:00+08:00")),)
    late = confirmation.on(case).send("objection.raised", "2026-03-17T00:00:00+08:00")
    assert late.rejection is not None
    assert (late.rejection.reason, late.rejection.detail) == (
        "window_closed",
        "the window of 10 working days from grid.mediating closed at 2026-03-17T00:00:00+08:00 "
        "(in state 'agreement.reached')",
    )
    # Back in mediation (re-entered Mon 03-16 18:00), a second agreement's window counts from
    # the re-entry: Tue 17 … Mon 30; from the first entry it would be closed already.
    again = confirmation.on(inside.case).send("mediation.succeeded", "2026-03-20T10:00:00+08:00")
    assert again.case is not None
    assert again.case.state == "agreement.reached"
    reopened = confirmation.on(again.case).send("objection.raised", "2026-03-30T23:00:00+08:00")
    assert reopened.rejection is None
    closed = confirmation.on(again.case).send("objection.raised", "2026-03-31T00:00:00+08:00")
    assert closed.rejection is not None
    assert closed.rejection.detail.endswith("closed at 2026-03-31T00:00:00+08:00 (in state "
                                            "'agreement.reached')")  # fmt: skip


def test_a_transition_without_a_window_is_not_affected(confirmation: Story) -> None:
    case = _agreed(confirmation, "2025-09-01T15:00:00+08:00")
    done = confirmation.on(case).send("agreement.performed", "2026-09-01T10:00:00+08:00")
    assert done.rejection is None
    assert done.case is not None
    assert done.case.closed


# -- where warnings fall ---------------------------------------------------------------------

LIMITS = """
    # One desk, one limit per kind of order (the `limit` attribute picks it).
    name: limits
    version: 1
    tiers: [desk]
    sources: [desk]
    attributes:
      limit: {type: string, enum: [wd1, wd3, wd5, wd15, wh4, cd7], required: true}
    states:
      wd1: {tier: desk, sla: {working_days: 1, warn_at: 0.5}}
      wd3: {tier: desk, sla: {working_days: 3}}
      wd5: {tier: desk, sla: {working_days: 5, warn_at: 0.67}}
      wd15: {tier: desk, sla: {working_days: 15, warn_at: 0.9}}
      wh4: {tier: desk, sla: {working_hours: 4, warn_at: 0.75}}
      cd7: {tier: desk, sla: {calendar_days: 7, warn_at: 0.5}}
      done: {terminal: true, outcome: resolved}
    routing:
      - {dest: wd1, guard: 'case.attrs.limit == "wd1"'}
      - {dest: wd3, guard: 'case.attrs.limit == "wd3"'}
      - {dest: wd5, guard: 'case.attrs.limit == "wd5"'}
      - {dest: wd15, guard: 'case.attrs.limit == "wd15"'}
      - {dest: wh4, guard: 'case.attrs.limit == "wh4"'}
      - dest: cd7
    transitions:
      - {trigger: case.closed, source: '*', dest: done}
    events:
      case.closed: {}
"""
WORKING_LIMITS = ("wd1", "wd3", "wd5", "wd15", "wh4")


@pytest.fixture(scope="module")
def limits(tmp_path_factory: pytest.TempPathFactory) -> Engine:
    return load(tmp_path_factory.mktemp("limits"), LIMITS)


def _opened(engine: Engine, limit: str, when: datetime) -> tuple[datetime, datetime]:
    """(warning, deadline) of a case opened at `when` with `limit`."""
    story = Story(engine, "limits", "desk")
    story.report(when.isoformat(), limit=limit)
    return story.warning, story.deadline


def test_a_working_day_limit_warns_inside_office_hours(limits: Engine) -> None:
    # Fri 2025-09-26 16:00, 3 working days: Sun 09-28 (make-up day), Mon 29, Tue 30. Office
    # time until then: 1 h + 3 × 8 h = 25 h; 0.8 of it (20 h) ends Tue 09-30 at 12:00. The
    # elapsed fraction would have warned at 03:12 that night.
    warning, deadline = _opened(limits, "wd3", at("2025-09-26T16:00:00+08:00"))
    assert deadline == at("2025-10-01T00:00:00+08:00")
    assert warning == at("2025-09-30T12:00:00+08:00")


def test_a_calendar_day_limit_keeps_the_elapsed_fraction(limits: Engine) -> None:
    # Fri 2025-09-26 16:00, 7 calendar days: 10-03 is in the National Day holiday, so the last
    # day is Thu 10-09. Half of the 13 days 8 hours falls on 10-03 at 08:00, a holiday.
    warning, deadline = _opened(limits, "cd7", at("2025-09-26T16:00:00+08:00"))
    assert deadline == at("2025-10-10T00:00:00+08:00")
    assert warning == at("2025-10-03T08:00:00+08:00")


@settings(max_examples=200, deadline=None)
@given(
    start=st.datetimes(min_value=datetime(2025, 1, 1), max_value=datetime(2026, 12, 31),
                       timezones=st.just(SH)),
    limit=st.sampled_from(WORKING_LIMITS),
)  # fmt: skip
def test_working_time_warnings_land_in_office_hours_on_working_days(
    limits: Engine, start: datetime, limit: str
) -> None:
    warning, deadline = _opened(limits, limit, start)
    local = warning.astimezone(SH)
    calendar = limits.registry.workflows["limits"][1].deadlines.calendar
    assert calendar.is_working_day(local.date()), local
    assert time(9) <= local.time() <= time(17), local
    assert start < warning <= deadline


def test_a_request_made_inside_the_window_stays_in_time_when_processed_after_it_closed(
    confirmation: Story,
) -> None:
    """The window is judged at the act's own time, not at the case clock: a lagging consumer
    that fired timers up to the wall clock first must decide like `simulate` does."""
    case = _agreed(confirmation, "2026-03-04T10:00:00+08:00")
    confirmation.on(case).advance("2026-04-04T00:05:00+08:00")  # past the close
    assert confirmation.case is not None
    late_processed = confirmation.send("confirmation.applied", "2026-04-03T23:00:00+08:00")
    assert late_processed.rejection is None
    assert late_processed.case is not None
    assert late_processed.case.state == "confirming"


def test_an_event_declared_with_allowed_sources_is_refused_from_any_other(tmp_path: Path) -> None:
    engine = load(
        tmp_path,
        CONFIRMATION.replace(
            "      agreement.performed: {}\n",
            "      agreement.performed: {}\n      clock.extended: {allowed_sources: [court]}\n",
        ).replace(
            "      grid.mediating: {tier: grid}\n",
            "      grid.mediating:\n        tier: grid\n        sla: {calendar_days: 30, "
            "extension: {calendar_days: 10}, max_extensions: 1}\n",
        )
        + "    clock:\n      extend: [clock.extended]\n",
    )
    story = Story(engine, "confirmation", "grid")
    story.report("2026-03-04T10:00:00+08:00")
    refused = story.send("clock.extended", "2026-03-05T10:00:00+08:00")
    assert refused.rejection is not None
    assert (refused.rejection.reason, refused.rejection.detail) == (
        "unauthorized_source", "'grid' may not send 'clock.extended' (in state 'grid.mediating')",
    )  # fmt: skip
    extended = story.send("clock.extended", "2026-03-05T11:00:00+08:00", source="court")
    assert extended.rejection is None
    assert extended.case is not None
    assert extended.case.sla is not None
    assert extended.case.sla.extensions == 1
