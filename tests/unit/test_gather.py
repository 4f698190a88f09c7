"""Polls gathered into one transaction (consumers/kafka/gather.py), alone and in the engine loop.

Why: a backlog is cheaper in fewer, larger transactions, but gathering must never change what
is committed (the same records, once), never hold live traffic back for the interval, and
never lose what it gathered when a rebalance comes in between: kafka-python's eager rebalance
keeps the positions of the partitions this member keeps, so the fake here does too.
"""

from __future__ import annotations

from datetime import UTC, datetime
from types import SimpleNamespace

import pytest
from kafka import TopicPartition
from prometheus_client import CollectorRegistry

from consumers.kafka import engine_loop
from consumers.kafka.engine_loop import EngineLoop, _Listener
from consumers.kafka.gather import POLL_RECORDS_MAX, Gathered, behind, poll_records
from consumers.runtime.metrics import EngineMetrics
from consumers.runtime.settings import Settings, load_settings
from engine.core import Engine
from engine.registry import WorkflowRegistry
from engine.stores.memory import MemoryStore
from tests.integration.harness import by_case, rejections
from tests.unit.test_loops import LINES, FakeTransaction, Rig, events_fake, expected

pytestmark = pytest.mark.unit

TP0, TP1 = TopicPartition("t", 0), TopicPartition("t", 1)


class Msg:
    """A polled message: only its offset matters here."""

    def __init__(self, offset: int) -> None:
        self.offset = offset

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Msg) and other.offset == self.offset

    def __hash__(self) -> int:
        return self.offset


def msgs(*offsets: int) -> list[Msg]:
    return [Msg(o) for o in offsets]


