"""A broker outage mid-stream is survived without manual action.

This test owns its broker (the session's broker must stay up for the other tests): it starts one
with `deploy/local/kafka`, stops it while the engine is working, starts it again on the same
ports and data, and expects the engine to carry on to the exact output of `simulate`.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from consumers.synthetic import synthetic_stream
from tests.integration.harness import ROOT, EngineProcess, by_case, produce, read_all, tick_events
from tests.integration.test_engine_loop import _expected, _setup

LOCAL_KAFKA = ROOT / "deploy" / "local" / "kafka"


def _kafka(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "FENGQIAO_PYTHON": sys.executable}
    return subprocess.run(
        [str(LOCAL_KAFKA), *args], capture_output=True, text=True, env=env, timeout=300,
        check=False,
    )  # fmt: skip


@pytest.fixture
def own_broker(
    kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[str, Path]]:
    """A second broker for this test only (depends on the session broker so that a missing
    Kafka fails or skips the same way)."""
    state = tmp_path_factory.mktemp("outage-broker")
    started = _kafka("start", "--dir", str(state))
    found = re.search(r"^bootstrap=(\S+)$", started.stdout, re.MULTILINE)
    assert started.returncode == 0, started.stderr
    assert found is not None
    try:
        yield found.group(1), state
    finally:
        _kafka("stop", "--dir", str(state), "--clean")


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_engine_survives_a_broker_restart(
    own_broker: tuple[str, Path], unique_name: Callable[[str], str], tmp_path: Path
) -> None:
    bootstrap, state = own_broker
    settings, env = _setup(bootstrap, unique_name, partitions=2)
    lines = synthetic_stream(800)
    half = len(lines) // 2
    first, second = lines[:half], lines[half:] + tick_events(2, "2026-12-31T00:00:00+08:00")
    expected, _, count = _expected(first + second)
    produce(bootstrap, settings.topic_case_events, first, partitions=2)
    engine = EngineProcess(env, tmp_path / "engine.log")
    engine.start()
    time.sleep(8)
    stopped = _kafka("stop", "--dir", str(state))  # keeps the data and the ports
    assert stopped.returncode == 0, stopped.stderr
    time.sleep(5)
    restarted = _kafka("start", "--dir", str(state))
    assert restarted.returncode == 0, restarted.stderr
    assert engine.alive(), (tmp_path / "engine.log").read_text()
    produce(bootstrap, settings.topic_case_events, second, partitions=2)
    records = read_all(bootstrap, settings.topic_transitions, expect=count, timeout_s=240)
    assert engine.terminate() == 0, (tmp_path / "engine.log").read_text()
    assert len(records) == count
    assert by_case(records) == expected
