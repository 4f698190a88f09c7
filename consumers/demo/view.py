"""The demo's case view: its records projected into a read model, as `fengqiao view` would.

`records.jsonl` is the demo's stand-in for `fengqiao.transitions`, so its lines are projected
into an SQLite read model next to it (`view.sqlite`) with the very projection step the view
service runs (consumers/view/projection.py): the line number is the offset, stored in the same
transaction as the rows. A resumed or extended town therefore projects only the lines it has
not projected yet, and a crash half-way leaves a read model that is merely behind.

It runs once the run stops, at a commit point of the record log (whatever was written after the
last commit has already been cut off), and the operator then browses it with
`fengqiao cases list --db sqlite:///…/view.sqlite` or the console of `fengqiao view`.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from consumers.view import tier_order
from consumers.view.projection import Consumed, project, stored_offsets
from consumers.view.tables import create_view_engine, prepare, rebuild
from engine.registry import WorkflowRegistry

TOPIC = "records.jsonl"
"""The "topic" of the demo's record log in the read model's offsets table."""
BATCH = 5_000
"""Lines per projection transaction."""


@dataclass(frozen=True)
class ViewUpdate:
    path: Path
    projected: int
    """Lines projected now (the others were projected by an earlier run)."""

    @property
    def url(self) -> str:
        return f"sqlite:///{self.path.resolve()}"


def update_view(records: Path, view: Path, registry: WorkflowRegistry) -> ViewUpdate:
    """Project the lines of `records` the read model at `view` has not seen yet."""
    engine = create_view_engine(f"sqlite:///{view}")
    try:
        if prepare(engine) == "stale":  # made by another version: rebuild from the log
            rebuild(engine)
        with engine.connect() as conn:
            start = stored_offsets(conn, [(TOPIC, 0)]).get((TOPIC, 0), 0)
        tiers = tier_order(registry)
        projected = 0
        batch: list[Consumed] = []
        for offset, line in _lines(records, start):
            batch.append(Consumed(TOPIC, 0, offset, line))
            if len(batch) >= BATCH:
                projected += len(batch)
                project(engine, batch, tiers)
                batch = []
        if batch:
            projected += len(batch)
            project(engine, batch, tiers)
    finally:
        engine.dispose()
    return ViewUpdate(view, projected)


def _lines(records: Path, start: int) -> Iterator[tuple[int, bytes]]:
    if not records.exists():
        return
    with records.open("rb") as file:
        for offset, line in enumerate(file):
            if offset >= start and line.strip():
                yield offset, line.rstrip(b"\n")
