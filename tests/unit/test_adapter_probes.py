"""The intake adapters' `/readyz` and `/healthz` decisions, without a broker.

Why: in the chaos run an adapters member stayed unjoined (generation 0) for good while its
probes said ready and ok (`/readyz` asked only the engine's membership), so nothing restarted
it. The adapters now feed the engine's `Membership` through a `GroupWatch` over every intake
topic; these tests drive `AdapterLoop` and the service's `probes` through a fake of the
`Transaction` port and a fake clock (the rules themselves: tests/unit/test_membership.py).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pytest
from kafka import TopicPartition

from consumers.cli.service import LIVENESS_SECONDS, probes
from consumers.kafka.adapter_loop import AdapterLoop, intake_topics
from consumers.kafka.membership import (
    UNHELD_WATCHES,
    UNSETTLED_SESSIONS,
    WATCH_INTERVAL_S,
    GroupOwners,
    Membership,
)
from consumers.runtime.settings import load_settings
from engine.ports import GroupView, Send

pytestmark = pytest.mark.unit

SESSION_TIMEOUT_S = 10.0
"""The rig's session timeout (FENGQIAO_SESSION_TIMEOUT_MS=10000)."""


@dataclass
class GroupTransaction:
    """The `Transaction` port as the group side sees it: a scripted group view, the partitions
    of each topic, the listener `open` was given; no messages (the adapters' translation is
    tested in tests/unit/test_loops.py)."""

    partitions: Mapping[str, int]
    view: GroupView = field(default_factory=lambda: GroupView("<unjoined>", -1))
    listener: Any = None
    rejoined: int = 0
    looked_at: list[str] = field(default_factory=list)

    def open(self, topics: Sequence[str], listener: Any) -> None:
        self.listener = listener

    def poll(self, timeout_ms: int) -> Mapping[Any, list[Any]]:
        return {}

    def commit(self, sends: Iterable[Send], offsets: Mapping[Any, int]) -> bool:
        return True

    def rewind(self, partitions: Iterable[Any] | None = None) -> None:
        pass

    def seek(self, tp: Any, offset: int) -> None:
        pass  # nothing is read from a position here

    def caught_up(self, tp: Any) -> bool:
        return True

    def lag(self, tp: Any) -> int | None:
        return None

    def group(self) -> GroupView:
        return self.view

    def group_lag(self, topic: str) -> tuple[int, int]:
        self.looked_at.append(topic)
        return self.partitions.get(topic, 0), 0

    def rejoin(self) -> None:
        self.rejoined += 1

    def close(self) -> None:
        pass

    def assign(self, *partitions: tuple[str, int]) -> None:
        """The group assigned `partitions` (kafka-python calls the listener inside `poll`)."""
        self.listener.on_partitions_assigned([TopicPartition(t, p) for t, p in partitions])


@dataclass
class Rig:
    loop: AdapterLoop
    fake: GroupTransaction
    now: list[float]
    owners: list[GroupOwners | None]
    """What the broker answers, in turn, when the loop asks who holds the intake partitions."""

    def turns(self, seconds: float, step: float = 1.0) -> None:
        """Turn the loop every `step` seconds of the fake clock for `seconds`."""
        end = self.now[0] + seconds
        while self.now[0] < end:
            self.now[0] += step
            self.loop.turn()

    def readyz(self) -> tuple[bool, str]:
        return probes([self.loop], clock=lambda: self.now[0])[1]()

    def healthz(self) -> tuple[bool, str]:
        return probes([self.loop], clock=lambda: self.now[0])[0]()


@pytest.fixture
def rig() -> Rig:
    """An adapters loop opened (with its listener) on a fake group, at fake time 0."""
    settings = load_settings({"session_timeout_ms": int(SESSION_TIMEOUT_S * 1000)})
    now = [0.0]
    fake = GroupTransaction(dict.fromkeys(intake_topics(settings), 2))
    loop = AdapterLoop(settings, transaction=fake, clock=lambda: now[0])
    owners: list[GroupOwners | None] = []
    loop.watch.group_owners = lambda: owners.pop(0) if owners else None
    loop.stop.set()
    loop.run()  # opens the transaction with the listener and subscribes, then stops
    return Rig(loop, fake, now, owners)


def grid(*partitions: int, rig: Rig) -> list[tuple[str, int]]:
    return [(f"{rig.loop.settings.intake_topic_prefix}grid", p) for p in partitions]


def police(*partitions: int, rig: Rig) -> list[tuple[str, int]]:
    return [(f"{rig.loop.settings.intake_topic_prefix}police", p) for p in partitions]


def test_a_member_stuck_unjoined_is_neither_ready_nor_alive(rig: Rig) -> None:
    """The chaos run's member: unjoined, generation 0, no join request in flight, for good.
    `/readyz` says so at once; `/healthz` fails after `UNSETTLED_SESSIONS` session timeouts."""
    rig.fake.view = GroupView("<unjoined>", 0)
    rig.turns(1)
    assert rig.readyz() == (False, "AdapterLoop: consumer group unjoined (generation 0)")
    limit = UNSETTLED_SESSIONS * SESSION_TIMEOUT_S
    rig.turns(limit - 2)
    assert rig.healthz() == (True, "ok")
    rig.turns(3)  # subscribed at 0, now at 32
    ok, reason = rig.healthz()
    assert ok is False
    assert reason == (
        "AdapterLoop: consumer group not joined for 32 s (more than 3 session timeouts, no join "
        "request in flight): state unjoined, generation 0"
    )
    assert rig.readyz()[0] is False


