"""`KafkaTransaction.rejoin` on the real broker: a static member that leaves and joins again
makes the broker rebalance the group (a static member that merely restarts gets its old
assignment back without one), and afterwards every partition is held again.

What it is for (consumers/kafka/membership.py `UNHELD_WATCHES`): a leader that assigned while
the topic's metadata was unknown, just after a broker restart, gives every member nothing; the
chaos run once stayed so for good. The watch's decision is unit-tested
(tests/unit/test_membership.py); this is the mechanism it relies on.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest

from consumers.kafka.topics import create_topics
from consumers.kafka.transaction import KafkaTransaction
from consumers.runtime.settings import Settings

pytestmark = pytest.mark.integration

PARTITIONS = 4


def _poll_until(members: list[KafkaTransaction], done: Callable[[], bool], seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        for member in members:
            member.poll(200)
        if done():
            return
    raise AssertionError("the group did not settle in time")


def _held(members: list[KafkaTransaction]) -> set[int]:
    return {tp.partition for m in members for tp in m.consumer.assignment()}


def test_a_static_member_that_rejoins_makes_the_group_rebalance(
    kafka_bootstrap: str, unique_name: Callable[[str], str]
) -> None:
    name = unique_name("rejoin")
    settings = Settings(bootstrap_servers=kafka_bootstrap, partitions=PARTITIONS,
                        topic_case_events=f"{name}.case-events",
                        topic_transitions=f"{name}.transitions",
                        topic_case_state=f"{name}.case-state",
                        topic_dead_letter=f"{name}.dead-letter",
                        session_timeout_ms=10_000)  # fmt: skip
    create_topics(settings)
    members = [
        KafkaTransaction(
            settings,
            transactional_id=f"{name}-{i}",
            group_id=f"{name}-group",
            group_instance_id=f"{name}-{i}",
        )
        for i in ("a", "b")
    ]
    try:
        for member in members:
            member.open([settings.topic_case_events], None)
        _poll_until(members, lambda: _held(members) == set(range(PARTITIONS)), 60)
        before = members[0].group().generation
        members[0].rejoin()
        _poll_until(
            members,
            lambda: (
                members[0].group().generation > before and _held(members) == set(range(PARTITIONS))
            ),
            60,
        )
        assert members[0].group().state.strip("<>") == "stable"
    finally:
        for member in members:
            member.close()
