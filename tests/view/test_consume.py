"""The view's consumer loop (consumers/view/consume.py) over a fake Kafka consumer and a real
SQLite read model, in milliseconds: offsets from the database, restarts, conflicts, database
failures, a schema rebuild, new partitions, readiness and the view's metrics.

The fake is a log per partition with positions (what kafka-python's consumer exposes to the
loop, nothing more); the records in it are the engine's own output for the example streams.
The same loop on the real broker and PostgreSQL: tests/integration/test_view_service.py.
"""

from __future__ import annotations

import json
import os
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from kafka import TopicPartition
from kafka.errors import IllegalStateError
from prometheus_client import CollectorRegistry
from structlog.testing import capture_logs

from consumers.demo.town import Town, TownSpec
from consumers.view import consume
from consumers.view.consume import ViewConsumer
from consumers.view.fold import TierOrder
from consumers.view.metrics import ViewMetrics
from consumers.view.projection import ReadModelConflictError, project, stored_offsets
from consumers.view.settings import load_view_config
from consumers.view.tables import create_view_engine, meta
from engine.core import Engine
from engine.registry import WorkflowRegistry
from tests.view.streams import CASE_EVENTS, expected_row, replay, row_fields, stored_rows

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
TOPIC = "town.transitions"
TOWN = TownSpec(population=6_000, start=date(2026, 1, 5), days=30)


@dataclass
class _Message:
    offset: int
    value: bytes | None


@dataclass
class FakeKafka:
    """A topic as the loop sees it: `logs[partition]` are the committed values in order."""

    logs: dict[int, list[bytes]]
    positions: dict[TopicPartition, int] = field(default_factory=dict)
    assigned: list[TopicPartition] = field(default_factory=list)
    seeks: list[tuple[int, int | None]] = field(default_factory=list)
    """(partition, offset) of every seek; None: to the beginning."""
    closed: bool = False
    starts: dict[int, int] = field(default_factory=dict)
    """The log start of a partition whose first records retention deleted."""

    def partitions_for_topic(self, topic: str) -> set[int]:
        return set(self.logs) if topic == TOPIC else set()

    def assign(self, partitions: list[TopicPartition]) -> None:
        self.assigned = list(partitions)

    def seek(self, tp: TopicPartition, offset: int) -> None:
        self.positions[tp] = offset
        self.seeks.append((tp.partition, offset))

    def seek_to_beginning(self, tp: TopicPartition) -> None:
        self.positions[tp] = self.starts.get(tp.partition, 0)
        self.seeks.append((tp.partition, None))

    def poll(self, timeout_ms: int, max_records: int) -> dict[TopicPartition, list[_Message]]:
        polled: dict[TopicPartition, list[_Message]] = {}
        left = max_records
        for tp in sorted(self.assigned):
            start = self.positions[tp]
            values = self.logs[tp.partition][start : start + left]
            if values:
                polled[tp] = [_Message(start + i, v) for i, v in enumerate(values)]
                self.positions[tp] = start + len(values)
                left -= len(values)
        return polled

    def highwater(self, tp: TopicPartition) -> int:
        if tp not in self.assigned:
            raise IllegalStateError("not assigned")
        return len(self.logs[tp.partition])

    def position(self, tp: TopicPartition, timeout_ms: int | None = None) -> int | None:
        return self.positions.get(tp)

    def end_offsets(self, partitions: list[TopicPartition]) -> dict[TopicPartition, int]:
        return {tp: len(self.logs[tp.partition]) for tp in partitions}

    def beginning_offsets(self, partitions: list[TopicPartition]) -> dict[TopicPartition, int]:
        return {tp: self.starts.get(tp.partition, 0) for tp in partitions}

    def close(self) -> None:
        self.closed = True


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.upper().startswith("FENGQIAO_"):
            monkeypatch.delenv(name)


@pytest.fixture
def db(tmp_path: Path) -> Iterator[sa.Engine]:
    engine = create_view_engine(f"sqlite:///{tmp_path / 'view.sqlite'}")
    yield engine
    engine.dispose()


@pytest.fixture(scope="module")
def published(registry: WorkflowRegistry, engine: Engine) -> tuple[dict[int, list[bytes]], Any]:
    """The example streams and a small town's month, the clock stopped at its end (open and
    closed cases): their case records by partition (keyed by case, as the engine sends them)
    and the replay that made them (its final cases are the engine's)."""
    lines = [
        line
        for name in ("dispute-escalation", "petition", "hotline-12345")
        for line in (ROOT / "workflows" / "examples" / f"{name}.jsonl").read_bytes().splitlines()
    ]
    town = Town(TOWN, registry)
    run, out = replay(engine, lines + [e.raw for e in town.events()], town.end)
    logs: dict[int, list[bytes]] = {0: [], 1: [], 2: []}
    for value in out:
        if b'"event.rejected"' not in value:  # dead letters go to their own topic
            logs[zlib.crc32(_case_id(value).encode()) % 3].append(value)
    return logs, run


