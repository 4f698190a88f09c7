"""`fengqiao bench kafka` and `bench scale` on tiny sizes against the session's broker, and
`bench view` against the session's PostgreSQL server.

Correctness only: the commands run, print their tables and write JSON with every figure present
and sane. No timing is asserted (the machines are shared; the figures are for the README).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import sqlalchemy as sa

from consumers.cli.main import main

ROOT = Path(__file__).resolve().parents[2]


def _positive(value: object) -> bool:
    return isinstance(value, int | float) and value > 0


def test_bench_kafka_tiny(
    kafka_bootstrap: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("FENGQIAO_BOOTSTRAP_SERVERS", kafka_bootstrap)  # no broker of its own
    out = tmp_path / "kafka.json"
    argv = ["bench", "kafka", "--workflows", str(ROOT / "workflows"), "--events", "3000",
            "--rates", "200", "--duration", "2", "--intervals", "10,20",
            "--out", str(out)]  # fmt: skip
    assert main(argv) == 0
    figures = json.loads(out.read_text(encoding="utf-8"))
    assert [t["commit_interval_ms"] for t in figures["throughput"]] == [10, 20]
    for throughput in figures["throughput"]:
        assert [r["system"] for r in throughput["runs"]] == ["passthrough", "engine", "passthrough"]
        assert all(_positive(r["events_per_s"]) for r in throughput["runs"])
        assert _positive(throughput["ratio"])
        split = throughput["engine_profile"]["us_per_event"]  # the profiled run, part by part
        assert _positive(split["core: decode, decide, build records"])
        assert _positive(split["kafka-python send() (into the batch)"])
        assert _positive(split["transaction: offsets + commit (waits)"])
        alone = throughput["writes_alone"]  # the pass-through writing as much as the engine
        assert alone["writes_per_event"] == max(
            1.0, throughput["engine_profile"]["records_sent_per_event"]
        )
        assert _positive(alone["events_per_s"])
        assert _positive(alone["ratio"])
        assert alone["exit_code"] == 0
    assert [(r["system"], r["commit_interval_ms"], r["rate"]) for r in figures["latency"]] == [
        ("passthrough", 10, 200),
        ("engine", 10, 200),
        ("passthrough", 20, 200),
        ("engine", 20, 200),
    ]
    for row in figures["latency"]:
        assert row["answered"] == row["events"]  # every event's output was seen, committed
        assert 0 < row["p50_ms"] <= row["p95_ms"] <= row["p99_ms"] <= row["max_ms"]
    stages = [*(r for t in figures["throughput"] for r in t["runs"]), *figures["latency"]]
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


def test_bench_view_tiny(
    postgres_server_url: sa.URL, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # a database of its own on the session's server (made and dropped by the bench)
    url = postgres_server_url.render_as_string(hide_password=False)
    monkeypatch.setenv("FENGQIAO_POSTGRES_URL", url)
    out = tmp_path / "view.json"
    argv = ["bench", "view", "--workflows", str(ROOT / "workflows"), "--cases", "3000",
            "--events", "1200", "--repeat", "2", "--requests", "30", "--out", str(out)]  # fmt: skip
    assert main(argv) == 0
    figures = json.loads(out.read_text(encoding="utf-8"))
    projection = figures["projection"]
    assert projection["events"] == 1200
    assert projection["records"] > projection["events"]  # a case's opening alone is two records
    assert _positive(projection["engine"]["records_per_s"])
    for name in ("sqlite", "postgresql"):
        side = projection[name]
        assert side["history_rows"] == projection["records"]  # every record projected, once
        assert 0 < side["rows"] < projection["records"]
        assert _positive(side["records_per_s"])
        assert _positive(side["ratio"])
        split = side["us_per_record_split"]
        assert all(_positive(split[k]) for k in list(split)[:3])  # decode, fold, the driver
        rebuilt = figures["rebuild"][name]
        assert _positive(rebuilt["seconds"])
        assert _positive(rebuilt["extrapolated_s_per_million_records"])
        fill = figures["million"][name]["fill"]
        assert fill["rows"] == 3000
        assert fill["open_cases"] + fill["closed_cases"] == 3000
        assert 0 < fill["overdue_cases"] < fill["open_cases"]
        assert 0 < fill["at_risk_cases"] < fill["open_cases"]
        for request, figure in figures["million"][name]["latency"].items():
            assert figure["requests"] == 30, request
            assert 0 < figure["p50"] <= figure["p95"] <= figure["p99"] <= figure["max"]
        assert figures["million"][name]["latency"]["overdue_first_page"]["page_items"] == 50
    assert len(figures["targets"]) == 6
    assert all(isinstance(t["met"], bool) for t in figures["targets"])
    assert figures["machine"]["postgresql"]
