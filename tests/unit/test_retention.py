"""Retention (engine/retention.py): a closed case is kept for a period of domain time, then retired.

The core decides it, in domain time: not before the period ends, at its end on the clock (plus
the workflow's allowed lateness), and for an event after it whether or not the clock retired the
case yet. Then the replay drops the case, the batch step hands the shell a delete (a tombstone),
and the stores apply deletes, also when a restore reads tombstones from the changelog.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from consumers.kafka.changelog import ChangelogChunk
from engine import batch as batch_module
from engine.batch import BatchReplay, Input
from engine.case import Case
from engine.core import Engine
from engine.registry import WorkflowRegistry
from engine.replay import Replay
from engine.retention import check_retention
from engine.stores import MemoryStore, SqliteStore, StateStore, encode_case
from schemas.events import CaseEvent
from schemas.records import EventRejected
from tests.unit.test_lateness import folder_with

pytestmark = pytest.mark.unit

WF = "dispute-escalation"
DAYS = timedelta(days=30)
REPORTED = "2025-09-26T10:00:00+08:00"
CLOSED = "2025-09-29T10:00:00+08:00"
"""The grid settles the case three days after the report: it closes then."""


def at(text: str) -> datetime:
    return datetime.fromisoformat(text)


def ev(
    n: int, case_id: str, type_: str, when: str, source: str = "grid", **payload: Any
) -> CaseEvent:
    return CaseEvent(event_id=f"{case_id}-e{n}", case_id=case_id, type=type_,
                     occurred_at=at(when), source=source, payload=payload)  # fmt: skip


def raw(n: int, case_id: str, type_: str, when: str, source: str = "grid", **payload: Any) -> bytes:
    return ev(n, case_id, type_, when, source, **payload).model_dump_json().encode()


def reported(_case_id: str) -> dict[str, Any]:
    """The payload of a `case.reported` on the dispute ladder."""
    return {"workflow": WF, "attributes": {"category": "neighbour"}}


def report_line(case_id: str, when: str = REPORTED, n: int = 0) -> bytes:
    return raw(n, case_id, "case.reported", when, **reported(case_id))


def settle_line(case_id: str, when: str = CLOSED) -> bytes:
    return raw(1, case_id, "mediation.succeeded", when)


def closed_case(engine: Engine, case_id: str = "c1") -> Case:
    opened = engine.apply(None, ev(0, case_id, "case.reported", REPORTED, **reported(case_id)))
    assert opened.case is not None
    settled = engine.apply(opened.case, ev(1, case_id, "mediation.succeeded", CLOSED))
    assert settled.case is not None
    assert settled.case.closed
    return settled.case


@pytest.fixture(scope="module")
def kept(registry: WorkflowRegistry) -> Engine:
    return Engine(registry, retention=DAYS)


# -- the core's decision ------------------------------------------------------------------------


def test_a_closed_case_retires_when_the_clock_passes_its_closing_plus_the_retention(
    kept: Engine,
) -> None:
    case = closed_case(kept)
    end = at(CLOSED) + DAYS
    assert kept.fire_at(case) == end
    before = kept.advance(case, end - timedelta(seconds=1))
    assert (before.case, before.retired) == (case, False)
    after = kept.advance(case, end)
    assert (after.case, after.retired, after.records) == (None, True, ())


def test_open_cases_never_retire_and_no_retention_keeps_closed_cases(
    kept: Engine, engine: Engine
) -> None:
    opened = kept.apply(None, ev(0, "o", "case.reported", REPORTED, **reported("o"))).case
    assert opened is not None
    assert kept.fire_at(opened) == opened.next_due()  # an SLA timer, not a retirement
    far = at("2099-01-01T00:00:00+08:00")
    assert kept.advance(opened._replace(sla=None), far).retired is False
    forever = closed_case(engine)
    assert engine.fire_at(forever) is None
    assert engine.advance(forever, far) == kept.advance(forever, at(CLOSED))
    assert kept.with_retention(None).fire_at(forever) is None
    assert kept.with_retention(DAYS) is kept


@pytest.mark.parametrize("retention", [timedelta(0), timedelta(days=-1)])
def test_a_retention_must_be_positive(retention: timedelta) -> None:
    with pytest.raises(ValueError, match="positive"):
        check_retention(retention)


def test_duplicates_and_late_events_within_the_period_still_meet_the_closed_case(
    kept: Engine,
) -> None:
    case = closed_case(kept)
    inside = at(CLOSED) + DAYS - timedelta(minutes=1)
    again = ev(1, "c1", "mediation.succeeded", inside.isoformat())
    assert kept.apply(case, again) == kept.apply(case, again)
    dropped = kept.apply(case, again)
    assert (dropped.duplicate, dropped.case, dropped.retired) == (True, case, False)
    late = kept.apply(case, ev(7, "c1", "mediation.failed", inside.isoformat()))
    assert isinstance(late.rejection, EventRejected)
    assert (late.rejection.reason, late.rejection.case_state) == ("invalid_transition", "resolved")
    assert late.case == case


def test_an_event_after_the_period_finds_no_case_even_before_the_clock_retired_it(
    kept: Engine,
) -> None:
    """The event's own time decides, not the clock: the answer is the same wherever the
    watermark is (per partition in `run`, over the whole file in `simulate`)."""
    case = closed_case(kept)
    after = (at(CLOSED) + DAYS).isoformat()
    duplicate = kept.apply(case, ev(1, "c1", "mediation.succeeded", after))
    assert (duplicate.duplicate, duplicate.retired, duplicate.case) == (False, True, None)
    assert isinstance(duplicate.rejection, EventRejected)
    assert duplicate.rejection.reason == "unknown_case"
    resent = kept.apply(case, ev(0, "c1", "case.reported", after, **reported("c1")))
    assert resent.retired
    assert resent.case is not None
    assert (resent.case.state, resent.case.seq, resent.case.opened_at) == (
        "grid.mediating",
        1,
        at(after),
    )


def test_the_clock_waits_for_the_workflows_allowed_lateness(tmp_path: Path) -> None:
    """With `lateness:` (grid 2 h), a late event that happened before the retirement instant
    and is delivered within the lateness still meets the closed case, as in `simulate`."""
    late = Engine(WorkflowRegistry.load(folder_with(tmp_path, True)), retention=DAYS)
    case = closed_case(late)
    end = at(CLOSED) + DAYS
    assert late.fire_at(case) == end + timedelta(hours=2)
    assert not late.advance(case, end + timedelta(hours=1)).retired
    in_time = late.apply(case, ev(1, "c1", "mediation.succeeded", (end - timedelta(minutes=5))
                                  .isoformat()))  # fmt: skip
    assert in_time.duplicate
    assert late.advance(case, end + timedelta(hours=2)).retired


# -- the replay and the batch step -------------------------------------------------------------


def test_the_replay_forgets_retired_cases_and_counts_them(kept: Engine) -> None:
    replay = Replay(kept)
    lines = [report_line("a"), report_line("b"), settle_line("a"), settle_line("b")]
    for i, line in enumerate(lines):
        list(replay.feed(line, f"t:{i}"))
    list(replay.advance(at(CLOSED) + DAYS - timedelta(seconds=1)))
    assert sorted(replay.cases) == ["a", "b"]
    assert (replay.pending_timers, len(replay.timers)) == (0, 2)
    list(replay.advance(at(CLOSED) + DAYS))
    assert (replay.cases, replay.stats.retired, len(replay.timers)) == ({}, 2, 0)


class Shell:
    """One partition as the engine loop runs it: a batch, then its changes into the store."""

    def __init__(self, engine: Engine, store: StateStore | None = None) -> None:
        self.store = store or MemoryStore()
        self.part = BatchReplay(engine, load=lambda c: self.store.get(0, c),
                                restored=self.store.cases(0))  # fmt: skip
        self.origin = 0

    def step(self, lines: list[bytes], until: str | None = None) -> Any:
        inputs = [Input(line, f"t:{self.origin + i}") for i, line in enumerate(lines)]
        self.origin += len(lines)
        result = self.part.step(inputs, fire_until=at(until) if until else None)
        self.store.write(0, result.upserts, result.deletes)
        self.part.confirm()
        return result

    def ids(self) -> list[str]:
        return [c.case_id for c in self.store.cases(0)]


def test_a_retirement_is_a_change_without_after_and_a_delete_from_the_store(
    kept: Engine,
) -> None:
    shell = Shell(kept)
    shell.step([report_line("a"), report_line("b"), settle_line("a")])
    assert shell.ids() == ["a", "b"]
    end = (at(CLOSED) + DAYS).isoformat()
    result = shell.step([], until=end)  # b, still open, escalates meanwhile
    [change] = [c for c in result.changes if c.retired]
    assert (change.case_id, change.after, change.snapshot) == ("a", None, None)
    assert change.before is not None
    assert change.before.closed
    assert (result.deletes, sorted(result.upserts), result.retired) == (["a"], ["b"], 1)
    assert shell.ids() == ["b"]
    assert shell.part.pending_timers == 1  # b's; a retirement is no SLA timer
    late = shell.step([raw(2, "a", "mediation.failed", end)])
    assert [o.record.reason for o in late.outputs if isinstance(o.record, EventRejected)] == [
        "unknown_case"
    ]
    assert (late.changes, late.retired) == ((), 0)


def test_retired_then_reported_again_in_one_batch_is_one_upsert(kept: Engine) -> None:
    """The store still holds the retired case while the batch runs: the new report must not
    read it back; the change goes from the old closed case to the new open one."""
    shell = Shell(kept)
    shell.step([report_line("a"), settle_line("a")])
    end = (at(CLOSED) + DAYS).isoformat()
    again = shell.step([raw(1, "b", "case.reported", end, **reported("b")),
                        raw(9, "a", "case.reported", end, **reported("a"))])  # fmt: skip
    by_id = {c.case_id: c for c in again.changes}
    old, new = by_id["a"].before, by_id["a"].after
    assert old is not None
    assert new is not None
    assert (old.closed, new.closed, new.seq, again.retired) == (True, False, 1, 1)
    assert shell.ids() == ["a", "b"]


def test_a_case_opened_closed_and_retired_in_one_batch_leaves_no_trace(kept: Engine) -> None:
    shell = Shell(kept)
    result = shell.step([report_line("a"), settle_line("a"), report_line("b")],
                        until=(at(CLOSED) + DAYS).isoformat())  # fmt: skip
    assert ([c.case_id for c in result.changes], result.retired) == (["b"], 1)
    assert shell.ids() == ["b"]


def test_a_batch_retires_a_bounded_number_and_the_rest_wait(
    kept: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A first start over years of closed cases spreads their tombstones over batches; a
    deferred case is still retired for any event after its instant."""
    monkeypatch.setattr(batch_module, "MAX_RETIREMENTS_PER_BATCH", 2)
    shell = Shell(kept)
    ids = [f"c{n}" for n in range(5)]
    shell.step([line for c in ids for line in (report_line(c), settle_line(c))])
    end = at(CLOSED) + DAYS
    first = shell.step([], until=end.isoformat())
    assert (first.deletes, shell.ids()) == (["c0", "c1"], ["c2", "c3", "c4"])
    assert shell.part.next_due is not None
    assert shell.part.next_due <= end  # still due: the next turn of the clock takes more
    late = shell.step([raw(1, "c4", "mediation.succeeded", end.isoformat())])
    assert late.deletes == ["c4"]
    assert [o.record.type for o in late.outputs] == ["event.rejected"]
    rest = shell.step([], until=end.isoformat())
    assert (rest.deletes, shell.ids()) == (["c2", "c3"], [])


