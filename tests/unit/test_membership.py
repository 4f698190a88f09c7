"""The readiness and liveness rules of `consumers.kafka.membership`, without a broker (the same
rules on the real broker, with a stuck member: tests/integration/test_probes.py)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from consumers.kafka.membership import (
    UNSETTLED_SESSIONS,
    Membership,
    heartbeat_interval_ms,
    state_name,
)

pytestmark = pytest.mark.unit


def _joined(partitions: frozenset[int]) -> Membership:
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
    m.assigning(frozenset({0, 1}))
    assert m.readiness() == (False, "restoring partitions from the changelog")
    m.assignment_restored()
    assert m.readiness() == (True, "ready")
    m.observe("rebalancing", 2, 2.0)
    assert m.readiness()[0] is False


def test_an_empty_assignment_is_ready_only_as_a_standby() -> None:
    m = _joined(frozenset())
    assert m.readiness() == (
        False, "holds no partitions; asking the group how many members it has"
    )  # fmt: skip
    m.input_partitions, m.group_members = 4, 1
    assert m.readiness() == (
        False, "holds no partitions while the group has 1 members for 4 partitions"
    )  # fmt: skip
    m.group_members = 5
    assert m.readiness() == (True, "ready (standby: the group has a member for every partition)")
    m.assigning(frozenset())  # a new assignment: who else is there must be asked again
    m.assignment_restored()
    assert m.readiness()[0] is False


def test_alive_while_settled_dead_after_three_unsettled_session_timeouts() -> None:
    m = _joined(frozenset({0}))
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
    m = _joined(frozenset({0}))
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
