"""`fengqiao bench view`, the read side under a million cases: the read model filled with
synthetic rows, then the API's p50/p95/p99 through a real uvicorn server.

Why rows are inserted directly instead of projected: a million cases are ~3.9 million
records, which the engine and the projection into both databases would take about an hour to
produce on the benchmark's machine, for rows the measured queries cannot tell from these. The
rows are what the fold would make of such cases: the workflows' own states and rungs, a year
of openings, most cases closed, and among the open ones a share overdue (breached or past
their deadline), at risk (warned of), paused and on track, with deadlines spread around the
benchmark's fixed "now", which the app is given as its clock. The history table stays empty:
neither measured request reads it.

Latency is measured as an operator's browser or script sees it: HTTP/1.1 with keep-alive over
the loopback to uvicorn on a thread of this process, a bearer token checked on every request,
the same sequential client for every sample (the first requests, which open connections and
warm caches, are left out).
"""

from __future__ import annotations

import itertools
import random
import secrets
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa

from consumers.bench.common import percentiles
from consumers.runtime.clock import FixedClock
from consumers.view.access import Access, Token, hash_token
from consumers.view.app import create_app
from consumers.view.fold import ticket_of
from consumers.view.queries import status_clause
from consumers.view.serve import HttpThread, bind
from consumers.view.tables import cases
from engine.registry import WorkflowRegistry

NOW = datetime(2026, 11, 30, 2, 0, tzinfo=UTC)
"""The app's clock during the measurement: every row's instants are placed around it."""
WORKFLOW_SHARES = {"dispute-escalation": 0.55, "hotline-12345": 0.35, "petition": 0.10}
CLOSED_SHARE = 0.6
"""A year of cases: most of them resolved, withdrawn or referred."""
OPEN_MIX = (("on_track", 0.80), ("at_risk", 0.08), ("overdue", 0.09), ("paused", 0.03))
"""What the open cases are doing at NOW (deadline ahead, warned of, past it, stopped)."""
ROWS_PER_STATEMENT = 20_000
ROWS_PER_TRANSACTION = 200_000
WARM_UP = 50
"""Requests of each kind sent before sampling (connections, caches, the first plans)."""


@dataclass(frozen=True)
class _Rung:
    workflow: str
    version: int
    state: str
    tier: str | None
    outcome: str | None
    tiers: tuple[str, ...]


def case_id(n: int) -> str:
    """The n-th synthetic case's id: an area code first, as intakes that scope by area do."""
    return f"T{n % 40:02d}-2026-{n:07d}"


def _rungs(registry: WorkflowRegistry) -> dict[str, tuple[list[_Rung], list[_Rung]]]:
    """Per workflow (its newest version): the open states and the closed (terminal) ones."""
    found: dict[str, tuple[list[_Rung], list[_Rung]]] = {}
    for name in WORKFLOW_SHARES:
        workflow = registry.newest(name)
        if workflow is None:
            continue
        spec = workflow.spec
        rungs = [
            _Rung(name, spec.version, state, s.tier, s.outcome, tuple(spec.tiers))
            for state, s in spec.states.items()
        ]
        found[name] = ([r for r in rungs if r.outcome is None], [r for r in rungs if r.outcome])
    if not found:
        raise ValueError(f"none of the workflows {sorted(WORKFLOW_SHARES)} is loaded")
    return found


def synthetic_rows(
    registry: WorkflowRegistry, count: int, seed: int = 11
) -> Iterator[dict[str, Any]]:
    """`count` rows of the `cases` table, as described in the module docstring."""
    rng = random.Random(seed)  # noqa: S311 - synthetic data, not secrets
    rungs = _rungs(registry)
    names = list(rungs)
    weights = [WORKFLOW_SHARES[n] for n in names]
    kinds, kind_weights = [k for k, _ in OPEN_MIX], [w for _, w in OPEN_MIX]
    for n in range(count):
        open_states, closed_states = rungs[rng.choices(names, weights)[0]]
        opened = NOW - timedelta(minutes=rng.randrange(60, 365 * 24 * 60))
        if rng.random() < CLOSED_SHARE:
            yield _closed(rng, n, rng.choice(closed_states), opened)
        else:
            kind = rng.choices(kinds, kind_weights)[0]
            yield _open(rng, n, rng.choice(open_states), opened, kind)


def _base(rng: random.Random, n: int, rung: _Rung, opened: datetime) -> dict[str, Any]:
    return {
        "case_id": case_id(n), "workflow": rung.workflow, "workflow_version": rung.version,
        "state": rung.state, "tier": rung.tier, "opened_at": opened, "warned": False,
        "breached": False, "paused": False, "extensions": int(rng.random() < 0.05),
        "escalations": rng.choices((0, 1, 2, 3), (0.7, 0.2, 0.08, 0.02))[0], "breaches": 0,
        "on_time": None, "outcome": None, "resolved_tier": None, "closed_at": None,
        "last_seq": rng.randrange(1, 9), "attributes": {}, "ticket": ticket_of(case_id(n)),
        "opened_by": f"bench-{n}-reported",
    }  # fmt: skip


