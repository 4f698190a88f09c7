"""The state store contract (engine/stores/), one suite over every implementation.

Cases are real ones, made by the core from `case.reported` events, so a change to the case
record that breaks its snapshot breaks these tests. Nothing here is timed.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine.case import Case
from engine.core import Engine
from engine.stores import (
    MemoryStore,
    SqliteStore,
    StateStore,
    StoreClosedError,
    decode_case,
    encode_case,
    open_store,
)
from schemas.events import CaseEvent

pytestmark = pytest.mark.unit

WF = "dispute-escalation"
ATTRS: dict[str, Any] = {
    "category": "neighbour",
    "village": "枫桥镇",
    "urgency": 3,
    "amount": 1250.5,
    "ratio": 2.0,
    "cross_jurisdiction": False,
    "repeat": True,
}


# -- real cases ----------------------------------------------------------------------------


def ev(
    n: int, case_id: str, type_: str, at: str, source: str = "grid", **payload: Any
) -> CaseEvent:
    return CaseEvent(
        event_id=f"{case_id}-e{n}", case_id=case_id, type=type_,
        occurred_at=datetime.fromisoformat(at), source=source, payload=payload,
    )  # fmt: skip


def report(engine: Engine, case_id: str, at: str, **attrs: Any) -> Case:
    decision = engine.apply(
        None, ev(0, case_id, "case.reported", at, workflow=WF, attributes=attrs)
    )
    assert decision.case is not None, decision.rejection
    return decision.case


def then(engine: Engine, case: Case, n: int, type_: str, at: str, *, source: str, **p: Any) -> Case:
    decision = engine.apply(case, ev(n, case.case_id, type_, at, source, **p))
    assert decision.rejection is None, decision.rejection
    assert decision.case is not None
    return decision.case


@pytest.fixture(scope="module")
def samples(engine: Engine) -> dict[str, Case]:
    """Cases in different conditions, keyed by what is special about them."""
    grid = report(engine, "grid", "2025-09-26T10:00:00+08:00", **ATTRS)
    traffic = report(engine, "paused", "2025-09-26T10:00:00+08:00", category="traffic")
    paused = then(
        engine, traffic, 1, "appraisal.started", "2025-09-28T10:00:00+08:00", source="center"
    )
    escalated = engine.advance(
        report(engine, "escalated", "2025-09-26T10:00:00+08:00"),
        datetime.fromisoformat("2025-10-02T00:00:00+08:00"),
    ).case
    assert escalated is not None
    closed = then(
        engine, report(engine, "closed", "2025-09-26T10:00:00+08:00"),
        1, "mediation.succeeded", "2025-09-29T10:00:00+08:00", source="grid",
    )  # fmt: skip
    assert paused.sla is not None
    assert paused.sla.paused_at is not None
    assert paused.timers() == ()
    assert escalated.state == "center.mediating"
    assert escalated.escalations == 1
    assert closed.closed
    return {"grid": grid, "paused": paused, "escalated": escalated, "closed": closed}


def renamed(case: Case, case_id: str, **changes: Any) -> Case:
    return case._replace(case_id=case_id, **changes)


# -- the stores under test -----------------------------------------------------------------


class Stores:
    """Opens stores of one kind; `reopen` is what a process restart does to a store."""

    def __init__(self, kind: str, directory: Path) -> None:
        self.kind = kind
        self.directory = directory
        self.opened: list[StateStore] = []
        self.n = 0

    def open(self) -> StateStore:
        self.n += 1
        return self._track(open_store(self.spec(f"state-{self.n}.db")))

    def spec(self, name: str) -> str:
        return "memory" if self.kind == "memory" else f"sqlite:{self.directory / name}"

    def reopen(self, store: StateStore) -> StateStore:
        if not store.persistent:
            return store
        assert isinstance(store, SqliteStore)
        store.close()
        return self._track(SqliteStore(store.path))

    def _track(self, store: StateStore) -> StateStore:
        self.opened.append(store)
        return store

    def close_all(self) -> None:
        for store in self.opened:
            store.close()


@pytest.fixture(params=["memory", "sqlite"])
def stores(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Stores]:
    factory = Stores(request.param, tmp_path)
    yield factory
    factory.close_all()


@pytest.fixture
def store(stores: Stores) -> StateStore:
    return stores.open()


@pytest.fixture
def sqlite_path(tmp_path: Path) -> Path:
    return tmp_path / "nested" / "state.db"


def contents(store: StateStore, partitions: range = range(4)) -> dict[str, Any]:
    """Everything observable about a store, for before/after comparisons."""
    return {
        "cases": {p: {c.case_id: c for c in store.cases(p)} for p in partitions},
        "offsets": {p: store.changelog_offset(p) for p in partitions},
        "counts": {p: store.count(p) for p in partitions},
        "total": store.count(),
    }


# -- round trips ---------------------------------------------------------------------------


def test_real_cases_round_trip(store: StateStore, samples: dict[str, Case]) -> None:
    store.write(0, {case.case_id: case for case in samples.values()}, changelog_offset=4)
    for case in samples.values():
        back = store.get(0, case.case_id)
        assert back == case
        assert back is not None
        assert back.to_dict() == case.to_dict()
        assert back.timers() == case.timers()
        assert back.next_due() == case.next_due()
    paused = store.get(0, "paused")
    assert paused is not None
    assert paused.sla is not None
    assert paused.sla.paused_at == datetime.fromisoformat("2025-09-28T10:00:00+08:00")
    assert paused.timers() == ()
    grid = store.get(0, "grid")
    assert grid is not None
    assert grid.attrs == ATTRS
    assert {k: type(v) for k, v in grid.attrs.items()} == {k: type(v) for k, v in ATTRS.items()}
    assert [c.case_id for c in store.cases(0)] == sorted(samples)


def test_a_restored_case_behaves_like_the_original(
    store: StateStore, samples: dict[str, Case], engine: Engine
) -> None:
    original = samples["paused"]
    store.write(2, {"paused": original})
    restored = store.get(2, "paused")
    assert restored is not None
    outputs = []
    for case in (original, restored):
        resumed = then(
            engine, case, 2, "appraisal.finished", "2025-10-09T10:00:00+08:00", source="center"
        )
        fired = engine.advance(resumed, datetime.fromisoformat("2026-01-01T00:00:00+08:00"))
        assert fired.case is not None
        records = [r.model_dump(mode="json") for r in fired.records]
        outputs.append((encode_case(resumed), records, encode_case(fired.case)))
    assert outputs[0] == outputs[1]
    assert outputs[0][1]  # timers fired after the resume: the comparison is not vacuous


def test_snapshot_encoding_is_compact_utf8_json(samples: dict[str, Case]) -> None:
    text = encode_case(samples["grid"])
    assert '"village":"枫桥镇"' in text
    assert ", " not in text
    assert decode_case(text) == samples["grid"]
    assert decode_case(text.encode()) == samples["grid"]


# -- the batch contract --------------------------------------------------------------------


def test_restored_cases_share_names_and_utc_offsets(samples: dict[str, Case]) -> None:
    """A million restored cases must not each hold copies of the workflow, state and tier
    names, short attribute strings and UTC-offset objects (bench scale: 1.6 → 0.96 KB a case
    in the decoder); the decoded values stay equal, long free text stays as it was."""
    long_text = "很长的描述" * 20
    originals = [
        case._replace(attrs={**case.attrs, "kind": "邻里", "note": long_text})
        for case in samples.values()
    ]
    first = [decode_case(encode_case(case).encode()) for case in originals]
    second = [decode_case(encode_case(case).encode()) for case in originals]
    assert first == originals
    for a, b in zip(first, second, strict=True):
        assert a.workflow is b.workflow
        assert a.state is b.state
        assert a.tier is b.tier
        assert a.attrs["kind"] is b.attrs["kind"]
        assert a.attrs["note"] == long_text
        assert a.attrs["note"] is not b.attrs["note"]
        assert a.clock.tzinfo is b.clock.tzinfo is a.opened_at.tzinfo


def test_an_empty_store(store: StateStore) -> None:
    assert store.get(0, "nobody") is None
    assert list(store.cases(0)) == []
    assert store.count() == 0
    assert store.count(7) == 0
    assert store.changelog_offset(0) is None
    store.write(0, {})
    assert contents(store)["total"] == 0


def test_upserts_replace_and_deletes_remove(store: StateStore, samples: dict[str, Case]) -> None:
    grid, closed = samples["grid"], samples["closed"]
    store.write(0, {"a": renamed(grid, "a"), "b": renamed(grid, "b")})
    later = renamed(closed, "a")
    store.write(0, {"a": later}, deletes=["b", "never-seen"])
    assert store.get(0, "a") == later
    assert store.get(0, "b") is None
    assert store.count(0) == 1
    store.write(0, {}, deletes=["a"])
    assert store.count() == 0
    assert list(store.cases(0)) == []


def test_snapshots_as_read_from_the_changelog_are_written_like_cases(
    store: StateStore, samples: dict[str, Case]
) -> None:
    """The restore path: changelog values go in as bytes; reading gives the same cases as
    `write` would have stored, counts and offsets included."""
    grid, closed = renamed(samples["grid"], "a"), renamed(samples["closed"], "b")
    raw = {case.case_id: encode_case(case).encode() for case in (grid, closed)}
    store.write_snapshots(2, raw, changelog_offset=7)
    assert store.get(2, "a") == grid
    assert list(store.cases(2)) == [grid, closed]
    assert (store.count(2), store.changelog_offset(2)) == (2, 7)
    later = renamed(samples["paused"], "a")
    store.write_snapshots(2, {"a": encode_case(later).encode()}, deletes=["b"])
    assert list(store.cases(2)) == [later]
    assert (store.count(2), store.changelog_offset(2)) == (1, 7)
    with pytest.raises(ValueError, match="both upserted and deleted"):
        store.write_snapshots(2, {"a": raw["a"]}, deletes=["a"])
    assert list(store.cases(2)) == [later]  # the refused batch changed nothing


def test_partitions_are_isolated(store: StateStore, samples: dict[str, Case]) -> None:
    one, other = renamed(samples["grid"], "same"), renamed(samples["paused"], "same")
    store.write(0, {"same": one, "x": renamed(one, "x")}, changelog_offset=10)
    store.write(1, {"same": other}, changelog_offset=3)
    assert store.get(0, "same") == one
    assert store.get(1, "same") == other
    assert store.get(1, "x") is None
    assert (store.count(0), store.count(1), store.count(2), store.count()) == (2, 1, 0, 3)
    store.write(0, {}, deletes=["same"], changelog_offset=11)
    assert store.get(0, "same") is None
    assert store.get(1, "same") == other
    assert (store.changelog_offset(0), store.changelog_offset(1)) == (11, 3)


def test_changelog_offsets_are_written_with_the_batch(
    store: StateStore, samples: dict[str, Case]
) -> None:
    assert store.changelog_offset(0) is None
    store.write(0, {"grid": samples["grid"]}, changelog_offset=0)
    assert store.changelog_offset(0) == 0
    store.write(0, {"paused": samples["paused"]})  # no offset: the stored one stays
    assert store.changelog_offset(0) == 0
    store.write(0, {}, changelog_offset=42)  # an offset alone (a restore past tombstones)
    assert store.changelog_offset(0) == 42
    store.write(0, {}, changelog_offset=2**63 - 1)
    assert store.changelog_offset(0) == 2**63 - 1
    assert store.changelog_offset(1) is None


def test_cases_come_in_case_id_order_across_pages(
    store: StateStore, samples: dict[str, Case]
) -> None:
    ids = [f"c{n:05d}" for n in range(2345)]  # more than one SQLite page
    base = samples["grid"]
    store.write(3, {case_id: renamed(base, case_id) for case_id in reversed(ids)})
    assert [c.case_id for c in store.cases(3)] == ids
    assert store.count(3) == len(ids)


def test_writing_while_iterating_is_allowed(store: StateStore, samples: dict[str, Case]) -> None:
    base = samples["grid"]
    ids = [f"c{n:05d}" for n in range(1500)]
    store.write(0, {case_id: renamed(base, case_id) for case_id in ids})
    seen = []
    for case in store.cases(0):
        if case.case_id == "c00700":
            store.write(0, {"c00000-new": renamed(base, "c00000-new")}, deletes=["c01499"])
        seen.append(case.case_id)
    assert len(seen) == len(set(seen))
    assert set(ids[:-1]) <= set(seen)
    assert store.count(0) == len(ids)


def test_drop_partition_forgets_cases_and_offset(
    store: StateStore, samples: dict[str, Case]
) -> None:
    store.write(0, {"grid": samples["grid"]}, changelog_offset=5)
    store.write(1, {"grid": samples["grid"]}, changelog_offset=6)
    before = contents(store)
    store.drop_partition(0)
    store.drop_partition(9)  # never assigned: a no-op
    assert store.get(0, "grid") is None
    assert store.changelog_offset(0) is None
    assert (store.count(0), store.count()) == (0, 1)
    after = contents(store)
    for key in ("cases", "offsets", "counts"):
        assert after[key][1] == before[key][1]
    store.write(0, {"paused": samples["paused"]}, changelog_offset=1)  # reassigned later
    assert [c.case_id for c in store.cases(0)] == ["paused"]


class Boom(Exception):
    pass


def exploding_deletes() -> Iterator[str]:
    yield "grid"
    raise Boom


def bad_batches(samples: dict[str, Case]) -> list[tuple[dict[str, Any], type[Exception]]]:
    new = renamed(samples["escalated"], "new")
    return [
        ({"upserts": {"new": new, "odd": {"case_id": "odd"}}}, TypeError),
        ({"upserts": {"new": new, "alias": renamed(new, "other")}}, ValueError),
        ({"upserts": {"new": new}, "deletes": ["grid", 7]}, TypeError),
        ({"upserts": {"new": new}, "deletes": exploding_deletes()}, Boom),
        ({"upserts": {"new": new}, "deletes": ["grid", "new"]}, ValueError),
        ({"upserts": {"new": new}, "changelog_offset": -1}, ValueError),
        ({"upserts": {"new": new}, "changelog_offset": 2**63}, ValueError),
    ]


BAD = ["not-a-case", "key-mismatch", "delete-not-str", "deletes-raise", "both", "neg", "huge"]


@pytest.mark.parametrize("which", range(len(BAD)), ids=BAD)
def test_a_failing_write_changes_nothing(
    store: StateStore, samples: dict[str, Case], which: int
) -> None:
    store.write(0, {"grid": samples["grid"], "paused": samples["paused"]}, changelog_offset=5)
    before = contents(store)
    batch, error = bad_batches(samples)[which]
    with pytest.raises(error):
        store.write(0, **{"changelog_offset": 9, **batch})
    assert contents(store) == before
    store.write(0, {"new": renamed(samples["closed"], "new")}, changelog_offset=6)  # still usable
    assert store.count(0) == 3


def test_a_write_to_an_invalid_partition_is_refused(store: StateStore) -> None:
    with pytest.raises(ValueError, match="partition"):
        store.write(-1, {}, changelog_offset=1)
    assert store.changelog_offset(-1) is None


def test_close_is_idempotent_and_final(store: StateStore, samples: dict[str, Case]) -> None:
    store.write(0, {"grid": samples["grid"]})
    store.close()
    store.close()
    with pytest.raises(StoreClosedError):
        store.get(0, "grid")
    with pytest.raises(StoreClosedError):
        store.write(0, {"grid": samples["grid"]})
    with pytest.raises(StoreClosedError):
        store.cases(0)
    with pytest.raises(StoreClosedError):
        store.count()


# -- SQLite specifics ----------------------------------------------------------------------


def test_a_reopened_sqlite_store_sees_the_data(sqlite_path: Path, samples: dict[str, Case]) -> None:
    store = open_store(f"sqlite:{sqlite_path}")
    assert store.persistent
    store.write(0, {case.case_id: case for case in samples.values()}, changelog_offset=17)
    store.write(3, {"grid": samples["grid"]}, deletes=["x"], changelog_offset=2)
    store.write(0, {}, deletes=["closed"])
    before = contents(store)
    store.close()
    again = open_store(f"sqlite:{sqlite_path}")
    try:
        assert contents(again) == before
        assert again.get(0, "paused") == samples["paused"]
        assert again.changelog_offset(0) == 17
    finally:
        again.close()
    with sqlite3.connect(sqlite_path) as raw:
        assert raw.execute("PRAGMA journal_mode").fetchone() == ("wal",)
        assert raw.execute("PRAGMA user_version").fetchone() == (1,)
        row = raw.execute(
            "SELECT snapshot FROM cases WHERE partition = 0 AND case_id = 'grid'"
        ).fetchone()
    raw.close()
    assert row == (encode_case(samples["grid"]),)


def test_an_unencodable_case_changes_nothing(sqlite_path: Path, samples: dict[str, Case]) -> None:
    store = SqliteStore(sqlite_path)
    try:
        store.write(0, {"grid": samples["grid"]}, changelog_offset=1)
        before = contents(store)
        odd = renamed(samples["paused"], "odd", attrs={"when": datetime(2025, 1, 1)})
        with pytest.raises(TypeError):
            store.write(0, {"new": renamed(odd, "new"), "odd": odd}, changelog_offset=2)
        assert contents(store) == before
    finally:
        store.close()


def test_a_failure_inside_the_transaction_rolls_it_back(
    sqlite_path: Path, samples: dict[str, Case]
) -> None:
    store = SqliteStore(sqlite_path)
    try:
        store.write(0, {"grid": samples["grid"]}, changelog_offset=1)
        before = contents(store)
        surrogate = "bad\ud800"  # encodes to JSON but not to UTF-8: fails at the second row
        batch = {
            "new": renamed(samples["closed"], "new"),
            surrogate: renamed(samples["grid"], surrogate),
        }
        with pytest.raises(UnicodeEncodeError):
            store.write(0, batch, deletes=["grid"], changelog_offset=2)
        assert contents(store) == before
        store.write(0, {"new": batch["new"]}, changelog_offset=2)
        assert store.count(0) == 2
    finally:
        store.close()


def test_an_unknown_sqlite_schema_version_is_refused(sqlite_path: Path) -> None:
    sqlite_path.parent.mkdir()
    with sqlite3.connect(sqlite_path) as raw:
        raw.execute("PRAGMA user_version = 99")
    raw.close()
    with pytest.raises(ValueError, match="schema version 99"):
        SqliteStore(sqlite_path)


def test_an_in_memory_sqlite_store_is_not_persistent(samples: dict[str, Case]) -> None:
    store = open_store("sqlite::memory:")
    try:
        assert not store.persistent
        store.write(1, {"grid": samples["grid"]}, changelog_offset=3)
        assert store.get(1, "grid") == samples["grid"]
    finally:
        store.close()


# -- open_store ----------------------------------------------------------------------------


def test_open_store_specs(tmp_path: Path) -> None:
    memory = open_store("memory")
    assert isinstance(memory, MemoryStore)
    assert not memory.persistent
    memory.close()
    sqlite = open_store(f"sqlite:{tmp_path / 'a.db'}")
    assert isinstance(sqlite, SqliteStore)
    assert sqlite.path == str(tmp_path / "a.db")
    sqlite.close()


@pytest.mark.parametrize(
    "spec", ["", "Memory", "memory:", "sqlite", "sqlite:", "redis://x", "rocksdb:x"]
)
def test_open_store_refuses_unknown_specs(spec: str) -> None:
    with pytest.raises(ValueError, match="expected 'memory' or 'sqlite:PATH'"):
        open_store(spec)


# -- property: a store is a dict ------------------------------------------------------------

IDS = ["a", "b", "c", "d"]
PARTITIONS = [0, 1, 2]
scalars = st.one_of(
    st.text(max_size=8),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False),
    st.booleans(),
)
attrs = st.dictionaries(st.from_regex(r"[a-z][a-z0-9_]{0,5}", fullmatch=True), scalars, max_size=4)
writes = st.tuples(
    st.just("write"),
    st.sampled_from(PARTITIONS),
    st.dictionaries(
        st.sampled_from(IDS),
        st.tuples(
            st.sampled_from(["grid", "paused", "escalated", "closed"]), attrs, st.integers(0, 99)
        ),
        max_size=3,
    ),
    st.lists(st.sampled_from(IDS), max_size=3),
    st.none() | st.integers(min_value=0, max_value=1000),
)
others = st.tuples(st.sampled_from(["drop", "reopen"]), st.sampled_from(PARTITIONS))
ops = st.lists(st.one_of(writes, writes, writes, others), max_size=25)


@settings(
    max_examples=60,
    deadline=None,  # nothing is timed; SQLite file I/O varies
    suppress_health_check=[HealthCheck.function_scoped_fixture],  # each example opens its own store
)
@given(script=ops)
def test_any_sequence_of_writes_leaves_the_store_equal_to_a_dict_model(
    stores: Stores, samples: dict[str, Case], script: list[tuple[Any, ...]]
) -> None:
    store = stores.open()
    model: dict[int, dict[str, Case]] = {p: {} for p in PARTITIONS}
    offsets: dict[int, int | None] = dict.fromkeys(PARTITIONS)
    try:
        for op in script:
            if op[0] == "write":
                _, p, raw, deletes, offset = op
                upserts = {
                    case_id: renamed(samples[kind], case_id, attrs=a, seq=seq)
                    for case_id, (kind, a, seq) in raw.items()
                }
                deletes = [case_id for case_id in deletes if case_id not in upserts]
                store.write(p, upserts, deletes, changelog_offset=offset)
                model[p].update(upserts)
                for case_id in deletes:
                    model[p].pop(case_id, None)
                if offset is not None:
                    offsets[p] = offset
            elif op[0] == "drop":
                store.drop_partition(op[1])
                model[op[1]], offsets[op[1]] = {}, None
            else:
                store = stores.reopen(store)
            for p in PARTITIONS:
                assert {c.case_id: c for c in store.cases(p)} == model[p]
                assert [c.case_id for c in store.cases(p)] == sorted(model[p])
                assert {i: store.get(p, i) for i in IDS} == {i: model[p].get(i) for i in IDS}
                assert store.count(p) == len(model[p])
                assert store.changelog_offset(p) == offsets[p]
            assert store.count() == sum(len(m) for m in model.values())
    finally:
        store.close()
