"""The read model's tables (SQLAlchemy Core), one definition for SQLite and PostgreSQL.

The read model is disposable (DESIGN §8): it is a pure function of the committed output topics,
so a schema change is never migrated: the tables carry a schema version, and a database holding
another version is dropped and rebuilt from the topics (`schema_version` tells, `rebuild` does
it; whether to do it is the caller's decision, since it means re-reading the topics).

Every table is prefixed `view_`: in a shared PostgreSQL database, `rebuild` drops only those.
Instants are stored in UTC (`UtcDateTime`): SQLite has no time zones, and deadlines must sort as
instants whatever offset the workflow's records carry.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Dialect, Engine
from sqlalchemy.engine.interfaces import DBAPIConnection
from sqlalchemy.pool import ConnectionPoolEntry

SCHEMA_VERSION = 2
"""Raise it with any change to the tables below, or to what the fold puts in them."""

PREFIX = "view_"


class UtcDateTime(sa.TypeDecorator[datetime]):
    """An aware instant, stored in UTC and read back aware (SQLite keeps no offset at all).

    On SQLite the conversion is done here in one step, to and from the text SQLAlchemy's
    `DATETIME` stores (`2026-11-30 02:00:00.000000`, the same bytes, so no schema change): its
    own processors formatted every value through a dict and `%`, after this class had made it
    naive, which was a tenth of a projected batch."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> sa.types.TypeEngine[Any]:
        return _SQLITE_TEXT if dialect.name == "sqlite" else super().load_dialect_impl(dialect)

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> Any:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r}: the read model stores instants")
        utc = value if value.tzinfo is UTC else value.astimezone(UTC)
        if dialect.name == "sqlite":  # without its "+00:00"
            return utc.isoformat(" ", "microseconds")[:-6]
        return utc

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if isinstance(value, str):  # SQLite's text
            return datetime.fromisoformat(value).replace(tzinfo=UTC)
        instant: datetime = value
        return instant.replace(tzinfo=UTC) if instant.tzinfo is None else instant.astimezone(UTC)


class _SqliteText(sqlite.DATETIME):
    """SQLite's `DATETIME` column (the same DDL) whose values `UtcDateTime` converts itself."""

    def bind_processor(self, dialect: Dialect) -> None:
        return None

    def result_processor(self, dialect: Dialect, coltype: object) -> None:
        return None


_SQLITE_TEXT = _SqliteText()  # type: ignore[no-untyped-call]  # SQLAlchemy's __init__ is untyped

Json = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")

metadata = sa.MetaData()

cases = sa.Table(
    f"{PREFIX}cases",
    metadata,
    sa.Column("case_id", sa.String, primary_key=True),
    sa.Column("workflow", sa.String, nullable=False),
    sa.Column("workflow_version", sa.Integer, nullable=False),
    sa.Column("state", sa.String, nullable=False),
    sa.Column("tier", sa.String),
    sa.Column("status", sa.String(8), nullable=False),  # open | closed
    sa.Column("opened_at", UtcDateTime, nullable=False),
    sa.Column("entered_at", UtcDateTime, nullable=False),
    sa.Column("deadline", UtcDateTime),
    sa.Column("warning_at", UtcDateTime),
    sa.Column("warned", sa.Boolean, nullable=False),
    sa.Column("breached", sa.Boolean, nullable=False),
    sa.Column("paused", sa.Boolean, nullable=False),
    sa.Column("extensions", sa.Integer, nullable=False),
    sa.Column("escalations", sa.Integer, nullable=False),
    sa.Column("breaches", sa.Integer, nullable=False),
    sa.Column("on_time", sa.Boolean),
    sa.Column("outcome", sa.String),
    sa.Column("resolved_tier", sa.String),
    sa.Column("closed_at", UtcDateTime),
    sa.Column("last_seq", sa.Integer, nullable=False),
    sa.Column("updated_at", UtcDateTime, nullable=False),
    sa.Column("attributes", Json, nullable=False),
    sa.Column("ticket", sa.String, nullable=False),
    sa.Column("opened_by", sa.String, nullable=False),
    # The lists: by status in deadline order (keyset pagination), and the backlog counts.
    sa.Index(f"{PREFIX}cases_by_deadline", "status", "deadline", "case_id"),
    sa.Index(f"{PREFIX}cases_by_rung", "workflow", "tier", "state"),
    sa.Index(f"{PREFIX}cases_by_ticket", "ticket"),
)

history = sa.Table(
    f"{PREFIX}history",
    metadata,
    sa.Column("case_id", sa.String, primary_key=True),
    sa.Column("seq", sa.Integer, primary_key=True),
    sa.Column("record_id", sa.String, nullable=False, unique=True),
    sa.Column("type", sa.String, nullable=False),
    sa.Column("occurred_at", UtcDateTime, nullable=False),
    sa.Column("record", Json, nullable=False),
    sa.Column("retracted", sa.Boolean, nullable=False),
)
"""Every record of a case, retracted ones and the retractions included (an audit trail)."""

