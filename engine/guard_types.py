"""Check a guard against the workflow's declared vocabulary before any case meets it.

The CEL runtime (`engine.guards`) only finds out that `case.attr.category` names nothing when a
case arrives, and then refuses every case. Here the guard is parsed with cel-python's parser
(the same CEL grammar, with a walkable tree) and every field it reads is looked up in what the
workflow declares: the built-in members of `case` and `event`, the `attributes`, and the payload
fields of the event the transition fires on. Literals compared with a declared field must have
its type and, for an enum, be one of its values.

This is a checker for the names and literal types of the data a guard reads, not CEL's full type
checker: expressions computed from several fields (`a + b > 3`) are left to the runtime.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from difflib import get_close_matches

from celpy.celparser import CELParser
from lark import Token, Tree

from schemas.workflow import FieldSpec, WorkflowSpec

REPORTED = "case.reported"


@dataclass(frozen=True, slots=True)
class Leaf:
    """A scalar the guard may read: its type and, for enums, the values it can take."""

    type: str
    enum: tuple[str | int, ...] | None = None


@dataclass(frozen=True, slots=True)
class Struct:
    """A value with known members (`case`, `case.attrs`, `event.payload`)."""

    path: str
    members: Mapping[str, Leaf | Struct]
    declare_hint: str = ""
    """Where the author declares a missing member, when they can."""
    open_members: bool = field(default=False)
    """Members not listed are allowed (no vocabulary to check them against)."""


Scope = Mapping[str, Leaf | Struct]


def _leaf(spec: FieldSpec) -> Leaf:
    return Leaf(spec.type, tuple(spec.enum) if spec.enum else None)


def _attributes(spec: WorkflowSpec, path: str) -> Struct:
    members = {name: _leaf(f) for name, f in spec.attributes.items()}
    return Struct(path, members, "declare it under `attributes:`")


def guard_scope(spec: WorkflowSpec, trigger: str | None) -> Scope:
    """What a guard may read: on a transition fired by `trigger`, or in routing (None)."""
    timestamp = Leaf("timestamp")
    case = Struct(
        "case",
        {
            "state": Leaf("string", tuple(spec.states)),
            "tier": Leaf("string", ("", *spec.tiers)),
            "workflow": Leaf("string"),
            "attrs": _attributes(spec, "case.attrs"),
            "escalations": Leaf("int"),
            "opened_at": timestamp,
            "entered_at": timestamp,
        },
    )
    payload: Struct
    if trigger is None:
        payload = Struct(
            "event.payload",
            {
                "workflow": Leaf("string"),
                "attributes": _attributes(spec, "event.payload.attributes"),
            },
            open_members=True,  # case.reported may carry more (the intake's own fields)
        )
    else:
        declared = spec.events.get(trigger)
        payload = Struct(
            "event.payload",
            {name: _leaf(f) for name, f in (declared.payload if declared else {}).items()},
            f"declare it under `events: {trigger}: payload:`",
        )
    event = Struct(
        "event",
        {
            "type": Leaf("string"),
            "source": Leaf("string", tuple(spec.sources)),
            "occurred_at": timestamp,
            "payload": payload,
        },
    )
    return {"case": case, "event": event, "now": timestamp}


def guard_type_problems(source: str, scope: Scope) -> list[str]:
    """Every misuse of the vocabulary in `source`, as messages; [] when it reads only what exists.

    A guard the parser cannot read is left to `engine.guards.compile_guard`, which reports the
    syntax error in the runtime's own words.
    """
    try:
        tree = _PARSER.parse(source)
    except Exception:  # CELParseError, and lark's own on odd input
        return []
    problems: list[str] = []
    try:
        for message in _walk(tree, scope):
            if message not in problems:
                problems.append(message)
    except (ValueError, RecursionError):  # odd literals, very deep trees: the runtime decides
        return []
    return problems


_PARSER = CELParser()
_WRAPPERS = frozenset(
    {"expr", "conditionalor", "conditionaland", "relation", "addition", "multiplication",
     "unary", "member", "primary", "paren_expr"}
)  # fmt: skip
_RELATIONS = frozenset(
    {"relation_eq", "relation_ne", "relation_lt", "relation_le", "relation_gt", "relation_ge",
     "relation_in"}
)  # fmt: skip
_LITERAL_TYPES = {
    "STRING_LIT": "string", "MLSTRING_LIT": "string", "INT_LIT": "int", "UINT_LIT": "int",
    "FLOAT_LIT": "number", "BOOL_LIT": "bool", "NULL_LIT": "null", "BYTES_LIT": "bytes",
}  # fmt: skip


def _walk(tree: Tree[Token], scope: Scope) -> Iterator[str]:
    if tree.data in ("member_dot", "member_index"):
        chain = _chain(tree)
        if chain is not None:
            yield from _resolve(chain, scope)[1]
            yield from _walk_children_outside_chain(tree, scope)
            return
    operator = tree.children[0] if tree.data == "relation" and len(tree.children) == 2 else None
    if isinstance(operator, Tree) and operator.data in _RELATIONS:
        yield from _compare(operator.data, operator.children[0], tree.children[1], scope)
    for child in tree.children:
        if isinstance(child, Tree):
            yield from _walk(child, scope)


def _walk_children_outside_chain(tree: Tree[Token], scope: Scope) -> Iterator[str]:
    """Index expressions inside a chain (`a[b.c]`) are read too."""
    node: Tree[Token] | None = tree
    while node is not None and node.data in ("member_dot", "member_index", "member"):
        if node.data == "member_index" and len(node.children) > 1:
            index = node.children[1]
            if isinstance(index, Tree) and _string_literal(index) is None:
                yield from _walk(index, scope)
        inner = node.children[0]
        node = inner if isinstance(inner, Tree) else None
        if node is not None and node.data == "member":
            inner_first = node.children[0]
            node = inner_first if isinstance(inner_first, Tree) else None


def _unwrap(tree: Tree[Token]) -> Tree[Token] | Token:
    node: Tree[Token] | Token = tree
    while isinstance(node, Tree) and node.data in _WRAPPERS and len(node.children) == 1:
        node = node.children[0]
    return node


def _chain(tree: Tree[Token]) -> list[str] | None:
    """`case.attrs.category` → ["case", "attrs", "category"]; None when not a plain field path."""
    names: list[str] = []
    node: Tree[Token] | Token = tree
    while True:
        if isinstance(node, Token):
            if node.type != "IDENT":
                return None
            names.append(str(node))
            return names[::-1]
        if node.data == "member_dot" and isinstance(node.children[1], Token):
            names.append(str(node.children[1]))
            node = _unwrap(node.children[0])  # type: ignore[arg-type]
        elif node.data == "member_index" and len(node.children) == 2:
            index = node.children[1]
            key = _string_literal(index) if isinstance(index, Tree) else None
            if key is None:
                return None
            names.append(key)
            node = _unwrap(node.children[0])  # type: ignore[arg-type]
        elif node.data == "ident" and node.children and isinstance(node.children[0], Token):
            node = node.children[0]
        else:
            return None


def _resolve(chain: list[str], scope: Scope) -> tuple[Leaf | Struct | None, list[str]]:
    """The declared type of a field path, or why it names nothing."""
    root = chain[0]
    if root not in scope:
        return None, []  # a macro's bound variable (`exists(i, i.n > 2)`): not ours to check
    current: Leaf | Struct = scope[root]
    for depth, name in enumerate(chain[1:], start=1):
        read = ".".join(chain[: depth + 1])
        if isinstance(current, Leaf):
            where = ".".join(chain[:depth])
            return None, [f"{read}: {where} is a {current.type} and has no member {name!r}"]
        member = current.members.get(name)
        if member is None:
            if current.open_members:
                return None, []
            return None, [_unknown_member(read, current, name)]
        current = member
    return current, []


def _unknown_member(read: str, parent: Struct, name: str) -> str:
    known = sorted(parent.members)
    near = get_close_matches(name, known, n=1, cutoff=0.6)
    message = f"{read}: {parent.path} has no member {name!r}"
    if near:
        message += f" (did you mean {near[0]!r}?)"
    if parent.declare_hint:
        message += f"; {parent.declare_hint}"
    elif known:
        message += f"; it has {', '.join(known)}"
    return message


def _compare(
    operator: str, left_node: Tree[Token] | Token, right_node: Tree[Token] | Token, scope: Scope
) -> Iterator[str]:
    """`relation(relation_eq(LEFT), RIGHT)`: CEL's grammar hangs the left operand under the
    operator and the right one beside it."""
    left = _unwrap(left_node) if isinstance(left_node, Tree) else left_node
    right = _unwrap(right_node) if isinstance(right_node, Tree) else right_node
    sides = [(left, right), (right, left)] if operator != "relation_in" else [(left, right)]
    for field_side, other in sides:
        chain = _chain(field_side) if isinstance(field_side, Tree) else None
        if chain is None and isinstance(field_side, Token) and field_side.type == "IDENT":
            chain = [str(field_side)]
        if chain is None:
            continue
        declared, _ = _resolve(chain, scope)
        if not isinstance(declared, Leaf):
            continue
        literals = _list_literals(other) if operator == "relation_in" else [_literal(other)]
        for literal in literals:
            if literal is not None:
                yield from _literal_problems(".".join(chain), declared, *literal)
        return


def _literal(node: Tree[Token] | Token) -> tuple[str, object] | None:
    if isinstance(node, Tree) and node.data == "literal" and node.children:
        node = node.children[0]
    if isinstance(node, Token) and node.type in _LITERAL_TYPES:
        kind = _LITERAL_TYPES[node.type]
        return kind, _literal_value(kind, str(node))
    return None


def _list_literals(node: Tree[Token] | Token) -> list[tuple[str, object] | None]:
    if not isinstance(node, Tree) or node.data != "list_lit" or not node.children:
        return []
    items = node.children[0]
    if not isinstance(items, Tree):
        return []
    return [_literal(_unwrap(item)) for item in items.children if isinstance(item, Tree)]


def _string_literal(node: Tree[Token]) -> str | None:
    found = _literal(_unwrap(node))
    return found[1] if found and found[0] == "string" and isinstance(found[1], str) else None


def _literal_value(kind: str, text: str) -> object:
    if kind == "string":
        try:
            return ast.literal_eval(text)
        except (ValueError, SyntaxError):
            return text.strip("'\"")
    if kind == "int":
        digits = text.rstrip("uU")
        return int(digits, 16) if digits.lower().lstrip("-").startswith("0x") else int(digits)
    if kind == "bool":
        return text == "true"
    return text


def _literal_problems(read: str, declared: Leaf, kind: str, value: object) -> Iterator[str]:
    if kind == "null":
        return
    if declared.type == "timestamp":
        if kind == "string":
            yield (
                f"{read} is a timestamp, compared with {value!r} (a string); write "
                f"timestamp({value!r})"
            )
        return
    numbers = {"int", "number"}  # CEL compares ints and doubles with each other
    fits = kind == declared.type or (kind in numbers and declared.type in numbers)
    if not fits:
        shown = repr(value) if kind == "string" else str(value)
        yield f"{read} is {_article(declared.type)}, compared with {shown} ({_article(kind)})"
        return
    if declared.enum is not None and value not in declared.enum:
        choices = [str(v) for v in declared.enum]
        near = get_close_matches(str(value), choices, n=1, cutoff=0.6)
        hint = f" (did you mean {near[0]!r}?)" if near else ""
        yield (
            f"{value!r} is not a value of {read}{hint}; it is one of "
            f"{', '.join(repr(v) for v in declared.enum if v != '')}"
        )


def _article(kind: str) -> str:
    return f"an {kind}" if kind[0] in "aeiou" else f"a {kind}"