class Ticking:
    """A monotonic clock the test moves."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_a_batch_goes_when_not_behind_full_or_its_interval_is_over() -> None:
    clock = Ticking()
    gathered = Gathered(interval_ms=5000, max_records=10, clock=clock)
    assert not gathered.ready(behind=False)  # nothing gathered: nothing to run
    assert gathered.wait_ms() == 5000
    assert gathered.add({TP0: msgs(1, 2, 3), TP1: []}) == 3
    assert gathered.count == 3
    assert TP1 not in gathered.messages
    assert gathered.ready(behind=False)  # live traffic never waits
    assert not gathered.ready(behind=True)
    clock.now += 4.0
    assert gathered.wait_ms() == 1000
    assert not gathered.ready(behind=True)
    gathered.add({TP0: msgs(4), TP1: msgs(7)})
    assert gathered.take() == {TP0: msgs(1, 2, 3, 4), TP1: msgs(7)}
    assert gathered.count == 0
    assert gathered.wait_ms() == 5000  # a new batch, a new interval

    gathered.add({TP0: msgs(1)})
    clock.now += 5.0
    assert gathered.wait_ms() == 0
    assert gathered.ready(behind=True)  # interval over
    gathered.take()
    gathered.add({TP0: msgs(*range(10))})
    assert gathered.ready(behind=True)  # full


def test_a_rebalance_drops_what_its_partitions_gathered_and_says_where_to_read_again() -> None:
    gathered = Gathered(interval_ms=100, max_records=100, clock=Ticking())
    gathered.add({TP0: msgs(5, 6), TP1: msgs(9)})
    assert gathered.drop({0}) == {TP0: 5}
    assert gathered.messages == {TP1: msgs(9)}
    assert gathered.count == 1
    assert gathered.drop({1}) == {TP1: 9}
    assert gathered.count == 0
    assert gathered.started is None


def test_behind_means_a_full_poll_or_more_than_a_poll_of_lag() -> None:
    assert behind(polled=500, poll_max=500, lags=[0])
    assert behind(polled=3, poll_max=500, lags=[0, 501])
    # short of the high watermark by an open transaction's records: not behind
    assert not behind(polled=3, poll_max=500, lags=[0, 120])
    assert not behind(polled=0, poll_max=500, lags=[None, None])  # watermarks not known yet


def test_a_poll_holds_at_most_a_batch() -> None:
    assert poll_records(500) == 500
    assert poll_records(50_000) == POLL_RECORDS_MAX


def gathering_rig(
    monkeypatch: pytest.MonkeyPatch, registry: WorkflowRegistry, settings: Settings, per_poll: int
) -> Rig:
    fake = events_fake(settings, LINES, per_poll=per_poll)
    monkeypatch.setattr(engine_loop, "read_changelog", fake.read_changelog)
    monkeypatch.setattr(EngineLoop, "_group_owners", lambda _: pytest.fail("asked a broker"))
    prom, store = CollectorRegistry(), MemoryStore()
    loop = EngineLoop(settings, Engine(registry), store, EngineMetrics.create(prom, registry),
                      transaction=fake)  # fmt: skip
    fake.open([settings.topic_case_events], _Listener(loop))
    loop.poll_max = 1  # the fake's polls are tiny: lag beyond one message is a backlog here
    return Rig(loop, fake, store, prom)


def gathering_settings(batch_max_records: int) -> Settings:
    """The `events` clock over two partitions, with a commit interval no test waits out."""
    return load_settings({"clock": "events", "partitions": 2, "commit_interval_ms": 9000,
                          "batch_max_records": batch_max_records})  # fmt: skip


def assert_committed_as_simulate(rig: Rig, settings: Settings) -> None:
    """The committed transitions and dead letters are what `simulate` makes of the input."""
    fake, want = rig.fake, expected(LINES)
    assert by_case(fake.records(settings.topic_transitions)) == by_case(want)
    assert rejections(fake.records(settings.topic_dead_letter)) == rejections(want)


def test_a_backlog_commits_in_one_transaction_what_per_poll_batches_commit(
    monkeypatch: pytest.MonkeyPatch, registry: WorkflowRegistry
) -> None:
    """Gathered until caught up (a long interval, no record limit): one commit, and the same
    records as `simulate` (and as one batch per poll)."""
    settings = gathering_settings(batch_max_records=100_000)
    rig = gathering_rig(monkeypatch, registry, settings, per_poll=2)
    rig.drain()
    assert_committed_as_simulate(rig, settings)
    assert rig.fake.commits == 1
    assert rig.fake.committed == {tp: len(m) for tp, m in rig.fake.log.items()}


def test_a_full_batch_goes_before_the_loop_is_caught_up(
    monkeypatch: pytest.MonkeyPatch, registry: WorkflowRegistry
) -> None:
    settings = gathering_settings(batch_max_records=4)
    rig = gathering_rig(monkeypatch, registry, settings, per_poll=1)
    rig.drain()
    inputs = sum(len(m) for m in rig.fake.log.values())
    assert rig.fake.commits == -(-inputs // 4)  # two polls of 1 + 1 per batch
    assert_committed_as_simulate(rig, settings)


def test_messages_gathered_before_a_rebalance_are_read_again_not_lost(
    monkeypatch: pytest.MonkeyPatch, registry: WorkflowRegistry
) -> None:
    settings = gathering_settings(batch_max_records=100_000)
    rig = gathering_rig(monkeypatch, registry, settings, per_poll=2)
    rig.loop.turn()
    rig.loop.turn()
    assert rig.loop.gathered.count > 0
    assert rig.fake.commits == 0
    fake: FakeTransaction = rig.fake
    assigned = list(fake.assigned or ())
    fake.listener.on_partitions_revoked(assigned)  # an eager rebalance: all of them go ...
    assert rig.loop.gathered.count == 0
    # ... and come back, at the positions they had (kafka-python keeps a kept partition's)
    fake.listener.on_partitions_assigned(assigned)
    rig.drain()
    assert_committed_as_simulate(rig, settings)


def test_an_overdue_timer_does_not_turn_gathering_into_a_busy_poll(
    monkeypatch: pytest.MonkeyPatch, registry: WorkflowRegistry
) -> None:
    """Wall clock: with nothing gathered an overdue timer makes the poll return at once (it
    fires now); while a batch is gathered, the poll waits for the batch's interval instead (the
    timer fires when the batch runs), so a caught-up partition's timer cannot spin the loop."""
    settings = load_settings({"clock": "wall", "partitions": 2, "commit_interval_ms": 9000,
                              "batch_max_records": 100_000,
                              "fixed_now": "2026-01-01T00:00:00+08:00"})  # fmt: skip
    rig = gathering_rig(monkeypatch, registry, settings, per_poll=2)
    rig.loop.turn()  # joined, partitions restored
    rig.loop.gathered.take()  # start from nothing gathered
    overdue = SimpleNamespace(next_due=datetime(2025, 1, 1, tzinfo=UTC))
    monkeypatch.setattr(rig.loop, "partitions", {0: overdue, 1: overdue})
    monkeypatch.setattr(rig.loop, "_caught_up", lambda partition: True)
    assert rig.loop._poll_timeout_ms() == 0
    rig.loop.gathered.add({TP0: msgs(1)})
    assert rig.loop._poll_timeout_ms() > 8000
