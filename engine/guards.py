"""Guard expressions in CEL, compiled once per workflow and evaluated per event.

CEL (the Common Expression Language, via the `common-expression-language` package) is
side-effect free, cannot loop forever and cannot reach the host: the properties a guard written
by a workflow author needs. Python `eval` has none of them and is never used. What one
evaluation may cost is bounded too: pathological guards are refused when compiled, oversized
inputs when evaluated (`engine.guard_cost`).
"""

from __future__ import annotations

import marshal
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import cel

from engine.guard_cost import guard_cost_problem, input_problem

GUARD_VARIABLES = frozenset({"event", "case", "now"})
"""What a guard may read: the event being applied, the case record, and the domain time."""

SUPPORTED_FUNCTIONS = frozenset(
    {
        "size", "startsWith", "endsWith", "contains", "matches", "int", "uint", "double",
        "string", "bytes", "timestamp", "duration", "type", "dyn", "getFullYear", "getMonth",
        "getDayOfWeek", "getHours", "exists", "exists_one", "all", "map", "filter", "has",
    }
)  # fmt: skip
"""Functions this CEL implementation evaluates (probed); anything else fails only at run time."""

_IDENTIFIER = re.compile(r"[A-Za-z]\w*")  # operators are named like `_+_`, `!_`, `@in`
_MACRO_BINDING = re.compile(r"\.\s*(?:all|exists|exists_one|map|filter)\s*\(\s*([A-Za-z_]\w*)\s*,")


class GuardError(ValueError):
    """A guard that cannot be compiled or refers to names it cannot read."""


_FIELD_USE = re.compile(r"\b(event|case|message)\s*\.\s*([A-Za-z_]\w*)")
_WHOLE_USE = re.compile(r"\b(event|case|message)\b(?!\s*\.)")


@dataclass(frozen=True, slots=True)
class Guard:
    """A compiled CEL program, its source, and which parts of the context it reads.

    Handing CEL only the fields a guard reads matters: converting the whole context (nested
    dicts, timestamps) into CEL values costs ~20 µs per evaluation, most of a guard's price.
    Even a small input costs ~10 µs (the extension builds its environment on every call), so a
    guard also remembers its results: CEL is deterministic and side-effect free, and guards read
    few, low-cardinality fields (a category, a tier, a flag), so the same input comes back
    again and again. Only small inputs of plain values are remembered (`memo_key`), and only
    results, never errors: an error is raised afresh on every evaluation, as before. The cost
    bounds hold as before: a result is computed, and stored, only after `input_problem`.
    """

    source: str
    program: cel.Program
    reads: dict[str, frozenset[str] | None]
    """Top-level variable → the fields read (None: the whole value)."""
    results: dict[bytes, bool] = field(default_factory=dict, compare=False, repr=False)
    """Results by `memo_key` of the input; empty, and left empty, for guards that read `now`
    (it changes with every event)."""

    def evaluate(self, context: dict[str, Any]) -> bool:
        """True only when the expression yields exactly `true`.

        A runtime error (a missing payload field, a type mismatch) is raised as `GuardError`, so
        the engine can reject the event with the reason instead of guessing. The instants read
        are converted to UTC here, not when the context is built: most guards read none.
        """
        narrowed: dict[str, Any] = {}
        for name, fields in self.reads.items():
            value = context.get(name)
            if isinstance(value, dict):
                names = value.keys() if fields is None else fields
                value = {f: _in_utc(value[f]) for f in names if f in value}
            narrowed[name] = _in_utc(value)
        key = memo_key(narrowed) if "now" not in self.reads else None
        if key is None:
            return self._execute(narrowed)
        known = self.results.get(key)
        if known is None:
            if len(self.results) >= MEMO_ENTRIES:
                self.results.clear()
            known = self.results[key] = self._execute(narrowed)
        return known

    def _execute(self, narrowed: dict[str, Any]) -> bool:
        too_large = input_problem(narrowed)
        if too_large is not None:  # bounds the cost of the evaluation (see engine.guard_cost)
            raise GuardError(f"input too large for a guard: {too_large}")
        try:
            result = self.program.execute(narrowed)
        except Exception as err:  # the CEL extension raises several builtin types
            raise GuardError(str(err)) from err
        return result is True


def _in_utc(value: Any) -> Any:
    """CEL converts only fixed-offset datetimes (not zoneinfo ones) into timestamps."""
    return value.astimezone(UTC) if isinstance(value, datetime) else value


MEMO_ENTRIES = 1024
"""Results one guard remembers; when full it forgets them all (bounded memory, no LRU upkeep)."""

MEMO_BYTES = 512
"""The largest key remembered: guards read a few short fields, a larger input is not worth it."""


def memo_key(value: Any) -> bytes | None:
    """Bytes equal only for inputs CEL cannot tell apart, or None (not worth remembering).

    `marshal` (format 2, without back-references) writes exact types and map entries in order:
    `True` is not `1`, `-0.0` not `0.0` (equal in Python, not in CEL), and it refuses subclasses
    and other kinds of values, datetimes among them: those inputs are simply not remembered.
    """
    try:
        key = marshal.dumps(value, 2)
    except ValueError:  # unmarshallable, or nested too deeply
        return None
    return key if len(key) <= MEMO_BYTES else None


def compile_guard(source: str, variables: frozenset[str] = GUARD_VARIABLES) -> Guard:
    """Compile `source`, refusing syntax errors, unknown variables and unsupported functions
    (`variables`: what the expression may read; a channel rule reads `message`)."""
    try:
        program = cel.compile(source)
    except Exception as err:  # ValueError on syntax errors; be defensive about the extension
        raise GuardError(_first_line(str(err))) from err
    bound = set(_MACRO_BINDING.findall(source))
    unknown = sorted(set(program.variables()) - variables - bound)
    if unknown:
        raise GuardError(
            f"unknown name(s) {', '.join(unknown)}; "
            f"{'a guard' if variables is GUARD_VARIABLES else 'a rule'} may read only "
            + ", ".join(sorted(variables))
        )
    unsupported = sorted(
        f for f in program.functions() if _IDENTIFIER.fullmatch(f) and f not in SUPPORTED_FUNCTIONS
    )
    if unsupported:
        raise GuardError(f"unsupported function(s) {', '.join(unsupported)}")
    too_costly = guard_cost_problem(source)
    if too_costly is not None:
        raise GuardError(too_costly)
    return Guard(source, program, _reads(source, program, variables))


def _reads(
    source: str, program: cel.Program, variables: frozenset[str]
) -> dict[str, frozenset[str] | None]:
    used = set(program.variables()) & variables
    whole = {m.group(1) for m in _WHOLE_USE.finditer(source)}
    fields: dict[str, set[str]] = {}
    for match in _FIELD_USE.finditer(source):
        fields.setdefault(match.group(1), set()).add(match.group(2))
    return {
        name: None if name in whole or name not in fields else frozenset(fields[name])
        for name in sorted(used)
    }


def _first_line(message: str) -> str:
    return " ".join(message.split("\n")[:1]).strip() or "invalid CEL expression"
