"""The one Kafka transaction both loops (engine, adapters) use: consume, produce, commit together.

`KafkaTransaction` owns a transactional producer and a `read_committed` consumer in one group.
Each batch is one `commit(sends, offsets)`: begin, send every output, add the consumed offsets
with the consumer's group metadata (KIP-447: a zombie from an older generation cannot commit),
commit. What can go wrong is sorted here, once, into our errors (consumers/errors.py):

- the broker refused or timed out (retryable): the transaction is aborted, the consumer rewound
  to its committed offsets of every assigned partition, and `commit` returns False; the caller
  rewinds its own state (the store still has the last committed cases) and polls again;
- another process took our transactional id (`FencedError`, not retryable): raised; the process
  must stop, its successor resumes exactly once. Likewise when another consumer joined the group
  with our `group_instance_id` (static membership, KIP-345): `poll` raises `FencedError`.

Static membership is what makes a restart fast: a process killed and restarted with the same
`FENGQIAO_INSTANCE_ID` rejoins under the same `group_instance_id`, and the broker hands it the
dead member's partitions at once, without a rebalance and without waiting out the session
timeout. kafka-python 3.0.12 supports it (JoinGroup v5+ carries the id; a fenced id ends the join
with `FencedInstanceIdError`) but, like Java's client, never sends LeaveGroup for a static member
on close; `close` asks it to (as Java's `CloseOptions.LEAVE_GROUP`, KIP-1092 does), so SIGTERM
still moves the partitions at once.

It implements the `Transaction` port (engine/ports.py) the loops are written against, so the
loops' unit tests drive them with a fake in milliseconds (tests/unit/test_loops.py).
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Literal

import structlog
from kafka import (
    ConsumerRebalanceListener,
    KafkaConsumer,
    KafkaProducer,
    OffsetAndMetadata,
    TopicPartition,
)
from kafka.errors import (
    FencedInstanceIdError,
    IllegalStateError,
    InvalidProducerEpochError,
    KafkaError,
    ProducerFencedError,
)

from consumers.errors import FencedError
from consumers.kafka.gather import poll_records
from consumers.kafka.membership import heartbeat_interval_ms
from consumers.kafka.partitioner import KeyPartitioner
from consumers.kafka.rejoin import join_in_flight
from consumers.runtime.settings import TRANSACTIONAL_RETRY_BACKOFF_MS, Settings, kafka_client_config
from engine.ports import GroupView, Send

log = structlog.get_logger("fengqiao.kafka")

WATCH_TIMEOUT_MS = 2_000
"""The longest `group_lag` waits for one broker answer (the next look asks again)."""

ABORT_BACKOFF_S = 0.2
"""Pause after an abort before polling again (a struggling broker is not hammered)."""

_FATAL = (ProducerFencedError, InvalidProducerEpochError)

PRODUCER_BATCH_BYTES = 256 * 1024
"""kafka-python's `batch_size` for our transactional producers (default 16 KiB).

