"""Scenario steps that send a native intake message: message in, canonical events out, cases on.

Why through the channel files and not a test double: a scenario that starts from a 12345 work
order tests the mapping an integrator relies on (which fields travel, which case id, which
workflow, which events one message becomes) together with the workflow, on the path production
takes. The translation is `engine.intake.interpret`, the function the adapter loop runs, and each
resulting event reaches the replay as the bytes the adapter would have put on the case-events
topic.

Time: the step's `at`/`after` is when the message *arrives* (the engine's clock moves there
first, firing every timer due by then, as the Kafka loop's clock would); each event's
`occurred_at` is the message's own time stamp, as the channel file maps it. So a message stamped
before its arrival is a late event, exactly like an `event` step with an earlier `at`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from engine.intake import IntakeContext, Translation, interpret
from engine.replay import Replay
from engine.scenarios.spec import MessageSpec, Suite
from schemas.records import OutputRecord


@dataclass(frozen=True, slots=True)
class Delivery:
    """What one message step did: its translation and every record of the step."""

    translation: Translation
    records: list[OutputRecord]

    def case_id(self, fallback: str) -> str:
        """The message's case (from its events, or as far as a refused message could be read);
        `fallback` when not even that could be read."""
        if self.translation.events:
            return self.translation.events[0].case_id
        refused = self.translation.refused
        return refused.case_id if refused is not None and refused.case_id else fallback

    def refusal(self) -> tuple[str, str] | None:
        """(reason, detail) of the first refusal: the adapter's, or the engine's of one of the
        message's events."""
        refused = self.translation.refused
        if refused is not None:
            return refused.reason, f"{refused.detail} (the channel refused the message)"
        ids = {event.event_id for event in self.translation.events}
        for record in self.records:
            if record.type == "event.rejected" and record.event_id in ids:
                return record.reason, record.detail
        return None


def deliver(
    suite: Suite, replay: Replay, message: MessageSpec, *, at: datetime, origin: str
) -> Delivery:
    """Translate `message` with the suite's channels and feed its events at `at`."""
    context = IntakeContext(channels=suite.channels)
    translation = interpret(message.channel, body_bytes(message), context)
    records = list(replay.advance(at))
    for event in translation.events:
        records.extend(replay.feed(event.model_dump_json().encode(), origin))
    return Delivery(translation, records)


def body_bytes(message: MessageSpec) -> bytes:
    """The message as its system would send it: JSON (a string body: those very bytes)."""
    if isinstance(message.body, str):
        return message.body.encode()
    return json_bytes(message.body)


def json_bytes(data: dict[str, Any]) -> bytes:
    """A mapping from the scenario file as JSON; unquoted YAML times become ISO 8601 text, as
    in a real message (a time without an offset stays without one)."""
    return json.dumps(data, default=_json_value, ensure_ascii=False).encode()


def _json_value(value: object) -> str:
    return value.isoformat() if isinstance(value, date) else str(value)


def describe(message: MessageSpec, delivery: Delivery | None = None) -> str:
    """`hotline-12345 work_order → case.reported`, for the failure report."""
    kind = message.body.get("kind") if isinstance(message.body, dict) else None
    text = f"{message.channel} {kind if isinstance(kind, str) else 'message'}"
    if delivery is None:
        return text
    if delivery.translation.refused is not None:
        return f"{text} (refused by the channel)"
    types = [event.type for event in delivery.translation.events]
    return f"{text} → {', '.join(types) if types else 'no event'}"
