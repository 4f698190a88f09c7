"""`fengqiao validate` for channel files: every problem, as `PATH:LINE:COL: error: MESSAGE`.

Two layers of checks. Within the file: the fields a kind names exist and have the right type,
rules compile and read declared fields, every value of a mapped field has an event type, and no
personal field is mapped onward. Against the workflows (when given): the workflows a channel
opens exist and accept the channel as a source, the attributes it supplies are the ones the
workflow declares (typed, enum within enum, required ones present), and every event type it
emits is in the vocabulary of a workflow its cases can be on.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ValidationError

from engine.channel_workflows import newest_specs, workflow_problems
from engine.channels import (
    MESSAGE_VARIABLES,
    Channel,
    channel_files,
    compile_channel,
    expanded_types,
)
from engine.guards import GuardError, compile_guard
from engine.problems import InvalidWorkflowError, Problem
from engine.validate_shape import schema_problems
from engine.vocabulary import did_you_mean
from engine.yaml_source import Path_, SourceDoc, load_yaml
from schemas.channel import ChannelSpec, EmitSpec, FieldDecl, KindSpec, TypeFromField
from schemas.workflow import WorkflowSpec

_MESSAGE_FIELD = re.compile(r"\bmessage\s*\.\s*([A-Za-z_]\w*)")
_PLACEHOLDER = re.compile(r"\{([^{}]*)\}")
_STRING_TYPES = {"id", "code", "category", "string", "text"}
_REFERENCE_TYPES = {
    "message_id": "id",
    "case_number": "id",
    "case_id": "id",
    "occurred_at": "timestamp",
}


@dataclass(frozen=True, slots=True)
class CheckedChannel:
    spec: ChannelSpec
    path: str


def check_channel_paths(
    paths: Iterable[Path], workflows: Iterable[WorkflowSpec] | None = None
) -> tuple[list[CheckedChannel], list[Problem]]:
    """Check every channel file (and, given the workflows, its names against them)."""
    newest = newest_specs(workflows) if workflows is not None else None
    checked: list[CheckedChannel] = []
    problems: list[Problem] = []
    seen: dict[str, str] = {}
    for path in paths:
        try:
            raw = path.read_bytes()
        except OSError as err:
            problems.append(Problem(str(path), 1, 1, f"cannot read file: {err.strerror}"))
            continue
        spec, doc, found = check_channel_file(str(path), raw)
        if spec is not None and doc is not None and newest is not None:
            found += list(workflow_problems(spec, doc, newest, _sound_emits(spec, doc)))
        problems.extend(found)
        if spec is None or doc is None or found:
            continue
        if spec.channel in seen:
            message = f"channel {spec.channel!r} is already defined in {seen[spec.channel]}"
            problems.append(doc.problem_at(("channel",), message))
            continue
        seen[spec.channel] = str(path)
        checked.append(CheckedChannel(spec, str(path)))
    return checked, problems


def check_channel_file(
    path: str, raw: bytes
) -> tuple[ChannelSpec | None, SourceDoc | None, list[Problem]]:
    """The spec (None when its shape is wrong), its document, and every problem found."""
    doc, problems = load_yaml(path, raw)
    if doc is None:
        return None, None, problems
    if not isinstance(doc.data, dict):
        return None, doc, [*problems, doc.problem_at((), "a channel file must be a mapping")]
    try:
        spec = ChannelSpec.model_validate(doc.data)
    except ValidationError as err:
        return None, doc, [*problems, *schema_problems(doc, err, ChannelSpec)]
    problems += list(_file_problems(spec, doc))
    if not problems:
        problems += _compile_problems(spec, doc)
    return spec, doc, problems


def _compile_problems(spec: ChannelSpec, doc: SourceDoc) -> list[Problem]:
    """What only building the message parser finds: validation must refuse what would stop
    `fengqiao run` at start."""
    try:
        compile_channel(spec)
    except Exception as err:  # pydantic raises several kinds on a model it cannot build
        return [doc.problem_at(("kinds",), f"cannot build the message parser: {err}"[:300])]
    return []


def _file_problems(spec: ChannelSpec, doc: SourceDoc) -> Iterator[Problem]:
    try:
        ZoneInfo(spec.timezone)
    except (ZoneInfoNotFoundError, ValueError):
        yield doc.problem_at(("timezone",), f"unknown time zone {spec.timezone!r}")
    if spec.channel != Path(doc.path).stem:
        yield doc.problem_at(
            ("channel",), f"channel {spec.channel!r} must be written in {spec.channel}.yaml"
        )
    for name, kind in spec.kinds.items():
        yield from _kind_problems(kind, doc, ("kinds", name))


def _kind_problems(kind: KindSpec, doc: SourceDoc, at: Path_) -> Iterator[Problem]:
    if "kind" in kind.fields:
        yield doc.problem_at(
            (*at, "fields", "kind"), "'kind' is the message's kind, not a field", key=True
        )
    for name, declared in kind.fields.items():
        if name.startswith("_") or hasattr(BaseModel, name):
            yield doc.problem_at(
                (*at, "fields", name),
                f"{name!r} cannot be a field name (it "
                "starts with '_' or is taken by the message model)",
                key=True,
            )
        yield from _field_problems(declared, doc, (*at, "fields", name))
    for role, wanted in _REFERENCE_TYPES.items():
        name = getattr(kind, role)
        if name is None:
            continue
        field = kind.fields.get(name)
        if field is None:
            yield doc.problem_at((*at, role), _unknown(name, kind))
        elif field.type != wanted or not field.is_required:
            yield doc.problem_at(
                (*at, role),
                f"{role} must name a required field of type {wanted}, "
                f"not {name!r} ({field.type}{'' if field.is_required else ', optional'})",
            )
    suffixes: dict[str | None, bool] = {}
    for i, emit in enumerate(kind.emits):
        here = (*at, "emits", i)
        yield from _emit_problems(emit, kind, doc, here)
        clash = emit.id_suffix in suffixes and not (emit.when and suffixes[emit.id_suffix])
        if clash:
            yield doc.problem_at(
                here,
                "two events of one message need different id_suffix values (or "
                "conditions under `when` that exclude each other)",
            )
        suffixes[emit.id_suffix] = emit.when is not None


def _sound_emits(spec: ChannelSpec, doc: SourceDoc) -> set[tuple[str, int]]:
    """The events whose `type` the file's own checks found nothing wrong with: only their
    types are looked up in the workflows' vocabulary (a problem is reported once, where it is)."""
    return {
        (name, i)
        for name, kind in spec.kinds.items()
        for i, emit in enumerate(kind.emits)
        if not any(_type_problems(emit, kind, doc, ("kinds", name, "emits", i, "type")))
    }


