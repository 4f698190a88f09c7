"""Wiring of `fengqiao run`: settings → workflows → store → HTTP → the loops, and signals.

`--role all` (default) runs the intake adapters on a thread beside the engine loop; `engine` or
`adapters` runs one of them, for scaling them separately.

SIGTERM and SIGINT ask the loop to stop: it finishes and commits the batch in hand, leaves the
consumer group (so its partitions move at once) and the process exits 0. An HTTP address that
cannot be bound (a port still held, an unknown host) is one `error:` line and exit 2, like a
bad setting: the operator reads a line, not a traceback.
"""

from __future__ import annotations

import signal
import sys
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from types import FrameType
from typing import Protocol

import structlog
from prometheus_client import CollectorRegistry, disable_created_metrics

from consumers.kafka.adapter_loop import AdapterLoop
from consumers.kafka.admin import TopicsError
from consumers.kafka.engine_loop import EngineLoop
from consumers.kafka.membership import Membership
from consumers.kafka.topics import check_topics
from consumers.runtime.http import HttpServer
from consumers.runtime.intake_metrics import IntakeMetrics
from consumers.runtime.metrics import EngineMetrics
from consumers.runtime.settings import Settings
from engine.channel_checks import load_channels
from engine.core import Engine
from engine.problems import FengqiaoError, InvalidWorkflowError
from engine.registry import WorkflowRegistry
from engine.stores import open_store

log = structlog.get_logger("fengqiao.service")

LIVENESS_SECONDS = 60.0
"""The loop polls at least every commit interval; a minute without a turn means it is stuck."""


def run_service(settings: Settings) -> int:
    try:
        registry = WorkflowRegistry.load(Path(settings.workflows))
        channels = load_channels(Path(settings.workflows), registry.specs())
    except InvalidWorkflowError as err:
        print(err, file=sys.stderr)
        return 1
    try:
        problems = check_topics(settings)
    except TopicsError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    if problems:
        for problem in problems:
            print(f"error: {problem}", file=sys.stderr)
        print("hint: `fengqiao topics create` creates them as the engine needs", file=sys.stderr)
        return 2
    # No `*_created` series: Prometheus' text format carries them as extra gauges that no rule
    # or dashboard reads (a third more series per scrape).
    disable_created_metrics()  # type: ignore[no-untyped-call]
    metrics_registry = CollectorRegistry()
    store = open_store(settings.store)
    metrics = EngineMetrics.create(metrics_registry, registry)
    engine = EngineLoop(settings, Engine(registry), store, metrics)
    adapters = AdapterLoop(settings, channels=channels,
                           metrics=IntakeMetrics.create(metrics_registry, channels))  # fmt: skip
    loops: list[EngineLoop | AdapterLoop] = []
    if settings.role in ("all", "adapters"):
        loops.append(adapters)
    if settings.role in ("all", "engine"):
        loops.append(engine)
    alive, ready = probes(loops)
    http = HttpServer(metrics_registry, alive=alive, ready=ready)
    try:
        port = http.start(settings.http_host, settings.http_port)
    except OSError as err:  # a busy port, an unknown host: one line, not a traceback
        store.close()
        print(f"error: {err.strerror or err}", file=sys.stderr)
        return 2
    log.info("http.listening", port=port, role=settings.role)

    def stop(signum: int, _frame: FrameType | None) -> None:
        log.info("service.stopping", signal=signal.Signals(signum).name)
        for lp in loops:
            lp.stop.set()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    failures: list[BaseException] = []
    threads = [
        threading.Thread(target=_guarded, args=(lp, loops, failures), name=type(lp).__name__)
        for lp in loops[:-1]
    ]
    for thread in threads:
        thread.start()
    try:
        _guarded(loops[-1], loops, failures)  # the last loop runs here, on the main thread
        for thread in threads:
            thread.join()
    finally:
        http.stop()
        store.close()
    return 1 if failures else 0


class Probed(Protocol):
    """What the probes read of a loop (both loops have it; the unit tests fake it)."""

    @property
    def alive_at(self) -> float: ...
    @property
    def membership(self) -> Membership: ...


def probes(
    loops: Sequence[Probed], clock: Callable[[], float] = time.monotonic
) -> tuple[Callable[[], tuple[bool, str]], Callable[[], tuple[bool, str]]]:
    """`/healthz` and `/readyz` of a process running `loops` (see consumers/kafka/membership.py).

    Alive: every loop turns (it polls at least every commit interval) and is settled in its
    group. Ready: every loop's membership says so, the adapters' as much as the engine's. Why:
    only the engine's was asked, and an adapters member that stayed unjoined for good in the
    chaos run answered ready, so nothing restarted it."""

    def alive() -> tuple[bool, str]:
        now = clock()
        for lp in loops:
            name = type(lp).__name__
            if now - lp.alive_at > LIVENESS_SECONDS:
                return False, f"{name}: no turn of the loop for {now - lp.alive_at:.0f} s"
            ok, reason = lp.membership.liveness(now)
            if not ok:
                return False, f"{name}: {reason}"
        return True, "ok"

    def ready() -> tuple[bool, str]:
        for lp in loops:
            ok, reason = lp.membership.readiness()
            if not ok:
                return False, f"{type(lp).__name__}: {reason}"
        return True, "ready"

    return alive, ready


def _guarded(
    loop: EngineLoop | AdapterLoop,
    loops: list[EngineLoop | AdapterLoop],
    failures: list[BaseException],
) -> None:
    """Run one loop; if it dies, stop the others too (a half-running process helps nobody)."""
    try:
        loop.run()
    except FengqiaoError as err:
        print(f"error: {err}", file=sys.stderr)
        failures.append(err)
        for other in loops:
            other.stop.set()
    except Exception as err:
        log.error("service.loop_failed", loop=type(loop).__name__, error=type(err).__name__)
        failures.append(err)
        for other in loops:
            other.stop.set()
