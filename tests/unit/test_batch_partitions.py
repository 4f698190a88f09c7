"""The batch step (`engine/batch.py`) over partitions, against one `Replay` (`fengqiao simulate`).

`fengqiao run` feeds each Kafka partition to its own `BatchReplay`, in batches, and stores each
batch's changes before the next; `simulate` replays the whole stream at once. They must tell
every case the same story. The one place they may not: timers fire by an event-time watermark,
and a partition's watermark (the latest `occurred_at` *it* has read) lags the whole stream's.

Per-case results can differ only at this hazard (every mismatch among 6,000 random streams had
it; not every hazard changes the records): an event of case C, with `occurred_at` t, read while
the whole stream's watermark is W and its partition's is Wp < W, such that C — after firing its
own timers due by max(t, Wp), as `Engine.apply` and the partition's `advance` do — still has a
timer due by W. One `Replay` fired that timer before the event, the partition fires it after
(`test_late_event_across_partitions`). That needs a late event (t < W), so it cannot happen with
one partition, nor when `occurred_at` never decreases along the stream: then C's timers due by t
fire before its event on both sides, each stamped with its own due instant; other cases' events
only decide *when* they fire, never what they say.
"""

from __future__ import annotations

import json
import zlib
from collections import Counter
from datetime import timedelta
from functools import partial

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine.batch import BatchLifecycleError, BatchReplay, BatchState, Input
from engine.case import Case
from engine.core import Engine
from engine.replay import Replay
from engine.stores import MemoryStore, encode_case
from tests.unit.test_properties import START, TYPES, to_lines

pytestmark = pytest.mark.unit

UNTIL = START + timedelta(days=1000)
"""After every event the generator can write (40 gaps of at most 20 days)."""
NOISE = [b"not json", b"[]", b'{"case_id": 7}', b'{"case_id": "c1", "type": "case.reported"}']
"""Refused lines: no JSON, no case_id (partition 0), or a case_id but no event (c1's partition)."""

Step = tuple[str, str, str, int, str, int]
steps = st.lists(
    st.tuples(
        st.sampled_from(["c1", "c2", "c3", "c4", "c5", "c6"]),
        st.sampled_from(TYPES),
        st.sampled_from(["grid", "center", "court", "police", "online", "stranger"]),
        st.integers(min_value=-3 * 24, max_value=20 * 24),  # hours after the previous event
        st.sampled_from(["neighbour", "labour", "medical"]),
        st.integers(min_value=0, max_value=5),  # event id pool: duplicates happen
    ),
    min_size=8,
    max_size=40,
)
Cases = dict[str | None, list[str]]
Refusals = Counter[tuple[str | None, str | None, str]]


def stream(raw: list[Step], *, ordered: bool) -> list[bytes]:
    """`to_lines` of test_properties, but each case's first event reports it from the grid (or
    most random cases never open: nothing to compare), and with `ordered` no gap is negative."""
    opened: set[str] = set()
    fixed: list[Step] = []
    for case_id, type_, source, hours, category, pool in raw:
        first = case_id not in opened
        opened.add(case_id)
        fixed.append((case_id, "case.reported" if first else type_, "grid" if first else source,
                      max(hours, 0) if ordered else hours, category, pool))  # fmt: skip
    return to_lines(fixed)


def partition_of(line: bytes, partitions: int) -> int:
    """A stable hash of the case_id (like the Kafka key); partition 0 when there is none."""
    try:
        data = json.loads(line)
    except ValueError:
        return 0
    case_id = data.get("case_id") if isinstance(data, dict) else None
    return zlib.crc32(case_id.encode()) % partitions if isinstance(case_id, str) else 0


def simulate(engine: Engine, lines: list[bytes]) -> tuple[Replay, Cases, Refusals]:
    replay = Replay(engine)
    outputs = [r for i, line in enumerate(lines) for r in replay.feed(line, f"in:{i}")]
    outputs.extend(replay.advance(UNTIL))
    cases: Cases = {}
    refusals: Refusals = Counter()
    for r in outputs:
        if r.type == "event.rejected":
            refusals[(r.case_id, r.event_id, r.reason)] += 1
        else:
            cases.setdefault(r.case_id, []).append(r.model_dump_json())
    return replay, cases, refusals


