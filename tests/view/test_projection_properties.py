"""Properties of the projection over random batch boundaries, consumer restarts and corrections
(hypothesis, on in-memory SQLite; the same code path runs on PostgreSQL in test_projection.py).

Whatever the batches, however often a consumer restarts from an older position, the database
ends equal to one uninterrupted pass, and each row equals the pure fold of its case's records.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from consumers.view.fold import Record, TierOrder, fold
from consumers.view.projection import Consumed, project
from consumers.view.tables import create_view_engine, prepare
from engine.core import Engine
from tests.view.streams import (
    as_consumed,
    by_case,
    dump,
    encode,
    reissued,
    replay,
    retraction,
    stored_rows,
)

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "workflows" / "examples"
UNTIL = datetime.fromisoformat("2026-04-01T00:00:00+08:00")


@pytest.fixture(scope="module")
def published(engine: Engine) -> list[bytes]:
    lines = [
        line
        for name in ("dispute-escalation", "petition")
        for line in (EXAMPLES / f"{name}.jsonl").read_bytes().splitlines()
        if line.strip()
    ]
    return replay(engine, lines, UNTIL)[1]


def corrected(published: list[bytes], cuts: dict[str, int]) -> list[bytes]:
    """The stream with, for each chosen case, its records from position `cut` on retracted and
    published again after (a correction that says the same), appended at the end."""
    histories = by_case(published)
    extra: list[Record] = []
    for case_id, cut in sorted(cuts.items()):
        records = histories[case_id]
        seq = len(records)
        tail = records[min(cut, len(records)) :]
        for record in tail:
            seq += 1
            extra.append(retraction(record, seq))
        for record in tail:
            seq += 1
            extra.append(reissued(record, seq))
    return published + encode(extra)


def one_pass(items: list[Consumed], tiers: TierOrder) -> dict[str, list[tuple[object, ...]]]:
    db = create_view_engine("sqlite://")
    prepare(db)
    project(db, items, tiers)
    return dump(db)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_restarts_and_batch_boundaries_never_change_the_result(
    published: list[bytes], tiers: TierOrder, data: st.DataObject
) -> None:
    case_ids = sorted(by_case(published))
    chosen = data.draw(st.dictionaries(st.sampled_from(case_ids), st.integers(0, 8)), "cuts")
    values = corrected(published, chosen)
    items = as_consumed(values)
    db = create_view_engine("sqlite://")
    prepare(db)
    position = 0
    while position < len(items):
        # a restart may go back over records the database already has, never past them
        back = data.draw(st.integers(0, min(position, 12)), "back")
        size = data.draw(st.integers(1, 40), "size")
        project(db, items[position - back : position + size], tiers)
        position += size
    assert dump(db) == one_pass(items, tiers)
    folded = {case_id: fold(h, tiers) for case_id, h in by_case(values).items()}
    assert stored_rows(db) == {case_id: row for case_id, row in folded.items() if row is not None}
