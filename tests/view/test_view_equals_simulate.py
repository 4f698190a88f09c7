"""The read model says what the engine holds (issue 14: "current state and deadlines must equal
what the engine holds"), on SQLite and on PostgreSQL.

Event files go through `fengqiao simulate` (its own function, writing the JSON lines `run`
publishes); the same replay gives the engine's final cases. The lines are projected in
consumer-sized batches, with the input events as the view reads them from the case-events
topic (before the records, or after: the two topics are read side by side), and every case's
row must agree with its final case: state, tier, deadline, warning instant, status, outcome,
the counters and flags around them, and the attributes of its report.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pytest
import sqlalchemy as sa

from consumers.cli.simulate import simulate
from consumers.demo.town import Town, TownSpec
from consumers.view.fold import TierOrder
from consumers.view.projection import project
from engine.core import Engine
from engine.registry import WorkflowRegistry
from tests.view.streams import (
    as_consumed,
    as_consumed_events,
    expected_row,
    replay,
    row_fields,
    stored_rows,
)

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "workflows" / "examples"
BATCH = 50


def _town_file(registry: WorkflowRegistry, folder: Path) -> Path:
    """Sixty days of a small town's disputes, hotline work orders and petitions (~600 events:
    retries, pauses, extensions, escalations, breaches, every rung)."""
    path = folder / "town.jsonl"
    events = Town(TownSpec(population=15_000, days=60), registry).events()
    path.write_bytes(b"".join(e.raw + b"\n" for e in events))
    return path


STREAMS = [
    # (events file or "town", --until): a mid-way instant leaves cases open with deadlines ahead
    ("dispute-escalation", "2026-03-20T00:00:00+08:00"),
    ("dispute-escalation", "2026-06-01T00:00:00+08:00"),
    ("petition", "2026-06-01T00:00:00+08:00"),
    ("hotline-12345", "2026-06-01T00:00:00+08:00"),
    ("town", "2026-03-15T00:00:00+08:00"),
]


@pytest.mark.parametrize(("name", "until"), STREAMS)
def test_every_projected_case_equals_the_engines_final_case(  # noqa: PLR0917 - fixtures
    view_db: sa.Engine,
    registry: WorkflowRegistry,
    engine: Engine,
    tiers: TierOrder,
    tmp_path: Path,
    name: str,
    until: str,
) -> None:
    events = _town_file(registry, tmp_path) if name == "town" else EXAMPLES / f"{name}.jsonl"
    at = datetime.fromisoformat(until)
    out = tmp_path / "records.jsonl"
    simulate(registry, events, out, at)
    published = out.read_bytes().splitlines()
    run, again = replay(engine, events.read_bytes().splitlines(), at, events.name)
    assert again == published  # the same path as `simulate`: its final cases are the engine's

    reports = as_consumed_events(events.read_bytes().splitlines())
    records = as_consumed(published)
    items = reports + records if STREAMS.index((name, until)) % 2 else records + reports
    for start in range(0, len(items), BATCH):
        project(view_db, items[start : start + BATCH], tiers)

    rows = stored_rows(view_db)
    assert set(rows) == set(run.cases)
    for case_id, case in run.cases.items():
        expected = expected_row(engine, case, attributes=True)
        assert row_fields(rows[case_id], attributes=True) == expected, case_id
        assert rows[case_id].last_seq == case.seq
    statuses = {row.status for row in rows.values()}
    assert statuses == {"open", "closed"} or name != "town"  # the town leaves both kinds
    assert any(row.attributes for row in rows.values())
