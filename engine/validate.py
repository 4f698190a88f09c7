"""Turn a workflow file into a checked `WorkflowSpec`, or into every problem it has.

Three layers, all reported the same way (`PATH:LINE:COL: error: MESSAGE`): YAML syntax
(`engine.yaml_source`), shape (the pydantic models in `schemas.workflow`) and meaning (the checks
below, which need the whole document: names that refer to each other, reachability, guards).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from engine.guard_types import Scope, guard_scope, guard_type_problems
from engine.guards import GuardError, compile_guard
from engine.problems import Problem
from engine.validate_shape import Located, checked_shape, schema_problems
from engine.vocabulary import did_you_mean, vocabulary_problems
from engine.yaml_source import load_yaml
from schemas.workflow import WorkflowSpec

_schema_problems = schema_problems  # the name other modules imported before the split

RESERVED_TRIGGERS = frozenset({"sla.breached", "sla.warning", "sla.timed_out"})
"""Triggers the engine fires itself from timers; a workflow may not declare them."""


@dataclass(frozen=True, slots=True)
class CheckedWorkflow:
    """A workflow that passed every check, with the file it came from."""

    spec: WorkflowSpec
    path: str


def check_file(path: str, raw: bytes) -> tuple[CheckedWorkflow | None, list[Problem]]:
    """All problems of one workflow file; the spec only when there are none."""
    doc, problems = load_yaml(path, raw)
    if doc is None:
        return None, problems
    if not isinstance(doc.data, dict):
        return None, [*problems, doc.problem_at((), "a workflow file must be a mapping")]
    spec, shape, located = checked_shape(doc)
    problems += shape
    if spec is not None:
        problems += [p for p in _semantic_problems(spec, located) if _still_meaningful(p, located)]
    return (CheckedWorkflow(spec, path) if spec and not problems else None), problems


def _still_meaningful(problem: Problem, located: Located) -> bool:
    """A name cut out by pruning is reported by its shape problem, not again as unknown."""
    return problem not in located.echoes and not any(
        f"{name!r}" in problem.message or f".{name}:" in problem.message
        for name in located.removed_names
        if name
    )


def _semantic_problems(spec: WorkflowSpec, doc: Located) -> Iterator[Problem]:
    yield from _check_names(spec, doc)
    yield from _check_states(spec, doc)
    yield from _check_routing(spec, doc)
    yield from _check_transitions(spec, doc)
    yield from _check_clock(spec, doc)
    yield from _check_timing(spec, doc)
    yield from vocabulary_problems(spec, doc)
    for name, declared in spec.events.items():
        yield from _check_sources(spec, doc, ("events", name), declared.allowed_sources)
    yield from _check_lateness(spec, doc)
    if not doc.pruned:  # a removed transition would make states look unreachable
        yield from _check_graph(spec, doc)


def _check_lateness(spec: WorkflowSpec, doc: Located) -> Iterator[Problem]:
    for source, duration in spec.lateness.items():
        at = ("lateness", source)
        if source not in spec.sources:
            yield doc.problem_at(at, f"lateness: unknown source {source!r}"
                                 + did_you_mean(source, spec.sources), key=True)  # fmt: skip
        if duration.unit != "hours":
            yield doc.problem_at(at, "lateness is wall time: give it in hours")
    if spec.correction is not None and spec.correction.unit not in ("hours", "calendar_days"):
        yield doc.problem_at(("correction",), "the correction horizon is wall time: give it in "
                             "hours or calendar_days")  # fmt: skip


def _check_names(spec: WorkflowSpec, doc: Located) -> Iterator[Problem]:
    try:
        ZoneInfo(spec.timezone)
    except (ZoneInfoNotFoundError, ValueError):
        yield doc.problem_at(("timezone",), f"unknown time zone {spec.timezone!r}")
    for field in ("tiers", "sources"):
        seen: set[str] = set()
        for i, name in enumerate(getattr(spec, field)):
            if name in seen:
                yield doc.problem_at((field, i), f"{name!r} is listed twice in {field}")
            seen.add(name)


def _check_states(spec: WorkflowSpec, doc: Located) -> Iterator[Problem]:
    tiers = {t: i for i, t in enumerate(spec.tiers)}
    for name, state in spec.states.items():
        at = ("states", name)
        if state.tier is not None and state.tier not in tiers:
            yield doc.problem_at((*at, "tier"), f"state {name!r}: unknown tier {state.tier!r}")
        if state.terminal and state.outcome is None:
            yield doc.problem_at(at, f"terminal state {name!r} needs an outcome", key=True)
        if not state.terminal and state.outcome is not None:
            yield doc.problem_at(
                (*at, "outcome"), f"state {name!r} is not terminal and cannot have an outcome"
            )
        if state.sla is None:
            continue
        if state.terminal:
            yield doc.problem_at((*at, "sla"), f"terminal state {name!r} cannot have an SLA")
        if (state.sla.extension is None) != (state.sla.max_extensions == 0):
            yield doc.problem_at(
                (*at, "sla"), f"state {name!r}: give both extension and max_extensions, or neither"
            )
        target_name = state.sla.escalate_to
        if target_name is None:
            continue
        target = spec.states.get(target_name)
        where = (*at, "sla", "escalate_to")
        if target is None:
            yield doc.problem_at(where, f"escalate_to: unknown state {target_name!r}")
        elif state.tier is None:
            yield doc.problem_at(where, f"state {name!r} has no tier, so it cannot escalate")
        elif state.tier not in tiers:
            continue  # reported above as an unknown tier; no ladder to climb from it
        elif target.tier is None or tiers.get(target.tier, -1) <= tiers[state.tier]:
            target_tier = f"tier {target.tier}" if target.tier else "no tier"
            yield doc.problem_at(
                where,
                f"escalate_to {target_name!r} ({target_tier}) does not climb the ladder "
                f"from {name!r} (tier {state.tier})",
            )


def _check_routing(spec: WorkflowSpec, doc: Located) -> Iterator[Problem]:
    for i, route in enumerate(spec.routing):
        at = ("routing", i)
        target = spec.states.get(route.dest)
        if target is None:
            yield doc.problem_at((*at, "dest"), f"routing: unknown state {route.dest!r}")
        elif target.terminal:
            yield doc.problem_at((*at, "dest"), f"routing: {route.dest!r} is a terminal state")
        yield from _check_sources(spec, doc, at, route.allowed_sources)
        yield from _check_guard(doc, at, route.guard, guard_scope(spec, None))
        catch_all = route.guard is None and route.allowed_sources is None
        if catch_all and i < len(spec.routing) - 1:
            yield doc.problem_at(
                at,
                "routing rule without a guard must be the last one (the rules after it "
                "can never match)",
            )


def _check_transitions(spec: WorkflowSpec, doc: Located) -> Iterator[Problem]:
    by_key: dict[tuple[str, str], list[int]] = defaultdict(list)
    clock_events = {*spec.clock.pause, *spec.clock.resume, *spec.clock.extend}
    for i, tr in enumerate(spec.transitions):
        at = ("transitions", i)
        if tr.trigger in RESERVED_TRIGGERS:
            yield doc.problem_at((*at, "trigger"), f"trigger {tr.trigger!r} is reserved")
        if tr.trigger in clock_events:
            yield doc.problem_at(
                (*at, "trigger"), f"trigger {tr.trigger!r} is already a clock event"
            )
        if tr.dest not in spec.states:
            yield doc.problem_at((*at, "dest"), f"transition dest: unknown state {tr.dest!r}")
        star = tr.source == "*"
        sources = (
            [n for n, s in spec.states.items() if not s.terminal] if star else tr.source_states
        )
        for j, src in enumerate(sources):
            state = spec.states.get(src)
            where = (*at, "source") if star or isinstance(tr.source, str) else (*at, "source", j)
            if state is None:
                yield doc.problem_at(where, f"transition source: unknown state {src!r}")
            elif state.terminal and tr.source != "*":
                yield doc.problem_at((*at, "source"), f"transition out of terminal state {src!r}")
            else:
                by_key[(tr.trigger, src)].append(i)
        yield from _check_sources(spec, doc, at, tr.allowed_sources)
        yield from _check_guard(doc, at, tr.guard, guard_scope(spec, tr.trigger))
    if doc.pruned:
        return  # a removed guard would make transitions look ambiguous
    for (trigger, src), indexes in by_key.items():
        guards = [(spec.transitions[i].guard, spec.transitions[i].within) for i in indexes]
        for n, i in enumerate(indexes[:-1]):
            if guards[n] == (None, None) or guards[n] in guards[n + 1 :]:
                yield doc.problem_at(
                    ("transitions", i),
                    f"ambiguous: several transitions on {trigger!r} from {src!r} and no guard "
                    "tells them apart",
                )


def _check_sources(
    spec: WorkflowSpec, doc: Located, at: tuple[str | int, ...], allowed: list[str] | None
) -> Iterator[Problem]:
    for j, name in enumerate(allowed or []):
        if name not in spec.sources:
            yield doc.problem_at(
                (*at, "allowed_sources", j), f"unknown source {name!r} (not in sources)"
            )


def _check_guard(
    doc: Located, at: tuple[str | int, ...], guard: str | None, scope: Scope
) -> Iterator[Problem]:
    if guard is None:
        return
    try:
        compile_guard(guard)
    except GuardError as err:
        yield doc.problem_at((*at, "guard"), f"guard: {err}")
        return
    for message in guard_type_problems(guard, scope):
        yield doc.problem_at((*at, "guard"), f"guard: {message}")


def _check_clock(spec: WorkflowSpec, doc: Located) -> Iterator[Problem]:
    seen: dict[str, str] = {}
    for kind in ("pause", "resume", "extend"):
        for i, trigger in enumerate(getattr(spec.clock, kind)):
            if trigger in seen:
                yield doc.problem_at(
                    ("clock", kind, i), f"{trigger!r} is both a {seen[trigger]} and a {kind} event"
                )
            seen[trigger] = kind
    if spec.clock.extend and not any(s.sla and s.sla.extension for s in spec.states.values()):
        yield doc.problem_at(("clock", "extend"), "extend events given but no SLA has extension")


ANCHORS = ("entered", "opened")


def _check_timing(spec: WorkflowSpec, doc: Located) -> Iterator[Problem]:
    """`timeout_to`, and what limits and windows count from (`from:`)."""
    for name, state in spec.states.items():
        sla = state.sla
        if sla is None:
            continue
        at = ("states", name, "sla")
        if sla.timeout_to is not None:
            if sla.escalate_to is not None:
                yield doc.problem_at(
                    (*at, "timeout_to"),
                    "give escalate_to (climb the ladder) or timeout_to (lapse to any state), "
                    "not both",
                )
            elif sla.timeout_to not in spec.states:
                near = did_you_mean(sla.timeout_to, set(spec.states))
                yield doc.problem_at(
                    (*at, "timeout_to"), f"timeout_to: unknown state {sla.timeout_to!r}{near}"
                )
            elif sla.timeout_to == name:
                yield doc.problem_at((*at, "timeout_to"), "timeout_to must lead to another state")
        yield from _check_anchor(spec, doc, (*at, "from"), sla.counted_from, name)
    for i, tr in enumerate(spec.transitions):
        if tr.within is not None:
            yield from _check_anchor(
                spec, doc, ("transitions", i, "within", "from"), tr.within.counted_from, None
            )


def _check_anchor(
    spec: WorkflowSpec, doc: Located, at: tuple[str | int, ...], anchor: str, own: str | None
) -> Iterator[Problem]:
    if anchor in ANCHORS or (anchor in spec.states and anchor != own):
        return
    if anchor == own:
        yield doc.problem_at(at, f"from: {anchor!r} is this state itself; write `entered`")
        return
    near = did_you_mean(anchor, {*ANCHORS, *spec.states} - {own})
    yield doc.problem_at(
        at, f"from: {anchor!r} is not `entered`, `opened` or a state of this workflow{near}"
    )


def _check_graph(spec: WorkflowSpec, doc: Located) -> Iterator[Problem]:
    edges: dict[str, set[str]] = defaultdict(set)
    for tr in spec.transitions:
        star = tr.source == "*"
        for src in (
            [n for n, s in spec.states.items() if not s.terminal] if star else tr.source_states
        ):
            edges[src].add(tr.dest)
    for name, state in spec.states.items():
        for target in (state.sla.escalate_to, state.sla.timeout_to) if state.sla else ():
            if target is not None:
                edges[name].add(target)
    reached: set[str] = set()
    todo = [r.dest for r in spec.routing]
    while todo:
        name = todo.pop()
        if name not in reached:
            reached.add(name)
            todo.extend(edges.get(name, ()))
    for name, state in spec.states.items():
        at = ("states", name)
        if name not in reached:
            yield doc.problem_at(at, f"state {name!r} is unreachable from routing", key=True)
        if not state.terminal and not edges.get(name):
            yield doc.problem_at(
                at, f"state {name!r} is a dead end: not terminal and no way out", key=True
            )
