"""Workflow upgrades on a real broker: a version still used by open cases cannot be removed,
and `fengqiao migrate` moves the cases through Kafka, exactly once and audited."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from tests.integration.harness import ROOT, EngineProcess, produce, read_all
from tests.integration.test_engine_loop import _setup

V1 = ROOT / "workflows" / "dispute-escalation.yaml"


def _v2_text() -> str:
    text = V1.read_text(encoding="utf-8").replace("version: 1", "version: 2")
    return text.replace("grid.mediating", "grid.handling")


def _folder(path: Path, *, v1: bool, v2: bool) -> Path:
    if path.exists():
        shutil.rmtree(path)
    path.mkdir()
    if v1:
        shutil.copy(V1, path / "dispute-escalation.yaml")
    if v2:
        (path / "dispute-escalation-v2.yaml").write_text(_v2_text(), encoding="utf-8")
    return path


def _migrate(env: dict[str, str], *extra: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "consumers.cli.main", "migrate",
               "--from", "dispute-escalation@1", "--to", "dispute-escalation@2",
               "--map", "grid.mediating=grid.handling",
               "--sla", "keep", "--at", "2025-09-27T09:00:00+08:00", *extra]  # fmt: skip
    return subprocess.run(command, cwd=ROOT, env={**os.environ, **env, "PYTHONPATH": str(ROOT)},
                          capture_output=True, text=True, timeout=120, check=False)  # fmt: skip


def test_removing_a_used_version_is_refused_and_migrate_moves_cases_once(
    kafka_bootstrap: str, unique_name: Callable[[str], str], tmp_path: Path
) -> None:
    settings, env = _setup(kafka_bootstrap, unique_name, partitions=2)
    folder = tmp_path / "workflows"
    env["FENGQIAO_WORKFLOWS"] = str(_folder(folder, v1=True, v2=False))
    reports = [json.dumps({
        "event_id": f"r{n}", "case_id": f"roof-{n}", "type": "case.reported",
        "occurred_at": "2025-09-26T10:00:00+08:00", "source": "grid",
        "payload": {"workflow": "dispute-escalation", "attributes": {"category": "neighbour"}},
    }).encode() for n in range(5)]  # fmt: skip
    produce(kafka_bootstrap, settings.topic_case_events, reports, partitions=2)
    log = tmp_path / "engine.log"
    first = EngineProcess(env, log)
    first.start()
    read_all(kafka_bootstrap, settings.topic_transitions, expect=5, timeout_s=90)
    assert first.terminate() == 0, log.read_text()

    _folder(folder, v1=False, v2=True)  # version 1 removed while 5 cases are open on it
    refused = EngineProcess(env, tmp_path / "refused.log")
    refused.start()
    assert refused.proc is not None
    code = refused.proc.wait(timeout=120)
    text = (tmp_path / "refused.log").read_text()
    assert code == 1, text
    assert "dispute-escalation@1 (5 open cases)" in text

    _folder(folder, v1=True, v2=True)
    dry = _migrate(env, "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert "grid.mediating -> grid.handling: 5 open case(s)" in dry.stdout
    assert "nothing sent" in dry.stdout
    for _ in range(2):  # running it twice moves nothing twice
        done = _migrate(env)
        assert done.returncode == 0, done.stderr
    engine = EngineProcess(env, log)
    engine.start()
    records = read_all(kafka_bootstrap, settings.topic_transitions, expect=10, timeout_s=90)
    time.sleep(2)
    assert engine.terminate() == 0, log.read_text()
    migrated = [r for r in records if r["type"] == "case.migrated"]
    assert len(migrated) == 5
    assert {(r["workflow_version"], r["to_state"], r["sla_policy"]) for r in migrated} == {
        (2, "grid.handling", "keep")
    }
    assert {r["sla"]["deadline"] for r in migrated} == {"2025-10-01T00:00:00+08:00"}

    _folder(folder, v1=False, v2=True)  # no open case uses version 1 any more
    after = EngineProcess(env, tmp_path / "after.log")
    after.start()
    time.sleep(8)
    assert after.alive(), (tmp_path / "after.log").read_text()
    assert after.terminate() == 0
