"""The `fengqiao test` sub-command: run workflow scenario files like a test runner.

Why a module of its own: `consumers/cli/main.py` is the file every command touches; here live
the command's flags, its output (one `PASS`/`FAIL` line per scenario, a field-by-field diff of
the first failing step, a summary) and the JUnit XML that CI systems display. The scenarios
themselves are read, checked and played by the pure `engine.scenarios`; this module reads the
files, among them the channel files (`<workflows>/channels/`) that translate `message` steps.

Exit codes, as for `validate`: 0 when every scenario passed; 1 when a scenario failed, a file
is broken (`PATH:LINE:COL: error: MESSAGE`), a path does not exist, or no scenario was found;
2 for a usage error (argparse).
"""

from __future__ import annotations

import argparse
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from engine.calendar import CalendarFileError
from engine.channel_checks import load_channels
from engine.channels import Channel
from engine.problems import InvalidWorkflowError, Problem
from engine.registry import WorkflowRegistry
from engine.scenarios.run import ScenarioResult, StepFailure, run_suite
from engine.scenarios.spec import load_suite

SCENARIO_SUFFIXES = (".yaml", ".yml")
DESCRIPTION = """\
Run scenario tests of workflows: YAML files of stories (canonical events or native intake
messages on a virtual clock, or time passing) with what must hold after each step (state,
tier, deadline, pause, outcome, the records emitted, refusals). Each scenario plays through
the same replay as `fengqiao simulate`. Prints PASS or FAIL per scenario and, for a failure,
the step and each expected value beside the actual one. Exit 1 on any failure or broken file,
0 when all pass."""

EPILOG = """\
examples:
  fengqiao test                                   # workflows/tests/*.yaml
  fengqiao test workflows/tests/petition.yaml
  fengqiao test --workflows my-workflows          # my-workflows/tests/ against my-workflows/
  fengqiao test --junit-xml out/scenarios.xml     # also a JUnit report for CI
Format: CONTRIBUTING.md, "Testing a workflow"."""


@dataclass
class FileOutcome:
    """What one scenario file gave: results when it ran, problems when it could not."""

    path: str
    results: list[ScenarioResult] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)


def add_test_command(sub: Any, workflows_default: Callable[[], Path]) -> None:
    """Register `test` on the CLI's sub-parsers."""
    p = sub.add_parser(
        "test",
        help="run scenario tests of workflows (workflows/tests/*.yaml): PASS/FAIL and diffs",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "paths",
        nargs="*",
        metavar="PATH",
        help="scenario files or folders of them (default: the tests/ folder of --workflows)",
    )
    p.add_argument(
        "--workflows", type=Path, metavar="DIR", help="workflow folder (default: workflows/)"
    )
    p.add_argument(
        "--junit-xml", type=Path, metavar="FILE", help="also write the results as JUnit XML here"
    )
    p.set_defaults(func=lambda args: cmd_test(args, workflows_default))


def cmd_test(args: argparse.Namespace, workflows_default: Callable[[], Path]) -> int:
    workflows: Path = args.workflows or workflows_default()
    registry = _registry(workflows)
    if registry is None:
        return 1
    channels = _channels(workflows, registry)
    if channels is None:
        return 1
    paths = [Path(p) for p in args.paths] or [workflows / "tests"]
    missing = [p for p in paths if not p.exists()]
    for path in missing:
        print(f"{path}:1:1: error: no such file or directory")
    files = scenario_files(p for p in paths if p.exists())
    outcomes = [_run_file(path, registry, channels) for path in files]
    for outcome in outcomes:
        _report(outcome)
    if args.junit_xml is not None:
        try:
            write_junit(outcomes, args.junit_xml)
        except OSError as err:
            print(f"error: cannot write {args.junit_xml}: {err.strerror or err}")
            return 1
    if not outcomes:
        if not missing:  # a runner that ran nothing must not look green
            print(f"error: no scenario files in {', '.join(str(p) for p in paths)}")
        return 1
    passed, failed, broken = _counts(outcomes)
    print(_summary(passed, failed, broken))
    return 1 if failed or broken or missing else 0


def scenario_files(paths: Iterable[Path]) -> list[Path]:
    """Files as given; folders by their top-level `*.yaml` / `*.yml`, sorted."""
    found: list[Path] = []
    for path in paths:
        if path.is_dir():
            found.extend(sorted(p for p in path.iterdir() if p.suffix in SCENARIO_SUFFIXES))
        else:
            found.append(path)
    return found


