"""Raw bytes → `CaseEvent`, or the reason they cannot be one.

Shared by `simulate` (file lines) and the Kafka loop (message values), so both refuse the same
inputs with the same reasons: `malformed` when the bytes are not a JSON object, `schema_invalid`
when the object is not a canonical event.
"""

from __future__ import annotations

import json

from pydantic import ValidationError

from engine.records import rejection
from schemas.events import CaseEvent
from schemas.records import EventRejected, FieldProblem

MAX_EVENT_BYTES = 256 * 1024
"""A canonical event is a few hundred bytes; anything near this is not one of ours."""


def decode_event(raw: bytes, origin: str) -> CaseEvent | EventRejected:
    if len(raw) > MAX_EVENT_BYTES:
        return rejection(None, origin, "malformed", f"event larger than {MAX_EVENT_BYTES} bytes",
                         original=raw[:MAX_EVENT_BYTES])  # fmt: skip
    try:
        data = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        return rejection(None, origin, "malformed", f"not JSON: {err}", original=raw)
    except RecursionError:
        return rejection(None, origin, "malformed", "not JSON: nested too deeply", original=raw)
    if not isinstance(data, dict):
        return rejection(None, origin, "malformed", "not a JSON object", original=raw)
    try:
        return CaseEvent.model_validate(data)
    except ValidationError as err:
        fields = [
            FieldProblem(path="$." + ".".join(str(p) for p in e["loc"]), message=e["msg"])
            for e in err.errors()
        ]
        detail = "; ".join(f"{f.path}: {f.message}" for f in fields[:10])
        event_id = data.get("event_id") if isinstance(data.get("event_id"), str) else None
        case_id = data.get("case_id") if isinstance(data.get("case_id"), str) else None
        rejected = rejection(None, origin, "schema_invalid", detail, original=raw, fields=fields)
        return rejected.model_copy(update={"event_id": event_id, "case_id": case_id})
