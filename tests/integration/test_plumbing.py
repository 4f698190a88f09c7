"""Plumbing against a real broker: topic creation and checks, and a transactional round trip."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest
from kafka import KafkaConsumer, KafkaProducer, OffsetAndMetadata, TopicPartition
from kafka.admin import ConfigResource, ConfigResourceType

from consumers.kafka.topics import DAY_MS, check_topics, create_topics, topic_specs
from consumers.runtime.settings import Settings, kafka_client_config

SettingsFactory = Callable[..., Settings]


def _partitions(admin: Any, topic: str) -> int:
    (described,) = admin.describe_topics([topic])
    return len(described["partitions"])


def _config(admin: Any, topic: str, key: str) -> str:
    resource = ConfigResource(ConfigResourceType.TOPIC, topic, [key])
    return str(
        admin.describe_configs([resource], config_filter="all")["topic"][topic][key]["value"]
    )


def _create(admin: Any, topic: str, partitions: int, **configs: str) -> None:
    """A topic made by hand, for the bad set-ups `check_topics` must catch."""
    admin.create_topics(
        {topic: {"num_partitions": partitions, "replication_factor": 1, "configs": configs}},
        wait_for_metadata=True,
    )


def _create_others(admin: Any, settings: Settings, *, skip: set[str]) -> None:
    for topic in settings.topic_names():
        if topic in skip:
            continue
        policy = "compact" if topic == settings.topic_case_state else "delete"
        _create(admin, topic, 3, **{"cleanup.policy": policy})


# -- create_topics ------------------------------------------------------------------------------


def test_create_topics_partitions_and_compaction(
    settings_factory: SettingsFactory, kafka_admin: Any
) -> None:
    settings = settings_factory(partitions=3)
    assert check_topics(settings, admin=kafka_admin)  # nothing there yet

    report = create_topics(settings)

    assert set(report.created) == {spec.name for spec in topic_specs(settings)}
    assert report.existing == ()
    assert report.mismatches == ()
    for topic in settings.topic_names():
        assert _partitions(kafka_admin, topic) == 3
    assert _config(kafka_admin, settings.topic_case_state, "cleanup.policy") == "compact"
    assert _config(kafka_admin, settings.topic_case_events, "cleanup.policy") == "delete"
    assert _config(kafka_admin, settings.topic_transitions, "retention.ms") == str(30 * DAY_MS)
    assert _config(kafka_admin, settings.topic_dead_letter, "retention.ms") == str(30 * DAY_MS)
    assert check_topics(settings) == []

    again = create_topics(settings, admin=kafka_admin)  # idempotent
    assert again.created == ()
    assert set(again.existing) == {spec.name for spec in topic_specs(settings)}
    assert again.mismatches == ()


def test_create_topics_reports_how_existing_topics_differ(
    settings_factory: SettingsFactory, kafka_admin: Any
) -> None:
    create_topics(settings_factory(partitions=2), admin=kafka_admin)
    wider = settings_factory(partitions=4)  # same topic names, another partition count

    report = create_topics(wider, admin=kafka_admin)

    assert report.created == ()
    assert len(report.mismatches) == len(topic_specs(wider))  # the engine's 4 + 6 intake
    assert all("2 partitions, not 4" in m for m in report.mismatches)
    assert any("FENGQIAO_TOPIC_CASE_STATE" in m for m in report.mismatches)
    # Still runnable: events and changelog agree with each other, and the changelog is compacted.
    assert check_topics(wider, admin=kafka_admin) == []


# -- check_topics -------------------------------------------------------------------------------


def test_check_topics_reports_a_missing_topic(
    settings_factory: SettingsFactory, kafka_admin: Any
) -> None:
    settings = settings_factory(partitions=3)
    _create_others(kafka_admin, settings, skip={settings.topic_dead_letter})

    problems = check_topics(settings, admin=kafka_admin)

    assert len(problems) == 1, problems
    assert f"'{settings.topic_dead_letter}'" in problems[0]
    assert "FENGQIAO_TOPIC_DEAD_LETTER" in problems[0]
    assert "does not exist" in problems[0]


def test_check_topics_reports_a_partition_mismatch(
    settings_factory: SettingsFactory, kafka_admin: Any
) -> None:
    settings = settings_factory(partitions=3)
    _create_others(kafka_admin, settings, skip={settings.topic_case_state})
    _create(kafka_admin, settings.topic_case_state, 2, **{"cleanup.policy": "compact"})

    problems = check_topics(settings, admin=kafka_admin)

    assert len(problems) == 1, problems
    assert f"'{settings.topic_case_events}' has 3 partitions" in problems[0]
    assert f"'{settings.topic_case_state}' has 2" in problems[0]
    assert "same partition count" in problems[0]


@pytest.mark.parametrize("policy", ["delete", "compact,delete"])
def test_check_topics_reports_a_changelog_that_is_not_compacted(
    settings_factory: SettingsFactory, kafka_admin: Any, policy: str
) -> None:
    settings = settings_factory(partitions=3)
    _create_others(kafka_admin, settings, skip={settings.topic_case_state})
    _create(kafka_admin, settings.topic_case_state, 3, **{"cleanup.policy": policy})

    problems = check_topics(settings, admin=kafka_admin)

    assert len(problems) == 1, problems
    assert f"'{settings.topic_case_state}' has cleanup.policy={policy}" in problems[0]
    assert "must be compact" in problems[0]


def test_check_topics_reports_every_problem_at_once(
    settings_factory: SettingsFactory, kafka_admin: Any
) -> None:
    settings = settings_factory(partitions=3)
    _create(kafka_admin, settings.topic_case_events, 3, **{"cleanup.policy": "delete"})
    _create(kafka_admin, settings.topic_case_state, 1, **{"cleanup.policy": "delete"})

    problems = check_topics(settings, admin=kafka_admin)

    assert len(problems) == 4, problems  # two missing, partition mismatch, not compacted


# -- transactions through kafka-python --------------------------------------------------------


def _read_all(consumer: KafkaConsumer, expected: int, timeout_s: float = 20) -> list[Any]:
    records: list[Any] = []
    deadline = time.monotonic() + timeout_s
    while len(records) < expected and time.monotonic() < deadline:
        for batch in consumer.poll(timeout_ms=200).values():
            records.extend(batch)
    # A little longer: anything beyond `expected` is a bug we want to see.
    for batch in consumer.poll(timeout_ms=500).values():
        records.extend(batch)
    return records


def _reader(settings: Settings, topic: str, isolation: str) -> KafkaConsumer:
    consumer = KafkaConsumer(
        **kafka_client_config(settings),
        group_id=None,
        enable_auto_commit=False,
        isolation_level=isolation,
    )
    partitions = [TopicPartition(topic, p) for p in range(settings.partitions)]
    consumer.assign(partitions)
    consumer.seek_to_beginning(*partitions)
    return consumer


def test_transactional_produce_and_read_committed(make_topics: Callable[..., Settings]) -> None:
    settings = make_topics(partitions=2)
    topic = settings.topic_transitions
    producer = KafkaProducer(
        **kafka_client_config(settings),
        transactional_id=settings.transactional_id,
        transaction_timeout_ms=settings.transaction_timeout_ms,
    )
    try:
        producer.init_transactions()
        producer.begin_transaction()
        for i in range(3):
            producer.send(topic, key=f"case-{i}".encode(), value=f"committed-{i}".encode())
        producer.commit_transaction()
        producer.begin_transaction()
        producer.send(topic, key=b"case-0", value=b"aborted")
        producer.flush()  # really written to the log, then aborted
        producer.abort_transaction()
    finally:
        producer.close(timeout=10)

    committed = _reader(settings, topic, "read_committed")
    uncommitted = _reader(settings, topic, "read_uncommitted")
    try:
        seen = sorted(r.value for r in _read_all(committed, 3))
        raw = sorted(r.value for r in _read_all(uncommitted, 4))
    finally:
        committed.close()
        uncommitted.close()
    assert seen == [b"committed-0", b"committed-1", b"committed-2"]
    assert raw == sorted([*seen, b"aborted"])


def test_consume_transform_produce_commits_offsets_in_the_transaction(
    make_topics: Callable[..., Settings], kafka_admin: Any
) -> None:
    """The engine's pattern: consumed offsets go into the producer's transaction (KIP-447)."""
    settings = make_topics(partitions=1)
    source = TopicPartition(settings.topic_case_events, 0)
    with_offsets = KafkaProducer(**kafka_client_config(settings))
    try:
        for i in range(5):
            with_offsets.send(source.topic, key=b"c", value=f"event-{i}".encode())
        with_offsets.flush()
    finally:
        with_offsets.close(timeout=10)

    consumer = KafkaConsumer(
        **kafka_client_config(settings),
        group_id=settings.group_id,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        isolation_level="read_committed",
    )
    producer = KafkaProducer(
        **kafka_client_config(settings),
        transactional_id=settings.transactional_id,
        transaction_timeout_ms=settings.transaction_timeout_ms,
    )
    try:
        producer.init_transactions()
        consumer.subscribe([source.topic])
        events = _read_all(consumer, 5)
        assert [r.value for r in events] == [f"event-{i}".encode() for i in range(5)]
        producer.begin_transaction()
        for record in events:
            producer.send(settings.topic_transitions, key=record.key, value=record.value.upper())
        last = events[-1].offset
        producer.send_offsets_to_transaction(
            {source: OffsetAndMetadata(last + 1, "", -1)}, consumer.group_metadata()
        )
        producer.commit_transaction()
    finally:
        producer.close(timeout=10)
        consumer.close(autocommit=False)

    offsets = kafka_admin.list_group_offsets({settings.group_id: [source]})
    assert offsets[settings.group_id][source].offset == 5
    output = _reader(settings, settings.topic_transitions, "read_committed")
    try:
        assert len(_read_all(output, 5)) == 5
    finally:
        output.close()
