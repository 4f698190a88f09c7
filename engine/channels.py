"""Channel files compiled into what the intake interpreter runs: a parser of the channel's native
messages and, per message kind, the canonical events it becomes.

The parser is a pydantic model built from the file's field declarations, so native messages get
the same checks, error paths and JSON Schema as hand-written models had; the rules (`when`,
workflow choice) are CEL programs compiled once. Loading reads `<workflows>/channels/*.yaml`
and refuses the whole folder with every positioned problem, like the workflow registry.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, tzinfo
from pathlib import Path
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo

from pydantic import BaseModel, Field, TypeAdapter, create_model

from engine.guards import Guard, compile_guard
from schemas.channel import ChannelSpec, EmitSpec, FieldDecl, KindSpec, TypeFromField
from schemas.intake.common import Category, Code, ExternalId, FreeText, Native, Person

_PLACEHOLDER = re.compile(r"\{([^{}]*)\}")

CHANNELS_FOLDER = "channels"
"""Channel files live in this sub-folder of the workflows folder."""

MESSAGE_VARIABLES = frozenset({"message"})
"""What a channel rule may read: the native message's fields (parties excepted)."""

ShortText = Annotated[str, Field(max_length=200)]

_BASE_TYPES: dict[str, Any] = {
    "id": ExternalId, "code": Code, "category": Category, "string": ShortText,
    "text": FreeText, "int": int, "bool": bool, "timestamp": datetime, "person": Person,
}  # fmt: skip


@dataclass(frozen=True, slots=True)
class CompiledEmit:
    """One canonical event of a kind, ready to build (see `engine.intake`)."""

    spec: EmitSpec
    when: Guard | None
    rules: tuple[tuple[Guard | None, str], ...]
    """For `case.reported`: (condition, workflow) in order; the first that holds wins."""

    def event_type(self, message: Mapping[str, Any]) -> str:
        chosen = self.spec.type
        if isinstance(chosen, TypeFromField):
            return chosen.map[str(message[chosen.field])]
        if "{" in chosen:
            name = chosen[chosen.index("{") + 1 : chosen.index("}")]
            return chosen.replace("{" + name + "}", str(message[name]))
        return chosen


@dataclass(frozen=True, slots=True)
class CompiledKind:
    spec: KindSpec
    emits: tuple[CompiledEmit, ...]
    readable: frozenset[str]
    """Fields a rule may read (everything but parties)."""


@dataclass(frozen=True, slots=True)
class Channel:
    """One compiled channel file."""

    name: str
    spec: ChannelSpec
    zone: tzinfo
    parser: TypeAdapter[Any]
    kinds: Mapping[str, CompiledKind]
    path: str = ""


def compile_channel(spec: ChannelSpec, path: str = "") -> Channel:
    """A checked spec (`engine.channel_checks`) → the parser and the compiled rules."""
    models = [_native_model(spec.channel, kind, decl) for kind, decl in spec.kinds.items()]
    union: Any = models[0]
    if len(models) > 1:
        union = Annotated[_union(models), Field(discriminator="kind")]
    kinds = {kind: _compile_kind(decl) for kind, decl in spec.kinds.items()}
    return Channel(spec.channel, spec, ZoneInfo(spec.timezone), TypeAdapter(union), kinds, path)


def _union(models: list[type[BaseModel]]) -> Any:
    union: Any = models[0]
    for model in models[1:]:
        union = union | model
    return union


def _compile_kind(kind: KindSpec) -> CompiledKind:
    emits = []
    for emit in kind.emits:
        rules: list[tuple[Guard | None, str]] = []
        if isinstance(emit.workflow, str):
            rules.append((None, emit.workflow))
        elif emit.workflow is not None:
            rules.extend((_rule(r.when), r.use) for r in emit.workflow)
        emits.append(CompiledEmit(emit, _rule(emit.when), tuple(rules)))
    readable = frozenset(n for n, f in kind.fields.items() if f.type not in ("person", "persons"))
    return CompiledKind(kind, tuple(emits), readable)


def _rule(source: str | None) -> Guard | None:
    return None if source is None else compile_guard(source, MESSAGE_VARIABLES)


def camel(name: str) -> str:
    return "".join(part[:1].upper() + part[1:] for part in name.replace("-", "_").split("_"))


def _native_model(channel: str, kind: str, decl: KindSpec) -> type[BaseModel]:
    fields: dict[str, Any] = {"kind": (Literal[kind], ...)}
    for name, field in decl.fields.items():
        fields[name] = _annotation(field)
    model: type[BaseModel] = create_model(
        camel(channel) + camel(kind),
        __base__=Native,
        __doc__=decl.description or f"A '{kind}' message of the {channel} channel.",
        **fields,
    )
    return model


def _annotation(field: FieldDecl) -> tuple[Any, Any]:
    """The pydantic annotation and default of one declared field."""
    kind: Any = _BASE_TYPES.get(field.type)
    constraints: dict[str, Any] = {"description": field.description}
    if field.enum is not None:
        kind = Literal[tuple(field.enum)]
    if field.type == "int":
        constraints.update(ge=field.minimum, le=field.maximum)
    if field.type == "persons":
        return list[Person], Field(default_factory=list, max_length=field.max_items,
                                   **constraints)  # fmt: skip
    if field.is_required:
        return kind, Field(..., **constraints)
    default = field.default
    if default is None and field.type == "text":
        default = ""
    if default is None:
        kind = kind | None
    return kind, Field(default=default, **constraints)


# -- loading ------------------------------------------------------------------------------------


def channel_files(folder: Path) -> list[Path]:
    where = folder / CHANNELS_FOLDER
    if not where.is_dir():
        return []
    return sorted(p for p in where.iterdir() if p.suffix in (".yaml", ".yml"))


def channel_names(folder: Path) -> list[str]:
    """The channels of a workflows folder, by file name (a file must be named after its
    channel): what the topic tools need, without compiling anything."""
    return [p.stem for p in channel_files(folder)]


def expanded_types(emit: EmitSpec, kind: KindSpec) -> list[str]:
    """Every event type an emit can produce (templates and maps expanded over the enum)."""
    chosen = emit.type
    if isinstance(chosen, TypeFromField):
        return sorted(set(chosen.map.values()))
    names = _PLACEHOLDER.findall(chosen)
    if not names:
        return [chosen]
    field = kind.fields.get(names[0])
    values = field.enum if field is not None and field.enum is not None else []
    return [chosen.replace("{" + names[0] + "}", str(v)) for v in values]
