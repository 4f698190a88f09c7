"""The chaos run: adapters + two engines under SIGKILLs, a broker restart and a paused zombie.

Run it as a test (`pytest -m slow tests/integration/test_chaos.py`) or by hand against its own
broker: `python -m tests.integration.chaos --events 100000 --kills 20`. Afterwards the committed
transitions, after applying their retractions, must equal `simulate` on the time-ordered input,
case by case, and every open case's deadline in the changelog must equal the simulated one.

Input: native grid-app messages (reports and mediation results) published to the grid intake
topic, each delivered up to `MAX_DELAY` after it happened (a grid app syncing when it has
signal), in delivery order: a mediation result may come after a later one, and after the timer
it was in time for. A case's report comes first. The shipped workflows run with a 7-day
correction horizon, so the engines correct what a late message changes (retractions); the
adapters translate, the engines apply. The expected output is the same pure translation and
replay of the messages in time order.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from pydantic import TypeAdapter

from consumers.kafka.engine_loop import DEFAULT_RETENTION
from consumers.kafka.topics import create_topics
from consumers.runtime.settings import Settings
from engine.core import Engine
from engine.intake import IntakeContext, Refused, translate
from engine.registry import WorkflowRegistry
from engine.replay import Replay
from engine.stores import decode_case
from schemas.records import OutputRecord
from tests.integration.harness import ROOT, EngineProcess, read_all, tick_events
from tests.integration.intake_samples import CHANNELS
from tests.unit.test_corrections import history as corrected_history

LOCAL_KAFKA = ROOT / "deploy" / "local" / "kafka"
START = datetime.fromisoformat("2025-03-03T09:00:00+08:00")
END = "2026-12-31T00:00:00+08:00"
PARTITIONS = 4
MAX_DELAY = timedelta(hours=48)
"""How late a message may be delivered: within the 7-day correction horizon (`HORIZON`)."""
HORIZON = "correction: {calendar_days: 7}\n"
RECORD: TypeAdapter[OutputRecord] = TypeAdapter(OutputRecord)
# (weight, results of the grid's mediation steps, in order)
SCRIPTS: list[tuple[float, list[tuple[str, bool]]]] = [
    (0.50, [("succeeded", False)]),
    (0.15, [("failed", False), ("succeeded", True)]),
    (0.10, [("failed", False), ("failed", False)]),
    (0.25, []),  # no news from the grid: the SLA timers carry it up the ladder
]


@dataclass
class ChaosReport:
    events: int = 0
    cases: int = 0
    kills: int = 0
    broker_restarts: int = 0
    zombie_pauses: int = 0
    records: int = 0
    retractions: int = 0
    seconds: float = 0.0
    exits: list[str] = field(default_factory=list)


def native_stream(
    cases: int, seed: int
) -> tuple[list[tuple[bytes, bytes]], list[tuple[bytes, bytes]]]:
    """(key, value) grid messages of `cases` cases: in time order, and in delivery order."""
    rng = random.Random(seed)
    timeline: list[tuple[datetime, int, bytes, dict[str, Any]]] = []
    delivered: list[tuple[datetime, int, bytes, dict[str, Any]]] = []
    weights = [w for w, _ in SCRIPTS]
    for n in range(cases):
        report_no = f"CH-{n:06d}"
        at = START + timedelta(minutes=rng.randrange(0, 60 * 24 * 300))
        timeline.append((at, n, report_no.encode(), {
            "kind": "patrol_report", "message_id": f"{report_no}-0", "report_no": report_no,
            "officer_id": "G01", "grid_code": f"FQ-{n % 40:02d}",
            "reported_at": at.isoformat(), "category": rng.choice(["neighbour", "family"]),
        }))  # fmt: skip
        reported = at
        delivered.append(timeline[-1])
        for i, (result, signed) in enumerate(rng.choices([s for _, s in SCRIPTS], weights)[0]):
            at += timedelta(hours=rng.randrange(3, 30))
            timeline.append((at, n, report_no.encode(), {
                "kind": "mediation_result", "message_id": f"{report_no}-{i + 1}",
                "report_no": report_no, "at": at.isoformat(), "result": result,
                "agreement_signed": signed,
            }))  # fmt: skip
            delay = MAX_DELAY * rng.random() if rng.random() < 0.5 else timedelta(0)
            delivered.append((max(at + delay, reported + timedelta(seconds=1)), *timeline[-1][1:]))
    timeline.sort(key=lambda item: (item[0], item[1]))
    delivered.sort(key=lambda item: (item[0], item[1]))
    return (
        [(key, json.dumps(m).encode()) for _, _, key, m in timeline],
        [(key, json.dumps(m).encode()) for _, _, key, m in delivered],
    )


def corrected_workflows(into: Path) -> Path:
    """The shipped workflows and channels, the grid's workflow with a correction horizon."""
    folder = into / "workflows"
    shutil.copytree(ROOT / "workflows", folder, ignore=shutil.ignore_patterns("tests"))
    path = folder / "dispute-escalation.yaml"
    path.write_text(path.read_text(encoding="utf-8") + HORIZON, encoding="utf-8")
    return folder


