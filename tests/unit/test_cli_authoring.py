"""Authoring comforts of the CLI: what `graph` draws, `simulate --format table` and
`--fail-on-reject`, one-line errors for paths that cannot be read, and what `validate` names.

The diagrams must stay valid whatever a guard contains: Mermaid is checked line by line against
the statements `engine.diagram` writes (and every label decoded back to its text), DOT by
Graphviz itself when `dot` is installed, else by a parse of its statements.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from consumers.cli.main import main
from engine import diagram
from engine.diagram import (
    BREACH_COLOUR,
    TIMEOUT_COLOUR,
    dot,
    dot_text,
    mermaid,
    mermaid_text,
    short_guard,
)
from engine.machine import BREACH_TRIGGER, TIMEOUT_TRIGGER
from schemas.workflow import WorkflowSpec

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
WORKFLOWS = ROOT / "workflows"
WORKFLOW = WORKFLOWS / "dispute-escalation.yaml"
EXAMPLE = WORKFLOWS / "examples" / "dispute-escalation.jsonl"
GOLDEN = ROOT / "tests" / "golden" / "dispute-escalation.records.jsonl"
MINIMAL = ROOT / "tests" / "fixtures" / "valid" / "minimal.yaml"
UNTIL = "2026-06-01T00:00:00+08:00"  # the golden files' --until

TRICKY = (
    'event.payload.note == "a \\"q\\" b: <x> & {y}; #z; %%{init: 1}%% :: \\\\ &lt;" &&\n'
    '  {"k": 1}["k"] > 0 || size(event.payload.items) < 3'
)
"""A guard with every character that means something to Mermaid or DOT, over two lines."""
TIGHT = "event.payload.n<2 && event.payload.m>1"
"""Unescaped, Mermaid would read `<2 && event.payload.m>` as an HTML tag and drop it."""


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    return code, out, err


def tricky_spec() -> WorkflowSpec:
    """A workflow whose guards carry the awkward characters (shape-checked only: the diagram
    draws a spec, so this does not depend on the rules `validate` adds over time)."""
    return WorkflowSpec.model_validate(
        {
            "name": "tricky",
            "version": 1,
            "tiers": ["grid", "court"],
            "sources": ["grid", "court"],
            "states": {
                "open": {"tier": "grid",
                         "sla": {"hours": 1, "warn_at": 0.5, "escalate_to": "court.open"}},
                "court.open": {"tier": "court"},
                "closed": {"terminal": True, "outcome": "resolved"},
            },
            "routing": [
                {"dest": "court.open", "allowed_sources": ["court"], "guard": TIGHT},
                {"dest": "open"},
            ],
            "transitions": [
                {"trigger": "case.closed", "source": "open", "dest": "closed", "guard": TRICKY,
                 "allowed_sources": ["grid", "court"]},
                {"trigger": "case.closed", "source": "court.open", "dest": "closed",
                 "guard": TIGHT},
            ],
        }
    )  # fmt: skip


# -- Mermaid: the statements written, and labels decoded back -------------------------------

MERMAID_STATEMENTS = [
    re.compile(r"%% [\w.\-]+ v\d+"),
    re.compile(r'state "[A-Za-z][\w.\-]*" as s\d+'),
    re.compile(r"s\d+ : (?P<text>\S.*)"),
    re.compile(r"(?:\[\*\]|s\d+) --> (?:s\d+|\[\*\])(?: : (?P<text>\S.*))?"),
    re.compile(r"classDef tier\d+ fill:#[0-9a-f]{6},stroke:#[0-9a-f]{6}"),
    re.compile(r"class s\d+(?:,s\d+)* tier\d+"),
]
ENTITY = re.compile(r"#(\d+);")


def mermaid_labels(text: str) -> list[str]:
    """Every label and state line of a diagram, decoded; fails on a line Mermaid would misread."""
    lines = text.splitlines()
    assert lines[0] == "stateDiagram-v2"
    labels = []
    for line in lines[1:]:
        assert line.startswith("    "), line
        match = next((m for p in MERMAID_STATEMENTS if (m := p.fullmatch(line[4:]))), None)
        assert match is not None, f"not a statement engine.diagram writes: {line!r}"
        label = match.groupdict().get("text")
        if label is None:
            continue
        bare = ENTITY.sub("", label.replace("<br/>", ""))
        for unsafe in (";", "<", ">", "#", "::", "%%", "\n"):
            assert unsafe not in bare, f"{unsafe!r} unescaped in {line!r}"
        assert not re.search(r"&[#A-Za-z]", bare), line
        labels.append(ENTITY.sub(lambda m: chr(int(m.group(1))), label))
    return labels


def test_mermaid_text_escapes_what_mermaid_would_misread() -> None:
    assert mermaid_text("a<b && c>d") == "a#60;b && c#62;d"
    assert mermaid_text('x; #y "z"') == 'x#59; #35;y "z"'
    assert mermaid_text("a ::: b : c") == "a #58;#58;#58; b : c"
    assert mermaid_text("%%{init}%% 5%") == "#37;#37;{init}#37;#37; 5%"
    assert mermaid_text("one\n  two") == "one two"
    assert mermaid_text("&lt; & &&") == "#38;lt#59; & &&"


def test_dot_text_escapes_quotes_backslashes_and_entities() -> None:
    assert dot_text('say "hi" \\n') == 'say \\"hi\\" \\\\n'
    assert dot_text("a &lt; b && {c}\n<d>") == "a &amp;lt; b && {c} <d>"


def test_long_guards_are_cut_on_one_line() -> None:
    assert short_guard("a ==\n   b") == "a == b"
    cut = short_guard("x" * 100)
    assert cut == "x" * 41 + " … " + "x" * 28
    long = 'event.payload.rating == "unsatisfied" && has(event.payload.reopen) && ' + (
        'event.payload.reopen == true && case.tier == "city"'
    )
    assert short_guard(long) == (
        'event.payload.rating == "unsatisfied" && … true && case.tier == "city"'
    )


def test_graph_mermaid_of_the_shipped_workflow(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "graph", str(WORKFLOW))
    assert (code, err) == (0, "")
    labels = mermaid_labels(out)
    # states: tier, SLA (warning, extension), outcome
    assert 'state "grid.mediating" as s0' in out
    assert "tier grid" in labels
    assert "SLA 3 working days, warn 67%" in labels
    assert "SLA 30 calendar days, warn 80%, ext +30 calendar days ×1" in labels
    assert "outcome: litigation" in labels
    assert "class s2,s7 tier2" in out  # court.mediating and litigation share the court colour
    # routing from the start, in order, with allowed sources and guards
    assert "    [*] --> s2 : case.reported (1) [court]\n" in out
    assert "    [*] --> s0 : case.reported (3)\n" in out
    assert 'case.reported (2)<br/>if event.source == "police" || (has(' in out
    # transitions: trigger, allowed sources, guard; the breach edge marked
    assert "    s2 --> s7 : mediation.failed [court]\n" in out
    assert "    s0 --> s2 : case.escalated [center, court]\n" in out
    labour = 'mediation.failed<br/>if has(case.attrs.category) && case.attrs.category == "labour"'
    assert f"    s1 --> s8 : {labour}\n" in out
    assert "    s0 --> s1 : ⌛ sla.breached\n" in out
    assert "    s5 --> [*]\n" in out


def test_graph_mermaid_escapes_tricky_guards() -> None:
    labels = mermaid_labels(mermaid(tricky_spec()))
    assert f"case.reported (1) [court]<br/>if {TIGHT}" in labels
    assert f"case.closed [grid, court]<br/>if {short_guard(TRICKY)}" in labels
    assert f"case.closed<br/>if {TIGHT}" in labels


# -- DOT: Graphviz when it is installed, else a parse of the statements -----------------------

QUOTED = r'"(?:[^"\\]|\\.)*"'
ATTRS = rf"\[(?P<attrs>(?:\w+={QUOTED}|\w+=[\w.#]+)(?:, (?:\w+={QUOTED}|\w+=[\w.#]+))*)\]"
DOT_STATEMENTS = [
    re.compile(rf"digraph {QUOTED} \{{"),
    re.compile(r"// .*"),
    re.compile(r"rankdir=LR;"),
    re.compile(rf"(?:node|edge) {ATTRS};"),
    re.compile(rf"subgraph {QUOTED} \{{"),
    re.compile(rf"label={QUOTED}; style=filled; fillcolor={QUOTED}; color={QUOTED};"),
    re.compile(rf"{QUOTED};"),
    re.compile(rf"{QUOTED} {ATTRS};"),
    re.compile(rf"{QUOTED} -> {QUOTED} {ATTRS};"),
    re.compile(r"\}"),
]


def _dot_unescape(match: re.Match[str]) -> str:
    return "\n" if match.group(1) == "n" else match.group(1)


def dot_labels(text: str) -> list[str]:
    """The labels of a DOT document, decoded (`\\n` becomes a line break), after checking that
    every line is a statement and the braces balance."""
    depth = 0
    labels = []
    for line in text.splitlines():
        statement = line.strip()
        match = next((m for p in DOT_STATEMENTS if (m := p.fullmatch(statement))), None)
        assert match is not None, f"not a DOT statement engine.diagram writes: {line!r}"
        depth += statement.endswith("{") - (statement == "}")
        assert depth >= 0
        for raw in re.findall(rf"\blabel=({QUOTED})", statement):
            decoded = re.sub(r"\\(.)", _dot_unescape, raw[1:-1])
            labels.append(decoded.replace("&amp;", "&"))
    assert depth == 0
    return labels


def graphviz_texts(text: str) -> list[str] | None:
    """The text lines Graphviz draws (its SVG), or None without Graphviz."""
    graphviz = shutil.which("dot")
    if graphviz is None:
        return None
    done = subprocess.run(
        [graphviz, "-Tsvg"], input=text.encode(), capture_output=True, timeout=60, check=False
    )  # fmt: skip
    assert done.returncode == 0, done.stderr.decode()
    assert done.stderr == b"", done.stderr.decode()
    svg = ET.fromstring(done.stdout)  # noqa: S314 - our own Graphviz output
    return [el.text for el in svg.iter("{http://www.w3.org/2000/svg}text") if el.text]


def test_graph_dot_of_the_shipped_workflow(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "graph", str(WORKFLOW), "--format", "dot")
    assert (code, err) == (0, "")
    labels = dot_labels(out)
    assert "grid.mediating\ntier grid\nSLA 3 working days, warn 67%" in labels
    assert "litigation\ntier court\noutcome: litigation" in labels
    assert "case.reported (1) [court]" in labels
    assert "mediation.failed [court]" in labels
    labour = 'has(case.attrs.category) && case.attrs.category == "labour"'
    assert f"mediation.failed\nif {labour}" in labels
    assert 'subgraph "cluster_court" {' in out
    breach = '"grid.mediating" -> "center.mediating" [label="sla.breached", style=dashed'
    assert breach in out
    texts = graphviz_texts(out)
    if texts is not None:
        assert "SLA 3 working days, warn 67%" in texts
        assert "case.escalated [center, court]" in texts


def test_graph_dot_escapes_tricky_guards() -> None:
    text = dot(tricky_spec())
    labels = dot_labels(text)
    assert f"case.closed [grid, court]\nif {short_guard(TRICKY)}" in labels
    assert f"case.reported (1) [court]\nif {TIGHT}" in labels
    texts = graphviz_texts(text)
    if texts is not None:
        assert f"if {short_guard(TRICKY)}" in texts
        assert f"if {TIGHT}" in texts


# -- timing rules: lapses, anchors, party windows, windows on transitions --------------------

TIMING = """\
name: timing
version: 1
tiers: [grid, court]
sources: [grid, court]
states:
  grid.mediating:
    tier: grid
    sla: {working_days: 3, escalate_to: court.mediating}
  court.mediating:
    tier: court
    sla: {calendar_days: 30, from: opened, timeout_to: litigation}
  agreement.reached:
    sla: {calendar_days: 30, owner: party, timeout_to: lapsed}
  confirmed: {terminal: true, outcome: confirmed}
  lapsed: {terminal: true, outcome: withdrawn}
  litigation: {terminal: true, outcome: litigation}
