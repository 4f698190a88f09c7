"""`bench core`, at the limits: the costliest inputs the core still accepts or must refuse.

Two bounds keep one input from stalling a partition or `validate`, and both are checked without
a clock by unit tests (the outcome, the static cost estimate, the node budget). How long the
worst cases take depends on the machine, so it is measured here, each next to a baseline from
the same run:

- the worst CEL guards that pass validation (`WORST`), on the largest input a guard may get,
  against a plain guard (`event.type == "t"`) on the same context;
- refusing the alias bomb of `tests/fixtures/broken/alias-bomb.yaml` (nine levels of nine
  aliases: 9^9 strings expanded) with `check_file`, against checking the shipped
  `workflows/dispute-escalation.yaml`.

`WORST` and its inputs are defined here only: `tests/unit/test_guard_cost.py` imports them.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from consumers.bench.common import print_table
from engine.guard_cost import MAX_GUARD_INPUT_ITEMS, estimated_steps
from engine.guards import Guard, compile_guard
from engine.validate import check_file

ROOT = Path(__file__).resolve().parents[2]
ALIAS_BOMB = ROOT / "tests" / "fixtures" / "broken" / "alias-bomb.yaml"
NORMAL_WORKFLOW = ROOT / "workflows" / "dispute-escalation.yaml"
"""Fixed files, not `--workflows`: the bomb is the one the unit tests refuse, and the baseline
stays the same workflow whatever the run's workflows are."""

L = "event.payload.l"
BIG = {"l": list(range(MAX_GUARD_INPUT_ITEMS - 16)), "s": "x" * 60_000}
"""Near the runtime bound on both counts (`MAX_GUARD_INPUT_ITEMS` items and map entries,
`MAX_GUARD_INPUT_CHARS` characters) and within it: the guard is evaluated, not refused."""
STRINGS = {"l": ["x" * 20] * 200}
REGEX = "'" + "(x?)" * 200 + "x" * 200 + "'"
"""1,000 characters, the classic backtracking shape: 200 optional x's, then 200 x's."""
WORST: dict[str, tuple[str, dict[str, Any]]] = {
    "list-reads-in-a-comprehension": (
        f"{L}.exists(x, size({' + '.join([L] * 14)}) == 0)", BIG),
    "nested-with-a-body": (f"{L}.exists(x, {L}.exists(y, x + y + x + y == -1))", BIG),
    "text-in-a-comprehension": (
        f"{L}.exists(x, size({' + '.join(['event.payload.s'] * 13)}) == 0)", BIG),
    "two-nested": (" || ".join([f"{L}.exists(x, {L}.exists(y, x == y + 1000))"] * 2), BIG),
    "a-long-regex-per-element": (f"{L}.exists(x, x.matches({REGEX}))", STRINGS),
}  # fmt: skip
"""The costliest guards we could write that still pass validation, each with its input; every
one evaluates to false (so no comprehension stops early)."""
PLAIN = 'event.type == "t"'
PLAIN_EVALUATIONS = 2000
"""A plain guard takes microseconds: timed over this many evaluations per run."""


def guard_context(payload: Any) -> dict[str, Any]:
    """The context a guard gets for an event of type "t" carrying `payload`, on a new case."""
    return {"event": {"type": "t", "source": "grid", "payload": payload}, "case": {}, "now": None}


def _best_ms(repeat: int, run: Callable[[], object], times: int = 1) -> float:
    """Milliseconds per call of `run`: the best of `repeat` runs of `times` calls."""
    best = float("inf")
    for _ in range(max(repeat, 1)):
        started = time.perf_counter()
        for _ in range(times):
            run()
        best = min(best, (time.perf_counter() - started) / times)
    return 1000 * best


def _evaluation(guard: Guard, context: dict[str, Any]) -> Callable[[], object]:
    """One full evaluation, never a remembered result: the plain guard's input is small enough
    to be remembered (the worst guards' inputs are not), and it is CEL that is compared."""

    def run() -> object:
        guard.results.clear()
        return guard.evaluate(context)

    return run


def at_the_limits(repeat: int) -> dict[str, Any]:
    """ms per worst guard and per alias bomb refusal, each with its ratio to the baseline."""
    plain = _evaluation(compile_guard(PLAIN), guard_context(BIG))
    plain_ms = _best_ms(repeat, plain, PLAIN_EVALUATIONS)
    guards = {}
    for name, (source, payload) in WORST.items():
        ms = _best_ms(repeat, _evaluation(compile_guard(source), guard_context(payload)))
        guards[name] = {"estimated_steps": estimated_steps(source), "ms": round(ms, 2),
                        "ratio_to_plain": round(ms / plain_ms, 1)}  # fmt: skip
    bomb, normal = ALIAS_BOMB.read_bytes(), NORMAL_WORKFLOW.read_bytes()
    bomb_ms = _best_ms(repeat, lambda: check_file(str(ALIAS_BOMB), bomb))
    normal_ms = _best_ms(repeat, lambda: check_file(str(NORMAL_WORKFLOW), normal))
    alias_bomb = {"refuse_ms": round(bomb_ms, 2), "workflow_ms": round(normal_ms, 2),
                  "ratio_to_workflow": round(bomb_ms / normal_ms, 2)}  # fmt: skip
    return {"plain_guard_ms": round(plain_ms, 5), "worst_guards": guards, "alias_bomb": alias_bomb}


def print_limits(figures: dict[str, Any]) -> None:
    """The section's table: each row's ms and its multiple of the baseline row above it."""
    rows: list[list[Any]] = [[f"plain guard: {PLAIN}", "", f"{figures['plain_guard_ms']:.4f}", 1]]
    for name, guard in figures["worst_guards"].items():
        rows.append([f"worst guard: {name}", f"{guard['estimated_steps']:,}", guard["ms"],
                     f"{guard['ratio_to_plain']:,}"])  # fmt: skip
    bomb = figures["alias_bomb"]
    rows.append([f"check {NORMAL_WORKFLOW.name}", "", bomb["workflow_ms"], 1])
    rows.append([f"refuse {ALIAS_BOMB.name}", "", bomb["refuse_ms"], bomb["ratio_to_workflow"]])
    header = ["", "est. steps", "ms", "× baseline"]
    print_table("at the limits (best of the runs): the worst guards that pass, an alias bomb",
                header, rows)  # fmt: skip
