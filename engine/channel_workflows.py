"""A channel file checked against the workflows it feeds.

What the intake emits must be what the workflows declare, or the engine would refuse it later
as a dead letter nobody expected: the workflow a case opens exists and lists the channel among
its sources; the attributes a channel supplies are declared by that workflow, with a type and an
enum that fit, and its required attributes are all supplied; every other event type is in the
vocabulary of a workflow the channel's cases can be on (any workflow when the message names a
whole case id), and its payload fields fit what that workflow declares.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from engine.channels import expanded_types
from engine.problems import Problem
from engine.vocabulary import did_you_mean
from engine.yaml_source import Path_, SourceDoc
from schemas.channel import ChannelSpec, EmitSpec, KindSpec
from schemas.workflow import FieldSpec, WorkflowSpec

_WORKFLOW_TYPE = {
    "id": "string",
    "code": "string",
    "category": "string",
    "string": "string",
    "text": "string",
    "int": "int",
    "bool": "bool",
    "timestamp": "timestamp",
}


def newest_specs(specs: Iterable[WorkflowSpec]) -> dict[str, WorkflowSpec]:
    """Name → the version new cases take: the newest that is not a preview (a workflow with
    preview versions only takes no new cases, so a channel cannot feed it yet)."""
    chosen: dict[str, WorkflowSpec] = {}
    for spec in specs:
        have = chosen.get(spec.name)
        if not spec.preview and (have is None or spec.version > have.version):
            chosen[spec.name] = spec
    return chosen


def workflow_problems(
    spec: ChannelSpec,
    doc: SourceDoc,
    workflows: Mapping[str, WorkflowSpec],
    sound: set[tuple[str, int]] | None = None,
) -> Iterator[Problem]:
    """`workflows`: name → the version new cases take (`newest_specs`); `sound`: the (kind,
    index) of the events to check (default: all)."""
    opened: set[str] = set()
    for kind_name, kind in spec.kinds.items():
        for i, emit in enumerate(kind.emits):
            at = ("kinds", kind_name, "emits", i)
            for j, name in _workflow_names(emit):
                where = (*at, "workflow") if j is None else (*at, "workflow", j, "use")
                workflow = workflows.get(name)
                if workflow is None:
                    yield doc.problem_at(
                        where, f"unknown workflow {name!r}" + did_you_mean(name, list(workflows))
                    )
                    continue
                opened.add(name)
                yield from _opening_problems(spec.channel, emit, kind, workflow, doc=doc, at=at)
    for kind_name, kind in spec.kinds.items():
        for i, emit in enumerate(kind.emits):
            if emit.type == "case.reported" or (sound is not None and (kind_name, i) not in sound):
                continue
            names = set(workflows) if kind.case_id is not None else opened
            specs = [workflows[n] for n in sorted(names)]
            here: Path_ = ("kinds", kind_name, "emits", i)
            for event_type in expanded_types(emit, kind):
                yield from _event_problems(
                    event_type, emit, kind, specs, channel=spec.channel, doc=doc, at=here
                )


def _workflow_names(emit: EmitSpec) -> Iterator[tuple[int | None, str]]:
    if isinstance(emit.workflow, str):
        yield None, emit.workflow
    elif emit.workflow is not None:
        for j, rule in enumerate(emit.workflow):
            yield j, rule.use


def _opening_problems(
    channel: str,
    emit: EmitSpec,
    kind: KindSpec,
    workflow: WorkflowSpec,
    *,
    doc: SourceDoc,
    at: Path_,
) -> Iterator[Problem]:
    name = workflow.name
    if channel not in workflow.sources and "*" not in workflow.sources:
        yield doc.problem_at(
            (*at, "workflow"),
            f"workflow {name!r} does not list {channel!r} "
            "among its sources: its cases would refuse this channel's events",
        )
    supplied = set(emit.attributes) | ({"person_key"} if emit.person_key else set())
    for attr, value in emit.attributes.items():
        declared = workflow.attributes.get(attr)
        if declared is None:
            yield doc.problem_at(
                (*at, "attributes", attr),
                f"workflow {name!r} declares no "
                f"attribute {attr!r}" + did_you_mean(attr, list(workflow.attributes)),
                key=True,
            )
            continue
        problem = _fit_problem(value, kind, declared)
        if problem:
            yield doc.problem_at(
                (*at, "attributes", attr), f"attribute {attr!r} of workflow {name!r}: {problem}"
            )
    for attr, declared in workflow.attributes.items():
        if declared.required and attr not in supplied:
            yield doc.problem_at(
                (*at, "attributes"),
                f"workflow {name!r} requires attribute {attr!r}, which this event does not supply",
                key=True,
            )


def _event_problems(
    event_type: str,
    emit: EmitSpec,
    kind: KindSpec,
    specs: list[WorkflowSpec],
    *,
    channel: str,
    doc: SourceDoc,
    at: Path_,
) -> Iterator[Problem]:
    speaking = [s for s in specs if event_type in s.events]
    if not speaking:
        known = sorted({e for s in specs for e in s.events})
        names = ", ".join(s.name for s in specs) or "no workflow"
        yield doc.problem_at(
            (*at, "type"),
            f"event type {event_type!r} is not in the vocabulary "
            f"of {names}" + did_you_mean(event_type, known),
        )
        return
    if not any(_may_send(channel, event_type, s) for s in speaking):
        names = ", ".join(s.name for s in speaking)
        yield doc.problem_at(
            (*at, "type"),
            f"{names} do(es) not let {channel!r} send "
            f"{event_type!r} (allowed_sources of the event or of every "
            "transition it triggers): every such event would be refused",
        )
    for workflow in speaking:
        for name, declared_field in workflow.events[event_type].payload.items():
            if declared_field.required and name not in emit.payload:
                yield doc.problem_at(
                    (*at, "payload"),
                    f"{event_type} of workflow {workflow.name!r} requires payload field {name!r}",
                    key=True,
                )
    for field, value in emit.payload.items():
        for workflow in speaking:
            declared = (
                workflow.events[event_type].payload.get(field)
                if (event_type in workflow.events)
                else None
            )
            problem = _fit_problem(value, kind, declared) if declared else None
            if problem:
                yield doc.problem_at(
                    (*at, "payload", field),
                    f"{event_type} payload {field!r} of workflow {workflow.name!r}: {problem}",
                )
                break


def _may_send(channel: str, event_type: str, workflow: WorkflowSpec) -> bool:
    """Whether some path lets `channel` send `event_type` to a case of `workflow`."""
    declared = workflow.events[event_type].allowed_sources
    if declared is not None and channel not in declared:
        return False
    triggered = [t for t in workflow.transitions if t.trigger == event_type]
    return not triggered or any(
        t.allowed_sources is None or channel in t.allowed_sources for t in triggered
    )


def _fit_problem(value: Any, kind: KindSpec, declared: FieldSpec) -> str | None:  # noqa: PLR0911
    """Why a mapped field or constant may not fit a declared workflow field, or None."""
    if isinstance(value, dict):
        value = value["value"]
    elif isinstance(value, str):
        field = kind.fields.get(value)
        if field is None or field.is_personal:
            return None  # reported by the file's own checks
        have = _WORKFLOW_TYPE.get(field.type)
        if have != declared.type and not (have == "int" and declared.type == "number"):
            return f"the field {value!r} is {field.type}, the workflow wants {declared.type}"
        if declared.enum is not None:
            if field.enum is None:
                return (
                    f"the field {value!r} may hold any value; the workflow allows only "
                    + ", ".join(map(str, declared.enum))
                )
            outside = [v for v in field.enum if v not in declared.enum]
            if outside:
                return f"{', '.join(map(repr, outside))} of {value!r} are not allowed there"
        return None
    wanted: Any = {"string": str, "bool": bool, "int": int, "number": (int, float)}.get(
        declared.type
    )
    if (
        wanted is None
        or not isinstance(value, wanted)
        or (declared.type != "bool" and isinstance(value, bool))
    ):
        return f"the constant {value!r} is not a {declared.type}"
    if declared.enum is not None and value not in declared.enum:
        return f"the constant {value!r} is not one of {', '.join(map(repr, declared.enum))}"
    return None
