"""`fengqiao bench kafka`: the engine on a real broker next to a pass-through, in the same run.

The baseline is the least an exactly-once stage can do with the same client library, broker,
partitions and batch settings: consume with `read_committed`, produce every value unchanged in
one transaction per batch, commit the offsets with `send_offsets_to_transaction`
(`consumers/bench/passthrough.py`, configured by the same FENGQIAO_* variables as the engine).
The engine is `fengqiao run --role engine` (memory store, `events` clock). Both run as child
processes, each with an interpreter of its own.

- Throughput: N canonical events are produced once; a pass-through drains them to warm the
  broker up (not counted: the first pass over a fresh broker is the slowest), then the
  pass-through, the engine and the pass-through again (the machine is noisy: the baseline is
  the mean of the runs around the engine). Events/s counts from the first committed offset seen
  to the last, so start-up, restore and the group join are left out.
- Where the engine's time goes: one more engine run on the same backlog under cProfile, its
  main thread's wall time split between the core, encoding, kafka-python's send, the
  transaction commit (waiting on the broker), polling and metrics. The profiler slows Python
  code, not waits: the split is a guide to what dominates, not a second measurement.
- The engine's writes alone: the pass-through once more, writing as many records per event as
  the profiled engine sent (its transition records and changelog snapshots), each as large as
  the core's records are on average over the same stream. Its rate ÷ the
  pass-through's is what engine ÷ pass-through would be if the engine's core and its own shell
  work cost nothing: the ceiling this client library and this record contract allow.
- Latency: at each offered rate, a paced producer sends fresh events (send time kept per
  event_id) while a `read_committed` consumer of the outputs notes when the first record
  caused by each event becomes visible. The first `warmup` seconds are not counted.
"""

from __future__ import annotations

import json
import pstats
import sys
import tempfile
import threading
import time
from functools import partial
from pathlib import Path
from typing import Any

from kafka import KafkaConsumer, KafkaProducer, TopicPartition

from consumers.bench.common import (
    Broker,
    CpuMeter,
    StageProcess,
    bench_settings,
    broker,
    machine,
    percentiles,
    print_table,
    produce,
    stream,
    unique,
    watch_throughput,
    write_json,
)
from consumers.bench.core import batches
from consumers.runtime.settings import Settings, kafka_client_config
from engine.core import Engine
from engine.registry import WorkflowRegistry

TARGET_RATIO = 0.5
"""Issue 17: at each commit interval (the first target, 0.7, was missed at 0.15-0.21)."""
TARGET_P99_MS = 200.0
TARGET_RATE = 1000
STAGES = ("passthrough", "engine")
INTERVALS_MS = (100, 5000)
"""Commit intervals measured: live traffic's default, and seconds for a catch-up."""
BATCH_MAX_RECORDS = 20_000
"""Inputs per transaction in the bench: above what the engine gathers in 5 s, and low enough
that the pass-through's sends (about 2 s of them) stay far within the transaction timeout."""


# -- throughput ----------------------------------------------------------------------------------


def _throughput(brk: Broker, workflows: Path, events: int, partitions: int, workdir: Path, *,
                topic: str, interval_ms: int) -> dict[str, Any]:  # fmt: skip
    """The pass-through, the engine and the pass-through again over the backlog in `topic`,
    each with polls gathered up to `interval_ms` (the first pass-through warms up, uncounted);
    then the engine under cProfile, and the pass-through writing as many records as it."""
    drain = partial(_drain, brk=brk, workflows=workflows, events=events, partitions=partitions,
                    workdir=workdir, topic=topic, interval_ms=interval_ms)  # fmt: skip
    kinds = ("passthrough", "passthrough", "engine", "passthrough")
    runs = [{"system": kind, **drain(kind)} for kind in kinds][1:]  # the first warms up
    rates = [r["events_per_s"] for r in runs]
    if not all(rates):
        raise RuntimeError("a stage drained the backlog in one batch: raise --events")
    baseline = (rates[0] + rates[2]) / 2
    profile = _profiled(brk, workflows, events, partitions, workdir,
                        topic=topic, interval_ms=interval_ms)  # fmt: skip
    writes = max(1.0, profile["records_sent_per_event"])
    size = record_bytes(workflows, events)
    alone = drain("passthrough", args=("--writes-per-event", str(writes),
                                       "--bytes-per-write", str(size)))  # fmt: skip
    return {"commit_interval_ms": interval_ms, "runs": runs,
            "passthrough_events_per_s": round(baseline),
            "engine_events_per_s": rates[1], "ratio": round(rates[1] / baseline, 3),
            "engine_profile": profile,
            "writes_alone": {**alone, "writes_per_event": writes, "bytes_per_write": size,
                             "ratio": round(alone["events_per_s"] / baseline, 3)}}  # fmt: skip


