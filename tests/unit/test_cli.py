"""The CLI commands other than validate: graph, simulate, schema, bench, demo."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from consumers.bench.limits import WORST
from consumers.cli.main import main
from consumers.cli.schemas import schema_documents
from tests.integration.intake_samples import CHANNELS

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
WORKFLOW = ROOT / "workflows" / "dispute-escalation.yaml"

EVENTS = [
    {"event_id": "a1", "case_id": "c1", "type": "case.reported",
     "occurred_at": "2025-09-26T10:00:00+08:00", "source": "grid",
     "payload": {"workflow": "dispute-escalation", "attributes": {"category": "neighbour"}}},
    {"event_id": "a2", "case_id": "c1", "type": "mediation.failed",
     "occurred_at": "2025-09-29T10:00:00+08:00", "source": "grid"},
]  # fmt: skip


def test_graph_mermaid_and_dot(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["graph", str(WORKFLOW)]) == 0
    mermaid = capsys.readouterr().out
    assert mermaid.startswith("stateDiagram-v2")
    assert "s0 : SLA 3 working days, warn 67%" in mermaid
    assert "s0 --> s1 : ⌛ sla.breached" in mermaid
    assert main(["graph", str(WORKFLOW), "--format", "dot"]) == 0
    dot = capsys.readouterr().out
    assert dot.startswith('digraph "dispute-escalation"')
    assert '"grid.mediating" -> "center.mediating"' in dot
    assert "style=dashed" in dot


def test_graph_of_a_broken_file_prints_problems(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    broken = tmp_path / "broken.yaml"
    broken.write_text("name: x\n", encoding="utf-8")
    assert main(["graph", str(broken)]) == 1
    out, err = capsys.readouterr()
    assert out == ""  # stdout is for the diagram
    assert f"{broken}:1:1: error: missing required key" in err


def test_simulate_is_byte_identical_and_fires_timers_until(tmp_path: Path) -> None:
    events = tmp_path / "events.jsonl"
    lines = [json.dumps(e) for e in EVENTS] + ["{not json"]
    events.write_text("\n".join(lines) + "\n", encoding="utf-8")
    outs = []
    for name in ("one", "two"):
        out = tmp_path / f"{name}.jsonl"
        args = ["simulate", "--events", str(events), "--out", str(out),
                "--until", "2026-01-01T00:00:00+08:00"]  # fmt: skip
        assert main(args) == 0
        outs.append(out.read_bytes())
    assert outs[0] == outs[1]
    records = [json.loads(line) for line in outs[0].decode().splitlines()]
    types = [r["type"] for r in records]
    # The limit of the center (30 days) runs out before --until: warning, breach, court.
    assert types[:2] == ["case.transitioned", "case.transitioned"]
    assert "sla.breached" in types
    rejected = [r for r in records if r["type"] == "event.rejected"]
    assert [(r["reason"], r["origin"]) for r in rejected] == [("malformed", "events.jsonl:3")]


def test_simulate_refuses_until_without_offset(tmp_path: Path) -> None:
    events = tmp_path / "e.jsonl"
    events.write_text("", encoding="utf-8")
    assert main(["simulate", "--events", str(events), "--until", "2026-01-01T00:00:00"]) == 2


def test_committed_json_schemas_are_up_to_date() -> None:
    for name, text in schema_documents(CHANNELS).items():
        committed = ROOT / "schemas" / name
        assert committed.read_text(encoding="utf-8") == text, (
            f"schemas/{name} is stale: run `fengqiao schemas export`"
        )


def test_bench_core_prints_figures_and_ratio(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "bench.json"
    assert main(["bench", "core", "--cases", "50", "--repeat", "1", "--out", str(out)]) == 0
    printed = capsys.readouterr().out.splitlines()
    assert printed[-1].startswith("ratio=")
    figures = json.loads(out.read_text(encoding="utf-8"))
    assert figures["events"] > 50
    assert figures["ratio"] == float(printed[-1].removeprefix("ratio="))
    # every case of the stream opened and kept its timers; the heap they take is measured
    assert figures["open_cases"] == figures["pending_timers"] == 50
    assert figures["bytes_per_open_case"] > 0
    # the breakdown splits the measured µs/event (shares of one profile, the rest included)
    stages = figures["breakdown_us_per_event"]
    assert len(stages) == 7
    assert sum(stages.values()) == pytest.approx(figures["engine_us_per_event"], abs=0.5)
    assert stages["decode + validate event (json, pydantic)"] > 0
    # at the limits: every worst guard and the alias bomb, each with its ratio to a baseline
    limits = figures["at_the_limits"]
    assert sorted(limits["worst_guards"]) == sorted(WORST)
    rows = [*limits["worst_guards"].values(), limits["alias_bomb"]]
    sizes = [limits["plain_guard_ms"], *(v for row in rows for v in row.values())]
    assert all(isinstance(v, int | float) and 0 < v < math.inf for v in sizes)
    assert "refuse alias-bomb.yaml" in "\n".join(printed)


def test_run_with_invalid_settings_exits_2_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("FENGQIAO_COMMIT_INTERVAL_MS", "0")
    assert main(["run"]) == 2
    assert "FENGQIAO_COMMIT_INTERVAL_MS" in capsys.readouterr().err