def _field_problems(field: FieldDecl, doc: SourceDoc, at: Path_) -> Iterator[Problem]:
    if field.enum is not None:
        kinds = {type(v) for v in field.enum}
        fits = (
            (field.type in _STRING_TYPES - {"text"} and kinds == {str})
            or (field.type == "int" and kinds == {int})
            or (field.type == "bool" and kinds == {bool})
        )
        if not fits:
            yield doc.problem_at((*at, "enum"), f"enum values do not fit type {field.type}")
    if (field.minimum is not None or field.maximum is not None) and field.type != "int":
        yield doc.problem_at(at, "minimum and maximum apply to int fields only")
    if field.default is not None:
        if field.type in ("person", "persons", "timestamp"):
            yield doc.problem_at((*at, "default"), f"a {field.type} field cannot have a default")
        elif not _fits(field, field.default):
            yield doc.problem_at(
                (*at, "default"),
                f"default {field.default!r} does not fit "
                f"type {field.type}" + (" and its enum" if field.enum else ""),
            )


def _fits(field: FieldDecl, value: Any) -> bool:
    if field.enum is not None and value not in field.enum:
        return False
    if field.type == "bool":
        return isinstance(value, bool)
    if field.type == "int":
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, str)


def _emit_problems(emit: EmitSpec, kind: KindSpec, doc: SourceDoc, at: Path_) -> Iterator[Problem]:
    yield from _rule_problems(emit.when, kind, doc, (*at, "when"))
    yield from _type_problems(emit, kind, doc, (*at, "type"))
    reported = emit.type == "case.reported"
    if not reported and "case.reported" in expanded_types(emit, kind):
        yield doc.problem_at(
            at,
            "case.reported must be written as such, not made by a template "
            "or a map: it needs its own `workflow` and `attributes`",
        )
    if reported and emit.workflow is None:
        yield doc.problem_at(
            at, "a case.reported event needs `workflow` (the workflow new cases open)"
        )
    if not reported:
        for key in ("workflow", "attributes", "person_key"):
            if getattr(emit, key):
                yield doc.problem_at(
                    (*at, key), f"{key} belongs to a case.reported event only", key=True
                )
    if isinstance(emit.workflow, list):
        for i, rule in enumerate(emit.workflow):
            yield from _rule_problems(rule.when, kind, doc, (*at, "workflow", i, "when"))
        if emit.workflow and emit.workflow[-1].when is not None:
            yield doc.problem_at(
                (*at, "workflow"),
                "the last workflow rule needs no `when`: "
                "it is the default when no other rule holds",
            )
    for section in ("payload", "attributes"):
        for name, value in getattr(emit, section).items():
            if isinstance(value, str):
                yield from _copied_field_problems(value, kind, doc, (*at, section, name))
    yield from _person_key_problems(emit, kind, doc, at)


