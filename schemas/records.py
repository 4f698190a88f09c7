"""Output records (DESIGN §4): what the engine emits, one JSON object per record.

Every case record carries `case_id`, a per-case `seq` (+1 per record, no gaps), a `record_id`
derived from both, and the input `event_id` or timer id that caused it, so that downstream
consumers can deduplicate and audit. Field order is fixed, which keeps encoded output
byte-identical between runs.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SerializerFunctionWrapHandler, model_serializer

RejectionReason = Literal[
    "malformed",
    "schema_invalid",
    "unknown_case",
    "invalid_transition",
    "unauthorized_source",
    "guard_failed",
    "workflow_unknown",
    "window_closed",
    "key_mismatch",
]
"""Why an input was refused. `key_mismatch`: a record of the case-events topic whose Kafka key
is not its `case_id` (or that has none): applying it could split one case across partitions,
whose engines would then each hold a copy of it."""


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
    late_by_seconds: float | None = Field(default=None, exclude_if=lambda v: v is None)
    """How far the input was behind the case's clock when it was applied at that clock (past
    the workflow's correction horizon, or with none): left out of the JSON unless `late`."""


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


class RecordRetracted(_Record):
    """An earlier record of the case that a late event proved untrue (engine/correction.py).

    The consumer rule: a retraction removes the record it names (`retracts`, by `record_id`;
    `retracted_seq` is its `seq`) from the case's history; the case's history is its live
    records (neither retracted nor retractions) in `seq` order, and its state is what they
    say. The corrected records follow the retractions in the same transaction, with `seq`
    continuing and their own domain time (`occurred_at` before the retraction's own)."""

    type: Literal["record.retracted"] = "record.retracted"
    retracts: str
    retracted_seq: int
    retracted_type: str
    """The type of the retracted record (e.g. `sla.breached`): counters of committed records
    can be read net of retractions by type (`fengqiao_records_retracted_total`)."""


CaseRecord = (
    CaseTransitioned
    | SlaWarning
    | SlaBreached
    | SlaChanged
    | CaseClosed
    | CaseMigrated
    | RecordRetracted
)


class FieldProblem(BaseModel):
    """One invalid field of a refused message, by JSON path (e.g. `$.parties.0.phone`)."""

    model_config = ConfigDict(frozen=True)

    path: str
    message: str


CASE_CONTEXT = ("workflow", "workflow_version", "case_state", "late_by_seconds", "message_id")
"""The optional fields of `EventRejected` omitted from its JSON when None."""


class EventRejected(BaseModel):
    """A refused input, written to the dead-letter topic with the reason and the original bytes.

    Rejections do not belong to a case's history, so they carry no `seq`; `record_id` is derived
    from where the input came from (file line, or topic/partition/offset) so a replay produces
    the same id.

    An event refused by an open case also says where that case stood, so the dead letter can be
    understood without replaying the changelog: its `workflow`, `workflow_version` and
    `case_state`, and `late_by_seconds` when the event's `occurred_at` was behind the case's
    clock (an event delivered late is the usual reason it no longer fits). These four are left
    out of the JSON when they do not apply (no case, or not late), so every other refusal keeps
    the shape it always had.

    A native message an intake adapter refused carries the upstream `message_id` (when it could
    be read), and its `case_id` is the case the message names: an integrator finds the dead
    letter by ticket number and traces it to the message upstream.
    """

    model_config = ConfigDict(frozen=True)

    type: Literal["event.rejected"] = "event.rejected"
    record_id: str
    case_id: str | None
    event_id: str | None
    reason: RejectionReason
    detail: str
    workflow: str | None = None
    workflow_version: int | None = None
    case_state: str | None = None
    late_by_seconds: float | None = None
    message_id: str | None = None
    origin: str
    original: str
    original_encoding: Literal["utf-8", "base64"] = "utf-8"
    headers: dict[str, str] = {}
    fields: list[FieldProblem] = []

    @model_serializer(mode="wrap")
    def _omit_inapplicable(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        data: dict[str, Any] = handler(self)
        for name in CASE_CONTEXT:
            if data.get(name, 0) is None:
                del data[name]
        return data


OutputRecord = CaseRecord | EventRejected
