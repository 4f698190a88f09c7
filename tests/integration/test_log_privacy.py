"""Every log line of a real `fengqiao run` over inputs full of personal data: none of it shows.

The samples put names, mobile numbers and ID numbers where an engine could leak them: case
ids, attributes, summaries, malformed bytes, refused payloads. The engine logs each refusal with
the message's topic, partition, offset (and workflow, when the case is known) as structlog
context — and never the case id (DESIGN §7), which here is itself a phone number.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from consumers.kafka.topics import create_topics
from consumers.runtime.settings import Settings
from tests.integration.harness import ROOT, EngineProcess, produce, read_all
from tests.integration.intake_samples import ID_NUMBERS, NAMES, PHONES, SECRETS

CASE_IDS = ["PII-CASE-1", PHONES[3], "PII-CASE-3"]


def _event(case_id: str, n: int, type_: str, source: str, payload: dict[str, Any]) -> bytes:
    return json.dumps({
        "event_id": f"{case_id}/{n}", "case_id": case_id, "type": type_,
        "occurred_at": f"2026-03-0{n + 2}T10:00:00+08:00", "source": source, "payload": payload,
    }, ensure_ascii=False).encode()  # fmt: skip


def _samples() -> tuple[list[bytes], int]:
    """Input lines, and how many of them the engine must refuse."""
    talk = f"{NAMES[0]}（电话{PHONES[0]}，身份证{ID_NUMBERS[0]}）与{NAMES[1]}因宅基地纠纷"
    accepted = [
        _event(CASE_IDS[0], 0, "case.reported", "grid", {
            "workflow": "dispute-escalation", "summary": talk,
            "attributes": {"category": "property", "caller_name": NAMES[2],
                           "caller_phone": PHONES[1], "id_number": ID_NUMBERS[1]}}),
        _event(CASE_IDS[1], 0, "case.reported", "hotline-12345", {
            "workflow": "hotline-12345", "summary": talk, "caller": {"name": NAMES[3]},
            "attributes": {"urgency": "general"}}),
        _event(CASE_IDS[0], 1, "mediation.failed", "grid", {"note": talk}),
    ]  # fmt: skip
    refused = [
        f"not json: {talk}".encode(),
        _event(CASE_IDS[2], 0, "case.reported", "grid", {  # workflow names a person
            "workflow": f"{NAMES[4]}{PHONES[2]}", "attributes": {"name": NAMES[5]}}),
        _event(CASE_IDS[2], 1, "case.reported", "grid", {  # a payload that does not validate
            "attributes": {"phone": PHONES[3]}, "summary": talk}),
        _event(CASE_IDS[0], 2, "order.replied", "grid", {"by": NAMES[0]}),  # wrong workflow
        _event(CASE_IDS[1], 1, "followup.rated", "hotline-12345", {  # no call-back due yet
            "rating": "satisfied", "rater": NAMES[1]}),
        _event("PII-NOBODY", 0, "mediation.failed", "grid", {"phone": PHONES[0]}),
    ]  # fmt: skip
    return accepted + refused, len(refused)


def _env(bootstrap: str, prefix: str) -> tuple[Settings, dict[str, str]]:
    settings = Settings(
        bootstrap_servers=bootstrap, topic_case_events=f"{prefix}.case-events",
        topic_transitions=f"{prefix}.transitions", topic_case_state=f"{prefix}.case-state",
        topic_dead_letter=f"{prefix}.dead-letter", intake_topic_prefix=f"{prefix}.intake.",
        partitions=2,
    )  # fmt: skip
    create_topics(settings)
    env = {
        "FENGQIAO_BOOTSTRAP_SERVERS": bootstrap, "FENGQIAO_GROUP_ID": f"{prefix}-group",
        "FENGQIAO_TRANSACTIONAL_ID_PREFIX": prefix, "FENGQIAO_INSTANCE_ID": "a",
        "FENGQIAO_TOPIC_CASE_EVENTS": settings.topic_case_events,
        "FENGQIAO_TOPIC_TRANSITIONS": settings.topic_transitions,
        "FENGQIAO_TOPIC_CASE_STATE": settings.topic_case_state,
        "FENGQIAO_TOPIC_DEAD_LETTER": settings.topic_dead_letter,
        "FENGQIAO_INTAKE_TOPIC_PREFIX": settings.intake_topic_prefix, "FENGQIAO_PARTITIONS": "2",
        "FENGQIAO_WORKFLOWS": str(ROOT / "workflows"), "FENGQIAO_CLOCK": "events",
        "FENGQIAO_ROLE": "engine", "FENGQIAO_HTTP_PORT": "0",
    }  # fmt: skip
    return settings, env


def test_no_personal_data_and_no_case_id_in_any_log_line(
    kafka_bootstrap: str, unique_name: Callable[[str], str], tmp_path: Path
) -> None:
    settings, env = _env(kafka_bootstrap, unique_name("fq"))
    lines, refusals = _samples()
    produce(kafka_bootstrap, settings.topic_case_events, lines, partitions=2)
    log = tmp_path / "engine.log"
    engine = EngineProcess(env, log)
    engine.start()
    try:
        dead = read_all(kafka_bootstrap, settings.topic_dead_letter, expect=refusals,
                        timeout_s=90)  # fmt: skip
        records = read_all(kafka_bootstrap, settings.topic_transitions, expect=3, timeout_s=30)
    finally:
        code = engine.terminate()
    text = log.read_text(encoding="utf-8")
    assert code == 0, text
    assert len(dead) == refusals
    assert len(records) == 3  # two cases opened, one escalated: the run did real work

    leaked = [s for s in [*SECRETS, *CASE_IDS, "PII-NOBODY"] if s in text]
    assert leaked == [], "personal data or case ids in the logs"

    entries = [json.loads(line) for line in text.splitlines()]
    rejected = [e for e in entries if e["event"] == "event.rejected"]
    assert sorted(e["reason"] for e in rejected) == sorted(r["reason"] for r in dead)
    for entry in rejected:
        assert entry["topic"] == settings.topic_case_events
        assert {"partition", "offset", "level", "timestamp"} <= entry.keys()
    # A refusal on a known case says which workflow it was about.
    known = [e for e in rejected if e["reason"] in ("invalid_transition", "unauthorized_source")]
    assert {e.get("workflow") for e in known} == {"dispute-escalation", "hotline-12345"}
