"""The projection step: one batch of consumed records into the read model, in one transaction.

The rows, the history and the next offset of each topic partition are written together, so the
database always says exactly how far it has read: after a crash at any instant the view resumes
at the stored offsets, and a batch that is fed again (the consumer's own position was older than
the database's) is skipped record by record. Duplicate records (the engine's are replay-stable:
one `record_id` per case and `seq`) are recognised by `seq` and applied once.

Cost per batch, whatever its size: one statement per topic partition to claim its offsets
(first: see `_claim`), one read of the touched cases' rows, one read of the history of the cases
that need a whole fold (new cases, and cases with a retraction in the batch), and one
executemany each for the history and the rows (plus one UPDATE for retraction flags, one DELETE
for cases whose every record was retracted). Cases that only moved on are stepped from their
stored row (`fold.step`), their history never re-read.

Case reports (`case.reported` on `fengqiao.case-events`) may come in the same batch: their
attributes are stored and given to the rows they opened (consumers/view/reports.py), first, so
a row folded anew in the same batch finds its report.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, Engine

from consumers.errors import ShellError
from consumers.view.fold import CaseRow, Record, TierOrder, fold, instant, is_retraction, step
from consumers.view.fold import retracted_ids as named_by_retractions
from consumers.view.reports import Report, attach, report_of, store
from consumers.view.tables import cases, history, offsets

IN_CHUNK = 5000
"""Keys per `IN (...)`: well under SQLite's 32,766 and PostgreSQL's 65,535 bound parameters."""

TopicPartition = tuple[str, int]


class ReadModelError(ShellError):
    """The read model cannot go on (an unsupported database, a record it cannot read as a case
    record): retrying the same batch gives the same error."""

    retryable = False


class ReadModelConflictError(ShellError):
    """Another writer stored offsets of a partition of the batch after this one read them: the
    batch was rolled back; read the stored offsets again and go on from there."""

    retryable = True


@dataclass(frozen=True)
class Consumed:
    """One consumed Kafka record, as the shell hands it over (`value` None: a tombstone)."""

    topic: str
    partition: int
    offset: int
    value: bytes | None


@dataclass(frozen=True)
class Projected:
    """What one batch did: the counts the view's metrics and logs report."""

    applied: int
    """Case records new to the history."""
    skipped: int
    """Below the stored offsets: projected by an earlier batch."""
    duplicates: int
    """Case records already in the history (same case and `seq`)."""
    ignored: int
    """Neither case records nor reports: other case events, dead letters, tombstones,
    undecodable values."""
    reports: int
    """Case reports read for their attributes."""
    cases: int
    """Rows written or removed."""
    next_offsets: Mapping[TopicPartition, int]
    """The stored next offset of each topic partition of the batch, after it."""


def project(engine: Engine, batch: Sequence[Consumed], tiers: TierOrder) -> Projected:
    """Apply `batch` (any topics and partitions, each in offset order) in one transaction."""
    with engine.begin() as conn:
        return _project(conn, batch, tiers)


def stored_offsets(
    conn: Connection, partitions: Iterable[TopicPartition] | None = None
) -> dict[TopicPartition, int]:
    """The next offset to consume per topic partition (all of them, or those asked for): where
    the view's consumer seeks to at start and after a rebalance."""
    query = sa.select(offsets.c.topic, offsets.c.partition, offsets.c.next_offset)
    found = conn.execute(query).all()
    wanted = set(partitions) if partitions is not None else None
    return {
        (topic, partition): next_offset
        for topic, partition, next_offset in found
        if wanted is None or (topic, partition) in wanted
    }


def _project(conn: Connection, batch: Sequence[Consumed], tiers: TierOrder) -> Projected:
    stored = stored_offsets(conn, {(c.topic, c.partition) for c in batch})
    advanced = dict(stored)
    fresh: list[Consumed] = []
    for item in batch:
        key = (item.topic, item.partition)
        if item.offset < stored.get(key, 0):
            continue
        fresh.append(item)
        advanced[key] = max(advanced.get(key, 0), item.offset + 1)
    _claim(conn, stored, advanced)
    by_case, texts, found, ignored, repeated = _case_records(fresh)
    store(conn, found, lambda table: _insert(conn, table))
    changes = _Changes(conn, tiers, texts)
    try:
        written = changes.run(by_case)
    except (KeyError, TypeError, ValueError) as err:  # a record without the fields of its type
        raise ReadModelError(f"a case record the view cannot read: {err!r}") from err
    return Projected(
        applied=changes.applied,
        skipped=len(batch) - len(fresh),
        duplicates=changes.duplicates + repeated,
        ignored=ignored,
        reports=len(found),
        cases=written,
        next_offsets=advanced,
    )