def run(
    engine: Engine, lines: list[bytes], partitions: int, data: st.DataObject | None = None
) -> tuple[MemoryStore, Cases, Refusals]:
    """Each partition through its own `BatchReplay`, as the Kafka loop does; `data` draws the
    batch sizes and the aborts (rewound, then fed again: the outputs must not change)."""
    store = MemoryStore()
    cases: Cases = {}
    refusals: Refusals = Counter()
    for p in range(partitions):
        mine = [Input(line, f"in:{i}") for i, line in enumerate(lines)
                if partition_of(line, partitions) == p]  # fmt: skip
        part = BatchReplay(engine, load=partial(store.get, p))
        batches: list[list[Input]] = []
        while mine:
            size = data.draw(st.integers(1, 8), label="batch size") if data else len(mine)
            batches.append(mine[:size])
            del mine[:size]
        for batch in [*batches, []]:
            until = None if batch else UNTIL  # the last, empty step fires what is due by UNTIL
            result = part.step(batch, fire_until=until)
            if data and data.draw(st.booleans(), label="abort"):
                part.rewind(store.cases(p))
                again = part.step(batch, fire_until=until)
                assert [o.value for o in again.outputs] == [o.value for o in result.outputs]
                assert [c.snapshot for c in again.changes] == [c.snapshot for c in result.changes]
                result = again
            store.write(p, result.upserts)
            part.confirm()
            assert all(o.source is None or o.source < len(batch) for o in result.outputs)
            refusals.update((r.case_id, r.event_id, r.reason) for r in result.refusals)
            for record in result.records:
                cases.setdefault(record.case_id, []).append(record.model_dump_json())
    return store, cases, refusals


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(raw=steps, noise=st.lists(st.tuples(st.integers(0, 40), st.sampled_from(NOISE)), max_size=4),
       partitions=st.integers(1, 4), data=st.data())  # fmt: skip
def test_partitioned_batches_tell_each_case_what_one_replay_tells(
    engine: Engine,
    raw: list[Step],
    noise: list[tuple[int, bytes]],
    partitions: int,
    data: st.DataObject,
) -> None:
    """Per case the same records, in the same order; the same refusals; the same stored cases.

    Late events (negative gaps) are drawn only for one partition: with several, `occurred_at`
    never decreases, the condition in the module docstring.
    """
    lines = stream(raw, ordered=partitions > 1)
    for at, line in noise:
        lines.insert(min(at, len(lines)), line)
    replay, want, want_refused = simulate(engine, lines)
    store, got, got_refused = run(engine, lines, partitions, data)
    assert got == want
    assert got_refused == want_refused
    stored = {c.case_id: encode_case(c) for p in range(partitions) for c in store.cases(p)}
    assert stored == {case_id: encode_case(c) for case_id, c in replay.cases.items()}


def test_late_event_across_partitions(engine: Engine) -> None:
    """Why the property keeps several partitions in time order. c1 (partition 1 of 2) opens,
    c4 (partition 0) opens 30 days later, then c1's `mediation.failed` comes dated an hour after
    c1 opened. One `Replay` had already escalated c1 to the center by its deadline, so the event
    moves it on to court; c1's partition, its watermark still at c1's opening, has not."""
    lines = to_lines([("c1", "case.reported", "grid", 0, "neighbour", 1),
                      ("c4", "case.reported", "grid", 30 * 24, "neighbour", 2),
                      ("c1", "mediation.failed", "grid", 1 - 30 * 24, "neighbour", 3)])  # fmt: skip
    _, want, _ = simulate(engine, lines)
    _, got, _ = run(engine, lines, 2)
    assert got["c4"] == want["c4"]
    moved = [[json.loads(r)["to_state"] for r in side["c1"] if '"caused_by":"c1-2"' in r]
             for side in (want, got)]  # fmt: skip
    assert moved == [["court.mediating"], ["center.mediating"]]


# -- the lifecycle of one batch ------------------------------------------------------------


def two_reports() -> list[Input]:
    """c1 opens with an SLA clock; c2 opens 30 days later, past c1's warning and deadline."""
    lines = to_lines([("c1", "case.reported", "grid", 0, "neighbour", 1),
                      ("c2", "case.reported", "grid", 30 * 24, "neighbour", 2)])  # fmt: skip
    return [Input(line, f"in:{i}") for i, line in enumerate(lines)]


def fresh(engine: Engine) -> tuple[BatchReplay, MemoryStore]:
    store = MemoryStore()
    return BatchReplay(engine, load=partial(store.get, 0)), store


def test_a_batch_must_be_confirmed_or_rewound_before_the_next(engine: Engine) -> None:
    """A shell must not go on from state it never stored, nor confirm what it never stepped."""
    part, _ = fresh(engine)
    with pytest.raises(BatchLifecycleError):
        part.confirm()
    part.step([])
    assert part.state is BatchState.PENDING
    with pytest.raises(BatchLifecycleError):
        part.step([])
    part.confirm()
    with pytest.raises(BatchLifecycleError):
        part.confirm()


