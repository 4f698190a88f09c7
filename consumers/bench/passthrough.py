"""The baseline of `fengqiao bench kafka`: an exactly-once stage with no logic.

`python -m consumers.bench.passthrough [--writes-per-event K]`, configured by the same
FENGQIAO_* variables as the engine. It consumes `read_committed`, produces in one transaction per
batch, and commits the offsets with `send_offsets_to_transaction`, through the engine loop's own
transaction helper, client settings and batching (polls gathered up to the commit interval while
behind). So the engine ÷ pass-through ratio isolates what the engine adds.

By default every input is written once, unchanged, to the transitions topic. With
`--writes-per-event K --bytes-per-write B` it writes as many records and bytes as the engine
does (K = the engine's records sent per event, measured in the same run; B = the mean size of
its records): one to the transitions topic, and the rest to the compacted case-state topic
under the case's key, as the engine's snapshots go, each value padded with JSON whitespace to
B bytes. That run measures the engine's Kafka writes alone, as if its core and its own shell
work cost nothing: the ceiling of engine ÷ pass-through for this client library and this
record contract.
"""

from __future__ import annotations

import argparse
import signal
import threading

from kafka import ConsumerRebalanceListener, TopicPartition

from consumers.kafka.gather import Gathered, behind, poll_records
from consumers.kafka.transaction import KafkaTransaction, group_instance_id
from consumers.runtime.settings import Settings, load_settings
from engine.ports import Send


class _Ready(ConsumerRebalanceListener):  # type: ignore[misc]  # kafka-python is untyped
    """Says when the pass-through holds its partitions; gives back what a rebalance takes (as
    `EngineLoop._release` does)."""

    def __init__(self, gathered: Gathered, transaction: KafkaTransaction) -> None:
        self.gathered = gathered
        self.transaction = transaction

    def _release(self, partitions: list[TopicPartition]) -> None:
        for tp, offset in self.gathered.drop({tp.partition for tp in partitions}).items():
            self.transaction.seek(tp, offset)

    def on_partitions_revoked(self, revoked: list[TopicPartition]) -> None:
        self._release(revoked)

    def on_partitions_assigned(self, assigned: list[TopicPartition]) -> None:
        self._release(assigned)
        print("passthrough.ready", flush=True)


class Copies:
    """How many records each input is written as: K on average, spread evenly (an input is
    written once or more; the fractions carry over), so that N inputs give round(N × K)."""

    def __init__(self, per_event: float) -> None:
        if not per_event >= 1:  # NaN too
            raise ValueError(f"writes per event must be at least 1, not {per_event}")
        self.per_event = per_event
        self.owed = 0.0

    def next(self) -> int:
        self.owed += self.per_event
        copies = int(self.owed + 1e-9)
        self.owed -= copies
        return copies


def sends_for(settings: Settings, partition: int, key: bytes | None, value: bytes, *,
              copies: int, size: int = 0) -> list[Send]:  # fmt: skip
    """The first copy goes to the transitions topic, the others to the case-state topic; a
    value shorter than `size` is padded with spaces (still the same JSON)."""
    value = value.ljust(size)
    first = Send(settings.topic_transitions, partition, key, value)
    return [first, *[Send(settings.topic_case_state, partition, key, value)] * (copies - 1)]


def passthrough(
    settings: Settings, stop: threading.Event, writes_per_event: float = 1.0, size: int = 0
) -> None:
    """Consume → transactional produce of the same bytes → offsets, until `stop`."""
    transaction = KafkaTransaction(
        settings, transactional_id=settings.transactional_id, group_id=settings.group_id,
        group_instance_id=group_instance_id(settings, "engine"),
    )  # fmt: skip
    gathered = Gathered(settings.commit_interval_ms, settings.batch_max_records)
    poll_max = poll_records(settings.batch_max_records)
    copies = Copies(writes_per_event)
    transaction.open([settings.topic_case_events], _Ready(gathered, transaction))
    try:
        while not stop.is_set():
            polled = gathered.add(transaction.poll(gathered.wait_ms()))
            lags = [transaction.lag(tp) for tp in transaction.consumer.assignment()]
            if not gathered.ready(behind(polled, poll_max, lags)):
                continue
            batch = gathered.take()
            sends = [
                send
                for tp, messages in batch.items()
                for m in messages
                for send in sends_for(
                    settings, tp.partition, m.key, m.value, copies=copies.next(), size=size
                )
            ]
            offsets = {tp: messages[-1].offset + 1 for tp, messages in batch.items() if messages}
            transaction.commit(sends, offsets)
    finally:
        transaction.close()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m consumers.bench.passthrough")
    parser.add_argument("--writes-per-event", type=float, default=1.0,
                        help="records written per input, on average (default 1)")  # fmt: skip
    parser.add_argument("--bytes-per-write", type=int, default=0,
                        help="pad shorter values to this size (default: as read)")  # fmt: skip
    args = parser.parse_args(argv)
    if not args.writes_per_event >= 1:  # NaN too
        parser.error("--writes-per-event must be at least 1")
    if args.bytes_per_write < 0:
        parser.error("--bytes-per-write must not be negative")
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    passthrough(load_settings(), stop, args.writes_per_event, args.bytes_per_write)


if __name__ == "__main__":
    main()
