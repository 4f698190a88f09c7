"""deploy/prometheus and deploy/grafana checked offline: every alert has a runbook and unit tests,
every recording rule a test, and every dashboard and rule reads only metrics the engine exports.

The same expressions run against a real Prometheus in tests/integration/
test_observability_e2e.py; this file catches the cheap mistakes without one.
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client import CollectorRegistry

from consumers.runtime.intake_metrics import IntakeMetrics
from consumers.runtime.metrics import EngineMetrics
from engine.registry import WorkflowRegistry
from tests.integration.intake_samples import CHANNELS
from tests.promql import (
    DASHBOARDS,
    GRAFANA,
    PROMETHEUS,
    ROOT,
    RULE_FILES,
    all_expressions,
    load_dashboard,
    metric_names,
    panels,
    rule_expressions,
)

pytestmark = pytest.mark.unit

PROMTOOL_TESTS = sorted((ROOT / "tests" / "prometheus").glob("*.test.yml"))


def _rules() -> list[dict[str, Any]]:
    return [
        rule
        for path in RULE_FILES
        for group in yaml.safe_load(path.read_text(encoding="utf-8"))["groups"]
        for rule in group["rules"]
    ]


def _alerts() -> list[dict[str, Any]]:
    return [rule for rule in _rules() if "alert" in rule]


def _exported(registry: WorkflowRegistry) -> set[str]:
    """Every sample name `fengqiao run` exports (counters' _total, histograms' _bucket …)."""
    fresh = CollectorRegistry()
    metrics = EngineMetrics.create(fresh, registry)
    IntakeMetrics.create(fresh, CHANNELS)  # every channel's series exported from the start
    # Histograms and labelled series export samples only once observed or labelled.
    metrics.consumer_lag.labels("0").set(0)
    metrics.restore_remaining.labels("0").set(0)
    metrics.business.time_in_state.labels("w", "t", "s").observe(1)
    metrics.business.transitions.labels("w", "a", "b", "t").inc()
    metrics.business.escalations.labels("w", "a", "b", "event").inc()
    metrics.business.sla_changes.labels("w", "s", "paused").inc()
    metrics.business.closed.labels("w", "resolved", "t", "1", "0", "true").inc()
    return {sample.name for family in fresh.collect() for sample in family.samples}


def test_every_alert_has_a_severity_summary_description_and_runbook() -> None:
    alerts = _alerts()
    assert len(alerts) >= 7
    for alert in alerts:
        assert alert["labels"]["severity"] in {"page", "ticket"}, alert["alert"]
        for key in ("summary", "description", "runbook"):
            assert len(alert["annotations"].get(key, "")) > 20, (alert["alert"], key)


def test_every_alert_is_unit_tested_firing_and_quiet() -> None:
    fires: dict[str, int] = defaultdict(int)
    quiet: dict[str, int] = defaultdict(int)
    for path in PROMTOOL_TESTS:
        spec = yaml.safe_load(path.read_text(encoding="utf-8"))
        for files in spec["rule_files"]:
            assert (path.parent / files).resolve().exists(), (path.name, files)
        for case in spec["tests"]:
            for check in case.get("alert_rule_test", []):
                (fires if check["exp_alerts"] else quiet)[check["alertname"]] += 1
    names = {alert["alert"] for alert in _alerts()}
    assert names <= set(fires), f"alerts never shown firing: {sorted(names - set(fires))}"
    assert names <= set(quiet), f"alerts never shown quiet: {sorted(names - set(quiet))}"


def test_every_recording_rule_is_read_by_a_test_or_an_alert() -> None:
    tested = " ".join(p.read_text(encoding="utf-8") for p in PROMTOOL_TESTS)
    read_by_alerts = " ".join(alert["expr"] for alert in _alerts())
    for rule in _rules():
        if "record" in rule:
            name = rule["record"]
            assert f"expr: {name}" in tested or f"({name}" in tested or name in read_by_alerts, name


def test_rules_and_dashboards_read_only_metrics_the_engine_exports(
    registry: WorkflowRegistry,
) -> None:
    exported = _exported(registry) | {"up"}
    recorded = {rule["record"] for rule in _rules() if "record" in rule}
    expressions = all_expressions()
    assert len(expressions) > 40
    unknown = {
        (e.where, name)
        for e in expressions
        for name in metric_names(e.expr)
        if name not in exported | recorded
    }
    assert unknown == set()


def test_the_alerts_select_the_scrape_job_of_prometheus_yml() -> None:
    config = yaml.safe_load((PROMETHEUS / "prometheus.yml").read_text(encoding="utf-8"))
    jobs = {job["job_name"] for job in config["scrape_configs"]}
    assert jobs == {"fengqiao"}
    assert sorted(config["rule_files"]) == sorted(p.name for p in RULE_FILES)
    for e in rule_expressions():
        if "job=" in e.expr:
            assert 'job="fengqiao"' in e.expr, e.where


@pytest.mark.parametrize("path", DASHBOARDS, ids=lambda p: Path(p).stem)
def test_dashboard_structure(path: Path) -> None:
    board = load_dashboard(path)
    assert board["uid"].startswith("fengqiao-")
    variables = {v["name"] for v in board["templating"]["list"]}
    assert "datasource" in variables
    ids: list[int] = []
    cells: set[tuple[int, int]] = set()
    for panel in panels(board):
        ids.append(panel["id"])
        grid = panel["gridPos"]
        assert grid["x"] >= 0, panel["title"]
        assert grid["x"] + grid["w"] <= 24, panel["title"]
        covered = {(x, y) for x in range(grid["x"], grid["x"] + grid["w"])
                   for y in range(grid["y"], grid["y"] + grid["h"])}  # fmt: skip
        assert not covered & cells, f"{panel['title']} overlaps another panel"
        cells |= covered
        if panel["type"] == "row":
            continue
        assert panel["datasource"]["uid"] == "${datasource}", panel["title"]
        assert panel["description"], panel["title"]
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            assert target["expr"].strip(), panel["title"]
            for used in ("$workflow", "$instance"):
                if used in target["expr"]:
                    assert used[1:] in variables, (panel["title"], used)
    assert len(ids) == len(set(ids)), "panel ids must be unique"


def test_grafana_provisioning_points_at_the_dashboards() -> None:
    sources = yaml.safe_load(
        (GRAFANA / "provisioning" / "datasources" / "fengqiao.yaml").read_text(encoding="utf-8")
    )
    assert [s["type"] for s in sources["datasources"]] == ["prometheus"]
    providers = yaml.safe_load(
        (GRAFANA / "provisioning" / "dashboards" / "fengqiao.yaml").read_text(encoding="utf-8")
    )
    assert providers["providers"][0]["options"]["path"].endswith("/fengqiao")
    assert len(DASHBOARDS) == 2
    titles = {load_dashboard(p)["title"] for p in DASHBOARDS}
    assert titles == {"Fengqiao operations", "Fengqiao engine health"}
