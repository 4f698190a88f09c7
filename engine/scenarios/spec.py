"""The scenario file format, and reading one into a checked `Suite` or into every problem it has.

Same three layers as `engine.validate`, reported the same way (`PATH:LINE:COL: error: MESSAGE`):
YAML syntax (`engine.yaml_source`), shape (the pydantic models below, unknown keys refused: a
misspelt `expect` key would otherwise check nothing and pass), and meaning against the loaded
workflows (the workflow exists; expected states, tiers, outcomes and record fields are ones it
can produce), so a typo fails where it is written and not as a puzzling mismatch at run time.

A scenario file, in short (CONTRIBUTING.md, "Testing a workflow", has the whole story):

    workflow: dispute-escalation
    scenarios:
      - name: grid settles on the spot
        steps:
          - at: 2026-03-03T16:20:00+08:00
            event: {type: case.reported, source: grid, payload: {attributes: {category: parking}}}
            expect: {state: grid.mediating, deadline: 2026-03-07T00:00:00+08:00}
          - after: +45m
            event: {type: mediation.succeeded, source: grid}
            expect: {closed: true, outcome: resolved}

A step may send a native intake message instead (`message: {channel, body}`): it is translated
by the channel files of the workflows folder under test, passed in by the caller (this package
reads no file), and an unknown channel is a problem of the file like an unknown state.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Annotated, Any, get_args

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from engine.channels import Channel
from engine.decode import EARLIEST, LATEST
from engine.machine import CompiledWorkflow
from engine.problems import Problem
from engine.registry import WorkflowRegistry
from engine.scenarios.offsets import parse_offset
from engine.validate_shape import schema_problems  # the one pydantic error → position mapping
from engine.vocabulary import did_you_mean
from engine.yaml_source import Path_, SourceDoc, load_yaml
from schemas.events import CaseEvent, Identifier
from schemas.records import OutputRecord, RejectionReason
from schemas.workflow import Name

DEFAULT_CASE = "case-1"
"""The case id of a scenario that names none: each scenario runs on its own, so one id suffices."""

RECORD_FIELDS: dict[str, frozenset[str]] = {
    model.model_fields["type"].default: frozenset(model.model_fields)
    for model in get_args(OutputRecord)
}
"""Fields of each output record type, so an expectation on a misspelt field is refused."""

EVENT_FIELDS = frozenset(CaseEvent.model_fields)
"""Fields of a canonical event, for `expect.events` given as mappings."""


class _Strict(BaseModel):
    """Unknown keys are refused: a misspelt expectation would otherwise check nothing, and pass."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class EventSpec(_Strict):
    """The canonical event a step sends; case id, time and event id come from the step."""

    type: Name
    source: Name
    payload: dict[str, Any] = Field(default_factory=dict)
    id: Identifier | None = Field(
        default=None, description="event_id (default: step-N); reuse one to send a duplicate"
    )


class MessageSpec(_Strict):
    """A native message as its upstream system sends it; the channel file makes it canonical
    events (ids, case id, time stamp and source all come from the message and its channel)."""

    channel: Name
    body: dict[str, Any] | str = Field(
        description="the message's fields; a string is sent as it is (to test a malformed one)"
    )


class Expect(_Strict):
    """What must hold after a step. Only the keys written are checked; `null` means "none"."""

    state: Name | None = None
    tier: Name | None = None
    deadline: AwareDatetime | None = None
    warning: AwareDatetime | None = None
    paused: bool | None = None
    extensions: int | None = None
    escalations: int | None = None
    closed: bool | None = None
    outcome: Name | None = None
    refused: RejectionReason | None = None
    duplicate: bool | None = None
    records: list[dict[str, Any]] | None = Field(
        default=None, description="these records, in this order, among the step's records"
    )
    records_exactly: list[dict[str, Any]] | None = Field(
        default=None, description="the step's records: this many, each matching in order"
    )
    events: list[Name | dict[str, Any]] | None = Field(
        default=None, description="the message's canonical events, in order: types or fields"
    )

    @model_validator(mode="after")
    def _one_records_key(self) -> Expect:
        if self.records is not None and self.records_exactly is not None:
            raise ValueError("give records or records_exactly, not both")
        return self


def _in_range(value: datetime) -> datetime:
    if not EARLIEST <= value < LATEST:
        raise ValueError(f"must lie between {EARLIEST.year} and {LATEST.year}")
    return value


Instant = Annotated[AwareDatetime, AfterValidator(_in_range)]
"""A step's or a scenario's time: RFC 3339 with an offset, in the range the engine accepts."""