def record_bytes(workflows: Path, events: int) -> int:
    """The mean size of the records the core writes (outputs and snapshots) for the first
    events of the bench's stream, taken through its batch step as `bench core` does."""
    engine = Engine(WorkflowRegistry.load(workflows))
    written = [
        len(value)
        for result in batches(engine, stream(min(events, 6000)))
        for value in (*(o.value for o in result.outputs), *(c.snapshot for c in result.changes))
        if value is not None
    ]
    return round(sum(written) / max(1, len(written)))


def _drain(kind: str, *, brk: Broker, workflows: Path, events: int, partitions: int,
           workdir: Path, topic: str, interval_ms: int,
           args: tuple[str, ...] = ()) -> dict[str, Any]:  # fmt: skip
    """One stage draining the whole backlog: its events/s, CPU and exit code."""
    settings = _stage_settings(brk, kind, partitions, workflows, interval_ms,
                               topic_case_events=topic)  # fmt: skip
    stage = StageProcess(kind, settings, workdir, args=args)
    meter = CpuMeter({"stage": stage.pid, "broker": brk.pid})
    try:
        run = watch_throughput(settings, events, [stage], meter)
    finally:
        code = stage.stop()
    run["exit_code"] = code
    print(f"{kind} {' '.join(args)} at {interval_ms} ms: {run['events_per_s']} events/s",
          file=sys.stderr)  # fmt: skip
    if run["events_per_s"] and "cpu_stage_cores" in run:  # the stage's CPU time per event
        run["cpu_us_per_event"] = round(1e6 * run["cpu_stage_cores"] / run["events_per_s"])
    return run


def _stage_settings(brk: Broker, kind: str, partitions: int, workflows: Path, interval_ms: int,
                    **extra: object) -> Settings:  # fmt: skip
    """A stage's settings: topics and group of its own, the `events` clock, polls gathered up
    to the commit interval (no record limit below it)."""
    return bench_settings(
        brk.bootstrap, unique(kind), partitions, workflows=workflows, clock="events",
        commit_interval_ms=interval_ms, batch_max_records=BATCH_MAX_RECORDS, **extra,
    )  # fmt: skip


# Parts of the engine's main thread, by inclusive wall time (file suffix, function name).
ENGINE_PARTS: list[tuple[str, list[tuple[str, str]]]] = [
    ("core: decode, decide, build records", [("engine/replay.py", "feed")]),
    ("encode records + snapshots (JSON)", [("consumers/kafka/engine_loop.py", "_sends")]),
    ("kafka-python send() (into the batch)", [("kafka/producer/kafka.py", "send")]),
    ("transaction: offsets + commit (waits)", [
        ("kafka/producer/kafka.py", "send_offsets_to_transaction"),
        ("kafka/producer/kafka.py", "commit_transaction"),
        ("kafka/producer/kafka.py", "begin_transaction")]),
    ("kafka-python poll (fetch, decode)", [("kafka/consumer/group.py", "poll")]),
    ("metrics, gauges, lag", [("consumers/runtime/observe.py", "observe_batch"),
                              ("consumers/kafka/engine_loop.py", "_refresh_gauges"),
                              ("consumers/kafka/engine_loop.py", "_refresh_lag")]),
    ("state store writes", [("engine/stores/memory.py", "write"),
                            ("engine/stores/sqlite.py", "write")]),
]  # fmt: skip


