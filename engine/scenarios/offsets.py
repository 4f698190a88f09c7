"""Relative step times: `+2h`, `+30m`, `+3 days`, `+3 working days`, `+2 working hours`.

Why a grammar of our own instead of ISO 8601 durations: authors think in the units the law uses
("within 3 working days"), and ISO has no working days. Working units are counted on the
workflow's own calendar and office window (`CompiledWorkflow.deadlines`), so "+3 working days"
from the Thursday before Spring Festival lands where the engine's own deadline arithmetic
lands, never on a holiday. The arithmetic is the engine's; this module only reads the text.

An offset moves forward only: a step that must happen earlier than the previous one (a late
event) gives an absolute `at`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from engine.deadlines import Duration
from engine.machine import CompiledWorkflow
from engine.problems import FengqiaoError

OffsetUnit = Literal["minutes", "hours", "calendar_days", "working_days", "working_hours"]

UNIT_WORDS: dict[str, OffsetUnit] = {
    "m": "minutes", "min": "minutes", "mins": "minutes", "minute": "minutes",
    "minutes": "minutes",
    "h": "hours", "hour": "hours", "hours": "hours",
    "d": "calendar_days", "day": "calendar_days", "days": "calendar_days",
    "calendar day": "calendar_days", "calendar days": "calendar_days",
    "working day": "working_days", "working days": "working_days",
    "working hour": "working_hours", "working hours": "working_hours",
}  # fmt: skip
"""Every spelling of every unit; singular and plural both read naturally ("+1 working day")."""

LIMITS: dict[OffsetUnit, int] = {
    "minutes": 10 * 366 * 24 * 60,
    "hours": 10 * 366 * 24,
    "calendar_days": 3660,
    "working_days": 3660,
    "working_hours": 10 * 366 * 24,
}
"""About ten years in each unit: a scenario spans days or months; a bigger number is a typo."""

_OFFSET = re.compile(r"\+?[ ]*(?P<amount>[0-9]{1,9})[ ]*(?P<unit>[a-z]+(?:[ ]+[a-z]+)?)")
_HELP = 'write +N and a unit: m, h, days, calendar days, working days, working hours (e.g. "+2h")'


class OffsetError(FengqiaoError, ValueError):
    """Text that is not an offset; the message says what an offset looks like.

    A `ValueError` too, so a pydantic validator that meets one reports it at the offending
    line of the scenario file."""


@dataclass(frozen=True, slots=True)
class Offset:
    """A forward step of time in one unit."""

    amount: int
    unit: OffsetUnit

    def __str__(self) -> str:
        return f"+{self.amount} {self.unit.replace('_', ' ')}"


def parse_offset(text: str) -> Offset:
    """Read an offset such as "+3 working days"; raise `OffsetError` for anything else."""
    cleaned = " ".join(text.split()).lower()
    if cleaned.startswith("-"):
        raise OffsetError(f"{text!r}: time only moves forward; {_HELP}")
    match = _OFFSET.fullmatch(cleaned)
    if match is None:
        raise OffsetError(f"{text!r} is not an offset; {_HELP}")
    unit = UNIT_WORDS.get(match["unit"])
    if unit is None:
        raise OffsetError(f"{text!r}: unknown unit {match['unit']!r}; {_HELP}")
    amount = int(match["amount"])
    if amount > LIMITS[unit]:
        raise OffsetError(f"{text!r} is longer than ten years; a scenario step is not")
    return Offset(amount, unit)


def apply_offset(offset: Offset, start: datetime, workflow: CompiledWorkflow) -> datetime:
    """The instant `offset` after `start`, in the workflow's time zone.

    Calendar days keep the local time of day. Working days keep it too, on the N-th working day
    after the start's local date (the engine's `deadline` ends at 24:00 of that day, so the day
    is the one just before its result). Working hours count office time only, exactly as a
    `working_hours` SLA does.
    """
    local = start.astimezone(workflow.tz)
    if offset.unit == "minutes":
        return local + timedelta(minutes=offset.amount)
    if offset.unit == "hours":
        return local + timedelta(hours=offset.amount)
    if offset.unit == "calendar_days":
        return (local + timedelta(days=offset.amount)).astimezone(workflow.tz)
    if offset.amount == 0:
        return local
    end = workflow.deadlines.deadline(local, Duration(offset.unit, offset.amount)).instant
    if offset.unit == "working_hours":
        return end.astimezone(workflow.tz)
    last_day = (end.astimezone(workflow.tz) - timedelta(microseconds=1)).date()
    return datetime.combine(last_day, local.timetz()).astimezone(workflow.tz)
