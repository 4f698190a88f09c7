"""The README's channel tutorial on a real broker: a seventh channel and a routed 12345 category,
added with files only, work end to end (topics created from the channel files, the adapters
translate, the engine opens the cases on the new workflow), and a broken referral is a dead
letter an integrator can find by its referral number.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from kafka import KafkaProducer

from consumers.kafka.topics import create_topics
from consumers.runtime.settings import Settings
from tests.integration.harness import EngineProcess, read_all
from tests.unit.test_readme_tutorial import ORDER, REFERRAL, tutorial_folder


def test_the_tutorial_channel_end_to_end(
    kafka_bootstrap: str, unique_name: Callable[[str], str], tmp_path: Path
) -> None:
    folder = tutorial_folder(tmp_path)
    prefix = unique_name("fq")
    intake = f"{prefix}.intake."
    settings = Settings(
        bootstrap_servers=kafka_bootstrap, topic_case_events=f"{prefix}.case-events",
        topic_transitions=f"{prefix}.transitions", topic_case_state=f"{prefix}.case-state",
        topic_dead_letter=f"{prefix}.dead-letter", intake_topic_prefix=intake, partitions=2,
        workflows=folder,
    )  # fmt: skip
    created = create_topics(settings)
    assert f"{intake}procuratorate" in created.created
    producer = KafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all")
    producer.send(f"{intake}procuratorate", value=json.dumps(REFERRAL).encode())
    producer.send(f"{intake}hotline-12345", value=json.dumps(ORDER).encode())
    broken = {**REFERRAL, "message_id": "PR-2", "referral_no": "JT-2026-008", "workers": 0}
    producer.send(f"{intake}procuratorate", value=json.dumps(broken).encode())
    producer.flush()
    producer.close()
    env = {
        "FENGQIAO_BOOTSTRAP_SERVERS": kafka_bootstrap, "FENGQIAO_GROUP_ID": f"{prefix}-engine",
        "FENGQIAO_ADAPTER_GROUP_ID": f"{prefix}-adapters",
        "FENGQIAO_TRANSACTIONAL_ID_PREFIX": prefix, "FENGQIAO_INSTANCE_ID": "a",
        "FENGQIAO_TOPIC_CASE_EVENTS": settings.topic_case_events,
        "FENGQIAO_TOPIC_TRANSITIONS": settings.topic_transitions,
        "FENGQIAO_TOPIC_CASE_STATE": settings.topic_case_state,
        "FENGQIAO_TOPIC_DEAD_LETTER": settings.topic_dead_letter,
        "FENGQIAO_INTAKE_TOPIC_PREFIX": intake, "FENGQIAO_PARTITIONS": "2",
        "FENGQIAO_WORKFLOWS": str(folder), "FENGQIAO_CLOCK": "wall",
        "FENGQIAO_FIXED_NOW": "2026-03-01T00:00:00+08:00", "FENGQIAO_HTTP_PORT": "0",
    }  # fmt: skip
    log = tmp_path / "engine.log"
    engine = EngineProcess(env, log)
    engine.start()
    try:
        records = read_all(kafka_bootstrap, settings.topic_transitions, expect=2, timeout_s=120)
        dead = read_all(kafka_bootstrap, settings.topic_dead_letter, expect=1, timeout_s=60,
                        keys=True)  # fmt: skip
    finally:
        code = engine.terminate()
    assert code == 0, log.read_text()

    opened = {r["case_id"]: (r["workflow"], r["to_state"]) for r in records
              if r["type"] == "case.transitioned"}  # fmt: skip
    assert opened == {
        "procuratorate:JT-2026-007": ("wage-arrears", "township.mediating"),
        "hotline-12345:20260302-0100": ("wage-arrears", "township.mediating"),
    }
    (letter,) = dead
    assert letter["_kafka_key"] == letter["case_id"] == "procuratorate:JT-2026-008"
    assert letter["message_id"] == "PR-2"
    assert letter["reason"] == "schema_invalid"
    assert [f["path"] for f in letter["fields"]] == ["$.workers"]
    assert "adapters.refused" in log.read_text()
