"""The two Kafka loops (`EngineLoop`, `AdapterLoop`) driven without a broker, in milliseconds.

Why: their exactly-once logic (what is committed, what is stored, what is rewound after an abort,
what stops on fencing, when idle timers may fire) is decided in the loops, not in Kafka; the
integration tests show it against a real broker in minutes, these pin it down in milliseconds
through `FakeTransaction`, a fake of the `Transaction` port (engine/ports.py) that mimics
`KafkaTransaction`: commit answers True, or aborts, rewinds to the committed offsets and answers
False; fencing raises `FencedError`. The changelog is the fake's committed `case-state` sends.
"""

from __future__ import annotations

import json
import zlib
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, NamedTuple

import pytest
from kafka import TopicPartition
from prometheus_client import CollectorRegistry

from consumers.errors import FencedError
from consumers.kafka import engine_loop
from consumers.kafka.adapter_loop import AdapterLoop, intake_topics
from consumers.kafka.changelog import ChangelogChunk
from consumers.kafka.engine_loop import EngineLoop, _Listener
from consumers.runtime.clock import FixedClock
from consumers.runtime.metrics import EngineMetrics
from consumers.runtime.settings import Settings, load_settings
from engine.case import Case
from engine.core import Engine
from engine.ports import Clock, GroupView, Send
from engine.registry import WorkflowRegistry
from engine.stores.codec import encode_case
from engine.stores.memory import MemoryStore
from tests.integration.harness import ROOT, by_case, rejections, simulate
from tests.integration.intake_samples import INVALID, SAMPLES, encode

pytestmark = pytest.mark.unit

LINES = (ROOT / "workflows/examples/dispute-escalation.jsonl").read_bytes().splitlines()
"""Five cases over two partitions, a malformed line and dead letters of every kind."""

PER_POLL = 3
"""Messages per partition the fake returns from one poll. The tests that script what happens to
the n-th commit set `batch_max_records` to it: one poll, one batch."""


class Message(NamedTuple):
    offset: int
    key: bytes | None
    value: bytes
    headers: list[tuple[str, bytes]]


