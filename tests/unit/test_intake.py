"""Translation of native intake messages (pure): identity, source, personal data, refusals."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.intake import IntakeContext, Refused, translate
from engine.registry import WorkflowRegistry
from engine.vocabulary import BUILT_IN_EVENTS, fields_problem
from schemas.events import CaseEvent
from tests.integration.intake_samples import CHANNELS, INVALID, SAMPLES, SECRETS, encode

pytestmark = pytest.mark.unit

CTX = IntakeContext(CHANNELS, person_key_secret=b"unit-secret")
ROOT = Path(__file__).resolve().parents[2]


def events(channel: str, message: dict[str, Any], ctx: IntakeContext = CTX) -> list[CaseEvent]:
    result = translate(channel, encode(message), ctx)
    assert not isinstance(result, Refused), result
    return result


@pytest.mark.parametrize("channel", sorted(SAMPLES))
def test_samples_translate_with_the_channel_as_source_and_no_personal_data(channel: str) -> None:
    for message in SAMPLES[channel]:
        for event in events(channel, message):
            assert event.source == channel
            assert event.event_id == f"{channel}:{message['message_id']}" or (
                event.event_id.startswith(f"{channel}:{message['message_id']}/")
            )
            text = event.model_dump_json()
            assert [s for s in SECRETS if s in text] == []


def test_identity_is_deterministic_and_follow_ups_find_their_case() -> None:
    order, update, _ = SAMPLES["hotline-12345"]
    first, again = events("hotline-12345", order), events("hotline-12345", order)
    assert first == again
    (reported,) = first
    (returned,) = events("hotline-12345", update)
    assert reported.case_id == returned.case_id == "hotline-12345:20250924-0031"
    assert returned.type == "order.returned"
    assert reported.occurred_at.isoformat() == "2025-09-24T09:40:00+08:00"  # naive = Shanghai


def test_person_key_links_the_same_person_only_with_a_secret() -> None:
    online = SAMPLES["online"][0]
    keyed = events("online", online)[0].payload["attributes"]["person_key"]
    spaced = {**online, "applicant": {**online["applicant"],
                                      "phone": " 138-1234 5678 ", "id_number": None}}  # fmt: skip
    assert keyed != events("online", spaced)[0].payload["attributes"].get("person_key")
    same_id = {**online, "message_id": "other", "applicant": {"id_number": "330681198001011234"}}
    assert events("online", same_id)[0].payload["attributes"]["person_key"] == keyed
    unkeyed = events("online", online, IntakeContext(CHANNELS))[0]
    assert "person_key" not in unkeyed.payload["attributes"]


def test_a_grid_report_settled_on_the_spot_is_reported_and_resolved() -> None:
    reported, settled = events("grid", SAMPLES["grid"][1])
    assert (reported.type, settled.type) == ("case.reported", "mediation.succeeded")
    assert settled.payload == {"agreement_signed": False}


def test_court_confirmation_names_its_case_and_only_the_court_topic_accepts_it() -> None:
    decision = {"kind": "confirmation_decision", "message_id": "C9", "case_ref": "grid:R-1",
                "at": "2026-02-20T10:00:00+08:00", "decision": "granted"}  # fmt: skip
    (event,) = events("court", decision)
    assert (event.case_id, event.type, event.source) == ("grid:R-1", "confirmation.granted",
                                                         "court")  # fmt: skip
    for channel in sorted(set(CHANNELS) - {"court"}):
        refused = translate(channel, encode(decision), CTX)
        assert isinstance(refused, Refused)
        assert refused.reason == "schema_invalid"


@pytest.mark.parametrize("channel", sorted(INVALID))
def test_invalid_messages_are_refused_with_the_field_path(channel: str) -> None:
    message, path = INVALID[channel]
    refused = translate(channel, encode(message), CTX)
    assert isinstance(refused, Refused)
    assert path in [e.path for e in refused.errors]
    assert path in refused.detail


@pytest.mark.parametrize(
    ("raw", "reason"),
    [(b"", "malformed"), (b"[1, 2]", "malformed"), (b"\xff\xfe", "malformed"),
     (b"{}", "schema_invalid"), (b'{"kind": "work_order"}', "schema_invalid"),
     (b"[" * 100_000, "malformed"), (b" " * 300_000, "malformed")],
)  # fmt: skip
def test_garbage_is_refused(raw: bytes, reason: str) -> None:
    refused = translate("hotline-12345", raw, CTX)
    assert isinstance(refused, Refused)
    assert refused.reason == reason


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=30),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner,
                                                                max_size=4),
    max_leaves=20,
)  # fmt: skip


@settings(max_examples=200, deadline=None)
@given(channel=st.sampled_from(sorted(CHANNELS)), kind=st.sampled_from(
    ["work_order", "order_update", "follow_up", "patrol_report", "mediation_result",
     "submission", "withdrawal", "registration", "decision", "transfer", "diversion",
     "mediation_outcome", "confirmation_decision"]), extra=st.dictionaries(
    st.sampled_from(["message_id", "ticket_no", "report_no", "at", "received_at", "urgency",
                     "category", "case_ref", "petitioner_count", "parties", "decision"]),
    json_values, max_size=8))  # fmt: skip
def test_translation_never_raises(channel: str, kind: str, extra: dict[str, Any]) -> None:
    result = translate(channel, json.dumps({"kind": kind, **extra}).encode(), CTX)
    assert isinstance(result, Refused | list)
    if isinstance(result, list):
        assert all(e.source == channel for e in result)


FEEDS = {"hotline-12345": "hotline-12345", "grid": "dispute-escalation",
         "online": "dispute-escalation", "petition": "petition", "police": "dispute-escalation",
         "court": "dispute-escalation"}  # fmt: skip
"""The workflow each channel's samples belong to."""


@pytest.mark.parametrize("channel", sorted(SAMPLES))
def test_canonical_events_speak_every_shipped_version_s_vocabulary(channel: str) -> None:
    """What the intake emits is what the workflows declare: every event type is declared (or
    built in), and declared attributes and payload fields have their declared types."""
    registry = WorkflowRegistry.load(ROOT / "workflows")
    versions = registry.workflows[FEEDS[channel]]
    for message in SAMPLES[channel]:
        for event in events(channel, message):
            for compiled in versions.values():
                spec = compiled.spec
                where = f"{channel} {event.type} vs {spec.name}@{spec.version}"
                assert event.source in spec.sources, where
                if event.type == "case.reported":
                    attributes = event.payload["attributes"]
                    assert fields_problem("attributes", spec.attributes, attributes) is None, where
                    continue
                assert event.type in spec.events or event.type in BUILT_IN_EVENTS, where
                declared = spec.events[event.type].payload
                assert fields_problem("payload", declared, event.payload) is None, where
