"""Raw bytes → `CaseEvent`, or the reason they cannot be one.

Shared by `simulate` (file lines) and the Kafka loop (message values), so both refuse the same
inputs with the same reasons: `malformed` when the bytes are not a JSON object, `schema_invalid`
when the object is not a canonical event. Nothing a sender writes can make this raise: every
input the fuzzers (`tests/unit/test_fuzz_decode.py`) could think of ends as an event or a
refusal with a reason, and every refusal can be written to the dead-letter topic. Beyond the
schema, these limits keep hostile input away from the core (each one closed a crash the fuzzers
found: an exception out of the parser or the core, or a record that could not be written, which
the Kafka loop would meet again on every restart):

- strict JSON (`load_json_object`, shared with the intake adapters): no `NaN` or `Infinity`, no
  unpaired surrogate escapes, and a 4,300-digit number is refused, not raised;
- `MAX_EVENT_BYTES`: a canonical event is a few hundred bytes;
- `MAX_PAYLOAD_DEPTH`: a payload nested deeper cannot even be written back out (pydantic stops
  serialising at ~250 levels), and no real payload comes near;
- `EARLIEST` ≤ `occurred_at` < `LATEST`: deadlines are computed from it, and near year 9999
  date arithmetic overflows;
- a refusal keeps at most `MAX_ORIGINAL_JSON` bytes of the original, `MAX_FIELD_PROBLEMS`
  field problems and ids of `MAX_ID_CHARS`, so it fits in a Kafka message.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from typing import Any

from pydantic import ValidationError

from engine.records import bounded_original, rejection
from schemas.events import CaseEvent
from schemas.records import EventRejected, FieldProblem, RejectionReason

MAX_EVENT_BYTES = 256 * 1024
"""A canonical event is a few hundred bytes; anything near this is not one of ours."""

MAX_PAYLOAD_DEPTH = 32
"""Levels of lists and objects inside `payload`."""

MAX_FIELD_PROBLEMS = 20
"""Field problems listed on one refusal; the rest are counted (20,000 unknown keys once made a
dead-letter record of 1.5 MB)."""

"""Bytes the `original` of a refusal may take once written as JSON. A 256 KiB event of control
characters is 1.5 MB escaped: more than Kafka's default message size, so the dead-letter write,
and with it the whole transaction, would fail again on every retry."""

MAX_ID_CHARS = 200
"""An `event_id` or `case_id` longer than the schema allows is not copied onto a refusal."""

EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
LATEST = datetime(2200, 1, 1, tzinfo=UTC)
"""The range of domain times accepted (`occurred_at` and native time stamps), end excluded."""


class NotJson(ValueError):
    """The bytes are not one strict JSON object; the message is the refusal's detail."""


def _no_constants(name: str) -> Any:
    raise NotJson(f"not JSON: {name} is not a JSON number")


def load_json_object(raw: bytes) -> dict[str, Any]:
    """Strict JSON (no NaN or Infinity) that must be an object; `NotJson` otherwise.

    Every failure of the standard parser is a `ValueError` or a `RecursionError` (nesting deeper
    than the interpreter's recursion limit), including a number of more than 4,300 digits, which
    the parser refuses with a plain `ValueError`.
    """
    try:
        data = json.loads(raw, parse_constant=_no_constants)
    except NotJson:
        raise
    except RecursionError:
        raise NotJson("not JSON: nested too deeply") from None
    except ValueError as err:  # JSONDecodeError, UnicodeDecodeError, too many digits
        raise NotJson(f"not JSON: {_one_line(str(err))}") from None
    if not isinstance(data, dict):
        raise NotJson("not a JSON object")
    if _SURROGATE_ESCAPE.search(raw) is not None:
        try:  # exact check, only when an escape might encode half a surrogate pair
            json.dumps(data, ensure_ascii=False).encode("utf-8")
        except UnicodeEncodeError:
            raise NotJson(
                "not JSON: a string holds an unpaired surrogate escape (\\ud800-\\udfff), "
                "which is not Unicode text"
            ) from None
    return data