def _case_id(value: bytes) -> str:
    return str(json.loads(value)["case_id"])


def _view(db: sa.Engine, tiers: TierOrder, fake: FakeKafka, batch: int = 7) -> ViewConsumer:
    config = load_view_config({"view_batch": batch}, {"topic_transitions": TOPIC})
    view = ViewConsumer(db, tiers, config, ViewMetrics.create(CollectorRegistry()),
                        consumer=lambda: fake)  # fmt: skip
    view.open()
    return view


def _turn_until(view: ViewConsumer, done: Callable[[], bool], turns: int = 200) -> None:
    for _ in range(turns):
        view.turn()
        if done():
            return
    raise AssertionError("the loop did not get there")


def _offsets(db: sa.Engine) -> dict[int, int]:
    with db.connect() as conn:
        return {p: o for (_, p), o in stored_offsets(conn).items()}


def _records(view: ViewConsumer, outcome: str) -> float:
    return float(view.metrics.records.labels(outcome)._value.get())


def _retries(view: ViewConsumer, reason: str) -> float:
    return float(view.metrics.retries.labels(reason)._value.get())


def _all_read(fake: FakeKafka, db: sa.Engine) -> Callable[[], bool]:
    return lambda: _offsets(db) == {p: len(v) for p, v in fake.logs.items() if v}


def test_every_partition_is_read_from_the_beginning_into_the_engines_rows(
    db: sa.Engine, tiers: TierOrder, engine: Engine, published: Any
) -> None:
    logs, run = published
    fake = FakeKafka({p: list(v) for p, v in logs.items()})
    view = _view(db, tiers, fake)
    assert view.schema == "created"
    _turn_until(view, _all_read(fake, db))
    assert sorted(fake.seeks) == [(0, None), (1, None), (2, None)]
    rows = stored_rows(db)
    assert set(rows) == set(run.cases)
    for case_id, case in run.cases.items():
        assert row_fields(rows[case_id]) == expected_row(engine, case), case_id
    total = sum(len(v) for v in logs.values())
    assert _records(view, "applied") == total
    assert _records(view, "skipped") == 0
    view.close()
    assert fake.closed