reports = sa.Table(
    f"{PREFIX}reports",
    metadata,
    sa.Column("case_id", sa.String, primary_key=True),
    sa.Column("event_id", sa.String, primary_key=True),
    sa.Column("attributes", Json, nullable=False),
)
"""The attributes of every case report read from the case-events topic (consumers/view/
reports.py): a row shows those of the report that opened it."""

offsets = sa.Table(
    f"{PREFIX}offsets",
    metadata,
    sa.Column("topic", sa.String, primary_key=True),
    sa.Column("partition", sa.Integer, primary_key=True),
    sa.Column("next_offset", sa.BigInteger, nullable=False),
)
"""The next offset to consume per topic partition, written in the transaction of the rows."""

meta = sa.Table(
    f"{PREFIX}meta",
    metadata,
    sa.Column("key", sa.String, primary_key=True),
    sa.Column("value", sa.String, nullable=False),
)


def create_view_engine(url: str | sa.URL, **options: Any) -> Engine:
    """An engine on the read model's database: `sqlite:///PATH` (embedded; the file's folder is
    created) or `postgresql+psycopg://...`. SQLite gets WAL (readers of the console never block
    the projection) and `synchronous=NORMAL` (a power cut may lose the last commits, never
    consistency: the offsets are in the same transactions, so the view is merely behind)."""
    parsed = sa.make_url(url)
    engine = sa.create_engine(parsed, **options)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        sa.event.listen(engine, "connect", _sqlite_pragmas)
    return engine


def _sqlite_pragmas(dbapi_connection: DBAPIConnection, _record: ConnectionPoolEntry) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def schema_version(engine: Engine) -> int | None:
    """The version the database's tables were made for; None when it has none of them."""
    if not sa.inspect(engine).has_table(meta.name):
        return None
    with engine.connect() as conn:
        found = conn.scalar(sa.select(meta.c.value).where(meta.c.key == "schema_version"))
    return int(found) if found is not None else None


def create_schema(engine: Engine) -> None:
    """Create the tables (those missing) and record this version."""
    with engine.begin() as conn:
        metadata.create_all(conn)
        conn.execute(sa.delete(meta).where(meta.c.key == "schema_version"))
        conn.execute(sa.insert(meta).values(key="schema_version", value=str(SCHEMA_VERSION)))


def rebuild(engine: Engine) -> None:
    """Drop every `view_` table (whatever version made it) and create this version's, empty:
    the offsets go with the rows, so the caller then reads the topics from the beginning."""
    found = sa.MetaData()
    found.reflect(engine, only=lambda name, _meta: name.startswith(PREFIX))
    with engine.begin() as conn:
        found.drop_all(conn)
    create_schema(engine)


SCHEMA_LOCK = 0x66_71_76_31  # "fqv1": one key for every Fengqiao read model of a database
"""The PostgreSQL advisory lock taken around `prepare` and `rebuild` (`schema_lock`)."""


@contextmanager
def schema_lock(engine: Engine) -> Iterator[None]:
    """Hold the read model's schema for one view while it prepares or rebuilds it. Why: two
    views starting at once on a stale PostgreSQL schema (a rolling update of a Deployment) would
    both drop and remake the tables, one under the other's projection. With the lock the second
    waits, then finds the schema current. PostgreSQL only: an embedded SQLite file has one view.
    A session-level advisory lock on a connection of its own, so the DDL may run on others."""
    if engine.dialect.name != "postgresql":
        yield
        return
    with engine.connect() as conn:
        conn.execute(sa.select(sa.func.pg_advisory_lock(SCHEMA_LOCK)))
        conn.commit()
        try:
            yield
        finally:
            conn.execute(sa.select(sa.func.pg_advisory_unlock(SCHEMA_LOCK)))
            conn.commit()


SchemaState = Literal["created", "current", "stale"]


def prepare(engine: Engine) -> SchemaState:
    """Make an empty database ready (`created`); say `current` when its tables are this
    version's, and `stale` when they are another's: then the caller decides when to `rebuild`
    (the view service does at start; a console replica would rather wait for it)."""
    found = schema_version(engine)
    if found is None:
        if any(name.startswith(PREFIX) for name in sa.inspect(engine).get_table_names()):
            return "stale"  # tables of ours without a version: made by something else
        create_schema(engine)
        return "created"
    return "current" if found == SCHEMA_VERSION else "stale"


def admin_statement(server: sa.URL, statement: str) -> None:
    """Run one server-level statement (CREATE/DROP DATABASE), which cannot run inside a
    transaction: autocommit. The bench and the tests make and drop their databases with it."""
    engine = sa.create_engine(server, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            conn.execute(sa.text(statement))
    finally:
        engine.dispose()
