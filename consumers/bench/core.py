"""`fengqiao bench core`: the core's throughput next to bare `transitions`, in the same run.

The machine is shared and noisy, so the figure that matters is the ratio: events/s through the
whole core path (JSON decode, validation, guards, deadlines, record encoding) divided by
triggers/s of the bare `transitions` machine stepping through the very same transitions. Each
side takes the best of `repeat` runs.

Two more figures say where the time and memory go:
- a breakdown of one engine pass under cProfile (decode and validation of the event, guards,
  deadlines, the `transitions` library itself, record encoding, the rest), as shares of the
  profiled time applied to the unprofiled µs/event (the profiler slows small calls the most,
  so the split is a guide, not a measurement of its own);
- the memory an open case takes in the core (its `Case`, its timers, the replay's indexes),
  by `tracemalloc` around opening `cases` cases that stay open.

Last, "at the limits" (`consumers/bench/limits.py`): the worst guards that pass validation
against a plain guard, and refusing an alias bomb against checking a shipped workflow.
"""

from __future__ import annotations

import cProfile
import json
import pstats
import sys
import time
import tracemalloc
from collections.abc import Callable, Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from transitions import Machine

from consumers.bench.limits import at_the_limits, print_limits
from consumers.synthetic import WORKFLOW, synthetic_stream
from engine.batch import BatchReplay, BatchResult, Input
from engine.core import Engine
from engine.machine import shared_machine
from engine.registry import WorkflowRegistry
from engine.stores import MemoryStore
from schemas.workflow import WorkflowSpec


def _best(repeat: int, run: Callable[[], int]) -> tuple[float, int]:
    best = float("inf")
    count = 0
    for _ in range(repeat):
        started = time.perf_counter()
        count = run()
        best = min(best, time.perf_counter() - started)
    return best, count


def bare_machine(spec: WorkflowSpec) -> Machine:
    """The same states and transitions as plain `transitions` config: no guards, no clocks."""
    config = [{"trigger": t.trigger, "source": t.source, "dest": t.dest} for t in spec.transitions]
    return shared_machine(list(spec.states), config, name="bare")


# Where an event's time goes: (label, [(file suffix, function name)], [same, subtracted]).
# Inclusive times; the subtracted ones run inside (our conditions run inside `trigger`).
STAGES: list[tuple[str, list[tuple[str, str]], list[tuple[str, str]]]] = [
    ("decode + validate event (json, pydantic)", [("engine/decode.py", "decode_event")], []),
    ("guards (CEL + input checks)", [("engine/guards.py", "evaluate"),
                                     ("engine/guard_cost.py", "input_problem")], []),
    ("deadlines (working days, holidays)", [("engine/machine.py", "deadline"),
                                            ("engine/deadlines.py", "extend"),
                                            ("engine/deadlines.py", "after_pause")], []),
    ("transitions library (fire, minus our conditions)", [("engine/machine.py", "fire")],
     [("engine/machine.py", "check")]),
    ("record building (pydantic models)", [("engine/records.py", "_add")], []),
    ("record encoding (model_dump_json)", [("pydantic/main.py", "model_dump_json")], []),
]  # fmt: skip


def inclusive(stats: pstats.Stats, wanted: list[tuple[str, str]]) -> float:
    """Seconds in the named functions, callees included (`bench view` splits its time too)."""
    table: dict[tuple[str, int, str], tuple[Any, ...]] = stats.stats  # type: ignore[attr-defined]
    return float(
        sum(
            row[3]
            for (path, _line, func), row in table.items()
            for suffix, name in wanted
            if func == name and path.endswith(suffix)
        )
    )


def breakdown(run: Callable[[], int], us_per_event: float) -> dict[str, float]:
    """µs per event of each stage: shares of one profiled pass × the unprofiled figure."""
    profiler = cProfile.Profile()
    profiler.runcall(run)
    stats = pstats.Stats(profiler)
    total: float = stats.total_tt  # type: ignore[attr-defined]
    shares = {
        label: (inclusive(stats, plus) - inclusive(stats, minus)) / total
        for label, plus, minus in STAGES
    }
    shares["the rest (case copies, replay, timer index, routing)"] = 1 - sum(shares.values())
    return {label: round(share * us_per_event, 1) for label, share in shares.items()}


