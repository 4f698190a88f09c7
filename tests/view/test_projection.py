"""The projection step (consumers/view/projection.py) on SQLite and on the real PostgreSQL.

Every test here runs twice through the `view_db` fixture: `unit` on a SQLite file, `integration`
on a fresh database of the session's PostgreSQL server. The input is the engine's own output
for the example streams, cut into batches as a consumer would read them.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from consumers.view import projection
from consumers.view.fold import TierOrder, fold
from consumers.view.projection import (
    Consumed,
    ReadModelConflictError,
    ReadModelError,
    project,
    stored_offsets,
)
from consumers.view.tables import SCHEMA_VERSION, history, meta, prepare, rebuild, schema_version
from engine.core import Engine
from tests.view.streams import (
    DEAD_LETTER,
    TOPIC,
    as_consumed,
    batches,
    by_case,
    dump,
    encode,
    reissued,
    replay,
    retraction,
    stored_rows,
)

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "workflows" / "examples"
UNTIL = datetime.fromisoformat("2026-06-01T00:00:00+08:00")


@pytest.fixture(scope="module")
def published(engine: Engine) -> list[bytes]:
    """The engine's output for the three example streams (rejections included), in order."""
    lines = [
        line
        for name in ("dispute-escalation", "petition", "hotline-12345")
        for line in (EXAMPLES / f"{name}.jsonl").read_bytes().splitlines()
        if line.strip()
    ]
    _, out = replay(engine, lines, UNTIL)
    return out


def project_all(db: sa.Engine, items: list[Consumed], tiers: TierOrder, size: int) -> None:
    for start in range(0, len(items), size):
        project(db, items[start : start + size], tiers)


@pytest.mark.parametrize("size", [1, 7, 10_000])
def test_the_rows_are_the_fold_of_each_cases_records_whatever_the_batches(
    view_db: sa.Engine, published: list[bytes], tiers: TierOrder, size: int
) -> None:
    items = as_consumed(published)
    project_all(view_db, items, tiers, size)
    histories = by_case(published)
    assert stored_rows(view_db) == {c: fold(h, tiers) for c, h in histories.items()}
    tables = dump(view_db)
    assert len(tables["history"]) == sum(len(h) for h in histories.values())
    with view_db.connect() as conn:
        offsets = stored_offsets(conn)
    partitions = {(i.topic, i.partition) for i in items}
    assert offsets == {p: sum(1 for i in items if (i.topic, i.partition) == p) for p in partitions}


def test_a_batch_fed_again_changes_nothing(
    view_db: sa.Engine, published: list[bytes], tiers: TierOrder
) -> None:
    items = as_consumed(published)
    first = project(view_db, items, tiers)
    assert first.skipped == 0
    assert first.applied == sum(len(h) for h in by_case(published).values())
    assert first.ignored == sum(1 for i in items if i.topic == DEAD_LETTER)
    before = dump(view_db)
    again = project(view_db, items, tiers)
    assert (again.skipped, again.applied, again.cases) == (len(items), 0, 0)
    assert dump(view_db) == before


def test_a_batch_overlapping_the_stored_offsets_applies_only_its_new_records(
    view_db: sa.Engine, published: list[bytes], tiers: TierOrder, tmp_path: Path
) -> None:
    """A consumer that restarts from an older position (its commit was lost, the database's
    was not) reads records the database has: the result equals one uninterrupted pass."""
    items = as_consumed(published)
    cut, back = len(items) * 3 // 5, len(items) * 2 // 5
    project(view_db, items[:cut], tiers)
    overlap = project(view_db, items[back:], tiers)
    assert overlap.skipped == cut - back
    one_pass = sa.create_engine(f"sqlite:///{tmp_path / 'one-pass.sqlite'}")
    prepare(one_pass)
    project(one_pass, items, tiers)
    assert dump(view_db) == dump(one_pass)


def test_records_published_twice_are_applied_once(
    view_db: sa.Engine, published: list[bytes], tiers: TierOrder
) -> None:
    """The same records again at new offsets (a producer retry outside a transaction), inside
    one batch and across batches: the history and the rows do not double."""
    items = as_consumed(published + published[:40] + published[:40])
    half = len(items) // 2
    results = [project(view_db, items[:half], tiers), project(view_db, items[half:], tiers)]
    case_records = sum(len(h) for h in by_case(published).values())
    assert sum(r.applied for r in results) == case_records
    repeated = sum(len(h) for h in by_case(published[:40]).values())
    assert sum(r.duplicates for r in results) == 2 * repeated
    histories = by_case(published)
    assert stored_rows(view_db) == {c: fold(h, tiers) for c, h in histories.items()}