def history(records: list[dict[str, Any]]) -> dict[str, list[str]]:
    """Per case, the records left after applying retractions, numbered by position."""
    return corrected_history([RECORD.validate_python(r) for r in records])


def expected(
    messages: list[tuple[bytes, bytes]], ticks: list[bytes], workflows: Path
) -> tuple[dict[str, list[str]], Replay, int]:
    """What `simulate` says: per-case records, the final replay state, canonical event count
    (with the engines' retention: closed cases retire in both, the changelog tombstones them)."""
    replay = Replay(Engine(WorkflowRegistry.load(workflows), DEFAULT_RETENTION))
    ctx = IntakeContext(CHANNELS)
    out: list[dict[str, Any]] = []
    canonical = 0
    for i, (_, value) in enumerate(messages):
        events = translate("grid", value, ctx)
        assert not isinstance(events, Refused), events
        for event in events:
            canonical += 1
            line = event.model_dump_json().encode()
            out.extend(r.model_dump(mode="json") for r in replay.feed(line, f"chaos:{i}"))
    for j, tick in enumerate(ticks):
        out.extend(r.model_dump(mode="json") for r in replay.feed(tick, f"tick:{j}"))
    return history(out), replay, canonical


def _kafka(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "FENGQIAO_PYTHON": sys.executable}
    return subprocess.run([str(LOCAL_KAFKA), *args], capture_output=True, text=True, env=env,
                          timeout=300, check=False)  # fmt: skip


def final_cases(bootstrap: str, topic: str) -> dict[str, Any]:
    consumer = KafkaConsumer(
        bootstrap_servers=bootstrap,
        group_id=None,
        isolation_level="read_committed",
        enable_auto_commit=False,
    )
    try:
        tps = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or ()]
        consumer.assign(tps)
        consumer.seek_to_beginning(*tps)
        ends = consumer.end_offsets(tps)
        latest: dict[str, Any] = {}
        while any(consumer.position(tp) < ends[tp] for tp in tps):
            for messages in consumer.poll(timeout_ms=500).values():
                for m in messages:
                    latest[m.key.decode()] = decode_case(m.value) if m.value else None
        return latest
    finally:
        consumer.close()


