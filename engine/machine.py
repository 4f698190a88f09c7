"""Compile a checked workflow onto one shared `transitions.Machine`.

The machine holds no case: `model=None`, and each `apply` hands it a throw-away `Step` object
carrying the case's state and the guard context. `transitions` then does what it is good at:
finding the transitions of a trigger from the current state, trying their conditions in
declaration order, and setting the destination. What a breach does is an ordinary transition on
a reserved trigger, `sla.breached` for an escalation up the ladder and `sla.timed_out` for a
lapse to any state, so the diagram and the machine agree with the YAML.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from functools import cache
from typing import Any
from zoneinfo import ZoneInfo

from transitions import EventData, Machine

from engine.calendar import BusinessCalendar
from engine.deadlines import DAY_UNITS, Deadline, DeadlineCalculator, Duration, WorkingHours
from engine.guards import Guard, GuardError, compile_guard
from engine.validate import CheckedWorkflow
from schemas.workflow import DurationSpec, FieldSpec, StateSpec, WindowSpec, WorkflowSpec

BREACH_TRIGGER = "sla.breached"
TIMEOUT_TRIGGER = "sla.timed_out"
ATTRIBUTES = ""
"""The `instant_fields` key of the attributes: no event type can be named ''."""
MEMO_LIMIT = 100_000


@dataclass(slots=True)
class Step:
    """The model `transitions` moves for one trigger: a state plus what the guards may read."""

    state: str
    source: str
    context: dict[str, Any]
    guard_error: str | None = None
    refused_source: bool = False
    window_open: Callable[[WindowSpec], datetime | None] | None = None
    """None when the event is inside the window, else the instant the window closed."""
    window_closed: str | None = None


@dataclass(frozen=True, slots=True)
class Route:
    dest: str
    guard: Guard | None
    allowed_sources: frozenset[str]


@dataclass(frozen=True)
class CompiledWorkflow:
    """Everything the core needs to run cases of one workflow version, built once."""

    spec: WorkflowSpec
    path: str
    machine: Machine
    routes: tuple[Route, ...]
    tier_index: dict[str, int]
    clock_events: dict[str, str]
    deadlines: DeadlineCalculator
    tz: ZoneInfo
    sources: frozenset[str] = field(default_factory=frozenset)
    allowed: dict[tuple[str, str], frozenset[str]] = field(default_factory=dict)
    marked_states: frozenset[str] = frozenset()
    """States whose entry instant a limit or window counts from (`from: STATE`)."""
    instant_fields: dict[str, frozenset[str]] = field(default_factory=dict)
    """Declared `timestamp` fields: ATTRIBUTES → attribute names, event type → payload names."""
    lateness: dict[str, timedelta] = field(default_factory=dict)
    """State → how long its timers wait past their due instant for late events (none: 0)."""
    correction: timedelta = timedelta(0)
    """How far behind its case's clock an event may be and still re-derive the case
    (engine/correction.py); 0: never, cases keep no checkpoints."""
    _deadline_memo: dict[tuple[date, Duration], Deadline] = field(default_factory=dict)
    """Sources that may fire (trigger, from-state): tells `unauthorized_source` from the rest."""

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def version(self) -> int:
        return self.spec.version

    def state(self, name: str) -> StateSpec:
        return self.spec.states[name]

    def fire(self, trigger: str, step: Step) -> bool:
        """Try the transitions of `trigger` from `step.state` in declaration order; the first
        whose conditions hold moves `step` to its destination. What `Event.trigger` does, less
        its dispatch plumbing (a queue, machine-wide callbacks), of which a shared machine
        without a model uses none; `transitions` still finds, checks and takes the step.
        The core checks that the trigger is valid from the state before it fires."""
        event = self.machine.events[trigger]
        data = EventData(self.machine.get_state(step.state), event, self.machine, step, (), {})
        for transition in event.transitions.get(step.state, ()):
            data.transition = transition
            if transition.execute(data):
                return True
        return False

    def tier_of(self, state: str) -> str | None:
        return self.spec.states[state].tier

    def deadline(self, start: datetime, duration: Duration) -> Deadline:
        """`deadlines.deadline`, memoised for day units, whose result depends only on the local
        start date: most cases of a day enter their states on the same few dates."""
        if duration.unit not in DAY_UNITS:
            return self.deadlines.deadline(start, duration)
        key = (start.astimezone(self.tz).date(), duration)
        found = self._deadline_memo.get(key)
        if found is None:
            if len(self._deadline_memo) > MEMO_LIMIT:
                self._deadline_memo.clear()
            found = self._deadline_memo[key] = self.deadlines.deadline(start, duration)
        return found


@cache
def to_duration(spec: DurationSpec) -> Duration:
    """Specs are frozen and few: convert each once (the property lookups cost ~5 µs a call)."""
    return Duration(spec.unit, spec.amount)


def shared_machine(states: list[str], transitions: list[dict[str, Any]], name: str) -> Machine:
    """A `transitions.Machine` that holds no model: cases are passed to its events one by one.

    No `initial` state and no auto transitions (a case enters by routing, and `to_<state>`
    triggers would bypass guards); invalid triggers are answered, not raised, because the core
    tells `invalid_transition` from `guard_failed` itself before triggering.
    """
    return Machine(
        model=None,
        states=states,
        transitions=transitions,
        initial=None,
        auto_transitions=False,
        send_event=True,
        ignore_invalid_triggers=True,
        name=name,
    )


def compile_workflow(checked: CheckedWorkflow, calendar: BusinessCalendar) -> CompiledWorkflow:
    """Build the shared machine, guards and deadline calculator of one workflow version."""
    spec = checked.spec
    all_sources = frozenset(spec.sources)
    config: list[dict[str, Any]] = []
    allowed_by_key: dict[tuple[str, str], frozenset[str]] = {}
    for tr in spec.transitions:
        allowed = frozenset(tr.allowed_sources or spec.sources)
        guard = compile_guard(tr.guard) if tr.guard else None
        source = (
            [n for n, s in spec.states.items() if not s.terminal]
            if tr.source == "*"
            else tr.source_states
        )
        for state_name in source:
            key = (tr.trigger, state_name)
            allowed_by_key[key] = allowed_by_key.get(key, frozenset()) | allowed
        config.append(
            {
                "trigger": tr.trigger,
                "source": source,
                "dest": tr.dest,
                "conditions": _conditions(allowed, tr.within, guard),
            }
        )
    for name, state in spec.states.items():
        if state.sla and state.sla.escalate_to:
            config.append(
                {"trigger": BREACH_TRIGGER, "source": name, "dest": state.sla.escalate_to}
            )
        if state.sla and state.sla.timeout_to:
            config.append(
                {"trigger": TIMEOUT_TRIGGER, "source": name, "dest": state.sla.timeout_to}
            )
    machine = shared_machine(list(spec.states), config, name=f"{spec.name}@{spec.version}")
    routes = tuple(
        Route(
            r.dest,
            compile_guard(r.guard) if r.guard else None,
            frozenset(r.allowed_sources or spec.sources),
        )
        for r in spec.routing
    )
    clock_events = {t: k for k in ("pause", "resume", "extend") for t in getattr(spec.clock, k)}
    tz = ZoneInfo(spec.timezone)
    hours = WorkingHours(spec.working_hours.start, spec.working_hours.end)
    return CompiledWorkflow(
        spec=spec,
        path=checked.path,
        machine=machine,
        routes=routes,
        tier_index={t: i for i, t in enumerate(spec.tiers)},
        clock_events=clock_events,
        deadlines=DeadlineCalculator(calendar, tz, hours),
        tz=tz,
        sources=all_sources,
        allowed=allowed_by_key,
        marked_states=_marked_states(spec),
        instant_fields=_instant_fields(spec),
        lateness=_lateness(spec, allowed_by_key, clock_events),
        correction=_correction(spec),
    )


def _correction(spec: WorkflowSpec) -> timedelta:
    horizon = spec.correction
    if horizon is None:
        return timedelta(0)
    days = horizon.unit == "calendar_days"
    return timedelta(days=horizon.amount) if days else timedelta(hours=horizon.amount)


def _lateness(
    spec: WorkflowSpec, allowed: dict[tuple[str, str], frozenset[str]], clock: dict[str, str]
) -> dict[str, timedelta]:
    """Per state, the largest allowed lateness of the sources that may act on it (a transition
    out of it, or a clock event): only their late events could still change what a timer does."""
    if not spec.lateness:
        return {}
    late = {source: timedelta(hours=d.amount) for source, d in spec.lateness.items()}
    clock_sources = set()
    for event_type in clock:
        declared = spec.events.get(event_type)
        clock_sources |= set(declared.allowed_sources or spec.sources) if declared else set()
    out: dict[str, timedelta] = {}
    for name, state in spec.states.items():
        if state.terminal:
            continue
        acting = {s for (_, st), sources in allowed.items() if st == name for s in sources}
        if state.sla is not None:
            acting |= clock_sources
        wait = max((late[s] for s in acting if s in late), default=timedelta(0))
        if wait:
            out[name] = wait
    return out


def _instant_fields(spec: WorkflowSpec) -> dict[str, frozenset[str]]:
    def instants(fields: dict[str, FieldSpec]) -> frozenset[str]:
        return frozenset(n for n, f in fields.items() if f.type == "timestamp")

    found = {ATTRIBUTES: instants(spec.attributes)}
    for name, event in spec.events.items():
        found[name] = instants(event.payload)
    return {k: v for k, v in found.items() if v}


def _marked_states(spec: WorkflowSpec) -> frozenset[str]:
    anchors = [s.sla.counted_from for s in spec.states.values() if s.sla]
    anchors += [t.within.counted_from for t in spec.transitions if t.within]
    return frozenset(a for a in anchors if a in spec.states)


def _conditions(
    allowed: frozenset[str], window: WindowSpec | None, guard: Guard | None
) -> list[Any]:
    """The checks of one transition, in the order they refuse: source, window, guard. Only those
    it has: `transitions` calls every condition it is given, and each call costs."""
    checks = [_source_check(allowed)]
    if window is not None:
        checks.append(_window_check(window))
    if guard is not None:
        checks.append(_guard_check(guard))
    return checks


def _window_check(window: WindowSpec) -> Any:
    def check(event: EventData) -> bool:
        step = event.model
        assert isinstance(step, Step)
        if step.window_open is None:
            return True
        closed_at = step.window_open(window)
        if closed_at is None:
            return True
        step.window_closed = (
            f"the window of {window.amount} {window.unit.replace('_', ' ')} from "
            f"{window.counted_from} closed at {closed_at.isoformat()}"
        )
        return False

    return check


def _source_check(allowed: frozenset[str]) -> Any:
    def check(event: EventData) -> bool:
        step = event.model
        assert isinstance(step, Step)
        if step.source in allowed:
            return True
        step.refused_source = True
        return False

    return check


def _guard_check(guard: Guard) -> Any:
    def check(event: EventData) -> bool:
        step = event.model
        assert isinstance(step, Step)
        try:
            return guard.evaluate(step.context)
        except GuardError as err:
            step.guard_error = f"{guard.source}: {err}"
            return False

    return check
