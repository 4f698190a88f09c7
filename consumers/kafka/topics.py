"""The four Fengqiao topics: their specs, creating them, and checking them before the engine starts.

- case-events (`topic_case_events`): `partitions`; delete after 7 days (input; the committed
  offsets say how far we are).
- case-state (`topic_case_state`): `partitions`; compacted (the changelog: the latest snapshot
  of every case), segments rolled hourly so the cleaner can keep restores short.
- transitions (`topic_transitions`): `partitions`; delete after 30 days (output; sinks keep the
  history).
- dead-letter (`topic_dead_letter`): `partitions`; delete after 30 days (time for a human to look).

case-events and case-state are co-partitioned: same count, same key (`case_id`), so a partition's
cases are restored from the changelog partition of the same number. With a replication factor of
3 or more, `min.insync.replicas=2` is set too (acks=all then survives one broker).

`create_topics` creates what is missing and reports how existing topics differ from the spec;
`check_topics` returns the problems the engine refuses to start with.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from consumers.kafka.admin import TopicsError, admin_client
from consumers.runtime.settings import Settings, env_name
from engine.channels import channel_names

with warnings.catch_warnings():
    # kafka-python 3.0.x loads its protocol schemas with importlib.resources.read_text, which
    # Python 3.11+ flags as deprecated: harmless, but fatal under `-W error`.
    warnings.simplefilter("ignore", DeprecationWarning)
    from kafka.admin import ConfigResource, ConfigResourceType
    from kafka.errors import (
        for_code,
    )

DAY_MS = 24 * 60 * 60 * 1000
UNKNOWN_TOPIC = 3
TOPIC_ALREADY_EXISTS = 36


@dataclass(frozen=True)
class TopicSpec:
    name: str
    setting: str  # the Settings field naming it, e.g. "topic_case_state"
    partitions: int
    replication_factor: int
    configs: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class TopicsReport:
    """What `create_topics` did: created and already existing topic names, and how existing
    topics differ from their spec (partition count, replication factor, configs)."""

    created: tuple[str, ...]
    existing: tuple[str, ...]
    mismatches: tuple[str, ...]

    def lines(self) -> list[str]:
        """One human-readable line per topic and per mismatch (what a CLI prints)."""
        return (
            [f"created topic '{name}'" for name in self.created]
            + [f"topic '{name}' exists" for name in self.existing]
            + [f"warning: {m}" for m in self.mismatches]
        )

    def __iter__(self) -> Iterator[str]:
        return iter(self.lines())


def topic_specs(settings: Settings) -> list[TopicSpec]:
    """The engine's four topics and one intake topic per channel, as `create_topics` makes them."""
    common: dict[str, str] = {}
    if settings.replication_factor >= 3:
        common["min.insync.replicas"] = "2"
    deleted = {"cleanup.policy": "delete"}

    def spec(setting: str, **configs: str) -> TopicSpec:
        return TopicSpec(
            name=getattr(settings, setting),
            setting=setting,
            partitions=settings.partitions,
            replication_factor=settings.replication_factor,
            configs={**common, **configs},
        )

    return [
        spec("topic_case_events", **deleted, **{"retention.ms": str(7 * DAY_MS)}),
        spec("topic_transitions", **deleted, **{"retention.ms": str(30 * DAY_MS)}),
        spec(
            "topic_case_state",
            **{
                "cleanup.policy": "compact",
                # Roll segments hourly and clean early: the active segment is never compacted,
                # and every superseded snapshot left behind is replayed on each restore.
                "segment.ms": str(60 * 60 * 1000),
                "min.cleanable.dirty.ratio": "0.1",
            },
        ),
        spec("topic_dead_letter", **deleted, **{"retention.ms": str(30 * DAY_MS)}),
        *(
            TopicSpec(
                name=f"{settings.intake_topic_prefix}{channel}",
                setting="intake_topic_prefix",
                partitions=settings.partitions,
                replication_factor=settings.replication_factor,
                configs={**common, **deleted, "retention.ms": str(7 * DAY_MS)},
            )
            for channel in channel_names(Path(settings.workflows))
        ),
    ]


@dataclass(frozen=True)
class _Described:
    partitions: int
    replication_factor: int
    configs: dict[str, str]


def _describe(admin: Any, specs: list[TopicSpec]) -> tuple[dict[str, _Described], list[str]]:
    """Existing topics among `specs` with their partitions and the configs the specs name;
    and problems describing them (other than "does not exist")."""
    names = [s.name for s in specs]
    found: dict[str, _Described] = {}
    problems: list[str] = []
    metadata: list[dict[str, Any]] = admin.describe_topics(names)
    present: dict[str, dict[str, Any]] = {}
    for topic in metadata:
        code = topic.get("error_code", 0)
        if code == UNKNOWN_TOPIC:
            continue
        if code:
            problems.append(f"cannot describe topic '{topic['name']}': {for_code(code).__name__}")
            continue
        present[topic["name"]] = topic
    if not present:
        return found, problems
    by_name = {s.name: s for s in specs}
    resources = [
        ConfigResource(ConfigResourceType.TOPIC, name, sorted(by_name[name].configs) or None)
        for name in present
    ]
    # config_filter="all": the default ("modified") would hide values equal to broker defaults.
    described: dict[str, dict[str, dict[str, Any]]] = admin.describe_configs(
        resources, config_filter="all"
    ).get("topic", {})
    for name, topic in present.items():
        partitions = topic.get("partitions") or []
        replicas = max((len(p.get("replica_nodes") or []) for p in partitions), default=0)
        configs = {key: str(entry.get("value")) for key, entry in described.get(name, {}).items()}
        found[name] = _Described(len(partitions), replicas, configs)
    return found, problems