def _registry(workflows: Path) -> WorkflowRegistry | None:
    if not workflows.is_dir():
        print(f"error: workflow folder {workflows} does not exist (--workflows)")
        return None
    try:
        return WorkflowRegistry.load(workflows)
    except InvalidWorkflowError as err:
        print(err)
    except CalendarFileError as err:
        print(err)
    print(f"error: the workflows in {workflows} do not load; `fengqiao validate` says why")
    return None


def _channels(workflows: Path, registry: WorkflowRegistry) -> dict[str, Channel] | None:
    """The channel files of the workflows folder, which translate `message` steps (none when the
    folder has no `channels/`); None after printing why they do not load."""
    try:
        return load_channels(workflows, registry.specs())
    except InvalidWorkflowError as err:
        print(err)
    print(f"error: the channels in {workflows} do not load; `fengqiao validate` says why")
    return None


def _run_file(
    path: Path, registry: WorkflowRegistry, channels: Mapping[str, Channel]
) -> FileOutcome:
    try:
        raw = path.read_bytes()
    except OSError as err:
        return FileOutcome(str(path), problems=[Problem(str(path), 1, 1, f"cannot read: {err}")])
    suite, problems = load_suite(str(path), raw, registry, channels)
    if suite is None:
        return FileOutcome(str(path), problems=sorted(problems))
    return FileOutcome(str(path), results=run_suite(suite))


def _counts(outcomes: list[FileOutcome]) -> tuple[int, int, int]:
    results = [r for o in outcomes for r in o.results]
    passed = sum(r.passed for r in results)
    return passed, len(results) - passed, sum(bool(o.problems) for o in outcomes)


def _summary(passed: int, failed: int, broken: int) -> str:
    parts = [f"{passed} passed", f"{failed} failed"]
    if broken:
        parts.append(f"{broken} broken file{'s' if broken != 1 else ''}")
    return ", ".join(parts)


def _report(outcome: FileOutcome) -> None:
    for problem in outcome.problems:
        print(problem)
    for result in outcome.results:
        print(f"{'PASS' if result.passed else 'FAIL'} {outcome.path}::{result.name}")
        if result.failure is not None:
            print(failure_text(outcome.path, result.failure))


def failure_text(path: str, failure: StepFailure) -> str:
    """The diff of a failed step: where, each mismatch, and every record the step emitted."""
    when = failure.at.isoformat() if failure.at else "?"
    lines = [f"  step {failure.number} ({path}:{failure.line}) at {when}: {failure.event}"]
    width = max(len(m.what) for m in failure.mismatches)
    for m in failure.mismatches:
        lines.append(f"    {m.what.ljust(width)}  expected {m.expected}")
        note = f"  ({m.note})" if m.note else ""
        lines.append(f"    {''.ljust(width)}  actual   {m.actual}{note}")
    lines.append("  records of this step:" if failure.records else "  the step emitted no records")
    lines.extend(f"    {record}" for record in failure.records)
    return "\n".join(lines)


def write_junit(outcomes: list[FileOutcome], target: Path) -> None:
    """One `testsuite` per file, one `testcase` per scenario (a broken file: one `error`)."""
    root = ET.Element("testsuites", name="fengqiao test")
    passed, failed, broken = _counts(outcomes)
    root.set("tests", str(passed + failed + broken))
    root.set("failures", str(failed))
    root.set("errors", str(broken))
    for outcome in outcomes:
        suite = ET.SubElement(root, "testsuite", name=outcome.path)
        if outcome.problems:
            suite.attrib.update(tests="1", failures="0", errors="1")
            case = ET.SubElement(suite, "testcase", classname=outcome.path, name="(file)")
            error = ET.SubElement(case, "error", message="the scenario file is broken")
            error.text = "\n".join(str(p) for p in outcome.problems)
            continue
        failures = sum(not r.passed for r in outcome.results)
        suite.attrib.update(tests=str(len(outcome.results)), failures=str(failures), errors="0")
        for result in outcome.results:
            case = ET.SubElement(suite, "testcase", classname=outcome.path, name=result.name)
            if result.failure is not None:
                first = result.failure.mismatches[0]
                message = f"step {result.failure.number}: {first.what} expected {first.expected}"
                failure = ET.SubElement(case, "failure", message=f"{message}, got {first.actual}")
                failure.text = failure_text(outcome.path, result.failure)
    ET.indent(root)
    target.parent.mkdir(parents=True, exist_ok=True)
    ET.ElementTree(root).write(target, encoding="utf-8", xml_declaration=True)
