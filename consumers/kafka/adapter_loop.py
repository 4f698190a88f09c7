"""The intake adapters: native messages on `fengqiao.intake.<channel>` → canonical case events.

Stateless and exactly-once: each batch's canonical events (to `case-events`, keyed by case_id),
refusals (to `dead-letter`) and consumed offsets go in one Kafka transaction, so a crash never
publishes an event twice nor loses one, and adapters scale by adding processes to their group.
The channel of a message is the topic it came from — the only thing that authenticates a source.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping
from typing import Any

import structlog

from consumers.kafka.membership import Membership, state_name
from consumers.kafka.transaction import KafkaTransaction
from consumers.runtime.settings import Settings
from engine.intake import IntakeContext, Refused, translate
from engine.ports import Send, Transaction
from engine.records import rejection
from schemas.intake.channels import CHANNELS
from schemas.records import FieldProblem

log = structlog.get_logger("fengqiao.adapters")

INTAKE_PREFIX = "fengqiao.intake."


def intake_topics(settings: Settings) -> dict[str, str]:
    """Topic → channel, for every channel."""
    return {f"{settings.intake_topic_prefix}{channel}": channel for channel in CHANNELS}


class AdapterLoop:
    def __init__(self, settings: Settings, *, transaction: Transaction | None = None) -> None:
        self.settings = settings
        self.stop = threading.Event()
        self.alive_at = time.monotonic()
        self.membership = Membership(session_timeout_s=settings.session_timeout_ms / 1000)
        self.topics = intake_topics(settings)
        secret = settings.person_key_secret
        self.ctx = IntakeContext(
            person_key_secret=secret.get_secret_value().encode() if secret else None
        )
        self.transaction: Transaction = transaction or KafkaTransaction(
            settings,
            transactional_id=f"{settings.transactional_id_prefix}-adapters-{settings.instance_id}",
            group_id=settings.adapter_group_id,
            role="adapters",
        )
        self.translated = 0
        self.refused = 0

    def run(self) -> None:
        self.transaction.open(sorted(self.topics), None)
        self.membership.subscribe(time.monotonic())
        log.info("adapters.started", topics=len(self.topics))
        try:
            while not self.stop.is_set():
                self.turn()
        finally:
            self.transaction.close()
            log.info("adapters.stopped")

    def turn(self) -> None:
        self.alive_at = time.monotonic()
        view = self.transaction.group()
        self.membership.observe(state_name(view.state), view.generation, self.alive_at,
                                joining=view.joining)  # fmt: skip
        polled = self.transaction.poll(self.settings.commit_interval_ms)
        if polled:
            self.run_batch(polled)

    def run_batch(self, polled: Mapping[Any, list[Any]]) -> bool:
        """Translate, then one transaction; True if it committed (counts only then)."""
        sends: list[Send] = []
        offsets: dict[Any, int] = {}
        translated = refused = 0
        for tp, messages in polled.items():
            if not messages:
                continue
            channel = self.topics[tp.topic]
            for message in messages:
                out, was_refused = self._translate(channel, tp, message)
                sends.extend(out)
                refused += was_refused
                translated += 0 if was_refused else len(out)
            offsets[tp] = messages[-1].offset + 1
        if not self.transaction.commit(sends, offsets):
            return False
        self.translated += translated
        self.refused += refused
        return True

    def _translate(self, channel: str, tp: Any, message: Any) -> tuple[list[Send], bool]:
        """The sends for one native message, and whether it was refused (a dead letter)."""
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
            dead = Send(
                self.settings.topic_dead_letter, None, None, record.model_dump_json().encode()
            )
            return [dead], True
        return [
            Send(self.settings.topic_case_events, None, event.case_id.encode(),
                 event.model_dump_json().encode())
            for event in result
        ], False  # fmt: skip
