"""Traceable dead letters: key discipline, where a refusing case stood, duplicates per channel.

Why each matters to an operator reading `fengqiao.dead-letter` or the metrics:

- a case event whose Kafka key is not its `case_id` would put one case on two partitions (two
  engines, two copies, two sets of timers), so it is refused as `key_mismatch`, never applied;
  inputs that are no Kafka record (`simulate`'s file lines, the demo) have no key to check;
- a refusal by an open case names the case's workflow, version and state, and how late the event
  was behind the case's clock: "may not send 'mediation.failed' here" alone does not say where;
- duplicates are counted by the channel that re-sent them.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from functools import partial
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry

from consumers.runtime.metrics import EngineMetrics
from consumers.runtime.observe import OTHER_SOURCE, observe_batch
from engine.batch import BatchReplay, BatchResult, Input
from engine.core import Engine
from engine.decode import MAX_ID_CHARS, KafkaKey, decode_event
from engine.registry import WorkflowRegistry
from engine.stores import MemoryStore
from schemas.events import CaseEvent
from schemas.records import CASE_CONTEXT, EventRejected

pytestmark = pytest.mark.unit

OPENED = "2026-03-02T09:00:00+08:00"
REPORT = {"workflow": "dispute-escalation", "attributes": {"category": "neighbour"}}


def line(case_id: str = "c1", n: int = 0, type_: str = "case.reported", at: str = OPENED,
         source: str = "court", **payload: Any) -> bytes:  # fmt: skip
    if type_ == "case.reported" and not payload:
        payload = REPORT
    return json.dumps({
        "event_id": f"{case_id}-{n}", "case_id": case_id, "type": type_, "occurred_at": at,
        "source": source, "payload": payload,
    }).encode()  # fmt: skip


def fresh(engine: Engine) -> BatchReplay:
    store = MemoryStore()
    return BatchReplay(engine, load=partial(store.get, 0))


def counted(registry: WorkflowRegistry, *results: BatchResult) -> CollectorRegistry:
    """The engine's metrics after observing `results` as committed batches."""
    prom = CollectorRegistry()
    metrics = EngineMetrics.create(prom, registry)
    for result in results:
        observe_batch(metrics, 0, result)
    return prom


# -- key discipline -----------------------------------------------------------------------------


@given(
    case_id=st.text(min_size=1, max_size=MAX_ID_CHARS),
    key=st.none() | st.binary(max_size=4 * MAX_ID_CHARS + 10) | st.just(b"c1"),
    same=st.booleans(),
)
def test_a_kafka_record_is_applied_only_when_keyed_by_its_case_id(
    case_id: str, key: bytes | None, same: bool
) -> None:
    """Any key bytes (none, not UTF-8, longer than an id): an event or a `key_mismatch`
    refusal naming the event, whose record can always be written."""
    if same:
        key = case_id.encode()
    raw = line(case_id)
    result = decode_event(raw, "fengqiao.case-events/0/7", KafkaKey(key))
    if key == case_id.encode():
        assert isinstance(result, CaseEvent)
        return
    assert isinstance(result, EventRejected)
    assert (result.reason, result.case_id, result.event_id) == (
        "key_mismatch",
        case_id,
        case_id + "-0",
    )
    assert repr(case_id) in result.detail
    assert "produce case events keyed by case_id" in result.detail
    assert ("no key" in result.detail) == (key is None)
    written = json.loads(result.model_dump_json())
    assert written["original"] == raw.decode()
    assert len(written["detail"]) <= 1000


def test_input_without_key_information_is_not_refused(engine: Engine) -> None:
    """`simulate`, the demo and the benchmarks give no Kafka key: nothing to check. A Kafka
    record without a key is another thing: refused."""
    raw = line("c1")
    assert isinstance(decode_event(raw, "file:1"), CaseEvent)
    assert not fresh(engine).step([Input(raw, "file:1")]).refusals
    refused = fresh(engine).step([Input(raw, "fengqiao.case-events/0/1", key=KafkaKey(None))])
    assert [r.reason for r in refused.refusals] == ["key_mismatch"]
    assert "Kafka record has no key; the event's case_id is 'c1'" in refused.refusals[0].detail


def test_a_key_mismatch_is_refused_not_applied_and_counted(
    engine: Engine, registry: WorkflowRegistry
) -> None:
    part = fresh(engine)
    origin = "fengqiao.case-events/3/41"
    wrong = part.step([Input(line("c1"), origin, {"producer": "x"}, KafkaKey(b"c2"))])
    (refusal,) = wrong.refusals
    assert refusal.detail == (
        "Kafka key 'c2' is not the event's case_id 'c1': produce case events keyed by case_id, "
        "or one case is split across partitions"
    )
    assert (refusal.origin, refusal.headers, refusal.case_id) == (origin, {"producer": "x"}, "c1")
    assert wrong.changes == ()  # no case opened, the event id not remembered
    part.confirm()
    right = part.step([Input(line("c1"), "fengqiao.case-events/3/42", key=KafkaKey(b"c1"))])
    assert not right.refusals
    assert [c.state for c in right.upserts.values()] == ["court.mediating"]
    prom = counted(registry, wrong, right)
    rejected = "fengqiao_events_rejected_total"
    assert prom.get_sample_value(rejected, {"reason": "key_mismatch"}) == 1
    assert prom.get_sample_value(rejected, {"reason": "malformed"}) == 0


