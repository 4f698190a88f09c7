"""`engine.yaml_source.load_yaml`: positions, duplicate keys, YAML 1.2 scalars, refused input.

Rows marked `BUG` are strict xfails that expect what the loader *should* do; they fail (XPASS)
once the engine is fixed, so the marker goes together with the bug.
"""

from __future__ import annotations

from typing import Any

import pytest

from engine import yaml_source
from engine.problems import Problem
from engine.yaml_source import MAX_EXPANDED_NODES, MAX_FILE_BYTES, SourceDoc, load_yaml

pytestmark = pytest.mark.unit


def load(text: str | bytes) -> tuple[SourceDoc | None, list[str]]:
    raw = text.encode() if isinstance(text, str) else text
    doc, problems = load_yaml("f.yaml", raw)
    return doc, [f"{p.line}:{p.col}: {p.message}" for p in problems]


def data(text: str) -> Any:
    doc, problems = load(text)
    assert problems == []
    assert doc is not None
    return doc.data


# --- positions --------------------------------------------------------------------------------

POSITIONS = """\
# a comment line
name: demo
states:
  open:
    tier: grid
list: [a, b]
guard: >
  event.x == 1
"""


def test_positions_of_keys_and_values_are_one_based() -> None:
    doc, problems = load(POSITIONS)
    assert problems == []
    assert doc is not None
    assert doc.path == "f.yaml"
    assert doc.values[()] == (2, 1)
    assert doc.keys[("name",)] == (2, 1)
    assert doc.values[("name",)] == (2, 7)
    assert doc.keys[("states", "open")] == (4, 3)
    assert doc.values[("states", "open")] == (5, 5)
    assert doc.keys[("states", "open", "tier")] == (5, 5)
    assert doc.values[("states", "open", "tier")] == (5, 11)
    assert doc.values[("list",)] == (6, 7)
    assert doc.values[("list", 0)] == (6, 8)
    assert doc.values[("list", 1)] == (6, 11)
    assert doc.values[("guard",)] == (7, 8)  # a block scalar starts at its indicator
    assert doc.data["guard"] == "event.x == 1\n"


def test_problem_at_uses_the_nearest_known_position() -> None:
    doc, _ = load(POSITIONS)
    assert doc is not None
    assert doc.problem_at(("states", "open", "tier"), "m") == Problem("f.yaml", 5, 11, "m")
    assert doc.problem_at(("states", "open", "tier"), "m", key=True) == Problem("f.yaml", 5, 5, "m")
    # an absent key: the value of its nearest ancestor
    assert doc.problem_at(("states", "open", "sla", "hours"), "m") == Problem("f.yaml", 5, 5, "m")
    assert doc.problem_at(("nope",), "m", key=True) == Problem("f.yaml", 2, 1, "m")
    assert doc.problem_at((), "m") == Problem("f.yaml", 2, 1, "m")
    # a bare document with no positions at all
    assert SourceDoc("g.yaml", None).problem_at(("x",), "m") == Problem("g.yaml", 1, 1, "m")


def test_aliased_value_is_positioned_at_its_anchor() -> None:
    doc, problems = load("a: &x [1]\nb: *x\n")
    assert problems == []
    assert doc is not None
    assert doc.data == {"a": [1], "b": [1]}
    assert doc.values[("b",)] == (1, 4)  # the content is written at the anchor, not at `*x`
    assert doc.keys[("b",)] == (2, 1)


# --- duplicate keys ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected_data", "expected"),
    [
        pytest.param("a: 1\nb: 2\na: 3\n", {"a": 1, "b": 2}, ["3:1: duplicate key 'a'"], id="top"),
        pytest.param(
            "s:\n  x: 1\n  x: 2\n", {"s": {"x": 1}}, ["3:3: duplicate key 'x'"], id="nested"
        ),
        pytest.param("s: {x: 1, x: 2}\n", {"s": {"x": 1}}, ["1:11: duplicate key 'x'"], id="flow"),
        pytest.param(
            "1: a\n'1': b\n", {"1": "a"}, ["2:1: duplicate key '1'"], id="int-and-string-key"
        ),
        pytest.param(
            "a: 1\na: 2\na: 3\n",
            {"a": 1},
            ["2:1: duplicate key 'a'", "3:1: duplicate key 'a'"],
            id="each-repeat",
        ),
    ],
)
def test_duplicate_keys_are_reported_and_the_first_is_kept(
    text: str, expected_data: Any, expected: list[str]
) -> None:
    doc, problems = load(text)
    assert problems == expected
    assert doc is not None
    assert doc.data == expected_data


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param("~: x\n", "1:1: mapping keys must be plain strings", id="null"),
        pytest.param("true: x\n", "1:1: mapping keys must be plain strings", id="bool"),
        pytest.param("? [a, b]\n: x\n", "1:3: mapping keys must be plain strings", id="list"),
    ],
)
def test_non_string_keys_are_refused(text: str, expected: str) -> None:
    doc, problems = load(text)
    assert problems == [expected]
    assert doc is not None
    assert doc.data == {}


