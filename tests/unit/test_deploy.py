"""deploy/ stays consistent with the code: there is no Docker engine or cluster here, so what can
drift is checked statically: ports, FENGQIAO_* variables, topic names, metric names, workflow
files, paths and commands."""

from __future__ import annotations

import argparse
import re
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client import CollectorRegistry

from consumers.cli.main import build_parser
from consumers.runtime.intake_metrics import IntakeMetrics
from consumers.runtime.metrics import EngineMetrics
from consumers.runtime.settings import ENV_PREFIX, Settings, env_name
from consumers.view.access import load_access
from consumers.view.settings import ViewSettings
from engine.registry import WorkflowRegistry
from tests.integration.intake_samples import CHANNELS

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
COMPOSE = DEPLOY / "compose.yaml"
K8S = DEPLOY / "k8s"
DOCKERFILE = DEPLOY / "Dockerfile"
PORT = Settings.model_fields["http_port"].default
VIEW_PORT = ViewSettings.model_fields["view_http_port"].default
TEXT_SUFFIXES = {".yaml", ".yml", ".json", ".md", ""}


def _deploy_files() -> list[Path]:
    """Every text file under deploy/ except the local broker's own (it is not deployed)."""
    return sorted(
        p
        for p in DEPLOY.rglob("*")
        if p.is_file() and p.suffix in TEXT_SUFFIXES and "local" not in p.relative_to(DEPLOY).parts
    )


def _yaml_documents(path: Path) -> list[Any]:
    return [d for d in yaml.safe_load_all(path.read_text(encoding="utf-8")) if d is not None]


def _k8s() -> dict[str, dict[str, Any]]:
    """The Kubernetes objects of deploy/k8s by `KIND/NAME`, and by kind alone for the first of
    each kind in the kustomization (the engine's: its files come first)."""
    kustomization = yaml.safe_load((K8S / "kustomization.yaml").read_text(encoding="utf-8"))
    objects: dict[str, dict[str, Any]] = {}
    for name in kustomization["resources"]:
        for doc in _yaml_documents(K8S / name):
            objects.setdefault(doc["kind"], doc)
            objects[f"{doc['kind']}/{doc['metadata']['name']}"] = doc
    return objects


def _compose() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))
    return data


def test_every_fengqiao_variable_is_a_real_setting() -> None:
    known = {env_name(name) for name in (*Settings.model_fields, *ViewSettings.model_fields)} | {
        f"{ENV_PREFIX}KAFKA_BOOTSTRAP_SERVERS"
    }
    used: dict[str, set[str]] = {}
    for path in [*_deploy_files(), DOCKERFILE]:
        for name in re.findall(r"\bFENGQIAO_[A-Z0-9_]*[A-Z0-9]", path.read_text(encoding="utf-8")):
            used.setdefault(name, set()).add(str(path.relative_to(ROOT)))
    unknown = {name: sorted(files) for name, files in used.items() if name not in known}
    assert not unknown, f"not Settings fields (consumers/runtime/settings.py): {unknown}"
    assert "FENGQIAO_INSTANCE_ID" in used
    assert "FENGQIAO_BOOTSTRAP_SERVERS" in used


def test_the_metrics_port_is_the_settings_default_everywhere() -> None:
    assert re.search(rf"^EXPOSE {PORT}$", DOCKERFILE.read_text(encoding="utf-8"), re.M)
    assert f"127.0.0.1:{PORT}/healthz" in DOCKERFILE.read_text(encoding="utf-8")
    services = _compose()["services"]
    for name in ("engine", "adapters"):
        assert services[name]["ports"][0].endswith(f":{PORT}")
    assert services["engine"]["ports"] == [f"{PORT}:{PORT}"]
    scrape = yaml.safe_load((DEPLOY / "compose" / "prometheus.yml").read_text(encoding="utf-8"))
    targets = scrape["scrape_configs"][0]["static_configs"][0]["targets"]
    assert targets == [f"engine:{PORT}", f"adapters:{PORT}"]
    view_targets = scrape["scrape_configs"][1]["static_configs"][0]["targets"]
    assert view_targets == [f"view:{VIEW_PORT}"]
    k8s = _k8s()
    pod = k8s["StatefulSet"]["spec"]["template"]
    container = pod["spec"]["containers"][0]
    assert container["ports"] == [{"name": "metrics", "containerPort": PORT}]
    assert pod["metadata"]["annotations"]["prometheus.io/port"] == str(PORT)
    assert k8s["Service"]["spec"]["ports"][0]["port"] == PORT
    settings = (
        k8s["ConfigMap"]["data"]
        if k8s["ConfigMap"]["metadata"]["name"] == "fengqiao-settings"
        else {}
    )
    assert settings.get("FENGQIAO_HTTP_PORT", str(PORT)) == str(PORT)


