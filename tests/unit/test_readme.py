"""Every shell command in README.md is exercised by a test.

The commands are read from the README's ```sh blocks (comments dropped, `\\` continuations
joined). A cheap command runs here (`.venv/bin/fengqiao` becomes `python -m consumers.cli.main`, the
same entry point) and its output is checked; any other command must be mapped in `COVERED` to
the test (or fixture) that runs it, and that test must exist. A README command in neither
table, or an entry for a command the README no longer has, fails the suite: add the command's
check here when you add it to the README.
"""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
FENCE = re.compile(r"^```(?:sh|bash|shell)\n(.*?)^```", re.M | re.S)
FENGQIAO = ".venv/bin/fengqiao"

Check = Callable[[subprocess.CompletedProcess[str]], None]


def readme_commands(text: str) -> list[str]:
    """The shell commands of the README's code blocks, one string each."""
    commands: list[str] = []
    for block in FENCE.finditer(text):
        pending = ""
        for raw in block.group(1).splitlines():
            code = re.sub(r"(^|\s)#.*$", "", raw).strip()
            if code.endswith("\\"):
                pending += code[:-1].strip() + " "
                continue
            command = (pending + code).strip()
            pending = ""
            if command:
                commands.append(" ".join(command.split()))
    return commands


def _ok_valid(done: subprocess.CompletedProcess[str]) -> None:
    assert re.search(r"ok: \d+ workflow\(s\) and \d+ channel\(s\) valid", done.stderr)


def _mermaid(done: subprocess.CompletedProcess[str]) -> None:
    assert done.stdout.startswith("stateDiagram-v2")


def _dot(done: subprocess.CompletedProcess[str]) -> None:
    assert done.stdout.startswith('digraph "dispute-escalation"')


def _golden(done: subprocess.CompletedProcess[str]) -> None:
    golden = ROOT / "tests" / "golden" / "dispute-escalation.records.jsonl"
    assert done.stdout == golden.read_text(encoding="utf-8")


def _scenarios_pass(done: subprocess.CompletedProcess[str]) -> None:
    assert re.search(r"^\d+ passed, 0 failed$", done.stdout, re.M)


def _demo_help(done: subprocess.CompletedProcess[str]) -> None:
    assert "--speed" in done.stdout
    assert "resume" in done.stdout


CHEAP: dict[str, Check] = {
    f"{FENGQIAO} validate": _ok_valid,
    f"{FENGQIAO} graph workflows/dispute-escalation.yaml": _mermaid,
    f"{FENGQIAO} graph workflows/dispute-escalation.yaml --format dot": _dot,
    f"{FENGQIAO} simulate --events workflows/examples/dispute-escalation.jsonl "
    "--until 2026-12-31T00:00:00+08:00": _golden,
    f"{FENGQIAO} demo --help": _demo_help,
    f"{FENGQIAO} test": _scenarios_pass,
}

UNIT, INTEGRATION = "tests/unit/", "tests/integration/"
KAFKA = (
    f"{INTEGRATION}test_readme_kafka.py::"
    "test_topics_create_then_run_serves_probes_and_stops_on_sigterm"
)
MAKE = f"{UNIT}test_readme.py::test_make_demo_and_make_test_run_the_documented_commands"
DEPLOY = f"{UNIT}test_deploy.py::"
COVERED: dict[str, str] = {
    "make demo": MAKE,
    "make test": MAKE,
    f"{FENGQIAO} schemas export": f"{UNIT}test_cli.py::test_committed_json_schemas_are_up_to_date",
    f"{FENGQIAO} bench core": f"{UNIT}test_cli.py::test_bench_core_prints_figures_and_ratio",
    f"{FENGQIAO} bench kafka --out bench-kafka.json":
        f"{INTEGRATION}test_bench.py::test_bench_kafka_tiny",
    f"{FENGQIAO} bench scale --out bench-scale.json":
        f"{INTEGRATION}test_bench.py::test_bench_scale_tiny",
    f"{FENGQIAO} bench view --out bench-view.json":
        f"{INTEGRATION}test_bench.py::test_bench_view_tiny",
    f"{FENGQIAO} demo":
        f"{UNIT}test_demo.py::test_small_town_prints_the_summary_and_writes_the_report",
    "deploy/local/kafka start --dir /tmp/fq-kafka": f"{INTEGRATION}conftest.py::kafka_bootstrap",
    "export FENGQIAO_BOOTSTRAP_SERVERS=127.0.0.1:PORT": KAFKA,
    f"{FENGQIAO} topics create": KAFKA,
    f"{FENGQIAO} run": KAFKA,
    "deploy/local/kafka stop --dir /tmp/fq-kafka --clean": f"{INTEGRATION}conftest.py::_stop_local",
    "docker build -f deploy/Dockerfile -t fengqiao:0.1.0 .":
        f"{DEPLOY}test_commands_in_the_manifests_are_real_cli_commands",
    "docker compose -f deploy/compose.yaml up --build":
        f"{DEPLOY}test_compose_wires_kafka_topics_engine_prometheus_grafana",
    "kubectl apply -k deploy/k8s":
        f"{DEPLOY}test_replicas_are_bounded_by_the_partition_count_and_instances_are_pod_names",
    "deploy/k8s/render-workflows-configmap":
        f"{DEPLOY}test_the_workflows_configmap_is_the_workflows_folder",
    f"{FENGQIAO} view":
        f"{INTEGRATION}test_view_service.py::test_the_view_equals_simulate_and_survives_sigkill_mid_stream",
    f"{FENGQIAO} cases list --status overdue --workflow hotline-12345":
        "tests/view/test_cases_cli.py::test_overdue_lists_exactly_the_overdue_cases_in_json",
    f"{FENGQIAO} cases show FQ-D-2026-0001":
        "tests/view/test_cases_cli.py::test_one_case_with_its_timeline_and_the_retracted_record_marked",
}  # fmt: skip
"""Commands too slow or too external to run here (Kafka, containers, a fresh venv), and the
test that runs them or checks what they run. Docker and kubectl are not available to the
suite: their files are checked statically by tests/unit/test_deploy.py."""