_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")
"""`\\uD800`-`\\uDFFF`: paired they encode one character, alone they are not text (and could
not be written back out as UTF-8: the record or snapshot carrying one would fail to serialise)."""


def _one_line(text: str) -> str:
    return " ".join(text.split())[:300]


def depth_beyond(value: Any, limit: int) -> bool:
    """True if `value` nests lists and objects more than `limit` levels deep."""
    todo: list[tuple[Any, int]] = [(value, 0)]
    while todo:
        item, depth = todo.pop()
        if isinstance(item, dict):
            children: Any = item.values()
        elif isinstance(item, list):
            children = item
        else:
            continue
        if depth >= limit:
            return True
        todo.extend((child, depth + 1) for child in children if isinstance(child, dict | list))
    return False


def time_problem(at: datetime) -> str | None:
    """Why `at` is no plausible domain time (None if it is)."""
    if at.tzinfo is None:
        return "needs a time zone offset"
    try:
        outside = not EARLIEST <= at.astimezone(UTC) < LATEST
    except OverflowError:  # e.g. 9999-12-31T23:59:59-01:00 is in year 10000 in UTC
        outside = True
    if outside:
        return (
            f"{at.isoformat()} is outside {EARLIEST.year}–{LATEST.year - 1}; "
            "a domain time must be a real instant"
        )
    return None


def decode_event(raw: bytes, origin: str) -> CaseEvent | EventRejected:
    if len(raw) > MAX_EVENT_BYTES:
        return _refused(origin, raw, "malformed", f"event larger than {MAX_EVENT_BYTES} bytes")
    try:
        data = load_json_object(raw)
    except NotJson as err:
        return _refused(origin, raw, "malformed", str(err))
    event_id, case_id = _id(data.get("event_id")), _id(data.get("case_id"))
    try:
        event = CaseEvent.model_validate(data)
    except ValidationError as err:
        fields = [
            FieldProblem(path=("$." + ".".join(str(p) for p in e["loc"]))[:200], message=e["msg"])
            for e in err.errors()
        ]
        return _invalid(origin, raw, fields, event_id, case_id)
    problems: list[FieldProblem] = []
    if depth_beyond(event.payload, MAX_PAYLOAD_DEPTH):
        too_deep = f"nested deeper than {MAX_PAYLOAD_DEPTH} levels"
        problems.append(FieldProblem(path="$.payload", message=too_deep))
    when = time_problem(event.occurred_at)
    if when is not None:
        problems.append(FieldProblem(path="$.occurred_at", message=when))
    if problems:
        return _invalid(origin, raw, problems, event_id, case_id)
    return event


def _id(value: Any) -> str | None:
    return value if isinstance(value, str) and len(value) <= MAX_ID_CHARS else None


def _invalid(
    origin: str, raw: bytes, fields: list[FieldProblem], event_id: str | None, case_id: str | None
) -> EventRejected:
    detail = "; ".join(f"{f.path}: {f.message}" for f in fields[:10])
    if len(fields) > MAX_FIELD_PROBLEMS:
        more = len(fields) - MAX_FIELD_PROBLEMS
        fields = [*fields[:MAX_FIELD_PROBLEMS], FieldProblem(path="$", message=f"{more} more")]
    rejected = _refused(origin, raw, "schema_invalid", detail, fields)
    return rejected.model_copy(update={"event_id": event_id, "case_id": case_id})


def _refused(
    origin: str,
    raw: bytes,
    reason: RejectionReason,
    detail: str,
    fields: list[FieldProblem] | None = None,
) -> EventRejected:
    original = bounded_original(raw)
    if len(original) < len(raw):
        detail = f"{detail[:800]} (original cut to its first {len(original)} of {len(raw)} bytes)"
    return rejection(None, origin, reason, detail, original=original, fields=fields)
