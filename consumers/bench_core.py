"""`fengqiao bench core`: the core's throughput next to bare `transitions`, in the same run.

The machine is shared and noisy, so the figure that matters is the ratio: events/s through the
whole core path (JSON decode, validation, guards, deadlines, record encoding) divided by
triggers/s of the bare `transitions` machine stepping through the very same transitions. Each
side takes the best of `repeat` runs.
"""

from __future__ import annotations

import json
import random
import sys
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from transitions import Machine

from engine.core import Engine
from engine.machine import shared_machine
from engine.registry import WorkflowRegistry
from engine.replay import Replay
from schemas.workflow import WorkflowSpec

WORKFLOW = "dispute-escalation"
START = datetime.fromisoformat("2025-03-03T09:00:00+08:00")

# Paths through the ladder with rough weights from the brief: most cases settle at the grid.
PATHS: list[tuple[float, list[tuple[str, str]]]] = [
    (0.55, [("mediation.succeeded", "grid")]),
    (0.15, [("mediation.succeeded", "grid"), ("agreement.fulfilled", "grid")]),
    (0.12, [("mediation.failed", "grid"), ("mediation.succeeded", "center"),
            ("confirmation.applied", "center"), ("confirmation.granted", "court")]),
    (0.08, [("mediation.failed", "grid"), ("appraisal.started", "center"),
            ("appraisal.finished", "center"), ("mediation.succeeded", "center"),
            ("agreement.fulfilled", "center")]),
    (0.06, [("mediation.failed", "grid"), ("mediation.failed", "center"),
            ("mediation.succeeded", "court"), ("agreement.fulfilled", "court")]),
    (0.04, [("mediation.failed", "grid"), ("mediation.failed", "center"),
            ("mediation.failed", "court")]),
]  # fmt: skip
CATEGORIES = ["neighbour", "neighbour", "family", "property", "labour", "traffic", "medical"]


def synthetic_stream(cases: int, seed: int = 7) -> list[bytes]:
    """Interleaved canonical events of `cases` cases, as the JSON bytes Kafka would carry."""
    rng = random.Random(seed)  # noqa: S311 - synthetic data, not secrets
    weights = [w for w, _ in PATHS]
    timeline: list[tuple[datetime, str, dict[str, Any]]] = []
    for n in range(cases):
        case_id = f"bench-{n}"
        at = START + timedelta(minutes=rng.randrange(0, 60 * 24 * 60))
        category = rng.choice(CATEGORIES)
        report = {"workflow": WORKFLOW, "attributes": {"category": category}}
        timeline.append(
            (at, "grid", _event(case_id, 0, "case.reported", at, source="grid", payload=report))
        )
        path = rng.choices([p for _, p in PATHS], weights)[0]
        for i, (type_, source) in enumerate(path, start=1):
            at += timedelta(hours=rng.randrange(2, 40))
            payload = {"agreement_signed": True} if type_ == "mediation.succeeded" else {}
            timeline.append(
                (at, source, _event(case_id, i, type_, at, source=source, payload=payload))
            )
    timeline.sort(key=lambda item: item[0])
    return [json.dumps(e, ensure_ascii=False).encode() for _, _, e in timeline]


def _event(
    case_id: str, n: int, type_: str, at: datetime, *, source: str, payload: dict[str, Any]
) -> dict[str, Any]:
    return {
        "event_id": f"{case_id}-{n}", "case_id": case_id, "type": type_,
        "occurred_at": at.isoformat(), "source": source, "payload": payload,
    }  # fmt: skip


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


def run_core_bench(workflows: Path, cases: int, repeat: int, out: str | None) -> int:
    registry = WorkflowRegistry.load(workflows)
    engine = Engine(registry)
    lines = synthetic_stream(cases)

    def engine_pass() -> int:
        replay = Replay(engine)
        encoded = 0
        for i, line in enumerate(lines):
            for record in replay.feed(line, f"bench:{i}"):
                encoded += len(record.model_dump_json())
        return len(lines)

    # The transitions the engine took (from the first pass), replayed on bare `transitions`.
    replay = Replay(engine)
    steps: list[tuple[str, str]] = []
    for i, line in enumerate(lines):
        for record in replay.feed(line, f"bench:{i}"):
            if record.type == "case.transitioned" and record.from_state:
                steps.append((record.trigger, record.from_state))
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
    figures = {
        "cases": cases,
        "events": n_events,
        "engine_events_per_s": round(engine_rate),
        "engine_us_per_event": round(1e6 * engine_s / n_events, 2),
        "bare_triggers": n_triggers,
        "bare_triggers_per_s": round(bare_rate),
        "bare_us_per_trigger": round(1e6 * bare_s / n_triggers, 2),
        "ratio": round(engine_rate / bare_rate, 3),
        "python": sys.version.split()[0],
    }
    width = max(len(k) for k in figures)
    for key, value in figures.items():
        print(f"{key:<{width}}  {value}")
    if out:
        Path(out).write_text(json.dumps(figures, indent=2) + "\n", encoding="utf-8")
    print(f"ratio={figures['ratio']}")
    return 0
