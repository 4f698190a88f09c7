"""A crashed engine restarted with the same `FENGQIAO_INSTANCE_ID` is back in seconds.

Before static membership the restarted process was a stranger to its group: the broker kept
the dead member's partitions until its session timed out (45 s by default), so `/readyz`
answered 503 for 42–45 s after every restart. Now the process rejoins under its
`group.instance.id` and the broker hands it its partitions at once. The test keeps the default
session timeout, so anything close to it fails the 10 s bound; it prints both figures.
"""

from __future__ import annotations

import json
import socket
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

from kafka import KafkaConsumer, KafkaProducer, TopicPartition

from consumers.kafka.admin import admin_client
from consumers.kafka.topics import create_topics
from consumers.runtime.settings import load_settings
from tests.integration.harness import ROOT, EngineProcess

PARTITIONS = 3
BOUND_S = 10.0
"""Restart → ready, and restart → first transition of a new event: at most this long."""


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _readyz(port: int) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=2) as answer:
            return answer.status, answer.read().decode()
    except urllib.error.HTTPError as err:
        return err.code, err.read().decode()
    except OSError as err:  # not listening yet
        return 0, type(err).__name__


def _metric(port: int, name: str) -> float | None:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2) as answer:
        for line in answer.read().decode().splitlines():
            if line.startswith(f"{name} "):
                return float(line.split()[1])
    return None


def _event(case_id: str) -> bytes:
    return json.dumps({
        "event_id": f"{case_id}-reported", "case_id": case_id, "type": "case.reported",
        "occurred_at": "2026-11-30T10:00:00+08:00", "source": "grid",
        "payload": {"workflow": "dispute-escalation", "attributes": {"category": "neighbour"}},
    }).encode()  # fmt: skip


class Transitions:
    """A `read_committed` reader of the transitions topic, opened once (its own start-up must
    not count in the figures)."""

    def __init__(self, bootstrap: str, topic: str) -> None:
        self.consumer = KafkaConsumer(
            bootstrap_servers=bootstrap, group_id=None, isolation_level="read_committed",
            enable_auto_commit=False, auto_offset_reset="earliest",
            fetch_max_wait_ms=50,  # the broker's default wait (500 ms) is not the engine's time
        )  # fmt: skip
        self.consumer.assign([TopicPartition(topic, p) for p in range(PARTITIONS)])
        self.seen: list[dict[str, Any]] = []

    def wait_for(self, case_id: str, timeout_s: float) -> float:
        """The instant (monotonic) a record of `case_id` was seen committed."""
        started = time.monotonic()
        while time.monotonic() - started < timeout_s:
            for messages in self.consumer.poll(timeout_ms=50).values():
                self.seen.extend(json.loads(m.value) for m in messages)
            if any(r.get("case_id") == case_id for r in self.seen):
                return time.monotonic()
        raise AssertionError(f"no transition of {case_id} within {timeout_s} s")


def test_a_sigkilled_engine_restarted_with_its_instance_id_is_back_in_seconds(
    kafka_bootstrap: str, unique_name: Callable[[str], str], tmp_path: Path
) -> None:
    prefix = unique_name("fq")
    port = _free_port()
    env = {
        "FENGQIAO_BOOTSTRAP_SERVERS": kafka_bootstrap, "FENGQIAO_GROUP_ID": f"{prefix}-group",
        "FENGQIAO_TRANSACTIONAL_ID_PREFIX": prefix,
        "FENGQIAO_TOPIC_CASE_EVENTS": f"{prefix}.case-events",
        "FENGQIAO_TOPIC_TRANSITIONS": f"{prefix}.transitions",
        "FENGQIAO_TOPIC_CASE_STATE": f"{prefix}.case-state",
        "FENGQIAO_TOPIC_DEAD_LETTER": f"{prefix}.dead-letter",
        "FENGQIAO_INTAKE_TOPIC_PREFIX": f"{prefix}.intake.", "FENGQIAO_PARTITIONS": str(PARTITIONS),
        "FENGQIAO_WORKFLOWS": str(ROOT / "workflows"), "FENGQIAO_CLOCK": "events",
        "FENGQIAO_ROLE": "engine", "FENGQIAO_INSTANCE_ID": "a",
        "FENGQIAO_HTTP_HOST": "127.0.0.1", "FENGQIAO_HTTP_PORT": str(port),
        # the defaults, stated (not inherited from the shell): the restart must not wait out 45 s
        "FENGQIAO_STATIC_MEMBERSHIP": "true", "FENGQIAO_SESSION_TIMEOUT_MS": "45000",
    }  # fmt: skip
    settings = load_settings({k.removeprefix("FENGQIAO_").lower(): v for k, v in env.items()})
    create_topics(settings)
    producer = KafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all")
    transitions = Transitions(kafka_bootstrap, settings.topic_transitions)
    log = tmp_path / "engine.log"
    engine = EngineProcess(env, log)
    try:
        engine.start()
        _wait_ready(port, engine, timeout_s=90, log=log)
        producer.send(settings.topic_case_events, key=b"before", value=_event("before")).get(30)
        transitions.wait_for("before", timeout_s=60)  # ready and processing

        engine.kill()
        restarted = time.monotonic()
        engine.start()
        producer.send(settings.topic_case_events, key=b"after", value=_event("after")).get(30)
        ready_s = _wait_ready(port, engine, timeout_s=90, log=log) - restarted
        assert _metric(port, "fengqiao_partitions_assigned") == PARTITIONS  # ready = holds them
        first_s = transitions.wait_for("after", timeout_s=90) - restarted
        print(f"fast restart: /readyz 200 after {ready_s:.1f} s, the first transition of an "
              f"event sent after the restart after {first_s:.1f} s (SIGKILL, same instance id, "
              "session timeout 45 s)")  # fmt: skip
        assert ready_s <= BOUND_S, log.read_text(errors="replace")[-3000:]
        assert first_s <= BOUND_S, log.read_text(errors="replace")[-3000:]
        # exactly once across the kill: no case record twice
        keys = [(r["case_id"], r["seq"]) for r in transitions.seen]
        assert len(keys) == len(set(keys)), keys
        # SIGTERM still leaves the group, static member or not: its partitions move at once
        assert engine.terminate() == 0, log.read_text(errors="replace")[-3000:]
        with admin_client(settings) as admin:
            group = admin.describe_groups([settings.group_id])[settings.group_id]
        assert group["members"] == [], group
    finally:
        producer.close()
        transitions.consumer.close()
        if engine.alive():
            code = engine.terminate()
            assert code == 0, log.read_text(errors="replace")[-3000:]


def _wait_ready(port: int, engine: EngineProcess, *, timeout_s: float, log: Path) -> float:
    """The instant (monotonic) `/readyz` first answered 200, polled every 50 ms; fails if the
    process exits or it never does."""
    started = time.monotonic()
    last: tuple[int, str] = (0, "")
    while time.monotonic() - started < timeout_s:
        assert engine.alive(), log.read_text(errors="replace")[-3000:]
        last = _readyz(port)
        if last[0] == 200:
            return time.monotonic()
        time.sleep(0.05)
    raise AssertionError(f"/readyz never 200 in {timeout_s} s; last {last}")
