"""`promtool` on deploy/prometheus: the configuration and rules load, and the rule unit tests in
tests/prometheus/ pass (tests/unit/test_observability_config.py checks they cover every alert).

Needs no broker; it lives with the integration tests because it needs an outside binary (found
or installed by tests/integration/prometheus_tools.py).
"""

from __future__ import annotations

import subprocess

import pytest

from tests.integration.prometheus_tools import find_tool
from tests.promql import PROMETHEUS, ROOT, RULE_FILES

# The first test may install Debian packages with apt (prometheus, chromium): minutes.
pytestmark = pytest.mark.timeout(900)

PROMTOOL_TESTS = sorted((ROOT / "tests" / "prometheus").glob("*.test.yml"))


def _promtool(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [find_tool("promtool"), *args], capture_output=True, text=True, timeout=300, check=False
    )


def test_promtool_checks_the_configuration_and_the_rules() -> None:
    config = _promtool("check", "config", str(PROMETHEUS / "prometheus.yml"))
    assert config.returncode == 0, config.stdout + config.stderr
    rules = _promtool("check", "rules", *map(str, RULE_FILES))
    assert rules.returncode == 0, rules.stdout + rules.stderr
    assert rules.stdout.count("SUCCESS") == len(RULE_FILES)


def test_promtool_rule_unit_tests_pass() -> None:
    assert len(PROMTOOL_TESTS) >= 2
    done = _promtool("test", "rules", *map(str, PROMTOOL_TESTS))
    report = done.stdout + done.stderr
    assert done.returncode == 0, report
    assert report.count("SUCCESS") == len(PROMTOOL_TESTS), report
