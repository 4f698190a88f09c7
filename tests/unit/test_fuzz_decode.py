"""Fuzzing the canonical parser and everything behind it, as the engine loop uses them.

For any bytes on `case-events`: `decode_event` returns an event or a refusal with a reason and a
detail, never raises; feeding them through the core raises nothing either; and everything the
engine loop would then write — each output record as JSON, each changed case's snapshot, the
Kafka key — can really be written (a value that cannot be serialised would crash the loop on
every restart: a poison pill). Quick passes run with the unit tests; `-m slow` runs deep ones.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import strategies as st

from engine.batch import BatchReplay, Input
from engine.core import Engine
from engine.decode import (
    EARLIEST,
    LATEST,
    MAX_EVENT_BYTES,
    MAX_FIELD_PROBLEMS,
    MAX_PAYLOAD_DEPTH,
    _decode,
    decode_event,
)
from engine.records import MAX_ORIGINAL_JSON
from engine.stores import MemoryStore, decode_case
from schemas.events import CaseEvent
from schemas.records import EventRejected
from tests.unit.fuzzing import fuzz, json_values, mutate_bytes, nested, text, timestamps

pytestmark = pytest.mark.unit

REASONS = {"malformed", "schema_invalid"}
TYPES = ["case.reported", "mediation.failed", "mediation.succeeded", "case.withdrawn", "x"]
SOURCES = ["grid", "hotline-12345", "court", "nobody", ""]
WORKFLOWS = ["dispute-escalation", "hotline-12345", "petition", "nope"]


def valid_event(**changes: Any) -> dict[str, Any]:
    event: dict[str, Any] = {
        "event_id": "e1", "case_id": "c1", "type": "case.reported",
        "occurred_at": "2026-03-02T09:00:00+08:00", "source": "grid",
        "payload": {"workflow": "dispute-escalation", "attributes": {"category": "neighbour"}},
    }  # fmt: skip
    event.update(changes)
    return event


DEAD_LETTER_BOUND = MAX_ORIGINAL_JSON + 16 * 1024
"""A refusal's record: the bounded original plus a bounded detail, ids and field list."""


def check_decoded(raw: bytes) -> CaseEvent | EventRejected:
    result = decode_event(raw, "fuzz:0")
    reference = _decode(raw, "fuzz:0", one_pass=False)
    # the one-pass decode decides as the reference does; where the parser's nesting limit falls
    # depends on the caller's stack depth, which differs between these two calls
    if "nested too deeply" not in getattr(result, "detail", "") + getattr(reference, "detail", ""):
        assert repr(result) == repr(reference)
    if isinstance(result, EventRejected):
        assert result.reason in REASONS
        assert result.detail.strip()
        if result.reason == "schema_invalid":
            assert result.fields, result.detail
        written = result.model_dump_json().encode("utf-8")
        json.loads(written)
        assert len(written) <= DEAD_LETTER_BOUND
    else:
        assert isinstance(result, CaseEvent)
        assert EARLIEST <= result.occurred_at < LATEST
        json.loads(result.model_dump_json().encode("utf-8"))
    return result


def check_through_the_core(engine: Engine, lines: list[bytes]) -> None:
    """Each line as one batch through the core's batch step, encoded as the engine sends it,
    the changed cases written to a store and read back."""
    store = MemoryStore()
    replay = BatchReplay(engine, load=lambda case_id: store.get(0, case_id))
    for i, raw in enumerate(lines):
        result = replay.step([Input(raw, f"fuzz:{i}")])
        for out in result.outputs:
            json.loads(out.value)
            assert out.key == ((out.record.case_id or "").encode() or None)
        for change in result.changes:
            assert change.snapshot is not None
            assert decode_case(change.snapshot) == change.after
        store.write(0, result.upserts, result.deletes)
        replay.confirm()


