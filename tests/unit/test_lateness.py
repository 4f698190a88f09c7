"""Allowed lateness (`lateness:` per source): a timer waits past its due instant for the events of
the sources that may still act, so an act made in time but delivered late still counts.

The two stories of the issue, played as the engine plays them on a wall clock (the clock
advances to each delivery, then the event is applied), and a property: for any delivery delays
within the allowed lateness, what a wall-clock run commits equals `simulate` on the time-ordered
input (per case, in `seq` order).
"""

from __future__ import annotations

import json
import shutil
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.core import Engine
from engine.registry import WorkflowRegistry
from engine.replay import Replay
from engine.validate import check_file

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
LATENESS = {
    "hotline-12345-v2.yaml": "lateness:\n  hotline-12345: {hours: 3}\n  grid: {hours: 2}\n",
    "dispute-escalation.yaml": "lateness:\n  grid: {hours: 2}\n  center: {hours: 2}\n",
}


def folder_with(into: Path, lateness: bool) -> Path:
    """The shipped workflows, with (or without) allowed lateness on the two in the stories."""
    folder = into / ("late" if lateness else "plain")
    shutil.copytree(ROOT / "workflows", folder, ignore=shutil.ignore_patterns("tests", "channels"))
    if lateness:
        for name, text in LATENESS.items():
            path = folder / name
            path.write_text(path.read_text(encoding="utf-8") + text, encoding="utf-8")
    return folder


def at(text: str) -> datetime:
    return datetime.fromisoformat(text)


def event(n: int, case: str, type_: str, when: str, source: str, **payload: Any) -> bytes:
    return json.dumps({"event_id": f"e{n}", "case_id": case, "type": type_, "occurred_at": when,
                       "source": source, "payload": payload}).encode()  # fmt: skip


def wall_clock_run(
    folder: Path | Engine, deliveries: list[tuple[datetime, bytes]], end: datetime
) -> Any:
    """As `fengqiao run` with the wall clock: before each delivery the clock reaches it."""
    engine = folder if isinstance(folder, Engine) else Engine(WorkflowRegistry.load(folder))
    replay = Replay(engine)
    records = []
    for i, (delivered, raw) in enumerate(deliveries):
        records += list(replay.advance(delivered))
        records += list(replay.feed(raw, f"in:{i}"))
    records += list(replay.advance(end))
    return replay, records


URGENT = {"workflow": "hotline-12345", "attributes": {"urgency": "urgent", "category": "water"}}


@pytest.mark.parametrize("lateness", [False, True])
def test_an_urgent_order_answered_in_time_but_delivered_late(
    tmp_path: Path, lateness: bool
) -> None:
    """Received 04:00 with 2 hours to respond, responded 04:30; both delivered after 06:00."""
    reported = event(1, "o1", "case.reported", "2026-03-03T04:00:00+08:00", "hotline-12345",
                     **URGENT)  # fmt: skip
    responded = event(2, "o1", "order.responded", "2026-03-03T04:30:00+08:00", "hotline-12345")
    delivered = at("2026-03-03T06:00:01+08:00")
    replay, records = wall_clock_run(
        folder_with(tmp_path, lateness),
        [(delivered, reported), (delivered + timedelta(seconds=2.5), responded)],
        at("2026-03-03T07:00:00+08:00"),
    )
    types = [r.type for r in records]
    if not lateness:  # the record the issue found: a breach, an escalation, a refusal
        assert "sla.breached" in types
        assert types[-1] == "event.rejected"
        return
    assert "event.rejected" not in types
    assert "sla.breached" not in types
    assert replay.cases["o1"].state == "urgent.handling"


def test_a_grid_settlement_in_time_delivered_after_the_deadline(tmp_path: Path) -> None:
    """Three working days at the grid; the settlement is made on the last day and synced the
    next morning: resolved at the grid, not escalated to the center."""
    report = {"workflow": "dispute-escalation", "attributes": {"category": "neighbour"}}
    reported = event(1, "g1", "case.reported", "2026-03-02T09:00:00+08:00", "grid", **report)
    settled = event(2, "g1", "mediation.succeeded", "2026-03-05T23:30:00+08:00", "grid",
                    agreement_signed=False)  # fmt: skip
    deliveries = [(at("2026-03-02T09:00:05+08:00"), reported),
                  (at("2026-03-06T01:00:00+08:00"), settled)]  # fmt: skip
    end = at("2026-04-30T00:00:00+08:00")
    _, plain = wall_clock_run(folder_with(tmp_path, False), deliveries, end)
    replay, late = wall_clock_run(folder_with(tmp_path, True), deliveries, end)
    assert any(r.type == "sla.breached" for r in plain)
    assert not any(r.type in ("sla.breached", "event.rejected") for r in late)
    case = replay.cases["g1"]
    assert case.tier == "grid"
    assert case.closed or case.state != "center.mediating"


