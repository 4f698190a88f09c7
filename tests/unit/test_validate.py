"""`engine.validate.check_file` on one broken fixture per problem kind, and on the valid files.

Each fixture in tests/fixtures/broken/ is the minimal valid workflow with exactly the intended
problem(s) added, so the table below pins every line the validator prints for it: line, column
and message. Where the text comes from a third-party library (PyYAML, pydantic, CEL) only a
stable part is pinned: `…` in an expected line matches any text.

Rows marked `BUG` expect what the validator *should* print and are strict xfails: they turn into
failures (XPASS) once the engine is fixed, so the marker is removed together with the bug.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from engine import yaml_source
from engine.problems import Problem
from engine.validate import check_file
from engine.yaml_source import MAX_EXPANDED_NODES

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
BROKEN = ROOT / "tests" / "fixtures" / "broken"
VALID = ROOT / "tests" / "fixtures" / "valid"
WORKFLOWS = ROOT / "workflows"

GUARD_USER = "guard: unknown name(s) user; a guard may read only case, event, now"

EXPECTED: dict[str, list[str]] = {
    # --- the file cannot be read as YAML at all
    "yaml-syntax-error.yaml": [
        "5:8: error: YAML syntax error: while parsing a flow sequence; "
        "expected ',' or ']', but got ':'"
    ],
    "tabs-indentation.yaml": [
        "8:1: error: YAML syntax error: … found character '\\t' that cannot start any token "
        "(tabs are not allowed for indentation in YAML; use spaces)"
    ],
    "empty.yaml": ["1:1: error: file is empty"],
    "whitespace-only.yaml": ["1:1: error: file is empty"],
    "binary-nul.yaml": ["1:8: error: file contains a NUL byte (binary file?)"],
    "binary-invalid-utf8.yaml": ["1:7: error: file is not UTF-8 text (binary file?)"],
    "python-object-tag.yaml": [
        "4:14: error: YAML tag 'tag:yaml.org,2002:python/object/apply:os.system' is not allowed"
    ],
    "alias-bomb.yaml": [
        f"2:15: error: document expands to more than {MAX_EXPANDED_NODES} nodes (alias bomb?); "
        "refused"
    ],
    "duplicate-key.yaml": ["12:3: error: duplicate key 'open'"],
    "list-not-mapping.yaml": ["2:1: error: a workflow file must be a mapping"],
    # --- shape (pydantic)
    "wrong-type-version.yaml": ["3:10: error: version: a whole number, not the text 'one'"],
    "wrong-type-negative-sla.yaml": [
        "10:21: error: states.open.sla.working_days: Input should be greater than or equal to 0"
    ],
    "unknown-key.yaml": ["8:5: error: unknown key 'teir' (did you mean 'tier'?)"],
    "missing-required-key.yaml": ["15:5: error: missing required key 'dest' in transitions.0"],
    # YAML 1.2: `on` stays the string "on" (YAML 1.1 would make it the boolean true and the
    # message would be a puzzling "mapping keys must be plain strings").
    "yaml11-on-key.yaml": [
        "17:5: error: missing required key 'trigger' in transitions.0",
        "18:5: error: unknown key 'on'",
    ],
    # --- meaning: names that refer to each other
    "unknown-state-dest.yaml": ["20:11: error: transition dest: unknown state 'refered'"],
    "unknown-state-source.yaml": ["16:20: error: transition source: unknown state 'opened'"],
    "unknown-state-escalate-to.yaml": [
        "9:41: error: escalate_to: unknown state 'center.mediation'"
    ],
    "unknown-state-routing.yaml": ["15:11: error: routing: unknown state 'opne'"],
    "unknown-tier.yaml": ["8:11: error: state 'open': unknown tier 'village'"],
    "unknown-allowed-source.yaml": [
        "18:29: error: unknown source 'hotline-12315' (not in sources)"
    ],
    "unknown-timezone.yaml": ["4:11: error: unknown time zone 'Asia/Beijing'"],
    # --- meaning: the graph
    "unreachable-state.yaml": ["9:3: error: state 'waiting' is unreachable from routing"],
    "dead-end-state.yaml": [
        "9:3: error: state 'waiting' is a dead end: not terminal and no way out"
    ],
    "transition-from-terminal.yaml": ["19:13: error: transition out of terminal state 'closed'"],
    "escalate-not-climbing.yaml": [
        "11:43: error: escalate_to 'grid.mediating' (tier grid) does not climb the ladder from "
        "'center.mediating' (tier center)"
    ],
    "ambiguous-transitions.yaml": [
        "19:5: error: ambiguous: several transitions on 'case.closed' from 'open' and no guard "
        "tells them apart"
    ],
    # --- meaning: guards
    "guard-syntax-error.yaml": [
        "18:12: error: guard: Failed to parse expression '(event.source == \"grid\"'…missing ')'…"
    ],
    "guard-unknown-name.yaml": [f"18:12: error: {GUARD_USER}"],
    "guard-unsupported-function.yaml": ["18:12: error: guard: unsupported function(s) lowerAscii"],
    # --- meaning: states
    "sla-on-terminal.yaml": ["12:10: error: terminal state 'closed' cannot have an SLA"],
    "terminal-without-outcome.yaml": ["9:3: error: terminal state 'closed' needs an outcome"],
    # --- meaning: timing rules (what a breach does, what limits and windows count from)
    "timeout-to-unknown-state.yaml": [
        "9:42: error: timeout_to: unknown state 'closd' (did you mean 'closed'?)"
    ],
    "escalate-and-timeout.yaml": [
        "9:71: error: give escalate_to (climb the ladder) or timeout_to (lapse to any state), "
        "not both"
    ],
    "sla-from-unknown-state.yaml": [
        "9:36: error: from: 'opend' is not `entered`, `opened` or a state of this workflow "
        "(did you mean 'opened'?)"
    ],
    "window-from-unknown-state.yaml": [
        "18:39: error: from: 'agreement.reached' is not `entered`, `opened` or a state of this "
        "workflow"
    ],
    "reserved-trigger-timed-out.yaml": ["15:14: error: trigger 'sla.timed_out' is reserved"],
    # --- meaning: the vocabulary (declared attributes and events)
    "guard-misspelt-case-member.yaml": [
        "18:12: error: guard: case.attr: case has no member 'attr' (did you mean 'attrs'?); it "
        "has attrs, entered_at, escalations, opened_at, state, tier, workflow"
    ],
    "guard-undeclared-field.yaml": [
        "18:12: error: guard: case.attrs.categry: case.attrs has no member 'categry' (did you "
        "mean 'category'?); declare it under `attributes:`",
        "18:12: error: guard: event.payload.agreed: event.payload has no member 'agreed'; "
        "declare it under `events: case.closed: payload:`",
    ],
    "guard-literal-wrong-type.yaml": [
        "14:12: error: guard: 'urgnet' is not a value of case.attrs.urgency (did you mean "
        "'urgent'?); it is one of 'urgent', 'general'",
        "19:12: error: guard: event.payload.agreement_signed is a bool, compared with 'yes' "
        "(a string)",
    ],
    "undeclared-trigger.yaml": [
        "15:14: error: 'agreement.fulfiled' is not a declared event (did you mean "
        "'agreement.fulfilled'?); declare it under `events:` or fix the name"
    ],
    "undeclared-clock-event.yaml": [
        "20:11: error: 'apraisal.started' is not a declared event (did you mean "
        "'appraisal.started'?); declare it under `events:` or fix the name"
    ],
    "string-where-number.yaml": [
        "9:25: error: states.open.sla.working_days: a whole number, not the text '3' (write it "
        "without quotes)",
        "9:39: error: states.open.sla.warn_at: warn_at is a fraction of the limit, e.g. 0.67 "
        "(got 67)",
        "11:15: error: states.closed.terminal: true or false, not the text 'yes'",
    ],
    # --- several problems are all reported at once
    # Six mistakes of every layer in one pass: a shape error no longer hides the others.
    "six-mistakes.yaml": [
        "9:25: error: states.open.sla.working_days: a whole number, not the text '3' (write it "
        "without quotes)",
        "11:5: error: unknown key 'teir' (did you mean 'tier'?)",
        "21:12: error: guard: case.attr: case has no member 'attr' (did you mean 'attrs'?); it "
        "has attrs, entered_at, escalations, opened_at, state, tier, workflow",
        "22:14: error: 'agreement.fulfiled' is not a declared event (did you mean "
        "'agreement.fulfilled'?); declare it under `events:` or fix the name",
        "24:11: error: transition dest: unknown state 'clossed'",
        "26:11: error: 'apraisal.started' is not a declared event (did you mean "
        "'appraisal.started'?); declare it under `events:` or fix the name",
    ],
    "two-problems.yaml": [
        "8:11: error: state 'open': unknown tier 'village'",
        f"18:12: error: {GUARD_USER}",
    ],
}

BUGS: dict[str, str] = {}
"""Fixtures whose expected line is what the validator *should* print (strict xfails)."""


def _render(problems: list[Problem]) -> list[str]:
    return [f"{p.line}:{p.col}: error: {p.message}" for p in sorted(problems)]


def _pattern(expected: str) -> re.Pattern[str]:
    return re.compile(".*".join(re.escape(part) for part in expected.split("…")), re.DOTALL)


def _matches(got: list[str], expected: list[str]) -> bool:
    """Every expected line matches its own line of `got` and nothing is left over (any order)."""
    left = list(got)
    for line in expected:
        hit = next((g for g in left if _pattern(line).fullmatch(g)), None)
        if hit is None:
            return False
        left.remove(hit)
    return not left


def _check(name: str) -> list[Problem]:
    path = BROKEN / name
    workflow, problems = check_file(str(path), path.read_bytes())
    assert workflow is None
    assert all(p.path == str(path) for p in problems)
    return problems


def test_table_covers_every_broken_fixture() -> None:
    on_disk = sorted(p.name for p in BROKEN.iterdir())
    assert on_disk == sorted(EXPECTED)
    assert set(BUGS) <= set(EXPECTED)


@pytest.mark.parametrize(
    "name",
    [
        pytest.param(n, marks=pytest.mark.xfail(reason=f"BUG: {BUGS[n]}", strict=True))
        if n in BUGS
        else n
        for n in sorted(EXPECTED)
    ],
)
def test_broken_fixture_reports_exactly_these_lines(name: str) -> None:
    got = _render(_check(name))
    assert _matches(got, EXPECTED[name]), f"got {got}\nexpected {EXPECTED[name]}"


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_broken_fixture_reports_each_problem_once_on_one_line(name: str) -> None:
    """Holds for the BUG rows too: the problem fires, once, whatever its text or place."""
    problems = _check(name)
    assert len(problems) == len(EXPECTED[name])
    assert all("\n" not in p.message and p.line >= 1 and p.col >= 1 for p in problems)


@pytest.mark.parametrize(
    "path",
    [VALID / "minimal.yaml", *sorted(WORKFLOWS.glob("*.yaml"))],
    ids=lambda p: p.name,
)
def test_valid_file_has_no_problem(path: Path) -> None:
    workflow, problems = check_file(str(path), path.read_bytes())
    assert problems == []
    assert workflow is not None
    assert workflow.path == str(path)


def test_minimal_fixture_is_really_minimal() -> None:
    path = VALID / "minimal.yaml"
    workflow, _ = check_file(str(path), path.read_bytes())
    assert workflow is not None
    spec = workflow.spec
    assert (spec.name, spec.version, spec.tiers, spec.sources) == ("minimal", 1, ["grid"], ["grid"])
    assert list(spec.states) == ["open", "closed"]
    assert len(spec.routing) == 1
    assert len(spec.transitions) == 1


@pytest.mark.parametrize(
    "path",
    sorted([*BROKEN.iterdir(), *VALID.iterdir(), *WORKFLOWS.glob("*.yaml")]),
    ids=lambda p: f"{p.parent.name}/{p.name}",
)
def test_no_exception_escapes_check_file(path: Path) -> None:
    check_file(str(path), path.read_bytes())


def test_alias_bomb_is_refused_at_the_node_budget(monkeypatch: pytest.MonkeyPatch) -> None:
    """Nine levels of nine aliases would be 9^9 strings: the loader builds values from at most
    MAX_EXPANDED_NODES nodes and refuses at the next one, whatever the document would expand
    to. (How long refusing it takes, next to checking a shipped workflow, is measured by
    `fengqiao bench core`, not here: a shared machine's clock is no test.)"""
    built = 0
    build = yaml_source._build

    def counting(*args: Any) -> Any:
        nonlocal built
        built += 1
        return build(*args)

    monkeypatch.setattr(yaml_source, "_build", counting)  # its recursion calls it by name
    path = BROKEN / "alias-bomb.yaml"
    workflow, problems = check_file(str(path), path.read_bytes())
    assert workflow is None
    assert [str(p) for p in problems] == [
        f"{path}:2:15: error: document expands to more than {MAX_EXPANDED_NODES} nodes "
        "(alias bomb?); refused"
    ]
    assert built == MAX_EXPANDED_NODES + 1


# ---------------------------------------------------------------------------------------------
# Inputs the fixtures do not cover: variations on the minimal workflow.

MINIMAL = (VALID / "minimal.yaml").read_text(encoding="utf-8")
EVENTS = "events:\n  case.closed: {}\n"
"""The minimal workflow's vocabulary, its last lines: variants add events and clocks here."""


def _variant(old: str, new: str) -> bytes:
    assert old in MINIMAL
    return MINIMAL.replace(old, new, 1).encode()


def _lines(raw: bytes) -> list[str]:
    workflow, problems = check_file("x.yaml", raw)
    assert (workflow is None) == bool(problems)
    return _render(problems)


def test_every_problem_of_a_file_is_reported_across_layers() -> None:
    """A duplicate key (YAML layer) does not hide a semantic problem, and vice versa."""
    raw = _variant("version: 1\n", "version: 1\nversion: 2\n").replace(
        b"tier: grid", b"tier: village"
    )
    assert _lines(raw) == [
        "4:1: error: duplicate key 'version'",
        "9:11: error: state 'open': unknown tier 'village'",
    ]


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        pytest.param(
            "source: open",
            "source: '*'",
            [],
            id="star-source-is-fine",
        ),
        pytest.param(
            "outcome: resolved",
            "outcome: resolved\n    description: 'on: yes, no, off'",
            [],
            id="yaml11-words-in-strings",
        ),
        pytest.param(
            "    tier: grid\n",
            "    tier: grid\n    outcome: resolved\n",
            ["9:14: error: state 'open' is not terminal and cannot have an outcome"],
            id="outcome-on-non-terminal",
        ),
        pytest.param(
            "    tier: grid\n",
            "    tier: grid\n    sla: {hours: 4, extension: {hours: 2}}\n",
            ["9:10: error: state 'open': give both extension and max_extensions, or neither"],
            id="extension-without-max",
        ),
        pytest.param(
            "tiers: [grid]",
            "tiers: [grid, grid]",
            ["4:15: error: 'grid' is listed twice in tiers"],
            id="tier-listed-twice",
        ),
        pytest.param(
            "trigger: case.closed",
            "trigger: sla.breached",
            ["15:14: error: trigger 'sla.breached' is reserved"],
            id="reserved-trigger",
        ),
        pytest.param(
            "    tier: grid\n",
            "    tier: grid\n    sla: {calendar_days: 30, timeout_to: open}\n",
            ["9:42: error: timeout_to must lead to another state"],
            id="timeout-to-itself",
        ),
        pytest.param(
            "    tier: grid\n",
            "    tier: grid\n    sla: {calendar_days: 30, from: open}\n",
            ["9:36: error: from: 'open' is this state itself; write `entered`"],
            id="sla-from-itself",
        ),
        pytest.param(
            "    dest: closed\n",
            "    dest: closed\n    within: {calendar_days: 30, from: open}\n",
            [],
            id="window-from-its-source-state-is-fine",
        ),
        pytest.param(
            "    tier: grid\n",
            "    tier: grid\n    sla: {calendar_days: 30, from: opn}\n",
            [
                "9:36: error: from: 'opn' is not `entered`, `opened` or a state of this workflow "
                "(did you mean 'opened'?)"
            ],
            # not 'open', the state itself, which would then be refused as "this state itself"
            id="sla-from-typo-suggests-another-anchor",
        ),
        pytest.param(
            EVENTS,
            f"{EVENTS}  sla.timed_out: {{}}\n",
            ["22:3: error: 'sla.timed_out' is built in and cannot be declared"],
            id="declared-built-in-timed-out",
        ),
        pytest.param(
            "  - dest: open\n",
            "  - dest: open\n  - dest: open\n    guard: event.source == 'grid'\n",
            [
                "13:5: error: routing rule without a guard must be the last one (the rules "
                "after it can never match)"
            ],
            id="catch-all-route-not-last",
        ),
        pytest.param(
            "  - dest: open\n",
            "  - dest: closed\n  - dest: open\n",
            [
                "13:11: error: routing: 'closed' is a terminal state",
                "13:5: error: routing rule without a guard must be the last one (the rules "
                "after it can never match)",
            ],
            id="route-to-terminal",
        ),
        pytest.param(
            EVENTS,
            f"{EVENTS}  deadline.extended: {{}}\nclock:\n  extend: [deadline.extended]\n",
            ["24:11: error: extend events given but no SLA has extension"],
            id="extend-without-extension",
        ),
        pytest.param(
            EVENTS,
            f"{EVENTS}  hold: {{}}\nclock:\n  pause: [hold]\n  resume: [hold]\n",
            ["25:12: error: 'hold' is both a pause and a resume event"],
            id="clock-event-twice",
        ),
        pytest.param(
            "    tier: grid\n",
            "    tier: grid\n    sla: {warn_at: 0.5}\n",
            [
                "9:10: error: states.open.sla: …give exactly one of working_days, calendar_days, "
                "hours, working_hours"
            ],
            id="sla-without-unit",
        ),
        pytest.param(
            "tiers:",
            "working_hours: {start: 18:00, end: '09:00'}\ntiers:",
            ["4:16: error: working_hours: …working hours must start before they end"],
            id="working-hours-reversed",
        ),
        pytest.param(
            "transitions:\n",
            "transitions:\n  - trigger: case.closed\n    source: open\n    dest: closed\n"
            "    guard: event.payload.x == 1\n",
            [
                "18:12: error: guard: event.payload.x: event.payload has no member 'x'; declare it "
                "under `events: case.closed: payload:`"
            ],
            id="guard-reads-an-undeclared-payload-field",
        ),
    ],
)
def test_variant(old: str, new: str, expected: list[str]) -> None:
    got = _lines(_variant(old, new))
    assert _matches(got, expected), f"got {got}"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        pytest.param(
            _variant("sources: [grid]\n", ""),
            ["2:1: error: missing required key 'sources'"],
            id="missing-top-level-key-names-itself-as-parent",
        ),
        pytest.param(
            b"# only a stray key\na: 1\n",
            [
                "2:1: error: missing required key 'name'",
                "2:1: error: missing required key 'routing'",
                "2:1: error: missing required key 'sources'",
                "2:1: error: missing required key 'states'",
                "2:1: error: missing required key 'tiers'",
                "2:1: error: missing required key 'version'",
                "2:1: error: unknown key 'a'",
            ],
            id="distinct-problems-at-one-place-merged-with-or",
        ),
        pytest.param(
            _variant("source: open", "source: [open, 5]"),
            ["16:20: error: …Input should be a valid string"],
            id="list-item-error-points-at-the-list",
        ),
        pytest.param(
            _variant("  closed:\n", "  bad name:\n"),
            # The state is refused, and what referred to it by its old name is reported too.
            ["9:3: error: …bad name…", "17:11: error: transition dest: unknown state 'closed'"],
            id="bad-state-name-points-at-its-value",
        ),
        pytest.param(
            _variant(
                "transitions:\n",
                "transitions:\n  - trigger: case.withdrawn\n    source: '*'\n    dest: closed\n"
                "  - trigger: case.withdrawn\n    source: '*'\n    dest: closed\n",
            ).replace(b"  case.closed: {}", b"  case.closed: {}\n  case.withdrawn: {}"),
            [
                "15:5: error: ambiguous: several transitions on 'case.withdrawn' from 'open' and "
                "no guard tells them apart"
            ],
            id="star-ambiguity-reported-for-terminal-states",
        ),
    ],
)
def test_fixed_bug_stays_fixed(raw: bytes, expected: list[str]) -> None:
    got = _lines(raw)
    assert _matches(got, expected), f"got {got}"


