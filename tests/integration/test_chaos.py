"""The chaos run as a test (slow): see tests/integration/chaos.py for the scenario."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.integration.chaos import run_chaos


@pytest.mark.slow
@pytest.mark.timeout(1200)
def test_chaos_run_equals_simulate(kafka_bootstrap: str, tmp_path: Path) -> None:
    """≥100,000 events over ≥5,000 cases, two engines and the adapters, 20 SIGKILLs, a zombie
    paused past its session timeout, a broker restart (the run owns its broker; the session
    fixture only guarantees Kafka can be had on this machine)."""
    assert kafka_bootstrap
    report = run_chaos(cases=52_000, kills=20, seed=1963, workdir=tmp_path)
    print(report)
    assert report.events >= 100_000
    assert report.cases >= 5_000
    assert report.kills >= 20
    assert report.broker_restarts == 1
    assert report.zombie_pauses == 1