def test_probes_point_at_the_http_servers_endpoints() -> None:
    http = (ROOT / "consumers" / "runtime" / "http.py").read_text(encoding="utf-8")
    container = _k8s()["StatefulSet"]["spec"]["template"]["spec"]["containers"][0]
    assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "metrics"}
    assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "metrics"}
    for path in ("/healthz", "/readyz", "/metrics"):
        assert f'"{path}"' in http
    assert container["resources"]["requests"]
    assert container["resources"]["limits"]["memory"]


def test_replicas_are_bounded_by_the_partition_count_and_instances_are_pod_names() -> None:
    k8s = _k8s()
    settings = yaml.safe_load((K8S / "settings.configmap.yaml").read_text(encoding="utf-8"))
    partitions = int(
        settings["data"].get("FENGQIAO_PARTITIONS", Settings.model_fields["partitions"].default)
    )
    statefulset = k8s["StatefulSet"]
    assert 1 <= statefulset["spec"]["replicas"] <= partitions
    env = statefulset["spec"]["template"]["spec"]["containers"][0]["env"]
    instance = next(e for e in env if e["name"] == "FENGQIAO_INSTANCE_ID")
    assert instance["valueFrom"] == {"fieldRef": {"fieldPath": "metadata.name"}}
    pdb = k8s["PodDisruptionBudget"]
    assert pdb["spec"]["selector"]["matchLabels"] == statefulset["spec"]["selector"]["matchLabels"]
    assert pdb["spec"]["maxUnavailable"] == 1


def test_topic_names_are_the_settings_defaults() -> None:
    defaults = {
        Settings.model_fields[name].default
        for name in Settings.model_fields
        if name.startswith("topic_")
    }
    prefix = Settings.model_fields["intake_topic_prefix"].default
    known = defaults | {f"{prefix}{channel}" for channel in CHANNELS}
    for path in _deploy_files():
        for topic in re.findall(
            r"\bfengqiao\.[a-z0-9.-]*[a-z0-9]", path.read_text(encoding="utf-8")
        ):
            if not topic.endswith((".yml", ".yaml", ".json")):  # file names, not topics
                assert topic in known, f"{path.relative_to(ROOT)}: unknown topic {topic}"


def _registered_metric_names() -> set[str]:
    registry = CollectorRegistry()
    EngineMetrics.create(registry, WorkflowRegistry.load(ROOT / "workflows"))
    IntakeMetrics.create(registry, CHANNELS)
    names: set[str] = set()
    for family in registry.collect():
        names.add(family.name)
        names.update(sample.name for sample in family.samples)
        if family.type == "counter":
            names.add(f"{family.name}_total")
        if family.type == "histogram":
            names.update(f"{family.name}_{suffix}" for suffix in ("bucket", "sum", "count"))
    return names


def test_metric_names_referenced_are_registered_by_the_code() -> None:
    """Prometheus rules, Grafana dashboards and anything else under deploy/ (recording-rule
    names such as `workflow:fengqiao_resolution:ratio_1d` are ours, not the code's)."""
    registered = _registered_metric_names()
    missing: dict[str, set[str]] = {}
    for path in _deploy_files():
        text = path.read_text(encoding="utf-8")
        for name in re.findall(r"(?<![\w:])fengqiao_[a-z0-9_]*[a-z0-9](?![\w:])", text):
            if name not in registered:
                missing.setdefault(str(path.relative_to(ROOT)), set()).add(name)
    assert not missing, f"metric names not registered by consumers/runtime/metrics.py: {missing}"


