"""Shape errors (pydantic) as positioned problems, and a pruned spec so meaning is checked too.

Authors fix a file faster when they see all of its problems at once. A shape error used to stop
validation, so a file with six mistakes reported one. Here the parts pydantic refused are cut
out (a state's `sla`, one transition, one attribute) and the rest is validated again, so the
meaning checks still run on everything that *is* well-formed. Problems found on the pruned spec
are reported at the positions of the original document (`Located` maps list indexes back).
"""

from __future__ import annotations

import copy
import re
import types
import typing
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, ValidationError

from engine.problems import Problem
from engine.vocabulary import did_you_mean
from engine.yaml_source import Path_, SourceDoc
from schemas.workflow import WorkflowSpec

MAX_PRUNING_ROUNDS = 8

_FRIENDLY_MESSAGES = {
    "string_pattern_mismatch": "a name must start with a letter and use only letters, digits, "
    "'_', '.' and '-'",
}
_MODEL_NAME = re.compile(r" or instance of \w+")
_LIST_SECTIONS = {"transitions": 2, "routing": 2, "tiers": 2, "sources": 2, "clock": 3}
"""List sections, and the depth of one item's path (`clock.pause.0` is three deep)."""
_ENTRY_DEPTH = {"states": 3, "attributes": 2, "events": 3}
_DEFAULTS: dict[str, Any] = {"name": "unnamed", "version": 1}


@dataclass
class Located:
    """A `SourceDoc` view in which list items removed by pruning keep their original index."""

    doc: SourceDoc
    kept: dict[Path_, list[int]] = field(default_factory=dict)
    """List path → original index of each item that is left."""
    removed_names: set[str] = field(default_factory=set)
    damaged: set[Path_] = field(default_factory=set)
    """Entries (`states.closed`) that lost a key: what is said about them now is an echo."""
    echoes: set[Problem] = field(default_factory=set)

    @property
    def pruned(self) -> bool:
        return bool(self.kept or self.removed_names)

    def problem_at(self, loc: Path_, message: str, *, key: bool = False) -> Problem:
        problem = self.doc.problem_at(self.original(loc), message, key=key)
        if any(loc[: len(entry)] == entry for entry in self.damaged):
            self.echoes.add(problem)
        return problem

    def original(self, loc: Path_) -> Path_:
        for list_path, kept in self.kept.items():
            n = len(list_path)
            if loc[:n] == list_path and len(loc) > n and isinstance(loc[n], int):
                index = loc[n]
                if isinstance(index, int) and index < len(kept):
                    loc = (*loc[:n], kept[index], *loc[n + 1 :])
        return loc


def checked_shape(doc: SourceDoc) -> tuple[WorkflowSpec | None, list[Problem], Located]:
    """The spec (pruned if it had to be), the shape problems, and the position view."""
    located = Located(doc)
    try:
        return WorkflowSpec.model_validate(doc.data), [], located
    except ValidationError as err:
        problems = schema_problems(doc, err)
        first = err
    data = copy.deepcopy(doc.data)
    error: ValidationError = first
    for _ in range(MAX_PRUNING_ROUNDS):
        _prune(data, error, located)
        try:
            return WorkflowSpec.model_validate(data), problems, located
        except ValidationError as again:
            error = again
    return None, problems, located


def _prune(data: dict[str, Any], err: ValidationError, located: Located) -> None:
    removals: set[Path_] = set()
    for error in err.errors():
        known = _known(data, error["loc"])
        loc = tuple(p for p in error["loc"] if isinstance(p, int) or p in known)
        if not loc:
            continue
        section = loc[0]
        if section in _LIST_SECTIONS and len(loc) >= _LIST_SECTIONS[section] - 1:
            depth = _LIST_SECTIONS[section]
            removals.add(loc[:depth] if len(loc) >= depth else loc)
        elif section in _ENTRY_DEPTH:
            depth = _ENTRY_DEPTH[section]
            if section == "events" and len(loc) > 3 and loc[2] == "payload":
                depth = 4
            removals.add(loc[: min(depth, len(loc))])
        else:
            removals.add(loc[:1])
    for path in sorted(removals, key=_removal_order, reverse=True):
        _remove(data, path, located)


def _removal_order(path: Path_) -> tuple[int, list[tuple[int, int | str]]]:
    """Deepest first, and list items from the highest index down (10 before 2), so that one
    removal never shifts the item another is about to remove."""
    return len(path), [(0, p) if isinstance(p, int) else (1, p) for p in path]


def _known(data: Any, raw: tuple[Any, ...]) -> set[Any]:
    """The parts of a pydantic location that are real keys (not union labels like '[key]')."""
    keys: set[Any] = set()
    node = data
    for part in raw:
        if isinstance(node, dict) and part in node:
            keys.add(part)
            node = node[part]
        elif isinstance(node, list) and isinstance(part, int) and part < len(node):
            node = node[part]
    return keys


