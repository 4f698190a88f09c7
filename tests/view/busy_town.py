"""A read model with something to show: real engine output for the console's tests and
screenshots, with every kind of case a supervisor looks for.

Sixty days of a town of 30,000 (the demo's generator), then five days in which nobody acts: the
engine's own timers keep firing up to `NOW`, 09:30 on the sixth morning (warnings, breaches,
escalations up the ladder), so the view holds overdue cases, cases at risk, paused ones, closed
ones and deadlines in the next days, all as the engine published them. One retraction (the
shape DESIGN §4 documents) takes back a record of the case with the longest history, so its
page has a record struck through.
"""

from __future__ import annotations

import json
from datetime import date, datetime, timedelta

from consumers.demo.town import Town, TownSpec
from consumers.view.fold import Record
from engine.core import Engine
from engine.registry import WorkflowRegistry
from tests.view.streams import by_case, encode, replay, retraction

TOWN = TownSpec(population=30_000, start=date(2026, 1, 5), days=60)
IDLE = timedelta(days=5, hours=9, minutes=30)


def busy_town_events(registry: WorkflowRegistry) -> list[bytes]:
    """The town's input events, as the view reads them from the case-events topic too."""
    return [e.raw for e in Town(TOWN, registry).events()]


def busy_town(registry: WorkflowRegistry, engine: Engine) -> tuple[datetime, list[bytes]]:
    """`NOW` (the engine's clock and the console's) and the published records, a retraction
    last."""
    town = Town(TOWN, registry)
    now = town.end + IDLE
    out = replay(engine, [e.raw for e in town.events()], now)[1]
    return now, [*out, *encode([retraction_in(out)])]


def retraction_in(values: list[bytes]) -> Record:
    """A retraction of a mid-history record of the longest case: a warning, if it has one."""
    _, records = max(by_case(values).items(), key=lambda kv: (len(kv[1]), kv[0]))
    target = next((r for r in records if r["type"] == "sla.warning"), records[len(records) // 2])
    return retraction(target, max(int(r["seq"]) for r in records) + 1)


def retracted_case(values: list[bytes]) -> str:
    """The case the retraction of `busy_town` is about."""
    last = json.loads(values[-1])
    assert last["type"] == "record.retracted"
    return str(last["case_id"])