def _profiled(brk: Broker, workflows: Path, events: int, partitions: int, workdir: Path, *,
              topic: str, interval_ms: int) -> dict[str, Any]:  # fmt: skip
    """One more engine run on the backlog, under cProfile: where its main thread's time goes."""
    settings = _stage_settings(brk, "profiled", partitions, workflows, interval_ms,
                               topic_case_events=topic)  # fmt: skip
    stats_path = workdir / "engine.prof"
    stage = StageProcess("engine", settings, workdir, profile=stats_path)
    try:
        watch_throughput(settings, events, [stage], CpuMeter({}))
    finally:
        stage.stop()
    stats = pstats.Stats(str(stats_path))
    table: dict[tuple[str, int, str], tuple[Any, ...]] = stats.stats  # type: ignore[attr-defined]
    run_s = sum(row[3] for (path, _l, func), row in table.items()
                if func == "run" and path.endswith("consumers/kafka/engine_loop.py"))  # fmt: skip
    parts = {
        label: sum(row[3] for (path, _l, func), row in table.items()
                   for suffix, name in wanted if func == name and path.endswith(suffix))
        for label, wanted in ENGINE_PARTS
    }  # fmt: skip
    parts["the rest of the loop"] = run_s - sum(parts.values())
    sends = sum(row[1] for (path, _l, func), row in table.items()
                if func == "send" and path.endswith("kafka/producer/kafka.py"))  # fmt: skip
    return {"events": events, "wall_s": round(run_s, 2),
            "records_sent_per_event": round(sends / events, 2),
            "us_per_event": {k: round(1e6 * v / events, 1) for k, v in parts.items()}}  # fmt: skip


# -- latency -------------------------------------------------------------------------------------


def _pace(settings: Settings, lines: list[bytes], rate: int, sent: dict[str, float]) -> None:
    producer = KafkaProducer(**kafka_client_config(settings), linger_ms=0)
    began = time.perf_counter()
    for n, line in enumerate(lines):
        wait = began + n / rate - time.perf_counter()
        if wait > 0:
            time.sleep(wait)
        event = json.loads(line)
        sent[event["event_id"]] = time.perf_counter()
        producer.send(settings.topic_case_events, key=event["case_id"].encode(), value=line)
    producer.flush()
    producer.close()


def _latency(brk: Broker, workflows: Path, partitions: int, *, rate: int, interval_ms: int,
             seconds: tuple[float, float], kind: str, workdir: Path) -> dict[str, Any]:  # fmt: skip
    warmup, duration = seconds
    settings = _stage_settings(brk, f"lat{rate}", partitions, workflows, interval_ms)
    lines = stream(int(rate * (warmup + duration)))
    stage = StageProcess(kind, settings, workdir)
    reader = KafkaConsumer(**kafka_client_config(settings), group_id=None,
                           isolation_level="read_committed", enable_auto_commit=False)  # fmt: skip
    try:
        stage.wait_ready()
        outputs = (settings.topic_transitions, settings.topic_dead_letter)
        reader.assign([TopicPartition(t, p) for t in outputs for p in range(partitions)])
        reader.seek_to_beginning()
        reader.poll(timeout_ms=100)
        sent: dict[str, float] = {}
        arrived: dict[str, float] = {}
        producer = threading.Thread(target=_pace, args=(settings, lines, rate, sent))
        meter = CpuMeter({"stage": stage.pid, "broker": brk.pid})
        meter.start()
        producer.start()
        drain_until = float("inf")
        while time.perf_counter() < drain_until and len(arrived) < len(lines):
            for messages in reader.poll(timeout_ms=50).values():
                now = time.perf_counter()
                for m in messages:
                    record = json.loads(m.value)  # the pass-through's is the input event
                    cause = record.get("caused_by") or record.get("event_id")
                    if cause in sent:  # not a timer's record
                        arrived.setdefault(cause, now)
            if not producer.is_alive() and drain_until == float("inf"):
                drain_until = time.perf_counter() + 30
        cpu = meter.stop()
        producer.join()
    finally:
        reader.close()
        code = stage.stop()
    measured = [json.loads(line)["event_id"] for line in lines[int(rate * warmup) :]]
    delays = [1000 * (arrived[e] - sent[e]) for e in measured if e in arrived]
    return {"system": kind, "rate": rate, "commit_interval_ms": interval_ms,
            "events": len(measured), "answered": len(delays),
            **{f"{k}_ms": v for k, v in percentiles(delays).items()}, **cpu,
            "exit_code": code}  # fmt: skip


# -- the command -------------------------------------------------------------------------------