events_with_wrong_values = st.fixed_dictionaries(
    {},
    optional={
        "event_id": st.text(max_size=210) | json_values,
        "case_id": st.text(max_size=210) | json_values,
        "type": st.sampled_from(TYPES) | json_values,
        "occurred_at": timestamps,
        "source": st.sampled_from(SOURCES) | json_values,
        "payload": st.fixed_dictionaries(
            {}, optional={"workflow": st.sampled_from(WORKFLOWS) | json_values,
                          "attributes": st.dictionaries(text, json_values, max_size=6),
                          "agreement_signed": json_values}
        ) | json_values,
        "extra": json_values,
    },
)  # fmt: skip


def _arbitrary_bytes(engine: Engine, raw: bytes) -> None:
    check_decoded(raw)
    check_through_the_core(engine, [raw])


test_arbitrary_bytes, test_arbitrary_bytes_deep = fuzz(raw=st.binary(max_size=400))(
    _arbitrary_bytes
)


def _mutated_valid_events(engine: Engine, data: st.DataObject) -> None:
    """Valid events with bytes flipped, inserted, deleted (invalid UTF-8 among them)."""
    base = json.dumps(valid_event(), ensure_ascii=data.draw(st.booleans())).encode()
    raw = mutate_bytes(base, data)
    check_decoded(raw)
    check_through_the_core(engine, [base, raw])


test_mutated_events, test_mutated_events_deep = fuzz(data=st.data())(_mutated_valid_events)


def _wrong_values(engine: Engine, event: dict[str, Any], follow_up: dict[str, Any]) -> None:
    """Every field missing, of the wrong type, at a boundary, or a time stamp gone wrong; then a
    second event on the same case, so open cases meet hostile input too."""
    lines = [json.dumps(event).encode(), json.dumps(follow_up).encode()]
    for line in lines:
        check_decoded(line)
    check_through_the_core(engine, lines)


test_wrong_values, test_wrong_values_deep = fuzz(
    event=events_with_wrong_values.map(lambda e: {**valid_event(), **e}),
    follow_up=events_with_wrong_values.map(
        lambda e: {**valid_event(event_id="e2", type="mediation.failed", payload={}), **e}
    ),
)(_wrong_values)


def _nesting(engine: Engine, depth: int, kind: str, where: str) -> None:
    """Lists or objects nested 1–3,000 deep, in the payload, an attribute or the whole line."""
    deep = nested(depth, kind=kind)
    if where == "line":
        raw = deep.encode()
    elif where == "payload":
        raw = (
            json.dumps(valid_event(type="mediation.failed", payload={}))
            .replace('"payload": {}', f'"payload": {{"x": {deep}}}')
            .encode()
        )
    else:
        raw = json.dumps(valid_event()).replace('"neighbour"', deep).encode()
    result = check_decoded(raw)
    if isinstance(result, CaseEvent) and where == "payload":
        assert depth < MAX_PAYLOAD_DEPTH
    check_through_the_core(engine, [json.dumps(valid_event()).encode(), raw])


test_nesting, test_nesting_deep = fuzz(
    depth=st.integers(1, 3000) | st.sampled_from([MAX_PAYLOAD_DEPTH - 1, MAX_PAYLOAD_DEPTH]),
    kind=st.sampled_from(["list", "object"]),
    where=st.sampled_from(["line", "payload", "attribute"]),
)(_nesting)


def _raw_json_oddities(engine: Engine, token: str, field: str) -> None:
    """Text no JSON encoder writes but parsers meet: NaN, Infinity, 5,000-digit numbers, lone
    surrogate escapes, control characters, duplicate keys."""
    event = json.dumps(valid_event(type="mediation.failed", payload={"v": 0}))
    raw = event.replace(f'"{field}": ', f'"{field}": {token}, "_{field}": ', 1).encode()
    check_decoded(raw)
    check_through_the_core(engine, [json.dumps(valid_event()).encode(), raw])