@dataclass
class FakeTransaction:
    """The `Transaction` port over lists: input per partition, committed offsets, positions,
    the committed output, and scripted outcomes of the next commits (None: commit)."""

    topics: Mapping[str, int]
    per_poll: int = PER_POLL
    log: dict[Any, list[Message]] = field(default_factory=dict)
    committed: dict[Any, int] = field(default_factory=dict)
    position: dict[Any, int] = field(default_factory=dict)
    output: list[Send] = field(default_factory=list)
    script: list[str | None] = field(default_factory=list)
    commits: int = 0
    """Commit attempts, whatever their outcome."""
    listener: Any = None
    assigned: list[Any] | None = None
    closed: bool = False
    rejoined: int = 0
    """`rejoin` calls (the group watch leaves and joins a group stuck holding nothing)."""

    def __post_init__(self) -> None:
        self.log = {TopicPartition(t, p): [] for t, n in self.topics.items() for p in range(n)}

    def append(self, topic: str, partition: int, value: bytes, key: bytes | None = None,
               headers: Sequence[tuple[str, bytes]] = ()) -> None:  # fmt: skip
        messages = self.log[TopicPartition(topic, partition)]
        messages.append(Message(len(messages), key, value, list(headers)))

    def open(self, topics: Sequence[str], listener: Any) -> None:
        """New clients: the next poll joins (assigns every partition) from the committed offsets."""
        self.listener, self.assigned, self.closed = listener, None, False
        self.position = {tp: self.committed.get(tp, 0) for tp in self.log if tp.topic in topics}

    def poll(self, timeout_ms: int) -> Mapping[Any, list[Message]]:
        if self.assigned is None:
            self.assigned = sorted(self.position)
            if self.listener is not None:
                self.listener.on_partitions_assigned(list(self.assigned))
        polled = {}
        for tp in self.assigned:
            start = self.position[tp]
            if batch := self.log[tp][start : start + self.per_poll]:
                polled[tp] = batch
                self.position[tp] = start + len(batch)
        return polled

    def commit(self, sends: Iterable[Send], offsets: Mapping[Any, int]) -> bool:
        sends, self.commits = list(sends), self.commits + 1
        outcome = self.script.pop(0) if self.script else None
        if outcome == "fenced":
            raise FencedError("transactional id taken by another process (scripted)")
        if outcome == "abort":
            self.rewind()
            return False
        self.output.extend(sends)
        self.committed.update(offsets)
        return True

    def rewind(self, partitions: Iterable[Any] | None = None) -> None:
        for tp in partitions if partitions is not None else self.assigned or ():
            self.position[tp] = self.committed.get(tp, 0)

    def seek(self, tp: Any, offset: int) -> None:
        self.position[tp] = offset

    def caught_up(self, tp: Any) -> bool:
        return self.position[tp] >= len(self.log[tp])

    def lag(self, tp: Any) -> int | None:
        return len(self.log[tp]) - self.position[tp]

    def group(self) -> GroupView:
        return GroupView("<stable>", 1)

    def group_lag(self, topic: str) -> tuple[int, int]:
        tps = [tp for tp in self.log if tp.topic == topic]
        return len(tps), sum(len(self.log[tp]) - self.committed.get(tp, 0) for tp in tps)

    def rejoin(self) -> None:
        self.rejoined += 1

    def close(self) -> None:
        self.closed = True

    def read_changelog(self, settings: Settings, partition: int, start: int | None = None,
                       **_: Any) -> Iterator[ChangelogChunk]:  # fmt: skip
        """`consumers.kafka.changelog.read_changelog` over the committed `case-state` sends."""
        topic = settings.topic_case_state
        records = [s for s in self.output if s.topic == topic and s.partition == partition]
        chunk = ChangelogChunk(partition, position=len(records))
        for send in records[start or 0 :]:
            assert send.key is not None
            chunk.add(send.key, send.value)
        yield chunk

    def records(self, topic: str) -> list[dict[str, Any]]:
        return [json.loads(s.value) for s in self.output if s.topic == topic and s.value]

    def settled(self) -> bool:
        return all(self.committed.get(tp, 0) == len(self.log[tp]) for tp in self.position)


@dataclass
class Rig:
    loop: EngineLoop
    fake: FakeTransaction
    store: MemoryStore
    prom: CollectorRegistry

    def cases(self) -> dict[int, list[Case]]:
        return {tp.partition: list(self.store.cases(tp.partition)) for tp in self.fake.log}

    def transactions(self, outcome: str) -> float | None:
        return self.prom.get_sample_value("fengqiao_transactions_total", {"outcome": outcome})

    def drain(self, turns: int = 100) -> None:
        """Turn until every input is committed."""
        for _ in range(turns):
            self.loop.turn()
            if self.fake.settled():
                return
        raise AssertionError("the loop did not commit all its input")


MakeRig = Callable[..., Rig]


@pytest.fixture
def make_rig(
    monkeypatch: pytest.MonkeyPatch, engine: Engine, registry: WorkflowRegistry
) -> MakeRig:
    """An `EngineLoop` over `fake` (joined unless `opened=False`), its changelog the fake's."""

    def make(fake: FakeTransaction, settings: Settings, *, clock: Clock | None = None,
             opened: bool = True) -> Rig:  # fmt: skip
        monkeypatch.setattr(engine_loop, "read_changelog", fake.read_changelog)
        monkeypatch.setattr(EngineLoop, "_group_owners", lambda _: pytest.fail("asked a broker"))
        prom, store = CollectorRegistry(), MemoryStore()
        metrics = EngineMetrics.create(prom, registry)
        loop = EngineLoop(settings, engine, store, metrics, clock=clock, transaction=fake)
        if opened:
            fake.open([settings.topic_case_events], _Listener(loop))
        return Rig(loop, fake, store, prom)

    return make


