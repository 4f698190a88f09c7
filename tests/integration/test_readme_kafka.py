"""The README's "Running on Kafka" commands, as a reader types them, against a real broker.

`deploy/local/kafka start/stop` are what the session fixture runs (tests/integration/
conftest.py); here: `export FENGQIAO_BOOTSTRAP_SERVERS=…`, `fengqiao topics create` (twice: it is
idempotent) and `fengqiao run` with its /healthz, /readyz and /metrics on the HTTP port, stopped
by SIGTERM with exit 0, as the README promises. Topic, group and transactional names are unique
to the test, set through the FENGQIAO_* variables the README documents.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

from consumers.kafka.topics import topic_specs
from consumers.runtime.settings import load_settings

ROOT = Path(__file__).resolve().parents[2]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:  # noqa: S310 - local http
            return response.status, response.read().decode()
    except urllib.error.HTTPError as err:
        return err.code, err.read().decode()


def _fengqiao(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "consumers.cli.main", *args],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip


def test_topics_create_then_run_serves_probes_and_stops_on_sigterm(
    kafka_bootstrap: str, kafka_admin: Any, unique_name: Callable[..., str], tmp_path: Path
) -> None:
    port = _free_port()
    variables = {
        "FENGQIAO_BOOTSTRAP_SERVERS": kafka_bootstrap,  # the README's `export`
        "FENGQIAO_TOPIC_CASE_EVENTS": unique_name("case-events"),
        "FENGQIAO_TOPIC_TRANSITIONS": unique_name("transitions"),
        "FENGQIAO_TOPIC_CASE_STATE": unique_name("case-state"),
        "FENGQIAO_TOPIC_DEAD_LETTER": unique_name("dead-letter"),
        "FENGQIAO_INTAKE_TOPIC_PREFIX": unique_name("intake") + ".",
        "FENGQIAO_GROUP_ID": unique_name("group"),
        "FENGQIAO_ADAPTER_GROUP_ID": unique_name("adapters"),
        "FENGQIAO_TRANSACTIONAL_ID_PREFIX": unique_name("tx"),
        "FENGQIAO_PARTITIONS": "2",
        "FENGQIAO_HTTP_PORT": str(port),
    }
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("FENGQIAO_")},
        **variables, "PYTHONPATH": str(ROOT),
    }  # fmt: skip
    topics = [spec.name for spec in topic_specs(load_settings(_settings(variables)))]
    try:
        created = _fengqiao(env, "topics", "create")
        assert created.returncode == 0, created.stderr
        assert variables["FENGQIAO_TOPIC_CASE_STATE"] in created.stdout
        again = _fengqiao(env, "topics", "create")
        assert again.returncode == 0, again.stderr
        log = (tmp_path / "run.log").open("wb")
        proc = subprocess.Popen(
            [sys.executable, "-m", "consumers.cli.main", "run"],
            cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
        try:
            ready = _wait_ready(f"http://127.0.0.1:{port}", proc)
            assert ready, (tmp_path / "run.log").read_text(errors="replace")[-3000:]
            assert _get(f"http://127.0.0.1:{port}/healthz") == (200, "ok\n")
            status, metrics = _get(f"http://127.0.0.1:{port}/metrics")
            assert status == 200
            assert "fengqiao_events_consumed_total" in metrics
        finally:
            proc.send_signal(signal.SIGTERM)
            code = proc.wait(timeout=60)
            log.close()
        assert code == 0, (tmp_path / "run.log").read_text(errors="replace")[-3000:]
    finally:
        kafka_admin.delete_topics(topics, raise_errors=False)


def _settings(variables: dict[str, str]) -> dict[str, object]:
    prefix = "FENGQIAO_"
    return {k.removeprefix(prefix).lower(): v for k, v in variables.items()}


def _wait_ready(base: str, proc: subprocess.Popen[bytes], timeout_s: float = 90) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            if _get(f"{base}/readyz")[0] == 200:
                return True
        except OSError:
            pass
        time.sleep(0.2)
    return False
