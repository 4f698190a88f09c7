"""`fengqiao run`: the exactly-once Kafka loop around the core (DESIGN §1, §6).

One consumer-group member reads `case-events` with `read_committed`. Each batch is one Kafka
transaction (consumers/kafka/transaction.py): one poll, or, while the member is behind, the
polls of up to the commit interval (consumers/kafka/gather.py). Every assigned partition's inputs go
through the core's one batch step (`engine.batch.BatchReplay.step`), and the transaction holds
the output records, the changed case snapshots (to the compacted, co-partitioned `case-state`
changelog, same partition number as the input) and the consumed offsets. Only after the commit
are the cases written to the state store and the batch confirmed; after an abort every
partition is rewound to what the store holds and the input to the committed offsets. So a crash
at any instant loses nothing and duplicates nothing: the next owner of a partition restores its
cases from the changelog and resumes from the committed offsets. Each input keeps its Kafka
key: an event not keyed by its `case_id` is refused (`key_mismatch`, engine/decode.py) rather
than applied on a partition that does not own its case.

Closed cases retire inside the same step too (engine/retention.py, `FENGQIAO_RETENTION_DAYS`):
a retired case is a tombstone in the transaction and a delete from the store after it commits;
a restore applies the tombstones it reads, so restore time and memory follow the cases that are
open or retained, not every case ever handled.

Timers fire inside the same step. With the wall clock, idle cases' timers fire only while the
partition is caught up, so a backlog never lets the wall clock overtake events that happened
earlier; with the `events` clock the watermark is the latest `occurred_at` seen, exactly as in
`fengqiao simulate`.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable, Mapping
from datetime import timedelta
from typing import Any

import structlog
from kafka import ConsumerRebalanceListener, TopicPartition
from structlog.contextvars import bind_contextvars, unbind_contextvars

from consumers.errors import StoppedError
from consumers.kafka.changelog import read_changelog
from consumers.kafka.gather import Gathered, behind, poll_records
from consumers.kafka.membership import GroupOwners, GroupWatch, Membership, describe_owners
from consumers.kafka.transaction import KafkaTransaction, group_instance_id
from consumers.runtime.clock import FixedClock, WallClock
from consumers.runtime.metrics import EngineMetrics
from consumers.runtime.observe import observe_batch
from consumers.runtime.settings import Settings
from engine.batch import BatchReplay, BatchResult, Input
from engine.core import Engine
from engine.decode import KafkaKey
from engine.ports import Clock, Send, StateStore, Transaction

log = structlog.get_logger("fengqiao.engine")

MESSAGE_CONTEXT = ("topic", "partition", "offset", "workflow")
"""Log context bound per input message (never the case id: DESIGN §7)."""


def retention_of(settings: Settings) -> timedelta | None:
    """`FENGQIAO_RETENTION_DAYS` as the core takes it (0: closed cases are kept for ever)."""
    return timedelta(days=settings.retention_days) if settings.retention_days else None


DEFAULT_RETENTION = timedelta(days=Settings.model_fields["retention_days"].default)
"""The service's retention when nothing is set: what a replay must use to equal `run`."""