def key_of(line: bytes) -> bytes | None:
    """The case id, as the adapters key case events (unparseable lines: no key)."""
    try:
        return str(json.loads(line)["case_id"]).encode()
    except (ValueError, KeyError, TypeError):
        return None


def partition_of(line: bytes, partitions: int) -> int:
    """By case id, as a keyed producer would (unparseable lines: partition 0)."""
    key = key_of(line)
    return 0 if key is None else zlib.crc32(key) % partitions


def events_fake(settings: Settings, lines: list[bytes], partitions: int = 2,
                per_poll: int = 3) -> FakeTransaction:  # fmt: skip
    fake = FakeTransaction({settings.topic_case_events: partitions}, per_poll=per_poll)
    for line in lines:
        fake.append(settings.topic_case_events, partition_of(line, partitions), line, key_of(line))
    return fake


def expected(lines: list[bytes], partitions: int = 2) -> list[dict[str, Any]]:
    """What `simulate` says, partition by partition: with the `events` clock each partition
    has its own watermark (over the whole file, FQ-D-2026-0099's event of 03-27 on the other
    partition would fire FQ-D-2026-0003's SLA warning before its own, earlier, extension)."""
    parts = [[x for x in lines if partition_of(x, partitions) == p] for p in range(partitions)]
    return [record for part in parts for record in simulate(ROOT / "workflows", part)]


def events_settings() -> Settings:
    return load_settings({"clock": "events", "partitions": 2, "batch_max_records": PER_POLL})


def test_commit_outputs_equal_simulate_with_dead_letters_offsets_store_and_metrics(
    make_rig: MakeRig,
) -> None:
    """The committed transitions equal `simulate` per case; refusals are dead letters; the
    offsets, the store and the changelog agree with what was committed."""
    settings = events_settings()
    rig = make_rig(events_fake(settings, LINES), settings)
    rig.drain()
    fake, want = rig.fake, expected(LINES)
    assert by_case(fake.records(settings.topic_transitions)) == by_case(want)
    dead = fake.records(settings.topic_dead_letter)
    assert rejections(dead) == rejections(want)
    assert "malformed" in {r["reason"] for r in dead}
    assert fake.committed == {tp: len(messages) for tp, messages in fake.log.items()}
    changelog = {(s.partition, s.key): s.value for s in fake.output
                 if s.topic == settings.topic_case_state}  # fmt: skip
    stored = {(p, c.case_id.encode()): encode_case(c).encode() for p in (0, 1)
              for c in rig.store.cases(p)}  # fmt: skip
    assert stored == changelog
    assert {case_id for _, case_id in stored} == {c.encode() for c in by_case(want)}
    assert rig.transactions("committed") == fake.commits > 1
    assert rig.transactions("aborted") == 0


@pytest.mark.parametrize("abort_at", [1, 3], ids=["first-commit", "mid-stream"])
def test_an_aborted_commit_is_rewound_and_redone_once(make_rig: MakeRig, abort_at: int) -> None:
    """After an abort nothing of the batch is committed or stored, the input is read again from
    the committed offsets, and in the end every record is committed once, in the same order per
    case, as without the abort."""
    settings = events_settings()
    baseline = make_rig(events_fake(settings, LINES), settings)
    baseline.drain()

    rig = make_rig(events_fake(settings, LINES), settings)
    fake = rig.fake
    fake.script = [None] * (abort_at - 1) + ["abort"]
    while fake.commits < abort_at - 1:
        rig.loop.turn()
    output, committed = list(fake.output), dict(fake.committed)
    stored = rig.cases()
    rig.loop.turn()  # the aborted one
    assert fake.commits == abort_at
    assert (fake.output, fake.committed, rig.cases()) == (output, committed, stored)
    assert fake.position == {tp: committed.get(tp, 0) for tp in fake.position}
    timers = {p: sum(c.next_due() is not None for c in cases) for p, cases in stored.items()}
    assert {p: part.pending_timers for p, part in rig.loop.partitions.items()} == timers
    assert rig.transactions("aborted") == 1
    rig.drain()

    transitions, dead_letter = settings.topic_transitions, settings.topic_dead_letter
    assert by_case(fake.records(transitions)) == by_case(baseline.fake.records(transitions))
    assert rejections(fake.records(dead_letter)) == rejections(baseline.fake.records(dead_letter))
    assert fake.committed == baseline.fake.committed
    assert rig.cases() == baseline.cases()
    assert rig.transactions("aborted") == 1