def _claim(
    conn: Connection, stored: Mapping[TopicPartition, int], advanced: Mapping[TopicPartition, int]
) -> None:
    """Move the stored offsets from where this transaction read them to after the batch, first
    thing: a second writer of the same partition (two views during a rebalance) then waits for
    the first to commit and finds the offsets moved, and its whole batch rolls back."""
    for (topic, partition), next_offset in advanced.items():
        before = stored.get((topic, partition))
        if before == next_offset:
            continue
        where = f"{topic}/{partition}"
        if before is None:
            row = {"topic": topic, "partition": partition, "next_offset": next_offset}
            try:
                conn.execute(sa.insert(offsets).values(row))
            except sa.exc.IntegrityError as err:
                raise ReadModelConflictError(f"{where}: offsets stored meanwhile") from err
            continue
        here = sa.and_(offsets.c.topic == topic, offsets.c.partition == partition,
                       offsets.c.next_offset == before)  # fmt: skip
        moved = conn.execute(sa.update(offsets).where(here).values(next_offset=next_offset))
        if moved.rowcount != 1:
            raise ReadModelConflictError(f"{where}: offsets moved meanwhile")


_SEQ = b'"seq"'
"""In the JSON text of every case record (the engine writes its keys plainly)."""

Texts = dict[tuple[str, int], str]
"""The JSON text of each case record of a batch, as consumed, by (case, `seq`)."""


def _case_records(
    items: Iterable[Consumed],
) -> tuple[dict[str, list[Record]], Texts, list[Report], int, int]:
    """Case records of the batch by case, in `seq` order, each `seq` once, and their texts; the
    case reports; how many values were neither, and how many repeated a `seq` in the batch."""
    by_case: dict[str, dict[int, Record]] = defaultdict(dict)
    texts: Texts = {}
    reports: list[Report] = []
    ignored = repeated = 0
    for item in items:
        # Case events (no `seq`) skip the case-record decode: most are passed by undecoded.
        found = _case_record(item) if item.value and _SEQ in item.value else None
        if found is None:
            report = report_of(item.value)
            if report is None:
                ignored += 1
            else:
                reports.append(report)
            continue
        record, text = found
        seqs = by_case[record["case_id"]]
        if record["seq"] in seqs:
            repeated += 1
            continue
        seqs[record["seq"]] = record
        texts[record["case_id"], record["seq"]] = text
    ordered = {c: [s[n] for n in sorted(s)] for c, s in by_case.items()}
    return ordered, texts, reports, ignored, repeated


def _case_record(item: Consumed) -> tuple[Record, str] | None:
    """The record and its text if the value is a case record (it has a case and a `seq`), else
    None. JSON on Kafka is UTF-8 (RFC 8259): a value that is not is no record of ours."""
    if item.value is None:
        return None
    try:
        text = item.value.decode("utf-8")
        record = json.loads(text)
    except ValueError:  # UnicodeDecodeError included
        return None
    if not isinstance(record, dict) or not isinstance(record.get("case_id"), str):
        return None
    if not isinstance(record.get("seq"), int) or not isinstance(record.get("record_id"), str):
        return None  # a dead letter (no seq), or not ours
    if not isinstance(record.get("type"), str) or not isinstance(record.get("occurred_at"), str):
        raise ReadModelError(
            f"{item.topic}/{item.partition}@{item.offset}: a case record without type or time"
        )
    return record, text