class EngineLoop:
    """Owns the transaction port, the state store and one `BatchReplay` per assigned partition."""

    def __init__(
        self,
        settings: Settings,
        engine: Engine,
        store: StateStore,
        metrics: EngineMetrics,
        *,
        clock: Clock | None = None,
        transaction: Transaction | None = None,
    ) -> None:
        self.settings = settings
        self.engine = engine.with_retention(retention_of(settings))
        """The engine handed in, with the service's retention (a setting of `run`)."""
        self.store = store
        self.metrics = metrics
        fixed = settings.fixed_now
        self.clock: Clock = clock or (FixedClock(fixed) if fixed else WallClock())
        self.transaction: Transaction = transaction or KafkaTransaction(
            settings,
            transactional_id=f"{settings.transactional_id_prefix}-{settings.instance_id}",
            group_id=settings.group_id,
            group_instance_id=group_instance_id(settings, "engine"),
        )
        self.stop = threading.Event()
        self.membership = Membership(session_timeout_s=settings.session_timeout_ms / 1000)
        self.watch = GroupWatch(self.membership, metrics, [settings.topic_case_events],
                                group_owners=self._group_owners)  # fmt: skip
        self.alive_at = time.monotonic()
        self.partitions: dict[int, BatchReplay] = {}
        self.gathered = Gathered(settings.commit_interval_ms, settings.batch_max_records)
        self.poll_max = poll_records(settings.batch_max_records)
        """A full poll: the consumer's `max_poll_records`."""
        self.fatal: str | None = None

    # -- lifecycle ---------------------------------------------------------------------------

    def run(self) -> None:
        """Run until `stop` is set; then finish the batch, commit, leave the group."""
        self.transaction.open([self.settings.topic_case_events], _Listener(self))
        self.membership.subscribe(time.monotonic())
        log.info("engine.started", group=self.settings.group_id)
        try:
            while not self.stop.is_set():
                self.turn()
        finally:
            self.transaction.close()
            log.info("engine.stopped")
        if self.fatal is not None:
            raise StoppedError(self.fatal)

    def turn(self) -> None:
        """One turn of the loop: look at the group, poll, and run the batch once it is ready
        (at once when caught up; while behind, when the commit interval or the batch is full)."""
        self.alive_at = time.monotonic()
        self.watch.turn(self.transaction)
        polled = self.gathered.add(self.transaction.poll(self._poll_timeout_ms()))
        if not self.partitions or self.stop.is_set():
            return
        if self.gathered.count and not self.gathered.ready(self._behind(polled)):
            return
        self.run_batch(self.gathered.take())

    def _behind(self, polled: int) -> bool:
        topic = self.settings.topic_case_events
        lags = (self.transaction.lag(TopicPartition(topic, p)) for p in self.partitions)
        return behind(polled, self.poll_max, lags)

    def _poll_timeout_ms(self) -> int:
        """Never sleep past the commit interval of the batch being gathered (its timers fire
        when it runs), nor, with nothing gathered, past the next due timer (wall clock)."""
        interval = self.gathered.wait_ms()
        if self.settings.clock != "wall" or self.gathered.count:
            return interval
        # Only caught-up partitions fire idle timers: an overdue timer of one that is behind
        # must not turn the poll into a busy loop.
        dues = [d for p, part in self.partitions.items()
                if (d := part.next_due) is not None and self._caught_up(p)]  # fmt: skip
        if not dues:
            return interval
        wait = (min(dues) - self.clock.now()).total_seconds() * 1000
        return int(min(interval, max(0.0, wait)))

    def _group_owners(self) -> GroupOwners | None:
        """Who is in the engine's group and which input partitions they hold (asked only while
        this one holds nothing); None when the broker cannot say right now."""
        s = self.settings
        return describe_owners(s, s.group_id, [s.topic_case_events])

    # -- rebalancing ---------------------------------------------------------------------------

    def assign(self, assigned: Iterable[TopicPartition]) -> None:
        assigned = list(assigned)
        self._release(assigned)
        # /readyz: not ready while a partition's cases are being restored
        self.membership.assigning(frozenset((tp.topic, tp.partition) for tp in assigned))
        self.watch.rebalanced()
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
        """No transaction is open during a poll: give back what was gathered, and let go."""
        self._release(revoked)
        self.membership.revoked()
        for tp in revoked:
            self.partitions.pop(tp.partition, None)
            self.metrics.forget_partition(tp.partition)
            if not self.store.persistent:
                self.store.drop_partition(tp.partition)
            log.info("partition.revoked", partition=tp.partition)
        self._refresh_gauges()

    def _release(self, partitions: Iterable[TopicPartition]) -> None:
        """Drop what was gathered from `partitions` and read it again (consumers/kafka/gather.py:
        a partition this member keeps through an eager rebalance keeps its position)."""
        for tp, offset in self.gathered.drop({tp.partition for tp in partitions}).items():
            self.transaction.seek(tp, offset)

    def _restore(self, partition: int) -> BatchReplay:
        """Bring the store up to date with the changelog partition, then index its timers."""
        start = self.store.changelog_offset(partition) if self.store.persistent else None
        if not self.store.persistent:
            self.store.drop_partition(partition)
        gauge = self.metrics.restore_remaining.labels(str(partition))
        for chunk in read_changelog(self.settings, partition, start, remaining=gauge.set):
            self.store.write_snapshots(partition, chunk.upserts, chunk.deletes, chunk.position)
        self.metrics.tally.drop(partition)  # the gauges are recounted from the restored cases
        return BatchReplay(
            self.engine,
            load=lambda case_id: self.store.get(partition, case_id),
            restored=self._tallied(partition),
            resume_watermark=self.settings.clock == "events",
        )

    def _tallied(self, partition: int) -> Iterable[Any]:
        for case in self.store.cases(partition):
            self.metrics.tally.add(partition, case)
            yield case

    # -- one batch, one transaction -------------------------------------------------------------

    def run_batch(self, polled: Mapping[TopicPartition, list[Any]]) -> None:
        started = time.monotonic()
        self._refresh_lag()
        inputs: dict[int, list[Input]] = {}
        offsets: dict[TopicPartition, int] = {}
        for tp, messages in polled.items():
            if tp.partition not in self.partitions or not messages:
                continue
            inputs[tp.partition] = [_input(tp, m) for m in messages]
            offsets[tp] = messages[-1].offset + 1
        results = self._step(inputs)
        sends = self._sends(results)
        if not sends and not offsets:
            for p in results:
                self.partitions[p].confirm()
            return
        self._log_refusals(polled, results)
        committed_at = time.monotonic()
        if not self.transaction.commit(sends, offsets):
            self.metrics.transactions.labels("aborted").inc()
            for p, part in self.partitions.items():
                part.rewind(self.store.cases(p))
            return
        self.metrics.transactions.labels("committed").inc()
        self.metrics.transaction_seconds.observe(time.monotonic() - committed_at)
        self.metrics.last_commit.set(time.time())
        now = WallClock().now()
        for p, result in results.items():
            if result.changes:
                self.store.write(p, result.upserts, result.deletes)
            self.partitions[p].confirm()
            observe_batch(self.metrics, p, result, committed_at=now)
        self.metrics.batch_seconds.observe(time.monotonic() - started)
        self._refresh_gauges()

    def _step(self, inputs: Mapping[int, list[Input]]) -> dict[int, BatchResult]:
        """The core's batch step per partition: its inputs, then (wall clock, caught up) the
        timers due by now — including those its own inputs just made due."""
        now = self.clock.now() if self.settings.clock == "wall" else None
        results: dict[int, BatchResult] = {}
        for p, part in self.partitions.items():
            fire_due_at = now if now is not None and self._caught_up(p) else None
            due = part.next_due
            if p not in inputs and (fire_due_at is None or due is None or due > fire_due_at):
                continue
            # If the core fails, the log says where (never the case id: DESIGN §7).
            bind_contextvars(topic=self.settings.topic_case_events, partition=p)
            results[p] = part.step(inputs.get(p, []), fire_due_at=fire_due_at)
        unbind_contextvars(*MESSAGE_CONTEXT)
        return results

    def _sends(self, results: Mapping[int, BatchResult]) -> list[Send]:
        s = self.settings
        sends: list[Send] = []
        for p, result in results.items():
            for out in result.outputs:
                topic = s.topic_dead_letter if out.refused else s.topic_transitions
                sends.append(Send(topic, None, out.key, out.value))
            sends.extend(Send(s.topic_case_state, p, c.case_id.encode(), c.snapshot)
                         for c in result.changes)  # fmt: skip
        return sends

    def _log_refusals(
        self, polled: Mapping[TopicPartition, list[Any]], results: Mapping[int, BatchResult]
    ) -> None:
        """One line per refused input, with where it came from as context (only the reason:
        the detail may quote the input, which the dead letter keeps)."""
        messages = {tp.partition: (tp, ms) for tp, ms in polled.items()}
        for p, result in results.items():
            for out in result.outputs:
                if not out.refused or out.source is None or p not in messages:
                    continue
                tp, ms = messages[p]
                bind_contextvars(topic=tp.topic, partition=p, offset=ms[out.source].offset)
                unbind_contextvars("workflow")
                if out.workflow is not None:
                    bind_contextvars(workflow=out.workflow)
                log.info("event.rejected", reason=getattr(out.record, "reason", None))
        unbind_contextvars(*MESSAGE_CONTEXT)

    def _caught_up(self, partition: int) -> bool:
        tp = TopicPartition(self.settings.topic_case_events, partition)
        return self.transaction.caught_up(tp)

    def _refresh_gauges(self) -> None:
        self.metrics.pending_timers.set(sum(p.pending_timers for p in self.partitions.values()))
        self.metrics.cases.set(sum(self.store.count(p) for p in self.partitions))
        self.metrics.partitions.set(len(self.partitions))
        self.metrics.tally.publish()

    def _refresh_lag(self) -> None:
        """Lag per partition from the consumer's own view (no broker round trip: a partition
        whose position or highwater is not known yet keeps its last value)."""
        for p in self.partitions:
            lag = self.transaction.lag(TopicPartition(self.settings.topic_case_events, p))
            if lag is not None:
                self.metrics.consumer_lag.labels(str(p)).set(lag)


def _input(tp: TopicPartition, message: Any) -> Input:
    headers = {k: v.decode("utf-8", "replace") for k, v in message.headers or [] if v is not None}
    return Input(message.value or b"", f"{tp.topic}/{tp.partition}/{message.offset}",
                 headers or None, KafkaKey(message.key))  # fmt: skip


class _Listener(ConsumerRebalanceListener):  # type: ignore[misc]
    def __init__(self, loop: EngineLoop) -> None:
        self.loop = loop

    def on_partitions_revoked(self, revoked: list[TopicPartition]) -> None:
        self.loop.revoke(revoked)

    def on_partitions_assigned(self, assigned: list[TopicPartition]) -> None:
        self.loop.assign(assigned)