def _retracted_flags(db: sa.Engine, case_id: str) -> dict[int, bool]:
    query = sa.select(history.c.seq, history.c.retracted).where(history.c.case_id == case_id)
    with db.connect() as conn:
        return {seq: bool(flag) for seq, flag in conn.execute(query)}


@pytest.mark.parametrize("apart", [True, False], ids=["in-a-later-batch", "in-the-same-batch"])
def test_a_retraction_takes_its_record_out_of_the_case(
    view_db: sa.Engine, published: list[bytes], tiers: TierOrder, apart: bool
) -> None:
    """Retract a case's last two records and publish one of them again: the history keeps all
    (the retracted ones flagged, the retractions too), the row is the fold of the live ones."""
    histories = by_case(published)
    case_id, records = max(histories.items(), key=lambda kv: len(kv[1]))
    n = len(records)
    correction = [retraction(records[-2], n + 1), retraction(records[-1], n + 2),
                  reissued(records[-2], n + 3)]  # fmt: skip
    values = encode(records + correction)
    items = [Consumed(TOPIC, 0, offset, value) for offset, value in enumerate(values)]
    if apart:
        project(view_db, items[:n], tiers)
        project(view_db, items[n:], tiers)
    else:
        project(view_db, items, tiers)
    (row,) = stored_rows(view_db).values()
    live = [*records[:-2], reissued(records[-2], n + 3)]
    expected = fold(live, tiers)
    assert expected is not None
    assert row == expected._replace(last_seq=n + 3)
    flags = _retracted_flags(view_db, case_id)
    assert flags == {**dict.fromkeys(range(1, n + 4), False), n - 1: True, n: True}


def test_retracting_every_record_of_a_case_removes_its_row(
    view_db: sa.Engine, published: list[bytes], tiers: TierOrder
) -> None:
    (gone_id, doomed), (kept_id, kept) = list(by_case(published).items())[:2]
    undo = [retraction(r, len(doomed) + i) for i, r in enumerate(doomed, start=1)]
    values = encode(doomed + kept) + encode(undo)
    project(view_db, [Consumed(TOPIC, 0, o, v) for o, v in enumerate(values)], tiers)
    assert set(stored_rows(view_db)) == {kept_id}
    assert all(_retracted_flags(view_db, gone_id)[r["seq"]] for r in doomed)
    # a duplicate of a retracted record later on does not bring the case back
    late = project(view_db, [Consumed(TOPIC, 0, len(values), encode(doomed[:1])[0])], tiers)
    assert (late.duplicates, late.applied) == (1, 0)
    assert set(stored_rows(view_db)) == {kept_id}


def test_what_is_no_case_record_is_consumed_but_ignored(
    view_db: sa.Engine, published: list[bytes], tiers: TierOrder
) -> None:
    rejection = next(v for v in published if json.loads(v)["type"] == "event.rejected")
    items = [Consumed(DEAD_LETTER, 2, 40, rejection), Consumed(TOPIC, 1, 7, None),
             Consumed(TOPIC, 1, 8, b"\xff not json"), Consumed(TOPIC, 1, 9, b"[1, 2]")]  # fmt: skip
    result = project(view_db, items, tiers)
    assert (result.ignored, result.applied, result.cases) == (4, 0, 0)
    assert dict(result.next_offsets) == {(DEAD_LETTER, 2): 41, (TOPIC, 1): 10}
    with view_db.connect() as conn:
        assert stored_offsets(conn) == {(DEAD_LETTER, 2): 41, (TOPIC, 1): 10}
        assert stored_offsets(conn, [(TOPIC, 1)]) == {(TOPIC, 1): 10}


def test_the_history_keeps_each_record_as_it_was_consumed(
    view_db: sa.Engine, published: list[bytes], tiers: TierOrder
) -> None:
    """The history's `record` is the consumed text, not the decoded dict dumped again: SQLite
    keeps the very bytes, PostgreSQL its JSONB of them; both read back as the record."""
    project_all(view_db, as_consumed(published), tiers, 500)
    sent = {
        (record["case_id"], record["seq"]): value
        for value in published
        if (record := json.loads(value))["type"] != "event.rejected"
    }
    with view_db.connect() as conn:
        query = sa.select(history.c.case_id, history.c.seq, history.c.record)
        stored = {(case_id, seq): record for case_id, seq, record in conn.execute(query)}
        assert stored == {key: json.loads(value) for key, value in sent.items()}
        if view_db.name == "sqlite":
            raw = conn.exec_driver_sql("SELECT case_id, seq, record FROM view_history")
            assert {(case_id, seq): text.encode() for case_id, seq, text in raw} == sent


