"""CEL guards are bounded in cost: pathological guards are refused by `validate`, oversized
inputs are refused before evaluation, and the worst guards that pass stay within the estimate
and evaluate. How long those take is for `fengqiao bench core` (consumers/bench/limits.py)
to measure, against a plain guard in the same run: a shared machine's clock is no test."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from hypothesis import strategies as st

from consumers.bench.limits import WORST, L, guard_context
from engine.core import Engine
from engine.guard_cost import (
    MAX_COMPREHENSION_DEPTH,
    MAX_COMPREHENSIONS,
    MAX_GUARD_COST,
    MAX_GUARD_INPUT_CHARS,
    MAX_GUARD_INPUT_DEPTH,
    MAX_GUARD_INPUT_ITEMS,
    estimated_steps,
    guard_cost_problem,
    input_problem,
)
from engine.guards import MEMO_BYTES, Guard, GuardError, compile_guard, memo_key
from engine.replay import Replay
from engine.validate import check_file
from tests.unit.fuzzing import fuzz, json_values

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
MINIMAL = (ROOT / "tests" / "fixtures" / "valid" / "minimal.yaml").read_text(encoding="utf-8")


@pytest.mark.parametrize(
    "source",
    [
        'has(case.attrs.category) && case.attrs.category in ["traffic", "medical"]',
        f'{L}.exists(i, i.kind == "x" && i.amount > 100)',
        f"{L}.exists(i, {L}.exists(j, i.id == j.ref))",
        f"{L}.filter(x, x > 1).size() >= 2",
        f"{L}.all(x, x > 0) && {L}.exists_one(x, x == 2) && {L}.exists(x, x == 3)",
        # macro names and input names inside string literals are text, not calls or reads
        "event.type == \"l.map(x, x)\" || event.type == 'a.filter(y, z)'",
        'event.type == r"l.map(x, event.l.exists(y, " || event.type == """event.map(x, y)"""',
        "event.type == '\\'.map(' && event.source != b\"case\".string()",
    ],
)
def test_ordinary_guards_pass(source: str) -> None:
    assert guard_cost_problem(source) is None
    compile_guard(source)


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        (f"{L}.map(x, x * 2).size() > 0", "map() is not allowed in a guard"),
        (f"{L}.exists(x, {L}.filter(y, y == x).size() > 1)", "filter() inside another"),
        (
            f"{L}.exists(x, {L}.exists(y, {L}.exists(z, x == z)))",
            f"comprehensions nested 3 deep; at most {MAX_COMPREHENSION_DEPTH}",
        ),
        (
            " || ".join([f"{L}.exists(x, x == 1)"] * (MAX_COMPREHENSIONS + 1)),
            f"{MAX_COMPREHENSIONS + 1} comprehensions (exists); a guard may have at most",
        ),
        (f"{L}.exists(x, {L}.exists(y, size({L}) == 0))", "too costly: about 17.2 million steps"),
        (f"{L}.exists(x, size({' + '.join([L] * 16)}) == 0)", "too costly: about 1.06 million"),
    ],
)
def test_pathological_guards_are_refused(source: str, expected: str) -> None:
    problem = guard_cost_problem(source)
    assert problem is not None
    assert expected in problem
    with pytest.raises(GuardError, match=r".+"):
        compile_guard(source)


def test_validate_reports_a_costly_guard_at_its_position() -> None:
    guard = f"{L}.exists(x, {L}.exists(y, {L}.exists(z, x == z)))"
    raw = MINIMAL.replace("dest: closed", f"dest: closed\n    guard: '{guard}'").encode()
    workflow, problems = check_file("w.yaml", raw)
    assert workflow is None
    assert [str(p) for p in problems] == [
        "w.yaml:18:12: error: guard: comprehensions nested 3 deep; at most 2 (each level "
        "multiplies the work by the length of a list)"
    ]


# --- the runtime bound on what reaches a guard -------------------------------------------------


@pytest.mark.parametrize(
    ("payload", "expected"),
    [
        ({"l": list(range(MAX_GUARD_INPUT_ITEMS))}, "list items and map entries"),
        ({f"k{i}": i for i in range(MAX_GUARD_INPUT_ITEMS)}, "list items and map entries"),
        ({"s": "x" * (MAX_GUARD_INPUT_CHARS + 1)}, "characters of text"),
        ({"s": ["x" * 1000] * 70}, "characters of text"),
        ({"keys": {"k" * 40_000: 1, "q" * 40_000: 2}}, "characters of text"),
    ],
    ids=["long-list", "wide-map", "long-string", "many-strings", "long-keys"],
)
def test_oversized_input_is_refused_before_evaluation(payload: Any, expected: str) -> None:
    guard = compile_guard("size(event.payload) > 0")
    with pytest.raises(GuardError, match=f"input too large for a guard: more than .*{expected}"):
        guard.evaluate(guard_context(payload))


def test_deep_input_is_refused() -> None:
    nested: Any = 1
    for _ in range(MAX_GUARD_INPUT_DEPTH + 5):
        nested = [nested]
    assert input_problem({"event": {"payload": nested}}) == (
        f"nested deeper than {MAX_GUARD_INPUT_DEPTH} levels"
    )
    # a value of exactly the allowed depth is fine
    nested = 1
    for _ in range(MAX_GUARD_INPUT_DEPTH - 1):
        nested = [nested]
    assert input_problem({"event": nested}) is None


def test_only_what_the_guard_reads_counts() -> None:
    huge = {"l": list(range(10 * MAX_GUARD_INPUT_ITEMS))}
    assert compile_guard('event.type == "t"').evaluate(guard_context(huge)) is True
    with pytest.raises(GuardError, match="input too large"):
        compile_guard("has(event.payload.l)").evaluate(guard_context(huge))


def test_an_oversized_attribute_refuses_routing_with_the_reason(engine: Engine) -> None:
    """The dispute-escalation routing guards read case.attrs: a 70,000-character attribute is
    refused (guard_failed, with the reason), not evaluated and not routed by guesswork."""
    event = {
        "event_id": "e1", "case_id": "c1", "type": "case.reported", "source": "grid",
        "occurred_at": "2026-03-02T09:00:00+08:00",
        "payload": {"workflow": "dispute-escalation",
                    "attributes": {"category": "x" * (MAX_GUARD_INPUT_CHARS + 10)}},
    }  # fmt: skip
    (record,) = Replay(engine).feed(json.dumps(event).encode(), "t:0")
    assert record.type == "event.rejected"
    assert record.reason == "guard_failed"
    assert "input too large for a guard: more than 65536 characters of text" in record.detail


# --- the worst guards that pass validation, on the largest input they may get -----------------
# (defined in consumers/bench/limits.py, which times them; here, what does not need a clock)


@pytest.mark.parametrize("name", sorted(WORST))
def test_the_worst_guards_that_pass_stay_within_the_bounds(name: str) -> None:
    source, payload = WORST[name]
    assert guard_cost_problem(source) is None
    assert 0 < estimated_steps(source) <= MAX_GUARD_COST
    guard = compile_guard(source)
    assert input_problem({"event": {"payload": payload}}) is None  # evaluated, not refused
    assert guard.evaluate(guard_context(payload)) is False  # every element visited
    assert guard.results == {}  # too large an input to remember: each evaluation runs in full


def test_the_step_estimate_is_the_figure_validate_holds_against_the_bound() -> None:
    def reads(n: int) -> str:
        return f"{L}.exists(x, size({' + '.join([L] * n)}) == 0)"

    assert estimated_steps(reads(15)) == 995_587 <= MAX_GUARD_COST
    assert guard_cost_problem(reads(15)) is None
    assert estimated_steps(reads(16)) == 1_061_891 > MAX_GUARD_COST
    assert "too costly: about 1.06 million steps" in (guard_cost_problem(reads(16)) or "")
    # outside comprehensions a token is one step, a read of the input one per item it may hold
    assert estimated_steps('event.type == "t"') == MAX_GUARD_INPUT_ITEMS + 3


# --- remembered results ---------------------------------------------------------------------

REMEMBERED = [
    "event.payload.v == 1",
    "event.payload.v == true",
    "string(event.payload.v) == '0'",
    "event.payload.v.exists(x, x == 1)",
    "event.payload.v > case.opened_at",
    "size(event.payload) == 1 && event.payload.v != null",
]


def _outcome(guard: Guard, context: dict[str, Any]) -> object:
    try:
        return guard.evaluate(context)
    except GuardError as err:
        return f"error: {err}"


def _a_remembered_result_is_what_cel_says(v: Any, zone: str) -> None:
    """Guards shared by every example (so they remember) answer as freshly compiled ones do:
    a result is reused only for an input CEL cannot tell from the one it was computed for
    (True is not 1, -0.0 not 0.0), and errors are never reused."""
    at = datetime(2026, 3, 2, 9, tzinfo=UTC if zone == "utc" else timezone(timedelta(hours=8)))
    context = {"event": {"payload": {"v": v if zone == "none" else at}}, "case": {"opened_at": at}}
    for source, shared in SHARED_GUARDS.items():
        assert _outcome(shared, context) == _outcome(compile_guard(source), context), source


SHARED_GUARDS = {source: compile_guard(source) for source in REMEMBERED}
test_a_remembered_result_is_what_cel_says, test_a_remembered_result_is_what_cel_says_deep = fuzz(
    v=json_values, zone=st.sampled_from(["none", "none", "utc", "+08"])
)(_a_remembered_result_is_what_cel_says)


def test_equal_python_values_cel_tells_apart_have_distinct_keys() -> None:
    values = [1, True, 1.0, 0, False, 0.0, -0.0, "1", None, [1], (1,), {"a": 1}, [True], [[1]],
              {"a": [1], "b": 2}, {"b": 2, "a": [1]}, 2**64, "id", "".join(["i", "d"])]  # fmt: skip
    keys = [memo_key({"v": v}) for v in values]
    assert None not in keys
    assert len(set(keys)) == len(keys) - 1  # the same text, whatever object holds it
    assert memo_key({"v": datetime(2026, 1, 1, tzinfo=UTC)}) is None  # not remembered
    assert memo_key({"v": "x" * MEMO_BYTES}) is None