@pytest.mark.parametrize(
    "raw",
    [
        pytest.param(_variant("name: minimal", "name: mini\x01mal"), id="control-character"),
        pytest.param(_variant("name: minimal", "name: !!bool maybe"), id="bool-tag-bad-value"),
        pytest.param(_variant("name: minimal", "name: !!timestamp soon"), id="timestamp-tag"),
        pytest.param(b"a: " + b"[" * 2000 + b"]" * 2000 + b"\n", id="deep-nesting"),
    ],
)
def test_hostile_input_is_a_problem_not_a_crash(raw: bytes) -> None:
    workflow, problems = check_file("x.yaml", raw)
    assert workflow is None
    assert problems
    assert all("\n" not in p.message for p in problems)


@pytest.mark.parametrize(
    "raw",
    [
        pytest.param(
            _variant(
                "dest: closed", "dest: closed\n    guard: '" + "(" * 300 + "true" + ")" * 300 + "'"
            ),
            id="deeply-nested-guard",
        ),
        pytest.param(
            b"a: &a ["
            + b",".join([b"x"] * 5000)
            + b"]\nb: {"
            + b", ".join(b"k%d: *a" % i for i in range(30))
            + b"}\n",
            id="wide-alias-bomb",
        ),
        pytest.param(b"a: " + b"x" * 1_000_001, id="too-large"),
        pytest.param(b"---\na: 1\n---\nb: 2\n", id="two-documents"),
        pytest.param(b"\xef\xbb\xbf" + MINIMAL.encode(), id="utf8-bom"),
    ],
)
def test_hostile_input_is_a_problem_or_valid(raw: bytes) -> None:
    workflow, problems = check_file("x.yaml", raw)
    assert (workflow is None) == bool(problems)
    assert all(p.line >= 1 and p.col >= 1 for p in problems)


