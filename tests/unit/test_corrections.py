"""Corrections (`correction:`): an event delivered after something later in its case took effect
re-derives the case in domain-time order; what is no longer true is retracted.

The issue's two stories with no allowed lateness (the timer fires at its due instant and the
on-time act arrives after it), a case whose own events arrive out of order, an event past the
horizon, the checkpoints through a snapshot, and the property: for any delivery delays within
the horizon, what a wall-clock run commits, after applying its retractions, is what `simulate`
makes of the time-ordered input.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry

from consumers.runtime.metrics import EngineMetrics
from consumers.runtime.observe import observe_batch
from engine.batch import BatchReplay, Input
from engine.case import Case
from engine.core import Engine
from engine.registry import WorkflowRegistry
from engine.replay import Replay
from engine.stores.codec import decode_case, encode_case
from engine.validate import check_file
from schemas.records import OutputRecord, RecordRetracted
from tests.unit.test_lateness import ROOT, URGENT, at, event, folder_with, wall_clock_run

pytestmark = pytest.mark.unit

HORIZON = "correction: {calendar_days: 7}\n"


def corrected_folder(into: Path, lateness: bool = False) -> Path:
    """The shipped workflows (with or without the stories' lateness), with a 7-day horizon."""
    folder = folder_with(into, lateness)
    for name in ("hotline-12345-v2.yaml", "dispute-escalation.yaml"):
        path = folder / name
        path.write_text(path.read_text(encoding="utf-8") + HORIZON, encoding="utf-8")
    return folder


def live(records: list[OutputRecord]) -> dict[str, list[Any]]:
    """The consumer rule: per case, the records neither retracted nor retractions, in seq order."""
    gone = {r.retracts for r in records if isinstance(r, RecordRetracted)}
    out: dict[str, list[Any]] = {}
    for r in sorted((r for r in records if r.type != "event.rejected"), key=lambda r: r.seq):
        if r.type != "record.retracted" and r.record_id not in gone:
            out.setdefault(r.case_id, []).append(r)
    return out


def history(records: list[OutputRecord]) -> dict[str, list[str]]:
    """`live`, with the numbering renamed to positions (1, 2, …): a corrected case's records
    carry later `seq`s, and its timers' ids name the `seq` of the transition that entered the
    state, so both are compared by position."""
    out: dict[str, list[str]] = {}
    for case_id, records_ in live(records).items():
        position = {str(r.seq): str(i) for i, r in enumerate(records_, 1)}
        texts = [r.model_dump_json(exclude={"record_id", "seq"}) for r in records_]
        out[case_id] = [_renumbered(text, position) for text in texts]
    return out


def _renumbered(text: str, position: dict[str, str]) -> str:
    """Timer ids (`case/SEQ/deadline`) with SEQ renamed to its record's position."""
    return re.sub(r"/(\d+)/", lambda m: f"/{position.get(m.group(1), '?')}/", text)


def simulate(engine: Engine, raws: list[bytes], end: datetime) -> list[OutputRecord]:
    replay = Replay(engine)
    out: list[OutputRecord] = []
    for i, raw in enumerate(raws):
        out += list(replay.feed(raw, f"sim:{i}"))
    return out + list(replay.advance(end))


# -- the stories -------------------------------------------------------------------------------


def test_an_urgent_order_answered_in_time_is_corrected(tmp_path: Path) -> None:
    """Received 04:00 with 2 hours to respond, responded 04:30, the response delivered after the
    breach was committed (no lateness): the warning at 05:00, the breach and the escalation
    are retracted."""
    reported = event(1, "o1", "case.reported", "2026-03-03T04:00:00+08:00", "hotline-12345",
                     **URGENT)  # fmt: skip
    responded = event(2, "o1", "order.responded", "2026-03-03T04:30:00+08:00", "hotline-12345")
    replay, records = wall_clock_run(
        corrected_folder(tmp_path),
        [(at("2026-03-03T04:00:01+08:00"), reported), (at("2026-03-03T06:30:00+08:00"), responded)],
        at("2026-03-03T07:00:00+08:00"),
    )
    types = [r.type for r in records]
    assert "event.rejected" not in types
    warning, breach, escalation = records[1:4]
    assert (warning.type, breach.type, escalation.type) == (
        "sla.warning", "sla.breached", "case.transitioned")  # fmt: skip
    retracted = [r.retracts for r in records if isinstance(r, RecordRetracted)]
    assert retracted == [warning.record_id, breach.record_id, escalation.record_id]
    assert replay.cases["o1"].state == "urgent.handling"
    states = [getattr(r, "to_state", r.type) for r in live(records)["o1"]]
    assert states == ["urgent.responding", "urgent.handling"]
    seqs = [r.seq for r in records if r.type != "event.rejected"]
    assert seqs == list(range(1, len(seqs) + 1)), "seq continues, no gaps"
    assert replay.stats.corrections == {("hotline-12345", "hotline-12345"): 1}


def test_a_grid_settlement_in_time_is_resolved_at_the_grid(tmp_path: Path) -> None:
    report = {"workflow": "dispute-escalation", "attributes": {"category": "neighbour"}}
    reported = event(1, "g1", "case.reported", "2026-03-02T09:00:00+08:00", "grid", **report)
    settled = event(2, "g1", "mediation.succeeded", "2026-03-05T23:30:00+08:00", "grid",
                    agreement_signed=False)  # fmt: skip
    folder = corrected_folder(tmp_path)
    deliveries = [(at("2026-03-02T09:00:05+08:00"), reported),
                  (at("2026-03-06T09:00:00+08:00"), settled)]  # fmt: skip
    end = at("2026-04-30T00:00:00+08:00")
    _, records = wall_clock_run(folder, deliveries, end)
    assert any(r.type == "sla.breached" for r in records), "the breach was committed first"
    closed = live(records)["g1"][-1]
    assert closed.type == "case.closed"
    assert (closed.resolved_tier, closed.on_time, closed.escalations) == ("grid", True, 0)
    assert not any(r.type == "sla.breached" for r in live(records)["g1"])
    engine = Engine(WorkflowRegistry.load(folder))
    assert history(records) == history(simulate(engine, [reported, settled], end))


def test_events_of_one_case_out_of_order(tmp_path: Path) -> None:
    """The reply arrives before the response it follows, after the breach: the district takes
    the reply; then the response arrives and the case is re-derived (handled at the street)."""
    reported = event(1, "o1", "case.reported", "2026-03-03T04:00:00+08:00", "hotline-12345",
                     **URGENT)  # fmt: skip
    responded = event(2, "o1", "order.responded", "2026-03-03T04:30:00+08:00", "hotline-12345")
    replied = event(3, "o1", "order.replied", "2026-03-03T09:00:00+08:00", "hotline-12345")
    folder = corrected_folder(tmp_path)
    end = at("2026-03-04T12:00:00+08:00")
    _, records = wall_clock_run(
        folder,
        [
            (at("2026-03-03T04:00:01+08:00"), reported),
            (at("2026-03-03T09:00:01+08:00"), replied),
            (at("2026-03-03T09:00:02+08:00"), responded),
        ],
        end,
    )
    assert not any(r.type == "event.rejected" for r in records)
    assert sum(r.type == "record.retracted" for r in records) >= 3
    engine = Engine(WorkflowRegistry.load(folder))
    assert history(records) == history(simulate(engine, [reported, responded, replied], end))


def test_an_event_past_the_horizon_is_applied_late_with_its_lag(tmp_path: Path) -> None:
    """The horizon counts back from the latest instant of the case (its clock): an appraisal's
    end sent 15 days late is applied at the clock, marked late with its lag."""
    folder = corrected_folder(tmp_path)
    report = {"workflow": "dispute-escalation", "attributes": {"category": "neighbour"}}
    reported = event(1, "g1", "case.reported", "2026-03-02T09:00:00+08:00", "grid", **report)
    failed = event(2, "g1", "mediation.failed", "2026-03-03T09:00:00+08:00", "grid")
    started = event(3, "g1", "appraisal.started", "2026-03-20T10:00:00+08:00", "center")
    finished = event(4, "g1", "appraisal.finished", "2026-03-05T10:00:00+08:00", "center")
    _, records = wall_clock_run(
        folder,
        [(at("2026-03-02T09:00:05+08:00"), reported), (at("2026-03-03T09:00:05+08:00"), failed),
         (at("2026-03-20T10:00:05+08:00"), started), (at("2026-03-21T10:00:00+08:00"), finished)],
        at("2026-03-22T00:00:00+08:00"),
    )  # fmt: skip
    assert not any(r.type in ("record.retracted", "event.rejected") for r in records)
    resumed = records[-1]
    assert (resumed.type, resumed.late, resumed.late_by_seconds) == (
        "sla.changed",
        True,
        15 * 86400,
    )
    assert '"late_by_seconds":1296000.0' in resumed.model_dump_json()
    assert "late_by_seconds" not in records[0].model_dump_json(), "absent unless late"


def test_checkpoints_survive_a_snapshot(tmp_path: Path) -> None:
    """A restart between the breach and the late answer: the case read back from its snapshot
    is corrected as the one in memory would be."""
    engine = Engine(WorkflowRegistry.load(corrected_folder(tmp_path)))
    reported = event(1, "o1", "case.reported", "2026-03-03T04:00:00+08:00", "hotline-12345",
                     **URGENT)  # fmt: skip
    responded = event(2, "o1", "order.responded", "2026-03-03T04:30:00+08:00", "hotline-12345")
    first = Replay(engine)
    before = list(first.feed(reported, "in:0")) + list(first.advance(at("2026-03-03T06:30:00Z")))
    case = first.cases["o1"]
    assert case.history
    restored = decode_case(encode_case(case))
    assert restored == case
    second = Replay(engine, load=lambda _id: restored)
    second.track(restored)
    after = list(second.feed(responded, "in:1"))
    again = list(first.feed(responded, "in:1"))
    assert [r.model_dump_json() for r in after] == [r.model_dump_json() for r in again]
    assert sum(r.type == "record.retracted" for r in after) == 3
    assert len(before) == 4


def test_validate_wants_wall_time(tmp_path: Path) -> None:
    text = (ROOT / "workflows" / "hotline-12345-v2.yaml").read_text(encoding="utf-8")
    path = tmp_path / "w.yaml"
    path.write_text(text + "correction: {working_days: 3}\n")
    _, problems = check_file(str(path), path.read_bytes())
    assert [p.message for p in problems] == [
        "the correction horizon is wall time: give it in hours or calendar_days"]  # fmt: skip


def test_no_horizon_keeps_no_checkpoints(tmp_path: Path) -> None:
    engine = Engine(WorkflowRegistry.load(folder_with(tmp_path, False)))
    replay = Replay(engine)
    list(replay.feed(event(1, "o1", "case.reported", "2026-03-03T04:00:00+08:00",
                           "hotline-12345", **URGENT), "in:0"))  # fmt: skip
    case: Case = replay.cases["o1"]
    assert case.history == ()
    assert "history" not in encode_case(case)


def test_corrections_are_counted_when_their_batch_commits(tmp_path: Path) -> None:
    registry = WorkflowRegistry.load(corrected_folder(tmp_path))
    replay = BatchReplay(Engine(registry), load=lambda _id: None)
    prom = CollectorRegistry()
    metrics = EngineMetrics.create(prom, registry)
    sample = prom.get_sample_value
    labels = {"workflow": "hotline-12345", "source": "grid"}
    assert sample("fengqiao_corrections_total", labels) == 0, "exported at 0 from the start"
    reported = event(1, "o1", "case.reported", "2026-03-03T04:00:00+08:00", "hotline-12345",
                     **URGENT)  # fmt: skip
    responded = event(2, "o1", "order.responded", "2026-03-03T04:30:00+08:00", "grid")
    first = replay.step([Input(reported, "in:0")], fire_due_at=at("2026-03-03T06:30:00+08:00"))
    replay.confirm()
    store = first.upserts["o1"]
    replay = BatchReplay(Engine(registry), load=lambda _id: store, restored=[store])
    second = replay.step([Input(responded, "in:1")])
    replay.confirm()
    for result in (first, second):
        observe_batch(metrics, 0, result)
    assert second.corrections == {("hotline-12345", "grid"): 1}
    assert sample("fengqiao_corrections_total", labels) == 1
    retracted = {"workflow": "hotline-12345", "type": "sla.breached"}
    assert sample("fengqiao_records_retracted_total", retracted) == 1
    assert sample("fengqiao_records_emitted_total", {"type": "record.retracted"}) == 3


# -- the property ------------------------------------------------------------------------------

START = at("2026-03-02T08:00:00+08:00")


@st.composite
def streams(draw: Any) -> tuple[list[tuple[datetime, bytes]], list[bytes]]:
    """Orders and grid disputes, each a report and a few acts at random minutes, every event
    delivered up to 3 days late (within the 7-day horizon) in any order, except that a case's
    report comes first (an event for a case not yet reported is refused, `unknown_case`)."""
    deliveries: list[tuple[datetime, datetime, bytes]] = []
    n = 0
    for c in range(draw(st.integers(1, 4))):
        opened = START + timedelta(minutes=draw(st.integers(0, 3000)))
        if draw(st.booleans()):
            case, source = f"o{c}", "hotline-12345"
            urgency = draw(st.sampled_from(["urgent", "general"]))
            first = {"workflow": "hotline-12345", "attributes": {"urgency": urgency}}
            acts = (["order.responded", "order.replied"] if urgency == "urgent"
                    else ["order.replied"])  # fmt: skip
            steps: list[tuple[str, dict[str, Any]]] = [
                (t, {}) for t in acts[: draw(st.integers(0, len(acts)))]
            ]
        else:
            case, source = f"g{c}", "grid"
            first = {"workflow": "dispute-escalation", "attributes": {"category": "neighbour"}}
            outcome = draw(st.sampled_from(["mediation.succeeded", "mediation.failed", "none"]))
            payload = {"agreement_signed": False} if outcome == "mediation.succeeded" else {}
            steps = [] if outcome == "none" else [(outcome, payload)]
        when, reported_at = opened, opened
        for i, (type_, payload) in enumerate([("case.reported", first), *steps]):
            n += 1
            raw = event(n, case, type_, when.isoformat(), source, **payload)
            delay = timedelta(minutes=draw(st.integers(0, 3 * 24 * 60)))
            delivered = when + delay if i else when
            reported_at = delivered if i == 0 else reported_at
            deliveries.append((max(delivered, reported_at + timedelta(seconds=1) * bool(i)),
                               when, raw))  # fmt: skip
            when += timedelta(minutes=draw(st.integers(1, 6000)))
    in_time_order = [raw for _, _, raw in sorted(deliveries, key=lambda d: (d[1], d[2]))]
    delivered_order = [(d, raw) for d, _, raw in sorted(deliveries, key=lambda d: (d[0], d[2]))]
    return delivered_order, in_time_order


@pytest.fixture(scope="module", params=[False, True], ids=["no-lateness", "lateness"])
def corrected_engine(tmp_path_factory: pytest.TempPathFactory, request: Any) -> Engine:
    folder = corrected_folder(tmp_path_factory.mktemp("correct"), lateness=request.param)
    return Engine(WorkflowRegistry.load(folder))


@settings(max_examples=80, deadline=None)
@given(stream=streams())
def test_after_retractions_the_run_equals_simulate(
    corrected_engine: Engine, stream: tuple[list[tuple[datetime, bytes]], list[bytes]]
) -> None:
    delivered, in_time_order = stream
    end = START + timedelta(days=60)
    _, run = wall_clock_run(corrected_engine, delivered, end)
    assert history(run) == history(simulate(corrected_engine, in_time_order, end))
