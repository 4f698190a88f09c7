"""`fengqiao test`: workflow scenario files run like tests, and fail when the workflow changes.

The shipped scenarios (`workflows/tests/`) must pass, and must stop passing when a shipped limit
moves by one day (a suite that cannot fail proves nothing: a negative golden, as temporalio's
replayer tests do). Broken scenario files are reported as `PATH:LINE:COL: error: MESSAGE`,
offsets parse or fail with the module's own error, and the JUnit report counts right.
"""

from __future__ import annotations

import re
import shutil
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from consumers.cli.main import main
from engine.calendar import BusinessCalendar
from engine.channel_checks import load_channels
from engine.machine import CompiledWorkflow
from engine.registry import WorkflowRegistry, check_paths
from engine.scenarios.offsets import (
    LIMITS,
    UNIT_WORDS,
    Offset,
    OffsetError,
    apply_offset,
    parse_offset,
)
from engine.scenarios.run import run_suite
from engine.scenarios.spec import bind_suite, parse_scenarios
from engine.validate import CheckedWorkflow
from schemas.workflow import SlaSpec

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
WORKFLOWS = ROOT / "workflows"
SCENARIOS = WORKFLOWS / "tests"
PROBLEM = re.compile(r"^(?P<path>.+?):(?P<line>[1-9]\d*):(?P<col>[1-9]\d*): error: (?P<msg>\S.*)$")


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    code = main(["test", *args])
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    return code, out


def write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.write_text(text, encoding="utf-8")
    return path


GRID_CASE = """\
workflow: dispute-escalation
scenarios:
  - name: grid case
    steps:
      - at: 2026-03-02T09:00:00+08:00
        event: {type: case.reported, source: grid}
        expect: {state: grid.mediating, deadline: 2026-03-06T00:00:00+08:00}
"""


# -- the shipped scenarios ------------------------------------------------------------------


def test_the_shipped_scenarios_pass(capsys: pytest.CaptureFixture[str]) -> None:
    code, out = run(capsys, "--workflows", str(WORKFLOWS))
    lines = out.splitlines()
    assert code == 0, out
    results = lines[:-1]
    assert results, "no scenario ran"
    assert all(line.startswith(f"PASS {SCENARIOS}/") for line in results), out
    assert lines[-1] == f"{len(results)} passed, 0 failed"


