"""Why an input is refused: the reason and detail of an `event.rejected` record."""

from __future__ import annotations

from dataclasses import dataclass

from schemas.records import RejectionReason


@dataclass(frozen=True, slots=True)
class Refusal:
    reason: RejectionReason
    detail: str