def _person_key_problems(
    emit: EmitSpec, kind: KindSpec, doc: SourceDoc, at: Path_
) -> Iterator[Problem]:
    for i, name in enumerate(emit.person_key):
        field = kind.fields.get(name)
        if field is None:
            yield doc.problem_at((*at, "person_key", i), _unknown(name, kind))
        elif field.type not in ("person", "persons"):
            yield doc.problem_at(
                (*at, "person_key", i),
                f"person_key reads person or persons fields, not {field.type}",
            )


def _copied_field_problems(
    name: str, kind: KindSpec, doc: SourceDoc, at: Path_
) -> Iterator[Problem]:
    field = kind.fields.get(name)
    if field is None:
        yield doc.problem_at(at, _unknown(name, kind))
    elif field.type in ("person", "persons"):
        yield doc.problem_at(
            at,
            f"{name!r} is a party: parties never leave the adapter (use "
            "person_key to link reports by the same person)",
        )
    elif field.is_personal:
        yield doc.problem_at(
            at,
            f"{name!r} is personal ({field.type}) and is never copied "
            "onward; declare it `personal: false` if it holds no personal data",
        )


def _rule_problems(
    source: str | None, kind: KindSpec, doc: SourceDoc, at: Path_
) -> Iterator[Problem]:
    if source is None:
        return
    try:
        compile_guard(source, MESSAGE_VARIABLES)
    except GuardError as err:
        yield doc.problem_at(at, f"when: {err}")
        return
    for name in _MESSAGE_FIELD.findall(source):
        field = kind.fields.get(name)
        if field is None:
            yield doc.problem_at(at, f"when: {_unknown(name, kind)}")
        elif field.type in ("person", "persons"):
            yield doc.problem_at(at, f"when: {name!r} is a party; rules cannot read parties")


def _type_problems(emit: EmitSpec, kind: KindSpec, doc: SourceDoc, at: Path_) -> Iterator[Problem]:
    chosen = emit.type
    if isinstance(chosen, TypeFromField):
        field = kind.fields.get(chosen.field)
        if field is None:
            yield doc.problem_at((*at, "field"), _unknown(chosen.field, kind))
        elif field.enum is None or not field.is_required:
            yield doc.problem_at(
                (*at, "field"), f"{chosen.field!r} needs an enum and must be required"
            )
        else:
            missing = [str(v) for v in field.enum if str(v) not in chosen.map]
            extra = [k for k in chosen.map if k not in {str(v) for v in field.enum}]
            if missing:
                yield doc.problem_at((*at, "map"), f"no event type for {', '.join(missing)}")
            for key in extra:
                yield doc.problem_at(
                    (*at, "map", key),
                    f"{key!r} is not a value of "
                    f"{chosen.field!r}" + did_you_mean(key, [str(v) for v in field.enum]),
                )
        return
    names = _PLACEHOLDER.findall(chosen)
    if chosen.count("{") != len(names) or chosen.count("}") != len(names) or len(names) > 1:
        yield doc.problem_at(at, "an event type template has one {field} placeholder at most")
        return
    for name in names:
        field = kind.fields.get(name)
        if field is None:
            yield doc.problem_at(at, _unknown(name, kind))
        elif field.enum is None or field.type not in _STRING_TYPES or not field.is_required:
            yield doc.problem_at(at, f"{{{name}}} must name a required string field with an enum")


def _unknown(name: str, kind: KindSpec) -> str:
    return f"unknown field {name!r}{did_you_mean(name, list(kind.fields))}"


def load_channels(
    folder: Path, workflows: Iterable[WorkflowSpec] | None = None
) -> dict[str, Channel]:
    """Every channel of a workflows folder, compiled; raise `InvalidWorkflowError` listing every
    problem (with the `workflows` to check names against, when given: all loaded versions)."""
    checked, problems = check_channel_paths(channel_files(folder), workflows)
    if problems:
        raise InvalidWorkflowError(problems)
    return {c.spec.channel: compile_channel(c.spec, c.path) for c in checked}
