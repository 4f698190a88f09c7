"""Hypothesis strategies for hostile input, shared by the `test_fuzz_*` modules.

Each strategy aims at one way input goes wrong: bytes that are not text, text that is not JSON,
JSON nested or sized beyond reason, values of the wrong type, numbers at the edges of what
Python, JSON, pydantic and CEL represent, and time stamps without offsets or far from now.
`fuzz` runs a property twice: a quick pass in the ordinary suite and a deeper `slow` one
(`FENGQIAO_FUZZ_EXAMPLES` examples, 2,000 by default).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

QUICK_EXAMPLES = 150
DEEP_EXAMPLES = int(os.environ.get("FENGQIAO_FUZZ_EXAMPLES", "2000"))
"""Examples per property in the `slow` runs; raise it for a long fuzzing session."""

BOUNDARY_INTS = [
    0, 1, -1, 2**31 - 1, -(2**31), 2**32, 2**53 + 1, 2**63 - 1, -(2**63), 2**63, 2**64, 10**30,
    -(10**30), 10**4000,
]  # fmt: skip
BOUNDARY_FLOATS = [0.0, -0.0, 1e-320, 5e-324, 1.7976931348623157e308, -1.7976931348623157e308, 0.1]

numbers = (
    st.sampled_from(BOUNDARY_INTS)
    | st.integers()
    | st.sampled_from(BOUNDARY_FLOATS)
    | st.floats(allow_nan=False, allow_infinity=False)
)
text = st.text(max_size=40) | st.sampled_from(["", " ", "王建国", "\u200b", "a" * 5000, "\x00"])

json_values: st.SearchStrategy[Any] = st.recursive(
    st.none() | st.booleans() | numbers | text,
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(text, inner, max_size=5),
    max_leaves=25,
)

TIMESTAMPS = [
    "2026-03-02T09:00:00+08:00", "2026-03-02T09:00:00Z", "2026-03-02T01:00:00.123456+00:00",
    "2026-03-02 09:00:00", "2026-03-02T09:00:00", "2026-03-02", "09:00",
    "2026-02-30T09:00:00+08:00",
    "2026-12-31T23:59:60+08:00", "2026-03-02T24:00:00+08:00", "2026-03-02T09:00:00+25:00",
    "2026-03-02T09:00:00+14:00", "2026-03-02T09:00:00-12:00", "9999-12-31T23:59:59+08:00",
    "9999-12-31T23:59:59-14:00", "9999-12-31 23:59:59", "0001-01-01T00:00:00+14:00",
    "0001-01-01 00:00:00", "1969-12-31T23:59:59Z", "2199-12-31T23:59:59Z", "2200-01-01T00:00:00Z",
    "3000-01-01T00:00:00+08:00", "+12026-01-01T00:00:00Z", "2026-03-02T09:00:00.9999999999+08:00",
    "2026-W10-1T09:00:00+08:00", "now", "", "1772413200", "2026-03-02T09:00:00+08:00\x00",
]  # fmt: skip
timestamps: st.SearchStrategy[Any] = (
    st.sampled_from(TIMESTAMPS)
    | st.datetimes().map(lambda d: d.isoformat())
    | st.datetimes(timezones=st.timezones()).map(lambda d: d.isoformat())
    | st.sampled_from([0, -1, 1772413200, 1772413200000, 10**12, 10**20, -(10**20), 1e308])
)


def nested(depth: int, leaf: Any = 1, *, kind: str = "list") -> str:
    """JSON text of `leaf` inside `depth` lists or objects (built as text: no recursion)."""
    inner = json.dumps(leaf)
    if kind == "list":
        return "[" * depth + inner + "]" * depth
    return '{"k":' * depth + inner + "}" * depth


def mutate_bytes(raw: bytes, data: st.DataObject) -> bytes:
    """`raw` with a few bytes replaced, inserted or deleted (invalid UTF-8 included)."""
    out = bytearray(raw)
    for _ in range(data.draw(st.integers(1, 4), label="edits")):
        at = data.draw(st.integers(0, len(out)), label="at")
        action = data.draw(st.sampled_from(["flip", "insert", "delete", "truncate"]))
        byte = data.draw(st.sampled_from([0x00, 0x80, 0xC3, 0xE6, 0xED, 0xF0, 0xFF, 0x22, 0x5C]))
        if action == "flip" and at < len(out):
            out[at] = byte
        elif action == "insert":
            out[at:at] = bytes([byte])
        elif action == "delete" and at < len(out):
            del out[at]
        elif action == "truncate":
            del out[at:]
    return bytes(out)


def fuzz(
    *strategies: st.SearchStrategy[Any], **named: st.SearchStrategy[Any]
) -> Callable[[Callable[..., None]], tuple[Callable[..., None], Callable[..., None]]]:
    """Decorate a property; get back (quick test, deep `slow` test) to bind to two names."""

    def wrap(prop: Callable[..., None]) -> tuple[Callable[..., None], Callable[..., None]]:
        common: dict[str, Any] = {
            "deadline": None,
            "suppress_health_check": [HealthCheck.too_slow, HealthCheck.data_too_large],
        }
        quick = settings(max_examples=QUICK_EXAMPLES, **common)(given(*strategies, **named)(prop))
        deep = settings(max_examples=DEEP_EXAMPLES, **common)(given(*strategies, **named)(prop))
        return quick, pytest.mark.slow(deep)

    return wrap