# --- YAML 1.2 scalars -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("word", "value"),
    [
        ("true", True), ("True", True), ("TRUE", True),
        ("false", False), ("False", False), ("FALSE", False),
        ("yes", "yes"), ("no", "no"), ("on", "on"), ("off", "off"), ("y", "y"), ("n", "n"),
        ("Yes", "Yes"), ("NO", "NO"), ("On", "On"), ("OFF", "OFF"), ("tRUE", "tRUE"),
    ],
)  # fmt: skip
def test_only_true_and_false_are_booleans(word: str, value: object) -> None:
    got = data(f"a: {word}\n")["a"]
    assert got == value
    assert type(got) is type(value)


def test_on_as_a_key_stays_a_string() -> None:
    assert data("on: x\nyes: y\nno: z\n") == {"on": "x", "yes": "y", "no": "z"}


@pytest.mark.parametrize("text", ["09:00", "9:00", "17:30", "12:30:45", "190:20:30", "1:30.5"])
def test_sexagesimal_looking_values_stay_strings(text: str) -> None:
    assert data(f"a: {text}\n") == {"a": text}


@pytest.mark.parametrize(
    ("text", "value"),
    [("1", 1), ("-3", -3), ("0", 0), ("0.8", 0.8), ("~", None), ("null", None), ("", None),
     ("'1'", "1"), ('"true"', "true"), ("0x1F", 31)],
)  # fmt: skip
def test_ordinary_scalars(text: str, value: object) -> None:
    got = data(f"a: {text}\n")["a"]
    assert got == value
    assert type(got) is type(value)


def test_leading_zero_is_not_octal() -> None:
    assert data("a: 010\n")["a"] in (10, "010")


# --- tags -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param(
            "a: !!python/object/apply:os.system [echo]\n",
            "1:4: YAML tag 'tag:yaml.org,2002:python/object/apply:os.system' is not allowed",
            id="python-apply",
        ),
        pytest.param(
            "a: !!python/name:os.system ''\n",
            "1:4: YAML tag 'tag:yaml.org,2002:python/name:os.system' is not allowed",
            id="python-name",
        ),
        pytest.param(
            "a: !!python/object:os.Foo {x: 1}\n",
            "1:4: YAML tag 'tag:yaml.org,2002:python/object:os.Foo' is not allowed",
            id="python-object-on-mapping",
        ),
        pytest.param("a: !local x\n", "1:4: YAML tag '!local' is not allowed", id="local"),
        pytest.param(
            "a: !<tag:example.com,2000:x> y\n",
            "1:4: YAML tag 'tag:example.com,2000:x' is not allowed",
            id="verbatim",
        ),
        pytest.param(
            "a:\n  - !custom [1]\n", "2:5: YAML tag '!custom' is not allowed", id="on-sequence"
        ),
    ],
)
def test_tags_are_refused(text: str, expected: str) -> None:
    doc, problems = load(text)
    assert problems == [expected]
    assert doc is not None
    assert next(iter(doc.data.values())) in (None, [None])


def test_standard_tags_are_read() -> None:
    assert data("a: !!str 5\nb: !!int '7'\nc: !!float '1.5'\n") == {"a": "5", "b": 7, "c": 1.5}


def test_a_value_a_standard_tag_cannot_read_is_a_problem() -> None:
    doc, problems = load("a: !!int abc\n")
    assert problems == [
        "1:4: cannot read value 'abc': invalid literal for int() with base 10: 'abc'"
    ]
    assert doc is not None
    assert doc.data == {"a": None}


@pytest.mark.parametrize(
    "text",
    [
        pytest.param("a: !!set abc\n", id="set-tag-on-scalar"),
        pytest.param("a: !!map abc\n", id="map-tag-on-scalar"),
        pytest.param("a: =\n", id="yaml11-value-key"),
        pytest.param("a:\n  <<: {b: 1}\n", id="yaml11-merge-key"),
    ],
)
def test_unreadable_values_are_reported_on_one_line(text: str) -> None:
    _, problems = load(text)
    assert problems
    assert all("\n" not in p for p in problems)


