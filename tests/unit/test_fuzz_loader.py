"""Mutation fuzzing of the workflow loader: every shipped workflow and the minimal fixture, with
bytes, lines, indentation, keys and values changed at random.

Whatever the file becomes, `check_file` never raises and answers either a workflow (with no
problem) or problems that each render as one `PATH:LINE:COL: error: MESSAGE` line with a line
and column inside the file; a file that passes also compiles into a runnable machine (validate
and the engine agree). `test_validate.py` pins exact messages on hand-made files; this explores.
Quick passes run with the unit tests; `-m slow` runs deep ones.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from hypothesis import strategies as st

from engine.calendar import BusinessCalendar
from engine.machine import compile_workflow
from engine.problems import Problem
from engine.validate import check_file
from engine.yaml_source import MAX_FILE_BYTES
from tests.unit.fuzzing import fuzz, mutate_bytes

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
SEEDS = {
    path.name: path.read_bytes()
    for path in [ROOT / "tests" / "fixtures" / "valid" / "minimal.yaml",
                 *sorted((ROOT / "workflows").glob("*.yaml"))]
}  # fmt: skip
CALENDAR = BusinessCalendar.chinese(ROOT / "workflows" / "calendars")
RENDERED = re.compile(r"^(?P<path>[^\n]+):(?P<line>[1-9]\d*):(?P<col>[1-9]\d*): error: \S[^\n]*$")

KEYS = [
    "name", "version", "timezone", "calendar", "tiers", "sources", "states", "routing",
    "transitions", "clock", "tier", "sla", "terminal", "outcome", "guard", "dest", "source",
    "trigger", "allowed_sources", "escalate_to", "warn_at", "working_days", "calendar_days",
    "hours", "working_hours", "extension", "max_extensions", "pause", "resume", "extend",
    "on", "yes", "<<", "?", "teir", "", "名称",
]  # fmt: skip
VALUES = [
    "", "~", "null", "true", "no", "0", "-1", "1e309", "0x1F", "010", "09:00", "1:30", "[]", "{}",
    "[a, [b, {c: d}]]", "'*'", '"\\u0000"', '"\\ud800"', "!!python/object/apply:os.system [id]",
    "!!binary aGk=", "!!timestamp 2026-01-01", "!!set {a}", "!!omap [a: 1]", "!custom x", "&a x",
    "*a", "*undefined", "|", ">-", "'unterminated", '"unterminated', "{a: 1", "[a, b", "- x",
    "a: b: c", "x" * 5000, "event.payload.l.map(x, x)", "case.attrs.x.exists(y, true)",
    "2026-13-45", "2026-01-01T00:00:00+99:00", "\t", "%YAML 1.1", "---", "...", "# comment",
]  # fmt: skip


def mutate(raw: bytes, data: st.DataObject) -> bytes:
    """One to four edits of one kind each: bytes, whole lines, indentation, keys, values."""
    out = raw
    for _ in range(data.draw(st.integers(1, 4), label="edits")):
        kind = data.draw(st.sampled_from(["bytes", "line", "indent", "key", "value", "cut"]))
        if kind == "bytes":
            out = mutate_bytes(out, data)
        elif kind == "cut":
            out = out[: data.draw(st.integers(0, len(out)), label="cut")]
        else:
            lines = out.split(b"\n")
            at = data.draw(st.integers(0, len(lines) - 1), label="line")
            _edit_line(lines, at, kind, data)
            out = b"\n".join(lines)
    return out


def _edit_line(lines: list[bytes], at: int, kind: str, data: st.DataObject) -> None:
    line = lines[at]
    if kind == "line":
        action = data.draw(st.sampled_from(["delete", "duplicate", "swap", "blank"]))
        other = data.draw(st.integers(0, len(lines) - 1), label="other")
        if action == "delete":
            del lines[at]
        elif action == "duplicate":
            lines.insert(other, line)
        elif action == "swap":
            lines[at], lines[other] = lines[other], lines[at]
        else:
            lines[at] = b""
    elif kind == "indent":
        change = data.draw(st.sampled_from([b" ", b"  ", b"\t", b"    ", b"-", b"- "]))
        if data.draw(st.booleans(), label="deeper"):
            lines[at] = change + line
        else:
            stripped = line.lstrip(b" ")
            lines[at] = stripped if change != b"\t" else b"\t" + stripped
    elif kind == "key":
        key = data.draw(st.sampled_from(KEYS) | st.text(max_size=12), label="key")
        lines[at] = re.sub(rb"^(\s*-?\s*)[^:#\s][^:#]*:", rb"\g<1>" + _escape(key) + b":", line)
    else:
        value = data.draw(st.sampled_from(VALUES) | st.text(max_size=20), label="value")
        lines[at] = re.sub(rb":( .*)?$", b": " + _escape(value), line, count=1)


def _escape(text: str) -> bytes:
    """`text` for use as a regex replacement (backslashes doubled)."""
    return text.encode("utf-8", "surrogatepass").replace(b"\\", b"\\\\")


def check_loader(raw: bytes, path: str = "flows/fuzzed.yaml") -> list[Problem]:
    workflow, problems = check_file(path, raw)
    lines = max(1, raw.count(b"\n") + 1)
    for problem in problems:
        rendered = str(problem)
        match = RENDERED.fullmatch(rendered)
        assert match is not None, rendered
        assert match["path"] == path
        assert 1 <= problem.line <= lines + 1, (rendered, lines)
        assert problem.col >= 1
    assert (workflow is None) == bool(problems)
    if workflow is not None:
        compiled = compile_workflow(workflow, CALENDAR)  # what validate passes, the engine runs
        assert compiled.name == workflow.spec.name
    return problems


def _mutated_workflows(seed: str, data: st.DataObject) -> None:
    check_loader(mutate(SEEDS[seed], data))


test_mutated_workflows, test_mutated_workflows_deep = fuzz(
    seed=st.sampled_from(sorted(SEEDS)), data=st.data()
)(_mutated_workflows)


def _spliced_workflows(first: str, second: str, data: st.DataObject) -> None:
    """The head of one workflow glued to the tail of another: plausible, wrong, positions far
    down the file."""
    a, b = SEEDS[first], SEEDS[second]
    cut_a = data.draw(st.integers(0, len(a)), label="cut_a")
    cut_b = data.draw(st.integers(0, len(b)), label="cut_b")
    check_loader(a[:cut_a] + b[cut_b:])


test_spliced_workflows, test_spliced_workflows_deep = fuzz(
    first=st.sampled_from(sorted(SEEDS)), second=st.sampled_from(sorted(SEEDS)), data=st.data()
)(_spliced_workflows)


def _arbitrary_text(text: str) -> None:
    check_loader(text.encode("utf-8", "surrogatepass"))


test_arbitrary_text, test_arbitrary_text_deep = fuzz(text=st.text(max_size=300))(_arbitrary_text)


# --- the file size limit ------------------------------------------------------------------------


def _padded(size: int) -> bytes:
    """The minimal workflow grown to exactly `size` bytes by a trailing comment."""
    base = SEEDS["minimal.yaml"]
    return base + b"#" + b"x" * (size - len(base) - 2) + b"\n"


def test_a_workflow_up_to_the_size_limit_is_read() -> None:
    raw = _padded(MAX_FILE_BYTES)
    assert len(raw) == MAX_FILE_BYTES
    assert check_loader(raw) == []


def test_a_larger_workflow_is_refused_with_a_clear_error() -> None:
    raw = _padded(MAX_FILE_BYTES + 1)
    assert [str(p) for p in check_loader(raw, "w.yaml")] == [
        f"w.yaml:1:1: error: file is larger than {MAX_FILE_BYTES} bytes"
    ]


@pytest.mark.parametrize(
    "raw",
    [
        pytest.param(b"a: " + b"[" * 39 + b"]" * 39, id="39-levels"),
        pytest.param(b"a: " + b"[" * 45 + b"]" * 45, id="45-levels"),
        pytest.param(b"a: " + b"{b: " * 200 + b"1" + b"}" * 200, id="200-mapping-levels"),
        pytest.param(b"- " * 300 + b"x", id="300-block-levels"),
        pytest.param(b"&a [" + b"*a, " * 10 + b"]", id="alias-of-itself"),
    ],
)
def test_nesting_is_refused_or_read_never_raises(raw: bytes) -> None:
    check_loader(raw)


def test_escalation_from_a_state_with_an_unknown_tier_is_one_problem() -> None:
    """Found by `test_spliced_workflows_deep`: the climb check looked the unknown tier up in the
    ladder and raised KeyError out of `check_file`."""
    raw = (
        SEEDS["minimal.yaml"]
        .replace(b"    tier: grid\n", b"    tier: village\n    sla: {hours: 4, escalate_to: up}\n")
        .replace(b"  closed:\n", b"  up:\n    tier: grid\n  closed:\n")
    )
    raw = raw.replace(b"    source: open\n", b"    source: [open, up]\n")
    assert [str(p) for p in check_loader(raw, "w.yaml")] == [
        "w.yaml:8:11: error: state 'open': unknown tier 'village'"
    ]
