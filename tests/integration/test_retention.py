"""Retention on the real broker: closed cases past `FENGQIAO_RETENTION_DAYS` are tombstoned in the
compacted changelog and deleted from the store, and a restarted engine restores only the live ones.

The `events` clock and a tick far in the future on every partition (harness.tick_events) move
the watermark past the cases' closing + retention, as years of a service's life would.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from kafka import KafkaConsumer, TopicPartition

from consumers.runtime.settings import Settings, env_name
from tests.integration.harness import (
    ROOT,
    EngineProcess,
    by_case,
    produce,
    read_all,
    rejections,
    simulate,
    tick_events,
)

RETENTION = timedelta(days=30)
PARTITIONS = 2
FAR = "2026-06-01T00:00:00+08:00"
CLOSED = [f"ret-closed-{n}" for n in range(6)]
OPEN = [f"ret-open-{n}" for n in range(3)]


def _line(case_id: str, n: int, kind: str, at: str, **payload: Any) -> bytes:
    return json.dumps({"event_id": f"{case_id}-{n}", "case_id": case_id, "type": kind,
                       "occurred_at": at, "source": "grid",
                       "payload": payload}).encode()  # fmt: skip


def _report(case_id: str) -> bytes:
    return _line(case_id, 0, "case.reported", "2025-09-26T10:00:00+08:00",
                 workflow="dispute-escalation", attributes={"category": "neighbour"})  # fmt: skip


def _env(settings: Settings, store: str, log: Path) -> EngineProcess:
    names = ("bootstrap_servers", "topic_case_events", "topic_transitions", "topic_case_state",
             "topic_dead_letter", "intake_topic_prefix", "group_id", "transactional_id_prefix",
             "instance_id", "partitions", "workflows")  # fmt: skip
    env = {env_name(n): str(getattr(settings, n)) for n in names}
    env |= {"FENGQIAO_CLOCK": "events", "FENGQIAO_ROLE": "engine", "FENGQIAO_HTTP_PORT": "0",
            "FENGQIAO_STORE": store, "FENGQIAO_RETENTION_DAYS": str(RETENTION.days)}  # fmt: skip
    return EngineProcess(env, log)


def _changelog(settings: Settings) -> dict[str, list[bool]]:
    """Per case id, its committed changelog records in order: True a snapshot, False a
    tombstone (before any compaction, which keeps a tombstone for a day anyway)."""
    consumer = KafkaConsumer(bootstrap_servers=settings.bootstrap_servers, group_id=None,
                             isolation_level="read_committed",
                             enable_auto_commit=False)  # fmt: skip
    try:
        tps = [TopicPartition(settings.topic_case_state, p) for p in range(PARTITIONS)]
        consumer.assign(tps)
        consumer.seek_to_beginning(*tps)
        ends = consumer.end_offsets(tps)
        out: dict[str, list[bool]] = {}
        while any(consumer.position(tp) < ends[tp] for tp in tps):
            for messages in consumer.poll(timeout_ms=500).values():
                for m in messages:
                    out.setdefault(m.key.decode(), []).append(m.value is not None)
        return out
    finally:
        consumer.close()


def _restored(log: Path, timeout_s: float = 120) -> int:
    """Cases the engine logged as restored, once every partition was (JSON log lines)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        counts: dict[int, int] = {}
        for text in log.read_text(errors="replace").splitlines() if log.exists() else []:
            try:
                line = json.loads(text)
            except ValueError:
                continue
            if isinstance(line, dict) and line.get("event") == "partition.restored":
                counts[int(line["partition"])] = int(line["cases"])
        if len(counts) == PARTITIONS:
            return sum(counts.values())
        time.sleep(0.5)
    raise AssertionError(f"no restore of {PARTITIONS} partitions in {log}:\n{log.read_text()}")


@pytest.mark.timeout(400)
def test_closed_cases_are_tombstoned_and_a_restart_restores_only_the_live_ones(
    make_topics: Callable[..., Settings], tmp_path: Path
) -> None:
    settings = make_topics(partitions=PARTITIONS)
    closing = [_report(c) for c in CLOSED + OPEN] + [
        _line(c, 1, "mediation.succeeded", "2025-09-29T10:00:00+08:00") for c in CLOSED
    ]
    later = [*tick_events(PARTITIONS, FAR), _line(CLOSED[0], 2, "mediation.failed", FAR)]
    lines = closing + later
    want = simulate(ROOT / "workflows", lines, RETENTION)
    records = sum(1 for r in want if r["type"] != "event.rejected")
    sqlite = f"sqlite:{tmp_path / 'cases.db'}"

    first = _env(settings, sqlite, tmp_path / "first.log")
    first.start()
    try:
        produce(settings.bootstrap_servers, settings.topic_case_events, closing, PARTITIONS)
        opened_and_closed = len(CLOSED + OPEN) + 2 * len(CLOSED)  # transitioned, closed
        read_all(settings.bootstrap_servers, settings.topic_transitions,
                 expect=opened_and_closed, timeout_s=120, quiet_s=1)  # fmt: skip
        assert all(_changelog(settings)[c][-1] for c in CLOSED)  # kept: within the retention
        produce(settings.bootstrap_servers, settings.topic_case_events, later, PARTITIONS)
        got = read_all(settings.bootstrap_servers, settings.topic_transitions, expect=records,
                       timeout_s=120)  # fmt: skip
        dead = read_all(settings.bootstrap_servers, settings.topic_dead_letter, expect=1,
                        timeout_s=30, quiet_s=1)  # fmt: skip
    finally:
        assert first.terminate() == 0, (tmp_path / "first.log").read_text()
    assert by_case(got) == by_case(want)
    assert rejections(dead) == rejections(want) == [(CLOSED[0], f"{CLOSED[0]}-2", "unknown_case")]

    log = _changelog(settings)
    assert all(log[c][-1] is False and all(log[c][:-1]) for c in CLOSED), log
    assert all(all(log[c]) for c in OPEN), log
    live = len(OPEN) + PARTITIONS  # the open cases and one tick case per partition
    assert _restored(tmp_path / "first.log") == 0  # it started empty

    # A fresh store reads the whole changelog, tombstones included; the SQLite file resumes.
    for name, store in (("memory", "memory"), ("sqlite", sqlite)):
        again = _env(settings, store, tmp_path / f"{name}.log")
        again.start()
        try:
            restored = _restored(tmp_path / f"{name}.log")
        finally:
            assert again.terminate() == 0, (tmp_path / f"{name}.log").read_text()
        assert restored == live, name
