"""The core's answer to one event or one clock tick: what the shell must persist.

Kept apart from engine/core.py (which holds how the answer is reached) so that the replay and
the shell can read an answer without the rules that made it.
"""

from __future__ import annotations

from typing import NamedTuple

from engine.case import Case, Timer
from schemas.records import CaseRecord, EventRejected


class Decision(NamedTuple):
    """What the shell must persist: the new case, its records, its pending timers.

    A NamedTuple, like `Case`, rather than a frozen dataclass: a few are made per input, and a
    frozen dataclass's `__init__` sets each of its seven fields through `object.__setattr__`."""

    case: Case | None
    records: tuple[CaseRecord, ...] = ()
    rejection: EventRejected | None = None
    duplicate: bool = False
    retired: bool = False
    """The case as it was is retired (its retention after closing has passed): forget it.
    `case` is then None, or the new case a re-sent `case.reported` opened under the same id."""
    corrected: bool = False
    """A late event re-derived the case (engine/correction.py): `records` begin with the
    retractions."""
    also_refused: tuple[EventRejected, ...] = ()
    """Earlier events of the case a correction now refuses (their records are retracted)."""

    @property
    def timers(self) -> tuple[Timer, ...]:
        return self.case.timers() if self.case else ()
