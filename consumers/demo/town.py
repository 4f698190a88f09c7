"""A seeded synthetic town: the canonical events its intake systems would send, in time order.

Why generate instead of shipping a file: a stranger should see a realistic quarter of a town
(thousands of cases on three ladders, holidays, lapsed deadlines, duplicates from retries and
reports from a second channel) without downloading anything, and the same seed must give the
same town byte for byte, so that an interrupted demo resumes by skipping the events it has
already applied.

Each day's new cases are drawn from a generator seeded with (seed, workflow, day) and unfold at
once into all their future events (`consumers.demo.stories`), which wait in a heap; the stream
yields them in (time, arrival) order up to the end of each day before drawing the next one. Events
after the horizon are never sent. The position of an event in the stream is its index.
"""

from __future__ import annotations

import heapq
import json
import math
import random
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from consumers.demo.stories import Sketch, Step, unfold
from consumers.demo.town_plays import INTAKES, RETRY_CHANCE, Intake
from engine.machine import CompiledWorkflow
from engine.registry import WorkflowRegistry

DEFAULT_POPULATION = 60_000
"""A town of tens of thousands, the order of Fengqiao itself: about 1,150 cases in 90 days."""

DEFAULT_START = date(2026, 3, 2)
"""A Monday; the default 90 days cover Qingming (Apr 4–6) and Labour Day (May 1–5, with the
make-up working Saturday May 9, 调休)."""

DAY = timedelta(days=1)


@dataclass(frozen=True)
class TownSpec:
    """What makes a town: the same spec gives the same events, whatever the machine."""

    population: int = DEFAULT_POPULATION
    seed: int = 2026
    start: date = DEFAULT_START
    days: int = 90


@dataclass(frozen=True, slots=True)
class TownEvent:
    """One canonical event as Kafka would carry it, with its domain time and workflow."""

    at: datetime
    workflow: str
    raw: bytes


class Town:
    """The event stream of one `TownSpec` over the workflows of a registry."""

    def __init__(self, spec: TownSpec, registry: WorkflowRegistry) -> None:
        self.spec = spec
        self.intakes: list[tuple[Intake, CompiledWorkflow]] = []
        self.missing: list[str] = []
        """Workflows the town reports cases for that the registry does not have."""
        for intake in INTAKES:
            workflow = registry.newest(intake.workflow)
            if workflow is None:
                self.missing.append(intake.workflow)
            else:
                self.intakes.append((intake, workflow))
        if not self.intakes:
            raise ValueError("none of the town's workflows is loaded: " + ", ".join(self.missing))
        self.tz: ZoneInfo = self.intakes[0][1].tz

    def day_start(self, day: int) -> datetime:
        """Local midnight starting day `day` (0 = the first day)."""
        start = self.spec.start + timedelta(days=day)
        return datetime(start.year, start.month, start.day, tzinfo=self.tz)

    @property
    def end(self) -> datetime:
        return self.day_start(self.spec.days)

    def events(self, skip: int = 0) -> Iterator[TownEvent]:
        """The stream from position `skip` on (the skipped events are generated, not sent)."""
        pending: list[tuple[float, int, TownEvent]] = []
        counter = 0
        position = 0
        end = self.end
        for day in range(self.spec.days):
            for intake, workflow in self.intakes:
                for event in self._day(intake, workflow, day, end):
                    heapq.heappush(pending, (event.at.timestamp(), counter, event))
                    counter += 1
            tomorrow = self.day_start(day + 1).timestamp()
            while pending and pending[0][0] < tomorrow:
                _, _, event = heapq.heappop(pending)
                if position >= skip:
                    yield event
                position += 1

    def _day(
        self, intake: Intake, workflow: CompiledWorkflow, day: int, end: datetime
    ) -> Iterator[TownEvent]:
        midnight = self.day_start(day)
        rng = random.Random(f"{self.spec.seed}/{intake.workflow}/{day}")  # noqa: S311 - synthetic data
        rest = not workflow.deadlines.calendar.is_working_day(midnight.date())
        rate = self.spec.population / 1000 * intake.per_1000 / 365
        count = _poisson(rng, rate * (intake.rest_day if rest else 1.0))
        arrivals = sorted(
            midnight + timedelta(hours=rng.triangular(6.5, 22.0, 10.0)) for _ in range(count)
        )
        for n, at in enumerate(arrivals, start=1):
            case_id = f"{intake.prefix}-{midnight:%Y%m%d}-{n:04d}"
            opened = at.replace(microsecond=0)
            yield from self._case(intake, workflow, case_id, at=opened, end=end, rng=rng)

    def _case(
        self,
        intake: Intake,
        workflow: CompiledWorkflow,
        case_id: str,
        *,
        at: datetime,
        end: datetime,
        rng: random.Random,
    ) -> Iterator[TownEvent]:
        sources = intake.sources
        source = rng.choices([s for s, _ in sources], [w for _, w in sources])[0]
        sketch = Sketch(case_id, intake.attributes(rng))
        report = {"workflow": intake.workflow, "attributes": sketch.attrs}
        steps = [Step(at, "case.reported", source, report)]
        if rng.random() < intake.second_report:
            other = rng.choice([s for s, _ in sources if s != source])
            steps.append(
                Step(at + timedelta(hours=rng.uniform(2, 72)), "case.reported", other, report)
            )
        start = intake.start(sketch, source)
        steps.extend(
            unfold(workflow, intake.book, sketch, state=start, entered=at, until=end, rng=rng)
        )
        for n, step in enumerate(steps):
            event = _event(case_id, n, step)
            copies = [step.at]
            if rng.random() < RETRY_CHANCE:
                copies.append(step.at + timedelta(minutes=rng.uniform(1, 30)))
            for when in copies:
                if when < end:
                    raw = json.dumps(
                        {**event, "occurred_at": step.at.isoformat()}, ensure_ascii=False
                    )
                    yield TownEvent(when.replace(microsecond=0), intake.workflow, raw.encode())


def _event(case_id: str, n: int, step: Step) -> dict[str, Any]:
    return {
        "event_id": f"{step.source}-{case_id}-{n:02d}",
        "case_id": case_id,
        "type": step.trigger,
        "occurred_at": "",
        "source": step.source,
        "payload": dict(step.payload),
    }


def _poisson(rng: random.Random, lam: float) -> int:
    """A Poisson draw (Knuth for small means, a rounded normal for large ones)."""
    if lam <= 0:
        return 0
    if lam > 50:
        return max(0, round(rng.gauss(lam, math.sqrt(lam))))
    limit, k, p = math.exp(-lam), 0, 1.0
    while True:
        p *= rng.random()
        if p <= limit:
            return k
        k += 1
