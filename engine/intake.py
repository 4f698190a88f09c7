"""Translate native intake messages into canonical `CaseEvent`s, as the channel files say (pure;
the files are compiled by `engine.channels`, the Kafka loop is `consumers/kafka/adapter_loop.py`).

Identity is deterministic, so re-sent messages are duplicates, not new events:
- `case_id` = `<channel>:<case_number>` (ticket, report, petition, incident, filing number),
  or the whole case id a message names in its kind's `case_id` field;
- `event_id` = `<channel>:<message_id>`, with `/<id_suffix>` when one message yields several.

The `source` of every event is the channel, i.e. the topic the message arrived on: nothing in a
payload can claim another source. Personal data never leaves: only fields the channel file maps
travel (and validation refuses a personal one); where a workflow may want to link reports by the
same person (同人同事), a keyed HMAC of the phone or ID number is added as `person_key` (only
when a secret key is configured).
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from pydantic import ValidationError

from engine.channels import Channel, CompiledEmit, CompiledKind
from engine.decode import MAX_FIELD_PROBLEMS, NotJson, load_json_object, time_problem
from engine.guards import GuardError
from schemas.events import CaseEvent
from schemas.intake.common import Person

MAX_MESSAGE_BYTES = 256 * 1024
_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:/\-]{0,79}$")


@dataclass(frozen=True, slots=True)
class FieldError:
    path: str
    message: str


@dataclass(frozen=True, slots=True)
class Refused:
    """Why a native message cannot become canonical events, and what of it could be read (so
    the dead letter can be keyed by its case and traced back to the upstream message)."""

    reason: str  # malformed | schema_invalid
    detail: str
    errors: tuple[FieldError, ...] = ()
    kind: str = ""
    message_id: str | None = None
    case_id: str | None = None


@dataclass(frozen=True, slots=True)
class Translation:
    """The whole outcome of one message: its kind and events, or its refusal."""

    kind: str
    events: list[CaseEvent]
    refused: Refused | None = None


@dataclass(frozen=True, slots=True)
class IntakeContext:
    """What translation needs beyond the message: the compiled channels, the HMAC key."""

    channels: Mapping[str, Channel] = field(default_factory=dict)
    person_key_secret: bytes | None = None


def translate(channel: str, raw: bytes, ctx: IntakeContext) -> list[CaseEvent] | Refused:
    """One native message of `channel` → its canonical events, or the reason it is refused."""
    result = interpret(channel, raw, ctx)
    return result.refused or result.events


def interpret(channel: str, raw: bytes, ctx: IntakeContext) -> Translation:  # noqa: PLR0911
    """`translate` with the message's kind, for the adapters' metrics."""
    compiled = ctx.channels.get(channel)
    if compiled is None:
        return _refused("", Refused("schema_invalid", f"unknown channel {channel!r}"))
    if len(raw) > MAX_MESSAGE_BYTES:
        return _refused("", Refused("malformed", f"message larger than {MAX_MESSAGE_BYTES} bytes"))
    try:
        data = load_json_object(raw)
    except NotJson as err:
        return _refused("", Refused("malformed", str(err)))
    kind_name = data.get("kind") if isinstance(data.get("kind"), str) else None
    kind = compiled.kinds.get(kind_name or "")
    seen = _traceable(compiled, kind, data)
    try:
        message = compiled.parser.validate_python(data)
    except ValidationError as err:
        errors = tuple(
            FieldError(_json_path(e["loc"], data)[:200], e["msg"])
            for e in err.errors()[:MAX_FIELD_PROBLEMS]
        )
        detail = "; ".join(f"{e.path}: {e.message}" for e in errors[:10])
        return _refused(
            kind_name if kind and kind_name else "",
            Refused("schema_invalid", detail, errors, **seen),
        )
    assert kind is not None  # the parser accepted the kind
    assert kind_name is not None
    values = _localised(vars(message), compiled)
    late = _time_refusal(values)
    if late is not None:
        path, problem = late
        error = FieldError(path, problem)
        return _refused(
            kind_name, Refused("schema_invalid", f"{path}: {problem}", (error,), **seen)
        )
    try:
        events = _Builder(compiled, kind, values, ctx.person_key_secret).events()
    except (ValidationError, GuardError, KeyError) as err:  # e.g. a too-long id, a rule failing
        if isinstance(err, GuardError):
            detail = f"a rule of the channel file cannot be evaluated: {err}"
        else:
            text = err.errors()[0]["msg"] if isinstance(err, ValidationError) else str(err)
            detail = f"cannot build a canonical event: {text}"
        why = Refused("schema_invalid", detail[:500], **seen)
        return _refused(kind_name, why)
    return Translation(kind_name, events)


def _refused(kind: str, refused: Refused) -> Translation:
    return Translation(kind, [], replace(refused, kind=kind))


def _traceable(channel: Channel, kind: CompiledKind | None, data: dict[str, Any]) -> dict[str, Any]:
    """The message id and case id of a message, as far as they can be read (even when it is
    refused), so its dead letter can be found by ticket number and traced upstream."""
    if kind is None:
        return {}
    spec = kind.spec
    message_id = data.get(spec.message_id)
    number = data.get(spec.case_number or spec.case_id or "")
    case_id = None
    if isinstance(number, str) and _ID.match(number):
        case_id = f"{channel.name}:{number}" if spec.case_number else number
    return {
        "message_id": message_id if isinstance(message_id, str) and _ID.match(message_id) else None,
        "case_id": case_id,
    }


def _localised(values: dict[str, Any], channel: Channel) -> dict[str, Any]:
    """Naive time stamps read in the channel's zone."""
    out = dict(values)
    for name, value in values.items():
        if isinstance(value, datetime) and value.tzinfo is None:
            out[name] = value.replace(tzinfo=channel.zone)
    return out