def _open(rng: random.Random, n: int, rung: _Rung, opened: datetime, kind: str) -> dict[str, Any]:
    row = _base(rng, n, rung, opened)
    stay = timedelta(hours=rng.choice((24, 72, 120, 240, 360)))  # the state's limit
    ahead = {
        "on_track": lambda: rng.uniform(0.25, 1.0),
        "at_risk": lambda: rng.uniform(0.01, 0.2),
        "overdue": lambda: -rng.uniform(0.001, 3.0),
        "paused": lambda: rng.uniform(0.1, 1.0),
    }[kind]()
    deadline = NOW + stay * ahead
    entered = max(opened, min(deadline - stay, NOW - timedelta(minutes=1)))
    warning = deadline - stay * 0.2
    row.update(
        status="open", entered_at=entered, updated_at=max(entered, min(warning, NOW)),
        deadline=deadline, warning_at=warning, warned=warning <= NOW, paused=kind == "paused",
        breached=deadline <= NOW - timedelta(minutes=1),
    )  # fmt: skip
    row["breaches"] = int(row["breached"]) + rng.choices((0, 1), (0.9, 0.1))[0]
    return row


def _closed(rng: random.Random, n: int, rung: _Rung, opened: datetime) -> dict[str, Any]:
    row = _base(rng, n, rung, opened)
    closed = min(opened + timedelta(hours=rng.uniform(2, 45 * 24)), NOW)
    on_time = rng.random() < 0.9
    row.update(
        status="closed", entered_at=closed, updated_at=closed, deadline=None, warning_at=None,
        closed_at=closed, on_time=on_time, outcome=rung.outcome, breaches=int(not on_time),
        resolved_tier=rung.tier or rung.tiers[min(row["escalations"], len(rung.tiers) - 1)],
    )  # fmt: skip
    return row


def fill(db: sa.Engine, registry: WorkflowRegistry, count: int) -> dict[str, Any]:
    """Insert `count` synthetic rows (executemany, big transactions); on PostgreSQL then
    VACUUM ANALYZE, as autovacuum would soon (SQLite is left as the view leaves it: without
    statistics, which its planner does not need here). What the rows are at NOW."""
    started = time.perf_counter()
    rows = synthetic_rows(registry, count)
    done, more = 0, True
    while more:
        with db.begin() as conn:
            for _ in range(ROWS_PER_TRANSACTION // ROWS_PER_STATEMENT):
                chunk = list(itertools.islice(rows, ROWS_PER_STATEMENT))
                more = bool(chunk)
                if not more:
                    break
                conn.execute(sa.insert(cases), chunk)
                done += len(chunk)
    if db.dialect.name == "postgresql":  # what autovacuum soon does after a big insert
        with db.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(sa.text(f"VACUUM ANALYZE {cases.name}"))
    seconds = time.perf_counter() - started
    with db.connect() as conn:
        shares = {
            status: conn.scalar(sa.select(sa.func.count()).where(status_clause(status, NOW)))
            for status in ("open", "closed", "overdue", "at_risk", "paused")
        }
    return {"rows": done, "fill_s": round(seconds, 1), "rows_per_s": round(done / seconds),
            **{f"{k}_cases": v for k, v in shares.items()}}  # fmt: skip


def latency(db: sa.Engine, count: int, requests: int, seed: int = 5) -> dict[str, dict[str, Any]]:
    """p50/p95/p99/max in ms of `GET /api/cases/{id}` (random existing ids) and of the first
    page of overdue cases, `requests` of each, through uvicorn and httpx2."""
    # A dev dependency (`pip install -e '.[dev]'`): imported here, so the CLI loads without it.
    import httpx2  # noqa: PLC0415

    token = secrets.token_urlsafe(32)
    access = Access([Token("bench", bytes.fromhex(hash_token(token)))])
    server = HttpThread(create_app(db, access, clock=FixedClock(NOW)), bind("127.0.0.1", 0))
    if not server.start():
        raise RuntimeError("uvicorn did not start")
    rng = random.Random(seed)  # noqa: S311 - which cases to ask for
    asks: dict[str, Callable[[], str]] = {
        "case_by_id": lambda: f"/api/cases/{case_id(rng.randrange(count))}",
        "overdue_first_page": lambda: "/api/cases?status=overdue",
    }
    figures: dict[str, dict[str, Any]] = {}
    headers = {"authorization": f"Bearer {token}"}
    try:
        base = f"http://127.0.0.1:{server.port}"
        with httpx2.Client(base_url=base, headers=headers, timeout=30) as http:
            for name, path in asks.items():
                samples: list[float] = []
                items = 0
                for n in range(WARM_UP + requests):
                    started = time.perf_counter()
                    answer = http.get(path())
                    took = 1000 * (time.perf_counter() - started)
                    if answer.status_code != 200:
                        raise RuntimeError(f"{name}: HTTP {answer.status_code} {answer.text[:200]}")
                    if n >= WARM_UP:
                        samples.append(took)
                    if name == "overdue_first_page":
                        items = len(answer.json()["items"])
                figures[name] = {"requests": requests, **percentiles(samples)}
                if name == "overdue_first_page":
                    figures[name]["page_items"] = items
    finally:
        server.stop()
    return figures
