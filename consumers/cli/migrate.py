"""`fengqiao migrate`: move the open cases of one workflow version to another, through Kafka.

Reads the case-state changelog to find the open cases of `NAME@FROM`, checks that the state map
covers every state they are in, and publishes one `case.migrated` event per case to the
case-events topic. The engine applies them like any event: exactly once (the event id is derived
from the migration and the case, so running the command twice moves nothing twice), ordered with
the case's other events, and audited as `case.migrated` records. `--dry-run` only reports.
"""

from __future__ import annotations

import json
import re
import sys
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from kafka import KafkaProducer

from consumers.kafka.changelog import changelog_partitions, read_changelog
from consumers.runtime.settings import Settings, kafka_client_config
from engine.case import Case
from engine.registry import WorkflowRegistry
from engine.stores import decode_case
from schemas.events import MIGRATION_SOURCE, MIGRATION_TYPE, CaseEvent

_VERSIONED = re.compile(r"^(?P<name>[A-Za-z][A-Za-z0-9_.\-]*)@(?P<version>[1-9][0-9]*)$")


class MigrationError(ValueError):
    """The migration cannot be done as asked; the message says why."""


@dataclass(frozen=True)
class Plan:
    name: str
    from_version: int
    to_version: int
    state_map: dict[str, str]
    sla: str

    @property
    def label(self) -> str:
        return f"{self.name}@{self.from_version}->{self.to_version}"


def parse_plan(source: str, target: str, mapping: list[str], sla: str) -> Plan:
    old, new = _VERSIONED.match(source), _VERSIONED.match(target)
    if old is None or new is None:
        raise MigrationError("--from and --to take NAME@VERSION, e.g. dispute-escalation@1")
    if old["name"] != new["name"]:
        raise MigrationError("a migration stays within one workflow (same NAME on both sides)")
    pairs = [m.split("=", 1) for m in mapping]
    if any(len(p) != 2 or not p[0] or not p[1] for p in pairs):
        raise MigrationError("--map takes OLD=NEW state pairs")
    return Plan(old["name"], int(old["version"]), int(new["version"]),
                dict(pairs), sla)  # fmt: skip


def check_plan(plan: Plan, registry: WorkflowRegistry) -> None:
    source = registry.get(plan.name, plan.from_version)
    target = registry.get(plan.name, plan.to_version)
    for version, found in ((plan.from_version, source), (plan.to_version, target)):
        if found is None:
            raise MigrationError(f"{plan.name}@{version} is not in the workflows folder")
    assert source is not None
    assert target is not None
    for old, new in plan.state_map.items():
        if old not in source.spec.states:
            raise MigrationError(f"--map {old}={new}: {old!r} is not a state of version "
                                 f"{plan.from_version}")  # fmt: skip
        state = target.spec.states.get(new)
        if state is None or state.terminal:
            raise MigrationError(f"--map {old}={new}: {new!r} is not an open state of version "
                                 f"{plan.to_version}")  # fmt: skip


def open_cases(settings: Settings, plan: Plan) -> list[Case]:
    """The latest snapshot of every open case of `plan`'s source version, from the changelog."""
    latest: dict[str, bytes | None] = {}
    for partition in changelog_partitions(settings):
        for chunk in read_changelog(settings, partition):
            latest.update(chunk.upserts)
            latest.update(dict.fromkeys(chunk.deletes))
    cases = (decode_case(value) for value in latest.values() if value is not None)
    return [
        case for case in cases
        if not case.closed and case.workflow == plan.name and case.version == plan.from_version
    ]  # fmt: skip


def migration_event(plan: Plan, case: Case, now: datetime) -> CaseEvent:
    return CaseEvent(
        event_id=f"migrate:{plan.label}:{case.case_id}",
        case_id=case.case_id,
        type=MIGRATION_TYPE,
        occurred_at=max(now, case.clock),
        source=MIGRATION_SOURCE,
        payload={
            "from_version": plan.from_version,
            "to_version": plan.to_version,
            "state_map": plan.state_map,
            "sla": plan.sla,
        },
    )


def run_migrate(
    settings: Settings, plan: Plan, *, dry_run: bool, at: datetime | None = None
) -> int:
    registry = WorkflowRegistry.load(Path(settings.workflows))
    check_plan(plan, registry)
    cases = open_cases(settings, plan)
    by_state = Counter(case.state for case in cases)
    unmapped = {s: n for s, n in by_state.items() if s not in plan.state_map}
    for state, count in sorted(by_state.items()):
        target = plan.state_map.get(state, "(no mapping)")
        print(f"{state} -> {target}: {count} open case(s)")
    if unmapped:
        listed = ", ".join(f"{s} ({n})" for s, n in sorted(unmapped.items()))
        raise MigrationError(f"open cases are in states the map does not cover: {listed}")
    if dry_run:
        print(f"dry run: {len(cases)} case(s) would move from {plan.label}; nothing sent")
        return 0
    producer = KafkaProducer(**kafka_client_config(settings), acks="all",
                             enable_idempotence=True)  # fmt: skip
    now = at or datetime.now(UTC)  # noqa: TID251 - the operator's command runs at wall-clock time
    for case in cases:
        event = migration_event(plan, case, now)
        producer.send(settings.topic_case_events, key=case.case_id.encode(),
                      value=event.model_dump_json().encode())  # fmt: skip
    producer.flush()
    producer.close()
    print(json.dumps({"migration": plan.label, "cases": len(cases), "sla": plan.sla}))
    return 0


def main(
    settings: Settings,
    *,
    source: str,
    target: str,
    mapping: list[str],
    sla: str,
    dry_run: bool,
    at: str | None = None,
) -> int:
    try:
        when = datetime.fromisoformat(at) if at else None
        if when is not None and when.tzinfo is None:
            raise MigrationError("--at needs a time zone offset")
        plan = parse_plan(source, target, mapping, sla)
        return run_migrate(settings, plan, dry_run=dry_run, at=when)
    except (MigrationError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
