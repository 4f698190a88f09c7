"""Intake adapters on a real broker: native messages in, canonical events and transitions out.

One engine process runs with `--role all` (adapters + engine). For every channel: realistic
messages become canonical events with the channel as source; a re-sent message carries the same
event_id and changes nothing downstream; an invalid one lands in dead-letter with its field
path, keyed by its case and with its upstream message id; and no name, phone or ID number of
the samples reaches an event, a record or a log line.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from kafka import KafkaProducer

from consumers.kafka.topics import create_topics
from consumers.runtime.settings import Settings
from tests.integration.harness import ROOT, EngineProcess, read_all
from tests.integration.intake_samples import INVALID, SAMPLES, SECRETS, encode

COURT_ONLY = {
    "kind": "confirmation_decision", "message_id": "FAKE-1", "case_ref": "grid:ZJ-2026-0001",
    "at": "2026-02-20T10:00:00+08:00", "decision": "granted",
}  # fmt: skip


def _publish(bootstrap: str, prefix: str) -> int:
    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all")
    sent = 0
    for channel, messages in SAMPLES.items():
        topic = f"{prefix}{channel}"
        for message in [*messages, messages[0], INVALID[channel][0]]:  # a re-send, an invalid
            producer.send(topic, value=encode(message), headers=[("origin", b"test")])
            sent += 1
    producer.send(f"{prefix}grid", value=encode(COURT_ONLY))  # a court decision on the grid topic
    producer.send(f"{prefix}police", value=b"\xff\xfe not json")
    producer.flush()
    producer.close()
    return sent + 2


def test_every_channel_end_to_end(
    kafka_bootstrap: str, unique_name: Callable[[str], str], tmp_path: Path
) -> None:
    prefix = unique_name("fq")
    intake = f"{prefix}.intake."
    settings = Settings(
        bootstrap_servers=kafka_bootstrap, topic_case_events=f"{prefix}.case-events",
        topic_transitions=f"{prefix}.transitions", topic_case_state=f"{prefix}.case-state",
        topic_dead_letter=f"{prefix}.dead-letter", intake_topic_prefix=intake, partitions=2,
    )  # fmt: skip
    create_topics(settings)
    env = {
        "FENGQIAO_BOOTSTRAP_SERVERS": kafka_bootstrap, "FENGQIAO_GROUP_ID": f"{prefix}-engine",
        "FENGQIAO_ADAPTER_GROUP_ID": f"{prefix}-adapters",
        "FENGQIAO_TRANSACTIONAL_ID_PREFIX": prefix, "FENGQIAO_INSTANCE_ID": "a",
        "FENGQIAO_TOPIC_CASE_EVENTS": settings.topic_case_events,
        "FENGQIAO_TOPIC_TRANSITIONS": settings.topic_transitions,
        "FENGQIAO_TOPIC_CASE_STATE": settings.topic_case_state,
        "FENGQIAO_TOPIC_DEAD_LETTER": settings.topic_dead_letter,
        "FENGQIAO_INTAKE_TOPIC_PREFIX": intake, "FENGQIAO_PARTITIONS": "2",
        "FENGQIAO_WORKFLOWS": str(ROOT / "workflows"), "FENGQIAO_CLOCK": "wall",
        # Frozen before every sample: only a case's own events move its clock, whatever order the
        # channels' messages reach a partition in (the `events` watermark would depend on it).
        "FENGQIAO_FIXED_NOW": "2025-01-01T00:00:00+08:00",
        "FENGQIAO_HTTP_PORT": "0", "FENGQIAO_PERSON_KEY_SECRET": "test-secret",
    }  # fmt: skip
    _publish(kafka_bootstrap, intake)
    log = tmp_path / "engine.log"
    engine = EngineProcess(env, log)
    engine.start()
    valid = sum(len(m) for m in SAMPLES.values())
    expected_events = valid + 1 + len(SAMPLES)  # the on-spot grid report is two events
    try:
        events = read_all(kafka_bootstrap, settings.topic_case_events,
                          expect=expected_events, timeout_s=120)  # fmt: skip
        dead = read_all(kafka_bootstrap, settings.topic_dead_letter,
                        expect=len(INVALID) + 2, timeout_s=60, keys=True)  # fmt: skip
        # A lower bound: every case opens; then wait for a quiet spell for the rest.
        records = read_all(kafka_bootstrap, settings.topic_transitions, expect=11,
                           timeout_s=120, quiet_s=8)  # fmt: skip
    finally:
        code = engine.terminate()
    assert code == 0, log.read_text()

    # Canonical events: source = channel, deterministic ids, a re-send is the same event.
    assert len(events) == expected_events
    ids = [e["event_id"] for e in events]
    assert len(set(ids)) == expected_events - len(SAMPLES)
    for event in events:
        channel = event["event_id"].split(":", 1)[0]
        assert event["source"] == channel
        assert event["case_id"].startswith(f"{channel}:")
    grid_report = next(e for e in events if e["event_id"] == "grid:GR-M-1/reported")
    assert grid_report["case_id"] == "grid:ZJ-2026-0001"
    assert len(grid_report["payload"]["attributes"]["person_key"]) == 32
    petition = next(e for e in events if e["event_id"] == "petition:XF-M-1")
    assert petition["payload"]["attributes"]["petitioners"] == 28

    # Refusals: each invalid message with its field path, the fake court decision, the bytes.
    paths = {f["path"] for r in dead for f in r["fields"]}
    for channel, (_, path) in INVALID.items():
        assert path in paths, (channel, path, paths)
    # Traceable: keyed by the case the message names, with the upstream message id.
    for channel, (message, _) in INVALID.items():
        letter = next(r for r in dead if r.get("message_id") == message["message_id"])
        number = next(v for k, v in message.items() if k.endswith("_no") or k == "submission_id")
        assert letter["case_id"] == letter["_kafka_key"] == f"{channel}:{number}", letter
    fake = next(r for r in dead if '"FAKE-1"' in r["original"])
    assert fake["reason"] == "schema_invalid"
    assert fake["origin"].startswith(f"{intake}grid/")
    assert any(r["reason"] == "malformed" and r["original_encoding"] == "base64" for r in dead)
    adapter_refusals = [r for r in dead if r["origin"].startswith(intake)]
    assert all(r["headers"].get("origin") == "test" for r in adapter_refusals
               if "FAKE" not in r["original"] and r["reason"] != "malformed")  # fmt: skip

    # End to end: transitions happened, once each; the grid topic never produced a court event.
    transitions = [r for r in records if r["type"] == "case.transitioned"]
    per_case: dict[str, list[int]] = {}
    for record in records:
        per_case.setdefault(record["case_id"], []).append(record["seq"])
    assert all(sorted(s) == list(range(1, len(s) + 1)) for s in per_case.values())
    assert {r["case_id"] for r in transitions} >= {
        "hotline-12345:20250924-0031", "grid:ZJ-2026-0001", "grid:ZJ-2026-0002",
        "online:WSFQ-88001", "petition:XF-2025-0008", "police:110-20260110-77",
        "court:2026-0681-SQ-1",
    }  # fmt: skip
    assert not any(r.get("trigger", "").startswith("confirmation.") for r in records)
    hotline = [r["to_state"] for r in transitions if r["case_id"].startswith("hotline")]
    assert hotline[0] == "street.handling"

    # No personal data in canonical events, output records or logs (dead letters keep the
    # original bytes on purpose: that topic is the quarantine operators inspect).
    everything = json.dumps([events, records], ensure_ascii=False) + log.read_text("utf-8")
    leaked = [s for s in SECRETS if s in everything]
    assert leaked == []
