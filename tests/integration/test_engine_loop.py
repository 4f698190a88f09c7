"""`fengqiao run` against a real Kafka broker: committed output equals `simulate`.

Every test runs the engine as a real process (`python -m consumers.cli.main run`) with the `events`
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

from consumers.kafka.topics import create_topics
from consumers.runtime.settings import Settings
from consumers.synthetic import synthetic_stream
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
        "FENGQIAO_ROLE": "engine",
        "FENGQIAO_INTAKE_TOPIC_PREFIX": f"{prefix}.intake.",
    }
    settings = Settings(
        bootstrap_servers=bootstrap,
        topic_case_events=env["FENGQIAO_TOPIC_CASE_EVENTS"],
        topic_transitions=env["FENGQIAO_TOPIC_TRANSITIONS"],
        topic_case_state=env["FENGQIAO_TOPIC_CASE_STATE"],
        topic_dead_letter=env["FENGQIAO_TOPIC_DEAD_LETTER"],
        intake_topic_prefix=env["FENGQIAO_INTAKE_TOPIC_PREFIX"],
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
@pytest.mark.timeout(600)
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
@pytest.mark.timeout(600)
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


def _report(case_id: str, at: str) -> bytes:
    return json.dumps({
        "event_id": f"{case_id}-0", "case_id": case_id, "type": "case.reported",
        "occurred_at": at, "source": "grid",
        "payload": {"workflow": "dispute-escalation", "attributes": {"category": "neighbour"}},
    }).encode()  # fmt: skip


@pytest.mark.parametrize("store", ["memory", "sqlite"])
def test_restart_restores_timers_and_a_timer_due_while_down_fires_once(
    kafka_bootstrap: str, unique_name: Callable[[str], str], tmp_path: Path, store: str
) -> None:
    settings, env = _setup(kafka_bootstrap, unique_name, partitions=2)
    env["FENGQIAO_CLOCK"] = "wall"
    env["FENGQIAO_STORE"] = "memory" if store == "memory" else f"sqlite:{tmp_path / 'cases.db'}"
    lines = [_report(f"roof-{n}", "2025-09-26T10:00:00+08:00") for n in range(3)]
    produce(kafka_bootstrap, settings.topic_case_events, lines, partitions=2)
    log = tmp_path / "engine.log"

    before = EngineProcess({**env, "FENGQIAO_FIXED_NOW": "2025-09-26T12:00:00+08:00"}, log)
    before.start()
    opened = read_all(kafka_bootstrap, settings.topic_transitions, expect=3, timeout_s=90)
    assert before.terminate() == 0, log.read_text()
    assert [r["type"] for r in opened] == ["case.transitioned"] * 3

    # Down over the grid deadline (2025-10-01 00:00): on restart the restored timers fire once.
    after = EngineProcess({**env, "FENGQIAO_FIXED_NOW": "2025-10-02T00:00:00+08:00"}, log)
    after.start()
    fired = read_all(kafka_bootstrap, settings.topic_transitions, expect=12, timeout_s=90)
    assert after.terminate() == 0, log.read_text()
    again = EngineProcess({**env, "FENGQIAO_FIXED_NOW": "2025-10-02T00:00:00+08:00"}, log)
    again.start()
    time.sleep(8)  # long enough to restore, join and fire anything still due
    assert again.terminate() == 0, log.read_text()
    final = read_all(kafka_bootstrap, settings.topic_transitions, expect=12, timeout_s=10)

    assert len(fired) == len(final) == 12
    for n in range(3):
        types = [r["type"] for r in sorted(final, key=lambda r: r["seq"])
                 if r["case_id"] == f"roof-{n}"]  # fmt: skip
        assert types == ["case.transitioned", "sla.warning", "sla.breached", "case.transitioned"]
    breaches = [r for r in final if r["type"] == "sla.breached"]
    assert {r["deadline"] for r in breaches} == {"2025-10-01T00:00:00+08:00"}
