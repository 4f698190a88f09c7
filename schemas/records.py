"""Output records (DESIGN §4): what the engine emits, one JSON object per record.

Every case record carries `case_id`, a per-case `seq` (+1 per record, no gaps), a `record_id`
derived from both, and the input `event_id` or timer id that caused it, so that downstream
consumers can deduplicate and audit. Field order is fixed, which keeps encoded output
byte-identical between runs.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict

RejectionReason = Literal[
    "malformed",
    "schema_invalid",
    "unknown_case",
    "invalid_transition",
    "unauthorized_source",
    "guard_failed",
    "workflow_unknown",
    "window_closed",
]


class SlaInfo(BaseModel):
    """The time limit of the state a case is in."""

    model_config = ConfigDict(frozen=True)

    deadline: datetime
    warning_at: datetime
    paused: bool = False
    extensions: int = 0
    holiday_data_missing: bool = False


class _Record(BaseModel):
    model_config = ConfigDict(frozen=True)

    record_id: str
    case_id: str
    seq: int
    workflow: str
    workflow_version: int
    occurred_at: datetime
    caused_by: str
    late: bool = False


class CaseTransitioned(_Record):
    type: Literal["case.transitioned"] = "case.transitioned"
    from_state: str | None
    to_state: str
    from_tier: str | None
    to_tier: str | None
    trigger: str
    sla: SlaInfo | None


class SlaWarning(_Record):
    type: Literal["sla.warning"] = "sla.warning"
    state: str
    deadline: datetime


class SlaBreached(_Record):
    """A limit passed. `owner: party` is a party's window that lapsed (a petitioner who did not
    request review in time): reported, but no breach by the organ and not counted in `on_time`."""

    type: Literal["sla.breached"] = "sla.breached"
    state: str
    deadline: datetime
    owner: Literal["organ", "party"] = "organ"


class SlaChanged(_Record):
    """The clock of the current state was paused, resumed or extended (no change of state)."""

    type: Literal["sla.changed"] = "sla.changed"
    state: str
    action: Literal["paused", "resumed", "extended"]
    sla: SlaInfo


class CaseClosed(_Record):
    type: Literal["case.closed"] = "case.closed"
    outcome: str
    resolved_tier: str | None
    escalations: int
    on_time: bool


class CaseMigrated(_Record):
    """The case moved to another version of its workflow (`fengqiao migrate`)."""

    type: Literal["case.migrated"] = "case.migrated"
    from_version: int
    from_state: str
    to_state: str
    to_tier: str | None
    sla_policy: Literal["keep", "recompute", "earliest"]
    sla: SlaInfo | None


CaseRecord = CaseTransitioned | SlaWarning | SlaBreached | SlaChanged | CaseClosed | CaseMigrated


class FieldProblem(BaseModel):
    """One invalid field of a refused message, by JSON path (e.g. `$.parties.0.phone`)."""

    model_config = ConfigDict(frozen=True)

    path: str
    message: str


class EventRejected(BaseModel):
    """A refused input, written to the dead-letter topic with the reason and the original bytes.

    Rejections do not belong to a case's history, so they carry no `seq`; `record_id` is derived
    from where the input came from (file line, or topic/partition/offset) so a replay produces
    the same id.
    """

    model_config = ConfigDict(frozen=True)

    type: Literal["event.rejected"] = "event.rejected"
    record_id: str
    case_id: str | None
    event_id: str | None
    reason: RejectionReason
    detail: str
    origin: str
    original: str
    original_encoding: Literal["utf-8", "base64"] = "utf-8"
    headers: dict[str, str] = {}
    fields: list[FieldProblem] = []


OutputRecord = CaseRecord | EventRejected