routing:
  - dest: grid.mediating
transitions:
  - trigger: mediation.succeeded
    source: [grid.mediating, court.mediating]
    dest: agreement.reached
  - trigger: confirmation.applied
    source: agreement.reached
    dest: confirmed
    allowed_sources: [court]
    within: {calendar_days: 30}
  - trigger: objection.raised
    source: agreement.reached
    dest: grid.mediating
    guard: has(event.payload.reason)
    within: {working_days: 10, from: grid.mediating}
events:
  mediation.succeeded: {}
  confirmation.applied: {}
  objection.raised: {payload: {reason: {type: string}}}
"""
"""Every timing rule the diagram shows, in a workflow `validate` accepts."""


@pytest.fixture
def timing(tmp_path: Path) -> Path:
    path = tmp_path / "timing.yaml"
    path.write_text(TIMING, encoding="utf-8")
    return path


def test_graph_mermaid_tells_lapses_anchors_and_windows_apart(
    timing: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run(capsys, "graph", str(timing))
    assert (code, err) == (0, "")
    labels = mermaid_labels(out)
    assert "SLA 30 calendar days from opened, warn 80%" in labels
    assert "SLA 30 calendar days, party's window, warn 80%" in labels
    # an escalation climbs (⌛), a lapse goes anywhere (⏱): one marker each
    assert "    s0 --> s1 : ⌛ sla.breached\n" in out
    assert "    s1 --> s5 : ⏱ sla.timed_out\n" in out
    assert "    s2 --> s4 : ⏱ sla.timed_out\n" in out
    assert "confirmation.applied [court]<br/>within 30 calendar days" in labels
    objection = "objection.raised<br/>within 10 working days from grid.mediating<br/>"
    assert f"    s2 --> s0 : {objection}if has(event.payload.reason)\n" in out


def test_graph_dot_dashes_lapses_in_their_own_colour(
    timing: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run(capsys, "graph", str(timing), "--format", "dot")
    assert (code, err) == (0, "")
    labels = dot_labels(out)
    assert "court.mediating\ntier court\nSLA 30 calendar days from opened, warn 80%" in labels
    assert "agreement.reached\nSLA 30 calendar days, party's window, warn 80%" in labels
    assert "confirmation.applied [court]\nwithin 30 calendar days" in labels
    objection = "objection.raised\nwithin 10 working days from grid.mediating"
    assert f"{objection}\nif has(event.payload.reason)" in labels
    escalation = (
        '"grid.mediating" -> "court.mediating" [label="sla.breached", '
        f'style=dashed, color="{BREACH_COLOUR}", fontcolor="{BREACH_COLOUR}"];'
    )
    lapse = (
        '"court.mediating" -> "litigation" [label="sla.timed_out", '
        f'style=dashed, color="{TIMEOUT_COLOUR}", fontcolor="{TIMEOUT_COLOUR}"];'
    )
    assert escalation in out
    assert lapse in out
    assert BREACH_COLOUR != TIMEOUT_COLOUR
    texts = graphviz_texts(out)
    if texts is not None:
        assert "sla.timed_out" in texts
        assert "within 30 calendar days" in texts


def test_the_diagram_names_the_engines_reserved_triggers() -> None:
    assert (diagram.BREACH_TRIGGER, diagram.TIMEOUT_TRIGGER) == (BREACH_TRIGGER, TIMEOUT_TRIGGER)


# -- simulate --format table, --fail-on-reject ---------------------------------------------


def cells(line: str) -> list[str]:
    return re.split(r" {2,}", line.strip())


def test_table_is_a_timeline_per_case_from_the_same_records(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, out, _ = run(capsys, "simulate", "--events", str(EXAMPLE), "--until", UNTIL,
                       "--format", "table")  # fmt: skip
    assert code == 0
    lines = out.splitlines()
    assert cells(lines[0]) == ["time", "record", "state", "tier", "trigger", "deadline", "detail"]
    headings = [line for line in lines if line and not line.startswith(" ")]
    assert headings == [
        "FQ-D-2026-0001  dispute-escalation v1  (Asia/Shanghai)",
        "FQ-D-2026-0003  dispute-escalation v1  (Asia/Shanghai)",
        "FQ-D-2026-0002  dispute-escalation v1  (Asia/Shanghai)",
        "FQ-D-2026-0004  dispute-escalation v1  (Asia/Shanghai)",
        "FQ-D-2026-0099",
        "(no case)",
    ]
    records = [json.loads(line) for line in GOLDEN.read_text(encoding="utf-8").splitlines()]
    rows = [line for line in lines[1:] if line.startswith("  ")]
    assert len(rows) == len(records)  # one row per record, nothing replayed twice
    assert sorted(cells(r)[1] for r in rows) == sorted(r["type"] for r in records)
    breach = ["2026-02-25 00:00", "case.transitioned", "grid.mediating → center.mediating",
              "center", "sla.breached", "2026-03-28 00:00"]  # fmt: skip
    assert breach in [cells(r) for r in rows]
    assert ["2026-03-18 16:00", "case.closed", "confirmed", "center",
            "confirmed, not on time, 1 escalation"] in [cells(r) for r in rows]  # fmt: skip
    # rejections sit with their case; a line that is not JSON has none
    case_2 = lines[lines.index(headings[2]) + 1]
    assert cells(case_2)[:2] == ["-", "event.rejected"]
    assert "schema_invalid at dispute-escalation.jsonl:4" in case_2
    assert "malformed at dispute-escalation.jsonl:2: not JSON" in lines[-1]


def test_table_shows_local_time_of_the_workflow(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    event = {"event_id": "e1", "case_id": "c1", "type": "case.reported",
             "occurred_at": "2026-02-12T10:40:00Z", "source": "grid",
             "payload": {"workflow": "dispute-escalation",
                         "attributes": {"category": "neighbour"}}}  # fmt: skip
    events = tmp_path / "e.jsonl"
    events.write_text(json.dumps(event) + "\n", encoding="utf-8")
    code, out, _ = run(capsys, "simulate", "--events", str(events), "--format", "table")
    assert code == 0
    first = cells(out.splitlines()[-1])
    assert first[:3] == ["2026-02-12 18:40", "case.transitioned", "→ grid.mediating"]


def test_json_stays_the_default_byte_for_byte(capsys: pytest.CaptureFixture[str]) -> None:
    for extra in ([], ["--format", "json"]):
        code, out, _ = run(capsys, "simulate", "--events", str(EXAMPLE), "--until", UNTIL, *extra)
        assert code == 0
        assert out == GOLDEN.read_text(encoding="utf-8")


def test_fail_on_reject_exits_1_after_writing_everything(
    capsys: pytest.CaptureFixture[str],
) -> None:
    args = ["simulate", "--events", str(EXAMPLE), "--until", UNTIL]
    code, out, err = run(capsys, *args, "--fail-on-reject")
    assert code == 1
    assert out == GOLDEN.read_text(encoding="utf-8")
    assert err.splitlines()[-1] == (
        "error: 5 event(s) rejected (invalid_transition=1, malformed=1, schema_invalid=1, "
        "unauthorized_source=1, unknown_case=1)"
    )
    assert run(capsys, *args)[0] == 0  # without the flag, rejections are output, not failure


def test_fail_on_reject_exits_0_when_nothing_was_rejected(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    good = [line for line in EXAMPLE.read_text(encoding="utf-8").splitlines()
            if '"FQ-D-2026-0004"' in line]  # fmt: skip
    events = tmp_path / "good.jsonl"
    events.write_text("\n".join(good) + "\n", encoding="utf-8")
    code, _, err = run(capsys, "simulate", "--events", str(events), "--fail-on-reject")
    assert code == 0
    assert "rejected=0" in err
    assert "error" not in err


# -- paths that cannot be read: one line, no traceback --------------------------------------


def deny(monkeypatch: pytest.MonkeyPatch, denied: Path) -> None:
    """Make `denied` unreadable as if by its mode bits (the tests may run as root, whom the
    mode bits do not stop)."""

    def guard(original: Callable[..., Any]) -> Callable[..., Any]:
        def call(self: Path, *args: Any, **kwargs: Any) -> Any:
            if self == denied:
                raise PermissionError(13, "Permission denied", str(self))
            return original(self, *args, **kwargs)

        return call

    for name in ("open", "read_bytes", "iterdir"):
        monkeypatch.setattr(Path, name, guard(getattr(Path, name)))


@pytest.fixture
def events(tmp_path: Path) -> Path:
    path = tmp_path / "events.jsonl"
    path.write_text("", encoding="utf-8")
    return path


def test_simulate_errors_are_one_line(
    tmp_path: Path, events: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = tmp_path / "nope.jsonl"
    cases = {
        ("--events", str(missing)): f"error: {missing}: No such file or directory",
        ("--events", str(tmp_path)): f"error: {tmp_path}: Is a directory",
        ("--events", str(events), "--workflows", str(tmp_path / "wf")):
            f"{tmp_path / 'wf'}:1:1: error: no such file or directory",
        ("--events", str(events), "--out", str(tmp_path / "no" / "out.jsonl")):
            f"error: {tmp_path / 'no' / 'out.jsonl'}: No such file or directory",
    }  # fmt: skip
    for args, line in cases.items():
        assert run(capsys, "simulate", *args) == (1, "", line + "\n"), args


def test_simulate_bad_until_is_a_usage_error(
    events: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run(capsys, "simulate", "--events", str(events), "--until", "tomorrow")
    assert (code, out) == (2, "")
    assert err.startswith("error: --until 'tomorrow' is not an RFC 3339 instant")


def test_unreadable_files_and_folders(
    tmp_path: Path,
    events: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    folder = tmp_path / "wf"
    folder.mkdir()
    deny(monkeypatch, events)
    deny(monkeypatch, folder)
    code, out, err = run(capsys, "simulate", "--events", str(events))
    assert (code, out, err) == (1, "", f"error: {events}: Permission denied\n")
    code, out, err = run(capsys, "simulate", "--events", str(events), "--workflows", str(folder))
    assert (code, err) == (1, f"{folder}:1:1: error: cannot read: Permission denied\n")
    assert run(capsys, "validate", str(folder)) == (
        1, f"{folder}:1:1: error: cannot read: Permission denied\n", "",
    )  # fmt: skip


def test_graph_errors_are_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = tmp_path / "nope.yaml"
    assert run(capsys, "graph", str(missing)) == (
        1, "", f"{missing}:1:1: error: no such file or directory\n",
    )  # fmt: skip
    assert run(capsys, "graph", str(tmp_path)) == (
        1, "", f"{tmp_path}:1:1: error: is a folder; graph draws one workflow file\n",
    )  # fmt: skip
    copy = tmp_path / "copy.yaml"
    shutil.copy(WORKFLOW, copy)
    deny(monkeypatch, copy)
    assert run(capsys, "graph", str(copy)) == (
        1, "", f"{copy}:1:1: error: cannot read file: Permission denied\n",
    )  # fmt: skip


def test_bench_with_a_missing_workflows_folder(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = tmp_path / "wf"
    assert run(capsys, "bench", "core", "--workflows", str(missing)) == (
        1, "", f"{missing}:1:1: error: no such file or directory\n",
    )  # fmt: skip


def test_the_installed_command_prints_no_traceback(tmp_path: Path) -> None:
    """The same through the process's own entry point, as a user meets it."""
    missing = tmp_path / "nope.jsonl"
    done = subprocess.run(
        [sys.executable, "-m", "consumers.cli.main", "simulate", "--events", str(missing)],
        cwd=ROOT, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 1
    assert done.stderr == f"error: {missing}: No such file or directory\n"
    assert "Traceback" not in done.stdout + done.stderr


# -- validate names what it checked ------------------------------------------------------


def test_validate_names_the_folder_or_files(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(ROOT)
    count = len(list(WORKFLOWS.glob("*.yaml")))
    also = f"and {len(list((WORKFLOWS / 'channels').glob('*.yaml')))} channel(s) "
    assert run(capsys, "validate") == (
        0,
        "",
        f"ok: {count} workflow(s) {also}valid in workflows/\n",
    )
    assert run(capsys, "validate", str(MINIMAL)) == (
        0, "", f"ok: 1 workflow(s) valid in {MINIMAL}\n",
    )  # fmt: skip
    files = sorted(str(p.relative_to(ROOT)) for p in WORKFLOWS.glob("*.yaml"))
    assert run(capsys, "validate", *files[:2]) == (
        0, "", f"ok: 2 workflow(s) valid in {files[0]}, {files[1]}\n",
    )  # fmt: skip
    assert run(capsys, "validate", *files, str(MINIMAL)) == (
        0, "", f"ok: {count + 1} workflow(s) valid in {count + 1} paths\n",
    )  # fmt: skip
