"""`fengqiao bench view`: can the read model keep up with the engine, and answer an operator
fast with a million cases, on SQLite and on PostgreSQL?

1. Projection against the engine, in the same run (the machine is shared and noisy, so the
   figure is the ratio): the synthetic stream through the engine's batch step, as `bench core`
   runs it (records and changelog snapshots encoded), gives records/s produced; then the same
   records, as the view's consumer would read them from the transitions topic, with the input
   events beside them as it reads them from the case-events topic (for the reports'
   attributes: consumers/view/reports.py; interleaved evenly), go through
   `projection.project` in batches of the view's default size into an emptied read model,
   records/s each database. Rounds alternate engine, SQLite, PostgreSQL; each side's best
   round counts (each round's own ratio is printed too, to show the noise). Kafka is left out
   on both sides (`bench kafka` measures the engine with it): this compares the work each side
   does per record. One more, profiled, pass per database splits a record's time into decode,
   fold, the database driver (with the server's work, for PostgreSQL) and SQLAlchemy.
2. The full rebuild: what the view does when its schema version changes, dropping the tables
   and projecting every record again; measured on the stream of 1 (each round starts with it),
   and extrapolated linearly per million records, said as such.
3. With a million cases (`--cases`) in each database: p50/p95/p99 of `GET /api/cases/{id}` and
   of the first page of overdue cases, over HTTP (consumers/bench/view_fill.py says how the
   rows are made and why they are not projected).

PostgreSQL: the server of `FENGQIAO_POSTGRES_URL` (a fresh database is made there and dropped
afterwards), else one started by deploy/local/postgres in a temporary folder and deleted,
as the tests do. SQLite: a file in a temporary folder.
"""

from __future__ import annotations

import cProfile
import os
import pstats
import re
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
import uuid
import zlib
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from consumers.bench.common import ROOT, machine, print_table, stream, write_json
from consumers.bench.core import batches, inclusive
from consumers.bench.view_fill import NOW, fill, latency
from consumers.view import tier_order
from consumers.view.fold import TierOrder
from consumers.view.projection import Consumed, project
from consumers.view.settings import ViewSettings
from consumers.view.tables import (
    admin_statement,
    cases,
    create_view_engine,
    history,
    rebuild,
)
from engine.core import Engine
from engine.registry import WorkflowRegistry

LOCAL_POSTGRES = ROOT / "deploy" / "local" / "postgres"
TOPIC = "fengqiao.transitions"
CASE_EVENTS = "fengqiao.case-events"
BATCH: int = ViewSettings.model_fields["view_batch"].default
"""Records per projected transaction: `FENGQIAO_VIEW_BATCH`'s default."""
TARGETS = {"projection_ratio": 1.0, "p99_ms": 50.0}


@dataclass(frozen=True)
class ViewBenchSize:
    """How big `bench view` runs (the CLI's options; the tests use tiny ones)."""

    cases: int = 1_000_000
    """Cases in the read model for the latency (3)."""
    events: int = 60_000
    """Events of the synthetic stream projected (1, 2)."""
    rounds: int = 3
    requests: int = 2000
    """Requests of each measured kind."""
    partitions: int = 4
    """Of the transitions topic the records are read from."""


# Where a projected record's time goes: (label, [(file suffix, function)]), callees included.
STAGES = [
    ("decode (json.loads, checks)", [("consumers/view/projection.py", "_case_records")]),
    ("fold (step per record)", [("consumers/view/fold.py", "step")]),
]
DRIVER = "database driver: execute, fetch, commit"
DRIVER_CALLS = {
    "sqlite": [("~", f"<method '{m}' of 'sqlite3.{c}' objects>")
               for c, m in (("Cursor", "execute"), ("Cursor", "executemany"),
                            ("Cursor", "fetchone"), ("Cursor", "fetchall"),
                            ("Cursor", "fetchmany"), ("Connection", "commit"))],
    # psycopg's calls include its waits for the server, i.e. PostgreSQL's own work
    "postgresql": [("psycopg/cursor.py", m)
                   for m in ("execute", "executemany", "fetchone", "fetchall", "fetchmany")]
                  + [("psycopg/connection.py", "commit")],
}  # fmt: skip