BATCH = 500
"""Inputs per batch step: the engine's default FENGQIAO_BATCH_MAX_RECORDS."""


def batches(engine: Engine, lines: list[bytes], size: int = BATCH) -> Iterator[BatchResult]:
    """`lines` through the core's batch step as one engine partition takes them: a batch, its
    changes written to a memory store, confirmed; the next batch."""
    store = MemoryStore()
    replay = BatchReplay(engine, load=lambda case_id: store.get(0, case_id))
    for start in range(0, len(lines), size):
        inputs = [
            Input(line, f"bench:{start + i}") for i, line in enumerate(lines[start : start + size])
        ]
        result = replay.step(inputs)
        store.write(0, result.upserts, result.deletes)
        replay.confirm()
        yield result


def open_case_bytes(engine: Engine, lines: list[bytes]) -> dict[str, float]:
    """Python heap per open case, in the core and the memory store as the engine holds them:
    only the `case.reported` events are fed (one batch step, then stored), so every case stays
    open with its SLA timers pending."""
    reports = [line for line in lines if b'"case.reported"' in line]
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    store = MemoryStore()
    replay = BatchReplay(engine, load=lambda case_id: store.get(0, case_id))
    result = replay.step([Input(line, f"bench:{i}") for i, line in enumerate(reports)])
    store.write(0, result.upserts, result.deletes)
    replay.confirm()
    del result
    after = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    opened = store.count(0)
    return {"open_cases": opened, "pending_timers": replay.pending_timers,
            "bytes_per_open_case": round((after - before) / max(opened, 1))}  # fmt: skip


def run_core_bench(workflows: Path, cases: int, repeat: int, out: str | None) -> int:
    registry = WorkflowRegistry.load(workflows)
    engine = Engine(registry)
    lines = synthetic_stream(cases)

    def engine_pass() -> int:
        for result in batches(engine, lines):
            for output in result.outputs:
                _ = output.value  # encoded as the engine sends it
            for change in result.changes:
                _ = change.snapshot
        return len(lines)

    # The transitions the engine took (from the first pass), replayed on bare `transitions`.
    steps: list[tuple[str, str]] = [
        (output.record.trigger, output.record.from_state)
        for result in batches(engine, lines)
        for output in result.outputs
        if output.record.type == "case.transitioned" and output.record.from_state
    ]
    spec = registry.newest(WORKFLOW)
    assert spec is not None
    machine = bare_machine(spec.spec)
    events = machine.events

    def bare_pass() -> int:
        model = SimpleNamespace(state="")
        for trigger, state in steps:
            model.state = state
            events[trigger].trigger(model)
        return len(steps)

    engine_s, n_events = _best(repeat, engine_pass)
    bare_s, n_triggers = _best(repeat, bare_pass)
    engine_rate = n_events / engine_s
    bare_rate = n_triggers / bare_s
    us_per_event = 1e6 * engine_s / n_events
    stages = breakdown(engine_pass, us_per_event)
    memory = open_case_bytes(engine, lines)
    figures: dict[str, Any] = {
        "cases": cases,
        "events": n_events,
        "engine_events_per_s": round(engine_rate),
        "engine_us_per_event": round(1e6 * engine_s / n_events, 2),
        "bare_triggers": n_triggers,
        "bare_triggers_per_s": round(bare_rate),
        "bare_us_per_trigger": round(1e6 * bare_s / n_triggers, 2),
        "ratio": round(engine_rate / bare_rate, 3),
        "python": sys.version.split()[0],
        **memory,
    }
    width = max(len(k) for k in figures)
    for key, value in figures.items():
        print(f"{key:<{width}}  {value}")
    print(f"\nwhere an event's {us_per_event:.1f} µs go (cProfile shares):")
    width = max(len(k) for k in stages)
    for label, us in stages.items():
        print(f"  {label:<{width}}  {us:6.1f} µs")
    figures["breakdown_us_per_event"] = stages
    figures["at_the_limits"] = limits = at_the_limits(repeat)
    print_limits(limits)
    if out:
        Path(out).write_text(json.dumps(figures, indent=2) + "\n", encoding="utf-8")
    print(f"ratio={figures['ratio']}")
    return 0
