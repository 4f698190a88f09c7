"""The view's consumer loop: `fengqiao.transitions` into the read model, exactly once.

What it reads: the engine's committed case records, on `fengqiao.transitions`
(`FENGQIAO_TOPIC_TRANSITIONS`), and the case reports on `fengqiao.case-events`
(`FENGQIAO_TOPIC_CASE_EVENTS`), only for the attributes no record carries (consumers/view/
reports.py), both with `isolation_level=read_committed`, so a record of an aborted transaction
is never projected. Not `fengqiao.dead-letter` (refused input belongs to no case's row), and
never `fengqiao.case-state`, whose snapshots are internal (DESIGN §8): every column of a row but
the attributes is a fold of the published records (consumers/view/fold.py).

Exactly once without Kafka's help: no consumer group and no committed Kafka offsets. The
consumer `assign()`s every partition of the topic itself and seeks each to the next offset
stored in the database, and each batch is projected in ONE database transaction that writes
the rows, the history and the new offsets together (consumers/view/projection.py). Whatever
instant the process dies at, the database holds the rows of exactly the records before its
stored offsets; the next start seeks there and goes on. When the projection finds that another
writer moved the offsets (`ReadModelConflictError`: two views on one database for a moment), or
the database failed, the batch was rolled back: the stored offsets are read again and every
partition is sought to them.

Around that:
- a database whose tables are another schema version's is rebuilt at start: dropped, made anew
  and read from the beginning of the topic (the read model is disposable, DESIGN §8);
- partitions added to the topic are picked up within `PARTITIONS_EVERY_S` plus the client's
  metadata age: they are assigned and read from their stored offset or the beginning;
- readiness (`ready()`, served at `/readyz`): caught up once, i.e. every partition's position
  reached the end offset it had when the view started. It stays ready afterwards (a burst of
  lag is what `fengqiao_view_consumer_lag` is for, not a reason to leave the load balancer);
- a record below a partition's log start (deleted by retention before the view read it) is
  lost to the view: said once per partition when it is assigned (`view.records_expired`), as
  is a database that read past a partition's end (`view.offsets_past_end`: the topic was made
  again; rebuild the read model).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import sqlalchemy as sa
import structlog
from kafka import KafkaConsumer, TopicPartition
from kafka.errors import IllegalStateError, KafkaError

from consumers.kafka.admin import TopicsError, admin_client
from consumers.kafka.transaction import client_config
from consumers.view.fold import TierOrder
from consumers.view.metrics import ViewMetrics
from consumers.view.projection import Consumed, ReadModelConflictError, project, stored_offsets
from consumers.view.settings import ViewConfig
from consumers.view.tables import SchemaState, cases, prepare, rebuild, schema_lock

log = structlog.get_logger("fengqiao.view")

POLL_MS = 500
"""Longest wait for records per turn: also how long SIGTERM waits at most for the loop."""
PARTITIONS_EVERY_S = 10.0
"""How often the topic's partitions are looked at again (from the client's metadata cache)."""
METADATA_MAX_AGE_MS = 30_000
"""How stale that cache may get (kafka-python's default, 5 minutes, is long for new partitions)."""
ROWS_EVERY_S = 15.0
"""How often the rows are counted for `fengqiao_view_cases` (a full count on PostgreSQL)."""
BACKOFF_S = (0.5, 10.0)
"""First and longest pause after a database failure before reading the offsets again."""

ConsumerFactory = Callable[[], Any]
"""Builds the Kafka consumer (tests pass a fake with the same methods)."""


def read_topics(config: ViewConfig) -> dict[str, str]:
    """The topics the view reads, each with the variable that names it."""
    return {
        config.kafka.topic_transitions: "FENGQIAO_TOPIC_TRANSITIONS",
        config.kafka.topic_case_events: "FENGQIAO_TOPIC_CASE_EVENTS",
    }


def topics_problem(config: ViewConfig, timeout_ms: int = 30_000) -> str | None:
    """Why the view cannot start on this broker (unreachable, refused credentials, a topic it
    reads missing), or None. The messages name the variables to check and no secret."""
    try:
        with admin_client(config.kafka, timeout_ms=timeout_ms) as admin:
            topics = set(admin.list_topics())
    except TopicsError as err:
        return str(err)
    except KafkaError as err:
        return f"cannot list the topics: {type(err).__name__}"
    for topic, variable in read_topics(config).items():
        if topic not in topics:
            return (
                f"topic '{topic}' ({variable}) does not exist: start the engine's topics "
                "first (`fengqiao topics create`)"
            )
    return None


class ViewConsumer:
    """`run()` until `stop` is set (or `open()`, `turn()`s, `close()`: the tests' steps; see the
    module docstring); `ready()` for `/readyz`."""

    def __init__(
        self,
        db: sa.Engine,
        tiers: TierOrder,
        config: ViewConfig,
        metrics: ViewMetrics,
        *,
        consumer: ConsumerFactory | None = None,
        metadata_max_age_ms: int = METADATA_MAX_AGE_MS,
    ) -> None:
        self.db = db
        self.tiers = tiers
        self.topics = tuple(read_topics(config))
        self.batch = config.view.view_batch
        self.metrics = metrics
        self._factory = consumer or (lambda: _kafka_consumer(config, metadata_max_age_ms))
        self.stop = threading.Event()
        self.alive_at = time.monotonic()
        self.schema: SchemaState | None = None
        self._consumer: Any = None
        self._assigned: set[TopicPartition] = set()
        self._targets: dict[TopicPartition, int] | None = None
        """End offsets at start, until caught up once; then None and `_ready` stays True."""
        self._ready = False
        self._behind: int | None = None
        """Offsets left to the start's end offsets, set by the loop (the Kafka client is not
        thread-safe: `/readyz`, on another thread, must not touch it)."""
        self._reseek: set[TopicPartition] = set()
        self._backoff = BACKOFF_S[0]
        self._partitions_at = self._rows_at = float("-inf")

    # -- lifecycle -----------------------------------------------------------------------------

    def prepare_database(self) -> SchemaState:
        """Make the tables; rebuild them when they are another version's (then the stored
        offsets are gone with the rows, and every partition is read from the beginning). Under
        `schema_lock`: of two views starting at once, one rebuilds, the other finds it done."""
        with schema_lock(self.db):
            state = prepare(self.db)
            if state == "stale":
                log.warning("view.rebuilding", reason="schema version changed")
                rebuild(self.db)
        self.schema = state
        log.info("view.database", schema=state)
        return state

    def run(self) -> None:
        """Consume until `stop` is set; the batch in hand is committed or rolled back whole."""
        self.open()
        try:
            while not self.stop.is_set():
                self.turn()
        finally:
            self.close()

    def open(self) -> None:
        """The tables ready, the Kafka consumer built (nothing assigned yet: the first turn)."""
        if self.schema is None:
            self.prepare_database()
        self._consumer = self._factory()
        log.info("view.started", topics=list(self.topics))

    def close(self) -> None:
        if self._consumer is not None:
            self._consumer.close()
            self._consumer = None
            log.info("view.stopped")

    def turn(self) -> None:
        """One turn: new partitions, pending seeks, one poll, one batch, the gauges."""
        now = time.monotonic()
        self.alive_at = now
        if now - self._partitions_at >= PARTITIONS_EVERY_S:
            self._partitions_at = now
            self._refresh_partitions()
        if self._reseek and not self._seek_stored():
            return
        if not self._assigned:
            self.stop.wait(POLL_MS / 1000)
            return
        if self._targets is None and not self._ready:
            self._targets = self._end_offsets(self._assigned)
        polled = self._consumer.poll(timeout_ms=POLL_MS, max_records=self.batch)
        items = [
            Consumed(tp.topic, tp.partition, m.offset, m.value)
            for tp in sorted(polled)
            for m in polled[tp]
        ]
        if items:
            self._project(items)
        self._refresh_lag()
        if time.monotonic() - self._rows_at >= ROWS_EVERY_S:
            self._count_rows()

    def ready(self) -> tuple[bool, str]:
        """Caught up once since the start (see the module docstring)."""
        if self._ready:
            return True, "ready"
        if self._behind is None:
            return False, f"waiting for the partitions of {', '.join(self.topics)}"
        return False, f"catching up: {self._behind} offsets of {', '.join(self.topics)} to read"

    # -- partitions and offsets ------------------------------------------------------------------

    def _refresh_partitions(self) -> None:
        found: set[TopicPartition] = set()
        for topic in self.topics:
            try:
                known = self._consumer.partitions_for_topic(topic)
            except KafkaError as err:
                log.warning("view.metadata_failed", error=type(err).__name__)
                return
            found |= {TopicPartition(topic, p) for p in known or ()}
        new = found - self._assigned
        if not new:
            return  # partitions are never removed from a topic; a missing topic keeps ours
        found |= self._assigned
        self._consumer.assign(sorted(found))
        self._assigned = found
        self._reseek |= new
        self.metrics.partitions.set(len(found))
        log.info("view.partitions_assigned",
                 partitions=[f"{tp.topic}/{tp.partition}" for tp in sorted(new)])  # fmt: skip
        self._warn_expired(new)

    def _seek_stored(self) -> bool:
        """Seek the partitions awaiting it to the offsets the database holds (the beginning
        when it holds none). False when the database failed (then try again later)."""
        wanted = self._reseek
        try:
            with self.db.connect() as conn:
                stored = stored_offsets(conn, [(tp.topic, tp.partition) for tp in wanted])
        except (sa.exc.OperationalError, sa.exc.InterfaceError) as err:
            self._database_failed(err)
            return False
        for tp in sorted(wanted):
            offset = stored.get((tp.topic, tp.partition))
            if offset is None:
                self._consumer.seek_to_beginning(tp)
            else:
                self._consumer.seek(tp, offset)
        self._reseek = set()
        return True

    def _end_offsets(
        self, partitions: Iterable[TopicPartition]
    ) -> dict[TopicPartition, int] | None:
        """Where "caught up" is, for readiness (None: the broker did not say; asked again)."""
        try:
            return dict(self._consumer.end_offsets(sorted(partitions)))
        except KafkaError as err:
            log.warning("view.end_offsets_failed", error=type(err).__name__)
            return None

    def _warn_expired(self, partitions: set[TopicPartition]) -> None:
        """Say when retention deleted records the view never projected (it cannot get them),
        and when the database has read past the partition's end: the topic was deleted and
        made again, and its new records (offsets from 0 again) would all be taken for old ones
        until the read model is rebuilt (drop its `view_` tables)."""
        try:
            starts = self._consumer.beginning_offsets(sorted(partitions))
            ends = self._consumer.end_offsets(sorted(partitions))
            with self.db.connect() as conn:
                stored = stored_offsets(conn, [(tp.topic, tp.partition) for tp in partitions])
        except (KafkaError, sa.exc.OperationalError, sa.exc.InterfaceError):
            return  # warnings only: not worth failing the start for
        for tp, start in starts.items():
            position = stored.get((tp.topic, tp.partition), 0)
            if start > position:
                log.warning("view.records_expired", topic=tp.topic, partition=tp.partition,
                            offsets=start - position)  # fmt: skip
            if position > ends.get(tp, position):
                log.error("view.offsets_past_end", topic=tp.topic, partition=tp.partition,
                          stored=position, end=ends[tp])  # fmt: skip

    def _position(self, tp: TopicPartition) -> int:
        try:
            position = self._consumer.position(tp, timeout_ms=0)
        except (IllegalStateError, KafkaError):
            return 0
        return int(position) if position is not None else 0

    # -- batches ---------------------------------------------------------------------------------

    def _project(self, items: list[Consumed]) -> None:
        started = time.monotonic()
        try:
            result = project(self.db, items, self.tiers)
        except ReadModelConflictError as err:
            self.metrics.retries.labels("conflict").inc()
            log.warning("view.conflict", detail=str(err))
            self._reseek |= self._assigned
            return
        except (sa.exc.OperationalError, sa.exc.InterfaceError) as err:
            self._database_failed(err)
            return
        self._backoff = BACKOFF_S[0]
        self.metrics.projected(result)
        self.metrics.batch_seconds.observe(time.monotonic() - started)
        self.metrics.last_batch.set(time.time())

    def _database_failed(self, err: sa.exc.DBAPIError) -> None:
        """Rolled back: read the stored offsets again once the database answers."""
        self.metrics.retries.labels("database").inc()
        log.warning("view.database_failed", error=type(err.orig).__name__,
                    retry_in_s=self._backoff)  # fmt: skip
        self._reseek |= self._assigned
        self.stop.wait(self._backoff)
        self._backoff = min(BACKOFF_S[1], self._backoff * 2)

    # -- gauges ----------------------------------------------------------------------------------

    def _refresh_lag(self) -> None:
        """Lag from the consumer's own view (highwater minus position, no broker round trip),
        and readiness: every partition reached the end offset it had at start."""
        positions: dict[TopicPartition, int] = {}
        for tp in self._assigned:
            try:
                highwater = self._consumer.highwater(tp)
            except IllegalStateError:
                continue
            positions[tp] = self._position(tp)
            if highwater is not None:
                lag = max(0, highwater - positions[tp])
                self.metrics.consumer_lag.labels(tp.topic, str(tp.partition)).set(lag)
        if self._targets is not None and not self._ready:
            self._caught_up(positions, self._targets)

    def _caught_up(self, positions: Mapping[TopicPartition, int],
                   targets: Mapping[TopicPartition, int]) -> None:  # fmt: skip
        self._behind = sum(max(0, end - positions.get(tp, 0)) for tp, end in targets.items())
        if self._behind == 0:
            self._ready = True
            self._targets = None
            self._rows_at = float("-inf")  # count the rows now, not a while later
            log.info("view.caught_up")

    def _count_rows(self) -> None:
        self._rows_at = time.monotonic()
        query = sa.select(cases.c.status, sa.func.count()).group_by(cases.c.status)
        try:
            with self.db.connect() as conn:
                counts = {str(status): int(n) for status, n in conn.execute(query)}
        except (sa.exc.OperationalError, sa.exc.InterfaceError):
            return  # the next batch reports the database's trouble
        for status in ("open", "closed"):
            self.metrics.cases.labels(status).set(counts.get(status, 0))


def _kafka_consumer(config: ViewConfig, metadata_max_age_ms: int) -> KafkaConsumer:
    """No group: offsets are the database's, never committed to Kafka (module docstring)."""
    return KafkaConsumer(
        **client_config(config.kafka), group_id=None, client_id="fengqiao-view",
        isolation_level="read_committed", enable_auto_commit=False,
        auto_offset_reset="earliest", max_poll_records=config.view.view_batch,
        metadata_max_age_ms=metadata_max_age_ms,
    )  # fmt: skip
