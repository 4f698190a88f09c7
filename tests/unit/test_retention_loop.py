"""Retention through the engine loop, on the fake transaction of tests/unit/test_loops.py.

What a retirement is on Kafka: a tombstone (the case id, a null value) to the changelog in the
batch's transaction, a delete from the store after it commits, the gauges and the retired
counter; and a restore that reads the tombstones holds only the live and retained cases.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from consumers.kafka import engine_loop
from consumers.kafka.engine_loop import EngineLoop, _Listener, retention_of
from consumers.runtime.metrics import EngineMetrics
from consumers.runtime.settings import Settings, load_settings
from engine.core import Engine
from engine.ports import Clock
from engine.registry import WorkflowRegistry
from engine.stores.memory import MemoryStore
from tests.integration.harness import ROOT, by_case, rejections, simulate
from tests.unit.test_loops import FakeTransaction, Rig, events_fake, partition_of

pytestmark = pytest.mark.unit

RETENTION_DAYS = 30
FAR = "2026-06-01T00:00:00+08:00"
"""Far past every closing + 30 days of the cases below."""


def line(case_id: str, n: int, kind: str, at: str, **payload: Any) -> bytes:
    return json.dumps({"event_id": f"{case_id}-{n}", "case_id": case_id, "type": kind,
                       "occurred_at": at, "source": "grid",
                       "payload": payload}).encode()  # fmt: skip


def report(case_id: str, at: str = "2025-09-26T10:00:00+08:00", n: int = 0) -> bytes:
    return line(case_id, n, "case.reported", at,
                workflow="dispute-escalation", attributes={"category": "neighbour"})  # fmt: skip


def ticks(at: str, partitions: int = 2) -> list[bytes]:
    """One new case per partition at `at`: moves each partition's watermark there."""
    out: dict[int, bytes] = {}
    n = 0
    while len(out) < partitions:
        tick = report(f"tick-{n}", at)
        out.setdefault(partition_of(tick, partitions), tick)
        n += 1
    return list(out.values())


TICKS = ticks(FAR)
TICK_IDS = {json.loads(t)["case_id"] for t in TICKS}
CLOSED = [f"closed-{n}" for n in range(6)]
OPEN = [f"open-{n}" for n in range(4)]
LINES = (
    [report(c) for c in CLOSED + OPEN]
    + [line(c, 1, "mediation.succeeded", "2025-09-29T10:00:00+08:00") for c in CLOSED]
    + TICKS
    # after the retirement: an event of a retired case, a re-sent report (a new case)
    + [line("closed-0", 1, "mediation.succeeded", FAR), report("closed-1", FAR, n=5)]
)


class Moving:
    """A wall clock the test moves."""

    def __init__(self, now: list[datetime]) -> None:
        self.current = now

    def now(self) -> datetime:
        return self.current[0]


def settings_with(clock: str = "events") -> Settings:
    return load_settings(
        {"clock": clock, "partitions": 2, "retention_days": RETENTION_DAYS, "batch_max_records": 3}
    )  # one poll, one batch


def rig_over(
    monkeypatch: pytest.MonkeyPatch,
    registry: WorkflowRegistry,
    fake: FakeTransaction,
    settings: Settings,
    clock: Clock | None = None,
) -> Rig:
    monkeypatch.setattr(engine_loop, "read_changelog", fake.read_changelog)
    monkeypatch.setattr(EngineLoop, "_group_owners", lambda _: pytest.fail("asked a broker"))
    prom, store = CollectorRegistry(), MemoryStore()
    metrics = EngineMetrics.create(prom, registry)
    loop = EngineLoop(settings, Engine(registry), store, metrics, clock=clock, transaction=fake)
    fake.open([settings.topic_case_events], _Listener(loop))
    return Rig(loop, fake, store, prom)


def changelog(fake: FakeTransaction, settings: Settings) -> dict[str, list[bool]]:
    """Per case id, its changelog records in order: True a snapshot, False a tombstone."""
    out: dict[str, list[bool]] = {}
    for send in fake.output:
        if send.topic == settings.topic_case_state:
            assert send.key is not None
            out.setdefault(send.key.decode(), []).append(send.value is not None)
    return out


def test_retired_cases_are_tombstoned_deleted_counted_and_not_restored(
    monkeypatch: pytest.MonkeyPatch, registry: WorkflowRegistry
) -> None:
    settings = settings_with()
    assert retention_of(settings) == timedelta(days=RETENTION_DAYS)
    fake = events_fake(settings, LINES)
    rig = rig_over(monkeypatch, registry, fake, settings)
    rig.drain()

    # The committed output equals `simulate` with the same retention, partition by partition.
    parts = [[x for x in LINES if partition_of(x, 2) == p] for p in (0, 1)]
    want = [r for part in parts for r in
            simulate(ROOT / "workflows", part, timedelta(days=RETENTION_DAYS))]  # fmt: skip
    assert by_case(fake.records(settings.topic_transitions)) == by_case(want)
    dead = fake.records(settings.topic_dead_letter)
    assert rejections(dead) == rejections(want)
    assert ("closed-0", "closed-0-1", "unknown_case") in rejections(dead)

    log = changelog(fake, settings)
    # snapshots (opened, closed: one or two batches), then the tombstone
    assert all(log[c][-1] is False and all(log[c][:-1]) for c in CLOSED if c != "closed-1")
    assert log["closed-1"][-2:] == [False, True]  # retired, then reported again
    assert all(all(log[c]) for c in OPEN)
    live = {c.case_id for p in (0, 1) for c in rig.store.cases(p)}
    assert live == {*OPEN, *TICK_IDS, "closed-1"}
    retired = rig.prom.get_sample_value("fengqiao_cases_retired_total")
    in_store = rig.prom.get_sample_value("fengqiao_cases_in_store")
    assert (retired, in_store) == (len(CLOSED), len(live))

    successor = rig_over(monkeypatch, registry, fake, settings)
    successor.loop.turn()  # joins: every partition restored from the changelog
    restored = {c.case_id for p in (0, 1) for c in successor.store.cases(p)}
    assert restored == live
    assert successor.prom.get_sample_value("fengqiao_cases_in_store") == len(live)
    assert all(part.next_due is None or part.next_due > datetime.fromisoformat(FAR)
               for part in successor.loop.partitions.values())  # fmt: skip


def test_on_the_wall_clock_an_idle_partition_retires_once_caught_up(
    monkeypatch: pytest.MonkeyPatch, registry: WorkflowRegistry
) -> None:
    settings = settings_with("wall")
    closing = LINES[: len(CLOSED) + len(OPEN) + len(CLOSED)]
    fake = events_fake(settings, closing)
    now = [datetime.fromisoformat("2025-10-15T00:00:00+08:00")]
    rig = rig_over(monkeypatch, registry, fake, settings, Moving(now))
    rig.drain()
    rig.loop.turn()
    assert changelog(fake, settings)["closed-0"] == [True, True]  # within its 30 days
    now[0] = datetime.fromisoformat("2025-10-29T10:00:00+08:00")  # closing + 30 days
    rig.loop.turn()
    assert all(changelog(fake, settings)[c] == [True, True, False] for c in CLOSED)
    assert {c.case_id for p in (0, 1) for c in rig.store.cases(p)} == set(OPEN)
    assert rig.prom.get_sample_value("fengqiao_cases_retired_total") == len(CLOSED)
