"""The readiness and liveness rules of `consumers.kafka.membership`, without a broker (the same
rules on the real broker, with a stuck member: tests/integration/test_probes.py)."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry

from consumers.kafka.membership import (
    UNHELD_WATCHES,
    UNSETTLED_SESSIONS,
    WATCH_INTERVAL_S,
    GroupOwners,
    GroupWatch,
    Membership,
    heartbeat_interval_ms,
    held_partitions,
    state_name,
)
from consumers.runtime.metrics import EngineMetrics
from engine.ports import GroupView

pytestmark = pytest.mark.unit


def parts(*numbers: int, topic: str = "events") -> frozenset[tuple[str, int]]:
    """Partitions of one topic as the membership names them: `(topic, partition)`."""
    return frozenset((topic, n) for n in numbers)


def _joined(partitions: frozenset[tuple[str, int]]) -> Membership:
    m = Membership(session_timeout_s=10)
    m.subscribe(0.0)
    m.observe("stable", 2, 1.0)
    m.assigning(partitions)
    m.assignment_restored()
    return m


def test_not_ready_until_subscribed_stable_assigned_and_restored() -> None:
    m = Membership(session_timeout_s=10)
    assert m.readiness() == (False, "not subscribed yet")
    m.subscribe(0.0)
    m.observe("rebalancing", 1, 0.5)
    assert m.readiness() == (False, "consumer group rebalancing (generation 1)")
    m.observe("stable", 1, 1.0)
    assert m.readiness() == (False, "waiting for the first assignment")
    m.assigning(parts(0, 1))
    assert m.readiness() == (False, "restoring partitions from the changelog")
    m.assignment_restored()
    assert m.readiness() == (True, "ready")
    m.observe("rebalancing", 2, 2.0)
    assert m.readiness()[0] is False


def test_an_empty_assignment_is_ready_only_as_a_standby() -> None:
    m = _joined(frozenset())
    assert m.readiness() == (False, "holds no partitions; asking the group who holds them")
    m.input_partitions, m.group = parts(0, 1, 2, 3), GroupOwners(members=1, held=frozenset())
    assert m.readiness() == (
        False, "holds no partitions while the group has 1 members for 4 partitions (0 of them held)"
    )  # fmt: skip
    m.group = GroupOwners(members=5, held=parts(0, 1, 2, 3))
    assert m.readiness() == (True, "ready (standby: the other members hold every partition)")
    m.assigning(frozenset())  # a new assignment: who else is there must be asked again
    m.assignment_restored()
    assert m.readiness()[0] is False


def test_the_empty_first_assignment_of_a_fresh_group_is_not_a_standby() -> None:
    """A fresh group's leader often assigns before it knows the topic: the lone member of a
    one-partition group holds nothing, and so does everyone else. As many members as partitions
    made it a ready "standby" (until the next rebalance, ~0.5 s) while nobody consumed; it is
    not ready until someone holds every partition."""
    m = _joined(frozenset())
    m.input_partitions, m.group = parts(0), GroupOwners(members=1, held=frozenset())
    assert m.readiness() == (
        False, "holds no partitions while the group has 1 members for 1 partitions (0 of them held)"
    )  # fmt: skip
    m.group = GroupOwners(members=3, held=parts(0, 2))  # members enough, one unowned
    m.input_partitions = parts(0, 1, 2)
    assert m.readiness()[0] is False
    m.assigning(parts(0))  # the next rebalance brings the partition
    assert m.readiness() == (False, "restoring partitions from the changelog")
    m.assignment_restored()
    assert m.readiness() == (True, "ready")


def test_readiness_never_pairs_a_new_assignment_with_the_last_restore() -> None:
    """The probes read from the HTTP thread while the loop's listener assigns: `restored` must
    fall before `assigned` changes, so no reader sees the new partitions as restored."""
    writes: list[tuple[str, bool]] = []

    class Spy(Membership):
        def __setattr__(self, name: str, value: object) -> None:
            if name == "assigned":
                writes.append((name, getattr(self, "restored", False)))
            super().__setattr__(name, value)

    spy = Spy(session_timeout_s=10)
    spy.subscribe(0.0)
    spy.observe("stable", 2, 1.0)
    spy.assigning(parts(0))
    spy.assignment_restored()
    writes.clear()
    spy.assigning(parts(0, 1))
    assert writes == [("assigned", False)]  # restored already False when assigned changed
    assert spy.readiness() == (False, "restoring partitions from the changelog")


def test_held_partitions_reads_kafka_pythons_described_assignments() -> None:
    members: list[dict[str, Any]] = [
        {"member_assignment": {"assigned_partitions": [
            {"topic": "events", "partitions": [0, 2]}, {"topic": "other", "partitions": [1]},
        ]}},
        {"member_assignment": {"assigned_partitions": [{"topic": "events", "partitions": [1]}]}},
        {"member_assignment": b"\x00undecodable"},
        {"member_assignment": None},
        {},
    ]  # fmt: skip
    assert held_partitions(members, ["events"]) == parts(0, 1, 2)
    assert held_partitions(members, ["events", "other"]) == parts(0, 1, 2) | parts(1, topic="other")
    assert held_partitions(members, ["absent"]) == frozenset()
    assert GroupOwners(2, parts(0, 1, 2)).covers(parts(0, 1, 2))
    assert not GroupOwners(2, parts(0, 1)).covers(parts(0, 1, 2))
    assert not GroupOwners(2, parts(0, 1)).covers(parts(0, 1) | parts(0, topic="other"))
    assert not GroupOwners(2, frozenset()).covers(frozenset())


def test_alive_while_settled_dead_after_three_unsettled_session_timeouts() -> None:
    m = _joined(parts(0))
    assert m.liveness(1_000.0) == (True, "ok")  # stable: however long
    m.observe("rebalancing", 3, 100.0)
    limit = UNSETTLED_SESSIONS * m.session_timeout_s
    assert m.liveness(1.0 + limit)[0] is True  # last seen stable at 1.0
    ok, reason = m.liveness(1.0 + limit + 0.5)
    assert ok is False
    assert reason.startswith(
        "consumer group not joined for 30 s (more than 3 session timeouts, no join request in "
        "flight)"
    )
    m.observe("stable", 3, 200.0)
    assert m.liveness(200.5) == (True, "ok")


def test_a_join_waiting_for_the_broker_is_a_healthy_rebalance() -> None:
    """The broker holds a JoinGroup until every member rejoined (up to the rebalance timeout):
    a member waiting for that answer is not stuck, however long it waits."""
    m = _joined(parts(0))
    for t in range(2, 300, 5):
        m.observe("rebalancing", 3, float(t), joining=True)
        assert m.liveness(float(t) + 0.1) == (True, "ok")
    m.observe("rebalancing", 3, 300.0, joining=False)  # answered, yet never collected: stuck
    assert m.liveness(297.0 + 30.5)[0] is False


def test_a_member_that_never_joined_counts_from_subscribing() -> None:
    m = Membership(session_timeout_s=6)
    assert m.liveness(10_000.0) == (True, "ok")  # not subscribed: nothing to judge
    m.subscribe(100.0)
    m.observe("rebalancing", 1, 101.0)
    assert m.liveness(118.0)[0] is True
    assert m.liveness(118.5)[0] is False


@given(st.integers(min_value=6_000, max_value=300_000))
def test_heartbeats_stay_within_a_fifth_of_the_session(session_ms: int) -> None:
    beat = heartbeat_interval_ms(session_ms)
    assert 0 < beat <= min(3_000, session_ms / 5)


def test_state_names() -> None:
    assert [state_name(s) for s in ("<stable>", "<rebalancing>", "<unjoined>", "odd")] == [
        "stable", "rebalancing", "unjoined", "unjoined",
    ]  # fmt: skip


class _Watched:
    """A transaction's group side for `GroupWatch`: stable, the topic's partitions, rejoins."""

    def __init__(self, partitions: int) -> None:
        self.partitions = partitions
        self.rejoined = 0

    def group(self) -> Any:
        return GroupView("<stable>", 3)

    def group_lag(self, topic: str) -> tuple[int, int]:
        return self.partitions, 100

    def rejoin(self) -> None:
        self.rejoined += 1


@pytest.mark.parametrize(("held", "rejoins"), [(frozenset(), 1), (parts(0, 1, 2, 3), 0)])
def test_a_stable_group_holding_no_partition_is_left_and_joined_again(
    held: frozenset[tuple[str, int]], rejoins: int
) -> None:
    """Two looks in a row at a stable group where nobody holds anything (a leader that assigned
    before the topic's metadata came back): leave and join again. A standby whose group holds
    every partition stays."""
    now = [0.0]
    membership = _joined(frozenset())
    watched = _Watched(partitions=4)
    watch = GroupWatch(membership, EngineMetrics.create(CollectorRegistry()), ["events"],
                       group_owners=lambda: GroupOwners(2, held), clock=lambda: now[0])  # fmt: skip
    for _ in range(UNHELD_WATCHES * 2):
        now[0] += WATCH_INTERVAL_S + 1
        watch.turn(watched)  # type: ignore[arg-type]
    assert watched.rejoined == rejoins * 2
