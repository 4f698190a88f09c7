"""Is this loop really a working member of its consumer group? The truth behind the probes.

Why: a loop that turns is not a loop that works. kafka-python can leave a member stuck in a
rebalance while `poll()` keeps returning (consumers/kafka/rejoin.py), and the first assignment of
a fresh group is often empty; before this module the engine answered `/readyz` ready after any
assignment callback, even an empty one, and `/healthz` ok as long as `poll()` returned.

- **ready** (`/readyz`): the member is *stable* in its group, its assignment has been restored
  from the changelog, and it holds partitions — or holds none because the other members hold
  every input partition (a standby). Counting members is not enough: the first assignment of a
  fresh group is often empty (the leader assigned before it knew the topic), and a lone member
  of a one-partition group then looked like a standby, ready while nobody consumed, until the
  next rebalance (~0.5 s).
- **alive** (`/healthz`): not unsettled (unjoined or rebalancing) *without a join request in
  flight* for more than `UNSETTLED_SESSIONS` session timeouts in a row while subscribed. A member
  waiting for the broker's answer to its JoinGroup is in a healthy, maybe long rebalance (the
  broker waits for slow members up to the rebalance timeout); one that has neither settled nor
  a request in flight after three session timeouts is stuck, and a restart helps.

`Membership` only judges what the loop tells it (no I/O, no clock of its own: times are passed
in), so the rules are unit-tested; `GroupWatch` asks the broker the two things the member cannot
see from inside (the group's size and its lag over every input partition), on the loop's thread,
at most every `WATCH_INTERVAL_S`.

Both loops use them: the engine (one input topic, `case-events`) and the intake adapters (one
topic per channel). Why the adapters too: in the chaos run an adapters member stayed unjoined
for good while its `/readyz` said ready (only the engine's membership was asked), so nobody
noticed; the same rules, over every watched topic, now decide both. A partition is named by its
`(topic, partition)` pair throughout, so the adapters' several topics never mix up their
partition numbers.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import structlog
from kafka.errors import KafkaError

from consumers.kafka.admin import TopicsError, admin_client
from consumers.runtime.settings import Settings
from engine.ports import Transaction

Partition = tuple[str, int]
"""A partition as `(topic, partition)`; kafka-python's `TopicPartition` is such a tuple."""

UNSETTLED_SESSIONS = 3
"""`/healthz` fails after this many session timeouts without a stable membership."""

WATCH_INTERVAL_S = 15.0
"""How often the loop asks the broker for the group's size and lag."""
UNHELD_WATCHES = 2
"""Looks in a row at a stable group that holds none of the input partitions before this member
leaves and joins it again (30 s): a leader that assigned while the topic's metadata was unknown
(just after a broker restart) gave everyone nothing, and static members that only restart get
that nothing back without a rebalance, for good."""

GROUP_STATES = ("unjoined", "rebalancing", "stable")