class StepSpec(_Strict):
    """One moment of a story: when it happens, what arrives (if anything), what must hold."""

    at: Instant | None = None
    after: str | None = Field(default=None, description='offset from the previous step: "+2h"')
    case: Identifier | None = Field(default=None, description="another case than the scenario's")
    event: EventSpec | None = None
    message: MessageSpec | None = None
    expect: Expect | None = None

    @field_validator("after")
    @classmethod
    def _offset(cls, value: str | None) -> str | None:
        if value is not None:
            parse_offset(value)  # an OffsetError is a ValueError: reported at this line
        return value

    @model_validator(mode="after")
    def _consistent(self) -> StepSpec:
        if self.at is not None and self.after is not None:
            raise ValueError("give at or after, not both")
        if self.event is not None and self.message is not None:
            raise ValueError("give event or message, not both")
        if self.message is not None and self.case is not None:
            raise ValueError("a message names its own case (CHANNEL:NUMBER): drop `case`")
        return self


class ScenarioSpec(_Strict):
    name: str = Field(min_length=1, max_length=200)
    case: Identifier = Field(default=DEFAULT_CASE, description="the case the steps concern")
    start: Instant | None = Field(default=None, description="where `after` counts from")
    steps: list[StepSpec] = Field(min_length=1)

    @model_validator(mode="after")
    def _first_step_has_a_time(self) -> ScenarioSpec:
        if self.start is None and self.steps[0].at is None:
            raise ValueError("the first step needs `at` (or the scenario a `start`)")
        return self


class ScenarioFile(_Strict):
    workflow: Name
    version: int | None = Field(default=None, ge=1, description="default: the newest loaded")
    description: str | None = None
    scenarios: list[ScenarioSpec] = Field(min_length=1)


@dataclass(frozen=True)
class Suite:
    """A checked scenario file, ready to run against `registry`."""

    path: str
    spec: ScenarioFile
    doc: SourceDoc
    workflow: CompiledWorkflow
    registry: WorkflowRegistry
    """The loaded workflows, with the tested one narrowed to the chosen version (so the engine,
    which opens new cases on the newest version, opens them on that one)."""
    channels: Mapping[str, Channel] = field(default_factory=dict)
    """The compiled channel files that translate the `message` steps."""

    def line_of(self, *loc: str | int) -> int:
        """The line a scenario or step starts on (for the report)."""
        return self.doc.values.get(loc, (1, 1))[0]


def load_suite(
    path: str,
    raw: bytes,
    registry: WorkflowRegistry,
    channels: Mapping[str, Channel] | None = None,
) -> tuple[Suite | None, list[Problem]]:
    """All problems of one scenario file; the suite only when there are none."""
    parsed = parse_scenarios(path, raw)
    if isinstance(parsed, list):
        return None, parsed
    return bind_suite(*parsed, registry, channels)


def parse_scenarios(path: str, raw: bytes) -> tuple[ScenarioFile, SourceDoc] | list[Problem]:
    """The file's shape: YAML syntax, then the models; every problem, or the parsed file.

    Apart from `bind_suite` because it needs no workflow: a caller that plays the same files
    against many registries (the test that changes every shipped limit) parses them once."""
    doc, problems = load_yaml(path, raw)
    if doc is None:
        return problems
    if not isinstance(doc.data, dict):
        return [*problems, doc.problem_at((), "a scenario file must be a mapping")]
    try:
        spec = ScenarioFile.model_validate(doc.data)
    except ValidationError as err:
        return problems + schema_problems(doc, err)
    return problems or (spec, doc)


def bind_suite(
    spec: ScenarioFile,
    doc: SourceDoc,
    registry: WorkflowRegistry,
    channels: Mapping[str, Channel] | None = None,
) -> tuple[Suite | None, list[Problem]]:
    """A parsed file checked against the loaded workflows (and the channels its messages are
    sent on: none, when not given): the suite, or every problem."""
    channels = channels or {}
    workflow, problem = _workflow(spec, doc, registry)
    if workflow is None:
        return None, [problem] if problem else []
    problems = list(_meaning_problems(spec, doc, workflow, channels))
    if problems:
        return None, problems
    # A pinned preview version is tested as if promoted: its scenario's cases open on it.
    opened_on = replace(workflow, spec=workflow.spec.model_copy(update={"preview": False}))
    # The other versions stay loaded (as previews) so migrations into and out of it can be told.
    others = {
        version: replace(other, spec=other.spec.model_copy(update={"preview": True}))
        for version, other in registry.workflows[workflow.name].items()
        if version != workflow.version
    }
    narrowed = WorkflowRegistry(
        {**registry.workflows, workflow.name: {**others, workflow.version: opened_on}}
    )
    return Suite(doc.path, spec, doc, workflow, narrowed, channels), []


