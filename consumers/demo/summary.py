"""The demo's closing summary in the terminal: one table per tier, one of the domain ratios.

Why two tables and no more: the per-tier counts (entered, resolved, escalated, breached) show
the ladder working, the ratios are what operators report upward; everything else is in the
HTML report, whose path is printed right after.
"""

from __future__ import annotations

from rich.console import Console
from rich.table import Table

from consumers.demo.report import RATIO_NAMES, RunInfo, percent
from consumers.demo.town import TownSpec
from consumers.demo.town_stats import Tally


def tier_table(tally: Tally) -> Table:
    table = Table(title="Cases per tier")
    for column in ("workflow", "tier", "entered", "resolved", "escalated", "breached"):
        table.add_column(column, justify="left" if column in ("workflow", "tier") else "right")
    previous = None
    for (wf, tier), t in tally.tiers.items():
        if previous is not None and wf != previous:
            table.add_section()
        previous = wf
        table.add_row(wf, tier, f"{t.entered:,}", f"{t.resolved:,}", f"{t.escalated:,}",
                      f"{t.breached:,}")  # fmt: skip
    return table


def ratio_table(tally: Tally) -> Table:
    names = list(tally.ladders)
    table = Table(title="Domain ratios")
    table.add_column("ratio")
    for name in [*names, "all"]:
        table.add_column(name, justify="right")
    per = [tally.ratios(n) for n in names] + [tally.ratios()]
    for key, label, zh in RATIO_NAMES:
        table.add_row(f"{label} {zh}", *(percent(getattr(r, key)) for r in per))
    return table


def print_summary(console: Console, tally: Tally, run: RunInfo, spec: TownSpec) -> None:
    console.print(tier_table(tally))
    console.print(ratio_table(tally))
    rate = run.events / run.seconds if run.seconds > 0 else 0.0
    cases = sum(w.opened for w in tally.workflows.values())
    refused = ", ".join(f"{n} {reason}" for reason, n in sorted(tally.rejected.items())) or "none"
    console.print(
        f"town of {spec.population:,} over {spec.days} days from {spec.start} (seed {spec.seed}): "
        f"{cases:,} cases, {tally.open_cases():,} still open; {run.events:,} events → "
        f"{tally.records:,} records in {run.seconds:.2f} s busy ({rate:,.0f} events/s); "
        f"{run.duplicates:,} duplicates dropped; refused: {refused}"
    )