def _differences(spec: TopicSpec, actual: _Described) -> list[str]:
    out: list[str] = []
    if actual.partitions != spec.partitions:
        out.append(f"{actual.partitions} partitions, not {spec.partitions}")
    if actual.replication_factor != spec.replication_factor:
        out.append(f"replication factor {actual.replication_factor}, not {spec.replication_factor}")
    for key, want in sorted(spec.configs.items()):
        have = actual.configs.get(key)
        if have != want:
            out.append(f"{key}={have}, not {want}")
    return out


def create_topics(
    settings: Settings, *, admin: Any = None, timeout_ms: int = 30_000
) -> TopicsReport:
    """Create the missing topics of `topic_specs(settings)`; idempotent and safe to race.

    Existing topics are left alone; how they differ from the spec is reported in `mismatches`
    (use `check_topics` for the differences the engine cannot run with). Raises TopicsError
    when the broker refuses a topic (e.g. a replication factor above the number of brokers).
    """
    if admin is None:
        with admin_client(settings, timeout_ms=timeout_ms) as own:
            return create_topics(settings, admin=own, timeout_ms=timeout_ms)
    specs = topic_specs(settings)
    before, problems = _describe(admin, specs)
    if problems:
        raise TopicsError("; ".join(problems))
    missing = [s for s in specs if s.name not in before]
    created: list[str] = []
    raced: list[str] = []
    if missing:
        response = admin.create_topics(
            {
                s.name: {
                    "num_partitions": s.partitions,
                    "replication_factor": s.replication_factor,
                    "configs": dict(s.configs),
                }
                for s in missing
            },
            timeout_ms=timeout_ms,
            raise_errors=False,
        )
        refused: dict[str, list[str]] = {}  # error → topics, so one cause is reported once
        for topic in response.get("topics", []):
            code = topic.get("error_code", 0)
            if code == 0:
                created.append(topic["name"])
            elif code == TOPIC_ALREADY_EXISTS:  # another process created it meanwhile
                raced.append(topic["name"])
            else:
                detail = topic.get("error_message") or ""
                error = for_code(code).__name__ + (f": {detail}" if detail else "")
                refused.setdefault(error, []).append(f"'{topic['name']}'")
        if refused:
            raise TopicsError(
                "; ".join(
                    f"cannot create topic(s) {', '.join(names)}: {error}"
                    for error, names in refused.items()
                )
            )
        # CreateTopics returns before every partition has a leader (KRaft propagates it a bit
        # later): wait, so a producer started right after does not fail on the first send.
        admin.wait_for_topics(created + raced, timeout_ms=timeout_ms)
    after = before
    if raced:
        after, _ = _describe(admin, specs)
    mismatches: list[str] = []
    for spec in specs:
        if spec.name in created or spec.name not in after:
            continue
        diffs = _differences(spec, after[spec.name])
        if diffs:
            mismatches.append(
                f"existing topic '{spec.name}' ({env_name(spec.setting)}) has " + ", ".join(diffs)
            )
    existing = tuple(s.name for s in specs if s.name not in created)
    return TopicsReport(created=tuple(created), existing=existing, mismatches=tuple(mismatches))


def check_topics(settings: Settings, *, admin: Any = None, timeout_ms: int = 30_000) -> list[str]:
    """Problems the engine must refuse to start with; [] when all is well.

    Missing topics; case-events and case-state with different partition counts (they must be
    co-partitioned); a case-state changelog whose cleanup.policy is not exactly `compact`
    (`delete`, or `compact,delete`, would lose the state of quiet cases). Raises TopicsError
    when Kafka cannot be reached.
    """
    if admin is None:
        with admin_client(settings, timeout_ms=timeout_ms) as own:
            return check_topics(settings, admin=own, timeout_ms=timeout_ms)
    # The engine's own topics; intake topics belong to the adapters, which simply wait on them.
    specs = [s for s in topic_specs(settings) if s.setting != "intake_topic_prefix"]
    found, problems = _describe(admin, specs)
    for spec in specs:
        if spec.name not in found and not any(f"'{spec.name}'" in p for p in problems):
            problems.append(
                f"topic '{spec.name}' ({env_name(spec.setting)}) does not exist; create the "
                "topics first (consumers.kafka.topics.create_topics)"
            )
    events = found.get(settings.topic_case_events)
    state = found.get(settings.topic_case_state)
    if events is not None and state is not None and events.partitions != state.partitions:
        problems.append(
            f"'{settings.topic_case_events}' has {events.partitions} partitions but "
            f"'{settings.topic_case_state}' has {state.partitions}: the events topic and the "
            "state changelog must have the same partition count (co-partitioned by case_id)"
        )
    if state is not None:
        policy = state.configs.get("cleanup.policy", "")
        if sorted(p.strip() for p in policy.split(",")) != ["compact"]:
            problems.append(
                f"changelog topic '{settings.topic_case_state}' has cleanup.policy={policy}; it "
                "must be compact (with delete, the state of cases idle longer than the "
                "retention would be lost)"
            )
    return problems
