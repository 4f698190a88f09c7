"""The SQLite store: cases on disk, so a restart or a reassignment of the same partition reads
only the changelog tail (see the contract in engine/ports.py)."""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path

from engine.case import Case
from engine.problems import StoreClosedError
from engine.stores.codec import check_batch, decode_case, encode_case

SQLITE_SCHEMA_VERSION = 1
"""Kept in `PRAGMA user_version`; a file with another version is refused, never migrated blindly."""

SQLITE_PAGE_SIZE = 1000
"""Cases decoded per query while iterating a partition (bounded memory, no long read snapshot)."""


_SCHEMA = """
CREATE TABLE IF NOT EXISTS cases (
    partition INTEGER NOT NULL,
    case_id   TEXT    NOT NULL,
    snapshot  TEXT    NOT NULL,  -- encode_case(case): the changelog value
    PRIMARY KEY (partition, case_id)
);
CREATE TABLE IF NOT EXISTS changelog_offsets (
    partition   INTEGER PRIMARY KEY,
    next_offset INTEGER NOT NULL  -- the next changelog offset to read
);
"""
# An upsert in two statements so that the row counts say how many cases are new (see count):
# UPDATE rewrites the cases already stored, INSERT adds the others (and skips the updated ones).
_UPDATE = "UPDATE cases SET snapshot = ? WHERE partition = ? AND case_id = ?"
_INSERT = (
    "INSERT INTO cases (partition, case_id, snapshot) VALUES (?, ?, ?) "
    "ON CONFLICT (partition, case_id) DO NOTHING"
)
_DELETE = "DELETE FROM cases WHERE partition = ? AND case_id = ?"
_SET_OFFSET = (
    "INSERT INTO changelog_offsets (partition, next_offset) VALUES (?, ?) "
    "ON CONFLICT (partition) DO UPDATE SET next_offset = excluded.next_offset"
)


