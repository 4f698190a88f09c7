"""The intake adapters: native messages on `fengqiao.intake.<channel>` → canonical case events.

Stateless and exactly-once: each batch's canonical events (to `case-events`, keyed by case_id),
refusals (to `dead-letter`) and consumed offsets go in one Kafka transaction, so a crash never
publishes an event twice nor loses one, and adapters scale by adding processes to their group.
The channel of a message is the topic it came from — the only thing that authenticates a source.

Its `/readyz` and `/healthz` judge its group membership with the engine's rules
(consumers/kafka/membership.py): ready once stable and holding intake partitions (or a standby),
alive unless stuck unsettled. Why: an adapters member once stayed unjoined for good in the chaos
run while its probes, which asked only the engine, said ready, so no restart came. Its
`GroupWatch` also leaves and rejoins a stable group that holds none of the intake partitions.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

import structlog
from kafka import ConsumerRebalanceListener

from consumers.kafka.membership import GroupOwners, GroupWatch, Membership, describe_owners
from consumers.kafka.transaction import KafkaTransaction, group_instance_id
from consumers.runtime.intake_metrics import BatchTally, IntakeMetrics
from consumers.runtime.settings import Settings
from engine.channel_checks import load_channels
from engine.channels import Channel, channel_names
from engine.intake import IntakeContext, Translation, interpret
from engine.ports import Send, Transaction
from engine.records import rejection
from schemas.records import FieldProblem

log = structlog.get_logger("fengqiao.adapters")

LAG_EVERY_S = 5.0
"""How often the intake lag gauge is refreshed (from the consumer's own view: no round trip)."""


def intake_topics(settings: Settings, channels: Iterable[str] | None = None) -> dict[str, str]:
    """Topic → channel, for every channel file of the workflows folder."""
    names = channel_names(Path(settings.workflows)) if channels is None else channels
    return {f"{settings.intake_topic_prefix}{channel}": channel for channel in names}


class AdapterLoop:
    def __init__(
        self,
        settings: Settings,
        *,
        transaction: Transaction | None = None,
        channels: Mapping[str, Channel] | None = None,
        metrics: IntakeMetrics | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.settings = settings
        self.stop = threading.Event()
        self.clock = clock
        """Monotonic seconds for the probes' timing (a fake one in the unit tests)."""
        self.alive_at = clock()
        self.membership = Membership(session_timeout_s=settings.session_timeout_ms / 1000)
        if channels is None:
            channels = load_channels(Path(settings.workflows))
        self.topics = intake_topics(settings, channels)
        self.watch = GroupWatch(self.membership, None, sorted(self.topics), self._group_owners,
                                clock=clock, role="adapters")  # fmt: skip
        self.metrics = metrics or IntakeMetrics.create(None, channels)
        self._lag_at = 0.0
        secret = settings.person_key_secret
        self.ctx = IntakeContext(
            channels=channels,
            person_key_secret=secret.get_secret_value().encode() if secret else None,
        )
        self.transaction: Transaction = transaction or KafkaTransaction(
            settings,
            transactional_id=f"{settings.transactional_id_prefix}-adapters-{settings.instance_id}",
            group_id=settings.adapter_group_id,
            group_instance_id=group_instance_id(settings, "adapters"),
            role="adapters",
        )
        self.translated = 0
        self.refused = 0
        self._seen: set[Any] = set()

    def run(self) -> None:
        self.transaction.open(sorted(self.topics), _Listener(self))
        self.membership.subscribe(self.clock())
        log.info("adapters.started", topics=len(self.topics))
        try:
            while not self.stop.is_set():
                self.turn()
        finally:
            self.transaction.close()
            log.info("adapters.stopped")

    def turn(self) -> None:
        self.alive_at = self.clock()
        self.watch.turn(self.transaction)
        polled = self.transaction.poll(self.settings.commit_interval_ms)
        self._seen.update(tp for tp, messages in polled.items() if messages)
        if polled:
            self.run_batch(polled)
        if self.alive_at - self._lag_at >= LAG_EVERY_S:
            self._lag_at = self.alive_at
            self._refresh_lag()

    def _group_owners(self) -> GroupOwners | None:
        """Who is in the adapters' group and which intake partitions they hold (asked only
        while this member holds nothing); None when the broker cannot say right now."""
        s = self.settings
        return describe_owners(s, s.adapter_group_id, list(self.topics), role="adapters")

    def assign(self, assigned: Iterable[Any]) -> None:
        """Stateless: nothing to restore, the assignment is ready as soon as it arrives."""
        self.membership.assigning(frozenset((tp.topic, tp.partition) for tp in assigned))
        self.watch.rebalanced()
        self.membership.assignment_restored()

    def revoke(self) -> None:
        """Batches commit before every poll, so no transaction is open here: just let go."""
        self.membership.revoked()

    def run_batch(self, polled: Mapping[Any, list[Any]]) -> bool:
        """Translate, then one transaction; True if it committed (counts only then)."""
        sends: list[Send] = []
        offsets: dict[Any, int] = {}
        tally = BatchTally()
        refusals: list[dict[str, Any]] = []
        for tp, messages in polled.items():
            if not messages:
                continue
            channel = self.topics[tp.topic]
            for message in messages:
                raw: bytes = message.value or b""
                result = interpret(channel, raw, self.ctx)
                tally.add(channel, len(raw), result)
                sends.extend(self._sends(channel, tp, message, result, refusals))
            offsets[tp] = messages[-1].offset + 1
        if not self.transaction.commit(sends, offsets):
            return False
        for refusal in refusals:  # logged once, when the dead letter is committed
            log.warning("adapters.refused", **refusal)
        tally.publish(self.metrics)
        self.translated += sum(tally.events.values())
        self.refused += sum(n for k, n in tally.messages.items() if k[2] == "refused")
        return True

    def _sends(
        self, channel: str, tp: Any, message: Any, result: Translation, refusals: list[Any]
    ) -> list[Send]:
        """The canonical events of one native message, or its dead letter (keyed by the
        message's case when it could be read, so an integrator finds it by ticket number)."""
        refused = result.refused
        if refused is None:
            return [
                Send(self.settings.topic_case_events, None, event.case_id.encode(),
                     event.model_dump_json().encode())
                for event in result.events
            ]  # fmt: skip
        origin = f"{tp.topic}/{tp.partition}/{message.offset}"
        headers = {k: v.decode("utf-8", "replace") for k, v in message.headers or [] if v}
        record = rejection(
            None,
            origin,
            "malformed" if refused.reason == "malformed" else "schema_invalid",
            refused.detail,
            original=message.value or b"",
            headers=headers,
            fields=[FieldProblem(path=e.path, message=e.message) for e in refused.errors],
            case_id=refused.case_id,
            message_id=refused.message_id,
        )
        refusals.append(
            {"channel": channel, "kind": result.kind or None, "reason": refused.reason,
             "topic": tp.topic, "partition": tp.partition, "offset": message.offset,
             "message_id": refused.message_id, "case_id": refused.case_id,
             "fields": [e.path for e in refused.errors][:10]}
        )  # fmt: skip
        key = refused.case_id.encode() if refused.case_id else None
        return [Send(self.settings.topic_dead_letter, None, key, record.model_dump_json().encode())]

    def _refresh_lag(self) -> None:
        """Per channel: native messages not yet consumed, over the partitions this member has
        fetched from (a partition a rebalance moved away reports nothing)."""
        per_channel = dict.fromkeys(self.topics.values(), 0)
        for tp in self._seen:
            lag = self.transaction.lag(tp)
            if lag is not None:
                per_channel[self.topics[tp.topic]] += lag
        for channel, lag in per_channel.items():
            self.metrics.lag.labels(channel).set(lag)


class _Listener(ConsumerRebalanceListener):  # type: ignore[misc]
    """Tells the adapters' `Membership` what the group assigned (the probes read it)."""

    def __init__(self, loop: AdapterLoop) -> None:
        self.loop = loop

    def on_partitions_revoked(self, revoked: list[Any]) -> None:
        self.loop.revoke()

    def on_partitions_assigned(self, assigned: list[Any]) -> None:
        self.loop.assign(assigned)