class _Changes:
    """The rows, history rows and flags one batch writes (see the module docstring)."""

    def __init__(self, conn: Connection, tiers: TierOrder, texts: Texts) -> None:
        self.conn = conn
        self.tiers = tiers
        self.texts = texts
        self.new_history: list[dict[str, Any]] = []
        self.newly_retracted: list[str] = []
        self.written: dict[str, CaseRow | None] = {}
        """The new row of each changed case; None: every record of the case is retracted."""
        self.applied = self.duplicates = 0

    def run(self, by_case: Mapping[str, list[Record]]) -> int:
        """Compute and write the batch's changes; the number of rows written or removed."""
        rows = self._rows(list(by_case))
        whole: dict[str, list[Record]] = {}
        for case_id, records in by_case.items():
            row = rows.get(case_id)
            if row is None or any(is_retraction(r) for r in records if r["seq"] > row.last_seq):
                whole[case_id] = records  # nothing to step from, or the past changed
            else:
                self._step(row, records)
        self._fold_whole(whole)
        return self._write()

    def _rows(self, case_ids: list[str]) -> dict[str, CaseRow]:
        rows: dict[str, CaseRow] = {}
        for chunk in _chunks(case_ids):
            query = sa.select(*_ROW_COLUMNS).where(cases.c.case_id.in_(chunk))
            for found in self.conn.execute(query):
                row = CaseRow._make(found)
                rows[row.case_id] = row
        return rows

    def _step(self, row: CaseRow, records: list[Record]) -> None:
        """A case that only moved on: its stored row plus the records past its `last_seq`."""
        fresh = [r for r in records if r["seq"] > row.last_seq]
        self.duplicates += len(records) - len(fresh)
        if not fresh:
            return
        new: CaseRow | None = row
        for record in fresh:
            new = step(new, record, self.tiers)
        self._add_history(fresh, set())
        self.written[row.case_id] = new

    def _fold_whole(self, whole: Mapping[str, list[Record]]) -> None:
        """Fold each of these cases from its stored history plus the batch's records, and flag
        the stored records that a retraction of the batch names."""
        stored: dict[str, list[tuple[Record, bool]]] = defaultdict(list)
        folded: dict[str, CaseRow | None] = {}
        for chunk in _chunks(list(whole)):
            query = (
                sa.select(history.c.case_id, history.c.record, history.c.retracted)
                .where(history.c.case_id.in_(chunk))
                .order_by(history.c.case_id, history.c.seq)
            )
            for case_id, record, retracted in self.conn.execute(query):
                stored[case_id].append((record, retracted))
        for case_id, records in whole.items():
            known = {int(r["seq"]) for r, _ in stored[case_id]}
            fresh = [r for r in records if r["seq"] not in known]
            self.duplicates += len(records) - len(fresh)
            if not fresh:
                continue
            full = [r for r, _ in stored[case_id]] + fresh
            gone = named_by_retractions(full)
            self.newly_retracted += [
                str(r["record_id"]) for r, flagged in stored[case_id]
                if not flagged and r["record_id"] in gone
            ]  # fmt: skip
            self._add_history(fresh, gone)
            folded[case_id] = fold(full, self.tiers)
        self.written.update(folded)
        self.written.update(attach(self.conn, folded, IN_CHUNK))

    def _add_history(self, fresh: list[Record], gone: set[str]) -> None:
        self.applied += len(fresh)
        texts = self.texts
        self.new_history += [
            {
                "case_id": r["case_id"], "seq": r["seq"], "record_id": r["record_id"],
                "type": r["type"], "occurred_at": instant(r["occurred_at"]),
                "record_text": texts[r["case_id"], r["seq"]], "retracted": r["record_id"] in gone,
            }
            for r in fresh
        ]  # fmt: skip

    def _write(self) -> int:
        if self.new_history:
            statement = _insert(self.conn, history).values(record=_record_text(self.conn))
            statement = statement.on_conflict_do_nothing(index_elements=["case_id", "seq"])
            self.conn.execute(statement, self.new_history)
        for chunk in _chunks(self.newly_retracted):
            self.conn.execute(
                sa.update(history).where(history.c.record_id.in_(chunk)).values(retracted=True)
            )
        upserts = [_values(row) for row in self.written.values() if row is not None]
        if upserts:
            _upsert(self.conn, cases, ("case_id",), upserts)
        removed = [c for c, row in self.written.items() if row is None]
        for chunk in _chunks(removed):
            self.conn.execute(sa.delete(cases).where(cases.c.case_id.in_(chunk)))
        return len(self.written)


_ROW_COLUMNS = tuple(cases.c[name] for name in CaseRow._fields)
"""The row's columns in `CaseRow`'s order: a row read is `CaseRow._make(found)`, no mapping."""


def _values(row: CaseRow) -> dict[str, Any]:
    """A row's columns (the attributes copied: a JSON column must not share the row's)."""
    values = row._asdict()
    values["attributes"] = dict(row.attributes)
    return values


def _record_text(conn: Connection) -> sa.ColumnElement[Any]:
    """The history's `record` from the record's text as consumed (`record_text`), not dumped
    again from the decoded dict (which was a tenth of a batch): PostgreSQL parses it into its
    JSONB; SQLite's JSON column is text, so the engine's bytes are kept as they came."""
    text = sa.bindparam("record_text", type_=sa.Text())
    if conn.dialect.name == "postgresql":
        return sa.cast(text, postgresql.JSONB)
    return text


def _chunks(keys: list[str]) -> Iterator[list[str]]:
    for start in range(0, len(keys), IN_CHUNK):
        yield keys[start : start + IN_CHUNK]


def _insert(conn: Connection, table: sa.Table) -> postgresql.Insert | sqlite.Insert:
    """The dialect's INSERT, which has ON CONFLICT (the upsert syntax is not portable SQL)."""
    name = conn.dialect.name
    if name == "postgresql":
        return postgresql.insert(table)
    if name == "sqlite":
        return sqlite.insert(table)
    raise ReadModelError(f"the read model runs on SQLite or PostgreSQL, not {name}")


def _upsert(
    conn: Connection, table: sa.Table, keys: tuple[str, ...], rows: list[dict[str, Any]]
) -> None:
    statement = _insert(conn, table)
    updated = {c.name: statement.excluded[c.name] for c in table.columns if c.name not in keys}
    conn.execute(statement.on_conflict_do_update(index_elements=list(keys), set_=updated), rows)