def run_kafka_bench(workflows: Path, events: int, partitions: int, out: str | None, *,
                    rates: list[int], duration: float, warmup: float = 2.0,
                    intervals: tuple[int, ...] = INTERVALS_MS) -> int:  # fmt: skip
    figures: dict[str, Any] = {
        "machine": machine(),
        "config": {"events": events, "partitions": partitions, "rates": rates,
                   "duration_s": duration, "warmup_s": warmup,
                   "batch_max_records": BATCH_MAX_RECORDS, "commit_intervals_ms": list(intervals),
                   "clock": "events", "store": "memory"},
    }  # fmt: skip
    with broker() as brk, tempfile.TemporaryDirectory(prefix="fengqiao-bench-") as tmp:
        workdir = Path(tmp)
        backlog = bench_settings(brk.bootstrap, unique("tput"), partitions)
        print(f"producing {events} events to {partitions} partitions ...", file=sys.stderr)
        produce(backlog, stream(events))
        topic = backlog.topic_case_events
        figures["throughput"] = [
            _throughput(brk, workflows, events, partitions, workdir, topic=topic, interval_ms=i)
            for i in intervals
        ]
        seconds = (warmup, duration)
        figures["latency"] = [
            _latency(
                brk,
                workflows,
                partitions,
                rate=r,
                interval_ms=i,
                seconds=seconds,
                kind=k,
                workdir=workdir,
            )
            for i in intervals
            for r in rates
            for k in STAGES
        ]
    report(figures)
    write_json(out, figures)
    return 0


def report(figures: dict[str, Any]) -> None:
    m = figures["machine"]
    print(f"\n{m['date']}  {m['nproc']} × {m['cpu']}, {m['ram_gib']} GiB, python {m['python']}, "
          f"kafka-python {m['kafka_python']} (crc32c: {m['crc32c']})")  # fmt: skip
    for t in figures["throughput"]:
        _report_throughput(t)
    print_table(
        "latency, produce → committed output (ms)",
        ["system", "commit ms", "rate/s", "answered", "p50", "p95", "p99", "max",
         "cpu_stage_cores"],
        [[r["system"], r["commit_interval_ms"], r["rate"], f"{r['answered']}/{r['events']}",
          r["p50_ms"], r["p95_ms"], r["p99_ms"], r["max_ms"], r.get("cpu_stage_cores", "")]
         for r in figures["latency"]],
    )  # fmt: skip
    for r in figures["latency"]:
        if r["system"] == "engine" and r["rate"] == TARGET_RATE:
            verdict = "met" if r["p99_ms"] <= TARGET_P99_MS else "MISSED"
            print(f"engine p99 at {TARGET_RATE}/s, commit interval {r['commit_interval_ms']} ms "
                  f"= {r['p99_ms']} ms (target ≤ {TARGET_P99_MS:.0f} ms: {verdict})")  # fmt: skip


def _report_throughput(t: dict[str, Any]) -> None:
    interval = t["commit_interval_ms"]
    cpu_keys = sorted({k for r in t["runs"] for k in r if k.startswith("cpu_")})
    print_table(
        f"throughput (exactly-once, end to end), commit interval {interval} ms",
        ["system", "events", "seconds", "events/s", *cpu_keys],
        [[r["system"], r["events"], r["seconds"], r["events_per_s"],
          *(r.get(k, "") for k in cpu_keys)] for r in t["runs"]],
    )  # fmt: skip
    verdict = "met" if t["ratio"] >= TARGET_RATIO else "MISSED"
    print(f"engine / pass-through at {interval} ms = {t['ratio']}  "
          f"(target ≥ {TARGET_RATIO}: {verdict})")  # fmt: skip
    prof = t["engine_profile"]
    print_table(
        f"engine main thread under cProfile, {interval} ms ({prof['events']} events, "
        f"{prof['wall_s']} s; {prof['records_sent_per_event']} records sent per event, the "
        "pass-through sends 1)",
        ["part", "µs/event"], list(prof["us_per_event"].items()),
    )  # fmt: skip

    alone = t["writes_alone"]
    print(f"the engine's writes alone ({alone['writes_per_event']} records of "
          f"{alone['bytes_per_write']} B per event, no core): "
          f"{alone['events_per_s']} events/s = {alone['ratio']} × the pass-through, the ceiling "
          f"of engine / pass-through at {interval} ms")  # fmt: skip
