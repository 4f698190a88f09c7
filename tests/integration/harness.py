"""Helpers for the engine's integration tests: produce inputs, run `fengqiao run` as a real
process, read committed outputs, and compute what `simulate` says they must be."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import defaultdict
from collections.abc import Iterable
from datetime import timedelta
from pathlib import Path
from typing import Any

from kafka import KafkaConsumer, KafkaProducer, TopicPartition

from consumers.kafka.engine_loop import DEFAULT_RETENTION
from engine.core import Engine
from engine.registry import WorkflowRegistry
from engine.replay import Replay

ROOT = Path(__file__).resolve().parents[2]


def produce(bootstrap: str, topic: str, lines: Iterable[bytes], partitions: int) -> int:
    """Publish canonical events keyed by case_id (unparseable lines go to partition 0)."""
    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=5)
    count = 0
    for line in lines:
        key: bytes | None = None
        partition: int | None = None
        try:
            data = json.loads(line)
            key = str(data["case_id"]).encode()
            if str(data["case_id"]).startswith("tick-"):
                partition = int(str(data["case_id"]).removeprefix("tick-")) % partitions
        except (ValueError, KeyError, TypeError):
            partition = 0
        producer.send(topic, key=key, value=line, partition=partition)
        count += 1
    producer.flush()
    producer.close()
    return count


def tick_events(partitions: int, at: str) -> list[bytes]:
    """One event per partition at `at`: moves every partition's event-time watermark there
    (the `events` clock's equivalent of `simulate --until`)."""
    return [
        json.dumps({
            "event_id": f"tick-{p}", "case_id": f"tick-{p}", "type": "case.reported",
            "occurred_at": at, "source": "grid",
            "payload": {"workflow": "dispute-escalation", "attributes": {"category": "tick"}},
        }).encode()
        for p in range(partitions)
    ]  # fmt: skip


def read_all(
    bootstrap: str,
    topic: str,
    *,
    expect: int,
    timeout_s: float,
    quiet_s: float = 2.0,
    keys: bool = False,
) -> list[dict[str, Any]]:
    """Committed records of `topic`: waits until `expect` arrived, then until nothing new came
    for `quiet_s` (so extras, or the rest when `expect` is only a lower bound, are seen).
    `keys`: each record also carries its Kafka key (text, or None) as `_kafka_key`."""
    consumer = KafkaConsumer(
        bootstrap_servers=bootstrap, group_id=None, isolation_level="read_committed",
        enable_auto_commit=False, auto_offset_reset="earliest",
    )  # fmt: skip
    partitions = consumer.partitions_for_topic(topic) or set()
    consumer.assign([TopicPartition(topic, p) for p in partitions])
    consumer.seek_to_beginning()
    out: list[dict[str, Any]] = []
    deadline = time.monotonic() + timeout_s
    settle: float | None = None
    while time.monotonic() < deadline:
        before = len(out)
        for messages in consumer.poll(timeout_ms=300).values():
            out.extend(
                {**json.loads(m.value), "_kafka_key": m.key.decode() if m.key else None}
                if keys else json.loads(m.value)
                for m in messages
            )  # fmt: skip
        if len(out) >= expect:
            if settle is None or len(out) > before:
                settle = time.monotonic() + quiet_s
            if time.monotonic() >= settle:
                break
    consumer.close()
    return out


def simulate(
    workflows: Path, lines: list[bytes], retention: timedelta | None = DEFAULT_RETENTION
) -> list[dict[str, Any]]:
    """What `simulate` says, with the engine's retention (`run` retires closed cases after the
    default `FENGQIAO_RETENTION_DAYS` unless a test sets it)."""
    replay = Replay(Engine(WorkflowRegistry.load(workflows), retention))
    out: list[dict[str, Any]] = []
    for i, line in enumerate(lines):
        out.extend(r.model_dump(mode="json") for r in replay.feed(line, f"sim:{i}"))
    return out


def by_case(records: Iterable[dict[str, Any]]) -> dict[str, list[str]]:
    """Case records grouped per case in seq order, as canonical JSON (order across cases is
    free in Kafka; within a case it is the contract)."""
    grouped: dict[str, list[tuple[int, str]]] = defaultdict(list)
    for r in records:
        if r["type"] != "event.rejected":
            grouped[r["case_id"]].append((r["seq"], json.dumps(r, sort_keys=True)))
    return {case: [j for _, j in sorted(items)] for case, items in grouped.items()}


def rejections(records: Iterable[dict[str, Any]]) -> list[tuple[str, str, str]]:
    return sorted(
        (str(r["case_id"]), str(r["event_id"]), r["reason"])
        for r in records
        if r["type"] == "event.rejected"
    )


class EngineProcess:
    """`fengqiao run` in a subprocess, configured through FENGQIAO_* variables."""

    def __init__(self, env: dict[str, str], log_path: Path) -> None:
        self.env = {**os.environ, **env, "PYTHONPATH": str(ROOT)}
        self.log_path = log_path
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with self.log_path.open("ab") as log:  # the child keeps its own descriptor
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "consumers.cli.main", "run"],
                cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT,
            )  # fmt: skip

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=30)

    def terminate(self, timeout_s: float = 60) -> int:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout=timeout_s)

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None
