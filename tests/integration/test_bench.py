"""`fengqiao bench kafka` and `bench scale` on tiny sizes against the session's broker.

Correctness only: the commands run, print their tables and write JSON with every figure present
and sane. No timing is asserted (the machines are shared; the figures are for the README).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from consumers.cli.main import main

ROOT = Path(__file__).resolve().parents[2]


def _positive(value: object) -> bool:
    return isinstance(value, int | float) and value > 0


def test_bench_kafka_tiny(
    kafka_bootstrap: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("FENGQIAO_BOOTSTRAP_SERVERS", kafka_bootstrap)  # no broker of its own
    out = tmp_path / "kafka.json"
    argv = ["bench", "kafka", "--workflows", str(ROOT / "workflows"), "--events", "1500",
            "--rates", "200", "--duration", "2", "--out", str(out)]  # fmt: skip
    assert main(argv) == 0
    figures = json.loads(out.read_text(encoding="utf-8"))
    throughput = figures["throughput"]
    assert [r["system"] for r in throughput["runs"]] == ["passthrough", "engine", "passthrough"]
    assert all(_positive(r["events_per_s"]) for r in throughput["runs"])
    assert _positive(throughput["ratio"])
    split = throughput["engine_profile"]["us_per_event"]  # the profiled run, part by part
    assert _positive(split["core: decode, decide, build records"])
    assert _positive(split["kafka-python send() (into the batch)"])
    assert _positive(split["transaction: offsets + commit (waits)"])
    assert [(r["system"], r["rate"]) for r in figures["latency"]] == [
        ("passthrough", 200),
        ("engine", 200),
    ]
    for row in figures["latency"]:
        assert row["answered"] == row["events"]  # every event's output was seen, committed
        assert 0 < row["p50_ms"] <= row["p95_ms"] <= row["p99_ms"] <= row["max_ms"]
    stages = [*throughput["runs"], *figures["latency"]]
    assert all(s["exit_code"] == 0 for s in stages)  # each ended cleanly on SIGTERM
    assert figures["machine"]["nproc"] >= 1


def test_bench_scale_tiny(
    kafka_bootstrap: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("FENGQIAO_BOOTSTRAP_SERVERS", kafka_bootstrap)
    out = tmp_path / "scale.json"
    argv = ["bench", "scale", "--workflows", str(ROOT / "workflows"), "--cases", "12000",
            "--events", "6000", "--out", str(out)]  # fmt: skip
    assert main(argv) == 0
    figures = json.loads(out.read_text(encoding="utf-8"))
    assert _positive(figures["changelog"]["snapshot_bytes"])
    memory, sqlite = figures["stores"]
    assert (memory["store"], sqlite["store"]) == ("memory", "sqlite")
    assert _positive(memory["raw_read_s"])
    assert _positive(sqlite["restart_s"])
    for store in (memory, sqlite):
        assert store["restored_cases"] == 12000
        assert _positive(store["restore_s"])
        assert _positive(store["rss_per_case_bytes"])
        burst = store["burst"]
        assert burst["timers"] == 10_000  # every timer of the burst fired, once
        assert 0 <= burst["p50_ms"] <= burst["p99_ms"] <= burst["max_ms"]
    scale_out = figures["scale_out"]
    assert [r["processes"] for r in scale_out["runs"]] == [1, 2, 1]
    assert all(r["events"] >= 0 for r in scale_out["runs"])
    # None when a tiny backlog was gone before both processes were ready (said on stderr)
    assert scale_out["ratio"] is None or _positive(scale_out["ratio"])