def _settings(bootstrap: str, prefix: str, workflows: Path) -> tuple[Settings, dict[str, str]]:
    settings = Settings(bootstrap_servers=bootstrap, partitions=PARTITIONS,
                        topic_case_events=f"{prefix}.case-events",
                        topic_transitions=f"{prefix}.transitions",
                        topic_case_state=f"{prefix}.case-state",
                        topic_dead_letter=f"{prefix}.dead-letter",
                        intake_topic_prefix=f"{prefix}.intake.")  # fmt: skip
    env = {
        "FENGQIAO_BOOTSTRAP_SERVERS": bootstrap, "FENGQIAO_PARTITIONS": str(PARTITIONS),
        "FENGQIAO_TOPIC_CASE_EVENTS": settings.topic_case_events,
        "FENGQIAO_TOPIC_TRANSITIONS": settings.topic_transitions,
        "FENGQIAO_TOPIC_CASE_STATE": settings.topic_case_state,
        "FENGQIAO_TOPIC_DEAD_LETTER": settings.topic_dead_letter,
        "FENGQIAO_INTAKE_TOPIC_PREFIX": settings.intake_topic_prefix,
        "FENGQIAO_WORKFLOWS": str(workflows), "FENGQIAO_CLOCK": "events",
        "FENGQIAO_HTTP_PORT": "0", "FENGQIAO_GROUP_ID": f"{prefix}-engine",
        "FENGQIAO_ADAPTER_GROUP_ID": f"{prefix}-adapters",
        "FENGQIAO_TRANSACTIONAL_ID_PREFIX": prefix,
    }  # fmt: skip
    return settings, env


def _processes(env: dict[str, str], workdir: Path) -> dict[str, EngineProcess]:
    roles = {
        "engine-a": ("engine", "a"),
        "engine-b": ("engine", "b"),
        "adapters": ("adapters", "c"),
    }
    return {
        name: EngineProcess(
            {**env, "FENGQIAO_ROLE": role, "FENGQIAO_INSTANCE_ID": instance},
            workdir / f"{name}.log",
        )
        for name, (role, instance) in roles.items()
    }


def _publish(bootstrap: str, topic: str, messages: list[tuple[bytes | None, bytes]],
             partitions: list[int] | None = None) -> None:  # fmt: skip
    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=20)
    for i, (key, value) in enumerate(messages):
        producer.send(topic, key=key, value=value,
                      partition=partitions[i] if partitions else None)  # fmt: skip
    producer.flush()
    producer.close()


class _Chaos:
    """SIGKILLs of random processes at random instants, one zombie, one broker restart."""

    def __init__(self, procs: dict[str, EngineProcess], state: Path, seed: int) -> None:
        self.procs, self.state = procs, state
        self.rng = random.Random(seed)

    def run(self, kills: int, report: ChaosReport) -> None:
        for k in range(kills):
            time.sleep(self.rng.uniform(1.0, 4.0))
            name = self.rng.choice(sorted(self.procs))
            proc = self.procs[name]
            if proc.alive():
                proc.kill()
            else:
                report.exits.append(name)
            proc.start()
            report.kills += 1
            if k == kills // 3:
                self.zombie(report)
            if k == kills // 2:
                self.restart_broker(report)
        for name, proc in self.procs.items():
            if not proc.alive():
                report.exits.append(name)
                proc.start()

    def zombie(self, report: ChaosReport) -> None:
        victim = self.procs["engine-a"].proc
        assert victim is not None
        victim.send_signal(signal.SIGSTOP)
        time.sleep(16)  # past the 10 s session timeout: its partitions move to engine-b
        victim.send_signal(signal.SIGCONT)
        report.zombie_pauses += 1

    def restart_broker(self, report: ChaosReport) -> None:
        assert _kafka("stop", "--dir", str(self.state)).returncode == 0
        time.sleep(3)
        restarted = _kafka("start", "--dir", str(self.state))
        assert restarted.returncode == 0, restarted.stderr
        report.broker_restarts += 1


