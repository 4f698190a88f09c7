"""kafka-python's stuck rejoin, reproduced on the real broker, and our workaround for it.

A consumer that subscribes to a fresh topic joins before the topic's metadata arrives
(generation 1 assigns nothing), then must join again once it does. Polled with a zero timeout,
every JoinGroup outlives the `poll()` that started it, which is exactly the window of the bug
(consumers/kafka/rejoin.py). Without the workaround the member ends *stuck*: a finished join
nobody will collect, `need_rejoin()` false, state REBALANCING, nothing assigned. With it, every
member joins with its partitions.

The stuck state is recognised as such (no code path of the library leaves it) instead of waiting
for a timeout, so the test takes seconds. If a kafka-python release fixes the bug, the first
test fails: then drop the workaround (or add the release to `VERIFIED_VERSIONS` if it still
needs it).
"""

from __future__ import annotations

import time
from collections.abc import Callable

from kafka import KafkaConsumer
from kafka.coordinator.base import MemberState

from consumers.kafka import rejoin as kafka_rejoin
from consumers.runtime.settings import Settings

ATTEMPTS = 6
SECONDS_PER_ATTEMPT = 10.0


def _stuck(consumer: KafkaConsumer) -> bool:
    """A finished join that the library will never collect (see the module docstring)."""
    coordinator = consumer._coordinator
    task = coordinator._join_task
    return bool(
        task is not None
        and task.is_done
        and coordinator.state is MemberState.REBALANCING
        and not kafka_rejoin._original_need_rejoin(coordinator)
    )


def _join(settings: Settings, group: str, *, workaround: bool) -> str:
    """'joined', 'stuck' or 'timeout' for one consumer polling with a zero timeout."""
    kafka_rejoin.apply() if workaround else kafka_rejoin.remove()
    consumer = KafkaConsumer(
        bootstrap_servers=settings.bootstrap_servers.split(","),
        group_id=group,
        enable_auto_commit=False,
    )
    try:
        consumer.subscribe([settings.topic_case_events])
        deadline = time.monotonic() + SECONDS_PER_ATTEMPT
        stuck_polls = 0
        while time.monotonic() < deadline:
            consumer.poll(timeout_ms=0)
            if consumer.assignment():
                return "joined"
            stuck_polls = stuck_polls + 1 if _stuck(consumer) else 0
            if stuck_polls >= 200:  # stays stuck over many polls: the library has no way out
                return "stuck"
        return "timeout"
    finally:
        consumer.close()
        kafka_rejoin.apply()  # the rest of the session runs with it, as `fengqiao run` does


def _attempts(
    make_topics: Callable[..., Settings], unique_name: Callable[..., str], *, workaround: bool
) -> list[str]:
    outcomes = []
    for _ in range(ATTEMPTS):
        settings = make_topics(partitions=4)  # a fresh topic: the first join precedes its metadata
        outcomes.append(_join(settings, unique_name("g"), workaround=workaround))
    return outcomes


def test_without_the_workaround_a_fresh_consumer_gets_stuck(
    make_topics: Callable[..., Settings], unique_name: Callable[..., str]
) -> None:
    outcomes = _attempts(make_topics, unique_name, workaround=False)
    assert "stuck" in outcomes, (
        f"kafka-python no longer gets stuck ({outcomes}): the workaround in "
        "consumers/kafka/rejoin.py may be dropped"
    )


def test_with_the_workaround_every_consumer_joins(
    make_topics: Callable[..., Settings], unique_name: Callable[..., str]
) -> None:
    outcomes = _attempts(make_topics, unique_name, workaround=True)
    assert outcomes == ["joined"] * ATTEMPTS
