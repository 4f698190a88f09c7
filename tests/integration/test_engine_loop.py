"""`fengqiao run` against a real Kafka broker: committed output equals `simulate`.

Every test runs the engine as a real process (`python -m consumers.cli run`) with the `events`
clock, so the committed content of `fengqiao.transitions` can be compared, case by case, with
what the pure replay produces for the same input.
"""

from __future__ import annotations

import json
import random
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from consumers.bench_core import synthetic_stream
from consumers.settings import Settings
from consumers.topics import create_topics
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

WORKFLOWS = ROOT / "workflows"
END = "2026-12-31T00:00:00+08:00"


def _setup(
    bootstrap: str, unique_name: Callable[[str], str], partitions: int
) -> tuple[Settings, dict[str, str]]:
    prefix = unique_name("fq")
    env = {
        "FENGQIAO_BOOTSTRAP_SERVERS": bootstrap,
        "FENGQIAO_GROUP_ID": f"{prefix}-group",
        "FENGQIAO_TRANSACTIONAL_ID_PREFIX": prefix,
        "FENGQIAO_TOPIC_CASE_EVENTS": f"{prefix}.case-events",
        "FENGQIAO_TOPIC_TRANSITIONS": f"{prefix}.transitions",
        "FENGQIAO_TOPIC_CASE_STATE": f"{prefix}.case-state",
        "FENGQIAO_TOPIC_DEAD_LETTER": f"{prefix}.dead-letter",
        "FENGQIAO_PARTITIONS": str(partitions),
        "FENGQIAO_WORKFLOWS": str(WORKFLOWS),
        "FENGQIAO_CLOCK": "events",
        "FENGQIAO_HTTP_PORT": "0",
        "FENGQIAO_INSTANCE_ID": "a",
    }
    settings = Settings(
        bootstrap_servers=bootstrap,
        topic_case_events=env["FENGQIAO_TOPIC_CASE_EVENTS"],
        topic_transitions=env["FENGQIAO_TOPIC_TRANSITIONS"],
        topic_case_state=env["FENGQIAO_TOPIC_CASE_STATE"],
        topic_dead_letter=env["FENGQIAO_TOPIC_DEAD_LETTER"],
        partitions=partitions,
    )
    create_topics(settings)
    return settings, env


BAD_LINES = [
    b"not json at all",
    b'{"event_id": "x1", "case_id": "bench-1", "type": "mediation.failed"}',
    json.dumps({"event_id": "x2", "case_id": "nobody", "type": "mediation.failed",
                "occurred_at": "2025-03-05T10:00:00+08:00", "source": "grid"}).encode(),
]  # fmt: skip


def _stream(cases: int, partitions: int) -> list[bytes]:
    lines = synthetic_stream(cases)
    third = len(lines) // 3
    return lines[:third] + BAD_LINES + lines[third:] + tick_events(partitions, END)


def _expected(lines: list[bytes]) -> tuple[dict[str, list[str]], list[tuple[str, str, str]], int]:
    records = simulate(WORKFLOWS, lines)
    case_records = sum(1 for r in records if r["type"] != "event.rejected")
    return by_case(records), rejections(records), case_records


def test_events_in_records_out_with_dead_letters(
    kafka_bootstrap: str, unique_name: Callable[[str], str], tmp_path: Path
) -> None:
    settings, env = _setup(kafka_bootstrap, unique_name, partitions=3)
    lines = _stream(60, partitions=3)
    expected, expected_rejections, count = _expected(lines)
    produce(kafka_bootstrap, settings.topic_case_events, lines, partitions=3)
    engine = EngineProcess(env, tmp_path / "engine.log")
    engine.start()
    try:
        records = read_all(kafka_bootstrap, settings.topic_transitions, expect=count,
                           timeout_s=120)  # fmt: skip
        dead = read_all(kafka_bootstrap, settings.topic_dead_letter,
                        expect=len(expected_rejections), timeout_s=30)  # fmt: skip
    finally:
        code = engine.terminate()
    assert code == 0, (tmp_path / "engine.log").read_text()
    assert by_case(records) == expected
    assert rejections(dead) == expected_rejections
    assert {r["reason"] for r in dead} >= {"malformed", "schema_invalid", "unknown_case"}
    assert all(r["original"] for r in dead)


@pytest.mark.slow
def test_exactly_once_under_sigkill(
    kafka_bootstrap: str, unique_name: Callable[[str], str], tmp_path: Path
) -> None:
    partitions = 3
    settings, env = _setup(kafka_bootstrap, unique_name, partitions)
    lines = _stream(3400, partitions)
    assert len(lines) >= 10_000
    expected, expected_rejections, count = _expected(lines)
    assert len(expected) >= 200
    produce(kafka_bootstrap, settings.topic_case_events, lines, partitions)
    engine = EngineProcess(env, tmp_path / "engine.log")
    rng = random.Random(20261122)  # kill instants, not secrets
    started = time.monotonic()
    engine.start()
    kills = 0
    while kills < 5:
        time.sleep(rng.uniform(2.0, 7.0))
        engine.kill()
        kills += 1
        engine.start()
    records = read_all(kafka_bootstrap, settings.topic_transitions, expect=count,
                       timeout_s=300)  # fmt: skip
    elapsed = time.monotonic() - started
    dead = read_all(kafka_bootstrap, settings.topic_dead_letter,
                    expect=len(expected_rejections), timeout_s=30)  # fmt: skip
    assert engine.terminate() == 0
    print(f"crash test: {len(lines)} events, {kills} SIGKILLs, {len(records)} records, "
          f"{elapsed:.1f}s, {len(lines) / elapsed:.0f} events/s end to end")  # fmt: skip
    assert len(records) == count, "records lost or duplicated"
    assert by_case(records) == expected
    assert rejections(dead) == expected_rejections


@pytest.mark.slow
def test_two_processes_join_and_leave_mid_stream(
    kafka_bootstrap: str, unique_name: Callable[[str], str], tmp_path: Path
) -> None:
    partitions = 4
    settings, env = _setup(kafka_bootstrap, unique_name, partitions)
    lines = _stream(1500, partitions)
    expected, _, count = _expected(lines)
    chunks = [lines[: len(lines) // 3], lines[len(lines) // 3 : 2 * len(lines) // 3],
              lines[2 * len(lines) // 3 :]]  # fmt: skip
    first = EngineProcess(env, tmp_path / "a.log")
    second = EngineProcess({**env, "FENGQIAO_INSTANCE_ID": "b"}, tmp_path / "b.log")
    produce(kafka_bootstrap, settings.topic_case_events, chunks[0], partitions)
    first.start()
    time.sleep(5)
    second.start()  # joins mid-stream: partitions move to it through a rebalance
    produce(kafka_bootstrap, settings.topic_case_events, chunks[1], partitions)
    time.sleep(8)
    assert first.terminate() == 0  # leaves mid-stream: its partitions move to the second
    produce(kafka_bootstrap, settings.topic_case_events, chunks[2], partitions)
    records = read_all(kafka_bootstrap, settings.topic_transitions, expect=count,
                       timeout_s=240)  # fmt: skip
    assert second.terminate() == 0
    assert len(records) == count
    assert by_case(records) == expected
