"""`fengqiao demo`: the engine on its bundled example streams, no Kafka needed.

Replays every `workflows/examples/*.jsonl` through the same core the Kafka service runs, writes
the output records per stream, and prints a per-tier summary. (The full town simulation with a
SQLite store, progress bar and HTML report is the subject of a later issue.)
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from consumers.simulate import simulate
from engine.problems import InvalidWorkflowError
from engine.registry import WorkflowRegistry

UNTIL = datetime.fromisoformat("2026-12-31T00:00:00+08:00")


@dataclass
class Tally:
    """Counts for the summary tables, read back from the records the engine wrote."""

    entered: Counter[str] = field(default_factory=Counter)
    escalated: Counter[str] = field(default_factory=Counter)
    breached: Counter[str] = field(default_factory=Counter)
    closed: Counter[tuple[str, str]] = field(default_factory=Counter)
    rejected: Counter[str] = field(default_factory=Counter)

    def add(self, record: dict[str, Any]) -> None:
        kind, workflow = record["type"], record.get("workflow", "")
        if kind == "case.transitioned" and record["to_tier"] != record["from_tier"]:
            self.entered[f"{workflow}:{record['to_tier']}"] += 1
            if record["from_tier"] is not None:
                self.escalated[f"{workflow}:{record['from_tier']}"] += 1
        elif kind == "sla.breached":
            self.breached[workflow] += 1
        elif kind == "case.closed":
            self.closed[(workflow, f"{record['outcome']}@{record['resolved_tier']}")] += 1
        elif kind == "event.rejected":
            self.rejected[record["reason"]] += 1


def run_demo(workflows: Path, out: Path) -> int:
    console = Console()
    try:
        registry = WorkflowRegistry.load(workflows)
    except InvalidWorkflowError as err:
        console.print(str(err), markup=False)
        return 1
    streams = sorted((workflows / "examples").glob("*.jsonl"))
    if not streams:
        console.print(f"no example streams in {workflows / 'examples'}")
        return 1
    out.mkdir(parents=True, exist_ok=True)
    tally = Tally()
    for stream in streams:
        target = out / f"{stream.stem}.records.jsonl"
        stats = simulate(registry, stream, target, UNTIL)
        console.print(
            f"[bold]{stream.name}[/]: {stats.events} events → {stats.records} records "
            f"({stats.rejected} rejected, {stats.duplicates} duplicates) → {target}"
        )
        for line in target.read_text(encoding="utf-8").splitlines():
            tally.add(json.loads(line))
    _print_tables(console, tally)
    return 0


def _print_tables(console: Console, tally: Tally) -> None:
    table = Table(title="Tiers: cases entering and leaving upward")
    for column in ("workflow:tier", "entered", "escalated from"):
        table.add_column(column)
    for key in sorted(tally.entered):
        table.add_row(key, str(tally.entered[key]), str(tally.escalated[key]))
    console.print(table)
    outcomes = Table(title="Closed cases by outcome and resolved tier")
    for column in ("workflow", "outcome@tier", "cases"):
        outcomes.add_column(column)
    for (workflow, outcome), count in sorted(tally.closed.items()):
        outcomes.add_row(workflow, outcome, str(count))
    console.print(outcomes)
    console.print(
        f"SLA breaches: {dict(tally.breached)}  rejections by reason: {dict(tally.rejected)}"
    )
