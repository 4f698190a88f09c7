"""`fengqiao run`: the exactly-once Kafka loop around the core (DESIGN §1, §6).

One consumer-group member reads `case-events` with `read_committed`; for each batch it opens one
Kafka transaction holding the output records, the changed case snapshots (to the compacted,
co-partitioned `case-state` changelog, same partition number as the input) and the consumed
offsets with the consumer's group metadata (KIP-447 fencing). The state store and the timer heap
are updated only after the commit succeeds; after an abort they are rebuilt from the store and
the consumer is rewound to the committed offsets. So a crash at any instant loses nothing and
duplicates nothing: the next owner of a partition restores its cases from the changelog and
resumes from the committed offsets.

Timers fire through the same path (`Replay.advance`) inside the transaction. With the wall clock,
idle cases' timers fire only while the partition is caught up, so a backlog never lets the wall
clock overtake events that happened earlier; with the `events` clock the watermark is the latest
`occurred_at` seen, exactly as in `fengqiao simulate`.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

import structlog
from kafka import (
    ConsumerRebalanceListener,
    KafkaConsumer,
    KafkaProducer,
    OffsetAndMetadata,
    TopicPartition,
)
from kafka.errors import KafkaError, ProducerFencedError
from structlog.contextvars import bind_contextvars, unbind_contextvars

from consumers.kafka.membership import GroupWatch, Membership, heartbeat_interval_ms
from consumers.kafka.topics import TopicsError, admin_client
from consumers.runtime.metrics import EngineMetrics
from consumers.runtime.settings import TRANSACTIONAL_RETRY_BACKOFF_MS, Settings, kafka_client_config
from engine.case import Case
from engine.core import Engine
from engine.problems import FengqiaoError
from engine.replay import Replay
from engine.stores import StateStore, encode_case
from schemas.records import OutputRecord

log = structlog.get_logger("fengqiao.engine")

RESTORE_CHUNK = 5_000
"""Changelog records written to the store per restore step (bounds memory on big partitions)."""

MESSAGE_CONTEXT = ("topic", "partition", "offset", "workflow")
"""Log context bound per input message (never the case id: DESIGN §7)."""


class Clock(Protocol):
    """Where the shell gets time from: the wall clock in production, fixed ones in tests."""

    def now(self) -> datetime: ...


class WallClock:
    def now(self) -> datetime:
        return datetime.now(UTC)  # noqa: TID251 - the shell's one wall clock


@dataclass(frozen=True)
class FixedClock:
    """A wall clock stopped at one instant (FENGQIAO_FIXED_NOW): tests and drills."""

    instant: datetime

    def now(self) -> datetime:
        return self.instant


@dataclass
class _Partition:
    replay: Replay
    committed: int | None = None
    """Offset after the last committed input record (None: nothing consumed yet here)."""


@dataclass
class _Batch:
    sends: list[tuple[str, int | None, bytes | None, bytes | None]] = field(default_factory=list)
    offsets: dict[TopicPartition, OffsetAndMetadata] = field(default_factory=dict)
    records: list[OutputRecord] = field(default_factory=list)
    events: int = 0
    duplicates: int = 0

    @property
    def empty(self) -> bool:
        return not self.sends and not self.offsets


class EngineLoop:
    """Owns the consumer, the transactional producer and the per-partition replays."""

    def __init__(
        self,
        settings: Settings,
        engine: Engine,
        store: StateStore,
        metrics: EngineMetrics,
        clock: Clock | None = None,
    ) -> None:
        self.settings = settings
        self.engine = engine
        self.store = store
        self.metrics = metrics
        fixed = settings.fixed_now
        self.clock: Clock = clock or (FixedClock(fixed) if fixed else WallClock())
        self.stop = threading.Event()
        self.membership = Membership(session_timeout_s=settings.session_timeout_ms / 1000)
        self.alive_at = time.monotonic()
        self.partitions: dict[int, _Partition] = {}
        self.fatal: str | None = None
        # kafka-python backs off up to 30 s between reconnects by default: far too long to notice
        # a broker that came back; the engine retries every second or two instead.
        self._client = {**kafka_client_config(settings), "reconnect_backoff_max_ms": 2000}
        self._consumer: KafkaConsumer | None = None
        self._producer: KafkaProducer | None = None
        self._watch: GroupWatch | None = None

    # -- lifecycle ---------------------------------------------------------------------------

    def run(self) -> None:
        """Run until `stop` is set; then finish the batch, commit, leave the group."""
        self._producer = KafkaProducer(
            **self._client,
            transactional_id=f"{self.settings.transactional_id_prefix}-{self.settings.instance_id}",
            transaction_timeout_ms=self.settings.transaction_timeout_ms,
            enable_idempotence=True,
            acks="all",
            retry_backoff_ms=TRANSACTIONAL_RETRY_BACKOFF_MS,
        )
        # Fences a predecessor with our transactional id and aborts its open transaction, so the
        # restore below reads a changelog without a dangling transaction of ours.
        self._producer.init_transactions()
        self._consumer = KafkaConsumer(
            **self._client,
            group_id=self.settings.group_id,
            isolation_level="read_committed",
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            max_poll_records=self.settings.batch_max_records,
            session_timeout_ms=self.settings.session_timeout_ms,
            heartbeat_interval_ms=heartbeat_interval_ms(self.settings.session_timeout_ms),
        )
        self._consumer.subscribe([self.settings.topic_case_events], listener=_Listener(self))
        self.membership.subscribe(time.monotonic())
        watch = GroupWatch(self.membership, self.metrics, self.settings.topic_case_events,
                           group_members=self._group_members)  # fmt: skip
        self._watch = watch
        log.info("engine.started", group=self.settings.group_id)
        try:
            while not self.stop.is_set():
                self.alive_at = time.monotonic()
                watch.turn(self._consumer)
                polled = self._consumer.poll(timeout_ms=self._poll_timeout_ms())
                if self.partitions and not self.stop.is_set():
                    self._run_batch(polled)
        finally:
            self._close()
        if self.fatal is not None:
            raise FengqiaoError(self.fatal)

    def _group_members(self) -> int | None:
        """How many members the engine's group has (asked only while this one holds nothing);
        None when the broker cannot say right now."""
        try:
            with admin_client(self.settings, timeout_ms=5_000) as admin:
                described = admin.describe_groups([self.settings.group_id])
        except (TopicsError, KafkaError) as err:
            log.warning("group.describe_failed", error=type(err).__name__)
            return None
        return len(described.get(self.settings.group_id, {}).get("members", []))

    def _close(self) -> None:
        if self._consumer is not None:
            self._consumer.close()  # leaves the group: partitions move at once
        if self._producer is not None:
            self._producer.close()
        log.info("engine.stopped")

    def _poll_timeout_ms(self) -> int:
        """Never sleep past the next due timer (wall clock), nor past the commit interval."""
        interval = self.settings.commit_interval_ms
        if self.settings.clock != "wall":
            return interval
        dues = [d for p in self.partitions.values() if (d := p.replay.timers.peek()) is not None]
        if not dues:
            return interval
        wait = (min(dues) - self.clock.now()).total_seconds() * 1000
        return int(min(interval, max(0.0, wait)))

    # -- rebalancing ---------------------------------------------------------------------------

    def assign(self, assigned: Iterable[TopicPartition]) -> None:
        assigned = list(assigned)
        # /readyz: not ready while a partition's cases are being restored
        self.membership.assigning(frozenset(tp.partition for tp in assigned))
        if self._watch is not None:
            self._watch.rebalanced()
        for tp in sorted(assigned, key=lambda t: t.partition):
            started = time.monotonic()
            self.partitions[tp.partition] = self._restore(tp.partition)
            self.metrics.restore_seconds.observe(time.monotonic() - started)
            log.info("partition.restored", partition=tp.partition,
                     cases=self.store.count(tp.partition))  # fmt: skip
        self._refuse_unloaded_versions()
        self._refresh_gauges()
        self.membership.assignment_restored()

    def _refuse_unloaded_versions(self) -> None:
        """Open cases whose workflow version is not loaded must not be touched (their events
        would all be dead-lettered): stop, naming the versions and how many cases use them."""
        missing: dict[str, int] = {}
        for p in self.partitions:
            for case in self.store.cases(p):
                if not case.closed and self.engine.workflow_of(case) is None:
                    key = f"{case.workflow}@{case.version}"
                    missing[key] = missing.get(key, 0) + 1
        if missing:
            used = ", ".join(f"{k} ({n} open cases)" for k, n in sorted(missing.items()))
            self.fatal = (
                f"workflow versions in use but not loaded: {used}; keep their files in the "
                "workflows folder, or move the cases with `fengqiao migrate` first"
            )
            log.error("engine.refused", reason="unloaded workflow versions", versions=used)
            self.stop.set()

    def revoke(self, revoked: Iterable[TopicPartition]) -> None:
        """Batches commit before every poll, so no transaction is open here: just let go."""
        self.membership.revoked()
        for tp in revoked:
            self.partitions.pop(tp.partition, None)
            self.metrics.forget_partition(tp.partition)
            if not self.store.persistent:
                self.store.drop_partition(tp.partition)
            log.info("partition.revoked", partition=tp.partition)
        self._refresh_gauges()

    def _restore(self, partition: int) -> _Partition:
        """Bring the store up to date with the changelog partition, then index its timers."""
        start = self.store.changelog_offset(partition) if self.store.persistent else None
        if not self.store.persistent:
            self.store.drop_partition(partition)
        tp = TopicPartition(self.settings.topic_case_state, partition)
        # `earliest`: a checkpoint that fell out of the log (retention) means a full restore.
        reader = KafkaConsumer(**self._client, group_id=None, isolation_level="read_committed",
                               enable_auto_commit=False, auto_offset_reset="earliest")  # fmt: skip
        try:
            reader.assign([tp])
            if start is None:
                reader.seek_to_beginning(tp)
            else:
                reader.seek(tp, start)
            end = reader.end_offsets([tp])[tp]
            upserts: dict[str, bytes] = {}  # the snapshots as read (the store decodes them)
            deletes: set[str] = set()
            while (remaining := end - reader.position(tp)) > 0:
                self.metrics.restore_remaining.labels(str(partition)).set(remaining)
                for message in reader.poll(timeout_ms=500).get(tp, []):
                    _restore_one(message, upserts, deletes)
                if len(upserts) + len(deletes) >= RESTORE_CHUNK:
                    self.store.write_snapshots(partition, upserts, deletes, reader.position(tp))
                    upserts, deletes = {}, set()
            self.store.write_snapshots(partition, upserts, deletes, end)
            self.metrics.restore_remaining.labels(str(partition)).set(0)
        finally:
            reader.close()
        replay = Replay(self.engine, load=lambda case_id: self.store.get(partition, case_id))
        self.metrics.tally.drop(partition)  # the gauges are recounted from the restored cases
        for case in self.store.cases(partition):
            replay.track(case)
            self.metrics.tally.add(partition, case)
            if self.settings.clock == "events" and (
                replay.watermark is None or case.clock > replay.watermark
            ):
                replay.watermark = case.clock
        return _Partition(replay)

    # -- one batch, one transaction -------------------------------------------------------------

    def _run_batch(self, polled: dict[TopicPartition, list[Any]]) -> None:
        started = time.monotonic()
        self._refresh_lag()
        batch = _Batch()
        for tp, messages in polled.items():
            part = self.partitions.get(tp.partition)
            if part is None:
                continue
            for message in messages:
                self._feed(batch, part, tp, message)
            batch.offsets[tp] = OffsetAndMetadata(messages[-1].offset + 1, "", -1)
        unbind_contextvars(*MESSAGE_CONTEXT)
        if self.settings.clock == "wall":
            self._fire_idle_timers(batch)
        changes = {p: part.replay.take_changes() for p, part in self.partitions.items()}
        for p, cases in changes.items():
            for case_id, case in cases.items():
                value = encode_case(case).encode()
                batch.sends.append((self.settings.topic_case_state, p, case_id.encode(), value))
        if batch.empty:
            return
        if self._commit(batch):
            before = {p: {c: self.store.get(p, c) for c in cases} for p, cases in changes.items()}
            for p, cases in changes.items():
                if cases:
                    self.store.write(p, cases)
            self._count(batch, before, changes)
            self.metrics.batch_seconds.observe(time.monotonic() - started)
            self._refresh_gauges()

    def _feed(self, batch: _Batch, part: _Partition, tp: TopicPartition, message: Any) -> None:
        """One input message into the batch, logging with where it came from as context."""
        bind_contextvars(topic=tp.topic, partition=tp.partition, offset=message.offset)
        unbind_contextvars("workflow")
        origin = f"{tp.topic}/{tp.partition}/{message.offset}"
        batch.events += 1
        duplicates = part.replay.stats.duplicates
        for record in part.replay.feed(message.value or b"", origin):
            if record.type == "event.rejected":
                known = part.replay.cases.get(record.case_id or "")
                if known is not None:
                    bind_contextvars(workflow=known.workflow)
                # Only the reason: the detail may quote the input, which the dead letter keeps.
                log.info("event.rejected", reason=record.reason)
            else:
                bind_contextvars(workflow=record.workflow)
            self._emit(batch, record, message.headers)
        if part.replay.stats.duplicates > duplicates:
            batch.duplicates += 1

    def _fire_idle_timers(self, batch: _Batch) -> None:
        assert self._consumer is not None
        now = self.clock.now()
        for p, part in self.partitions.items():
            due = part.replay.timers.peek()
            if due is None or due > now or not self._caught_up(p):
                continue
            for record in part.replay.advance(now):
                self._emit(batch, record, None)

    def _caught_up(self, partition: int) -> bool:
        assert self._consumer is not None
        tp = TopicPartition(self.settings.topic_case_events, partition)
        highwater = self._consumer.highwater(tp)
        return highwater is not None and self._consumer.position(tp) >= highwater

    def _emit(
        self, batch: _Batch, record: OutputRecord, headers: list[tuple[str, bytes]] | None
    ) -> None:
        if record.type == "event.rejected":
            if headers:
                decoded = {k: v.decode("utf-8", "replace") for k, v in headers if v is not None}
                record = record.model_copy(update={"headers": decoded})
            topic = self.settings.topic_dead_letter
        else:
            topic = self.settings.topic_transitions
        key = record.case_id.encode() if record.case_id else None
        batch.sends.append((topic, None, key, record.model_dump_json().encode()))
        batch.records.append(record)

    def _commit(self, batch: _Batch) -> bool:
        """One transaction for the whole batch; on failure abort and rewind. True if committed."""
        producer, consumer = self._producer, self._consumer
        assert producer is not None
        assert consumer is not None
        try:
            started = time.monotonic()
            producer.begin_transaction()
            for topic, partition, key, value in batch.sends:
                producer.send(topic, key=key, value=value, partition=partition)
            if batch.offsets:
                producer.send_offsets_to_transaction(batch.offsets, consumer.group_metadata())
            producer.commit_transaction()
        except ProducerFencedError:
            log.error("engine.fenced", reason="another process took our transactional id")
            self.stop.set()
            raise
        except KafkaError as err:
            log.warning("transaction.aborted", error=type(err).__name__)
            self.metrics.transactions.labels("aborted").inc()
            self._abort_and_rewind()
            return False
        self.metrics.transactions.labels("committed").inc()
        self.metrics.transaction_seconds.observe(time.monotonic() - started)
        self.metrics.last_commit.set(time.time())
        return True

    def _abort_and_rewind(self) -> None:
        producer, consumer = self._producer, self._consumer
        assert producer is not None
        assert consumer is not None
        try:
            producer.abort_transaction()
        except KafkaError as err:
            log.warning("transaction.abort_failed", error=type(err).__name__)
        for p, part in self.partitions.items():
            part.replay.discard(self.store.cases(p))
            tp = TopicPartition(self.settings.topic_case_events, p)
            committed = consumer.committed(tp)
            if committed is None:
                consumer.seek_to_beginning(tp)
            else:
                consumer.seek(tp, committed)
        time.sleep(0.2)  # back off before retrying against a struggling broker

    def _count(
        self,
        batch: _Batch,
        before: dict[int, dict[str, Case | None]],
        changes: dict[int, dict[str, Case]],
    ) -> None:
        """Metrics of a committed batch. `before` holds the changed cases as they were: when
        they entered their previous state (time in state), what they counted in the gauges."""
        self.metrics.events.inc(batch.events)
        self.metrics.duplicates.inc(batch.duplicates)
        entered = {c: case.entered_at for old in before.values() for c, case in old.items() if case}
        self.metrics.observe_records(
            batch.records, committed_at=WallClock().now(), entered_before=entered.get
        )
        for p, cases in changes.items():
            for case_id, case in cases.items():
                self.metrics.tally.update(p, before[p][case_id], case)

    def _refresh_gauges(self) -> None:
        self.metrics.pending_timers.set(sum(len(p.replay.timers) for p in self.partitions.values()))
        self.metrics.cases.set(sum(self.store.count(p) for p in self.partitions))
        self.metrics.partitions.set(len(self.partitions))
        self.metrics.tally.publish()

    def _refresh_lag(self) -> None:
        """Lag per partition from the consumer's own view (no broker round trip: a partition
        whose position or highwater is not known yet keeps its last value)."""
        assert self._consumer is not None
        for p in self.partitions:
            tp = TopicPartition(self.settings.topic_case_events, p)
            highwater = self._consumer.highwater(tp)
            position = self._consumer.position(tp, timeout_ms=0) if highwater is not None else None
            if highwater is not None and position is not None:
                self.metrics.consumer_lag.labels(str(p)).set(max(0, highwater - position))


def _restore_one(message: Any, upserts: dict[str, bytes], deletes: set[str]) -> None:
    case_id = message.key.decode()
    if message.value is None:
        upserts.pop(case_id, None)
        deletes.add(case_id)
    else:
        upserts[case_id] = message.value
        deletes.discard(case_id)


class _Listener(ConsumerRebalanceListener):  # type: ignore[misc]
    def __init__(self, loop: EngineLoop) -> None:
        self.loop = loop

    def on_partitions_revoked(self, revoked: list[TopicPartition]) -> None:
        self.loop.revoke(revoked)

    def on_partitions_assigned(self, assigned: list[TopicPartition]) -> None:
        self.loop.assign(assigned)