def test_the_workflows_configmap_is_the_workflows_folder() -> None:
    text = (K8S / "workflows.configmap.yaml").read_text(encoding="utf-8")
    configmap, channels = yaml.safe_load_all(text)
    folder = ROOT / "workflows"
    for got, where in ((configmap, folder), (channels, folder / "channels")):
        expected = {p.name: p.read_text(encoding="utf-8") for p in where.glob("*.yaml")}
        assert expected
        assert got["data"] == expected, (
            "deploy/k8s/workflows.configmap.yaml is stale: run "
            "deploy/k8s/render-workflows-configmap"
        )
    check = subprocess.run(
        [sys.executable, str(K8S / "render-workflows-configmap"), "--check"],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert check.returncode == 0, check.stderr
    volumes = _k8s()["StatefulSet"]["spec"]["template"]["spec"]["volumes"]
    assert {"name": "workflows", "configMap": {"name": configmap["metadata"]["name"]}} in volumes
    assert {"name": "channels", "configMap": {"name": channels["metadata"]["name"]}} in volumes
    mounts = _k8s()["StatefulSet"]["spec"]["template"]["spec"]["containers"][0]["volumeMounts"]
    assert {"name": "channels", "mountPath": "/etc/fengqiao/workflows/channels",
            "readOnly": True} in mounts  # fmt: skip
    assert not list((folder / "calendars").glob("*.yaml")), (
        "holiday override files exist: ship them to Kubernetes (deploy/k8s/README.md) and "
        "extend this test"
    )


def test_compose_wires_kafka_topics_engine_prometheus_grafana() -> None:
    compose = _compose()
    services = compose["services"]
    assert {"kafka", "topics", "adapters", "engine", "prometheus", "grafana"} <= set(services)
    kafka = services["kafka"]["environment"]
    assert "broker" in kafka["KAFKA_PROCESS_ROLES"]
    assert "controller" in kafka["KAFKA_PROCESS_ROLES"]
    assert services["topics"]["command"] == ["topics", "create"]
    assert (
        services["engine"]["depends_on"]["topics"]["condition"] == "service_completed_successfully"
    )
    assert services["engine"]["environment"]["FENGQIAO_ROLE"] == "engine"
    assert services["adapters"]["environment"]["FENGQIAO_ROLE"] == "adapters"
    assert services["engine"]["build"]["dockerfile"] == "deploy/Dockerfile"
    assert (DEPLOY / services["engine"]["build"]["context"]).resolve() == ROOT
    for service in services.values():
        for volume in service.get("volumes", []):
            host = volume.split(":")[0]
            if host.startswith("."):
                assert (DEPLOY / host).exists(), f"compose mounts missing {host}"
    rules = {Path(v.split(":")[0]).name for v in services["prometheus"]["volumes"] if "rules" in v}
    assert rules == {p.name for p in (DEPLOY / "prometheus").glob("*.rules.yml")}


def test_commands_in_the_manifests_are_real_cli_commands() -> None:
    sub = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    commands = set(sub.choices)
    compose = _compose()["services"]
    k8s = _k8s()
    used = [compose[name]["command"] for name in ("topics", "adapters", "engine")]
    used += [k8s["Job"]["spec"]["template"]["spec"]["containers"][0]["args"]]
    used += [k8s["StatefulSet"]["spec"]["template"]["spec"]["containers"][0]["args"]]
    dockerfile = DOCKERFILE.read_text(encoding="utf-8")
    assert 'ENTRYPOINT ["fengqiao"]' in dockerfile
    cmd = re.search(r"^CMD \[(.*)\]$", dockerfile, re.M)
    assert cmd is not None
    used.append(shlex.split(cmd.group(1).replace(",", " ")))
    for args in used:
        assert args[0].strip('"') in commands, args
    pyproject = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    assert 'fengqiao = "consumers.cli.main:main"' in pyproject
    for copied in re.findall(r"^COPY (?!--)(\S+)", dockerfile, re.M):
        assert (ROOT / copied).exists(), copied


def test_the_view_is_deployed_with_its_database_port_probes_and_access_file() -> None:
    services = _compose()["services"]
    view = services["view"]
    assert view["command"] == ["view"]
    assert view["ports"] == [f"8080:{VIEW_PORT}"]
    assert view["environment"]["FENGQIAO_VIEW_HTTP_PORT"] == str(VIEW_PORT)
    assert view["environment"]["FENGQIAO_VIEW_DB"].startswith("postgresql+psycopg://")
    assert view["depends_on"]["postgres"]["condition"] == "service_healthy"
    host, mounted, _ = view["volumes"][0].split(":")
    assert view["environment"]["FENGQIAO_VIEW_ACCESS"] == mounted
    access = load_access(DEPLOY / host)
    assert access.authenticate("fengqiao-local-only") is not None, "the token the file names"
    k8s = _k8s()
    deployment = k8s["Deployment/fengqiao-view"]
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    assert container["args"] == ["view"]
    assert container["ports"] == [{"name": "http", "containerPort": VIEW_PORT}]
    assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
    assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}
    env = {e["name"]: e.get("value") for e in container["env"]}
    mount = next(m for m in container["volumeMounts"] if m["name"] == "access")
    assert env["FENGQIAO_VIEW_ACCESS"].startswith(mount["mountPath"] + "/")
    assert k8s["Service/fengqiao-view"]["spec"]["ports"][0]["port"] == VIEW_PORT
    assert (
        k8s["StatefulSet/fengqiao-postgres"]["spec"]["template"]["spec"]["containers"][0]["image"]
        == services["postgres"]["image"]
    )
