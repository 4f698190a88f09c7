"""The soak benchmark: years of cases through the engine in compressed time, with retention.

Why: a service that lives for years must hold what is open or recently closed, not everything
it ever handled. This plays `--months` of a steady case load (every case closes within weeks)
through the core's batch step exactly as one partition of `fengqiao run` does (a memory store
written after each "commit", virtual days as batches, the clock at each day's end), writes each
change to a model of the compacted changelog (an SQLite table keyed by case id: a snapshot
upserts, a tombstone deletes, which is what compaction leaves of the topic), and after every
simulated month prints what grows with time: the cases in the store, the compacted changelog's
size, the resident memory of the process, and the time a fresh store takes to restore from that
changelog (the rebalance path: snapshots into a store, then the timer index).

It runs once with `FENGQIAO_RETENTION_DAYS`' default and once keeping closed cases for ever
(today's behaviour before retention), each in a fresh interpreter so resident memory is its own.
No broker: `bench scale` measures restores from a real changelog; this isolates growth.

    python -m consumers.bench.soak --months 24 --cases-per-month 3000 [--out soak.json]
"""

from __future__ import annotations

import argparse
import gc
import json
import random
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from consumers.bench.common import ROOT, child_env, machine, print_table, rss_bytes, write_json
from consumers.runtime.settings import Settings
from consumers.synthetic import PATHS, WORKFLOW
from engine.batch import BatchReplay, BatchResult, Input
from engine.core import Engine
from engine.registry import WorkflowRegistry
from engine.stores import MemoryStore

START = datetime.fromisoformat("2024-01-01T00:00:00+08:00")
DAY = timedelta(days=1)
MONTH_DAYS = 30
"""A simulated month: 30 virtual days (calendar months would only add noise to the table)."""
RETENTION_DAYS: int = Settings.model_fields["retention_days"].default
CHUNK = 5_000
"""Changelog records per restore chunk, as consumers/kafka/changelog.py reads them."""
CATEGORIES = ["neighbour", "neighbour", "family", "property"]
"""Categories that start at the grid, where the synthetic paths begin (consumers/synthetic.py)."""


def month_events(month: int, cases: int, seed: int) -> list[tuple[datetime, bytes]]:
    """The events of the cases reported in `month` (each closes: a mediation that succeeds
    without a signed agreement resolves at once; with one, the path goes on to its end)."""
    rng = random.Random(seed * 1_000_003 + month)  # noqa: S311 - synthetic data
    weights = [w for w, _ in PATHS]
    first = START + month * MONTH_DAYS * DAY
    out: list[tuple[datetime, bytes]] = []
    for n in range(cases):
        case_id = f"soak-{month:03d}-{n:06d}"
        at = first + timedelta(minutes=rng.randrange(0, MONTH_DAYS * 24 * 60))
        attributes = {"category": rng.choice(CATEGORIES)}
        out.append((at, _event(f"{case_id}-0", "case.reported", at, "grid",
                               {"workflow": WORKFLOW, "attributes": attributes})))  # fmt: skip
        path = rng.choices([p for _, p in PATHS], weights)[0]
        for i, (kind, source) in enumerate(path, start=1):
            at += timedelta(hours=rng.randrange(2, 40))
            payload = {"agreement_signed": i < len(path)} if kind == "mediation.succeeded" else {}
            out.append((at, _event(f"{case_id}-{i}", kind, at, source, payload)))
    return out


def _event(event_id: str, kind: str, at: datetime, source: str, payload: Any) -> bytes:
    case_id = event_id.rsplit("-", 1)[0]
    return json.dumps({"event_id": event_id, "case_id": case_id, "type": kind,
                       "occurred_at": at.isoformat(), "source": source,
                       "payload": payload}).encode()  # fmt: skip


class Changelog:
    """The compacted changelog as compaction leaves it: the latest snapshot per live case."""

    def __init__(self, path: Path) -> None:
        self.db = sqlite3.connect(path, isolation_level=None)
        self.db.execute("PRAGMA journal_mode = WAL")
        self.db.execute("PRAGMA synchronous = OFF")
        self.db.execute("CREATE TABLE log (case_id TEXT PRIMARY KEY, value BLOB NOT NULL)")
        self.tombstones = 0

    def write(self, result: BatchResult) -> None:
        ups = [(c.case_id, c.snapshot) for c in result.changes if c.snapshot is not None]
        gone = [(case_id,) for case_id in result.deletes]
        self.tombstones += len(gone)
        self.db.execute("BEGIN")
        self.db.executemany("INSERT OR REPLACE INTO log VALUES (?, ?)", ups)
        self.db.executemany("DELETE FROM log WHERE case_id = ?", gone)
        self.db.execute("COMMIT")

    def size(self) -> tuple[int, int]:
        """(keys, bytes of their snapshots)."""
        keys, size = self.db.execute("SELECT count(*), sum(length(value)) FROM log").fetchone()
        return int(keys), int(size or 0)

    def chunks(self) -> Iterator[dict[str, bytes]]:
        after = ""
        while True:
            query = "SELECT case_id, value FROM log WHERE case_id > ? ORDER BY case_id LIMIT ?"
            rows = self.db.execute(query, (after, CHUNK)).fetchall()
            if not rows:
                return
            yield {case_id: bytes(value) for case_id, value in rows}
            after = rows[-1][0]


