"""`fengqiao demo` writes its case view: the town's records projected into a read model.

Every case of the store has its row, with the store's state, tier and deadline; a resumed town
(interrupted for real, then run again) ends with the same read model as one run straight through.
"""

from __future__ import annotations

import signal
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from consumers.demo.files import RunFolder
from consumers.demo.view import update_view
from consumers.view.tables import cases as case_rows
from consumers.view.tables import create_view_engine
from engine.registry import WorkflowRegistry
from engine.stores import SqliteStore
from tests.unit.test_demo import ROOT, _cli, _commits, _interrupt

pytestmark = pytest.mark.unit


def _rows(view: Path) -> list[tuple[Any, ...]]:
    engine = create_view_engine(f"sqlite:///{view}")
    try:
        with engine.connect() as conn:
            columns = [c for c in case_rows.c if c.name != "updated_at"]
            return [
                tuple(r) for r in conn.execute(sa.select(*columns).order_by(case_rows.c.case_id))
            ]
    finally:
        engine.dispose()


def test_the_view_holds_every_case_as_the_store_does(tmp_path: Path) -> None:
    done = _cli(tmp_path, "--speed", "0")
    text, _ = done.communicate(timeout=120)
    assert done.returncode == 0, text
    folder = RunFolder(tmp_path)
    assert "fengqiao cases list --db sqlite:///" in text
    assert "fengqiao cases list --status overdue --db sqlite:///" in folder.report.read_text()
    store = SqliteStore(folder.store)
    try:
        held = {c.case_id: c for c in store.cases(0)}
    finally:
        store.close()
    engine = create_view_engine(f"sqlite:///{folder.view}")
    with engine.connect() as conn:
        rows = {r.case_id: r for r in conn.execute(sa.select(case_rows))}
    engine.dispose()
    assert held
    assert set(held) <= set(rows), "every case the store holds has its row"
    for case_id, case in held.items():
        row = rows[case_id]
        deadline = case.sla.deadline if case.sla else None
        assert (row.state, row.tier, row.deadline) == (case.state, case.tier, deadline), case_id
    again = update_view(folder.records, folder.view, WorkflowRegistry.load(ROOT / "workflows"))
    assert again.projected == 0, "a second pass projects nothing new"


def test_a_resumed_town_ends_with_the_same_view(tmp_path: Path) -> None:
    reference = tmp_path / "reference"
    done = _cli(reference, "--speed", "0")
    text, _ = done.communicate(timeout=120)
    assert done.returncode == 0, text
    out = tmp_path / "interrupted"
    _interrupt(out, signal.SIGINT, after_commits=10)
    _interrupt(out, signal.SIGKILL, after_commits=_commits(out) + 10)
    resumed = _cli(out, "--speed", "0")
    text, _ = resumed.communicate(timeout=120)
    assert resumed.returncode == 0, text
    assert _rows(out / "view.sqlite") == _rows(reference / "view.sqlite")
