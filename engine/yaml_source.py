"""Safe YAML loading that remembers where every value came from.

Why not `yaml.safe_load`: it forgets positions (so schema errors could not point at a line),
silently keeps the last of two duplicate keys, follows YAML 1.1 (`on:` becomes `True`, `09:00`
becomes 540) and lets an alias bomb expand into billions of nodes once something walks the
result. Here the document is composed into nodes with PyYAML's safe loader, checked, and only
then turned into plain Python values with a map from each value's path to its position.
"""

from __future__ import annotations

import re
from bisect import bisect_left
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Protocol

import yaml

from engine.problems import Problem

MAX_FILE_BYTES = 1_000_000
MAX_EXPANDED_NODES = 100_000
MAX_DEPTH = 40

Path_ = tuple[str | int, ...]


class _Loader(yaml.SafeLoader):
    """SafeLoader with YAML 1.2 scalars: only true/false are booleans, no base-60 numbers."""

    def resolve(self, kind: Any, value: Any, implicit: Any) -> Any:
        if kind is yaml.ScalarNode and implicit[0] and _NOT_YAML_12_NUMBER.match(value):
            return "tag:yaml.org,2002:str"
        return super().resolve(kind, value, implicit)  # type: ignore[no-untyped-call]


_Loader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag not in ("tag:yaml.org,2002:bool",)]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
)
_NOT_YAML_12_NUMBER = re.compile(
    r"^[-+]?(?:[0-9][0-9_]*(?::[0-5]?[0-9])+(?:\.[0-9_]*)?"  # base 60: 09:00 is not 540
    r"|0[0-9_]+|0b[01_]+)$"  # YAML 1.1 octal and binary: 010 is not 8
)


class Locator(Protocol):
    """Anything that turns a path in the document into a positioned problem."""

    def problem_at(self, loc: Path_, message: str, *, key: bool = False) -> Problem: ...


@dataclass(slots=True)
class SourceDoc:
    """A loaded document: plain data plus the position of every key and value."""

    path: str
    data: Any
    values: dict[Path_, tuple[int, int]] = field(default_factory=dict)
    keys: dict[Path_, tuple[int, int]] = field(default_factory=dict)

    def problem_at(self, loc: Path_, message: str, *, key: bool = False) -> Problem:
        """A problem at the nearest known position of `loc` (an ancestor when `loc` is absent)."""
        table = self.keys if key else self.values
        for end in range(len(loc), -1, -1):
            prefix = loc[:end]
            pos = table.get(prefix) or self.values.get(prefix)
            if pos is not None:
                return Problem(self.path, pos[0], pos[1], message)
        return Problem(self.path, 1, 1, message)


def _mark(node: yaml.Node) -> tuple[int, int]:
    return _position_of_mark(node.start_mark)


@lru_cache(maxsize=4)
def _newlines(buffer: str) -> list[int] | None:
    """Offsets of the "\n"s of a document whose line breaks PyYAML counts differently (it also
    breaks lines at U+0085, U+2028, U+2029 and a lone CR); None when its lines are ours."""
    if not any(c in buffer for c in "\x85\u2028\u2029\r"):
        return None
    return [i for i, c in enumerate(buffer) if c == "\n"]


def _position_of_mark(mark: yaml.Mark) -> tuple[int, int]:
    """1-based line and column as an editor counts them (lines end at "\n" only)."""
    buffer = getattr(mark, "buffer", None)
    newlines = _newlines(buffer) if isinstance(buffer, str) else None
    if newlines is None:
        return mark.line + 1, mark.column + 1
    line = bisect_left(newlines, mark.index)
    start = newlines[line - 1] + 1 if line else 0
    return line + 1, mark.index - start + 1


def _position_of_byte(raw: bytes, offset: int) -> tuple[int, int]:
    """1-based line and column (in characters, like PyYAML's marks) of a byte offset."""
    before = raw[:offset]
    line_start = before.rfind(b"\n") + 1
    column = len(before[line_start:].decode("utf-8", errors="replace"))
    return before.count(b"\n") + 1, column + 1


def _position_of_char(text: str, index: int) -> tuple[int, int]:
    before = text[:index]
    return before.count("\n") + 1, index - (before.rfind("\n") + 1) + 1


def load_yaml(path: str, raw: bytes) -> tuple[SourceDoc | None, list[Problem]]:
    """Load one YAML document, or return the problems that make it unusable."""
    text, refusal = _text_of(path, raw)
    if refusal is not None:
        return None, [refusal]
    try:
        node = _compose(text)
    except _Unusable as err:
        return None, [Problem(path, err.line, err.col, err.message)]
    if node is None or (isinstance(node, yaml.ScalarNode) and node.tag.endswith(":null")):
        return None, [Problem(path, 1, 1, "file is empty")]
    doc = SourceDoc(path, None)
    problems: list[Problem] = []
    try:
        doc.data = _build(node, (), doc, problems, [MAX_EXPANDED_NODES])
    except _Unusable as err:
        return None, [Problem(path, err.line, err.col, err.message)]
    return doc, problems