def heartbeat_interval_ms(session_timeout_ms: int) -> int:
    """Kafka's advice: heartbeats at most a third of the session timeout (3 s, the default, for
    the default 45 s; 1.2 s for the broker's minimum of 6 s)."""
    return min(3_000, session_timeout_ms // 5)


def state_name(raw: object) -> str:
    """kafka-python's MemberState values ('<stable>') as our names ('stable')."""
    name = str(raw).strip("<>")
    return name if name in GROUP_STATES else "unjoined"


class GroupMetrics(Protocol):
    """The group's gauges a `GroupWatch` keeps (`EngineMetrics` has them)."""

    @property
    def group_state(self) -> Any: ...
    @property
    def group_generation(self) -> Any: ...
    @property
    def rebalances(self) -> Any: ...
    @property
    def group_lag(self) -> Any: ...


@dataclass(frozen=True)
class GroupOwners:
    """The group as the broker describes it: how many members, which input partitions they
    hold (from their current assignments)."""

    members: int
    held: frozenset[Partition]

    def covers(self, partitions: Collection[Partition]) -> bool:
        return bool(partitions) and self.held >= frozenset(partitions)


def held_partitions(
    members: Iterable[Mapping[str, Any]], topics: Collection[str]
) -> frozenset[Partition]:
    """The partitions of `topics` in the members' assignments, as kafka-python 3.0.12's admin
    `describe_groups` decodes them (`member_assignment.assigned_partitions`); anything it
    could not decode holds nothing."""
    held: set[Partition] = set()
    for member in members:
        assignment = member.get("member_assignment")
        if not isinstance(assignment, Mapping):
            continue
        for entry in assignment.get("assigned_partitions") or ():
            topic = entry.get("topic") if isinstance(entry, Mapping) else None
            if isinstance(topic, str) and topic in topics:
                held.update((topic, int(p)) for p in entry.get("partitions") or ())
    return frozenset(held)


def describe_owners(
    settings: Settings, group_id: str, topics: Collection[str], *, role: str = "engine"
) -> GroupOwners | None:
    """Who is in `group_id` and which partitions of `topics` they hold (an admin round trip,
    asked only while this member holds nothing); None when the broker cannot say right now."""
    try:
        with admin_client(settings, timeout_ms=5_000) as admin:
            described = admin.describe_groups([group_id])
    except (TopicsError, KafkaError) as err:
        structlog.get_logger(f"fengqiao.{role}").warning(
            "group.describe_failed", error=type(err).__name__
        )
        return None
    members = described.get(group_id, {}).get("members", [])
    return GroupOwners(len(members), held_partitions(members, topics))


@dataclass
class Membership:
    """The group as this member last saw it, and what follows for readiness and liveness."""

    session_timeout_s: float
    state: str = "unjoined"
    generation: int = -1
    subscribed_at: float | None = None
    settled_at: float | None = None
    """Last instant the member was seen stable or waiting for a join answer (monotonic s)."""
    assigned: frozenset[Partition] | None = None
    """Partitions of the last assignment (None before the first one)."""
    restored: bool = False
    group: GroupOwners | None = None
    """The group at the last look (only asked while this member holds nothing)."""
    input_partitions: frozenset[Partition] | None = None
    """Every partition of the watched topics, as last seen (None: not known yet, or none)."""

    def subscribe(self, now: float) -> None:
        self.subscribed_at = now

    def observe(self, state: str, generation: int, now: float, *, joining: bool = False) -> None:
        self.state, self.generation = state, generation
        if state == "stable" or joining:
            self.settled_at = now

    def assigning(self, partitions: frozenset[Partition]) -> None:
        """An assignment arrived; it is restored next (the listener runs the restore). The
        probes read from another thread: `restored` falls before `assigned` changes."""
        self.restored = False
        self.assigned = partitions
        self.group = None  # who else is there, holding what, may have changed

    def assignment_restored(self) -> None:
        self.restored = True

    def revoked(self) -> None:
        self.assigned, self.restored = None, False

    @property
    def standby(self) -> bool:
        """Holding nothing is right: the other members hold every input partition."""
        group, partitions = self.group, self.input_partitions
        return group is not None and partitions is not None and group.covers(partitions)

    def readiness(self) -> tuple[bool, str]:  # noqa: PLR0911 - one answer per step of joining
        if self.subscribed_at is None:
            return False, "not subscribed yet"
        if self.state != "stable":
            return False, f"consumer group {self.state} (generation {self.generation})"
        assigned = self.assigned  # read once, before `restored` (see `assigning`)
        if assigned is None:
            return False, "waiting for the first assignment"
        if not self.restored:
            return False, "restoring partitions from the changelog"
        if assigned:
            return True, "ready"
        if self.standby:
            return True, "ready (standby: the other members hold every partition)"
        if self.group is None or self.input_partitions is None:
            return False, "holds no partitions; asking the group who holds them"
        return False, (
            f"holds no partitions while the group has {self.group.members} members for "
            f"{len(self.input_partitions)} partitions ({len(self.group.held)} of them held)"
        )

    def liveness(self, now: float) -> tuple[bool, str]:
        if self.subscribed_at is None:
            return True, "ok"
        since = max(self.subscribed_at, self.settled_at or self.subscribed_at)
        unsettled = now - since
        limit = UNSETTLED_SESSIONS * self.session_timeout_s
        if self.state != "stable" and unsettled > limit:
            return False, (
                f"consumer group not joined for {unsettled:.0f} s (more than "
                f"{UNSETTLED_SESSIONS} session timeouts, no join request in flight): state "
                f"{self.state}, generation {self.generation}"
            )
        return True, "ok"


@dataclass
class GroupWatch:
    """Feeds `Membership` (and the group metrics, if any) from the transaction port, once per
    loop turn; `topics` are the loop's input topics (the engine's one, the adapters' channels)."""

    membership: Membership
    metrics: GroupMetrics | None
    """None: the loop exports no group gauges (the adapters: the names are the engine's)."""
    topics: Sequence[str]
    group_owners: Callable[[], GroupOwners | None]
    """Asks the broker who is in the group, holding what (an admin call; None: no answer)."""
    clock: Callable[[], float] = time.monotonic
    role: str = "engine"
    """Names the logger (`fengqiao.engine`, `fengqiao.adapters`) its warnings go to."""
    _last_watch: float = field(default=float("-inf"))
    _log: Any = field(default=None, repr=False)
    _unheld: int = 0
    """Consecutive looks at a stable group holding none of the input partitions."""

    def __post_init__(self) -> None:
        self._last_watch = self.clock()  # the first look comes after the first assignment
        self._log = structlog.get_logger(f"fengqiao.{self.role}")

    def turn(self, transaction: Transaction) -> None:
        view = transaction.group()
        now = self.clock()
        state = state_name(view.state)
        self.membership.observe(state, view.generation, now, joining=view.joining)
        if self.metrics is not None:
            self.metrics.group_state.state(state)
            self.metrics.group_generation.set(view.generation)
        if now - self._last_watch < WATCH_INTERVAL_S:
            return
        self._last_watch = now
        try:
            self._watch(transaction, state)
        except KafkaError as err:  # a probe, not a reason to stop: try again next interval
            self._log.warning("group.watch_failed", error=type(err).__name__)

    def rebalanced(self) -> None:
        """An assignment arrived: count it, and look at the group again on the next turn."""
        if self.metrics is not None:
            self.metrics.rebalances.inc()
        self._last_watch = float("-inf")

    def _watch(self, transaction: Transaction, state: str) -> None:
        inputs: set[Partition] = set()
        lag = 0
        for topic in self.topics:
            partitions, topic_lag = transaction.group_lag(topic)
            inputs.update((topic, p) for p in range(partitions))
            lag += topic_lag
        self.membership.input_partitions = frozenset(inputs) or None
        if inputs and self.metrics is not None:
            self.metrics.group_lag.set(lag)
        held = self.membership.assigned
        if state == "stable" and held is not None and not held:
            self.membership.group = self.group_owners()
            self._rejoin_if_nobody_holds(transaction)
        else:
            self._unheld = 0

    def _rejoin_if_nobody_holds(self, transaction: Transaction) -> None:
        """A stable group where no member holds any input partition is stuck (`UNHELD_WATCHES`):
        leave and join again, so that a rebalance assigns them."""
        group, partitions = self.membership.group, self.membership.input_partitions
        if group is None or not partitions or group.held:
            self._unheld = 0
            return
        self._unheld += 1
        if self._unheld < UNHELD_WATCHES:
            return
        self._unheld = 0
        self._log.warning("group.rejoin", reason="no member holds an input partition",
                          members=group.members, partitions=len(partitions))  # fmt: skip
        transaction.rejoin()