# ---------------------------------------------------------------------------------------------
# Found in review: guards the checker must accept or survive, pruning order, hints by alias.


@pytest.mark.parametrize(
    "guard",
    [
        "case.attrs.n >= 5.0",  # CEL compares ints and doubles
        "case.attrs.n in [6.0, 7]",
        "case.escalations == 010",  # a literal Python's int(text, 0) would refuse
        "case.escalations == 0x1F",
        "[" * 90 + "]" * 90 + " == []",  # deep enough to exhaust a recursive walk
    ],
)
def test_the_guard_checker_accepts_what_cel_accepts_and_never_raises(guard: str) -> None:
    raw = _variant("    dest: closed\n", f"    dest: closed\n    guard: '{guard}'\n").replace(
        b"events:", b"attributes:\n  n: {type: int}\nevents:"
    )
    assert _lines(raw) == []


def test_pruning_removes_list_items_from_the_highest_index_down() -> None:
    """Bad keys in transitions 2 and 10 must not hide a guard problem in transition 11."""
    good = "  - trigger: case.closed\n    source: open\n    dest: closed\n    guard: 'true'\n"
    bad = "  - trigger: case.closed\n    source: open\n    dest: closed\n    oops: 1\n"
    items = [good, good, bad, *[good] * 7, bad]
    items.append(
        "  - trigger: case.closed\n    source: open\n    dest: closed\n"
        "    guard: case.attrs.nope == 1\n"
    )
    raw = _variant(
        "transitions:\n  - trigger: case.closed\n    source: open\n    dest: closed\n",
        "transitions:\n" + "".join(items),
    )
    got = _lines(raw)
    assert [line.split(": error: ")[1] for line in got] == [
        "unknown key 'oops'",
        "unknown key 'oops'",
        "guard: case.attrs.nope: case.attrs has no member 'nope'; declare it under `attributes:`",
    ]


def test_an_unknown_key_is_hinted_by_its_yaml_name() -> None:
    got = _lines(
        _variant("    tier: grid\n", "    tier: grid\n    sla: {hours: 4, form: opened}\n")
    )
    assert got == ["9:21: error: unknown key 'form' (did you mean 'from'?)"]


def test_transitions_told_apart_by_their_window_are_not_ambiguous() -> None:
    raw = _variant(
        "transitions:\n",
        "transitions:\n  - trigger: case.closed\n    source: open\n    dest: closed\n"
        "    within: {calendar_days: 30}\n",
    )
    assert _lines(raw) == []


def test_an_event_may_name_only_sources_of_the_workflow() -> None:
    raw = _variant("  case.closed: {}", "  case.closed: {allowed_sources: [court]}")
    assert _lines(raw) == ["21:35: error: unknown source 'court' (not in sources)"]