def _text_of(path: str, raw: bytes) -> tuple[str, Problem | None]:
    if len(raw) > MAX_FILE_BYTES:
        return "", Problem(path, 1, 1, f"file is larger than {MAX_FILE_BYTES} bytes")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as err:
        line, col = _position_of_byte(raw, err.start)
        return "", Problem(path, line, col, "file is not UTF-8 text (binary file?)")
    if "\x00" in text:
        line, col = _position_of_char(text, text.index("\x00"))
        return "", Problem(path, line, col, "file contains a NUL byte (binary file?)")
    if not text.strip():
        return "", Problem(path, 1, 1, "file is empty")
    return text, None


class _Unusable(Exception):
    """The document cannot be turned into data at all; carries the one problem to report."""

    def __init__(self, line: int, col: int, message: str) -> None:
        super().__init__(message)
        self.line, self.col, self.message = line, col, message


def _compose(text: str) -> yaml.Node | None:
    """PyYAML's composer, with every way it can fail turned into `_Unusable`."""
    loader: _Loader | None = None
    try:
        loader = _Loader(text)  # the reader checks characters here already
        node: yaml.Node | None = loader.get_single_node()
    except yaml.MarkedYAMLError as err:
        mark = err.problem_mark or err.context_mark
        line, col = _position_of_mark(mark) if mark else (1, 1)
        raise _Unusable(line, col, _yaml_message(err)) from err
    except yaml.reader.ReaderError as err:
        line, col = _position_of_char(text, err.position)
        raise _Unusable(
            line, col, f"character {err.character!r} is not allowed in YAML ({err.reason})"
        ) from err
    except yaml.YAMLError as err:
        raise _Unusable(1, 1, f"YAML error: {_one_line(str(err))}") from err
    except RecursionError as err:
        raise _Unusable(1, 1, f"nested deeper than {MAX_DEPTH} levels; refused") from err
    finally:
        if loader is not None:
            loader.dispose()
    return node


def _one_line(message: str) -> str:
    return " ".join(message.split("\n", 1)[0].split())


def _too_large(node: yaml.Node) -> _Unusable:
    line, col = _mark(node)
    return _Unusable(
        line,
        col,
        f"document expands to more than {MAX_EXPANDED_NODES} nodes (alias bomb?); refused",
    )


def _yaml_message(err: yaml.MarkedYAMLError) -> str:
    parts = [_one_line(p) for p in (err.context, err.problem) if p]
    message = "; ".join(parts) or "YAML syntax error"
    if "\t" in message or "'\\t'" in message:
        message += " (tabs are not allowed for indentation in YAML; use spaces)"
    return f"YAML syntax error: {message}"


def _build(
    node: yaml.Node, path: Path_, doc: SourceDoc, problems: list[Problem], budget: list[int]
) -> Any:
    budget[0] -= 1
    if budget[0] < 0:
        raise _too_large(node)
    if len(path) > MAX_DEPTH:
        line, col = _mark(node)
        raise _Unusable(line, col, f"nested deeper than {MAX_DEPTH} levels; refused")
    doc.values.setdefault(path, _mark(node))
    if not node.tag.startswith("tag:yaml.org,2002:") or node.tag.startswith(
        "tag:yaml.org,2002:python/"
    ):
        line, col = _mark(node)
        problems.append(Problem(doc.path, line, col, f"YAML tag {node.tag!r} is not allowed"))
        return None
    if isinstance(node, yaml.MappingNode):
        result: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            key = _scalar(key_node, doc, problems)
            if not isinstance(key, str | int | bool | float) or isinstance(key, bool):
                line, col = _mark(key_node)
                problems.append(Problem(doc.path, line, col, "mapping keys must be plain strings"))
                continue
            key = str(key)
            if key in result:
                line, col = _mark(key_node)
                problems.append(Problem(doc.path, line, col, f"duplicate key {key!r}"))
                continue
            doc.keys[(*path, key)] = _mark(key_node)
            result[key] = _build(value_node, (*path, key), doc, problems, budget)
        return result
    if isinstance(node, yaml.SequenceNode):
        return [
            _build(item, (*path, i), doc, problems, budget) for i, item in enumerate(node.value)
        ]
    return _scalar(node, doc, problems)


def _scalar(node: yaml.Node, doc: SourceDoc, problems: list[Problem]) -> Any:
    if not isinstance(node, yaml.ScalarNode):
        return node
    try:
        value = _CONSTRUCTOR.construct_object(node, deep=True)
    except Exception as err:
        line, col = _mark(node)
        problems.append(
            Problem(doc.path, line, col, f"cannot read value {node.value!r}: {_one_line(str(err))}")
        )
        return None
    finally:
        _CONSTRUCTOR.constructed_objects.clear()
    if isinstance(value, str) and _SURROGATE.search(value):
        return _joined_surrogates(value, node, doc, problems)
    return value


_SURROGATE = re.compile("[\ud800-\udfff]")


def _joined_surrogates(
    value: str, node: yaml.Node, doc: SourceDoc, problems: list[Problem]
) -> str | None:
    """`"\\ud83d\\ude00"` (an emoji written as a UTF-16 pair of escapes) is one character; a
    lone half of a pair is no text at all and would break everything downstream."""
    joined = value.encode("utf-16", "surrogatepass").decode("utf-16", "replace")
    if "\ufffd" in joined and "\ufffd" not in value:
        line, col = _mark(node)
        problems.append(Problem(doc.path, line, col, "text with half of a UTF-16 surrogate pair"))
        return None
    return joined


_CONSTRUCTOR = yaml.constructor.SafeConstructor()
