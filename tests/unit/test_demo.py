"""`fengqiao demo`: a small town end to end, resuming after Ctrl-C and SIGKILL, metrics served.

The town is small (a few thousand residents, a few weeks) so each run takes a second or two;
the resume tests run the CLI as a real process and interrupt it for real.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections import Counter
from pathlib import Path

import pytest
from rich.console import Console

from consumers.cli.main import main
from consumers.demo.files import Checkpoint, FolderError, RecordLog, RunFolder
from consumers.demo.run import DemoOptions, run_demo
from consumers.demo.town import TownSpec
from consumers.demo.town_stats import RESOLVED_OUTCOMES, Tally, ladders_of
from engine.registry import WorkflowRegistry

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
SMALL = ["--size", "20000", "--days", "45", "--speed", "0", "--port", "0"]


def _records(folder: Path) -> list[dict[str, object]]:
    lines = (folder / "records.jsonl").read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines]


def _row(out: str, workflow: str, tier: str) -> list[int]:
    """entered, resolved, escalated, breached of one row of the printed tier table."""
    match = re.search(rf"{re.escape(workflow)}\s*│\s*{tier}\s*│([\d,\s│]+)", out)
    assert match, f"no row {workflow}/{tier} in:\n{out}"
    return [int(cell.replace(",", "")) for cell in match.group(1).split("│") if cell.strip()]


def test_small_town_prints_the_summary_and_writes_the_report(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "demo"
    assert main(["demo", *SMALL, "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    records = _records(out)
    # The printed table is what the records say: entries into the grid rung, breaches...
    entered = Counter(
        (r["workflow"], r["to_tier"])
        for r in records
        if r["type"] == "case.transitioned" and r["to_tier"] != r["from_tier"]
    )
    grid = _row(printed, "dispute-escalation", "grid")
    assert grid[0] == entered[("dispute-escalation", "grid")] > 10
    street = _row(printed, "hotline-12345", "street")
    assert street[0] == entered[("hotline-12345", "street")] > 80
    closed = [r for r in records if r["type"] == "case.closed"]
    resolved_on_street = sum(
        1 for r in closed if r["resolved_tier"] == "street" and r["outcome"] in RESOLVED_OUTCOMES
    )
    assert street[1] == resolved_on_street
    for ratio in ("Local resolution", "Mediation success", "On-time", "Escalation",
                  "Satisfaction"):  # fmt: skip
        assert re.search(rf"{ratio}[^\n]*\d+\.\d%", printed), ratio
    report = Path(re.search(r"report: (\S+)", printed).group(1))  # type: ignore[union-attr]
    assert report == (out / "report.html").resolve()
    html = report.read_text(encoding="utf-8")
    assert html.count('<svg class="chart sankey"') == 3
    assert html.count('class="link"') > 10
    assert "<script src" not in html
    assert "http://" not in html.replace("http://www.w3.org/2000/svg", "")
    assert "https://" not in html


def test_the_town_is_the_same_for_the_same_flags_and_needs_no_stray_refusals(
    tmp_path: Path,
) -> None:
    """The stories and the engine agree: the only refusals are the second reports the town
    sends on purpose; and the same flags give the same records, byte for byte."""
    runs = []
    for name in ("a", "b"):
        out = tmp_path / name
        assert main(["demo", *SMALL, "--size", "40000", "--out", str(out)]) == 0
        runs.append((out / "records.jsonl").read_bytes())
    assert runs[0] == runs[1]
    rejected = [r for r in _records(tmp_path / "a") if r["type"] == "event.rejected"]
    assert rejected, "the town sends a few second-channel reports"
    for record in rejected:
        assert record["reason"] == "invalid_transition", record
        assert "'case.reported'" in str(record["detail"]) or "closed" in str(record["detail"])


def test_figures_follow_the_domain_brief(tmp_path: Path) -> None:
    """A bigger town, so the ratios settle: most disputes end locally, mediation succeeds
    about nine times in ten, callers are satisfied, deadlines are mostly kept."""
    console = Console(file=open(os.devnull, "w"), width=200)  # noqa: SIM115 - closed below
    spec = TownSpec(population=100_000, days=100)
    options = DemoOptions(spec, ROOT / "workflows", tmp_path, speed=0, port=0)
    try:
        assert run_demo(options, console) == 0
    finally:
        console.file.close()
    registry = WorkflowRegistry.load(ROOT / "workflows")
    town_tz = registry.newest("dispute-escalation").tz  # type: ignore[union-attr]
    tally = Tally(ladders_of(registry), spec.start, town_tz)
    for record in RecordLog(RunFolder(tmp_path)).read():
        tally.add(record)
    disputes, hotline = tally.ratios("dispute-escalation"), tally.ratios("hotline-12345")
    assert (disputes.local_resolution or 0) >= 0.93
    assert 0.8 <= (disputes.mediation_success or 0) <= 0.95
    assert (hotline.satisfaction or 0) >= 0.95
    assert all(
        r.on_time is not None and r.on_time >= 0.85 for r in map(tally.ratios, tally.ladders)
    )
    assert tally.workflows["dispute-escalation"].breaches > 0, "some grid limits lapse"


def test_another_town_in_the_folder_is_refused_until_fresh(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = str(tmp_path / "demo")
    assert main(["demo", *SMALL, "--days", "10", "--out", out]) == 0
    capsys.readouterr()
    assert main(["demo", *SMALL, "--days", "10", "--seed", "7", "--out", out]) == 2
    assert "pass --fresh" in capsys.readouterr().out
    assert main(["demo", *SMALL, "--days", "10", "--out", out]) == 0
    assert "already holds the complete run" in capsys.readouterr().out
    assert main(["demo", *SMALL, "--days", "10", "--seed", "7", "--out", out, "--fresh"]) == 0


def _cli(out: Path, *flags: str) -> subprocess.Popen[str]:
    command = [sys.executable, "-m", "consumers.cli.main", "demo", "--size", "20000",
               "--days", "60", "--port", "0", "--out", str(out), *flags]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(ROOT), "COLUMNS": "200"}
    return subprocess.Popen(
        command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )


def _commits(out: Path) -> int:
    index = out / "records.index"
    return len(index.read_text(encoding="utf-8").splitlines()) if index.exists() else 0


def _interrupt(out: Path, sig: signal.Signals, after_commits: int) -> str:
    proc = _cli(out, "--speed", "25")
    deadline = time.monotonic() + 60
    while _commits(out) < after_commits and proc.poll() is None:
        assert time.monotonic() < deadline, "the demo did not get going"
        time.sleep(0.02)
    proc.send_signal(sig)
    text, _ = proc.communicate(timeout=60)
    expected = -signal.SIGKILL if sig == signal.SIGKILL else 130
    assert proc.returncode == expected, text
    return text


def test_ctrl_c_and_kill_leave_a_folder_that_resumes_to_the_same_records(tmp_path: Path) -> None:
    reference = tmp_path / "reference"
    done = _cli(reference, "--speed", "0")
    assert done.wait(timeout=120) == 0
    out = tmp_path / "interrupted"
    text = _interrupt(out, signal.SIGINT, after_commits=10)
    assert "run the same command again to resume" in text
    stopped_at = _commits(out)
    assert 10 <= stopped_at < 60
    _interrupt(out, signal.SIGKILL, after_commits=stopped_at + 10)
    resumed = _cli(out, "--speed", "0")
    text, _ = resumed.communicate(timeout=120)
    assert resumed.returncode == 0, text
    assert "resuming after day" in text
    assert (out / "records.jsonl").read_bytes() == (reference / "records.jsonl").read_bytes()
    summary = re.compile(r"Cases per tier.*?└", re.DOTALL)
    first, _ = done.communicate()
    assert summary.search(text).group(0) == summary.search(first).group(0)  # type: ignore[union-attr]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def test_metrics_are_served_while_it_runs(tmp_path: Path) -> None:
    port = _free_port()
    spec = TownSpec(population=20_000, days=40)
    options = DemoOptions(spec, ROOT / "workflows", tmp_path, speed=40, port=port)
    console = Console(file=open(os.devnull, "w"))  # noqa: SIM115 - closed below
    result: list[int] = []
    worker = threading.Thread(target=lambda: result.append(run_demo(options, console)))
    worker.start()
    seen = ""
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and worker.is_alive():
            try:
                url = f"http://127.0.0.1:{port}/metrics"
                with urllib.request.urlopen(url, timeout=2) as response:
                    seen = response.read().decode()
            except OSError:
                time.sleep(0.05)
                continue
            consumed = re.search(r"^fengqiao_events_consumed_total (\S+)", seen, re.M)
            if consumed and float(consumed.group(1)) > 0:
                break
            time.sleep(0.05)
    finally:
        worker.join(timeout=60)
        console.file.close()
    assert result == [0]
    assert re.search(r"^fengqiao_events_consumed_total [1-9]", seen, re.M), seen[:2000]
    open_grid = re.search(r'^fengqiao_cases_open\{[^}]*state="grid.mediating"[^}]*\} ', seen, re.M)
    assert open_grid, "the case gauges are published"
    assert "fengqiao_tier_entries_total" in seen


def test_recovery_cuts_records_and_checkpoints_back_to_the_stores_commit(tmp_path: Path) -> None:
    folder = RunFolder(tmp_path)
    log = RecordLog(folder)
    assert log.recover(None) == Checkpoint()
    log.open()
    for n in (1, 2, 3):
        log.prepare([f'{{"n": {n}}}\n'.encode()], Checkpoint(commit=n, position=10 * n, day=n))
    log.close()
    with folder.index.open("a", encoding="utf-8") as index:
        index.write('{"commit": 4, "posit')  # cut short by a crash
    # The store committed batch 2: batch 3's records and checkpoint never happened.
    at = RecordLog(folder).recover(2)
    assert (at.commit, at.position, at.day) == (2, 20, 2)
    assert [r["n"] for r in RecordLog(folder).read()] == [1, 2]
    assert len(folder.index.read_text(encoding="utf-8").splitlines()) == 2
    with pytest.raises(FolderError, match="no checkpoint 5"):
        RecordLog(folder).recover(5)
    assert RecordLog(folder).recover(None) == Checkpoint()
    assert list(RecordLog(folder).read()) == []