def test_a_limit_counted_from_an_earlier_state_runs_as_a_scenario(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """`from: STATE` is used by no shipped workflow yet; this fixture runs it the way an author
    would, over the 2025 National Day holiday (tests/fixtures/scenarios/anchored/)."""
    folder = ROOT / "tests" / "fixtures" / "scenarios" / "anchored"
    code, out = run(capsys, str(folder / "tests"), "--workflows", str(folder))
    assert code == 0, out
    assert out.splitlines()[-1] == "1 passed, 0 failed"


def test_every_shipped_workflow_has_scenarios() -> None:
    workflows = {p.stem for p in WORKFLOWS.glob("*.yaml")}
    assert workflows == {p.stem for p in SCENARIOS.glob("*.yaml")}


def test_the_default_is_workflows_tests(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(ROOT)
    code, out = run(capsys)
    assert code == 0
    assert out.splitlines()[0].startswith("PASS workflows/tests/")


def _copy_workflows(tmp_path: Path) -> Path:
    copy = tmp_path / "workflows"
    shutil.copytree(WORKFLOWS, copy)
    return copy


def _change(path: Path, pattern: str, replacement: str) -> None:
    text = path.read_text(encoding="utf-8")
    changed, count = re.subn(pattern, replacement, text, count=1, flags=re.S)
    assert count == 1, f"{pattern!r} not found in {path}"
    path.write_text(changed, encoding="utf-8")


@dataclass(frozen=True)
class LimitChange:
    """A limit edited in the dispute-escalation file, and the diff the scenarios must show."""

    pattern: str
    replacement: str
    scenario: str
    expected: str
    actual: str
    note: str


@pytest.mark.parametrize(
    "change",
    [
        pytest.param(LimitChange(
            r"(grid\.mediating:.*?working_days: )3\b", r"\g<1>4",
            "neighbours' fight breaches over Spring Festival",
            "2026-02-25T00:00:00+08:00", "2026-02-26T00:00:00+08:00", "actual is 1 day later",
        ), id="grid-3-to-4-working-days"),
        pytest.param(LimitChange(
            r"(center\.mediating:.*?calendar_days: )30\b", r"\g<1>31",
            "every rung fails in turn",
            # 03-04 + 31 days = Sat 04-04, Qingming: the limit rolls to Tue 04-07
            "2026-04-04T00:00:00+08:00", "2026-04-08T00:00:00+08:00", "actual is 4 days later",
        ), id="center-30-to-31-calendar-days"),
    ],
)  # fmt: skip
def test_a_limit_changed_by_one_day_fails_with_a_readable_diff(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, change: LimitChange
) -> None:
    workflows = _copy_workflows(tmp_path)
    _change(workflows / "dispute-escalation.yaml", change.pattern, change.replacement)
    code, out = run(capsys, "--workflows", str(workflows))
    assert code == 1
    failed = [line for line in out.splitlines() if line.startswith("FAIL")]
    fail = next(line for line in failed if change.scenario in line)
    diff = out.split(fail, 1)[1].split("\nFAIL", 1)[0].split("\nPASS", 1)[0]
    assert re.search(rf"deadline +expected {re.escape(change.expected)}\n", diff), diff
    assert re.search(rf"\n +actual +{re.escape(change.actual)}  \({change.note}\)", diff), diff
    assert re.search(r"step \d+ \(.*dispute-escalation\.yaml:\d+\)", diff)
    assert re.search(r"^\d+ passed, [1-9]\d* failed$", out.splitlines()[-1])


def _one_unit_off(sla: SlaSpec) -> Iterator[tuple[str, SlaSpec]]:
    """The SLA with its limit, then its extension, one unit longer and one shorter."""
    for delta in (1, -1):
        yield (
            f"{sla.unit} {sla.amount}→{sla.amount + delta}",
            sla.model_copy(update={sla.unit: sla.amount + delta}),
        )
        ext = sla.extension
        if ext is not None:
            changed = ext.model_copy(update={ext.unit: ext.amount + delta})
            label = f"extension {ext.unit} {ext.amount}→{ext.amount + delta}"
            yield label, sla.model_copy(update={"extension": changed})


def test_every_shipped_limit_is_pinned_by_a_scenario() -> None:
    """Each SLA limit and extension of each shipped workflow, one unit longer and one shorter:
    some scenario must fail. A miss means a holiday or weekend roll absorbed the change in every
    scenario: add a step whose last day is an ordinary working day followed by another.

    The workflows are changed in memory and the scenario files parsed once (PyYAML's composer
    is the slow part); the CLI round trip of a changed file is the test above."""
    checked, problems = check_paths([WORKFLOWS])
    assert not problems
    calendar = BusinessCalendar.chinese(WORKFLOWS / "calendars")
    channels = load_channels(WORKFLOWS, [c.spec for c in checked])  # for the `message` steps
    parsed = [parse_scenarios(str(p), p.read_bytes()) for p in sorted(SCENARIOS.glob("*.yaml"))]
    files = [p for p in parsed if not isinstance(p, list)]
    assert len(files) == len(parsed)
    survivors: list[str] = []
    for i, item in enumerate(checked):
        mine = [(spec, doc) for spec, doc in files if spec.workflow == item.spec.name]
        for name, state in item.spec.states.items():
            for label, sla in _one_unit_off(state.sla) if state.sla else ():
                states = {**item.spec.states, name: state.model_copy(update={"sla": sla})}
                changed = CheckedWorkflow(
                    item.spec.model_copy(update={"states": states}), item.path
                )
                registry = WorkflowRegistry.build(
                    [*checked[:i], changed, *checked[i + 1 :]], calendar
                )
                suites = [bind_suite(spec, doc, registry, channels)[0] for spec, doc in mine]
                assert all(suites)
                if all(r.passed for suite in suites if suite for r in run_suite(suite)):
                    survivors.append(f"{item.spec.name} {name}: {label}")
    assert not survivors, "no scenario notices these changes"


# -- broken scenario files ------------------------------------------------------------------


def test_a_broken_file_gives_path_line_col_errors(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    path = write(
        tmp_path,
        "broken.yaml",
        """\
workflow: dispute-escalation
scenarios:
  - name: typos
    steps:
      - at: 2026-03-02T09:00:00
        event: {type: case.reported, source: grid}
        expect: {stat: grid.mediating}
      - after: +3 workdays
      - after: +1h
        at: 2026-03-02T10:00:00+08:00
""",
    )
    code, out = run(capsys, "--workflows", str(WORKFLOWS), str(path))
    assert code == 1
    *problems, summary = out.splitlines()
    assert summary == "0 passed, 0 failed, 1 broken file"
    assert all(PROBLEM.fullmatch(line) for line in problems), out
    assert f"{path}:5:13: error: " in out  # the time has no offset
    assert "should have timezone info" in out
    assert f"{path}:7:18: error: unknown key 'stat'" in out
    assert re.search(rf"{re.escape(str(path))}:8:16: error: .*'\+3 workdays': unknown unit", out)
    assert f"{path}:9:9: error: scenarios.0.steps.2: give at or after, not both" in out


def test_an_unknown_workflow_is_a_clear_error(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    path = write(tmp_path, "x.yaml", GRID_CASE.replace("dispute-escalation", "dispute-escalaton"))
    code, out = run(capsys, "--workflows", str(WORKFLOWS), str(path))
    assert code == 1
    assert out.splitlines()[0] == (
        f"{path}:1:11: error: unknown workflow 'dispute-escalaton' "
        "(loaded: dispute-escalation, hotline-12345, petition)"
    )


def test_version_picks_the_workflow_version_new_cases_open_on(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    workflows = _copy_workflows(tmp_path)
    v1 = (workflows / "dispute-escalation.yaml").read_text(encoding="utf-8")
    v2 = re.sub(r"(?m)^version: 1$", "version: 2", v1, count=1)
    v2 = re.sub(r"(grid\.mediating:.*?working_days: )3\b", r"\g<1>4", v2, count=1, flags=re.S)
    write(workflows, "dispute-escalation-v2.yaml", v2)
    newest = write(tmp_path, "newest.yaml", GRID_CASE.replace("03-06T", "03-07T"))
    pinned = write(
        tmp_path, "pinned.yaml", GRID_CASE.replace("scenarios:", "version: 1\nscenarios:")
    )
    code, out = run(capsys, "--workflows", str(workflows), str(newest), str(pinned))
    assert (code, out.splitlines()[-1]) == (0, "2 passed, 0 failed")
    missing = write(tmp_path, "v3.yaml", GRID_CASE.replace("scenarios:", "version: 3\nscenarios:"))
    code, out = run(capsys, "--workflows", str(workflows), str(missing))
    assert code == 1
    assert f"{missing}:2:10: error: dispute-escalation has no version 3 (loaded: 1, 2)" in out


def test_names_the_workflow_cannot_produce_are_refused_where_written(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    text = GRID_CASE.replace("state: grid.mediating", "state: grid.mediatng") + (
        "        # a record field that does not exist\n"
        "      - after: +1h\n"
        "        expect: {records: [{type: sla.warning, to_state: x}], refused: guard_failed}\n"
    )
    path = write(tmp_path, "x.yaml", text)
    code, out = run(capsys, "--workflows", str(WORKFLOWS), str(path))
    assert code == 1
    assert f"{path}:7:25: error: dispute-escalation has no state 'grid.mediatng'" in out
    assert f"{path}:10:48: error: a sla.warning record has no field 'to_state'" in out
    assert (
        f"{path}:10:63: error: expect.refused needs an event or a message in the same step" in out
    )


def test_a_missing_path_is_one_error_line(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    missing = tmp_path / "nope.yaml"
    code, out = run(capsys, "--workflows", str(WORKFLOWS), str(missing))
    assert code == 1
    assert out == f"{missing}:1:1: error: no such file or directory\n"


def test_a_missing_workflow_folder_is_one_error_line(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    code, out = run(capsys, "--workflows", str(tmp_path / "nope"))
    assert code == 1
    assert out == f"error: workflow folder {tmp_path / 'nope'} does not exist (--workflows)\n"


def test_an_empty_folder_is_an_error_not_a_pass(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    code, out = run(capsys, "--workflows", str(WORKFLOWS), str(tmp_path))
    assert code == 1
    assert out == f"error: no scenario files in {tmp_path}\n"


# -- what a failure says --------------------------------------------------------------------


def test_records_and_unexpected_refusals_fail_field_by_field(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    path = write(
        tmp_path,
        "x.yaml",
        GRID_CASE
        + """\
      - after: +1h
        event: {type: mediation.failed, source: grid}
        expect:
          records: [{type: case.transitioned, to_state: center.mediating, trigger: case.escalated}]
  - name: a refusal nobody expected
    steps:
      - at: 2026-03-02T09:00:00+08:00
        event: {type: mediation.failed, source: grid}
""",
    )
    code, out = run(capsys, "--workflows", str(WORKFLOWS), str(path))
    assert code == 1
    assert f"PASS {path}::grid case" not in out
    assert f"FAIL {path}::grid case\n  step 2 ({path}:8) at 2026-03-02T10:00:00+08:00: " in out
    assert "    records[0].trigger  expected case.escalated\n" in out
    assert "                        actual   mediation.failed\n" in out
    assert "  records of this step:\n    case.transitioned from_state=grid.mediating" in out
    assert f"FAIL {path}::a refusal nobody expected" in out
    assert "    refused  expected not refused\n" in out
    assert "             actual   unknown_case: no open case 'case-1'" in out
    assert out.splitlines()[-1] == "0 passed, 2 failed"


def test_junit_xml_counts_passes_failures_and_broken_files(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    write(tmp_path, "a-pass.yaml", GRID_CASE)
    write(tmp_path, "b-fail.yaml", GRID_CASE.replace("03-06T", "03-07T"))
    write(tmp_path, "c-broken.yaml", "workflow: [\n")
    report = tmp_path / "out" / "junit.xml"
    code, out = run(
        capsys, "--workflows", str(WORKFLOWS), "--junit-xml", str(report), str(tmp_path)
    )
    assert code == 1
    assert out.splitlines()[-1] == "1 passed, 1 failed, 1 broken file"
    root = ET.parse(report).getroot()  # noqa: S314 - our own file
    assert root.tag == "testsuites"
    assert (root.get("tests"), root.get("failures"), root.get("errors")) == ("3", "1", "1")
    suites = {Path(s.get("name", "")).name: s for s in root.iter("testsuite")}
    assert sorted(suites) == ["a-pass.yaml", "b-fail.yaml", "c-broken.yaml"]
    (passed,) = suites["a-pass.yaml"].iter("testcase")
    assert passed.get("name") == "grid case"
    assert list(passed) == []
    (failure,) = suites["b-fail.yaml"].iter("failure")
    assert "deadline expected 2026-03-07T00:00:00+08:00" in failure.get("message", "")
    assert "(actual is 1 day earlier)" in (failure.text or "")
    (error,) = suites["c-broken.yaml"].iter("error")
    assert PROBLEM.fullmatch((error.text or "").splitlines()[0])


def test_junit_xml_of_the_shipped_scenarios(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    report = tmp_path / "junit.xml"
    code, out = run(capsys, "--workflows", str(WORKFLOWS), "--junit-xml", str(report))
    assert code == 0
    root = ET.parse(report).getroot()  # noqa: S314 - our own file
    assert root.get("tests") == str(sum(line.startswith("PASS ") for line in out.splitlines()))
    assert (root.get("failures"), root.get("errors")) == ("0", "0")
    assert len(list(root.iter("testcase"))) == int(root.get("tests", "0"))


# -- offsets --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def dispute(registry: WorkflowRegistry) -> CompiledWorkflow:
    workflow = registry.newest("dispute-escalation")
    assert workflow is not None
    return workflow


@pytest.mark.parametrize(
    ("start", "offset", "expected"),
    [
        # Thu before Spring Festival: Fri 02-13, Sat 02-14 (make-up), Tue 02-24
        ("2026-02-12T18:40:00+08:00", "+3 working days", "2026-02-24T18:40:00+08:00"),
        # Fri 16:00: one office hour left that day, the next working day opens at 09:00
        ("2026-03-06T16:00:00+08:00", "+2 working hours", "2026-03-09T10:00:00+08:00"),
        ("2026-03-06T16:00:00+08:00", "+3 days", "2026-03-09T16:00:00+08:00"),
        ("2026-03-06T16:00:00+08:00", "+3 calendar days", "2026-03-09T16:00:00+08:00"),
        ("2026-03-06T08:00:00Z", "+90m", "2026-03-06T17:30:00+08:00"),
        ("2026-03-06T16:00:00+08:00", "+0 working days", "2026-03-06T16:00:00+08:00"),
    ],
)
def test_offsets_count_on_the_workflows_calendar(
    dispute: CompiledWorkflow, start: str, offset: str, expected: str
) -> None:
    at = apply_offset(parse_offset(offset), datetime.fromisoformat(start), dispute)
    assert at.isoformat() == expected


valid_offsets = st.builds(
    lambda plus, amount, space, word, upper: (
        f"{plus}{amount}{space}{word.upper() if upper else word}",
        Offset(amount, UNIT_WORDS[word]),
    ),
    st.sampled_from(["+", "", "+ "]),
    st.integers(min_value=0, max_value=min(LIMITS.values())),
    st.sampled_from(["", " ", "  "]),
    st.sampled_from(sorted(UNIT_WORDS)),
    st.booleans(),
)


@given(valid_offsets)
def test_any_valid_offset_parses(case: tuple[str, Offset]) -> None:
    text, offset = case
    assert parse_offset(text) == offset
    assert parse_offset(str(offset)) == offset


@given(st.text(max_size=40))
def test_junk_is_refused_with_the_modules_own_error(text: str) -> None:
    outcome: Offset | OffsetError
    try:
        outcome = parse_offset(text)
    except OffsetError as err:
        outcome = err
    if isinstance(outcome, Offset):
        assert outcome.amount <= LIMITS[outcome.unit]
    else:
        assert re.search(r"not an offset|unknown unit|only moves forward|ten years", str(outcome))


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("-3 days", "time only moves forward"),
        ("+3 workdays", "unknown unit 'workdays'"),
        ("3", "is not an offset"),
        ("+1.5h", "is not an offset"),
        ("+99999 days", "longer than ten years"),
        ("", "is not an offset"),
    ],
)
def test_junk_offsets_say_what_an_offset_looks_like(text: str, message: str) -> None:
    with pytest.raises(OffsetError, match=re.escape(message)) as info:
        parse_offset(text)
    assert "+N and a unit" in str(info.value) or "ten years" in str(info.value)


def test_the_example_in_contributing_passes(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    text = (ROOT / "CONTRIBUTING.md").read_text(encoding="utf-8")
    section = text.split("## Testing a workflow", 1)[1]
    example = section.split("```yaml\n", 1)[1].split("```", 1)[0]
    path = write(tmp_path, "example.yaml", example)
    code, out = run(capsys, "--workflows", str(WORKFLOWS), str(path))
    assert (code, out.splitlines()[-1]) == (0, "1 passed, 0 failed")
