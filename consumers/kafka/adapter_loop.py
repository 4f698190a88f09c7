"""The intake adapters: native messages on `fengqiao.intake.<channel>` → canonical case events.

Stateless and exactly-once: each batch's canonical events (to `case-events`, keyed by case_id),
refusals (to `dead-letter`) and consumed offsets go in one Kafka transaction, so a crash never
publishes an event twice nor loses one, and adapters scale by adding processes to their group.
The channel of a message is the topic it came from — the only thing that authenticates a source.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Any

import structlog
from kafka import KafkaConsumer, KafkaProducer, OffsetAndMetadata, TopicPartition
from kafka.errors import KafkaError, ProducerFencedError

from consumers.kafka.membership import Membership, heartbeat_interval_ms, state_name
from consumers.runtime.settings import TRANSACTIONAL_RETRY_BACKOFF_MS, Settings, kafka_client_config
from engine.intake import IntakeContext, Refused, translate
from engine.records import rejection
from schemas.intake.channels import CHANNELS
from schemas.records import FieldProblem

log = structlog.get_logger("fengqiao.adapters")

INTAKE_PREFIX = "fengqiao.intake."


def intake_topics(settings: Settings) -> dict[str, str]:
    """Topic → channel, for every channel."""
    return {f"{settings.intake_topic_prefix}{channel}": channel for channel in CHANNELS}


@dataclass
class _Batch:
    sends: list[tuple[str, bytes | None, bytes]] = field(default_factory=list)
    offsets: dict[TopicPartition, OffsetAndMetadata] = field(default_factory=dict)


class AdapterLoop:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.stop = threading.Event()
        self.alive_at = time.monotonic()
        self.membership = Membership(session_timeout_s=settings.session_timeout_ms / 1000)
        self.topics = intake_topics(settings)
        secret = settings.person_key_secret
        self.ctx = IntakeContext(
            person_key_secret=secret.get_secret_value().encode() if secret else None
        )
        self._client = {**kafka_client_config(settings), "reconnect_backoff_max_ms": 2000}
        self._consumer: KafkaConsumer | None = None
        self._producer: KafkaProducer | None = None
        self.translated = 0
        self.refused = 0

    def run(self) -> None:
        self._producer = KafkaProducer(
            **self._client,
            transactional_id=f"{self.settings.transactional_id_prefix}-adapters-"
            f"{self.settings.instance_id}",
            transaction_timeout_ms=self.settings.transaction_timeout_ms,
            enable_idempotence=True,
            acks="all",
            retry_backoff_ms=TRANSACTIONAL_RETRY_BACKOFF_MS,
        )
        self._producer.init_transactions()
        self._consumer = KafkaConsumer(
            **self._client,
            group_id=self.settings.adapter_group_id,
            isolation_level="read_committed",
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            max_poll_records=self.settings.batch_max_records,
            session_timeout_ms=self.settings.session_timeout_ms,
            heartbeat_interval_ms=heartbeat_interval_ms(self.settings.session_timeout_ms),
        )
        self._consumer.subscribe(sorted(self.topics))
        self.membership.subscribe(time.monotonic())
        log.info("adapters.started", topics=len(self.topics))
        try:
            while not self.stop.is_set():
                self.alive_at = time.monotonic()
                meta = self._consumer.group_metadata()
                self.membership.observe(state_name(meta.state), meta.generation_id, self.alive_at)
                polled = self._consumer.poll(timeout_ms=self.settings.commit_interval_ms)
                if polled:
                    self._run_batch(polled)
        finally:
            self._consumer.close()
            self._producer.close()
            log.info("adapters.stopped")

    def _run_batch(self, polled: dict[TopicPartition, list[Any]]) -> None:
        batch = _Batch()
        for tp, messages in polled.items():
            channel = self.topics[tp.topic]
            for message in messages:
                self._translate(batch, channel, tp, message)
            batch.offsets[tp] = OffsetAndMetadata(messages[-1].offset + 1, "", -1)
        self._commit(batch)

    def _translate(self, batch: _Batch, channel: str, tp: TopicPartition, message: Any) -> None:
        raw: bytes = message.value or b""
        result = translate(channel, raw, self.ctx)
        if isinstance(result, Refused):
            origin = f"{tp.topic}/{tp.partition}/{message.offset}"
            headers = {k: v.decode("utf-8", "replace") for k, v in message.headers or [] if v}
            record = rejection(
                None, origin, "malformed" if result.reason == "malformed" else "schema_invalid",
                result.detail, original=raw, headers=headers,
                fields=[FieldProblem(path=e.path, message=e.message) for e in result.errors],
            )  # fmt: skip
            batch.sends.append((self.settings.topic_dead_letter, None,
                                record.model_dump_json().encode()))  # fmt: skip
            self.refused += 1
            return
        for event in result:
            batch.sends.append((self.settings.topic_case_events, event.case_id.encode(),
                                event.model_dump_json().encode()))  # fmt: skip
            self.translated += 1

    def _commit(self, batch: _Batch) -> None:
        producer, consumer = self._producer, self._consumer
        assert producer is not None
        assert consumer is not None
        try:
            producer.begin_transaction()
            for topic, key, value in batch.sends:
                producer.send(topic, key=key, value=value)
            producer.send_offsets_to_transaction(batch.offsets, consumer.group_metadata())
            producer.commit_transaction()
        except ProducerFencedError:
            log.error("adapters.fenced", reason="another process took our transactional id")
            self.stop.set()
            raise
        except KafkaError as err:
            log.warning("adapters.transaction_aborted", error=type(err).__name__)
            try:
                producer.abort_transaction()
            except KafkaError as abort_err:
                log.warning("adapters.abort_failed", error=type(abort_err).__name__)
            for tp in batch.offsets:
                committed = consumer.committed(tp)
                if committed is None:
                    consumer.seek_to_beginning(tp)
                else:
                    consumer.seek(tp, committed)
            time.sleep(0.2)