def test_a_restart_goes_on_from_the_offsets_in_the_database(
    db: sa.Engine, tiers: TierOrder, published: Any
) -> None:
    logs, _ = published
    half = {p: v[: len(v) // 2] for p, v in logs.items()}
    first = FakeKafka({p: list(v) for p, v in half.items()})
    _turn_until(_view(db, tiers, first), _all_read(first, db))
    # "killed": no close, nothing else written; the next process finds the topic grown
    again = FakeKafka({p: list(v) for p, v in logs.items()})
    view = _view(db, tiers, again)
    _turn_until(view, _all_read(again, db))
    assert sorted(again.seeks) == sorted((p, len(v)) for p, v in half.items())
    rest = sum(len(v) - len(half[p]) for p, v in logs.items())
    assert _records(view, "applied") == rest
    assert _records(view, "duplicate") == 0


def test_a_conflict_reads_the_stored_offsets_again(
    db: sa.Engine, tiers: TierOrder, published: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another writer moved the offsets (rolled back by the projection): seek to the stored
    offsets of every partition, and nothing is applied twice."""
    logs, _ = published
    fake = FakeKafka({p: list(v) for p, v in logs.items()})
    real, calls = project, []

    def conflicting(*args: Any) -> Any:
        calls.append(1)
        if len(calls) == 3:
            raise ReadModelConflictError("offsets moved meanwhile")
        return real(*args)

    monkeypatch.setattr(consume, "project", conflicting)
    view = _view(db, tiers, fake)
    _turn_until(view, _all_read(fake, db))
    assert _retries(view, "conflict") == 1
    assert len(fake.seeks) == 6  # three to the beginning, three to the stored offsets
    total = sum(len(v) for v in logs.values())
    assert _records(view, "applied") == total


def test_a_database_failure_backs_off_and_reads_the_offsets_again(
    db: sa.Engine, tiers: TierOrder, published: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    logs, _ = published
    fake = FakeKafka({p: list(v) for p, v in logs.items()})
    real, calls = project, []

    def failing(*args: Any) -> Any:
        calls.append(1)
        if len(calls) in (2, 3):
            raise sa.exc.OperationalError("INSERT", {}, ConnectionError("server closed"))
        return real(*args)

    monkeypatch.setattr(consume, "project", failing)
    monkeypatch.setattr(consume, "BACKOFF_S", (0.001, 0.002))
    view = _view(db, tiers, fake)
    _turn_until(view, _all_read(fake, db))
    assert _retries(view, "database") == 2
    total = sum(len(v) for v in logs.values())
    assert _records(view, "applied") == total


def test_tables_of_another_schema_version_are_rebuilt_from_the_beginning(
    db: sa.Engine, tiers: TierOrder, published: Any
) -> None:
    logs, _ = published
    fake = FakeKafka({p: list(v) for p, v in logs.items()})
    _turn_until(_view(db, tiers, fake), _all_read(fake, db))
    before = stored_rows(db)
    with db.begin() as conn:
        conn.execute(sa.update(meta).where(meta.c.key == "schema_version").values(value="0"))
    again = FakeKafka({p: list(v) for p, v in logs.items()})
    view = _view(db, tiers, again)
    assert view.schema == "stale"
    assert stored_rows(db) == {}
    assert _offsets(db) == {}
    _turn_until(view, _all_read(again, db))
    assert sorted(again.seeks) == [(0, None), (1, None), (2, None)]
    assert stored_rows(db) == before


def test_partitions_added_to_the_topic_are_read_too(
    db: sa.Engine, tiers: TierOrder, published: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    logs, _ = published
    monkeypatch.setattr(consume, "PARTITIONS_EVERY_S", 0.0)
    fake = FakeKafka({0: list(logs[0]), 1: list(logs[1])})
    view = _view(db, tiers, fake)
    _turn_until(view, _all_read(fake, db))
    assert 2 not in _offsets(db)
    fake.logs[2] = list(logs[2])  # the topic grew a partition, and records came to it
    _turn_until(view, _all_read(fake, db))
    assert (2, None) in fake.seeks
    assert {tp.partition for tp in fake.assigned} == {0, 1, 2}
    assert view.metrics.partitions._value.get() == 3


def test_ready_once_caught_up_with_the_end_offsets_at_start(
    db: sa.Engine, tiers: TierOrder, published: Any
) -> None:
    logs, _ = published
    fake = FakeKafka({p: list(v) for p, v in logs.items()})
    view = _view(db, tiers, fake, batch=5)
    topics = f"{TOPIC}, {CASE_EVENTS}"  # the fake broker has no case events: none to read
    assert view.ready() == (False, f"waiting for the partitions of {topics}")
    view.turn()
    ok, reason = view.ready()
    assert not ok
    left = sum(len(v) for v in logs.values()) - 5
    assert reason == f"catching up: {left} offsets of {topics} to read"
    _turn_until(view, lambda: view.ready()[0])
    assert _offsets(db) == {p: len(v) for p, v in logs.items()}
    fake.logs[0].extend(logs[0])  # more records: lagging now, but it stays ready
    view.turn()
    assert view.ready() == (True, "ready")
    lag = view.metrics.consumer_lag.labels(TOPIC, "0")._value.get()
    assert lag == len(logs[0]) - 5


def test_the_rows_gauge_counts_open_and_closed_cases(
    db: sa.Engine, tiers: TierOrder, published: Any
) -> None:
    logs, _ = published
    fake = FakeKafka({p: list(v) for p, v in logs.items()})
    view = _view(db, tiers, fake)
    _turn_until(view, lambda: view.ready()[0])
    view.turn()
    rows = stored_rows(db).values()
    for status in ("open", "closed"):
        expected = sum(1 for r in rows if r.status == status)
        assert view.metrics.cases.labels(status)._value.get() == expected
    assert {r.status for r in rows} == {"open", "closed"}


def test_records_lost_to_retention_and_a_topic_made_again_are_said(
    db: sa.Engine, tiers: TierOrder, published: Any
) -> None:
    logs, _ = published
    expired = FakeKafka({p: list(v) for p, v in logs.items()}, starts={1: 3})
    with capture_logs() as said:
        _turn_until(_view(db, tiers, expired), _all_read(expired, db))
    lost = [e for e in said if e["event"] == "view.records_expired"]
    assert lost == [{"event": "view.records_expired", "topic": TOPIC, "partition": 1,
                     "offsets": 3, "log_level": "warning"}]  # fmt: skip
    again = FakeKafka({0: logs[0][:2], 1: list(logs[1]), 2: list(logs[2])})  # topic made anew
    with capture_logs() as said:
        _view(db, tiers, again).turn()
    past = [e for e in said if e["event"] == "view.offsets_past_end"]
    assert past == [{"event": "view.offsets_past_end", "topic": TOPIC, "partition": 0,
                     "stored": len(logs[0]), "end": 2, "log_level": "error"}]  # fmt: skip
