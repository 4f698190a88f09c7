"""Fuzzing every intake adapter (`engine.intake.translate`), as the adapter loop uses it.

For any bytes on any intake topic: translation returns canonical events or a refusal with a
reason, never raises; the dead-letter record of a refusal can be written; and every event an
adapter emits is one the engine's own parser accepts unchanged (an adapter must never publish
what the engine then refuses as malformed, or worse, cannot serialise). `test_intake.py` covers
random JSON objects; here: bytes, mutated real messages, wrong or boundary values in each field,
time stamps, nesting and sizes. Quick passes run with the unit tests; `-m slow` runs deep ones.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import strategies as st

from engine.core import Engine
from engine.decode import EARLIEST, LATEST, decode_event
from engine.intake import MAX_MESSAGE_BYTES, IntakeContext, Refused, translate
from engine.records import rejection
from engine.replay import Replay
from schemas.events import CaseEvent
from schemas.records import FieldProblem, RejectionReason
from tests.integration.intake_samples import CHANNELS, SAMPLES, encode
from tests.unit.fuzzing import (
    BOUNDARY_INTS,
    fuzz,
    json_values,
    mutate_bytes,
    nested,
    text,
    timestamps,
)

pytestmark = pytest.mark.unit

CTX = IntakeContext(CHANNELS, person_key_secret=b"fuzz-secret")
CHANNEL_NAMES = sorted(CHANNELS)
MESSAGES = [(channel, message) for channel in sorted(SAMPLES) for message in SAMPLES[channel]]


def check_translated(engine: Engine, channel: str, raw: bytes) -> list[CaseEvent] | Refused:
    """`translate` plus what `AdapterLoop._translate` and the engine then do with its result."""
    result = translate(channel, raw, CTX)
    if isinstance(result, Refused):
        assert result.reason in {"malformed", "schema_invalid"}
        assert result.detail.strip()
        reason: RejectionReason = "malformed" if result.reason == "malformed" else "schema_invalid"
        dead = rejection(
            None, f"fengqiao.intake.{channel}/0/1", reason, result.detail, original=raw,
            fields=[FieldProblem(path=e.path, message=e.message) for e in result.errors],
        )  # fmt: skip
        json.loads(dead.model_dump_json().encode("utf-8"))
        return result
    assert isinstance(result, list)
    assert result, "a message that is not refused yields at least one event"
    replay = Replay(engine)
    for event in result:
        assert event.source == channel
        assert event.event_id.startswith(f"{channel}:")
        assert EARLIEST <= event.occurred_at < LATEST
        line = event.model_dump_json().encode("utf-8")
        event.case_id.encode("utf-8")
        assert decode_event(line, "t:0") == event  # the engine reads it back unchanged
        for record in replay.feed(line, "t:0"):
            record.model_dump_json().encode("utf-8")
    return result


def _arbitrary_bytes(engine: Engine, channel: str, raw: bytes) -> None:
    check_translated(engine, channel, raw)


test_arbitrary_bytes, test_arbitrary_bytes_deep = fuzz(
    channel=st.sampled_from(CHANNEL_NAMES), raw=st.binary(max_size=400)
)(_arbitrary_bytes)


def _mutated_samples(
    engine: Engine, sample: tuple[str, dict[str, Any]], data: st.DataObject
) -> None:
    """Real messages of every channel with bytes flipped, inserted, deleted, truncated."""
    channel, message = sample
    ascii_only = data.draw(st.booleans(), label="ascii")
    raw = json.dumps(message, ensure_ascii=ascii_only).encode()
    check_translated(engine, channel, mutate_bytes(raw, data))


test_mutated_samples, test_mutated_samples_deep = fuzz(
    sample=st.sampled_from(MESSAGES), data=st.data()
)(_mutated_samples)


field_values: st.SearchStrategy[Any] = (
    json_values
    | timestamps
    | st.sampled_from(BOUNDARY_INTS)
    | st.sampled_from(["x" * 81, "x" * 20_001, "A" * 80, " padded ", "", "-leading", "a/b:c.d"])
    | st.integers(0, 6).map(lambda d: json.loads(nested(d * 100, kind="list")))
    | st.lists(st.fixed_dictionaries({}, optional={"name": text, "phone": json_values,
                                                   "id_number": json_values}), max_size=60)
)  # fmt: skip


def _wrong_field_values(
    engine: Engine, sample: tuple[str, dict[str, Any]], data: st.DataObject
) -> None:
    """One to three fields of a real message replaced by a value of another type, a boundary
    number, an odd time stamp, an over-long string, a deep list or too many parties; or on
    another channel's topic, or without a field it needs."""
    channel, message = sample
    changed = dict(message)
    for _ in range(data.draw(st.integers(1, 3), label="fields")):
        field = data.draw(st.sampled_from(sorted(changed)), label="field")
        if data.draw(st.booleans(), label="drop"):
            changed.pop(field, None)
            if not changed:
                break
        else:
            changed[field] = data.draw(field_values, label="value")
    topic = data.draw(st.sampled_from([channel, *CHANNEL_NAMES]), label="topic")
    check_translated(engine, topic, encode(changed))