def run_chaos(
    cases: int, kills: int, seed: int, workdir: Path, log: Callable[[str], None] = print
) -> ChaosReport:
    report = ChaosReport()
    state = workdir / "broker"
    started = _kafka("start", "--dir", str(state))
    found = re.search(r"^bootstrap=(\S+)$", started.stdout, re.MULTILINE)
    assert found is not None, started.stderr
    bootstrap = found.group(1)
    procs: dict[str, EngineProcess] = {}
    try:
        workflows = corrected_workflows(workdir)
        settings, env = _settings(bootstrap, "chaos", workflows)
        create_topics(settings)
        in_time, messages = native_stream(cases, seed)
        ticks = tick_events(PARTITIONS, END)
        per_case, replay, canonical = expected(in_time, ticks, workflows)
        expected_records = sum(len(v) for v in per_case.values())
        report.events, report.cases = len(messages), cases
        log(f"chaos: {len(messages)} native messages → {canonical} events, "
            f"{expected_records} expected records")  # fmt: skip
        procs = _processes(env, workdir)
        t0 = time.monotonic()
        # One intake partition: the adapters then emit every engine partition's events in
        # delivery order; a late one is corrected within the horizon.
        _publish(bootstrap, f"{settings.intake_topic_prefix}grid", list(messages),
                 partitions=[0] * len(messages))  # fmt: skip
        for proc in procs.values():
            proc.start()
        _Chaos(procs, state, seed).run(kills, report)
        events_in = read_all(bootstrap, settings.topic_case_events, expect=canonical,
                             timeout_s=1800)  # fmt: skip
        assert len(events_in) == len({e["event_id"] for e in events_in}) == canonical
        # Only now move every partition's watermark to the end (see tick_events).
        _publish(bootstrap, settings.topic_case_events,
                 [(f"tick-{p}".encode(), t) for p, t in enumerate(ticks)],
                 partitions=list(range(PARTITIONS)))  # fmt: skip
        records = _settled(bootstrap, settings.topic_transitions, expected_records)
        report.seconds, report.records = time.monotonic() - t0, len(records)
        report.retractions = sum(r["type"] == "record.retracted" for r in records)
        for proc in procs.values():
            proc.terminate(timeout_s=120)
        _compare(history(records), per_case)
        _check_deadlines(final_cases(bootstrap, settings.topic_case_state), replay)
        return report
    finally:
        for proc in procs.values():
            if proc.alive():
                proc.kill()
        _kafka("stop", "--dir", str(state), "--clean")


def _settled(bootstrap: str, topic: str, expected_records: int) -> list[dict[str, Any]]:
    """The committed records once what is left after retractions is as many as expected
    (retractions and corrected records come on top of them) and nothing new came for 5 s."""
    deadline = time.monotonic() + 1800
    while True:
        records = read_all(bootstrap, topic, expect=expected_records, timeout_s=1800, quiet_s=5)
        live = sum(len(v) for v in history(records).values())
        if live >= expected_records or time.monotonic() > deadline:
            return records


def _compare(got: dict[str, list[str]], want: dict[str, list[str]]) -> None:
    """Equal per case; otherwise say how (missing, extra, different) with a few examples."""
    if got == want:
        return
    missing = sorted(set(want) - set(got))
    extra = sorted(set(got) - set(want))
    differ = sorted(c for c in set(got) & set(want) if got[c] != want[c])
    examples = [
        f"{c}: got {[json.loads(r)['type'] for r in got[c]]} "
        f"want {[json.loads(r)['type'] for r in want[c]]}"
        for c in differ[:3]
    ]
    raise AssertionError(
        f"{len(missing)} cases missing, {len(extra)} extra, {len(differ)} different; "
        f"records got {sum(map(len, got.values()))} want {sum(map(len, want.values()))}; "
        + "; ".join(examples)
    )


def _check_deadlines(latest: dict[str, Any], replay: Replay) -> None:
    """Every case's final state and deadline in the changelog equal the simulated ones."""
    for case_id, case in replay.cases.items():
        got = latest.get(case_id)
        assert got is not None, case_id
        want = (case.state, case.sla.deadline if case.sla else None)
        assert (got.state, got.sla.deadline if got.sla else None) == want, case_id


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=52_000)
    parser.add_argument("--kills", type=int, default=20)
    parser.add_argument("--seed", type=int, default=1963)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="fengqiao-chaos-") as tmp:
        report = run_chaos(args.cases, args.kills, args.seed, Path(tmp))
    print(json.dumps(report.__dict__))
    return 0


if __name__ == "__main__":
    sys.exit(main())
