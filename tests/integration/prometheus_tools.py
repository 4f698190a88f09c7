"""Finding `promtool` and `prometheus`, and running a real Prometheus server for a test.

Where the binaries come from, first that works: env `FENGQIAO_PROMTOOL` / `FENGQIAO_PROMETHEUS`;
the PATH; Debian's `prometheus` package, installed with apt-get when running as root (it brings
both binaries). Otherwise the test fails with what to install — it never skips, so `make test`
cannot pass without having checked the rules.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.promql import PROMETHEUS, RULE_FILES

APT_PACKAGE = "prometheus"
_ENV = {"promtool": "FENGQIAO_PROMTOOL", "prometheus": "FENGQIAO_PROMETHEUS"}


def find_tool(name: str) -> str:
    """Path of `promtool` or `prometheus` (see the module docstring)."""
    explicit = os.environ.get(_ENV[name], "").strip()
    if explicit:
        if not os.access(explicit, os.X_OK):
            pytest.fail(f"{_ENV[name]}={explicit} is not an executable", pytrace=False)
        return explicit
    found = shutil.which(name)
    if found:
        return found
    problem = _apt_install()
    found = shutil.which(name)
    if found:
        return found
    pytest.fail(
        f"`{name}` not found ({problem}). Install Debian's `{APT_PACKAGE}` package "
        f"(apt-get install {APT_PACKAGE}), put {name} on PATH, or set {_ENV[name]}.",
        pytrace=False,
    )


def _apt_install() -> str:
    """Install the package if we may; say why not otherwise."""
    if os.geteuid() != 0:
        return "not root, so not installing it"
    apt = shutil.which("apt-get")
    if apt is None:
        return "no apt-get here"
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for args in (
        ["update", "-qq"],
        ["install", "-y", "-qq", "--no-install-recommends", APT_PACKAGE],
    ):
        done = subprocess.run(
            [apt, *args], capture_output=True, text=True, env=env, timeout=900, check=False
        )
        if done.returncode != 0:
            return f"apt-get {args[0]} failed: {done.stderr.strip()[-500:]}"
    return "apt-get installed the package but the binary is still missing"


def free_port() -> int:
    """A loopback port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def http_get(url: str, timeout: float = 5.0) -> bytes:
    with urllib.request.urlopen(url, timeout=timeout) as answer:  # noqa: S310 - loopback URLs
        body: bytes = answer.read()
        return body


class PrometheusServer:
    """A real Prometheus: deploy/prometheus/prometheus.yml with the target and intervals replaced
    (the rule files are the real ones), its data in a temporary folder, on loopback."""

    def __init__(self, workdir: Path, target: str, interval: str = "1s") -> None:
        self.workdir = workdir
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        config = yaml.safe_load((PROMETHEUS / "prometheus.yml").read_text(encoding="utf-8"))
        config["global"] = {"scrape_interval": interval, "evaluation_interval": interval}
        config["rule_files"] = [str(path) for path in RULE_FILES]
        config["scrape_configs"][0]["static_configs"] = [{"targets": [target]}]
        self.config = workdir / "prometheus.yml"
        self.config.write_text(yaml.safe_dump(config), encoding="utf-8")
        self.log = workdir / "prometheus.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout_s: float = 60) -> None:
        binary = find_tool("prometheus")
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(
                [binary, f"--config.file={self.config}",
                 f"--storage.tsdb.path={self.workdir / 'data'}",
                 f"--web.listen-address=127.0.0.1:{self.port}"],
                stdout=log, stderr=subprocess.STDOUT, cwd=self.workdir,
            )  # fmt: skip
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                break
            try:
                http_get(f"{self.url}/-/ready", timeout=1)
                return
            except (urllib.error.URLError, OSError):
                time.sleep(0.3)
        self.stop()
        pytest.fail(f"Prometheus did not become ready:\n{self.log.read_text()[-3000:]}")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=30)

    def api(self, path: str, **params: str) -> Any:
        """`data` of an HTTP API answer; fails the test on an error answer."""
        url = f"{self.url}/api/v1/{path}?{urllib.parse.urlencode(params)}"
        try:
            answer = json.loads(http_get(url, timeout=30))
        except urllib.error.HTTPError as err:
            answer = json.loads(err.read() or b"{}")
        assert answer.get("status") == "success", f"{path} {params}: {answer}"
        return answer["data"]

    def query(self, expr: str) -> list[dict[str, Any]]:
        data = self.api("query", query=expr)
        result: list[dict[str, Any]] = data["result"]
        return result
