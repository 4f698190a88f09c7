"""The probes tell the truth on the real broker: `/readyz` only for a stable, restored member
with partitions (or a standby), `/healthz` fails for a member stuck in its group.

The stuck-consumer drill runs the engine loop with kafka-python as released (the workaround
removed for the test) and a 1 ms poll, which reproduces the stuck rejoin most of the time; an
attempt that happened to join is discarded and tried again on a fresh group.
"""

from __future__ import annotations

import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import pytest
from prometheus_client import CollectorRegistry

from consumers.cli.service import probes
from consumers.kafka import rejoin as kafka_rejoin
from consumers.kafka.engine_loop import EngineLoop
from consumers.kafka.membership import UNSETTLED_SESSIONS
from consumers.runtime.http import HttpServer
from consumers.runtime.metrics import EngineMetrics
from consumers.runtime.settings import Settings
from engine.core import Engine
from engine.registry import WorkflowRegistry
from engine.stores import MemoryStore

SESSION_TIMEOUT_MS = 6_000  # the broker's minimum: the drill's limit is 3 × 6 s = 18 s


@dataclass
class Running:
    loop: EngineLoop
    port: int
    thread: threading.Thread

    def get(self, path: str) -> tuple[int, str]:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}{path}", timeout=5) as r:
                return r.status, r.read().decode()
        except urllib.error.HTTPError as err:
            return err.code, err.read().decode()

    def wait_for(self, path: str, status: int, timeout_s: float) -> tuple[float, str]:
        """Seconds until `path` answers `status`, and its body (fails after `timeout_s`)."""
        started = time.monotonic()
        last: tuple[int, str] = (0, "")
        while time.monotonic() - started < timeout_s:
            last = self.get(path)
            if last[0] == status:
                return time.monotonic() - started, last[1]
            time.sleep(0.2)
        raise AssertionError(f"{path} never answered {status} in {timeout_s} s; last {last}")


@contextmanager
def running(settings: Settings) -> Iterator[Running]:
    """The engine loop on a thread with the service's own probes on a free port."""
    workflows = WorkflowRegistry.load(settings.workflows)
    registry = CollectorRegistry()
    loop = EngineLoop(settings, Engine(workflows), MemoryStore(),
                      EngineMetrics.create(registry, workflows))  # fmt: skip
    alive, ready = probes([loop])
    http = HttpServer(registry, alive=alive, ready=ready)
    port = http.start("127.0.0.1", 0)
    thread = threading.Thread(target=loop.run, name="engine", daemon=True)
    thread.start()
    try:
        yield Running(loop, port, thread)
    finally:
        loop.stop.set()
        thread.join(timeout=60)
        http.stop()
        assert not thread.is_alive(), "the engine loop did not stop"


def test_ready_only_once_the_member_holds_its_restored_partitions(
    make_topics: Callable[..., Settings],
) -> None:
    settings = make_topics(partitions=4, session_timeout_ms=SESSION_TIMEOUT_MS)
    with running(settings) as engine:
        status, body = engine.get("/readyz")
        assert status in (200, 503)
        if status == 503:  # before the join: says why, never "ready"
            assert body.strip() != "ready"
        _took, body = engine.wait_for("/readyz", 200, 60)
        assert body.strip() == "ready"
        topic = settings.topic_case_events
        assert engine.loop.membership.assigned == frozenset((topic, p) for p in range(4))
        assert engine.get("/healthz")[0] == 200
        metrics = engine.get("/metrics")[1]
        assert 'fengqiao_consumer_group_state{fengqiao_consumer_group_state="stable"} 1.0' in (
            metrics
        )
        assert "fengqiao_consumer_group_rebalances_total" in metrics


def test_a_lone_member_is_never_ready_without_its_partition(
    make_topics: Callable[..., Settings],
) -> None:
    """A fresh one-partition group: the first assignment is often empty (the leader assigned
    before it knew the topic). As many members as partitions once made that a ready "standby"
    for ~0.5 s while nobody consumed; every ready answer must now come with the partition."""
    settings = make_topics(partitions=1, session_timeout_ms=SESSION_TIMEOUT_MS)
    answers: list[tuple[bool, str]] = []
    with running(settings) as engine:
        membership = engine.loop.membership
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            answer = membership.readiness()
            answers.append(answer)
            if answer[0] and membership.assigned == frozenset({(settings.topic_case_events, 0)}):
                break
            time.sleep(0.002)
        else:
            raise AssertionError(f"never ready with its partition: {answers[-1]}")
    assert all(reason == "ready" for ok, reason in answers if ok), sorted(set(answers))


def test_a_member_without_partitions_is_ready_only_as_a_standby(
    make_topics: Callable[..., Settings], settings_factory: Callable[..., Settings]
) -> None:
    """One partition, two members: the second holds nothing and the other member holds every
    partition, so it is a ready standby."""
    first = make_topics(partitions=1, session_timeout_ms=SESSION_TIMEOUT_MS)
    second = settings_factory(partitions=1, session_timeout_ms=SESSION_TIMEOUT_MS)
    with running(first) as a:
        a.wait_for("/readyz", 200, 60)
        with running(second) as b:
            deadline = time.monotonic() + 90
            seen: list[tuple[frozenset[tuple[str, int]] | None, tuple[int, str]]] = []
            while time.monotonic() < deadline:
                seen = [(e.loop.membership.assigned, e.get("/readyz")) for e in (a, b)]
                held = sorted(-1 if parts is None else len(parts) for parts, _ in seen)
                if held == [0, 1] and all(answer[0] == 200 for _, answer in seen):
                    break
                time.sleep(0.5)
            else:
                raise AssertionError(f"never settled as owner + standby: {seen}")
            for engine in (a, b):  # a 200 says only "ready"; the reason tells the standby
                standby = engine.loop.membership.assigned == frozenset()
                assert ("standby" in engine.loop.membership.readiness()[1]) == standby, seen


def test_stuck_consumer_drill(
    make_topics: Callable[..., Settings], monkeypatch: pytest.MonkeyPatch
) -> None:
    """kafka-python as released, 1 ms polls: once the member is stuck, /readyz is 503 and
    /healthz turns 503 within UNSETTLED_SESSIONS session timeouts."""
    limit_s = UNSETTLED_SESSIONS * SESSION_TIMEOUT_MS / 1000
    kafka_rejoin.remove()
    # Every client built from settings would put the workaround back: not during the drill.
    monkeypatch.setattr(kafka_rejoin, "apply", lambda: False)
    try:
        for _attempt in range(6):
            settings = make_topics(partitions=4, session_timeout_ms=SESSION_TIMEOUT_MS,
                                   commit_interval_ms=1)  # fmt: skip
            with running(settings) as engine:
                time.sleep(3)  # a healthy member has joined with its partitions by now
                if engine.loop.membership.assigned:
                    continue  # this one joined: not the drill, try again
                status, body = engine.get("/readyz")
                assert status == 503, body
                assert body.strip() != "ready"
                took, reason = engine.wait_for("/healthz", 503, limit_s + 15)
                print(f"drill: /healthz 503 {took + 3:.1f} s after subscribing: {reason}")
                assert "consumer group not joined" in reason, reason
                # counted from subscribing, which was ≥ 3 s ago
                assert took + 3 <= limit_s + 10, took
                assert engine.get("/readyz")[0] == 503
                return
        raise AssertionError("the consumer joined in every attempt: the drill never got stuck")
    finally:
        monkeypatch.undo()
        assert kafka_rejoin.apply()
