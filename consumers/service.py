"""Wiring of `fengqiao run`: settings → workflows → store → HTTP → the engine loop, and signals.

SIGTERM and SIGINT ask the loop to stop: it finishes and commits the batch in hand, leaves the
consumer group (so its partitions move at once) and the process exits 0.
"""

from __future__ import annotations

import signal
import sys
import time
from pathlib import Path
from types import FrameType

import structlog
from prometheus_client import CollectorRegistry

from consumers.engine_loop import EngineLoop
from consumers.http import HttpServer
from consumers.metrics import EngineMetrics
from consumers.settings import Settings
from consumers.topics import TopicsError, check_topics
from engine.core import Engine
from engine.problems import InvalidWorkflowError
from engine.registry import WorkflowRegistry
from engine.store import open_store

log = structlog.get_logger("fengqiao.service")

LIVENESS_SECONDS = 60.0
"""The loop polls at least every commit interval; a minute without a turn means it is stuck."""


def run_service(settings: Settings) -> int:
    try:
        registry = WorkflowRegistry.load(Path(settings.workflows))
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
    metrics_registry = CollectorRegistry()
    store = open_store(settings.store)
    loop = EngineLoop(settings, Engine(registry), store, EngineMetrics.create(metrics_registry))
    http = HttpServer(
        metrics_registry,
        alive=lambda: time.monotonic() - loop.alive_at < LIVENESS_SECONDS,
        ready=lambda: (loop.ready.is_set(), "restoring partitions from the changelog"),
    )
    port = http.start(settings.http_host, settings.http_port)
    log.info("http.listening", port=port)

    def stop(signum: int, _frame: FrameType | None) -> None:
        log.info("engine.stopping", signal=signal.Signals(signum).name)
        loop.stop.set()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    try:
        loop.run()
    finally:
        http.stop()
        store.close()
    return 0