class SqliteStore:
    """Cases in one SQLite file (stdlib `sqlite3`): a row (partition, case_id, snapshot JSON) per
    case and a row of changelog offset per partition, each `write` one transaction.

    Pragmas: WAL journal (readers never block the writer, commits append to the log) and
    `synchronous=NORMAL`, which in WAL mode never corrupts the file but may lose the last few
    commits on a power failure (not on a process crash). That is safe here because Kafka is the
    source of truth: the cases and their changelog offset are committed in the same transaction,
    so a store that lost its last commits is merely further behind, and the next restore reads
    the changelog from the (older) offset it kept. `temp_store=MEMORY` and a 32 MiB page cache
    keep restores of large partitions off the disk.

    One process per file: two engines sharing a file would each believe it is up to date.
    `:memory:` is accepted (a private in-memory database, not persistent).
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self._path = os.fspath(path)
        if not self._path:
            raise ValueError("SqliteStore needs a file path (or ':memory:')")
        self._persistent = self._path != ":memory:"
        if self._persistent:
            Path(self._path).parent.mkdir(parents=True, exist_ok=True)
        # Autocommit mode (isolation_level=None): transactions are explicit (_begin).
        # check_same_thread=False lets the shell open the store on one thread and run the loop
        # on another; calls must still never overlap (see the module docstring).
        db = sqlite3.connect(self._path, isolation_level=None, check_same_thread=False)
        try:
            db.execute("PRAGMA journal_mode = WAL")
            db.execute("PRAGMA synchronous = NORMAL")
            db.execute("PRAGMA temp_store = MEMORY")
            db.execute("PRAGMA cache_size = -32768")
            self._init_schema(db)
        except BaseException:
            db.close()
            raise
        self._db: sqlite3.Connection | None = db
        self._counts: dict[int, int] = {}
        """Cases per partition, for the partitions counted since opening (see count)."""

    def __repr__(self) -> str:
        return f"SqliteStore({self._path!r})"

    @property
    def path(self) -> str:
        return self._path

    @property
    def persistent(self) -> bool:
        return self._persistent

    def get(self, partition: int, case_id: str) -> Case | None:
        row = (
            self._conn()
            .execute(
                "SELECT snapshot FROM cases WHERE partition = ? AND case_id = ?",
                (partition, case_id),
            )
            .fetchone()
        )
        return None if row is None else decode_case(row[0])

    def write(
        self,
        partition: int,
        upserts: Mapping[str, Case],
        deletes: Iterable[str] = (),
        changelog_offset: int | None = None,
    ) -> None:
        db = self._conn()
        cases, gone = check_batch(partition, upserts, deletes, changelog_offset)
        rows = [(partition, case.case_id, encode_case(case)) for case in cases]
        self._apply(db, partition, rows, gone, changelog_offset)

    def write_snapshots(
        self,
        partition: int,
        snapshots: Mapping[str, bytes],
        deletes: Iterable[str] = (),
        changelog_offset: int | None = None,
    ) -> None:
        db = self._conn()
        _, gone = check_batch(partition, {}, deletes, changelog_offset)
        both = snapshots.keys() & set(gone)
        if both:
            raise ValueError(f"case {min(both)!r} is both upserted and deleted in one batch")
        rows = [(partition, case_id, value.decode()) for case_id, value in snapshots.items()]
        self._apply(db, partition, rows, gone, changelog_offset)

    def _apply(
        self,
        db: sqlite3.Connection,
        partition: int,
        rows: list[tuple[int, str, str]],
        gone: list[str],
        changelog_offset: int | None,
    ) -> None:
        """One SQLite transaction: upsert the snapshot rows, delete, set the offset."""
        if not rows and not gone and changelog_offset is None:
            return
        added = 0
        self._begin(db)
        try:
            if rows:
                db.executemany(_UPDATE, [(snapshot, p, case_id) for p, case_id, snapshot in rows])
                added += db.executemany(_INSERT, rows).rowcount
            if gone:
                added -= db.executemany(
                    _DELETE, [(partition, case_id) for case_id in gone]
                ).rowcount
            if changelog_offset is not None:
                db.execute(_SET_OFFSET, (partition, changelog_offset))
            db.execute("COMMIT")
        except BaseException:
            self._rollback(db)
            raise
        if partition in self._counts:
            self._counts[partition] += added

    def changelog_offset(self, partition: int) -> int | None:
        row = (
            self._conn()
            .execute("SELECT next_offset FROM changelog_offsets WHERE partition = ?", (partition,))
            .fetchone()
        )
        return None if row is None else int(row[0])

    def cases(self, partition: int) -> Iterator[Case]:
        self._conn()  # fail now, not at the first next()
        return self._iter_cases(partition)

    def count(self, partition: int | None = None) -> int:
        """O(1) for a partition once counted (SQL `count(*)` scans, so the first call per
        partition does, and later writes keep the figure); a scan for all partitions."""
        db = self._conn()
        if partition is None:
            return int(db.execute("SELECT count(*) FROM cases").fetchone()[0])
        counted = self._counts.get(partition)
        if counted is None:
            query = "SELECT count(*) FROM cases WHERE partition = ?"
            counted = self._counts[partition] = int(db.execute(query, (partition,)).fetchone()[0])
        return counted

    def drop_partition(self, partition: int) -> None:
        db = self._conn()
        self._begin(db)
        try:
            db.execute("DELETE FROM cases WHERE partition = ?", (partition,))
            db.execute("DELETE FROM changelog_offsets WHERE partition = ?", (partition,))
            db.execute("COMMIT")
        except BaseException:
            self._rollback(db)
            raise
        self._counts[partition] = 0

    def close(self) -> None:
        db, self._db = self._db, None
        if db is not None:
            db.close()  # the last connection checkpoints the WAL into the file

    # -- internals -----------------------------------------------------------------------

    def _conn(self) -> sqlite3.Connection:
        if self._db is None:
            raise StoreClosedError(f"the SQLite store {self._path!r} is closed")
        return self._db

    @staticmethod
    def _begin(db: sqlite3.Connection) -> None:
        # IMMEDIATE takes the write lock up front: a busy file fails here, before any change.
        db.execute("BEGIN IMMEDIATE")

    @staticmethod
    def _rollback(db: sqlite3.Connection) -> None:
        if db.in_transaction:
            db.execute("ROLLBACK")

    def _init_schema(self, db: sqlite3.Connection) -> None:
        version = int(db.execute("PRAGMA user_version").fetchone()[0])
        if version == SQLITE_SCHEMA_VERSION:
            return
        if version != 0:
            raise ValueError(
                f"{self._path}: state store schema version {version}, this engine reads "
                f"version {SQLITE_SCHEMA_VERSION}; delete the file to restore from the changelog"
            )
        self._begin(db)
        try:
            for statement in _SCHEMA.split(";"):
                if statement.strip():
                    db.execute(statement)
            db.execute(f"PRAGMA user_version = {SQLITE_SCHEMA_VERSION}")
            db.execute("COMMIT")
        except BaseException:
            self._rollback(db)
            raise

    def _iter_cases(self, partition: int) -> Iterator[Case]:
        # Keyset pagination: no statement stays open between pages, so the caller may write
        # while iterating and no long-lived read snapshot holds back WAL checkpoints.
        after: str | None = None
        while True:
            db = self._conn()
            if after is None:
                page = db.execute(
                    "SELECT case_id, snapshot FROM cases WHERE partition = ? "
                    "ORDER BY case_id LIMIT ?",
                    (partition, SQLITE_PAGE_SIZE),
                ).fetchall()
            else:
                page = db.execute(
                    "SELECT case_id, snapshot FROM cases WHERE partition = ? AND case_id > ? "
                    "ORDER BY case_id LIMIT ?",
                    (partition, after, SQLITE_PAGE_SIZE),
                ).fetchall()
            for _, snapshot in page:
                yield decode_case(snapshot)
            if len(page) < SQLITE_PAGE_SIZE:
                return
            after = page[-1][0]
