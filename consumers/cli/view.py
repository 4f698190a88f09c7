"""`fengqiao view`: the read side as a service (DESIGN §8).

settings → workflows (the ladders' order) → the broker and its transitions topic → the database
(made, or rebuilt when its schema is another version's) → HTTP → the consumer loop, and signals.

One process, two threads: the consumer loop (consumers/view/consume.py) on the main thread, and
uvicorn on another (consumers/view/serve.py says why) serving the API and console of
consumers/view/app.py when there is an access file, plus `/metrics`, `/healthz`, `/readyz`.
SIGTERM or SIGINT: the consumer ends its batch (committed whole, or not at all), then the server
finishes its requests in flight, and the process exits 0. Every failure to start is one `error:`
line: exit 1 for unusable workflows (as `fengqiao run`), exit 2 for settings, the broker, the
database or an address that cannot be bound.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import textwrap
import time
from pathlib import Path
from types import FrameType
from typing import Any

import sqlalchemy as sa
import structlog
from prometheus_client import CollectorRegistry, disable_created_metrics
from starlette.types import ASGIApp

from consumers.runtime.logs import configure_logging
from consumers.runtime.settings import SettingsError
from consumers.runtime.variables import unknown_variable_warnings, variables_help
from consumers.view import tier_order
from consumers.view.access import AccessFileError, load_access
from consumers.view.app import create_app
from consumers.view.consume import ViewConsumer, topics_problem
from consumers.view.metrics import ViewMetrics
from consumers.view.serve import HttpThread, bind, not_found, with_probes
from consumers.view.settings import (
    ViewConfig,
    ViewSettings,
    database_url,
    load_view_config,
    session_key,
    shown_url,
)
from consumers.view.tables import create_view_engine
from engine.problems import FengqiaoError, InvalidWorkflowError
from engine.registry import WorkflowRegistry

log = structlog.get_logger("fengqiao.view")

LIVENESS_SECONDS = 60.0
"""The loop turns at least every poll (half a second), database back-off included (≤ 10 s)."""


def run_view(config: ViewConfig) -> int:
    """The service until a signal; the exit code (see the module docstring)."""
    try:
        registry = WorkflowRegistry.load(Path(config.kafka.workflows))
    except InvalidWorkflowError as err:
        print(err, file=sys.stderr)
        return 1
    problem = topics_problem(config)
    if problem is not None:
        print(f"error: {problem}", file=sys.stderr)
        return 2
    url = database_url(config.view)
    db = create_view_engine(url, pool_pre_ping=True)
    disable_created_metrics()  # type: ignore[no-untyped-call]
    metrics_registry = CollectorRegistry()
    view_metrics = ViewMetrics.create(metrics_registry)
    consumer = ViewConsumer(db, tier_order(registry), config, view_metrics)
    try:
        consumer.prepare_database()  # before the API can be asked anything
    except sa.exc.DBAPIError as err:  # unreachable, refused login, no right to create tables
        print(f"error: the read model's database {shown_url(url)}: {_first_line(err)}",
              file=sys.stderr)  # fmt: skip
        db.dispose()
        return 2
    try:
        return _serve(config.view, db, consumer, metrics_registry, view_metrics)
    finally:
        db.dispose()


def _serve(
    settings: ViewSettings,
    db: sa.Engine,
    consumer: ViewConsumer,
    metrics: CollectorRegistry,
    view_metrics: ViewMetrics | None = None,
) -> int:
    app = api_app(db, settings, consumer, view_metrics)
    if isinstance(app, str):
        print(f"error: {app}", file=sys.stderr)
        return 2

    def alive() -> tuple[bool, str]:
        quiet = time.monotonic() - consumer.alive_at
        return (True, "ok") if quiet <= LIVENESS_SECONDS else (False, f"no turn for {quiet:.0f} s")

    try:
        sock = bind(settings.view_http_host, settings.view_http_port)
    except OSError as err:  # a busy port, an unknown host: one line, not a traceback
        print(f"error: {err.strerror or err}", file=sys.stderr)
        return 2
    http = HttpThread(with_probes(app or not_found, metrics, alive, consumer.ready), sock)
    if not http.start():
        http.stop()
        print("error: the HTTP server did not start (see the log above)", file=sys.stderr)
        return 2
    log.info("http.listening", port=http.port, api=app is not None)

    def stop(signum: int, _frame: FrameType | None) -> None:
        log.info("view.stopping", signal=signal.Signals(signum).name)
        consumer.stop.set()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    try:
        consumer.run()
    except FengqiaoError as err:  # the read model cannot go on (ReadModelError): one line
        print(f"error: {err}", file=sys.stderr)
        return 1
    except Exception as err:  # logged by type (its text could quote a record), never a traceback
        log.error("view.failed", error=type(err).__name__)
        print(f"error: the view stopped: {type(err).__name__} (see the log)", file=sys.stderr)
        return 1
    finally:
        http.stop()
    return 0


def api_app(
    db: sa.Engine,
    settings: ViewSettings,
    consumer: ViewConsumer,
    metrics: ViewMetrics | None = None,
) -> ASGIApp | str | None:
    """The JSON API and console (consumers/view/app.py) for this database and access file;
    None when they are not served (no access file), a string when the access file cannot be
    used (the error to print)."""
    if settings.view_access is None:
        log.warning("view.api_off", reason="FENGQIAO_VIEW_ACCESS is not set")
        return None
    try:
        access = load_access(settings.view_access)
    except AccessFileError as err:
        return str(err)
    return create_app(db, access, ready=lambda: consumer.ready()[0], tiers=consumer.tiers,
                      observe=metrics.request if metrics is not None else None,
                      session_key=session_key(settings))  # fmt: skip


def _first_line(err: sa.exc.DBAPIError) -> str:
    """The driver's own message (no SQL, no parameters), first line."""
    return (str(err.orig).strip().splitlines() or [type(err.orig).__name__])[0]


def cmd_view(args: argparse.Namespace) -> int:
    for warning in unknown_variable_warnings(os.environ):
        print(warning, file=sys.stderr)
    try:
        config = load_view_config(
            {"view_db": args.db, "view_http_port": args.http_port},
            {"bootstrap_servers": args.bootstrap_servers, "workflows": args.workflows},
        )
    except SettingsError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    configure_logging()
    return run_view(config)


SHARED = (
    "Shared with `fengqiao run` (its --help describes them): FENGQIAO_BOOTSTRAP_SERVERS and the "
    "FENGQIAO_SECURITY_PROTOCOL, FENGQIAO_SASL_* and FENGQIAO_SSL_* variables (the broker), "
    "FENGQIAO_TOPIC_TRANSITIONS (the one topic the view reads), FENGQIAO_WORKFLOWS (the "
    "ladders, for counting escalations)."
)


def add_view_command(sub: Any) -> None:
    p = sub.add_parser(
        "view",
        help="the read side: project the engine's records into a database and serve it "
        "(API, console, /metrics)",
        epilog=variables_help(model=ViewSettings) + "\n\n" + textwrap.fill(SHARED, 80),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--db", help="the read model's database URL (overrides FENGQIAO_VIEW_DB)")
    p.add_argument("--http-port", type=int, help="overrides FENGQIAO_VIEW_HTTP_PORT")
    p.add_argument("--bootstrap-servers", help="overrides FENGQIAO_BOOTSTRAP_SERVERS")
    p.add_argument("--workflows", help="overrides FENGQIAO_WORKFLOWS")
    p.set_defaults(func=cmd_view)
