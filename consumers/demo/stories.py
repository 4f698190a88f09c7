"""How a case unfolds in the demo town: the acts of the people upstream of the engine.

Why tables rather than asking the engine what happens next: the generator plays the upstream
systems (grid officers, mediation centers, the court, the 12345 center, petition offices). They
do not consult the engine; they act, or fail to act in time. For every state a `Play` lists the
likely next acts with their weights and *when* each happens, as a fraction of the time left
before the state's deadline (computed with the workflow's own calendar, so "within 3 working
days" means what the engine means). Letting a limit lapse is an act too (`trigger=None`): no
event is sent, the engine's SLA timer fires at the deadline and, where the state says
`escalate_to`, moves the case up; the story continues from there at the deadline instant.

Each act names the state the engine will put the case in (a function where a guard decides),
so the story can go on without running the engine; a test checks that the two agree (the
demo's only refusals are the duplicates and cross-channel reports the town sends on purpose).
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from engine.deadlines import DAY_UNITS
from engine.machine import CompiledWorkflow, to_duration
from schemas.events import Scalar

MAX_STEPS = 24
"""A story ends after this many acts (no ladder here is that long; it only guards loops)."""

NO_SLA_WINDOW = timedelta(days=7)
"""How long people take to act in a state without a time limit."""

OFFICE_OPENS_MINUTES = 8 * 60 + 30
OFFICE_MINUTES = 9 * 60
"""Acts under a day-based limit happen in office hours (08:30–17:30 local)."""


@dataclass
class Sketch:
    """What the people acting know about a case: its attributes and the rung it stands on."""

    case_id: str
    attrs: dict[str, Scalar]
    tier: str | None = None


Dest = str | Callable[[Sketch], str]
Sources = tuple[str, ...] | Callable[[Sketch], str]


@dataclass(frozen=True)
class Act:
    """One possible next act in a state; `trigger=None` lets the deadline lapse."""

    weight: float
    trigger: str | None
    dest: Dest = ""
    sources: Sources = ()
    payload: Mapping[str, Scalar] = field(default_factory=dict)
    when: tuple[float, float] = (0.05, 0.9)
    """When it happens, as fractions of the time between entering the state and its deadline."""


@dataclass(frozen=True)
class Detour:
    """A clock event during a stay: an extension, or a pause (`then` ends it `days` later)."""

    chance: float
    trigger: str
    sources: tuple[str, ...]
    then: str | None = None
    days: tuple[float, float] = (0.0, 0.0)
    only: Callable[[Sketch], bool] | None = None


@dataclass(frozen=True)
class Play:
    """The acts likely in one state. `late` is what eventually happens after a lapse in a state
    that only reports its breach (default: one of the acts, drawn again)."""

    acts: tuple[Act, ...]
    detours: tuple[Detour, ...] = ()
    late: Act | None = None


PlayBook = Mapping[str, Play]


@dataclass(frozen=True)
class Step:
    """One event the town will send: what, when, from which system."""

    at: datetime
    trigger: str
    source: str
    payload: Mapping[str, Any]


def unfold(
    workflow: CompiledWorkflow,
    book: PlayBook,
    sketch: Sketch,
    *,
    state: str,
    entered: datetime,
    until: datetime,
    rng: random.Random,
) -> Iterator[Step]:
    """The acts of one case from `state` (entered at `entered`) until it closes or `until`."""
    for _ in range(MAX_STEPS):
        spec = workflow.state(state)
        play = book.get(state)
        if spec.terminal or play is None or entered >= until:
            return
        sketch.tier = spec.tier or sketch.tier
        deadline, office = _deadline(workflow, state, entered)
        base = entered
        for detour in play.detours:
            if (
                detour.only is not None and not detour.only(sketch)
            ) or rng.random() >= detour.chance:
                continue
            at = _moment(workflow, base, deadline, when=(0.1, 0.5), office=office, rng=rng)
            yield Step(at, detour.trigger, rng.choice(detour.sources), {})
            deadline, base = _after_detour(
                workflow, state, detour, deadline=deadline, at=at, rng=rng
            )
            if detour.then is not None:
                yield Step(base, detour.then, rng.choice(detour.sources), {})
            break  # one clock event per stay is plenty of realism
        act = _choose(play.acts, rng)
        if act.trigger is None:
            sla = spec.sla
            if sla is not None and sla.escalate_to is not None:
                state, entered = sla.escalate_to, deadline
                continue
            act = play.late or _choose(tuple(a for a in play.acts if a.trigger), rng)
            late = deadline + timedelta(hours=rng.uniform(2, 240))
            at = _moment(
                workflow, late, late + timedelta(days=1), when=(0.0, 0.5), office=office, rng=rng
            )
        else:
            at = _moment(workflow, base, deadline, when=act.when, office=office, rng=rng)
        assert act.trigger is not None
        source = act.sources(sketch) if callable(act.sources) else rng.choice(act.sources)
        yield Step(at, act.trigger, source, act.payload)
        state = act.dest(sketch) if callable(act.dest) else act.dest
        entered = at


def _choose(acts: tuple[Act, ...], rng: random.Random) -> Act:
    return rng.choices(acts, [a.weight for a in acts])[0]


def _deadline(workflow: CompiledWorkflow, state: str, entered: datetime) -> tuple[datetime, bool]:
    """The state's deadline from `entered`, and whether people act in office hours there."""
    sla = workflow.state(state).sla
    if sla is None:
        return entered + NO_SLA_WINDOW, True
    return workflow.deadline(entered, to_duration(sla)).instant, sla.unit in DAY_UNITS


def _after_detour(
    workflow: CompiledWorkflow,
    state: str,
    detour: Detour,
    *,
    deadline: datetime,
    at: datetime,
    rng: random.Random,
) -> tuple[datetime, datetime]:
    """The deadline after a clock event at `at`, and when the story may go on."""
    sla = workflow.state(state).sla
    if sla is None:
        return deadline, at
    if detour.then is None:  # an extension
        if sla.extension is None:
            return deadline, at
        return workflow.deadlines.extend(deadline, to_duration(sla.extension)).instant, at
    back = (at + timedelta(days=rng.uniform(*detour.days))).replace(microsecond=0)
    return workflow.deadlines.after_pause(deadline, sla.unit, at, back).instant, back


def _moment(
    workflow: CompiledWorkflow,
    base: datetime,
    deadline: datetime,
    *,
    when: tuple[float, float],
    office: bool,
    rng: random.Random,
) -> datetime:
    """An instant strictly between `base` and `deadline`, at `when` of the way, in office
    hours on that local day when the limit counts days."""
    at = base + (deadline - base) * rng.uniform(*when)
    if office:
        local = at.astimezone(workflow.tz).replace(hour=0, minute=0, second=0, microsecond=0)
        minutes = OFFICE_OPENS_MINUTES + rng.uniform(0, OFFICE_MINUTES)
        at = local + timedelta(minutes=minutes)
    if at <= base:
        at = base + timedelta(minutes=rng.uniform(5, 90))
    if at >= deadline:
        at = max(deadline - timedelta(minutes=1), base + timedelta(seconds=1))
    return at.astimezone(workflow.tz).replace(microsecond=0)
