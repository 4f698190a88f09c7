"""A workaround for kafka-python's stuck rejoin (docs/upstream/kafka-python-stuck-rejoin.md).

Why: in kafka-python 3.0.12 a consumer-group member can stop for good in the middle of a
rebalance while `poll()` keeps returning (at 100 % CPU, with heartbeats disabled). Two flaws in
`kafka/coordinator/` combine:

1. `ConsumerCoordinator.need_rejoin()` only says whether a join is *needed*, not whether one is
   *pending*. A generation-2 JoinGroup that outlives its `poll(timeout_ms)` keeps running; as group
   leader it records the metadata it assigned from, so `need_rejoin()` turns false and the next
   `poll()` skips the join step. Nothing ever collects the finished join: the member is never marked
   stable, heartbeats stay off, the assignment is never applied. Java's client asks
   `rejoinNeededOrPending()` (needed, or a join future exists); we make `need_rejoin()` do the same.
2. `BaseCoordinator.join_group_async()` throws away a join that *finished* while nobody waited
   (`if self._join_task is None or self._join_task.is_done:` schedules a fresh JoinGroup), which
   with short poll timeouts can go on for many generations. We collect the finished join instead,
   exactly as the library does when it awaits one.

The patch goes on the library's classes once per process (`apply()`), before any consumer is
built, and only onto what it was checked against: the version is compared with
`VERIFIED_VERSIONS`, and the private attributes it relies on must exist. A newer, unverified
version logs a warning and keeps the workaround (it is harmless where the bug is fixed);
`tests/integration/test_kafka_rejoin.py` tells whether the bug is still there: its reproduction
must hang without the workaround, so on a fixed release that test fails and says to remove this.
"""

from __future__ import annotations

import threading
from typing import Any

import kafka
import structlog
from kafka.coordinator.base import BaseCoordinator, MemberState
from kafka.coordinator.consumer import ConsumerCoordinator

log = structlog.get_logger("fengqiao.kafka")

VERIFIED_VERSIONS = frozenset({"3.0.12"})
"""kafka-python releases whose coordinator this workaround was read against and tested on."""

_lock = threading.Lock()
_original_need_rejoin = ConsumerCoordinator.need_rejoin
_original_join_group_async = BaseCoordinator.join_group_async


def _need_rejoin_or_pending(self: Any) -> bool:
    """Java's `rejoinNeededOrPending()`: a join in flight (or finished, not yet collected) keeps
    `poll()` driving the join step until the member is stable."""
    return bool(_original_need_rejoin(self)) or self._join_task is not None


async def _join_group_collecting_finished(self: Any, timeout_ms: Any = None) -> Any:
    """Collect a JoinGroup/SyncGroup that completed while no `poll()` was waiting for it, the
    way the library's own loop does on success; anything else goes to the library unchanged."""
    task = self._join_task
    if (
        task is not None
        and task.is_done
        and task.succeeded()
        and self.state is MemberState.REBALANCING  # not reset (e.g. coordinator lost) since
    ):
        self._join_task = None
        with self._lock:
            self.rejoining = False
            self.rejoin_needed = False
            self.state = MemberState.STABLE
            self._enable_heartbeat()
        generation = self._generation
        await self._on_join_complete_async(
            generation.generation_id, generation.member_id, generation.protocol, task.value
        )
        return True
    return await _original_join_group_async(self, timeout_ms)


def _internals_present() -> bool:
    """The private names the workaround reads: if a release renames them, patching would break."""
    probe = ("_join_task", "rejoining", "rejoin_needed", "_enable_heartbeat")
    source = BaseCoordinator.__init__.__code__.co_names + tuple(vars(BaseCoordinator))
    return all(name in source for name in probe) and hasattr(
        BaseCoordinator, "_on_join_complete_async"
    )


def join_in_flight(consumer: Any) -> bool:
    """Whether the consumer's JoinGroup/SyncGroup round trip is still waiting for the broker: a
    member in a long but healthy rebalance (the broker waits for slow members, up to the
    rebalance timeout) is joining; a stuck one is not (its join finished, uncollected)."""
    task = getattr(getattr(consumer, "_coordinator", None), "_join_task", None)
    return task is not None and not task.is_done


def applied() -> bool:
    """True once `apply()` has patched the coordinator classes in this process."""
    return ConsumerCoordinator.need_rejoin is _need_rejoin_or_pending


def apply() -> bool:
    """Patch kafka-python's coordinator once per process; True if the workaround is active."""
    with _lock:
        if applied():
            return True
        version = kafka.__version__
        if not _internals_present():
            log.warning(
                "kafka.rejoin_workaround_skipped",
                kafka_python=version,
                reason="coordinator internals changed; run the stuck-rejoin test",
            )
            return False
        if version not in VERIFIED_VERSIONS:
            log.warning("kafka.rejoin_workaround_unverified", kafka_python=version,
                        verified=sorted(VERIFIED_VERSIONS))  # fmt: skip
        ConsumerCoordinator.need_rejoin = _need_rejoin_or_pending
        BaseCoordinator.join_group_async = _join_group_collecting_finished
        return True


def remove() -> None:
    """Undo `apply()` (tests only: the stuck-consumer drill runs the library as released)."""
    with _lock:
        ConsumerCoordinator.need_rejoin = _original_need_rejoin
        BaseCoordinator.join_group_async = _original_join_group_async