def event(case_id: str, n: int, kind: str, at: str, **payload: Any) -> bytes:
    return json.dumps({"event_id": f"{case_id}-{n}", "case_id": case_id, "type": kind,
                       "occurred_at": at, "source": "center",
                       "payload": payload}).encode()  # fmt: skip


def report(case_id: str, at: str) -> bytes:
    return event(case_id, 0, "case.reported", at,
                 workflow="dispute-escalation", attributes={"category": "neighbour"})  # fmt: skip


def test_a_redone_batch_fires_the_timers_it_fired_before_the_abort(make_rig: MakeRig) -> None:
    """The aborted batch moved the watermark past roof-1's grid deadline (timers fire, the case
    escalates, then its mediation succeeds at the center); redone, it must do exactly that. (It
    did not, until a rewind also took the event-time watermark back to the last stored batch.)"""
    settings = load_settings({"clock": "events", "partitions": 1, "batch_max_records": 2})
    lines = [report("roof-1", "2025-09-26T10:00:00+08:00"),
             report("roof-2", "2025-09-26T11:00:00+08:00"),
             report("roof-3", "2025-10-02T09:00:00+08:00"),
             event("roof-1", 1, "mediation.succeeded", "2025-10-02T10:00:00+08:00",
                   agreement_signed=False)]  # fmt: skip
    fake = events_fake(settings, lines, partitions=1, per_poll=2)
    fake.script = [None, "abort"]
    rig = make_rig(fake, settings)
    rig.drain()
    assert rig.transactions("aborted") == 1
    want = simulate(ROOT / "workflows", lines)
    assert by_case(fake.records(settings.topic_transitions)) == by_case(want)


def test_fencing_stops_the_loop_and_a_successor_resumes_exactly_once(make_rig: MakeRig) -> None:
    """A fenced commit raises out of `run()` with nothing of its batch committed or stored;
    a successor restores from the changelog, resumes from the offsets, and ends as `simulate`."""
    settings = events_settings()
    fake = events_fake(settings, LINES)
    fake.script = [None, "fenced"]
    rig = make_rig(fake, settings, opened=False)
    with pytest.raises(FencedError):
        rig.loop.run()
    assert fake.closed
    assert fake.commits == 2
    first = fake.output[:]  # the first batch only: 3 messages per partition
    assert fake.committed == dict.fromkeys(fake.log, 3)
    changelog = {s.key for s in first if s.topic == settings.topic_case_state}
    assert {c.case_id.encode() for p in (0, 1) for c in rig.store.cases(p)} == changelog

    successor = make_rig(fake, settings)
    successor.drain()
    want = expected(LINES)
    assert fake.output[: len(first)] == first
    assert by_case(fake.records(settings.topic_transitions)) == by_case(want)
    assert rejections(fake.records(settings.topic_dead_letter)) == rejections(want)


