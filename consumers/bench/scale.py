"""`fengqiao bench scale`: a million open cases with pending timers in one process.

1. N case snapshots are written to a case-state changelog (real cases of the synthetic stream,
   renamed and given fresh SLA clocks; 10,000 of them have a timer due in the same second T).
2. For each store (memory, SQLite) a fresh process restores them through the engine's own
   rebalance path (`EngineLoop.assign`: changelog → store → timer index) and reports the time,
   the resident memory it added per case (VmRSS), and then the 10k-timer burst: the loop the
   engine runs for idle cases (the batch step firing timers at the wall clock, records and snapshots
   encoded, the store written after each "commit"), with T mapped to the moment it starts. A
   timer's delay is when its batch is ready to commit minus its due instant; Kafka's transaction
   is not included (`bench kafka` measures it). The baseline for the restore is a raw read of
   the same changelog with the same client (no decoding), in the same process.
3. Two engine processes on four partitions against one, on the same backlog of events, which
   is produced once every process holds its partitions (no rebalance inside the window); the
   window opens at the first commit seen.
"""

from __future__ import annotations

import gc
import json
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from kafka import KafkaProducer, TopicPartition
from prometheus_client import CollectorRegistry

from consumers.bench.common import (
    ROOT,
    CpuMeter,
    StageProcess,
    bench_settings,
    broker,
    child_env,
    machine,
    percentiles,
    print_table,
    produce,
    rss_bytes,
    stream,
    unique,
    watch_throughput,
    write_json,
)
from consumers.bench.core import batches
from consumers.kafka.changelog import read_changelog
from consumers.kafka.engine_loop import EngineLoop
from consumers.runtime.metrics import EngineMetrics
from consumers.runtime.settings import Settings, kafka_client_config, load_settings
from engine.case import Case
from engine.core import Engine
from engine.registry import WorkflowRegistry
from engine.stores import StateStore, encode_case, open_store

BURST = 10_000
DUE = datetime.fromisoformat("2025-09-01T10:00:00+08:00")
"""The second in which the burst's timers come due (after every template case's clock)."""
TARGETS = {"bytes_per_case": 1536, "restore_s_per_1m": 60.0, "burst_p99_ms": 1000.0,
           "scale_out_ratio": 1.6}  # fmt: skip


# -- the changelog --------------------------------------------------------------------------------


def templates(workflows: Path) -> list[Case]:
    """Open cases with a running SLA clock, as the engine left them after the synthetic stream."""
    results = batches(Engine(WorkflowRegistry.load(workflows)), stream(6000))
    latest = {change.case_id: change.after for result in results for change in result.changes}
    return [c for c in latest.values() if c is not None and c.timers() and c.clock < DUE]