ODD_TOKENS = [
    "NaN", "Infinity", "-Infinity", "1" * 5000, "-" + "9" * 4301, "1e999", "-1e-999", "1.0e+",
    '"\\ud800"', '"\\udfff\\ud800"', '"\\ud83d\\ude00"', '"\\\\ud800"', '"\\u0000"', '"\x01"',
    "[" * 50 + "]" * 50, '"' + "长" * 70_000 + '"', "true", "null", '{"v": 1, "v": 2}',
]  # fmt: skip
test_raw_json_oddities, test_raw_json_oddities_deep = fuzz(
    token=st.sampled_from(ODD_TOKENS),
    field=st.sampled_from(["event_id", "case_id", "type", "occurred_at", "source", "payload", "v"]),
)(_raw_json_oddities)


def _any_json_text(engine: Engine, payload: Any, ascii_only: bool, spaced: bool) -> None:
    """Payloads of any JSON values (numbers at the edges, text in any script), written as an
    encoder would: the one-pass decode must give the reference's event, value for value."""
    separators = (" , ", " : ") if spaced else (",", ":")
    event = valid_event(type="mediation.failed", payload={"v": payload})
    raw = json.dumps(event, ensure_ascii=ascii_only, separators=separators).encode()
    check_decoded(raw)


test_any_json_text, test_any_json_text_deep = fuzz(
    payload=json_values, ascii_only=st.booleans(), spaced=st.booleans()
)(_any_json_text)


# --- limits, at and around their boundaries ----------------------------------------------------


def _padded(size: int) -> bytes:
    """A valid event of exactly `size` bytes (padding in an ignored payload field)."""
    base = json.dumps(valid_event(type="mediation.failed", payload={"pad": ""})).encode()
    return base.replace(b'"pad": ""', b'"pad": "' + b"x" * (size - len(base)) + b'"')


@pytest.mark.parametrize("size", [MAX_EVENT_BYTES - 1, MAX_EVENT_BYTES])
def test_an_event_up_to_the_size_limit_is_read(size: int) -> None:
    raw = _padded(size)
    assert len(raw) == size
    assert isinstance(decode_event(raw, "t:0"), CaseEvent)


def test_a_larger_event_is_refused_with_the_limit_and_the_start_of_its_bytes() -> None:
    raw = _padded(MAX_EVENT_BYTES + 1)
    result = check_decoded(raw)
    assert isinstance(result, EventRejected)
    assert result.reason == "malformed"
    assert result.detail.startswith(f"event larger than {MAX_EVENT_BYTES} bytes (original cut")
    assert raw.decode().startswith(result.original)
    assert len(json.dumps(result.original)) - 2 <= MAX_ORIGINAL_JSON


def test_payload_depth_limit_is_exact() -> None:
    """The payload object is level 1; `MAX_PAYLOAD_DEPTH` levels are read, one more refused."""
    at_limit = json.loads(nested(MAX_PAYLOAD_DEPTH, kind="object"))
    raw = json.dumps(valid_event(type="mediation.failed", payload=at_limit)).encode()
    assert isinstance(decode_event(raw, "t:0"), CaseEvent)
    beyond = json.loads(nested(MAX_PAYLOAD_DEPTH + 1, kind="object"))
    raw = json.dumps(valid_event(type="mediation.failed", payload=beyond)).encode()
    result = decode_event(raw, "t:0")
    assert isinstance(result, EventRejected)
    assert result.detail == f"$.payload: nested deeper than {MAX_PAYLOAD_DEPTH} levels"