test_wrong_field_values, test_wrong_field_values_deep = fuzz(
    sample=st.sampled_from(MESSAGES), data=st.data()
)(_wrong_field_values)


def _time_stamps(engine: Engine, sample: tuple[str, dict[str, Any]], stamp: Any) -> None:
    """Every time stamp field of every message kind: without offsets, far future, far past,
    out of range, numbers. Accepted ones become domain times the engine accepts."""
    channel, message = sample
    fields = [k for k in message if k in {"at", "received_at", "reported_at", "submitted_at",
                                           "filed_at"}]  # fmt: skip
    assert fields, message
    result = check_translated(engine, channel, encode({**message, fields[0]: stamp}))
    if isinstance(result, Refused) and isinstance(stamp, str) and stamp.startswith("9999"):
        assert fields[0] in result.detail


test_time_stamps, test_time_stamps_deep = fuzz(sample=st.sampled_from(MESSAGES), stamp=timestamps)(
    _time_stamps
)


# --- limits and the inputs that crashed an adapter before --------------------------------------


def _padded(channel: str, size: int) -> bytes:
    """A real message of exactly `size` bytes (padding in a field adapters ignore)."""
    base = encode({**SAMPLES[channel][0], "pad": ""})
    return base.replace(b'"pad": ""', b'"pad": "' + b"x" * (size - len(base)) + b'"')


@pytest.mark.parametrize("channel", sorted(SAMPLES))
def test_message_size_limit(channel: str) -> None:
    at_limit = _padded(channel, MAX_MESSAGE_BYTES)
    assert len(at_limit) == MAX_MESSAGE_BYTES
    assert not isinstance(translate(channel, at_limit, CTX), Refused)
    refused = translate(channel, _padded(channel, MAX_MESSAGE_BYTES + 1), CTX)
    assert refused == Refused("malformed", f"message larger than {MAX_MESSAGE_BYTES} bytes")


@pytest.mark.parametrize(
    ("raw", "detail"),
    [
        (b'{"kind": "work_order", "n": ' + b"7" * 4301 + b"}", "not JSON: Exceeds the limit"),
        (b'{"kind": "work_order", "n": NaN}', "not JSON: NaN is not a JSON number"),
        (b'{"kind": "work_order", "ticket_no": "\\udfff"}', "not JSON: a string holds an unpaired"),
    ],
)
def test_json_that_crashed_the_adapters_is_refused(raw: bytes, detail: str) -> None:
    refused = translate("hotline-12345", raw, CTX)
    assert isinstance(refused, Refused)
    assert refused.reason == "malformed"
    assert refused.detail.startswith(detail)


@pytest.mark.parametrize(
    ("stamp", "accepted"),
    [
        ("2026-02-05 10:00:00", True),
        ("2200-01-01 07:59:59", True),  # no offset: Shanghai time, 2199-12-31T23:59:59Z
        ("2200-01-01 08:00:00", False),  # 2200-01-01T00:00:00Z
        ("2200-01-01T00:00:00Z", False),
        ("9999-12-31 23:59:59", False),  # crashed the engine core (date overflow) before
        ("0001-01-01 00:00:00", False),
    ],
)
def test_time_stamps_outside_the_domain_range_are_refused(stamp: str, accepted: bool) -> None:
    message = {**SAMPLES["grid"][0], "reported_at": stamp}
    result = translate("grid", encode(message), CTX)
    assert isinstance(result, list) == accepted, result
    if not accepted:
        assert isinstance(result, Refused)
        assert result.reason == "schema_invalid"
        assert [e.path for e in result.errors] == ["$.reported_at"]


def test_an_adapter_refusal_fits_in_a_kafka_message() -> None:
    raw = b"\x01" * MAX_MESSAGE_BYTES
    refused = translate("grid", raw, CTX)
    assert isinstance(refused, Refused)
    # exactly what AdapterLoop._translate writes to the dead-letter topic
    record = rejection(None, "fengqiao.intake.grid/0/7", "malformed", refused.detail, original=raw)
    assert len(record.model_dump_json().encode()) < 1_000_000
