"""Building output records: per-case `seq`, deterministic ids, domain time, late marking.

One builder serves one input (an event or a timer). It advances the case's `seq` by one per
record, so `seq` is contiguous by construction, and derives `record_id` from case and seq, so a
replay after a crash produces byte-identical records that downstream can deduplicate.
"""

from __future__ import annotations

import base64
import hashlib
import uuid
from datetime import datetime
from typing import Literal

from engine.case import Case
from engine.machine import CompiledWorkflow
from schemas.events import CaseEvent
from schemas.records import (
    CaseClosed,
    CaseMigrated,
    CaseRecord,
    CaseTransitioned,
    EventRejected,
    FieldProblem,
    RejectionReason,
    SlaBreached,
    SlaChanged,
    SlaInfo,
    SlaWarning,
)

RECORD_NAMESPACE = uuid.UUID("6f1c7a52-3c1e-4f7e-9a55-0b9d1f3a8c21")


_NAMESPACE_BYTES = RECORD_NAMESPACE.bytes


def record_id(case_id: str, seq: int) -> str:
    """`uuid5(RECORD_NAMESPACE, "case_id/seq")`, formatted without building a `UUID` object.

    Same value as `str(uuid.uuid5(...))` (a unit test pins that); five times cheaper, and it runs
    for every record.
    """
    digest = bytearray(hashlib.sha1(_NAMESPACE_BYTES + f"{case_id}/{seq}".encode()).digest()[:16])  # noqa: S324 - uuid5 is defined on SHA-1
    digest[6] = (digest[6] & 0x0F) | 0x50
    digest[8] = (digest[8] & 0x3F) | 0x80
    h = digest.hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def sla_info(case: Case) -> SlaInfo | None:
    sla = case.sla
    if sla is None:
        return None
    return SlaInfo(
        deadline=sla.deadline,
        warning_at=sla.warning_at,
        paused=sla.paused_at is not None,
        extensions=sla.extensions,
        holiday_data_missing=sla.data_missing,
    )


class RecordBuilder:
    """Collects the records one input produces for one case."""

    def __init__(
        self, workflow: CompiledWorkflow, case: Case, caused_by: str, occurred_at: datetime
    ) -> None:
        local = occurred_at.astimezone(workflow.tz)
        self.workflow = workflow
        self.caused_by = caused_by
        self.late = local < case.clock
        self.at = max(local, case.clock)
        self.case = case._replace(clock=self.at)
        self.records: list[CaseRecord] = []

    def _common(self, case: Case) -> dict[str, object]:
        return {
            "record_id": record_id(case.case_id, case.seq),
            "case_id": case.case_id,
            "seq": case.seq,
            "workflow": self.workflow.name,
            "workflow_version": self.workflow.version,
            "occurred_at": self.at,
            "caused_by": self.caused_by,
            "late": self.late,
        }

    def _add(self, case: Case, record_type: type[CaseRecord], **fields: object) -> None:
        case = case._replace(seq=case.seq + 1, clock=self.at)
        self.records.append(record_type.model_validate({**self._common(case), **fields}))
        self.case = case

    def transitioned(
        self, case: Case, *, from_state: str | None, from_tier: str | None, trigger: str
    ) -> None:
        self._add(case, CaseTransitioned, from_state=from_state, to_state=case.state,
                  from_tier=from_tier, to_tier=case.tier,
                  trigger=trigger, sla=sla_info(case))  # fmt: skip

    def closed(self, case: Case) -> None:
        outcome = self.workflow.state(case.state).outcome or "closed"
        self._add(case, CaseClosed, outcome=outcome, resolved_tier=case.tier,
                  escalations=case.escalations, on_time=case.breaches == 0)  # fmt: skip

    def sla_warning(self, case: Case) -> None:
        assert case.sla is not None
        self._add(case, SlaWarning, state=case.state, deadline=case.sla.deadline)

    def sla_breached(self, case: Case) -> None:
        assert case.sla is not None
        self._add(case, SlaBreached, state=case.state, deadline=case.sla.deadline)

    def migrated(
        self,
        case: Case,
        *,
        from_version: int,
        from_state: str,
        policy: Literal["keep", "recompute", "earliest"],
    ) -> None:
        self._add(case, CaseMigrated, from_version=from_version, from_state=from_state,
                  to_state=case.state, to_tier=case.tier, sla_policy=policy,
                  sla=sla_info(case))  # fmt: skip

    def sla_changed(self, case: Case, action: Literal["paused", "resumed", "extended"]) -> None:
        self._add(case, SlaChanged, state=case.state, action=action, sla=sla_info(case))


def rejection(
    event: CaseEvent | None,
    origin: str,
    reason: RejectionReason,
    detail: str,
    *,
    original: bytes | None = None,
    headers: dict[str, str] | None = None,
    fields: list[FieldProblem] | None = None,
) -> EventRejected:
    """A dead-letter record; its id derives from where the input came from (replay-stable)."""
    if original is None and event is not None:
        original = event.model_dump_json().encode()
    raw = original or b""
    try:
        text, encoding = raw.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        text, encoding = base64.b64encode(raw).decode("ascii"), "base64"
    encoding_: Literal["utf-8", "base64"] = "utf-8" if encoding == "utf-8" else "base64"
    return EventRejected(
        record_id=str(uuid.uuid5(RECORD_NAMESPACE, f"rejected/{origin}")),
        case_id=event.case_id if event else None,
        event_id=event.event_id if event else None,
        reason=reason,
        detail=detail[:1000],
        origin=origin,
        original=text,
        original_encoding=encoding_,
        headers=headers or {},
        fields=fields or [],
    )