# --- what makes a file unusable ---------------------------------------------------------------


def test_size_limit() -> None:
    doc, problems = load(b"a: " + b"x" * (MAX_FILE_BYTES - 3 + 1))
    assert doc is None
    assert problems == [f"1:1: file is larger than {MAX_FILE_BYTES} bytes"]


def test_size_limit_is_inclusive(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(yaml_source, "MAX_FILE_BYTES", 10)
    assert load(b"a: 1234567")[1] == []  # exactly 10 bytes
    assert load(b"a: 12345678")[1] == ["1:1: file is larger than 10 bytes"]


def test_expansion_budget_counts_every_node(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(yaml_source, "MAX_EXPANDED_NODES", 10)
    assert load("[" + ", ".join("x" * 9) + "]")[1] == []  # the list and its 9 items
    doc, problems = load("[" + ", ".join("x" * 10) + "]")
    assert doc is None
    assert problems == ["1:29: document expands to more than 10 nodes (alias bomb?); refused"]


def test_alias_bomb_is_refused() -> None:
    lines = ['a0: &a0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    lines += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 9)}]" for i in range(1, 9)]
    doc, problems = load("\n".join(lines) + "\n")
    assert doc is None
    assert len(problems) == 1
    assert problems[0].endswith(
        f"document expands to more than {MAX_EXPANDED_NODES} nodes (alias bomb?); refused"
    )


def test_nul_byte_position() -> None:
    doc, problems = load(b"a: 1\nbc: x\x00y\n")
    assert doc is None
    assert problems == ["2:6: file contains a NUL byte (binary file?)"]


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        pytest.param(b"\xff", "1:1", id="first-byte"),
        pytest.param(b"a: 1\nb: \xc3(\n", "2:4", id="bad-continuation"),
        pytest.param(b"a: 1\nb: 2\nc: \xe6\x9e\n", "3:4", id="truncated-at-end"),
    ],
)
def test_invalid_utf8_position(raw: bytes, expected: str) -> None:
    doc, problems = load(raw)
    assert doc is None
    assert problems == [f"{expected}: file is not UTF-8 text (binary file?)"]


def test_invalid_utf8_column_counts_characters() -> None:
    _, problems = load("d: 枫桥".encode() + b"\xff\n")
    assert problems == ["1:6: file is not UTF-8 text (binary file?)"]


@pytest.mark.parametrize(
    "raw", [b"", b"   ", b"\n\n", b" \t\n  \r\n", b"# only a comment\n", b"# c\n\n# d\n"]
)
def test_empty_file(raw: bytes) -> None:
    doc, problems = load(raw)
    assert doc is None
    assert problems == ["1:1: file is empty"]


def test_an_explicit_empty_document_is_an_empty_file() -> None:
    assert load("---\n") == (None, ["1:1: file is empty"])


def test_only_one_document() -> None:
    doc, problems = load("a: 1\n---\nb: 2\n")
    assert doc is None
    assert problems == [
        "2:1: YAML syntax error: expected a single document in the stream; "
        "but found another document"
    ]


def test_syntax_error_position_and_tab_hint() -> None:
    doc, problems = load("a:\n\tb: 1\n")
    assert doc is None
    assert len(problems) == 1
    assert problems[0].startswith("2:1: YAML syntax error: ")
    assert problems[0].endswith("(tabs are not allowed for indentation in YAML; use spaces)")


def test_utf8_bom_and_chinese_text() -> None:
    assert data("\ufeffa: 枫桥经验\n") == {"a": "枫桥经验"}


def test_positions_count_lines_as_editors_do_even_with_unicode_line_separators() -> None:
    """PyYAML also breaks lines at U+0085/U+2028/U+2029; an editor (and our messages) do not,
    so a problem must never point past the last line of the file (found by the fuzzer)."""
    raw = "name: x\nversion: 1\nkey: 'a\u0085b\u2028c\n".encode()
    doc, problems = load_yaml("x.yaml", raw)
    assert doc is None
    (problem,) = problems
    assert problem.line <= raw.decode().count("\n") + 1
    _, later = load_yaml("y.yaml", "a: '\u2028'\nb: [\n".encode())
    assert [(p.line, p.col) for p in later] == [(3, 1)]