def test_instants_are_stored_as_before_in_utc(view_db: sa.Engine) -> None:
    """`UtcDateTime` converts SQLite's text itself, in the format SQLAlchemy's `DATETIME` wrote
    (a read model made by an earlier build reads the same), from any offset; naive is refused."""
    shanghai = datetime.fromisoformat("2025-03-03T09:00:00.5+08:00")
    row = {"case_id": "c", "seq": 1, "record_id": "c/1", "type": "case.transitioned",
           "occurred_at": shanghai, "record": {}, "retracted": False}  # fmt: skip
    with view_db.begin() as conn:
        conn.execute(sa.insert(history), [row])
        found = conn.scalar(sa.select(history.c.occurred_at))
        later = sa.select(sa.func.count()).where(history.c.occurred_at > shanghai)
        assert conn.scalar(later) == 0
        if view_db.name == "sqlite":
            text = conn.exec_driver_sql("SELECT occurred_at FROM view_history").scalar()
            assert text == "2025-03-03 01:00:00.500000"
    assert found == shanghai
    assert found is not None
    assert found.utcoffset() == timedelta(0)
    with pytest.raises(sa.exc.StatementError, match="naive datetime"), view_db.begin() as conn:
        conn.execute(sa.insert(history), [{**row, "occurred_at": shanghai.replace(tzinfo=None)}])


def test_a_schema_of_another_version_is_stale_and_a_rebuild_empties_the_model(
    view_db: sa.Engine, published: list[bytes], tiers: TierOrder
) -> None:
    project(view_db, as_consumed(published), tiers)
    assert prepare(view_db) == "current"
    with view_db.begin() as conn:
        conn.execute(sa.update(meta).values(value=str(SCHEMA_VERSION + 1)))
    assert schema_version(view_db) == SCHEMA_VERSION + 1
    assert prepare(view_db) == "stale"
    rebuild(view_db)
    assert (schema_version(view_db), prepare(view_db)) == (SCHEMA_VERSION, "current")
    assert dump(view_db) == {"cases": [], "history": [], "offsets": [], "reports": []}


def test_batches_cut_anywhere_give_the_same_database(
    view_db: sa.Engine, published: list[bytes], tiers: TierOrder, tmp_path: Path
) -> None:
    items = as_consumed(published)
    for batch in batches(items, [3, 4, 50, 51, 52, 90]):
        project(view_db, batch, tiers)
    one_pass = sa.create_engine(f"sqlite:///{tmp_path / 'one-pass.sqlite'}")
    prepare(one_pass)
    project(one_pass, items, tiers)
    assert dump(view_db) == dump(one_pass)


@pytest.mark.parametrize("stale", [{}, "first"], ids=["new-partition", "moved-partition"])
def test_a_second_writer_of_a_partition_rolls_back(
    view_db: sa.Engine,
    published: list[bytes],
    tiers: TierOrder,
    monkeypatch: pytest.MonkeyPatch,
    stale: object,
) -> None:
    """Two views writing one partition (a rebalance): the one whose offsets were read before
    the other committed finds them moved when it claims them, and its batch leaves nothing."""
    items = [Consumed(TOPIC, 0, o, v) for o, v in enumerate(encode(
        r for records in by_case(published).values() for r in records))]  # fmt: skip
    project(view_db, items[:10], tiers)
    first = dump(view_db)
    project(view_db, items[10:20], tiers)
    before = dump(view_db)
    read_too_early = {} if stale == {} else {(TOPIC, 0): 10}
    monkeypatch.setattr(projection, "stored_offsets", lambda _conn, _partitions: read_too_early)
    with pytest.raises(ReadModelConflictError, match="meanwhile") as raised:
        project(view_db, items[10:30], tiers)
    assert raised.value.retryable
    assert dump(view_db) == before != first


@pytest.mark.parametrize(
    "broken",
    [{"type": "case.transitioned", "to_state": None}, {"occurred_at": "2026-03-01T09:00:00"}],
    ids=["no-state", "no-utc-offset"],
)
def test_a_case_record_the_view_cannot_read_stops_it_with_nothing_written(
    view_db: sa.Engine, published: list[bytes], tiers: TierOrder, broken: dict[str, object]
) -> None:
    records = next(iter(by_case(published).values()))
    bad = {**records[0], **broken}
    if bad["to_state"] is None:
        del bad["to_state"]
    with pytest.raises(ReadModelError, match="cannot read") as raised:
        project(view_db, [Consumed(TOPIC, 0, 0, encode([bad])[0])], tiers)
    assert not raised.value.retryable
    assert dump(view_db) == {"cases": [], "history": [], "offsets": [], "reports": []}