@contextmanager
def postgres() -> Iterator[sa.URL]:
    """A database of its own on FENGQIAO_POSTGRES_URL's server, dropped afterwards; else a
    server of deploy/local/postgres in a temporary folder, stopped and deleted afterwards."""
    given = os.environ.get("FENGQIAO_POSTGRES_URL", "").strip()
    if given:
        server = sa.make_url(given)
        name = f"fq_bench_view_{uuid.uuid4().hex[:8]}"
        admin_statement(server, f'CREATE DATABASE "{name}"')
        try:
            yield server.set(database=name)
        finally:
            admin_statement(server, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        return
    state = tempfile.mkdtemp(prefix="fengqiao-bench-postgres-")
    try:
        proc = subprocess.run(  # noqa: S603 - the project's own script
            [str(LOCAL_POSTGRES), "start", "--dir", state],
            capture_output=True, text=True, timeout=900, check=False,
        )  # fmt: skip
        found = re.search(r"^url=(\S+)$", proc.stdout, re.MULTILINE)
        if proc.returncode != 0 or not found:
            raise RuntimeError(f"deploy/local/postgres start failed:\n{proc.stderr[-2000:]}")
        print(f"postgres: started ({state})", file=sys.stderr)
        yield sa.make_url(found.group(1))
    finally:
        subprocess.run(  # noqa: S603
            [str(LOCAL_POSTGRES), "stop", "--dir", state, "--clean"],
            capture_output=True, timeout=120, check=False,
        )  # fmt: skip
        shutil.rmtree(state, ignore_errors=True)


# -- 1 and 2: projection against the engine, and the rebuild ------------------------------------


def engine_pass(engine: Engine, lines: list[bytes]) -> tuple[float, list[tuple[str, bytes]]]:
    """Seconds of the batch step over `lines` (outputs and snapshots encoded, as the engine
    sends them), and the published case records: (case id, value)."""
    published: list[tuple[str, bytes]] = []
    started = time.perf_counter()
    for result in batches(engine, lines):
        for output in result.outputs:
            value = output.value
            if not output.refused and output.record.case_id is not None:
                published.append((output.record.case_id, value))
        for change in result.changes:
            _ = change.snapshot
    return time.perf_counter() - started, published


def as_consumed(
    published: list[tuple[str, bytes]], partitions: int, events: Sequence[bytes] = ()
) -> list[Consumed]:
    """The records as the view's consumer reads them: keyed by case, so a case's records stay in
    one partition in order (crc32 here for the key's partition; Kafka's murmur2 spreads alike);
    and the input `events` from the case-events topic, spread evenly among them (the consumer
    reads both topics side by side)."""
    records = _on_topic(TOPIC, published, partitions)
    inputs = _on_topic(CASE_EVENTS, [(_case_of(e), e) for e in events], partitions)
    if not inputs:
        return records
    merged = sorted(
        [(n / len(records), 1, item) for n, item in enumerate(records)]
        + [(n / len(inputs), 0, item) for n, item in enumerate(inputs)],
        key=lambda entry: (entry[0], entry[1]),
    )
    return [item for _, _, item in merged]


def _on_topic(topic: str, keyed: list[tuple[str, bytes]], partitions: int) -> list[Consumed]:
    next_offset = [0] * partitions
    consumed: list[Consumed] = []
    for key, value in keyed:
        partition = zlib.crc32(key.encode()) % partitions
        consumed.append(Consumed(topic, partition, next_offset[partition], value))
        next_offset[partition] += 1
    return consumed


def _case_of(line: bytes) -> str:
    found = re.search(rb'"case_id":\s*"([^"]*)"', line)
    return found.group(1).decode() if found else ""


def rebuild_and_project(
    db: sa.Engine, consumed: list[Consumed], tiers: TierOrder
) -> tuple[float, float]:
    """Drop and make the tables, then project every record in view-sized batches: the seconds
    of the whole rebuild, and of the projection alone."""
    started = time.perf_counter()
    rebuild(db)
    dropped = time.perf_counter()
    for start in range(0, len(consumed), BATCH):
        project(db, consumed[start : start + BATCH], tiers)
    done = time.perf_counter()
    return done - started, done - dropped


def split(db: sa.Engine, consumed: list[Consumed], tiers: TierOrder, us: float) -> dict[str, float]:
    """µs per record of each stage: shares of one profiled projection × the unprofiled µs."""
    rebuild(db)
    profiler = cProfile.Profile()
    profiler.enable()
    for start in range(0, len(consumed), BATCH):
        project(db, consumed[start : start + BATCH], tiers)
    profiler.disable()
    stats = pstats.Stats(profiler)
    total: float = stats.total_tt  # type: ignore[attr-defined]
    stages = [*STAGES, (DRIVER, DRIVER_CALLS[db.name])]
    shares = {label: inclusive(stats, wanted) / total for label, wanted in stages}
    shares["SQLAlchemy (statements, parameters, rows) and the rest"] = 1 - sum(shares.values())
    return {label: round(share * us, 1) for label, share in shares.items()}


def projection(
    workflows: Path, dbs: dict[str, sa.Engine], size: ViewBenchSize
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Figures of 1 (projection against the engine) and 2 (the rebuild)."""
    registry = WorkflowRegistry.load(workflows)
    engine, tiers, lines = Engine(registry), tier_order(registry), stream(size.events)
    rounds = size.rounds
    engine_s: list[float] = []
    project_s: dict[str, list[float]] = {name: [] for name in dbs}
    rebuild_s: dict[str, list[float]] = {name: [] for name in dbs}
    consumed: list[Consumed] = []
    for n in range(rounds):
        print(f"round {n + 1} of {rounds}: engine, then projection ...", file=sys.stderr)
        seconds, published = engine_pass(engine, lines)
        engine_s.append(seconds)
        consumed = as_consumed(published, size.partitions, lines)
        for name, db in dbs.items():
            whole, alone = rebuild_and_project(db, consumed, tiers)
            project_s[name].append(alone)
            if n > 0 or rounds == 1:  # from round 2 on, the drop drops a full read model
                rebuild_s[name].append(whole)
    records = sum(1 for item in consumed if item.topic == TOPIC)
    best_engine = min(engine_s)
    figures: dict[str, Any] = {
        "events": len(lines), "records": records,
        "consumed": len(consumed), "batch": BATCH, "rounds": rounds,
        "partitions": size.partitions,
        "engine": {"seconds": round(best_engine, 2), "records_per_s": round(records / best_engine)},
    }  # fmt: skip
    rebuilt: dict[str, Any] = {"records": records}
    for name, db in dbs.items():
        best = min(project_s[name])
        with db.connect() as conn:
            rows = conn.scalar(sa.select(sa.func.count()).select_from(cases))
            kept = conn.scalar(sa.select(sa.func.count()).select_from(history))
        figures[name] = {
            "seconds": round(best, 2), "records_per_s": round(records / best),
            "ratio": round(best_engine / best, 3), "rows": rows, "history_rows": kept,
            "ratio_per_round": [round(e / s, 2) for e, s in zip(engine_s, project_s[name],
                                                                strict=True)],
            "us_per_record_split": split(db, consumed, tiers, 1e6 * best / records),
        }  # fmt: skip
        seconds = min(rebuild_s[name])
        rebuilt[name] = {
            "seconds": round(seconds, 2),
            "extrapolated_s_per_million_records": round(seconds * 1e6 / records, 1),
        }
    return figures, rebuilt


# -- the command -------------------------------------------------------------------------------


def run_view_bench(workflows: Path, size: ViewBenchSize, out: str | None) -> int:
    figures: dict[str, Any] = {
        "machine": {**machine(), "sqlite": sqlite3.sqlite_version},
        "config": {**asdict(size), "batch": BATCH, "now": NOW.isoformat()},
    }
    registry = WorkflowRegistry.load(workflows)
    with tempfile.TemporaryDirectory(prefix="fengqiao-bench-view-") as tmp, postgres() as url:
        dbs = {
            "sqlite": create_view_engine(f"sqlite:///{Path(tmp) / 'view.sqlite'}"),
            "postgresql": create_view_engine(url),
        }
        try:
            with dbs["postgresql"].connect() as conn:
                figures["machine"]["postgresql"] = conn.scalar(sa.text("SHOW server_version"))
            figures["projection"], figures["rebuild"] = projection(workflows, dbs, size)
            million: dict[str, Any] = {"rows": "inserted directly, not projected"}
            for name, db in dbs.items():
                print(f"{name}: {size.cases} cases, then {size.requests} requests of each ...",
                      file=sys.stderr)  # fmt: skip
                rebuild(db)
                million[name] = {"fill": fill(db, registry, size.cases),
                                 "latency": latency(db, size.cases, size.requests)}  # fmt: skip
            figures["million"] = million
        finally:
            for db in dbs.values():
                db.dispose()
    figures["targets"] = targets(figures)
    report(figures)
    write_json(out, figures)
    return 0


def targets(figures: dict[str, Any]) -> list[dict[str, Any]]:
    """Each target of the issue with its figure and whether it was met."""
    found: list[dict[str, Any]] = []
    for name in ("sqlite", "postgresql"):
        ratio = figures["projection"][name]["ratio"]
        found.append({"target": f"projection ÷ engine, {name}", "value": ratio, "goal": "≥ 1",
                      "met": ratio >= TARGETS["projection_ratio"]})  # fmt: skip
    for name in ("sqlite", "postgresql"):
        for request, figure in figures["million"][name]["latency"].items():
            found.append({"target": f"p99 {request}, {name}, {figures['config']['cases']} cases",
                          "value": figure["p99"], "goal": "≤ 50 ms",
                          "met": figure["p99"] <= TARGETS["p99_ms"]})  # fmt: skip
    return found


def report(figures: dict[str, Any]) -> None:
    m, p, config = figures["machine"], figures["projection"], figures["config"]
    print(f"\n{m['date']}  {m['nproc']} × {m['cpu']}, {m['ram_gib']} GiB, python {m['python']}, "
          f"SQLite {m['sqlite']}, PostgreSQL {m['postgresql']}")  # fmt: skip
    names = ("sqlite", "postgresql")
    print_table(
        f"projection against the engine: {p['events']} events → {p['records']} records, batches "
        f"of {p['batch']}, best of {p['rounds']} alternating rounds (no Kafka on either side)",
        ["side", "seconds", "records/s", "÷ engine", "each round", "rows", "history rows"],
        [["engine (batch step)", p["engine"]["seconds"], p["engine"]["records_per_s"], "-", "-",
          "-", "-"], *([f"projection: {n}", p[n]["seconds"], p[n]["records_per_s"],
                        p[n]["ratio"], " / ".join(map(str, p[n]["ratio_per_round"])),
                        p[n]["rows"], p[n]["history_rows"]] for n in names)],
    )  # fmt: skip
    labels = list(p["sqlite"]["us_per_record_split"])
    print_table(
        "where a projected record's µs go (cProfile shares × the unprofiled µs: a guide)",
        ["stage", *names],
        [[label, *(p[n]["us_per_record_split"][label] for n in names)] for label in labels],
    )  # fmt: skip
    r = figures["rebuild"]
    print_table(
        f"full rebuild: drop the tables, project all {r['records']} records again",
        ["database", "seconds", "per million records (EXTRAPOLATED, linear)"],
        [[n, r[n]["seconds"], r[n]["extrapolated_s_per_million_records"]] for n in names],
    )
    million = figures["million"]
    print_table(
        f"{config['cases']} cases ({million['rows']}; app clock {config['now']})",
        ["database", "fill s", "open", "closed", "overdue", "at risk", "paused"],
        [[n, million[n]["fill"]["fill_s"], *(million[n]["fill"][f"{k}_cases"]
          for k in ("open", "closed", "overdue", "at_risk", "paused"))] for n in names],
    )  # fmt: skip
    print_table(
        f"latency over HTTP (uvicorn, keep-alive httpx2 client), {config['requests']} requests "
        "each, ms",
        ["database", "request", "p50", "p95", "p99", "max"],
        [[n, request, f["p50"], f["p95"], f["p99"], f["max"]]
         for n in names for request, f in million[n]["latency"].items()],
    )  # fmt: skip
    print()
    for t in figures["targets"]:
        print(
            f"{t['target']}: {t['value']} (target {t['goal']}: {'met' if t['met'] else 'MISSED'})"
        )
