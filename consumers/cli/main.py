"""The `fengqiao` command line (DESIGN §5): wiring only, the work happens in `engine/`.

Exit codes: 0 success, 1 the input was refused (invalid workflows), 2 usage or settings errors.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from consumers.bench.core import run_core_bench
from consumers.bench.kafka_bench import run_kafka_bench
from consumers.bench.scale import run_scale_bench
from consumers.bench.soak import run_soak_bench
from consumers.bench.view_bench import ViewBenchSize, run_view_bench
from consumers.cli.author_test import add_test_command
from consumers.cli.cases import add_cases_command
from consumers.cli.demo import add_demo_command
from consumers.cli.files import (
    channels_or_say,
    cmd_validate,
    registry_or_say,
    unusable,
    workflows_default,
)
from consumers.cli.migrate import main as migrate_main
from consumers.cli.schemas import write_schemas
from consumers.cli.service import run_service
from consumers.cli.simulate import simulate
from consumers.cli.view import add_view_command
from consumers.kafka.admin import TopicsError
from consumers.kafka.topics import check_topics, create_topics
from consumers.runtime.logs import configure_logging
from consumers.runtime.settings import Settings, SettingsError, load_settings
from consumers.runtime.variables import unknown_variable_warnings, variables_help
from engine.diagram import dot, mermaid
from engine.registry import check_paths


def cmd_graph(args: argparse.Namespace) -> int:
    """Problems go to stderr: stdout is the diagram, often redirected into a file."""
    path = Path(args.file)
    why = unusable(path)
    if why is None and path.is_dir():
        why = "is a folder; graph draws one workflow file"
    if why is not None:
        print(f"{path}:1:1: error: {why}", file=sys.stderr)
        return 1
    checked, problems = check_paths([path])
    if problems or not checked:
        for problem in sorted(problems):
            print(problem, file=sys.stderr)
        return 1
    render = dot if args.format == "dot" else mermaid
    sys.stdout.write(render(checked[0].spec))
    return 0


def _until(text: str | None) -> datetime | str | None:
    """`--until` as an aware instant; a string is the usage error to print."""
    if text is None:
        return None
    try:
        until = datetime.fromisoformat(text)
    except ValueError:
        return f"error: --until {text!r} is not an RFC 3339 instant, e.g. 2026-06-01T00:00:00+08:00"
    if until.tzinfo is None:
        return "error: --until needs a time zone offset, e.g. 2026-06-01T00:00:00+08:00"
    return until


def cmd_simulate(args: argparse.Namespace) -> int:
    until = _until(args.until)
    if isinstance(until, str):
        print(until, file=sys.stderr)
        return 2
    registry = registry_or_say(Path(args.workflows or workflows_default()))
    if registry is None:
        return 1
    events, out = Path(args.events), Path(args.out) if args.out else None
    try:
        retention = timedelta(days=args.retention_days) if args.retention_days else None
        stats = simulate(registry, events, out, until, fmt=args.format, retention=retention)
    except BrokenPipeError:  # `simulate | head`: the reader left; say nothing more to it
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    except OSError as err:  # the events file or --out: missing, a folder, not permitted
        if err.filename is None:  # not about a path we were given
            raise
        print(f"error: {err.filename}: {err.strerror}", file=sys.stderr)
        return 1
    print(
        f"events={stats.events} records={stats.records} rejected={stats.rejected} "
        f"duplicates={stats.duplicates} timers_fired={stats.timers_fired}",
        file=sys.stderr,
    )
    if args.fail_on_reject and stats.rejected:
        reasons = ", ".join(f"{r}={n}" for r, n in sorted(stats.by_reason.items()))
        print(f"error: {stats.rejected} event(s) rejected ({reasons})", file=sys.stderr)
        return 1
    return 0


def cmd_schema(args: argparse.Namespace) -> int:
    folder = Path(args.workflows or workflows_default())
    channels = channels_or_say(folder)
    if channels is None:
        return 1
    for path in write_schemas(Path(args.out), channels):
        print(path)
    return 0


def positive_ints(text: str) -> list[int]:
    """A comma-separated list of positive integers (argparse turns the error into a usage line)."""
    try:
        values = [int(part) for part in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a list of integers: {text!r}") from None
    if not values or min(values) <= 0:
        raise argparse.ArgumentTypeError(f"must be positive: {text!r}")
    return values


def cmd_bench(args: argparse.Namespace) -> int:
    workflows = Path(args.workflows or workflows_default())
    if registry_or_say(workflows) is None:  # refused before a broker starts, without a traceback
        return 1
    if args.which == "kafka":
        return run_kafka_bench(
            workflows,
            args.events,
            args.partitions,
            args.out,
            rates=args.rates,
            duration=args.duration,
            intervals=tuple(args.intervals),
        )
    if args.which == "soak":
        return run_soak_bench(workflows, args.months, args.cases or 3000, 7, args.out)
    if args.which == "view":
        size = ViewBenchSize(args.cases or 1_000_000, args.events, args.repeat, args.requests,
                             args.partitions)  # fmt: skip
        return run_view_bench(workflows, size, args.out)
    if args.which == "scale":
        cases = args.cases or 1_000_000
        return run_scale_bench(workflows, cases, args.events, args.partitions, args.out)
    return run_core_bench(workflows, args.cases or 2000, args.repeat, args.out)


def _settings(args: argparse.Namespace) -> Settings | None:
    """The settings of a Kafka command (None: the error is printed), after one warning per
    `FENGQIAO_*` variable no setting reads (a typo would otherwise be ignored in silence)."""
    for warning in unknown_variable_warnings(os.environ):
        print(warning, file=sys.stderr)
    overrides = {
        "bootstrap_servers": getattr(args, "bootstrap_servers", None),
        "workflows": getattr(args, "workflows", None),
        "store": getattr(args, "store", None),
        "http_port": getattr(args, "http_port", None),
        "partitions": getattr(args, "partitions", None),
        "role": getattr(args, "role", None),
    }
    try:
        return load_settings(overrides)
    except SettingsError as err:
        print(f"error: {err}", file=sys.stderr)
        return None


def cmd_run(args: argparse.Namespace) -> int:
    settings = _settings(args)
    if settings is None:
        return 2
    configure_logging()
    return run_service(settings)


def cmd_topics(args: argparse.Namespace) -> int:
    settings = _settings(args)
    if settings is None:
        return 2
    try:
        for line in create_topics(settings):
            print(line)
        problems = check_topics(settings)
    except TopicsError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    for problem in problems:
        print(f"error: {problem}", file=sys.stderr)
    return 1 if problems else 0


def cmd_migrate(args: argparse.Namespace) -> int:
    settings = _settings(args)
    if settings is None:
        return 2
    return migrate_main(
        settings,
        source=args.source,
        target=args.target,
        mapping=args.map,
        sla=args.sla,
        dry_run=args.dry_run,
        at=args.at,
    )


_SETTINGS_POINTER = (
    "Other settings come from FENGQIAO_* variables: `fengqiao run --help` lists them."
)


def _add_kafka_commands(sub: Any) -> None:
    """The commands that talk to Kafka: run, migrate, topics."""
    p = sub.add_parser(
        "run",
        help="the Kafka service (settings from FENGQIAO_* variables)",
        epilog=variables_help(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--bootstrap-servers", help="overrides FENGQIAO_BOOTSTRAP_SERVERS")
    p.add_argument("--workflows", help="overrides FENGQIAO_WORKFLOWS")
    p.add_argument("--store", help="memory | sqlite:PATH (overrides FENGQIAO_STORE)")
    p.add_argument("--http-port", type=int, help="overrides FENGQIAO_HTTP_PORT")
    p.add_argument(
        "--role",
        choices=["all", "engine", "adapters"],
        help="run the intake adapters and the engine (all, default), or one of them",
    )
    p.set_defaults(func=cmd_run)

    p = sub.add_parser(
        "migrate",
        help="move the open cases of NAME@V1 to NAME@V2, as events through Kafka (audited, "
        "exactly once)",
    )
    p.add_argument(
        "--from",
        dest="source",
        required=True,
        metavar="NAME@V1",
        help="the workflow version whose open cases move, e.g. dispute-escalation@1",
    )
    p.add_argument(
        "--to",
        dest="target",
        required=True,
        metavar="NAME@V2",
        help="the workflow version they move to (must be loaded)",
    )
    p.add_argument(
        "--map",
        action="append",
        default=[],
        metavar="OLD=NEW",
        help="state mapping; repeat for every state open cases are in",
    )
    p.add_argument(
        "--sla",
        choices=["keep", "recompute", "earliest"],
        default="keep",
        help="keep the deadline, recompute it from entry, or take the earlier",
    )
    p.add_argument("--dry-run", action="store_true", help="report what would move; send nothing")
    p.add_argument("--at", help="domain time of the migration (default: now), RFC 3339")
    p.add_argument("--bootstrap-servers", help="overrides FENGQIAO_BOOTSTRAP_SERVERS")
    p.add_argument("--workflows", help="overrides FENGQIAO_WORKFLOWS")
    p.epilog = _SETTINGS_POINTER
    p.set_defaults(func=cmd_migrate)

    p = sub.add_parser("topics", help="create the engine's topics (idempotent) and check them")
    p.add_argument(
        "action", choices=["create"], help="create: create missing topics, report differences"
    )
    p.add_argument("--bootstrap-servers", help="overrides FENGQIAO_BOOTSTRAP_SERVERS")
    p.add_argument("--partitions", type=int, help="overrides FENGQIAO_PARTITIONS")
    p.epilog = _SETTINGS_POINTER
    p.set_defaults(func=cmd_topics)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="fengqiao",
        description="Multi-tier dispute escalation engine (枫桥经验).",
        epilog="New here? `fengqiao demo` plays a whole town through the engine, no Kafka "
        "needed. `fengqiao COMMAND --help` explains each command; README.md has the tour.",
    )
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser(
        "validate", help="validate workflow files or folders (and their channels/ files)"
    )
    p.add_argument("paths", nargs="*", help="files or folders (default: workflows/)")
    p.set_defaults(func=cmd_validate)

    p = sub.add_parser("graph", help="draw the state diagram of a workflow")
    p.add_argument("file", help="a workflow YAML file")
    p.add_argument(
        "--format",
        choices=["mermaid", "dot"],
        default="mermaid",
        help="Mermaid stateDiagram-v2 (default) or Graphviz dot",
    )
    p.set_defaults(func=cmd_graph)

    p = sub.add_parser("simulate", help="replay canonical events (JSON lines) on a virtual clock")
    p.add_argument("--events", required=True, help="JSON lines file of canonical events")
    p.add_argument("--workflows", help="workflow folder (default: workflows/)")
    p.add_argument("--until", help="at the end, fire timers up to this instant (RFC 3339)")
    p.add_argument("--out", help="write output records here (default: stdout)")
    p.add_argument(
        "--retention-days", type=int, default=0,
        help="retire closed cases this many days after they close, as `run` does with "
        "FENGQIAO_RETENTION_DAYS (default 0: keep them)",
    )  # fmt: skip
    p.add_argument(
        "--format",
        choices=["json", "table"],
        default="json",
        help="json: one output record per line (default); table: a timeline per case, in the "
        "workflow's local time",
    )
    p.add_argument(
        "--fail-on-reject",
        action="store_true",
        help="exit 1 if any event was rejected (after writing all output); counts by reason "
        "on stderr",
    )
    p.set_defaults(func=cmd_simulate)

    p = sub.add_parser(
        "schemas",
        help="export the public contracts: JSON Schemas (workflow, events, intake messages, "
        "records) and the AsyncAPI document of the topics",
    )
    p.add_argument("action", choices=["export"], help="export: (re)write the documents")
    p.add_argument("--out", default="schemas", help="folder to write into (default: schemas/)")
    p.add_argument("--workflows", help="workflow folder with its channels/ (default: workflows/)")
    p.set_defaults(func=cmd_schema)

    p = sub.add_parser("bench", help="benchmarks that print their figures")
    p.add_argument(
        "which", choices=["core", "kafka", "scale", "soak", "view"], help="which benchmark to run"
    )
    p.add_argument("--workflows", help="workflow folder (default: workflows/)")
    p.add_argument(
        "--cases",
        type=int,
        help="synthetic cases (core: 2000) / open cases (scale: 1000000) / per month (soak: 3000)"
        " / cases in the read model (view: 1000000)",
    )
    p.add_argument("--repeat", type=int, default=3, help="best of N runs (core, view)")
    p.add_argument(
        "--events",
        type=int,
        default=60_000,
        help="backlog for throughput (kafka, scale) / the stream projected (view)",
    )
    p.add_argument("--partitions", type=int, default=4, help="partitions (kafka, scale, view)")
    p.add_argument("--requests", type=int, default=2000, help="requests per measured query (view)")
    p.add_argument("--rates", type=positive_ints, default="500,1000,2000",
                   help="offered events/s for latency (kafka)")  # fmt: skip
    p.add_argument("--duration", type=float, default=10.0, help="seconds measured per rate (kafka)")
    p.add_argument("--intervals", type=positive_ints, default="100,5000",
                   help="commit intervals in ms (kafka)")  # fmt: skip
    p.add_argument(
        "--months", type=int, default=24, help="simulated months of closed cases retired (soak)"
    )
    p.add_argument("--out", help="also write the figures as JSON here")
    p.set_defaults(func=cmd_bench)

    _add_kafka_commands(sub)

    add_demo_command(sub, workflows_default)
    add_test_command(sub, workflows_default)
    add_view_command(sub)
    add_cases_command(sub)
    for action in sub._choices_actions:  # each command's --help opens with its one-line help
        command = sub.choices[action.dest]
        command.description = command.description or action.help
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    code: int = args.func(args)
    return code


if __name__ == "__main__":
    sys.exit(main())