def _time_refusal(values: Mapping[str, Any]) -> tuple[str, str] | None:
    """A time stamp no canonical event may carry (far future or past: see engine.decode)."""
    for name, value in values.items():
        if isinstance(value, datetime):
            problem = time_problem(value)
            if problem is not None:
                return f"$.{name}", problem
    return None


def _json_path(loc: tuple[Any, ...], data: dict[str, Any]) -> str:
    """`$.parties.0.phone` style; pydantic's union tag (the `kind` value) is not a field."""
    parts = list(loc)
    if parts and parts[0] == data.get("kind"):
        parts = parts[1:]
    return "$." + ".".join(str(p) for p in parts) if parts else "$.kind"


_KEY_CHARS = re.compile(r"[\s\-()+]")


def _for_rules(value: Any) -> Any:
    """CEL reads instants in UTC (it cannot convert a zone-named datetime)."""
    return value.astimezone(UTC) if isinstance(value, datetime) else value


@dataclass(frozen=True)
class _Builder:
    """The events of one valid message: every emit whose condition holds, in file order."""

    channel: Channel
    kind: CompiledKind
    values: dict[str, Any]
    secret: bytes | None

    def events(self) -> list[CaseEvent]:
        readable = {n: _for_rules(self.values.get(n)) for n in self.kind.readable}
        context = {"message": readable}
        events = [
            self._event(emit, readable)
            for emit in self.kind.emits
            if emit.when is None or emit.when.evaluate(context)
        ]
        ids = [e.event_id for e in events]
        if len(set(ids)) < len(ids):  # two conditions the author meant to exclude each other
            raise KeyError(f"two events with the id {ids[0]!r}: their `when` conditions overlap")
        return events

    def _event(self, emit: CompiledEmit, readable: dict[str, Any]) -> CaseEvent:
        spec = self.kind.spec
        event_type = emit.event_type(readable)
        payload = self._copied(emit.spec.payload)
        if event_type == "case.reported":
            attributes = self._copied(emit.spec.attributes)
            key = self._person_key(emit.spec.person_key)
            if key is not None:
                attributes["person_key"] = key
            payload = {"workflow": self._workflow(emit, readable), "attributes": attributes}
        message_id = self.values[spec.message_id]
        suffix = f"/{emit.spec.id_suffix}" if emit.spec.id_suffix else ""
        if spec.case_number is not None:
            case_id = f"{self.channel.name}:{self.values[spec.case_number]}"
        else:
            case_id = str(self.values[spec.case_id or ""])
        return CaseEvent(
            event_id=f"{self.channel.name}:{message_id}{suffix}",
            case_id=case_id,
            type=event_type,
            occurred_at=self.values[spec.occurred_at],
            source=self.channel.name,
            payload=payload,
        )

    def _workflow(self, emit: CompiledEmit, readable: dict[str, Any]) -> str:
        context = {"message": readable}
        for condition, workflow in emit.rules:
            if condition is None or condition.evaluate(context):
                return workflow
        raise KeyError("no workflow rule holds")  # validation requires a default rule

    def _copied(self, mapping: Mapping[str, Any]) -> dict[str, Any]:
        """Mapped fields (left out when empty) and constants."""
        out: dict[str, Any] = {}
        for name, value in mapping.items():
            if isinstance(value, dict):
                out[name] = value["value"]
            elif isinstance(value, str):
                copied = self.values.get(value)
                if copied is None or copied == "":
                    continue
                out[name] = copied.isoformat() if isinstance(copied, datetime) else copied
            else:
                out[name] = value
        return out

    def _person_key(self, fields: list[str]) -> str | None:
        """HMAC-SHA256 of the first party's normalised phone or ID number, or None."""
        if self.secret is None:
            return None
        for name in fields:
            value = self.values.get(name)
            people: list[Person] = value if isinstance(value, list) else [value] if value else []
            for person in people:
                raw = person.id_number or person.phone
                if raw:
                    normalised = _KEY_CHARS.sub("", raw).upper()
                    return hmac.new(self.secret, normalised.encode(), hashlib.sha256).hexdigest()[
                        :32
                    ]
        return None