def restore_seconds(engine: Engine, changelog: Changelog) -> tuple[float, int]:
    """A fresh memory store restored from the changelog and its timer index built, as
    `EngineLoop._restore` does on assignment; (seconds, cases restored)."""
    started = time.perf_counter()
    store = MemoryStore()
    for offset, chunk in enumerate(changelog.chunks()):
        store.write_snapshots(0, chunk, changelog_offset=offset)
    part = BatchReplay(engine, load=lambda c: store.get(0, c), restored=store.cases(0))
    seconds = time.perf_counter() - started
    assert part.state.value == "ready"
    return seconds, store.count(0)


def soak(
    workflows: Path, months: int, cases: int, retention_days: int, seed: int
) -> dict[str, Any]:
    """One run; a row of figures per simulated month."""
    retention = timedelta(days=retention_days) if retention_days else None
    engine = Engine(WorkflowRegistry.load(workflows), retention)
    store = MemoryStore()
    part = BatchReplay(engine, load=lambda c: store.get(0, c))
    rows: list[dict[str, Any]] = []
    events = retired = 0
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="fengqiao-soak-") as tmp:
        changelog = Changelog(Path(tmp) / "changelog.db")
        pending: list[tuple[datetime, bytes]] = []
        for month in range(months):
            pending = sorted(pending + month_events(month, cases, seed), key=lambda e: e[0])
            for day in range(month * MONTH_DAYS, (month + 1) * MONTH_DAYS):
                end = START + (day + 1) * DAY
                today = [raw for at, raw in pending if at < end]
                pending = pending[len(today) :]
                inputs = [Input(raw, f"soak:{events + i}") for i, raw in enumerate(today)]
                result = part.step(inputs, fire_until=end)
                changelog.write(result)  # the transaction, then the store
                store.write(0, result.upserts, result.deletes)
                part.confirm()
                events += len(today)
                retired += result.retired
            gc.collect()
            keys, size = changelog.size()
            seconds, restored = restore_seconds(engine, changelog)
            held = list(store.cases(0))
            rows.append({
                "month": month + 1, "events": events, "cases_in_store": len(held),
                "open": sum(not c.closed for c in held), "retired": retired,
                "changelog_keys": keys, "changelog_mib": round(size / 2**20, 2),
                "tombstones": changelog.tombstones, "rss_mib": round(rss_bytes() / 2**20, 1),
                "restore_s": round(seconds, 3), "restored": restored,
            })  # fmt: skip
            del held
            print(f"  {'kept for ever' if retention is None else f'{retention_days} days'}: "
                  f"month {month + 1}: {rows[-1]}", file=sys.stderr)  # fmt: skip
        changelog.db.close()
    return {"retention_days": retention_days, "seconds": round(time.perf_counter() - started, 1),
            "months": rows}  # fmt: skip


def _in_child(workflows: Path, months: int, cases: int, retention_days: int, seed: int) -> Any:
    args = json.dumps([str(workflows), months, cases, retention_days, seed])
    proc = subprocess.run(  # noqa: S603 - our own interpreter and module
        [sys.executable, "-m", "consumers.bench.soak", "--child", args],
        stdout=subprocess.PIPE, env=child_env(), cwd=ROOT, check=True,
    )  # fmt: skip
    return json.loads(proc.stdout.decode().splitlines()[-1])


def run_soak_bench(workflows: Path, months: int, cases: int, seed: int, out: str | None) -> int:
    figures: dict[str, Any] = {
        "machine": machine(),
        "config": {"months": months, "cases_per_month": cases, "month_days": MONTH_DAYS},
        "runs": [_in_child(workflows, months, cases, days, seed) for days in (RETENTION_DAYS, 0)],
    }
    for run in figures["runs"]:
        days = run["retention_days"]
        print_table(
            f"{months} months of {cases} cases a month, closed cases "
            + (f"kept {days} days" if days else "kept for ever") + f" ({run['seconds']} s)",
            ["month", "events", "in store", "open", "retired", "changelog keys", "MiB",
             "RSS MiB", "restore s"],
            [[r["month"], r["events"], r["cases_in_store"], r["open"], r["retired"],
              r["changelog_keys"], r["changelog_mib"], r["rss_mib"], r["restore_s"]]
             for r in run["months"]],
        )  # fmt: skip
    write_json(out, figures)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workflows", default=str(ROOT / "workflows"))
    parser.add_argument("--months", type=int, default=24)
    parser.add_argument("--cases-per-month", type=int, default=3000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--out", help="also write the figures as JSON here")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        workflows, months, cases, days, seed = json.loads(args.child)
        print(json.dumps(soak(Path(workflows), months, cases, days, seed)))
        return 0
    return run_soak_bench(Path(args.workflows), args.months, args.cases_per_month, args.seed,
                          args.out)  # fmt: skip


if __name__ == "__main__":
    sys.exit(main())
