"""The view follows the engine's own corrections (`record.retracted`, DESIGN §6), on SQLite and
on PostgreSQL.

Late deliveries on a wall clock make the engine retract what it had published and publish the
corrected records; after projecting everything it committed, each row must equal the engine's
final case, as when nothing had been late (a workflow's `correction:` horizon).
"""

from __future__ import annotations

import json
import random
import shutil
from datetime import datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from consumers.demo.town import Town, TownSpec
from consumers.view import tier_order
from consumers.view.projection import project
from engine.core import Engine
from engine.registry import WorkflowRegistry
from engine.replay import Replay
from tests.view.streams import as_consumed, expected_row, row_fields, stored_rows

ROOT = Path(__file__).resolve().parents[2]
HORIZON = "correction: {calendar_days: 7}\n"
URGENT = {"workflow": "hotline-12345", "attributes": {"urgency": "urgent", "category": "water"}}
BATCH = 25


@pytest.fixture(scope="module")
def corrected_engine(tmp_path_factory: pytest.TempPathFactory) -> Engine:
    """The shipped workflows, every version with a 7-day correction horizon."""
    folder = tmp_path_factory.mktemp("corrected") / "workflows"
    shutil.copytree(ROOT / "workflows", folder, ignore=shutil.ignore_patterns("tests", "channels"))
    for path in folder.glob("*.yaml"):
        path.write_text(path.read_text(encoding="utf-8") + HORIZON, encoding="utf-8")
    return Engine(WorkflowRegistry.load(folder))


def event(n: int, case: str, type_: str, when: str, source: str, **payload: object) -> bytes:
    return json.dumps({"event_id": f"e{n}", "case_id": case, "type": type_, "occurred_at": when,
                       "source": source, "payload": payload}).encode()  # fmt: skip


def wall_clock(
    engine: Engine, deliveries: list[tuple[datetime, bytes]], end: datetime
) -> tuple[Replay, list[bytes]]:
    """As `fengqiao run` on a wall clock: before each delivery the clock reaches it."""
    replay = Replay(engine)
    out = []
    for n, (delivered, raw) in enumerate(deliveries):
        out += list(replay.advance(delivered))
        out += list(replay.feed(raw, f"in:{n}"))
    out += list(replay.advance(end))
    return replay, [r.model_dump_json().encode() for r in out]


def assert_view_equals_engine(
    db: sa.Engine, engine: Engine, replay: Replay, published: list[bytes]
) -> None:
    tiers = tier_order(engine.registry)
    items = as_consumed(published)
    for start in range(0, len(items), BATCH):
        project(db, items[start : start + BATCH], tiers)
    rows = stored_rows(db)
    assert set(rows) == set(replay.cases)
    for case_id, case in replay.cases.items():
        assert row_fields(rows[case_id]) == expected_row(engine, case), case_id


def at(text: str) -> datetime:
    return datetime.fromisoformat(text)


def test_an_order_answered_in_time_but_delivered_after_its_breach(
    view_db: sa.Engine, corrected_engine: Engine
) -> None:
    """The warning, breach and escalation are retracted: the row is back at the street."""
    reported = event(1, "o1", "case.reported", "2026-03-03T04:00:00+08:00", "hotline-12345",
                     **URGENT)  # fmt: skip
    responded = event(2, "o1", "order.responded", "2026-03-03T04:30:00+08:00", "hotline-12345")
    replay, published = wall_clock(
        corrected_engine,
        [(at("2026-03-03T04:00:01+08:00"), reported), (at("2026-03-03T06:30:00+08:00"), responded)],
        at("2026-03-03T07:00:00+08:00"),
    )
    assert sum(b'"record.retracted"' in value for value in published) == 3
    assert_view_equals_engine(view_db, corrected_engine, replay, published)
    assert stored_rows(view_db)["o1"].state == "urgent.handling"


@pytest.mark.parametrize("seed", [1, 2])
def test_a_town_delivered_late_and_out_of_order(
    view_db: sa.Engine, corrected_engine: Engine, seed: int
) -> None:
    """A month of a town's events, a third of them delivered up to three days late (grid apps
    out of signal), so timers fire first and the engine corrects cases as the events come."""
    rng = random.Random(seed)
    registry = corrected_engine.registry
    town = Town(TownSpec(population=10_000, days=30, seed=seed), registry)
    deliveries = sorted(
        ((e.at + timedelta(hours=rng.uniform(0, 72)) if rng.random() < 0.33 else e.at), n, e.raw)
        for n, e in enumerate(town.events())
    )
    replay, published = wall_clock(
        corrected_engine, [(when, raw) for when, _, raw in deliveries], town.end
    )
    assert sum(b'"record.retracted"' in value for value in published) > 10
    assert_view_equals_engine(view_db, corrected_engine, replay, published)