def test_a_join_waiting_for_the_broker_stays_alive_but_not_ready(rig: Rig) -> None:
    rig.fake.view = GroupView("<rebalancing>", 3, joining=True)
    rig.turns(UNSETTLED_SESSIONS * SESSION_TIMEOUT_S * 3)
    assert rig.healthz() == (True, "ok")
    assert rig.readyz() == (False, "AdapterLoop: consumer group rebalancing (generation 3)")


def test_ready_once_stable_with_intake_partitions_not_while_rebalancing(rig: Rig) -> None:
    rig.fake.view = GroupView("<stable>", 1)
    rig.turns(1)
    assert rig.readyz() == (False, "AdapterLoop: waiting for the first assignment")
    rig.fake.assign(*grid(0, rig=rig), *police(1, rig=rig))
    assert rig.loop.membership.assigned == frozenset(grid(0, rig=rig) + police(1, rig=rig))
    assert rig.readyz() == (True, "ready")  # stateless: nothing to restore
    assert rig.healthz() == (True, "ok")
    rig.fake.listener.on_partitions_revoked([])
    assert rig.readyz() == (False, "AdapterLoop: waiting for the first assignment")
    rig.fake.view = GroupView("<rebalancing>", 2)
    rig.turns(1)
    assert rig.readyz() == (False, "AdapterLoop: consumer group rebalancing (generation 2)")


def test_holding_nothing_is_ready_only_while_others_hold_every_intake_partition(rig: Rig) -> None:
    """A standby needs every partition of every intake topic held: all of `grid`'s are not
    enough (the partition numbers of the channels' topics are not mixed up)."""
    channels = len(rig.loop.topics)
    rig.fake.view = GroupView("<stable>", 4)
    rig.turns(1)  # stable, not yet assigned: too early for a look at the group
    rig.fake.assign()
    assert rig.readyz() == (False, "AdapterLoop: holds no partitions; asking the group who "
                                   "holds them")  # fmt: skip
    every_grid = GroupOwners(2, frozenset(grid(0, 1, rig=rig)))
    everything = GroupOwners(3, frozenset((t, p) for t in rig.loop.topics for p in (0, 1)))
    rig.owners.extend([every_grid, everything])
    rig.turns(1)  # an assignment arrived: the next turn looks at once
    assert rig.readyz() == (
        False,
        f"AdapterLoop: holds no partitions while the group has 2 members for {2 * channels} "
        "partitions (2 of them held)",
    )
    rig.turns(WATCH_INTERVAL_S + 1)
    assert rig.readyz() == (True, "ready")  # a 200 says only "ready"; the membership why
    assert rig.loop.membership.readiness()[1] == (
        "ready (standby: the other members hold every partition)"
    )
    assert sorted(set(rig.fake.looked_at)) == sorted(rig.loop.topics)
    assert rig.fake.rejoined == 0


def test_a_stable_group_holding_no_intake_partition_is_left_and_joined_again(rig: Rig) -> None:
    rig.fake.view = GroupView("<stable>", 5)
    rig.fake.assign()
    rig.owners.extend([GroupOwners(1, frozenset())] * UNHELD_WATCHES)
    rig.turns(1)
    assert rig.fake.rejoined == 0
    rig.turns(WATCH_INTERVAL_S * (UNHELD_WATCHES - 1) + 1)
    assert rig.fake.rejoined == 1
    assert rig.readyz()[0] is False


@dataclass
class EngineStandIn:
    """What the probes read of the engine loop: a ready, turning member."""

    membership: Membership
    alive_at: float = 0.0


def test_a_process_running_both_loops_is_ready_only_when_both_are(rig: Rig) -> None:
    """`--role all`: the engine's readiness no longer speaks for the adapters."""
    engine = Membership(session_timeout_s=SESSION_TIMEOUT_S)
    engine.subscribe(0.0)
    engine.observe("stable", 1, 0.0)
    engine.assigning(frozenset({("case-events", 0)}))
    engine.assignment_restored()
    stand_in = EngineStandIn(engine)
    alive, ready = probes([rig.loop, stand_in], clock=lambda: rig.now[0])
    rig.fake.view = GroupView("<unjoined>", 0)
    rig.turns(1)
    stand_in.alive_at = rig.now[0]
    assert ready() == (False, "AdapterLoop: consumer group unjoined (generation 0)")
    assert alive() == (True, "ok")
    rig.fake.view = GroupView("<stable>", 1)
    rig.fake.assign(*grid(1, rig=rig))
    rig.turns(1)
    assert ready() == (True, "ready")


def test_a_loop_that_stops_turning_is_not_alive(rig: Rig) -> None:
    rig.fake.view = GroupView("<stable>", 1)
    rig.turns(1)
    rig.now[0] += LIVENESS_SECONDS + 1
    assert rig.healthz() == (False, f"AdapterLoop: no turn of the loop for "
                                    f"{LIVENESS_SECONDS + 1:.0f} s")  # fmt: skip