def _workflow(
    spec: ScenarioFile, doc: SourceDoc, registry: WorkflowRegistry
) -> tuple[CompiledWorkflow | None, Problem | None]:
    versions = registry.workflows.get(spec.workflow)
    if not versions:
        known = ", ".join(sorted(registry.workflows)) or "none"
        message = f"unknown workflow {spec.workflow!r} (loaded: {known})"
        return None, doc.problem_at(("workflow",), message)
    current = registry.newest(spec.workflow)  # what new cases take: not a preview
    version = spec.version or (current.version if current else max(versions))
    if version not in versions:
        loaded = ", ".join(str(v) for v in sorted(versions))
        message = f"{spec.workflow} has no version {version} (loaded: {loaded})"
        return None, doc.problem_at(("version",), message)
    return versions[version], None


def _meaning_problems(
    spec: ScenarioFile, doc: SourceDoc, workflow: CompiledWorkflow, channels: Mapping[str, Channel]
) -> Iterator[Problem]:
    names: dict[str, int] = {}
    for i, scenario in enumerate(spec.scenarios):
        if scenario.name in names:
            yield doc.problem_at(
                ("scenarios", i, "name"),
                f"scenario {scenario.name!r} is already defined (scenario {names[scenario.name]})",
            )
        names.setdefault(scenario.name, i + 1)
        for j, step in enumerate(scenario.steps):
            at: Path_ = ("scenarios", i, "steps", j)
            if step.message is not None and step.message.channel not in channels:
                name = step.message.channel
                loaded = ", ".join(sorted(channels)) or "none"
                message = f"unknown channel {name!r}{did_you_mean(name, set(channels))}"
                yield doc.problem_at((*at, "message", "channel"), f"{message} (loaded: {loaded})")
            if step.expect is not None:
                yield from _expect_problems(step, doc, at, workflow)


def _expect_problems(
    step: StepSpec, doc: SourceDoc, at: Path_, workflow: CompiledWorkflow
) -> Iterator[Problem]:
    expect = step.expect
    assert expect is not None
    where: Path_ = (*at, "expect")
    spec = workflow.spec
    known: dict[str, set[str]] = {
        "state": set(spec.states),
        "tier": set(spec.tiers),
        "outcome": {str(s.outcome) for s in spec.states.values() if s.outcome},
    }
    for key, names in known.items():
        value = getattr(expect, key)
        if value is not None and value not in names:
            choices = ", ".join(sorted(names))
            yield doc.problem_at(
                (*where, key), f"{workflow.name} has no {key} {value!r} (it has: {choices})"
            )
    for key in ("refused", "duplicate"):
        if key in expect.model_fields_set and step.event is None and step.message is None:
            message = f"expect.{key} needs an event or a message in the same step"
            yield doc.problem_at((*where, key), message, key=True)
    if "events" in expect.model_fields_set and step.message is None:
        yield doc.problem_at((*where, "events"), "expect.events needs a message", key=True)
    for k, event in enumerate(expect.events or []):
        for name in event if isinstance(event, dict) else ():
            if name not in EVENT_FIELDS:
                fields = ", ".join(sorted(EVENT_FIELDS))
                message = f"a canonical event has no field {name!r} (fields: {fields})"
                yield doc.problem_at((*where, "events", k, name), message, key=True)
    for key in ("records", "records_exactly"):
        for k, record in enumerate(getattr(expect, key) or []):
            yield from _record_problems(record, doc, (*where, key, k))


def _record_problems(record: dict[str, Any], doc: SourceDoc, at: Path_) -> Iterator[Problem]:
    kind = record.get("type")
    if kind is not None and kind not in RECORD_FIELDS:
        choices = ", ".join(sorted(RECORD_FIELDS))
        yield doc.problem_at((*at, "type"), f"unknown record type {kind!r} (types: {choices})")
        return
    fields = RECORD_FIELDS[kind] if kind else frozenset().union(*RECORD_FIELDS.values())
    for key in record:
        if key not in fields:
            of = f"a {kind} record" if kind else "any record"
            yield doc.problem_at((*at, key), f"{of} has no field {key!r}", key=True)
