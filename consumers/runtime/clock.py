"""The shell's clocks (the `Clock` port of engine/ports.py): the core never reads time itself."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime


class WallClock:
    """The real time, in UTC."""

    def now(self) -> datetime:
        return datetime.now(UTC)  # noqa: TID251 - the shell's one wall clock


@dataclass(frozen=True)
class FixedClock:
    """A wall clock stopped at one instant (FENGQIAO_FIXED_NOW): tests and drills."""

    instant: datetime

    def now(self) -> datetime:
        return self.instant