def _readme() -> list[str]:
    return readme_commands(README.read_text(encoding="utf-8"))


def test_the_extractor_reads_comments_and_continuations() -> None:
    text = "```sh\nmake demo    # a comment\n# only a comment\na \\\n    --b c   # more\n```\n"
    assert readme_commands(text) == ["make demo", "a --b c"]


def test_every_readme_command_is_run_here_or_mapped_to_its_test() -> None:
    commands = _readme()
    assert len(commands) >= 10
    unexercised = [c for c in commands if c not in CHEAP and c not in COVERED]
    assert not unexercised, (
        "README commands no test exercises; run them in CHEAP or map them in COVERED "
        f"(tests/unit/test_readme.py): {unexercised}"
    )
    stale = sorted((set(CHEAP) | set(COVERED)) - set(commands))
    assert not stale, f"entries for commands the README no longer has: {stale}"


def test_every_mapped_test_exists() -> None:
    for command, target in COVERED.items():
        path, name = target.split("::")
        source = (ROOT / path).read_text(encoding="utf-8")
        assert re.search(rf"^def {re.escape(name)}\(", source, re.M), f"{command} → {target}"


@pytest.mark.parametrize("command", sorted(CHEAP))
def test_cheap_readme_commands_run(command: str) -> None:
    argv = shlex.split(command)
    assert argv[0] == FENGQIAO
    done = subprocess.run(
        [sys.executable, "-m", "consumers.cli.main", *argv[1:]],
        cwd=ROOT, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    CHEAP[command](done)


def _recipe(makefile: str, target: str) -> tuple[list[str], list[str]]:
    """(prerequisites, recipe lines) of one Makefile target."""
    match = re.search(rf"^{target}:(.*)\n((?:\t.*\n)*)", makefile, re.M)
    assert match, f"no `{target}` target in the Makefile"
    return match.group(1).split(), [line.strip() for line in match.group(2).splitlines()]


def test_make_demo_and_make_test_run_the_documented_commands() -> None:
    """`make demo` = `.venv/bin/fengqiao demo` (tests/unit/test_demo.py runs that command with
    smaller flags); `make test` = lint + typecheck + the whole suite, which is this run."""
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    assert re.search(r"^VENV\s*:=\s*\.venv$", makefile, re.M)
    assert re.search(r"^BIN\s*:=\s*\$\(VENV\)/bin$", makefile, re.M)
    prerequisites, recipe = _recipe(makefile, "demo")
    assert prerequisites == ["$(STAMP)"]
    assert recipe == ["$(BIN)/fengqiao demo"]
    prerequisites, recipe = _recipe(makefile, "test")
    assert {"lint", "typecheck"} <= set(prerequisites)
    assert any(re.search(r"\$\(BIN\)/pytest( |$)", line) for line in recipe)
    assert not any(" -m " in line for line in recipe), "make test runs every marker"
    _, lint = _recipe(makefile, "lint")
    assert "$(BIN)/ruff check ." in lint
    assert "$(BIN)/ruff format --check ." in lint
    _, typecheck = _recipe(makefile, "typecheck")
    assert typecheck == ["$(BIN)/mypy"]
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    assert ci.rstrip().endswith("make test")
