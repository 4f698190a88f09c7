"""The words a workflow may use: its declared attributes and events, checked both ways.

At validation, every trigger and clock event must be declared under `events:` (so
`agreement.fulfiled` is a typo, not a transition that silently never fires) and every guard may
read only declared fields (`engine.guard_types`). At run time, a declared field that arrives with
the wrong type or outside its enum is refused as `schema_invalid` with the field named, instead
of surfacing later as a guard that failed for an obscure reason. Undeclared extra fields are
accepted and ignored: intake systems may send more than a workflow reads.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from difflib import get_close_matches

from engine.problems import Problem
from engine.yaml_source import Locator, Path_
from schemas.workflow import FieldSpec, WorkflowSpec

BUILT_IN_EVENTS = frozenset(
    {"case.reported", "case.migrated", "sla.breached", "sla.warning", "sla.timed_out"}
)
"""Event types the engine defines itself; a workflow declares its own events only."""


def did_you_mean(name: str, known: list[str] | tuple[str, ...] | set[str]) -> str:
    """` (did you mean 'x'?)` for a near name, else ''."""
    near = get_close_matches(name, sorted(known), n=1, cutoff=0.6)
    return f" (did you mean {near[0]!r}?)" if near else ""


def used_events(spec: WorkflowSpec) -> Iterator[tuple[Path_, str]]:
    """Every event name the workflow reacts to, with where it is written."""
    for i, tr in enumerate(spec.transitions):
        yield ("transitions", i, "trigger"), tr.trigger
    for kind in ("pause", "resume", "extend"):
        for i, name in enumerate(getattr(spec.clock, kind)):
            yield ("clock", kind, i), name


def vocabulary_problems(spec: WorkflowSpec, doc: Locator) -> Iterator[Problem]:
    """Undeclared events, built-in names redeclared, and field declarations that contradict
    themselves (an enum of the wrong type)."""
    used = [(at, name) for at, name in used_events(spec) if name not in BUILT_IN_EVENTS]
    if not spec.events and used:
        names = ", ".join(dict.fromkeys(name for _, name in used))
        yield doc.problem_at(
            (),
            f"the workflow declares no `events:`; declare every event it receives ({names}), "
            "with the payload fields its guards read",
        )
    elif spec.events:
        for at, name in used:
            if name not in spec.events:
                yield doc.problem_at(
                    at,
                    f"{name!r} is not a declared event{did_you_mean(name, set(spec.events))}; "
                    "declare it under `events:` or fix the name",
                )
    for name in spec.events:
        if name in BUILT_IN_EVENTS:
            yield doc.problem_at(
                ("events", name),
                f"{name!r} is built in and cannot be declared"
                + ("; declare its fields under `attributes:`" if name == "case.reported" else ""),
                key=True,
            )
    for field_name, field in spec.attributes.items():
        yield from _field_problems(doc, ("attributes", field_name), field)
    for event_name, event in spec.events.items():
        for field_name, field in event.payload.items():
            yield from _field_problems(doc, ("events", event_name, "payload", field_name), field)


def _field_problems(doc: Locator, at: Path_, field: FieldSpec) -> Iterator[Problem]:
    if field.enum is None:
        return
    wanted = {"string": str, "int": int}.get(field.type)
    if wanted is None:
        yield doc.problem_at(
            (*at, "enum"), f"enum is for string and int fields, not {field.type} ones"
        )
    elif not all(isinstance(v, wanted) for v in field.enum):
        yield doc.problem_at(
            (*at, "enum"), f"enum values of a {field.type} field must be {field.type}s"
        )
    if len(set(field.enum)) != len(field.enum):
        yield doc.problem_at((*at, "enum"), "enum lists a value twice")


def value_problem(name: str, field: FieldSpec, value: object) -> str | None:
    """Why `value` does not fit the declared field, or None."""
    kind = field.type
    if kind == "string":
        ok = isinstance(value, str)
    elif kind == "int":
        ok = isinstance(value, int) and not isinstance(value, bool)
    elif kind == "number":
        ok = isinstance(value, int | float) and not isinstance(value, bool)
        ok = ok and math.isfinite(value)  # type: ignore[arg-type]
    elif kind == "bool":
        ok = isinstance(value, bool)
    else:
        ok = isinstance(value, str) and _is_instant(value)
    if not ok:
        expected = "an RFC 3339 time with an offset" if kind == "timestamp" else f"a {kind}"
        return f"{name}: expected {expected}, got {value!r}"[:300]
    if field.enum is not None and value not in field.enum:
        return f"{name}: {value!r} is not one of {', '.join(map(repr, field.enum))}"[:300]
    return None


def fields_problem(
    where: str, declared: Mapping[str, FieldSpec], values: Mapping[str, object]
) -> str | None:
    """The first declared field of `values` that is missing (when required) or does not fit."""
    for name, field in declared.items():
        if name not in values:
            if field.required:
                return f"{where}.{name}: required field missing"
            continue
        problem = value_problem(f"{where}.{name}", field, values[name])
        if problem is not None:
            return problem
    return None


_RFC3339 = re.compile(
    r"^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d{1,9})?([Zz]|[+-]\d{2}:\d{2})$"
)
"""What CEL's `timestamp()` also reads: seconds and an offset are required."""


def _is_instant(text: str) -> bool:
    if not _RFC3339.match(text):
        return False
    try:
        return datetime.fromisoformat(text.replace("z", "Z")).tzinfo is not None
    except ValueError:
        return False


def with_instants(values: Mapping[str, object], names: frozenset[str]) -> Mapping[str, object]:
    """`values` with its declared timestamp fields as UTC datetimes, so a guard compares them
    with `now` or `case.opened_at` as CEL timestamps (as text they would not compare)."""
    found = [n for n in names if isinstance(values.get(n), str)]
    if not found:
        return values
    converted = dict(values)
    for name in found:
        text = converted[name]
        assert isinstance(text, str)
        if _is_instant(text):
            converted[name] = datetime.fromisoformat(text.replace("z", "Z")).astimezone(UTC)
    return converted
