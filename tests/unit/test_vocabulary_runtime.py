"""Declared `timestamp` fields at run time: strict RFC 3339 in, CEL timestamps in guards."""

from __future__ import annotations

from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry

from consumers.runtime.metrics import BusinessMetrics
from engine.core import Engine
from engine.guard_types import guard_scope, guard_type_problems
from engine.vocabulary import value_problem
from schemas.workflow import FieldSpec
from tests.unit.timing import Story, load

pytestmark = pytest.mark.unit

DEADLINES = """
    # A case may carry the date a party received a decision; a guard compares it with `now`.
    name: received
    version: 1
    tiers: [office]
    sources: [office]
    states:
      open: {tier: office}
      in_time: {terminal: true, outcome: resolved}
      too_late: {terminal: true, outcome: closed}
    routing:
      - dest: open
    transitions:
      - trigger: request.made
        source: open
        dest: in_time
        guard: now - case.attrs.received_at <= duration("720h")
      - trigger: request.made
        source: open
        dest: too_late
    attributes:
      received_at: {type: timestamp, required: true}
    events:
      request.made: {}
"""


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory) -> Engine:
    return load(tmp_path_factory.mktemp("received"), DEADLINES)


@pytest.mark.parametrize(
    ("when", "state"),
    [("2026-03-20T10:00:00+08:00", "in_time"), ("2026-04-20T10:00:00+08:00", "too_late")],
)
def test_a_declared_timestamp_compares_with_now_in_a_guard(
    engine: Engine, when: str, state: str
) -> None:
    story = Story(engine, "received", "office")
    story.report("2026-03-02T10:00:00+08:00", received_at="2026-03-02T09:00:00+08:00")
    assert story.ok("request.made", when).state == state


@pytest.mark.parametrize(
    "text",
    ["2026-03-02T10:00+08:00", "20260302T100000+0800", "2026-03-02T10:00:00", "2026-03-02"],
)
def test_a_timestamp_needs_seconds_and_an_offset(text: str) -> None:
    problem = value_problem("attributes.t", FieldSpec(type="timestamp"), text)
    assert problem == f"attributes.t: expected an RFC 3339 time with an offset, got {text!r}"


def test_a_timestamp_compared_with_text_is_refused_by_validate(tmp_path: Path) -> None:
    engine = load(tmp_path, DEADLINES)
    spec = engine.registry.workflows["received"][1].spec
    problems = guard_type_problems(
        'case.attrs.received_at < "2026-01-01T00:00:00Z"', guard_scope(spec, None)
    )
    assert problems == [
        "case.attrs.received_at is a timestamp, compared with '2026-01-01T00:00:00Z' (a "
        "string); write timestamp('2026-01-01T00:00:00Z')"
    ]


PARTY = """
    name: waiting
    version: 1
    tiers: [office]
    sources: [office]
    states:
      answered:
        tier: office
        sla: {calendar_days: 30, owner: party}
      handling:
        tier: office
        sla: {calendar_days: 30}
      done: {terminal: true, outcome: closed}
    routing:
      - dest: answered
        guard: has(case.attrs.party) && case.attrs.party == true
      - dest: handling
    transitions:
      - {trigger: case.concluded, source: [answered, handling], dest: done}
    attributes:
      party: {type: bool}
    events:
      case.concluded: {}
"""


def test_a_party_windows_warning_and_lapse_are_not_the_organs_in_the_metrics(
    tmp_path: Path,
) -> None:
    engine = load(tmp_path, PARTY)
    registry = CollectorRegistry()
    metrics = BusinessMetrics.create(registry, engine.registry)
    for party in (True, False):
        story = Story(engine, "waiting", "office")
        story.report("2026-03-02T10:00:00+08:00", party=party)
        metrics.observe_records(story.advance("2026-04-10T00:00:00+08:00"))

    def count(name: str, state: str) -> float | None:
        return registry.get_sample_value(name, {"workflow": "waiting", "state": state})

    assert count("fengqiao_sla_warnings_total", "handling") == 1
    assert count("fengqiao_sla_breaches_total", "handling") == 1
    assert count("fengqiao_sla_warnings_total", "answered") is None
    assert count("fengqiao_sla_breaches_total", "answered") is None