def _remove(data: dict[str, Any], path: Path_, located: Located) -> None:
    parent: Any = data
    for part in path[:-1]:
        try:
            parent = parent[part]
        except (KeyError, IndexError, TypeError):
            return
    last = path[-1]
    if isinstance(parent, list) and isinstance(last, int) and last < len(parent):
        list_path = path[:-1]
        kept = located.kept.setdefault(list_path, list(range(len(parent))))
        del parent[last]
        del kept[last]
        return
    if isinstance(parent, dict) and last in parent:
        if len(path) == 1 and last in _DEFAULTS:
            parent[last] = _DEFAULTS[last]
        elif len(path) == 1 and last in _LIST_SECTIONS:
            parent[last] = [] if last != "clock" else {}
        else:
            del parent[last]
        located.removed_names.add(str(last) if len(path) > 1 else "")
        if len(path) > 2 and path[0] in _ENTRY_DEPTH:
            located.damaged.add(path[:2])


def schema_problems(
    doc: SourceDoc, err: ValidationError, root: type[BaseModel] = WorkflowSpec
) -> list[Problem]:
    """One problem per place, each on the deepest node it concerns.

    Pydantic reports a value that fits no member of a union once per member (`source` may be
    '*', a name or a list of names); the alternatives at one place are merged into one line,
    and an alternative that went deeper (into a list item) wins over the shallower ones.
    """
    found: list[tuple[Path_, bool, str, str]] = []
    for error in err.errors():
        loc, is_key = _doc_loc(doc, tuple(error["loc"]), missing=error["type"] == "missing")
        found.append((loc, is_key, error["type"], _message(error, loc, root)))
    deepest = [
        f for f in found
        if f[2] in ("missing", "extra_forbidden")
        or not any(g[0][: len(f[0])] == f[0] and len(g[0]) > len(f[0]) for g in found)
    ]  # fmt: skip
    merged: dict[tuple[Path_, bool], list[str]] = {}
    problems: list[Problem] = []
    for loc, is_key, kind, message in deepest:
        if kind in ("missing", "extra_forbidden"):
            target = loc[:-1] if kind == "missing" else loc
            problems.append(doc.problem_at(target, message, key=kind == "extra_forbidden"))
            continue
        messages = merged.setdefault((loc, is_key), [])
        if message not in messages:
            messages.append(message)
    for (loc, is_key), messages in merged.items():
        where = ".".join(str(p) for p in loc) or "document"
        problems.append(doc.problem_at(loc, f"{where}: {'; or '.join(messages)}", key=is_key))
    return problems


def _doc_loc(doc: SourceDoc, raw: tuple[Any, ...], *, missing: bool) -> tuple[Path_, bool]:
    """Pydantic's location without its union labels ('constrained-str', '[key]', …)."""
    loc: Path_ = ()
    is_key = False
    for i, part in enumerate(raw):
        if part == "[key]":
            is_key = True
            continue
        candidate = (*loc, part)
        if candidate in doc.values or candidate in doc.keys or (missing and i == len(raw) - 1):
            loc = candidate  # a missing key is kept last: the caller points at its parent
    return loc, is_key


def _message(error: Any, loc: Path_, root: type[BaseModel]) -> str:
    kind = error["type"]
    if kind == "extra_forbidden":
        allowed = _allowed_keys(loc[:-1], root)
        hint = did_you_mean(str(loc[-1]), allowed) if allowed else ""
        return f"unknown key {loc[-1]!r}{hint}"
    if kind == "missing":
        parent = ".".join(str(p) for p in loc[:-1])
        return f"missing required key {loc[-1]!r}" + (f" in {parent}" if parent else "")
    given = error.get("input")
    if kind in ("int_type", "float_type", "bool_type") and isinstance(given, str):
        wanted = {
            "int_type": "a whole number", "float_type": "a number", "bool_type": "true or false"
        }  # fmt: skip
        digits = given.strip().lstrip("+-").replace(".", "", 1)
        quoted = digits.isdigit() or given in ("true", "false")
        return f"{wanted[kind]}, not the text {given!r}" + (
            " (write it without quotes)" if quoted else ""
        )
    if loc and loc[-1] == "warn_at":
        return f"warn_at is a fraction of the limit, e.g. 0.67 (got {given!r})"
    if kind == "finite_number":
        return "a finite number (not NaN or infinity)"
    message = _FRIENDLY_MESSAGES.get(kind, str(error["msg"]))
    return _MODEL_NAME.sub("", message.removeprefix("Value error, "))


def _allowed_keys(loc: Path_, root: type[BaseModel]) -> list[str]:
    """The keys the model accepts at `loc` (a mapping in the document), for "did you mean"."""
    model: Any = root
    for part in loc:
        model = _inner(model, part)
        if model is None:
            return []
    if not _is_model(model):
        return []
    return [info.alias or name for name, info in model.model_fields.items()]


def _inner(annotation: Any, part: str | int) -> Any:
    if _is_model(annotation):
        info = annotation.model_fields.get(part) if isinstance(part, str) else None
        return _unwrap_optional(info.annotation) if info else None
    origin = typing.get_origin(annotation)
    if origin is dict:
        return _unwrap_optional(typing.get_args(annotation)[1])
    if origin is list:
        return _unwrap_optional(typing.get_args(annotation)[0])
    return None


def _unwrap_optional(annotation: Any) -> Any:
    args = [a for a in typing.get_args(annotation) if a is not type(None)]
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        models = [a for a in args if _is_model(a) or typing.get_origin(a) in (dict, list)]
        return models[0] if models else None
    if typing.get_origin(annotation) is typing.Annotated:
        return _unwrap_optional(args[0])
    return annotation


def _is_model(annotation: Any) -> bool:
    return isinstance(annotation, type) and issubclass(annotation, BaseModel)