@pytest.mark.parametrize(
    ("occurred_at", "accepted"),
    [
        ("2026-03-02T09:00:00+08:00", True),
        ("1970-01-01T00:00:00Z", True),
        ("1970-01-01T07:59:59+08:00", False),
        ("2199-12-31T23:59:59.999999Z", True),
        ("2200-01-01T00:00:00Z", False),
        ("9999-12-31T23:59:59-14:00", False),  # year 10000 in UTC: overflowed the core
        ("9999-12-20T10:00:00+08:00", False),  # its deadline overflowed the core
        ("0001-01-01T00:00:00+14:00", False),  # before year 1 in UTC
        ("2026-03-02T09:00:00", False),  # no offset: pydantic refuses it
    ],
)
def test_domain_time_range(occurred_at: str, accepted: bool) -> None:
    raw = json.dumps(valid_event(occurred_at=occurred_at)).encode()
    result = decode_event(raw, "t:0")
    assert isinstance(result, CaseEvent) == accepted, result
    if not accepted:
        assert isinstance(result, EventRejected)
        assert result.reason == "schema_invalid"
        assert [f.path for f in result.fields] == ["$.occurred_at"]


@pytest.mark.parametrize(
    ("raw", "detail"),
    [
        (b'{"a": ' + b"1" * 5000 + b"}", "not JSON: Exceeds the limit (4300 digits)"),
        (b'{"a": NaN}', "not JSON: NaN is not a JSON number"),
        (b'{"a": -Infinity}', "not JSON: -Infinity is not a JSON number"),
        (b'{"a": "\\ud800"}', "not JSON: a string holds an unpaired surrogate escape"),
        (b'{"a": "\\udc00\\ud800"}', "not JSON: a string holds an unpaired surrogate escape"),
        (b"[" * 100_000, "not JSON: nested too deeply"),
        (b"[1, 2]", "not a JSON object"),
    ],
)
def test_json_the_parser_refuses(raw: bytes, detail: str) -> None:
    """Each of these crashed the engine before (a ValueError the parser did not expect, or a
    record that could not be serialised): now a refusal with a reason."""
    result = decode_event(raw, "t:0")
    assert isinstance(result, EventRejected)
    assert result.reason == "malformed"
    assert result.detail.startswith(detail)


def test_a_surrogate_pair_and_an_escaped_backslash_are_text() -> None:
    raw = json.dumps(valid_event(case_id="c-😀-\\ud800")).encode()  # ascii: a real pair
    assert b"\\ud83d\\ude00" in raw
    result = decode_event(raw, "t:0")
    assert isinstance(result, CaseEvent)
    assert result.case_id == "c-😀-\\ud800"


def _many_unknown_keys() -> bytes:
    return json.dumps(valid_event(**{f"k{i}": 1 for i in range(20_000)})).encode()


@pytest.mark.parametrize(
    ("raw", "cut"),
    [
        pytest.param(b"\x01" * MAX_EVENT_BYTES, True, id="control-characters"),
        pytest.param(b"\x01" * (MAX_EVENT_BYTES + 1), True, id="too-large-control-characters"),
        pytest.param(b"\xff" * MAX_EVENT_BYTES, True, id="not-utf8"),
        pytest.param(('"\\' * 80_000).encode(), True, id="quotes-and-backslashes"),
        pytest.param(("枫桥" * 40_000).encode(), False, id="chinese-text"),
        pytest.param(("枫桥" * 50_000).encode() + b"\x01", True, id="chinese-text-cut"),
        pytest.param(_many_unknown_keys(), True, id="20000-unknown-keys"),
        pytest.param(
            json.dumps(valid_event(event_id="e" * 120_000, case_id="c" * 120_000)).encode(),
            False,
            id="huge-ids",
        ),
    ],
)
def test_a_refusal_stays_small_enough_to_write(raw: bytes, cut: bool) -> None:
    """Each of these once made a dead-letter record of 0.5–1.5 MB: over Kafka's default message
    size, so writing it failed the transaction again on every retry (a stuck partition)."""
    result = check_decoded(raw)
    assert isinstance(result, EventRejected)
    assert ("original cut to its first" in result.detail) == cut
    assert len(result.fields) <= MAX_FIELD_PROBLEMS + 1
    assert result.case_id is None or len(result.case_id) <= 200
    if result.original_encoding == "utf-8":
        assert raw.decode().startswith(result.original)