# -- the stores: deletes, and a restore that reads tombstones ---------------------------------


@pytest.mark.parametrize("kind", ["memory", "sqlite"])
def test_a_restore_applies_the_changelogs_tombstones(
    kept: Engine, tmp_path: Path, kind: str
) -> None:
    """The changelog as `read_changelog` folds it (chunks of the latest value per key, a
    tombstone a delete), into either store; a persistent store resuming from its offset
    deletes what the tail tombstones."""
    shell = Shell(kept)
    shell.step([report_line(c) for c in "abc"] + [settle_line("a"), settle_line("b")])
    cases = {c.case_id: c for c in shell.store.cases(0)}
    log: list[tuple[bytes, bytes | None]] = [
        (c.encode(), encode_case(case).encode()) for c, case in cases.items()
    ]
    log += [(b"a", None), (b"zombie", None)]  # a retired; a tombstone for a case never seen
    tail: list[tuple[bytes, bytes | None]] = [(b"b", None)]

    def restore(store: StateStore, records: list[tuple[bytes, bytes | None]], start: int) -> None:
        for first in range(0, len(records), 2):
            chunk = ChangelogChunk(0, position=start + min(first + 2, len(records)))
            for key, value in records[first : first + 2]:
                chunk.add(key, value)
            store.write_snapshots(0, chunk.upserts, chunk.deletes, chunk.position)

    path = tmp_path / "state.db"
    store: StateStore = SqliteStore(path) if kind == "sqlite" else MemoryStore()
    restore(store, log, 0)
    assert [c.case_id for c in store.cases(0)] == ["b", "c"]
    assert store.get(0, "a") is None
    if kind == "sqlite":
        store.close()
        store = SqliteStore(path)
    offset = store.changelog_offset(0)
    assert offset == len(log)
    restore(store, tail, offset)
    assert ([c.case_id for c in store.cases(0)], store.count(0)) == (["c"], 1)
    store.close()


def test_a_store_that_missed_a_tombstone_retires_the_case_again(kept: Engine) -> None:
    """Compaction drops tombstones after a day: a store resuming from an older offset may still
    hold a retired case. Its instant has passed, so the restored replay retires it again."""
    store = MemoryStore()
    store.write(0, {"a": closed_case(kept, "a")})
    shell = Shell(kept, store)
    assert shell.part.next_due == at(CLOSED) + DAYS
    again = shell.step([], until="2026-06-01T00:00:00+08:00")
    assert (again.deletes, shell.ids()) == (["a"], [])