def test_a_step_that_raised_allows_only_a_rewind(engine: Engine) -> None:
    """A store that fails half-way leaves cached cases and timers half-updated: neither a new
    step nor a confirm may build on that, only a rewind to what the store holds."""
    store = MemoryStore()
    broken = {"on": True}

    def load(case_id: str) -> Case | None:
        if broken["on"]:
            raise OSError("disk gone")
        return store.get(0, case_id)

    part = BatchReplay(engine, load=load)
    with pytest.raises(OSError, match="disk gone"):
        part.step(two_reports())
    assert part.state is BatchState.FAILED
    with pytest.raises(BatchLifecycleError):
        part.step([])
    with pytest.raises(BatchLifecycleError):
        part.confirm()
    broken["on"] = False
    part.rewind(store.cases(0))
    assert len(part.step(two_reports()).changes) == 2


def test_rewind_is_allowed_any_time_and_the_batch_fed_again_is_the_same(engine: Engine) -> None:
    """An abort may come before or after a step. The batch fed again gives the same outputs
    (downstream deduplicates by record id): c1's timers fired when c2 moved the watermark 30
    days on fire again, because `rewind` also takes the watermark back to the last stored batch."""
    part, store = fresh(engine)
    part.rewind(store.cases(0))
    assert part.state is BatchState.READY
    first = part.step(two_reports())
    assert any(o.record.type == "sla.warning" for o in first.outputs)
    part.rewind(store.cases(0))
    assert part.state is BatchState.READY
    again = part.step(two_reports())
    assert [o.value for o in again.outputs] == [o.value for o in first.outputs]
    assert [c.before for c in again.changes] == [None, None]


def test_before_is_the_case_as_the_store_had_it(engine: Engine) -> None:
    part, store = fresh(engine)
    c1, c2 = two_reports()
    opened = part.step([c1])
    assert [(c.case_id, c.before) for c in opened.changes] == [("c1", None)]
    store.write(0, opened.upserts)
    part.confirm()
    moved = part.step([c2])  # fires c1's timers, opens c2
    assert [c.case_id for c in moved.changes] == ["c1", "c2"]
    assert moved.changes[0].before is store.get(0, "c1")
    assert moved.changes[0].after is not moved.changes[0].before
    assert moved.changes[1].before is None


def test_duplicates_are_counted(engine: Engine) -> None:
    """The same event_id twice is dropped (no record, no refusal) but counted, within a batch
    and across batches (the case remembers the ids it applied)."""
    part, store = fresh(engine)
    c1 = two_reports()[0]
    result = part.step([c1, c1])
    assert (result.events, result.duplicates) == (2, 1)
    assert {o.source for o in result.outputs} == {0}
    store.write(0, result.upserts)
    part.confirm()
    again = part.step([c1])
    assert (again.events, again.duplicates, again.outputs, again.changes) == (1, 1, (), ())


def test_headers_are_kept_on_a_refusal(engine: Engine) -> None:
    part, _ = fresh(engine)
    headers = {"traceparent": "00-abc-def-01", "producer": "hotline"}
    result = part.step([Input(b"not json", "events/0/7", headers)])
    (refusal,) = result.refusals
    assert (refusal.headers, refusal.origin, refusal.reason) == (headers, "events/0/7", "malformed")
    assert result.outputs[0].refused
    assert result.outputs[0].key is None


def test_source_is_the_input_index_or_none_for_the_clock(engine: Engine) -> None:
    """Records caused by an input name it (so the shell can log its offset); timers fired by
    `fire_until` name none. c1's timers fired by c2's arrival count as c2's input's."""
    part, _ = fresh(engine)
    result = part.step([Input(b"[]", "in:x"), *two_reports()], fire_until=UNTIL)
    by_source = Counter(o.source for o in result.outputs)
    assert (by_source[0], by_source[1]) == (1, 1)  # the refusal, c1's opening
    assert {o.record.case_id for o in result.outputs if o.source == 2} == {"c1", "c2"}
    clock = [o.record.model_dump() for o in result.outputs if o.source is None]
    assert {r["case_id"] for r in clock} == {"c1", "c2"}
    assert all("/" in r["caused_by"] for r in clock)  # timer ids: case/seq/kind


def test_the_wall_clock_fires_what_the_batch_itself_made_due(engine: Engine) -> None:
    """`fire_due_at` (the engine's wall clock while caught up) looks at the timers *after* the
    inputs: a report whose warning is already past is warned in the same batch; with nothing
    due the event-time watermark is left alone."""
    (report,) = two_reports()[:1]
    part, _ = fresh(engine)
    result = part.step([report], fire_due_at=UNTIL)
    assert "sla.warning" in [o.record.type for o in result.outputs if o.source is None]
    part.confirm()
    quiet, _ = fresh(engine)
    early = START - timedelta(days=1)  # before anything is due
    assert all(o.source == 0 for o in quiet.step([report], fire_due_at=early).outputs)