def scale_case(template: Case, n: int) -> Case:
    """Case n: the template renamed; its warning is due in the burst second (n < BURST) or
    spread over the following month."""
    assert template.sla is not None
    case_id = f"scale-{n:07d}"
    if n < BURST:
        warning = DUE + timedelta(microseconds=n * 1_000_000 // BURST)
    else:
        warning = DUE + timedelta(days=1, seconds=(n * 7919) % (30 * 86400))
    sla = template.sla._replace(warning_at=warning, deadline=warning + timedelta(days=3),
                                warned=False, breached=False, paused_at=None)  # fmt: skip
    seen = tuple(f"{case_id}-{i}" for i in range(len(template.seen)))
    return template._replace(case_id=case_id, seen=seen, sla=sla)


def write_changelog(settings: Settings, cases: int) -> dict[str, Any]:
    pool = templates(settings.workflows)
    producer = KafkaProducer(**kafka_client_config(settings), linger_ms=50, batch_size=1 << 20)
    started, size = time.monotonic(), 0
    for n in range(cases):
        case = scale_case(pool[n % len(pool)], n)
        value = encode_case(case).encode()
        size += len(value)
        producer.send(settings.topic_case_state, key=case.case_id.encode(), value=value)
        if n % 100_000 == 99_999:
            print(f"  {n + 1} snapshots written", file=sys.stderr)
    producer.flush()
    producer.close()
    return {"seconds": round(time.monotonic() - started, 1),
            "snapshot_bytes": round(size / cases)}  # fmt: skip


# -- one store, in a fresh process (`python -m consumers.bench.scale SETTINGS_JSON`) -------------


def raw_read(settings: Settings) -> float:
    """Seconds to read the whole changelog with the engine's changelog reader, decoding nothing
    (what a restore costs before the store does any work)."""
    started = time.monotonic()
    for partition in range(settings.partitions):
        for _chunk in read_changelog(settings, partition):
            pass  # read and dropped: the store's share is what `restore` adds
    return time.monotonic() - started


def restore(settings: Settings, cases: int, baseline: bool) -> dict[str, Any]:
    registry = WorkflowRegistry.load(settings.workflows)
    out: dict[str, Any] = {"store": settings.store.split(":")[0]}
    if baseline:
        out["raw_read_s"] = round(raw_read(settings), 1)
    tps = [TopicPartition(settings.topic_case_events, p) for p in range(settings.partitions)]
    gc.collect()
    before = rss_bytes()
    store = open_store(settings.store)
    loop, out["restore_s"] = _restored(settings, registry, store, tps)
    gc.collect()
    out["rss_per_case_bytes"] = round((rss_bytes() - before) / cases)
    out["restored_cases"] = store.count()
    out["burst"] = burst(loop, min(BURST, cases))
    if store.persistent:  # a restart with the file kept: only the changelog tail is read
        store.close()
        store = open_store(settings.store)
        _, out["restart_s"] = _restored(settings, registry, store, tps)
    store.close()
    return out


def _restored(
    settings: Settings, registry: WorkflowRegistry, store: StateStore, tps: list[TopicPartition]
) -> tuple[EngineLoop, float]:
    """An engine loop over `store` after the rebalance path restored `tps`, and its seconds."""
    loop = EngineLoop(settings, Engine(registry), store,
                      EngineMetrics.create(CollectorRegistry(), registry))  # fmt: skip
    started = time.monotonic()
    loop.assign(tps)
    return loop, round(time.monotonic() - started, 1)


def burst(loop: EngineLoop, timers: int) -> dict[str, Any]:
    """The engine's idle-timer turn through the core's batch step, repeated as its loop would,
    until `timers` have fired (no transaction: the store write stands for the commit)."""
    parts = loop.partitions
    delays: list[float] = []
    busy = 0.0
    started = time.perf_counter()
    while len(delays) < timers and time.perf_counter() - started < 600:
        turn = time.perf_counter()
        now = DUE + timedelta(seconds=turn - started)
        results = {p: part.step([], fire_until=now) for p, part in parts.items()}
        for result in results.values():
            for out in result.outputs:
                _ = out.value  # as the engine encodes what it sends
            for change in result.changes:
                _ = change.snapshot
        ready = time.perf_counter() - started  # the batch could be committed now
        delays += [1000 * (ready - (o.record.occurred_at - DUE).total_seconds())
                   for r in results.values() for o in r.outputs
                   if o.record.type == "sla.warning"]  # fmt: skip
        for p, result in results.items():
            if result.changes:
                loop.store.write(p, result.upserts, result.deletes)
            parts[p].confirm()
        busy += time.perf_counter() - turn
        dues = [d for part in parts.values() if (d := part.next_due) is not None]
        wait = (min(dues) - now).total_seconds() if dues else 0.1
        time.sleep(min(0.1, max(0.0, wait)))  # as the engine's poll timeout
    return {"timers": len(delays), **{f"{k}_ms": v for k, v in percentiles(delays).items()},
            "us_per_timer": round(1e6 * busy / max(len(delays), 1))}  # fmt: skip


def _in_child(settings: Settings, cases: int, baseline: bool) -> dict[str, Any]:
    """`restore` in a fresh interpreter, so that its resident memory is its own."""
    # Secrets stay out of the command line: the child reads them from FENGQIAO_* as usual.
    plain = settings.model_dump(mode="json", exclude={"sasl_password", "ssl_password"})
    args = {"settings": plain, "cases": cases, "baseline": baseline}
    proc = subprocess.run(  # noqa: S603 - our own interpreter and module
        [sys.executable, "-m", "consumers.bench.scale", json.dumps(args)],
        stdout=subprocess.PIPE, env=child_env(), cwd=ROOT, check=True,
    )  # fmt: skip
    result: dict[str, Any] = json.loads(proc.stdout.decode().splitlines()[-1])
    return result


def _child_main(raw: str) -> None:
    args = json.loads(raw)
    settings = load_settings({k: v for k, v in args["settings"].items() if v is not None})
    print(json.dumps(restore(settings, args["cases"], args["baseline"])))


# -- two processes against one --------------------------------------------------------------------


def scale_out(bootstrap: str, broker_pid: int | None, workflows: Path, events: int,
              workdir: Path) -> dict[str, Any]:  # fmt: skip
    """One process, two, one again (the machine is noisy: the baseline is the mean of the
    runs around the two), each on a fresh copy of the same backlog."""
    lines = stream(events)
    runs: list[dict[str, Any]] = []
    for procs in (1, 2, 1):
        settings = bench_settings(bootstrap, unique(f"out{procs}"), 4, workflows=workflows,
                                  clock="events")  # fmt: skip
        stages = [StageProcess("engine", settings, workdir, INSTANCE_ID=f"i{k}")
                  for k in range(procs)]  # fmt: skip
        try:
            _wait_spread(stages, settings.partitions)
            # Only now the backlog: a process that joined late would cost a rebalance (and
            # the restores it brings) inside the measured window.
            produce(settings, lines)
            pids: dict[str, int | None] = {f"engine{k}": s.pid for k, s in enumerate(stages)}
            meter = CpuMeter({**pids, "broker": broker_pid})
            run = watch_throughput(settings, events, stages, meter)
        finally:
            for stage in stages:
                stage.stop()
        cores = sum(v for k, v in run.items() if k.startswith("cpu_engine"))
        # Events per second of engine CPU: flat if the work spreads, whatever the machine gives.
        rate = run["events_per_s"]
        run["events_per_engine_cpu_s"] = round(rate / cores) if rate and cores else None
        runs.append({"processes": procs, **run})
    rates = [r["events_per_s"] for r in runs]
    if not all(rates):  # the backlog was gone before every process was ready
        print("scale-out: backlog too small to measure, raise --events", file=sys.stderr)
        return {"runs": runs, "ratio": None}
    return {"runs": runs, "ratio": round(2 * rates[1] / (rates[0] + rates[2]), 3)}


def _wait_spread(stages: list[StageProcess], partitions: int, timeout_s: float = 120) -> None:
    """Until every process is ready and holds some of the partitions, all of them assigned."""
    for stage in stages:
        stage.wait_ready()
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        owned = [stage.owned_partitions() for stage in stages]
        if sum(owned) == partitions and min(owned) > 0:
            return
        time.sleep(0.1)
    raise RuntimeError(f"partitions not spread over {len(stages)} processes in {timeout_s}s")


# -- the command -------------------------------------------------------------------------------


def run_scale_bench(workflows: Path, cases: int, events: int, partitions: int,
                    out: str | None) -> int:  # fmt: skip
    figures: dict[str, Any] = {
        "machine": machine(),
        "config": {"cases": cases, "burst": BURST, "partitions": partitions, "events": events},
    }
    with broker() as brk, tempfile.TemporaryDirectory(prefix="fengqiao-bench-") as tmp:
        settings = bench_settings(brk.bootstrap, unique("scale"), partitions,
                                  workflows=workflows.resolve())  # fmt: skip
        print(f"writing {cases} snapshots to {partitions} partitions ...", file=sys.stderr)
        figures["changelog"] = write_changelog(settings, cases)
        stores: list[dict[str, Any]] = []
        for spec in ("memory", f"sqlite:{Path(tmp) / 'cases.db'}"):
            print(f"restoring into {spec.split(':')[0]} ...", file=sys.stderr)
            store_settings = load_settings({**settings.model_dump(), "store": spec})
            stores.append(_in_child(store_settings, cases, baseline=not stores))
        figures["stores"] = stores
        print("scale-out: one engine, then two ...", file=sys.stderr)
        figures["scale_out"] = scale_out(brk.bootstrap, brk.pid, workflows.resolve(), events,
                                         Path(tmp))  # fmt: skip
    report(figures)
    write_json(out, figures)
    return 0


def report(figures: dict[str, Any]) -> None:
    m, cases = figures["machine"], figures["config"]["cases"]
    print(f"\n{m['date']}  {m['nproc']} × {m['cpu']}, {m['ram_gib']} GiB, python {m['python']}, "
          f"kafka-python {m['kafka_python']} (crc32c: {m['crc32c']})")  # fmt: skip
    raw = figures["stores"][0]["raw_read_s"]
    snapshot = figures["changelog"]["snapshot_bytes"]
    print_table(
        f"{cases} open cases with pending timers (changelog snapshot: {snapshot} B/case, "
        f"raw read of the changelog: {raw} s)",
        ["store", "restore s", "÷ raw read", "restart s", "RSS B/case", "burst p50 ms",
         "p95", "p99", "max", "µs/timer"],
        [[s["store"], s["restore_s"], round(s["restore_s"] / raw, 1), s.get("restart_s", "-"),
          s["rss_per_case_bytes"], s["burst"]["p50_ms"], s["burst"]["p95_ms"],
          s["burst"]["p99_ms"], s["burst"]["max_ms"], s["burst"]["us_per_timer"]]
         for s in figures["stores"]],
    )  # fmt: skip
    so = figures["scale_out"]
    cpu_keys = sorted({k for r in so["runs"] for k in r if k.startswith("cpu_")})
    print_table(
        "one engine process against two, four partitions",
        ["processes", "events", "seconds", "events/s", "per engine CPU s", *cpu_keys],
        [[r["processes"], r["events"], r["seconds"], r["events_per_s"],
          r["events_per_engine_cpu_s"], *(r.get(k, "") for k in cpu_keys)] for r in so["runs"]],
    )  # fmt: skip
    memory = figures["stores"][0]
    checks = [
        ("RSS per open case (memory store)", memory["rss_per_case_bytes"], "B",
         memory["rss_per_case_bytes"] <= TARGETS["bytes_per_case"], "≤ 1.5 KB"),
        ("restore, scaled to 1M cases (memory store)",
         round(memory["restore_s"] * 1_000_000 / cases, 1), "s",
         memory["restore_s"] * 1_000_000 / cases <= TARGETS["restore_s_per_1m"], "≤ 60 s"),
        *((f"burst p99 ({s['store']})", s["burst"]["p99_ms"], "ms",
           s["burst"]["p99_ms"] <= TARGETS["burst_p99_ms"], "≤ 1 s") for s in figures["stores"]),
        ("two processes ÷ one", so["ratio"], "×", (so["ratio"] or 0) >= TARGETS["scale_out_ratio"],
         "≥ 1.6"),
    ]  # fmt: skip
    for name, value, unit, met, target in checks:
        print(f"{name}: {value} {unit} (target {target}: {'met' if met else 'MISSED'})")


if __name__ == "__main__":
    _child_main(sys.argv[1])
