"""The two late-delivery stories of the issue on the real broker, with the wall clock stopped just
after the deadline (FENGQIAO_FIXED_NOW) and the events delivered then:

1. an urgent 12345 order received at 04:00 with 2 hours to respond, responded to at 04:30;
2. a grid report with 3 working days, settled on the last day, synced the next morning.

Without `lateness:` the wall-clock timer fires first (a breach, an escalation, the on-time act
refused or recorded a rung up); with it, the procedural outcome: the answer accepted, the grid
settlement resolved at the grid, and no breach. With a correction horizon and no lateness, the
breach is committed first, then retracted with the escalation, and the procedural outcome
follows. `tests/unit/test_lateness.py` and `tests/unit/test_corrections.py` have the properties.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from pydantic import TypeAdapter

from consumers.kafka.topics import create_topics
from consumers.runtime.settings import Settings
from schemas.records import OutputRecord
from tests.integration.harness import EngineProcess, produce, read_all
from tests.unit.test_corrections import corrected_folder, live
from tests.unit.test_lateness import folder_with


def _event(n: int, case: str, type_: str, when: str, source: str, **payload: Any) -> bytes:
    data = {"event_id": f"{case}-{n}", "case_id": case, "type": type_, "occurred_at": when,
            "source": source, "payload": payload}  # fmt: skip
    return json.dumps(data).encode()


STORIES = {
    "2026-03-03T06:00:01+08:00": [
        _event(1, "late-o1", "case.reported", "2026-03-03T04:00:00+08:00", "hotline-12345",
               workflow="hotline-12345", attributes={"urgency": "urgent"}),
        _event(2, "late-o1", "order.responded", "2026-03-03T04:30:00+08:00", "hotline-12345"),
    ],
    "2026-03-06T01:00:00+08:00": [
        _event(1, "late-g1", "case.reported", "2026-03-02T09:00:00+08:00", "grid",
               workflow="dispute-escalation", attributes={"category": "neighbour"}),
        _event(2, "late-g1", "mediation.succeeded", "2026-03-05T23:30:00+08:00", "grid",
               agreement_signed=False),
    ],
}  # fmt: skip
"""The wall-clock instant each story is delivered at → its events."""

RECORD: TypeAdapter[OutputRecord] = TypeAdapter(OutputRecord)


def _run(
    bootstrap: str, prefix: str, folder: Path, now: str, *, lines: list[bytes], log: Path
) -> Any:
    settings = Settings(
        bootstrap_servers=bootstrap, topic_case_events=f"{prefix}.case-events",
        topic_transitions=f"{prefix}.transitions", topic_case_state=f"{prefix}.case-state",
        topic_dead_letter=f"{prefix}.dead-letter", partitions=1, workflows=folder,
    )  # fmt: skip
    create_topics(settings)
    env = {
        "FENGQIAO_BOOTSTRAP_SERVERS": bootstrap, "FENGQIAO_GROUP_ID": f"{prefix}-engine",
        "FENGQIAO_TRANSACTIONAL_ID_PREFIX": prefix, "FENGQIAO_INSTANCE_ID": "a",
        "FENGQIAO_TOPIC_CASE_EVENTS": settings.topic_case_events,
        "FENGQIAO_TOPIC_TRANSITIONS": settings.topic_transitions,
        "FENGQIAO_TOPIC_CASE_STATE": settings.topic_case_state,
        "FENGQIAO_TOPIC_DEAD_LETTER": settings.topic_dead_letter,
        "FENGQIAO_PARTITIONS": "1", "FENGQIAO_WORKFLOWS": str(folder), "FENGQIAO_ROLE": "engine",
        "FENGQIAO_CLOCK": "wall", "FENGQIAO_FIXED_NOW": now, "FENGQIAO_HTTP_PORT": "0",
    }  # fmt: skip
    engine = EngineProcess(env, log)
    engine.start()
    try:
        # The report first, and the clock has its turn (the messages came 2.5 s apart).
        produce(bootstrap, settings.topic_case_events, lines[:1], 1)
        read_all(bootstrap, settings.topic_transitions, expect=1, timeout_s=90, quiet_s=3)
        produce(bootstrap, settings.topic_case_events, lines[1:], 1)
        records = read_all(bootstrap, settings.topic_transitions, expect=2, timeout_s=90,
                           quiet_s=4)  # fmt: skip
        dead = read_all(bootstrap, settings.topic_dead_letter, expect=0, timeout_s=5, quiet_s=1)
    finally:
        code = engine.terminate()
    assert code == 0, log.read_text()
    return records, dead


@pytest.mark.parametrize("policy", ["none", "lateness", "correction"])
@pytest.mark.parametrize("now", sorted(STORIES), ids=["urgent order", "grid settlement"])
def test_an_act_in_time_delivered_late(
    kafka_bootstrap: str, unique_name: Callable[[str], str], tmp_path: Path, now: str,
    policy: str,
) -> None:  # fmt: skip
    folder = (corrected_folder(tmp_path) if policy == "correction"
              else folder_with(tmp_path, policy == "lateness"))  # fmt: skip
    records, dead = _run(kafka_bootstrap, unique_name("fq"), folder, now,
                         lines=STORIES[now], log=tmp_path / "engine.log")  # fmt: skip
    types = [r["type"] for r in records]
    if policy == "correction":  # the breach was committed, then retracted
        assert "sla.breached" in types
        assert "record.retracted" in types
        parsed = [RECORD.validate_python(r) for r in records]
        (history,) = live(parsed).values()
        assert not any(r.type == "sla.breached" for r in history)
        records = [r.model_dump(mode="json") for r in history]
        types = [r["type"] for r in records]
    last = [r for r in records if r["type"] == "case.transitioned"][-1]
    if policy == "none":  # what the issue found: the timer came first
        assert "sla.breached" in types
        # the on-time answer refused, or the settlement recorded a rung up
        assert dead or last["from_tier"] != "grid"
        return
    assert "sla.breached" not in types
    assert dead == []
    if now.startswith("2026-03-03"):
        assert last["to_state"] == "urgent.handling"
    else:
        assert last["trigger"] == "mediation.succeeded"
        assert last["from_state"] == "grid.mediating"
