"""Play scenarios through the engine and compare what happened with what the author expected.

Each scenario gets a fresh `Replay` (no state leaks from one story into the next) and is fed
the same way `simulate` feeds a file: each step's event as the bytes of a canonical event
(`Replay.feed`, which fires due timers first), a step without an event as a move of the
watermark (`Replay.advance`); a step's native message through its channel file first
(`engine.scenarios.messages`). So scenarios test the engine that runs in production.

A scenario stops at its first failing step: later steps start from a state the author did not
intend, and their mismatches would only bury the first, real one. The result says, field by
field, what was expected and what happened, plus every record the step emitted.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from engine.case import Case
from engine.core import Engine
from engine.replay import Replay
from engine.scenarios.messages import Delivery, deliver, describe, json_bytes
from engine.scenarios.offsets import apply_offset, parse_offset
from engine.scenarios.spec import StepSpec, Suite
from schemas.events import CaseEvent
from schemas.records import OutputRecord

SHOWN_FIELDS = (
    "state", "from_state", "to_state", "to_tier", "trigger", "action", "deadline", "outcome",
    "resolved_tier", "escalations", "on_time", "reason", "detail",
)  # fmt: skip
"""The fields that tell a record's story, in the order a step's records are listed."""


@dataclass(frozen=True, slots=True)
class Mismatch:
    """One expectation that did not hold: what, expected, actual (written as in the file)."""

    what: str
    expected: str
    actual: str
    note: str = ""


@dataclass(frozen=True, slots=True)
class StepFailure:
    number: int
    """1-based position of the step in its scenario."""
    line: int
    at: datetime | None
    event: str
    mismatches: tuple[Mismatch, ...]
    records: tuple[str, ...]
    """Every record the step emitted, one line each."""


@dataclass(frozen=True, slots=True)
class ScenarioResult:
    name: str
    line: int
    failure: StepFailure | None

    @property
    def passed(self) -> bool:
        return self.failure is None


def run_suite(suite: Suite) -> list[ScenarioResult]:
    return [run_scenario(suite, i) for i in range(len(suite.spec.scenarios))]


def run_scenario(suite: Suite, index: int) -> ScenarioResult:
    """Play scenario `index` of `suite` until it ends or a step fails."""
    scenario = suite.spec.scenarios[index]
    replay = Replay(Engine(suite.registry))
    at = scenario.start
    failure: StepFailure | None = None
    for n, step in enumerate(scenario.steps, start=1):
        line = suite.line_of("scenarios", index, "steps", n - 1)
        try:
            at = _instant(suite, step, at)
        except OverflowError:
            mismatch = Mismatch("time", "an instant before the year 9999", "beyond it")
            failure = StepFailure(n, line, None, _describe_event(step), (mismatch,), ())
        else:
            failure = _play(suite, replay, step, number=n, line=line, at=at, case=scenario.case)
        if failure is not None:
            break
    return ScenarioResult(scenario.name, suite.line_of("scenarios", index), failure)


def _play(
    suite: Suite, replay: Replay, step: StepSpec, *, number: int, line: int, at: datetime, case: str
) -> StepFailure | None:
    """Feed one step to the replay (its event, its message, or the passing of time), check it."""
    case_id = step.case or case
    duplicates = replay.stats.duplicates
    origin = f"{suite.path}:{line}"
    delivery: Delivery | None = None
    refusal: tuple[str, str] | None = None
    if step.message is not None:
        delivery = deliver(suite, replay, step.message, at=at, origin=origin)
        records, case_id, refusal = delivery.records, delivery.case_id(case_id), delivery.refusal()
    elif step.event is None:
        records = list(replay.advance(at))
    else:
        event_id = step.event.id or f"step-{number}"
        records = list(replay.feed(_event_bytes(suite, step, case_id, event_id, at), origin))
        refusal = next(
            ((r.reason, r.detail) for r in records
             if r.type == "event.rejected" and r.event_id == event_id),
            None,
        )  # fmt: skip
    mismatches = _check(
        suite, step, case=replay.cases.get(case_id), records=records, refusal=refusal,
        events=delivery.translation.events if delivery else [],
        duplicate=replay.stats.duplicates > duplicates,
    )  # fmt: skip
    if not mismatches:
        return None
    return StepFailure(
        number, line, at, _describe_event(step, delivery), tuple(mismatches),
        tuple(describe_record(r.model_dump(), suite) for r in records),
    )  # fmt: skip


def _instant(suite: Suite, step: StepSpec, previous: datetime | None) -> datetime:
    if step.at is not None:
        return step.at.astimezone(suite.workflow.tz)
    assert previous is not None  # the spec requires a time for the first step
    if step.after is None:
        return previous
    return apply_offset(parse_offset(step.after), previous, suite.workflow)


def _event_bytes(suite: Suite, step: StepSpec, case_id: str, event_id: str, at: datetime) -> bytes:
    """The canonical event of a step, as `simulate` would read it from a file line.

    A `case.reported` payload that names no workflow reports a case of the file's workflow:
    saying it again in every scenario would only be noise.
    """
    assert step.event is not None
    payload = dict(step.event.payload)
    if step.event.type == "case.reported":
        payload.setdefault("workflow", suite.workflow.name)
    event = {
        "event_id": event_id, "case_id": case_id, "type": step.event.type,
        "occurred_at": at.isoformat(), "source": step.event.source, "payload": payload,
    }  # fmt: skip
    return json_bytes(event)  # unquoted YAML times in the payload become RFC 3339 text


def _describe_event(step: StepSpec, delivery: Delivery | None = None) -> str:
    if step.message is not None:
        return describe(step.message, delivery)
    if step.event is None:
        return "time passes"
    return f"{step.event.type} from {step.event.source}"


# -- expectations ---------------------------------------------------------------------------


def _check(
    suite: Suite,
    step: StepSpec,
    *,
    case: Case | None,
    records: list[OutputRecord],
    refusal: tuple[str, str] | None,
    events: list[CaseEvent],
    duplicate: bool,
) -> list[Mismatch]:
    """Every expectation of `step` that does not hold; an unexpected refusal always fails."""
    expect = step.expect
    given = expect.model_fields_set if expect else set()
    out: list[Mismatch] = []
    if "refused" not in given and refusal is not None:
        out.append(Mismatch("refused", "not refused", f"{refusal[0]}: {refusal[1]}"))
    if expect is None:
        return out
    facts = {
        "refused": refusal[0] if refusal is not None else None,
        "duplicate": duplicate,
        **_facts(suite, case),
    }
    for key, actual in facts.items():
        if key in given and not _same(getattr(expect, key), actual):
            mismatch = _mismatch(key, getattr(expect, key), actual, suite)
            if case is None and key not in ("refused", "duplicate"):
                mismatch = replace(mismatch, note="the case does not exist")
            out.append(mismatch)
    dumped = [r.model_dump() for r in records]
    if expect.records is not None:
        out.extend(_in_order(expect.records, dumped, suite))
    if expect.records_exactly is not None:
        out.extend(_exactly(expect.records_exactly, dumped, suite))
    if expect.events is not None:
        out.extend(_events(expect.events, events, suite))
    return out


def _events(
    expected: list[str | dict[str, Any]], events: list[CaseEvent], suite: Suite
) -> list[Mismatch]:
    """The message's canonical events: as many as expected, each matching in order (a type
    alone, or some fields)."""
    wanted = [{"type": e} if isinstance(e, str) else e for e in expected]
    if len(wanted) != len(events):
        shown = [e if isinstance(e, str) else e.get("type", "?") for e in expected]
        return [Mismatch("events", _show(shown, suite), _show([e.type for e in events], suite))]
    out: list[Mismatch] = []
    for i, (want, event) in enumerate(zip(wanted, events, strict=True)):
        out.extend(_differences(f"events[{i}]", want, event.model_dump(), suite))
    return out


def _facts(suite: Suite, case: Case | None) -> dict[str, Any]:
    """What can be expected of the case after a step, by the name the expectation uses (all
    null while the case does not exist: `state: null` expects that)."""
    keys = ("state", "tier", "deadline", "warning", "paused", "extensions", "escalations",
            "closed", "outcome")  # fmt: skip
    if case is None:
        return dict.fromkeys(keys)
    sla = case.sla
    workflow = suite.registry.get(case.workflow, case.version)
    state = workflow.state(case.state) if workflow else None
    return {
        "state": case.state,
        "tier": case.tier,
        "deadline": sla.deadline if sla else None,
        "warning": sla.warning_at if sla else None,
        "paused": (sla.paused_at is not None) if sla else None,
        "extensions": sla.extensions if sla else None,
        "escalations": case.escalations,
        "closed": case.closed,
        "outcome": state.outcome if state and case.closed else None,
    }


def _same(expected: Any, actual: Any) -> bool:
    """Expected (from YAML) against actual (from a record): dicts by subset, times by instant."""
    if isinstance(expected, dict):
        return isinstance(actual, dict) and all(
            k in actual and _same(v, actual[k]) for k, v in expected.items()
        )
    if isinstance(actual, datetime):
        instant = _as_instant(expected)
        return instant is not None and instant == actual
    if isinstance(expected, bool) or isinstance(actual, bool):
        return type(expected) is type(actual) and expected == actual  # 1 is not true
    return bool(expected == actual)


def _as_instant(value: Any) -> datetime | None:
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value)
        except ValueError:
            return None
    if isinstance(value, datetime) and value.tzinfo is not None:
        return value
    return None


def _in_order(
    expected: list[dict[str, Any]], actual: list[dict[str, Any]], suite: Suite
) -> list[Mismatch]:
    """Each expected record matched, in order, by a later actual one; extra records are fine."""
    position = 0
    for i, wanted in enumerate(expected):
        found = next((j for j in range(position, len(actual)) if _same(wanted, actual[j])), None)
        if found is None:
            return _nearest_miss(f"records[{i}]", wanted, actual[position:], suite)
        position = found + 1
    return []


def _exactly(
    expected: list[dict[str, Any]], actual: list[dict[str, Any]], suite: Suite
) -> list[Mismatch]:
    out: list[Mismatch] = []
    if len(expected) != len(actual):
        out.append(Mismatch("records_exactly (count)", str(len(expected)), str(len(actual))))
    for i, (wanted, got) in enumerate(zip(expected, actual, strict=False)):
        out.extend(_differences(f"records_exactly[{i}]", wanted, got, suite))
    return out


def _nearest_miss(
    what: str, wanted: dict[str, Any], rest: list[dict[str, Any]], suite: Suite
) -> list[Mismatch]:
    """Field differences against the first remaining record of the wanted type, if any."""
    kind = wanted.get("type")
    candidate = next((r for r in rest if kind is None or r.get("type") == kind), None)
    if candidate is None:
        return [Mismatch(what, _show(wanted, suite), "no such record")]
    return _differences(what, wanted, candidate, suite)


def _differences(what: str, wanted: Any, got: Any, suite: Suite) -> list[Mismatch]:
    if isinstance(wanted, dict) and isinstance(got, dict):
        out: list[Mismatch] = []
        for key, value in wanted.items():
            out.extend(_differences(f"{what}.{key}", value, got.get(key), suite))
        return out
    return [] if _same(wanted, got) else [_mismatch(what, wanted, got, suite)]


def _mismatch(what: str, expected: Any, actual: Any, suite: Suite) -> Mismatch:
    note = ""
    instant = _as_instant(expected)
    if instant is not None and isinstance(actual, datetime):
        note = _how_far(actual - instant)
    return Mismatch(what, _show(expected, suite), _show(actual, suite), note)


def _how_far(delta: timedelta) -> str:
    """ "1 day later", "2 h 30 min earlier": the size of a deadline mistake at a glance."""
    later = delta > timedelta(0)
    delta = abs(delta)
    hours, seconds = divmod(delta.seconds, 3600)
    parts = [
        f"{delta.days} day{'s' if delta.days != 1 else ''}" if delta.days else "",
        f"{hours} h" if hours else "",
        f"{seconds // 60} min" if seconds // 60 else "",
    ]
    size = " ".join(p for p in parts if p) or "less than a minute"
    return f"actual is {size} {'later' if later else 'earlier'}"


def _show(value: Any, suite: Suite) -> str:
    """A value as the author would write it in the scenario file."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime):
        return value.astimezone(suite.workflow.tz).isoformat()
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {_show(v, suite)}" for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ", ".join(_show(v, suite) for v in value) + "]"
    return str(value)


def describe_record(record: dict[str, Any], suite: Suite) -> str:
    """One line per record: its type and the fields that tell what it did."""
    parts = [str(record.get("type"))]
    for key in SHOWN_FIELDS:
        if record.get(key) is not None:
            parts.append(f"{key}={_show(record[key], suite)}")
    sla = record.get("sla")
    if isinstance(sla, dict):
        parts.append(f"sla.deadline={_show(sla['deadline'], suite)}")
        parts.extend(f"sla.{k}={_show(sla[k], suite)}" for k in ("paused", "extensions") if sla[k])
    if record.get("late"):
        parts.append("late=true")
    return " ".join(parts)
