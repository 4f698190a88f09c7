"""Bounds on what one CEL guard evaluation may cost, checked before and during evaluation.

CEL cannot loop forever, but its comprehension macros (`all`, `exists`, `exists_one`, `filter`,
`map`) run their body once per element, nest, and in the implementation we use
(`common-expression-language` 0.10) copy more than one would guess. Measured here on
256-element lists: reading `event.payload.l` copies the list (~11 µs) every time the body
runs; `map` and `filter` copy their whole accumulator on each element, so `l.map(x, l)` over 1000
elements took 27 s; `l.exists(x, l.exists(y, size(l + l) == 0))` over 256 took 3.5 s. A guard
runs inside the engine's transaction for every event it concerns, so either the workflow author
or whoever writes a payload could stall a partition. Two bounds close that:

- **Static** (at `validate`, see `guard_cost_problem`): at most `MAX_COMPREHENSIONS` macros,
  nested at most `MAX_COMPREHENSION_DEPTH` deep; no `map` (a guard is a boolean: `exists`/`all`
  say the same without building a list); `filter` only outside other comprehensions; and an
  estimated cost within `MAX_GUARD_COST` steps, assuming every collection holds
  `MAX_GUARD_INPUT_ITEMS` elements. The estimate charges each token N^depth (it runs once per
  iteration of each enclosing comprehension) and each read of `event` or `case` N^(depth+1)
  (it may copy a whole collection each time).
- **Runtime** (see `input_problem`): the values handed to a guard hold at most
  `MAX_GUARD_INPUT_ITEMS` list elements and map entries in all, at most
  `MAX_GUARD_INPUT_CHARS` characters of text, nested at most `MAX_GUARD_INPUT_DEPTH` deep —
  so the assumption of the estimate holds. A larger input makes the guard fail with a reason
  (the event is refused as `guard_failed`), it is never evaluated.

With these limits the costliest guards we could write that still pass validation take tenths
of a second on the largest input allowed (14 reads of a 240-element list inside one
comprehension; a 1000-character regular expression matched against each of 200 strings); the
shipped guards take microseconds. `fengqiao bench core` times those worst cases against a
plain guard (`consumers/bench/limits.py`); `tests/unit/test_guard_cost.py` checks that they
pass, stay within the estimate and evaluate.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

MAX_COMPREHENSIONS = 4
MAX_COMPREHENSION_DEPTH = 2
MAX_GUARD_INPUT_ITEMS = 256
MAX_GUARD_INPUT_CHARS = 64 * 1024
MAX_GUARD_INPUT_DEPTH = 16
MAX_GUARD_COST = 1_000_000

COMPREHENSIONS = frozenset({"all", "exists", "exists_one", "filter", "map"})
INPUTS = frozenset({"event", "case"})
"""Top-level names whose fields may be collections from the input (`now` is a timestamp)."""

_TOKEN = re.compile(
    r"""
    (?P<space>\s+|//[^\n]*)
  | (?P<string>(?:[rR][bB]?|[bB][rR]?)?(?:'''|\"\"\"|'|"))
  | (?P<ident>[A-Za-z_][A-Za-z0-9_]*)
  | (?P<number>(?:0x[0-9A-Fa-f]+|\d+(?:\.\d*)?(?:[eE][+-]?\d+)?|\.\d+(?:[eE][+-]?\d+)?)[uU]?)
  | (?P<punct>[()\[\]{}.,?:])
  | (?P<op>&&|\|\||==|!=|<=|>=|[-+*/%<>!])
    """,
    re.VERBOSE,
)


@dataclass(frozen=True, slots=True)
class _Token:
    kind: str  # ident, string, number, punct, op
    text: str


def _tokens(source: str) -> Iterator[_Token]:
    """CEL tokens, with string literals as one token each; unknown characters are skipped
    (the CEL compiler has refused anything it cannot parse before this runs)."""
    at = 0
    while at < len(source):
        match = _TOKEN.match(source, at)
        if match is None:
            at += 1
            continue
        kind = match.lastgroup or "space"
        if kind == "string":
            end = _string_end(source, match.end(), match.group())
            yield _Token("string", source[at:end])
            at = end
            continue
        if kind != "space":
            yield _Token(kind, match.group())
        at = match.end()


def _string_end(source: str, start: int, opener: str) -> int:
    quote = opener.lstrip("rRbB")
    raw = "r" in opener.lower().removesuffix(quote)
    at = start
    while at < len(source):
        if not raw and source[at] == "\\":
            at += 2
            continue
        if source.startswith(quote, at):
            return at + len(quote)
        at += 1
    return len(source)


def guard_cost_problem(source: str) -> str | None:
    """Why the guard `source` (already compiled by CEL) may cost too much; None if it may not."""
    estimate = _estimate(source)
    if estimate.shape is not None:
        return estimate.shape
    macros = estimate.macros
    if len(macros) > MAX_COMPREHENSIONS:
        return (
            f"{len(macros)} comprehensions ({', '.join(sorted(set(macros)))}); "
            f"a guard may have at most {MAX_COMPREHENSIONS}"
        )
    if estimate.deepest > MAX_COMPREHENSION_DEPTH:
        return (
            f"comprehensions nested {estimate.deepest} deep; at most {MAX_COMPREHENSION_DEPTH} "
            "(each level multiplies the work by the length of a list)"
        )
    if estimate.steps > MAX_GUARD_COST:
        return (
            f"too costly: about {_millions(estimate.steps)} steps when its lists hold "
            f"{MAX_GUARD_INPUT_ITEMS} items, at most {_millions(MAX_GUARD_COST)}; read event "
            "and case fields outside nested comprehensions, or nest fewer"
        )
    return None


def estimated_steps(source: str) -> int:
    """The estimate `guard_cost_problem` holds against `MAX_GUARD_COST`, as a number: how close
    a guard comes to the bound is checked exactly by tests and quoted by `bench core`, where
    its running time on a shared machine cannot be."""
    return _estimate(source).steps


@dataclass(frozen=True, slots=True)
class _Estimate:
    steps: int
    macros: list[str]
    deepest: int
    shape: str | None
    """The first macro refused whatever the sizes (`map`, a nested `filter`), if any."""


def _estimate(source: str) -> _Estimate:
    n = MAX_GUARD_INPUT_ITEMS
    tokens = list(_tokens(source))
    stack: list[str | None] = []  # one entry per open bracket: the macro name, or None
    macros: list[str] = []
    cost = 0
    deepest = 0
    shape: str | None = None
    for i, token in enumerate(tokens):
        depth = sum(1 for entry in stack if entry is not None)
        if token.kind == "punct" and token.text in "([{":
            name = tokens[i - 1].text if i >= 2 and tokens[i - 1].kind == "ident" else ""
            macro = name in COMPREHENSIONS and tokens[i - 2].text == "." and token.text == "("
            if macro:
                shape = shape or _shape_problem(name, depth)
                macros.append(name)
                deepest = max(deepest, depth + 1)
                if name == "filter":
                    cost += n * n  # its accumulator, copied once per element
            stack.append(name if macro else None)
            continue
        if token.kind == "punct" and token.text in ")]}":
            if stack:
                stack.pop()
            continue
        if token.kind == "punct" and token.text in ".,":
            continue
        follows_dot = i > 0 and tokens[i - 1].text == "."
        is_input = token.kind == "ident" and token.text in INPUTS and not follows_dot
        cost += n ** (depth + 1) if is_input else n**depth
    return _Estimate(cost, macros, deepest, shape)


def _shape_problem(macro: str, depth: int) -> str | None:
    if macro == "map":
        return (
            "map() is not allowed in a guard (it builds a list, and a guard only "
            "needs a boolean: use exists() or all())"
        )
    if macro == "filter" and depth > 0:
        return "filter() inside another comprehension is too costly; use exists()"
    return None


def _millions(steps: int) -> str:
    return f"{steps / 1_000_000:.3g} million"


def input_problem(values: dict[str, Any]) -> str | None:
    """Why `values` (what a guard is about to read) are too large for it; None if they are not.

    Counts list elements and map entries at every level, and characters of text (keys too);
    stops at the first limit exceeded, so a huge input costs no more to refuse than a small one
    to accept. Runs before every evaluation: scalars are counted in place, not stacked.
    """
    items = chars = 0
    todo: list[tuple[Any, int]] = [(values, 0)]
    while todo:
        container, depth = todo.pop()
        if depth > MAX_GUARD_INPUT_DEPTH:
            return f"nested deeper than {MAX_GUARD_INPUT_DEPTH} levels"
        items += len(container)
        if items > MAX_GUARD_INPUT_ITEMS + len(values) * (depth == 0):
            return f"more than {MAX_GUARD_INPUT_ITEMS} list items and map entries"
        if isinstance(container, dict):
            chars += sum(len(key) for key in container if type(key) is str)
            children = container.values()
        else:
            children = container
        for value in children:
            kind = type(value)
            if kind is str or kind is bytes:
                chars += len(value)
            elif kind is dict or kind is list or kind is tuple:
                todo.append((value, depth + 1))
            elif isinstance(value, str | bytes):  # subclasses: rare, so checked last
                chars += len(value)
            elif isinstance(value, dict | list | tuple):
                todo.append((value, depth + 1))
        if chars > MAX_GUARD_INPUT_CHARS:
            return f"more than {MAX_GUARD_INPUT_CHARS} characters of text"
    return None