def test_a_late_act_after_the_deadline_still_follows_the_breach(tmp_path: Path) -> None:
    """Waiting for late events never hides a breach: an act made after the deadline (here
    delivered within the lateness) is applied after the breach it came too late for."""
    reported = event(1, "o1", "case.reported", "2026-03-03T04:00:00+08:00", "hotline-12345",
                     **URGENT)  # fmt: skip
    responded = event(2, "o1", "order.responded", "2026-03-03T06:30:00+08:00", "hotline-12345")
    _, records = wall_clock_run(
        folder_with(tmp_path, True),
        [(at("2026-03-03T04:00:01+08:00"), reported), (at("2026-03-03T07:00:00+08:00"), responded)],
        at("2026-03-03T08:00:00+08:00"),
    )
    breach = next(r for r in records if r.type == "sla.breached")
    assert breach.occurred_at == breach.deadline == at("2026-03-03T06:00:00+08:00")


def test_validate_checks_the_sources_and_the_unit(tmp_path: Path) -> None:
    text = (ROOT / "workflows" / "hotline-12345-v2.yaml").read_text(encoding="utf-8")
    path = tmp_path / "w.yaml"
    path.write_text(text + "lateness:\n  grd: {hours: 2}\n  online: {working_days: 1}\n")
    _, problems = check_file(str(path), path.read_bytes())
    messages = [p.message for p in problems]
    assert any("unknown source 'grd'" in m and "did you mean 'grid'" in m for m in messages)
    assert any("lateness is wall time" in m for m in messages)


# -- the property ------------------------------------------------------------------------------

START = at("2026-03-02T08:00:00+08:00")
HOTLINE_STEPS = ["order.responded", "order.replied"]


@st.composite
def streams(draw: Any) -> tuple[list[tuple[datetime, bytes]], list[bytes]]:
    """A few urgent and general orders, each a report and up to two acts at random minutes,
    delivered with delays within the hotline's 3 hours, each case's own events in their order
    (one upstream queue per ticket; reordering within a case is for a correction horizon:
    tests/unit/test_corrections.py)."""
    deliveries: list[tuple[datetime, datetime, bytes]] = []
    n = 0
    for c in range(draw(st.integers(1, 4))):
        case = f"o{c}"
        opened = START + timedelta(minutes=draw(st.integers(0, 600)))
        urgency = draw(st.sampled_from(["urgent", "general"]))
        steps = HOTLINE_STEPS[: draw(st.integers(0, 2))] if urgency == "urgent" else (
            ["order.replied"][: draw(st.integers(0, 1))])  # fmt: skip
        when = opened
        last = opened
        payloads = [("case.reported", {"workflow": "hotline-12345",
                     "attributes": {"urgency": urgency}})]  # fmt: skip
        payloads += [(s, {}) for s in steps]
        for type_, payload in payloads:
            n += 1
            raw = event(n, case, type_, when.isoformat(), "hotline-12345", **payload)
            delay = timedelta(minutes=draw(st.integers(0, 180)))
            last = max(last, when + delay)
            deliveries.append((last, when, raw))
            when += timedelta(minutes=draw(st.integers(1, 400)))
    in_time_order = [raw for _, _, raw in sorted(deliveries, key=lambda d: (d[1], d[2]))]
    delivered = [(d, raw) for d, _, raw in sorted(deliveries, key=lambda d: (d[0], d[2]))]
    return delivered, in_time_order


def _per_case(records: list[Any]) -> dict[str, list[str]]:
    """Each case's records in `seq` order, and its refusals (an act after its deadline is
    refused either way) without where the input came from."""
    out: dict[str, list[str]] = {}
    for r in sorted((r for r in records if r.type != "event.rejected"), key=lambda r: r.seq):
        out.setdefault(r.case_id, []).append(r.model_dump_json(exclude={"record_id"}))
    for r in records:
        if r.type == "event.rejected":
            out.setdefault(r.case_id, []).append(f"refused {r.event_id}: {r.reason} {r.detail}")
    return out


@pytest.fixture(scope="module")
def late_engine(tmp_path_factory: pytest.TempPathFactory) -> Engine:
    folder = folder_with(tmp_path_factory.mktemp("lateness"), True)
    return Engine(WorkflowRegistry.load(folder))


@settings(max_examples=60, deadline=None)
@given(stream=streams())
def test_delays_within_the_lateness_change_nothing(
    late_engine: Engine, stream: tuple[list[tuple[datetime, bytes]], list[bytes]]
) -> None:
    delivered, in_time_order = stream
    end = START + timedelta(days=30)
    _, run = wall_clock_run(late_engine, delivered, end)
    simulate = Replay(late_engine)
    expected = []
    for i, raw in enumerate(in_time_order):
        expected += list(simulate.feed(raw, f"sim:{i}"))
    expected += list(simulate.advance(end))
    assert _per_case(run) == _per_case(expected)