A batch's records are all sent before its commit, so fuller record batches cost nothing in
latency and save the producer's per-batch work. Measured 2026-11-30 (20,000 sends of a
~600-byte record per transaction, CPU time per send, alternating runs): 16 KiB 79-85 µs,
256 KiB 57-65 µs, 1 MiB 42-57 µs; 1 MiB sits at the broker's default `message.max.bytes`. gzip
cost more CPU (70 µs). A `linger_ms` would not hold batches back: kafka-python 3.0.12 starts a
flush at its first transaction commit and never ends it, so every batch is sendable at once."""


def client_config(settings: Settings) -> dict[str, object]:
    """`kafka_client_config` for our long-lived clients: kafka-python backs off up to 30 s
    between reconnects by default, far too long to notice a broker that came back."""
    return {**kafka_client_config(settings), "reconnect_backoff_max_ms": 2000}


def group_instance_id(settings: Settings, loop: Literal["engine", "adapters"]) -> str | None:
    """The consumer's `group.instance.id` (None: a dynamic member). The engine is a static
    member unless FENGQIAO_STATIC_MEMBERSHIP is off: its restart must not wait out the session
    timeout, since its SLA timers stop meanwhile. The adapters stay dynamic members: in the
    chaos run (a SIGKILL every few seconds) a static adapters member once stayed unjoined for
    good after its restarts, and an intake backlog only delays, never loses, what they carry."""
    if not settings.static_membership or loop == "adapters":
        return None
    return settings.instance_id


class KafkaTransaction:
    """The `Transaction` port over kafka-python (see the module docstring)."""

    def __init__(
        self,
        settings: Settings,
        *,
        transactional_id: str,
        group_id: str,
        group_instance_id: str | None = None,
        role: str = "engine",
    ) -> None:
        self.settings = settings
        self.role = role
        """Names its log events (`engine.fenced`, `adapters.fenced`: the runbooks look for them)."""
        self.transactional_id = transactional_id
        self.group_id = group_id
        self.group_instance_id = group_instance_id
        """Static membership (None: a dynamic member, which gets a new identity on every join)."""
        self._client = client_config(settings)
        self._producer: KafkaProducer | None = None
        self._consumer: KafkaConsumer | None = None

    @property
    def consumer(self) -> KafkaConsumer:
        if self._consumer is None:
            raise RuntimeError("open() the transaction first")
        return self._consumer

    def open(self, topics: Sequence[str], listener: ConsumerRebalanceListener | None) -> None:
        """Build both clients. `init_transactions` fences a predecessor with our transactional
        id and aborts its open transaction before we read anything."""
        s = self.settings
        self._producer = KafkaProducer(
            **self._client, transactional_id=self.transactional_id,
            transaction_timeout_ms=s.transaction_timeout_ms, enable_idempotence=True,
            acks="all", retry_backoff_ms=TRANSACTIONAL_RETRY_BACKOFF_MS,
            partitioner=KeyPartitioner(), batch_size=PRODUCER_BATCH_BYTES,
        )  # fmt: skip
        self._producer.init_transactions()
        self._consumer = KafkaConsumer(
            **self._client, group_id=self.group_id, isolation_level="read_committed",
            enable_auto_commit=False, auto_offset_reset="earliest",
            max_poll_records=poll_records(s.batch_max_records),
            session_timeout_ms=s.session_timeout_ms,
            heartbeat_interval_ms=heartbeat_interval_ms(s.session_timeout_ms),
            group_instance_id=self.group_instance_id,
        )  # fmt: skip
        if listener is None:
            self._consumer.subscribe(list(topics))
        else:
            self._consumer.subscribe(list(topics), listener=listener)

    def poll(self, timeout_ms: int) -> Mapping[TopicPartition, list[Any]]:
        try:
            polled: Mapping[TopicPartition, list[Any]] = self.consumer.poll(timeout_ms=timeout_ms)
        except FencedInstanceIdError as err:
            raise self._fenced(err, f"another process joined the group as "
                                    f"{self.group_instance_id!r}") from None  # fmt: skip
        return polled

    def commit(self, sends: Iterable[Send], offsets: Mapping[TopicPartition, int]) -> bool:
        """One transaction: the sends and the consumed offsets (next offset to read per
        partition). True if committed; False after an abort and rewind; raises FencedError."""
        producer, consumer = self._producer, self.consumer
        assert producer is not None
        try:
            producer.begin_transaction()
            for send in sends:
                future = producer.send(send.topic, key=send.key, value=send.value,
                                       partition=send.partition)  # fmt: skip
                if future.failed():  # refused before it was batched (e.g. not authorized)
                    raise future.exception
            if offsets:
                meta = {tp: OffsetAndMetadata(o, "", -1) for tp, o in offsets.items()}
                producer.send_offsets_to_transaction(meta, consumer.group_metadata())
            producer.commit_transaction()
        except _FATAL as err:
            raise self._fenced(err) from None
        except KafkaError as err:
            if self._producer_failed():
                raise self._fenced(err, "its producer is in a fatal state") from None
            log.warning("transaction.aborted", error=type(err).__name__)
            self._abort()
            self.rewind()
            time.sleep(ABORT_BACKOFF_S)
            return False
        return True

    def _fenced(self, err: BaseException, why: str = "another process took it") -> FencedError:
        log.error(f"{self.role}.fenced", error=type(err).__name__, reason=why)
        return FencedError(
            f"transactional id {self.transactional_id!r}: {why} ({type(err).__name__}); "
            "stopping: a restarted process (same FENGQIAO_INSTANCE_ID) resumes exactly once"
        )

    def _producer_failed(self) -> bool:
        """kafka-python's transaction manager in its fatal state (e.g. fenced while its sender
        bumped the epoch): every later begin/abort raises a plain KafkaError, so retrying would
        loop for ever. Read from the library's own flag (3.0.12: has_fatal_error)."""
        manager = getattr(self._producer, "_transaction_manager", None)
        check = getattr(manager, "has_fatal_error", None)
        return bool(check()) if callable(check) else False

    def _abort(self) -> None:
        assert self._producer is not None
        try:
            self._producer.abort_transaction()
        except _FATAL as err:
            raise self._fenced(err) from None
        except KafkaError as err:
            log.warning("transaction.abort_failed", error=type(err).__name__)

    def rewind(self, partitions: Iterable[TopicPartition] | None = None) -> None:
        """Seek `partitions` (default: all assigned) back to the group's committed offsets."""
        consumer = self.consumer
        for tp in partitions if partitions is not None else consumer.assignment():
            committed = consumer.committed(tp)
            if committed is None:
                consumer.seek_to_beginning(tp)
            else:
                consumer.seek(tp, committed)

    def seek(self, tp: TopicPartition, offset: int) -> None:
        self.consumer.seek(tp, offset)

    def caught_up(self, tp: TopicPartition) -> bool:
        """Whether our position reached the partition's high watermark (no broker round trip)."""
        highwater = self.consumer.highwater(tp)
        if highwater is None:
            return False
        position = self.consumer.position(tp, timeout_ms=0)  # never block the loop for it
        return position is not None and position >= highwater

    def lag(self, tp: TopicPartition) -> int | None:
        """Highwater minus position from the consumer's own view (None: not known yet, or the
        partition is not assigned to this member)."""
        try:
            highwater = self.consumer.highwater(tp)
        except IllegalStateError:
            return None
        if highwater is None:
            return None
        position = self.consumer.position(tp, timeout_ms=0)
        return None if position is None else max(0, highwater - position)

    def group(self) -> GroupView:
        meta = self.consumer.group_metadata()
        return GroupView(str(meta.state), meta.generation_id, join_in_flight(self.consumer))

    def group_lag(self, topic: str) -> tuple[int, int]:
        consumer = self.consumer
        partitions = sorted(consumer.partitions_for_topic(topic) or ())
        tps = [TopicPartition(topic, p) for p in partitions]
        if not tps:
            return 0, 0
        ends = consumer.end_offsets(tps, timeout_ms=WATCH_TIMEOUT_MS)
        lag = 0
        for tp in tps:
            committed = consumer.committed(tp, timeout_ms=WATCH_TIMEOUT_MS) or 0
            lag += max(0, ends.get(tp, 0) - committed)
        return len(tps), lag

    def rejoin(self) -> None:
        """Leave the group, also as a static member (the broker hands a static member that
        merely rejoins its old assignment, without a rebalance), and join again on the next
        poll: a rebalance, whose leader assigns from the topic's current metadata."""
        coordinator = getattr(self.consumer, "_coordinator", None)
        if coordinator is None:
            return
        own = coordinator.__dict__.get("is_dynamic_member")
        coordinator.is_dynamic_member = lambda: True
        try:
            coordinator.maybe_leave_group(reason="fengqiao: no member holds an input partition")
        finally:
            if own is None:
                del coordinator.is_dynamic_member
            else:
                coordinator.is_dynamic_member = own

    def close(self) -> None:
        """Leave the group (partitions move at once), also as a static member, and close the
        producer."""
        if self._consumer is not None:
            _leave_on_close(self._consumer)
            self._consumer.close()
        if self._producer is not None:
            self._producer.close()


def _leave_on_close(consumer: KafkaConsumer) -> None:
    """Make `consumer.close()` send LeaveGroup even for a static member.

    kafka-python 3.0.12 decides in `BaseCoordinator.is_dynamic_member()` (a static member "never
    sends LeaveGroup", as in Java without KIP-1092); its LeaveGroup already names our
    `group_instance_id`, which the broker needs to remove a static member. Answering True on
    this one coordinator sends it. A release without that method closes as it always did."""
    coordinator = getattr(consumer, "_coordinator", None)
    if coordinator is not None and callable(getattr(coordinator, "is_dynamic_member", None)):
        coordinator.is_dynamic_member = lambda: True
