"""The `fengqiao demo` sub-command: its flags and their help, kept beside the demo.

Why a module of its own: `consumers/cli/main.py` is the one file every command touches; the demo's
dozen lines of flags live here so that changing them never conflicts with the other commands.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any

from consumers.demo.run import DEFAULT_PORT, DEFAULT_SPEED, DemoOptions, run_demo
from consumers.demo.town import DEFAULT_POPULATION, DEFAULT_START, TownSpec

DESCRIPTION = """\
Play a synthetic town through the engine, no Kafka needed: residents report disputes (grid
officers, police, online, 12345 hotline, court), hotline work orders and petitions; mediators
settle most of them on the spot, some climb the ladder, some deadlines lapse. The events go
through the same engine and SQLite state store as one partition of `fengqiao run`, on a
virtual clock. While it runs, Prometheus metrics are served on /metrics; at the end it prints
cases per tier and the domain ratios, and writes a self-contained HTML report (escalation
flow, SLA charts) into the output folder.

Ctrl-C stops at the end of the current virtual day and leaves a consistent folder: run the
same command again to resume. The same flags always give the same town."""

EPILOG = """\
examples:
  fengqiao demo                                  # 60,000 residents, 90 days, ~10 s
  fengqiao demo --speed 0                        # as fast as the engine goes
  fengqiao demo --size 500000 --days 365 --out out/city --speed 0
  fengqiao demo --fresh                          # forget out/demo and play it again"""


def _bounded(kind: Callable[[str], Any], low: float, high: float) -> Callable[[str], Any]:
    def parse(text: str) -> Any:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"must be between {low:g} and {high:g}")
        return value

    return parse


def add_demo_command(sub: Any, workflows_default: Callable[[], Path]) -> None:
    """Register `demo` on the CLI's sub-parsers."""
    p = sub.add_parser(
        "demo",
        help="play a synthetic town through the engine (no Kafka): summary and HTML report",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "--population",
        "--size",
        type=_bounded(int, 100, 50_000_000),
        default=DEFAULT_POPULATION,
        metavar="N",
        help="residents of the town; about 80 cases per 1,000 residents a year "
        f"(default: {DEFAULT_POPULATION:,})",
    )
    p.add_argument(
        "--days",
        type=_bounded(int, 1, 3650),
        default=90,
        metavar="N",
        help="length of the period played, in days (default: 90)",
    )
    p.add_argument(
        "--seed",
        type=int,
        default=2026,
        metavar="N",
        help="random seed: the same flags give the same town (default: 2026)",
    )
    p.add_argument(
        "--start",
        type=date.fromisoformat,
        default=DEFAULT_START,
        metavar="DATE",
        help=f"first day, YYYY-MM-DD (default: {DEFAULT_START})",
    )
    p.add_argument(
        "--speed",
        type=_bounded(float, 0, 1e9),
        default=DEFAULT_SPEED,
        metavar="DAYS_PER_S",
        help="virtual days per second of wall time; 0 = as fast as possible "
        f"(default: {DEFAULT_SPEED:g}, so 90 days take about 9 s)",
    )
    p.add_argument(
        "--out",
        type=Path,
        default=Path("out/demo"),
        metavar="DIR",
        help="folder for the store, the records and the report (default: "
        "out/demo); an unfinished run of the same town there is resumed",
    )
    p.add_argument(
        "--port",
        type=_bounded(int, 0, 65535),
        default=None,
        metavar="PORT",
        help=f"serve /metrics on 127.0.0.1:PORT while running; 0 = any free port "
        f"(default: {DEFAULT_PORT}, or a free one when that is busy)",
    )
    p.add_argument("--fresh", action="store_true", help="delete the town in --out and start over")
    p.add_argument(
        "--workflows", type=Path, metavar="DIR", help="workflow folder (default: workflows/)"
    )
    p.set_defaults(func=lambda args: cmd_demo(args, workflows_default))


def cmd_demo(args: argparse.Namespace, workflows_default: Callable[[], Path]) -> int:
    spec = TownSpec(population=args.population, seed=args.seed, start=args.start, days=args.days)
    options = DemoOptions(
        spec=spec,
        workflows=args.workflows or workflows_default(),
        out=args.out,
        speed=args.speed,
        port=args.port,
        fresh=args.fresh,
    )
    return run_demo(options)