def test_wall_clock_timers_of_idle_cases_wait_until_the_partition_is_caught_up(
    make_rig: MakeRig,
) -> None:
    """With the wall clock past the grid deadline (2025-10-01), a backlog must not fire idle
    cases' timers (earlier events may still be in it); once caught up, each fires once."""
    settings = load_settings({"clock": "wall", "partitions": 1, "batch_max_records": 1})
    fake = FakeTransaction({settings.topic_case_events: 1}, per_poll=1)
    for n in range(3):
        line = report(f"roof-{n}", "2025-09-26T10:00:00+08:00")
        fake.append(settings.topic_case_events, 0, line, key_of(line))
    clock = FixedClock(datetime.fromisoformat("2025-10-02T00:00:00+08:00"))
    rig = make_rig(fake, settings, clock=clock)

    def types() -> list[str]:
        return [r["type"] for r in fake.records(settings.topic_transitions)]

    rig.loop.turn()
    rig.loop.turn()  # roof-0 is idle and overdue, but roof-2 is still unread
    assert not fake.caught_up(TopicPartition(settings.topic_case_events, 0))
    assert types() == ["case.transitioned"] * 2
    rig.loop.turn()  # caught up: the due timers fire
    assert types().count("sla.warning") == types().count("sla.breached") == 3
    commits = fake.commits
    rig.loop.turn()
    assert fake.commits == commits, "nothing new is due: no transaction"
    breached = {r["case_id"] for r in fake.records(settings.topic_transitions)
                if r["type"] == "sla.breached"}  # fmt: skip
    assert breached == {"roof-0", "roof-1", "roof-2"}


def test_a_case_event_not_keyed_by_its_case_id_goes_to_the_dead_letter(make_rig: MakeRig) -> None:
    """Key discipline (DESIGN §3): a wrong key or none is refused as `key_mismatch` and
    counted; the case is not opened on a partition that does not own it."""
    settings = load_settings({"clock": "events", "partitions": 1, "batch_max_records": PER_POLL})
    fake = FakeTransaction({settings.topic_case_events: 1})
    lines = [report(f"roof-{n}", "2025-09-26T10:00:00+08:00") for n in range(3)]
    for line, key in zip(lines, [b"roof-0", b"roof-0", None], strict=True):
        fake.append(settings.topic_case_events, 0, line, key)
    rig = make_rig(fake, settings)
    rig.drain()
    dead = fake.records(settings.topic_dead_letter)
    assert [(r["reason"], r["case_id"], r["origin"]) for r in dead] == [
        ("key_mismatch", "roof-1", f"{settings.topic_case_events}/0/1"),
        ("key_mismatch", "roof-2", f"{settings.topic_case_events}/0/2"),
    ]
    assert "Kafka key 'roof-0' is not the event's case_id 'roof-1'" in dead[0]["detail"]
    assert [c.case_id for c in rig.store.cases(0)] == ["roof-0"]
    rejected = rig.prom.get_sample_value(
        "fengqiao_events_rejected_total", {"reason": "key_mismatch"}
    )
    assert rejected == 2


def test_adapter_loop_translates_dead_letters_and_counts_only_committed_batches() -> None:
    """A native message becomes one canonical event (keyed by case id), an invalid one a dead
    letter; an aborted batch counts nothing and is committed once on the next turn."""
    settings = load_settings({})
    topics = intake_topics(settings)
    topic = next(t for t, channel in topics.items() if channel == "grid")
    fake = FakeTransaction(dict.fromkeys(topics, 1))
    fake.append(topic, 0, encode(SAMPLES["grid"][0]))
    fake.append(topic, 0, encode(INVALID["grid"][0]), headers=[("trace", b"t-1")])
    fake.script = ["abort"]
    loop = AdapterLoop(settings, transaction=fake)
    fake.open(sorted(topics), None)

    loop.turn()
    assert (fake.output, fake.committed, loop.translated, loop.refused) == ([], {}, 0, 0)
    loop.turn()
    loop.turn()  # nothing left to read: no transaction
    assert fake.commits == 2
    assert fake.committed == {TopicPartition(topic, 0): 2}
    assert (loop.translated, loop.refused) == (1, 1)
    events = [s for s in fake.output if s.topic == settings.topic_case_events]
    assert [s.key for s in events] == [b"grid:ZJ-2026-0001"]
    assert json.loads(events[0].value or b"")["type"] == "case.reported"
    [dead] = fake.records(settings.topic_dead_letter)
    assert dead["reason"] == "schema_invalid"
    assert dead["headers"] == {"trace": "t-1"}
    assert len(fake.output) == 2