def test_a_malformed_record_stays_malformed_whatever_its_key(engine: Engine) -> None:
    """The key is checked on events only: bytes that are no event keep their own reason."""
    result = fresh(engine).step([Input(b"not json", "events/0/1", key=KafkaKey(b"c1"))])
    assert [r.reason for r in result.refusals] == ["malformed"]


# -- where the refusing case stood --------------------------------------------------------------


def _refused_on_court_case(engine: Engine, at: str) -> EventRejected:
    """A court case (court.mediating), then the center sends `mediation.failed` at `at`: only
    the court may send it there."""
    part = fresh(engine)
    mediation_failed = line("c1", 1, "mediation.failed", at, "center")
    result = part.step([Input(line("c1"), "in:0"), Input(mediation_failed, "in:1")])
    (refusal,) = result.refusals
    return refusal


@pytest.mark.parametrize("behind", [timedelta(hours=1), timedelta(days=3, seconds=1.5)])
def test_a_refusal_by_an_open_case_carries_its_state_and_lateness(
    engine: Engine, behind: timedelta
) -> None:
    at = (datetime.fromisoformat(OPENED) - behind).isoformat()
    refusal = _refused_on_court_case(engine, at)
    assert refusal.reason == "unauthorized_source"
    assert refusal.detail == (
        "'center' may not send 'mediation.failed' here (in state 'court.mediating')"
    )
    assert (refusal.workflow, refusal.workflow_version, refusal.case_state) == (
        "dispute-escalation", 1, "court.mediating",
    )  # fmt: skip
    assert refusal.late_by_seconds == behind.total_seconds()
    assert json.loads(refusal.model_dump_json())["late_by_seconds"] == behind.total_seconds()


def test_an_event_on_time_carries_no_lateness(engine: Engine) -> None:
    refusal = _refused_on_court_case(engine, "2026-03-02T10:00:00+08:00")
    written = json.loads(refusal.model_dump_json())
    assert written["case_state"] == "court.mediating"
    assert "late_by_seconds" not in written
    assert refusal.late_by_seconds is None


def test_a_detail_that_names_the_state_already_is_not_repeated(engine: Engine) -> None:
    part = fresh(engine)
    applied = line("c1", 1, "confirmation.applied", source="court")
    result = part.step([Input(line("c1"), "in:0"), Input(applied, "in:1")])
    (refusal,) = result.refusals
    assert refusal.detail == "no transition on 'confirmation.applied' from 'court.mediating'"
    assert refusal.case_state == "court.mediating"


def test_a_refusal_without_a_case_keeps_its_old_shape(engine: Engine) -> None:
    """No case, no case context: the record is written exactly as before these fields."""
    result = fresh(engine).step([Input(line("c9", 1, "mediation.failed"), "in:0")])
    (refusal,) = result.refusals
    assert refusal.reason == "unknown_case"
    written = json.loads(refusal.model_dump_json())
    assert not set(CASE_CONTEXT) & set(written)
    assert list(written) == [
        "type", "record_id", "case_id", "event_id", "reason", "detail", "origin", "original",
        "original_encoding", "headers", "fields",
    ]  # fmt: skip
    assert EventRejected.model_validate(written) == refusal


# -- duplicates per channel ---------------------------------------------------------------------


def test_duplicates_are_counted_by_the_source_that_sent_them(
    engine: Engine, registry: WorkflowRegistry
) -> None:
    """A source no workflow names is counted as `other`: the label set stays bounded."""
    part = fresh(engine)
    first = line("c1", source="court")
    resent = [first, first, line("c1", source="stranger")]  # same event id each time
    result = part.step([Input(raw, f"in:{i}") for i, raw in enumerate([first, *resent])])
    assert dict(result.duplicates_by_source) == {"court": 2, "stranger": 1}
    assert result.duplicates == 3
    prom = counted(registry, result)
    duplicates = "fengqiao_events_duplicate_total"
    assert prom.get_sample_value(duplicates, {"source": "court"}) == 2
    assert prom.get_sample_value(duplicates, {"source": OTHER_SOURCE}) == 1
    assert prom.get_sample_value(duplicates, {"source": "stranger"}) is None
    assert prom.get_sample_value(duplicates, {"source": "grid"}) == 0  # exported from the start
