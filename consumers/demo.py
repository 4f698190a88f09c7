"""`fengqiao demo`: the engine on its bundled example streams, no Kafka needed.

Replays every `workflows/examples/*.jsonl` through the same core the Kafka service runs, writes
the output records per stream, and prints a per-tier summary. (The full town simulation with a
SQLite store, progress bar and HTML report is the subject of a later issue.)
"""

from __future__ import annotations

import json
from collections import Counter
from datetime import datetime
from pathlib import Path

from rich.console import Console
from rich.table import Table

from consumers.simulate import simulate
from engine.problems import InvalidWorkflowError
from engine.registry import WorkflowRegistry

UNTIL = datetime.fromisoformat("2026-12-31T00:00:00+08:00")


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
    entered: Counter[str] = Counter()
    escalated: Counter[str] = Counter()
    breached: Counter[str] = Counter()
    closed: Counter[tuple[str, str]] = Counter()
    rejected: Counter[str] = Counter()
    for stream in streams:
        target = out / f"{stream.stem}.records.jsonl"
        stats = simulate(registry, stream, target, UNTIL)
        console.print(
            f"[bold]{stream.name}[/]: {stats.events} events → {stats.records} records "
            f"({stats.rejected} rejected, {stats.duplicates} duplicates) → {target}"
        )
        for line in target.read_text(encoding="utf-8").splitlines():
            record = json.loads(line)
            kind = record["type"]
            if kind == "case.transitioned" and record["to_tier"] != record["from_tier"]:
                entered[f"{record['workflow']}:{record['to_tier']}"] += 1
                if record["from_tier"] is not None:
                    escalated[f"{record['workflow']}:{record['from_tier']}"] += 1
            elif kind == "sla.breached":
                breached[record["workflow"]] += 1
            elif kind == "case.closed":
                closed[(record["workflow"], f"{record['outcome']}@{record['resolved_tier']}")] += 1
            elif kind == "event.rejected":
                rejected[record["reason"]] += 1
    table = Table(title="Tiers: cases entering and leaving upward")
    for column in ("workflow:tier", "entered", "escalated from"):
        table.add_column(column)
    for key in sorted(entered):
        table.add_row(key, str(entered[key]), str(escalated[key]))
    console.print(table)
    outcomes = Table(title="Closed cases by outcome and resolved tier")
    for column in ("workflow", "outcome@tier", "cases"):
        outcomes.add_column(column)
    for (workflow, outcome), count in sorted(closed.items()):
        outcomes.add_row(workflow, outcome, str(count))
    console.print(outcomes)
    console.print(f"SLA breaches: {dict(breached)}  rejections by reason: {dict(rejected)}")
    return 0
