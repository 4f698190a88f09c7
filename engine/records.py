"""Building output records: per-case `seq`, deterministic ids, domain time, late marking.

One builder serves one input (an event or a timer). It advances the case's `seq` by one per
record, so `seq` is contiguous by construction, and derives `record_id` from case and seq, so a
replay after a crash produces byte-identical records that downstream can deduplicate.
"""

from __future__ import annotations

import base64
import hashlib
import json
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
    RecordRetracted,
    RejectionReason,
    SlaBreached,
    SlaChanged,
    SlaWarning,
)

MAX_ORIGINAL_JSON = 256 * 1024
"""Bytes of the original input a dead-letter record keeps (Kafka's default limit is 1 MiB)."""

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


def sla_info(case: Case) -> dict[str, object] | None:
    """The fields of the record's `SlaInfo`: a dict, which the record's own validation turns
    into the model in the same (Rust) pass, instead of a model validated on its own first."""
    sla = case.sla
    if sla is None:
        return None
    return {
        "deadline": sla.deadline,
        "warning_at": sla.warning_at,
        "paused": sla.paused_at is not None,
        "extensions": sla.extensions,
        "holiday_data_missing": sla.data_missing,
    }


class RecordBuilder:
    """Collects the records one input produces for one case."""

    def __init__(
        self, workflow: CompiledWorkflow, case: Case, caused_by: str, occurred_at: datetime
    ) -> None:
        local = occurred_at.astimezone(workflow.tz)
        self.workflow = workflow
        self.caused_by = caused_by
        self.late = local < case.clock
        self.late_by = (case.clock - local).total_seconds() if self.late else None
        self.at = max(local, case.clock)
        self.case = case
        """The case as its records leave it; each record moves its clock to `at`."""
        self.records: list[CaseRecord] = []

    def _add(self, case: Case, record_type: type[CaseRecord], **fields: object) -> None:
        seq = case.seq + 1
        case = case._replace(seq=seq, clock=self.at)
        # Validated, not `model_construct`ed: pydantic's construct runs in Python and cost more
        # instructions per event than its validator in Rust (measured under cachegrind).
        self.records.append(
            record_type.model_validate(
                {
                    "record_id": record_id(case.case_id, seq),
                    "case_id": case.case_id,
                    "seq": seq,
                    "workflow": self.workflow.name,
                    "workflow_version": self.workflow.version,
                    "occurred_at": self.at,
                    "caused_by": self.caused_by,
                    "late": self.late,
                    "late_by_seconds": self.late_by,
                    **fields,
                }
            )
        )
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

    def sla_breached(self, case: Case, owner: Literal["organ", "party"] = "organ") -> None:
        assert case.sla is not None
        self._add(case, SlaBreached, state=case.state, deadline=case.sla.deadline, owner=owner)

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

    def retracted(self, case: Case, seq: int, kind: str) -> None:
        """Record `seq` (of type `kind`) of the case is no longer true (engine/correction.py)."""
        self._add(case, RecordRetracted, retracts=record_id(case.case_id, seq), retracted_seq=seq,
                  retracted_type=kind)  # fmt: skip

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
    case: Case | None = None,
    case_id: str | None = None,
    message_id: str | None = None,
) -> EventRejected:
    """A dead-letter record; its id derives from where the input came from (replay-stable).

    With the `case` that refused the event, the record says where the case stood (workflow,
    version, state, and how far the event's time was behind the case's clock) and the detail
    names the state: "may not send 'mediation.failed' here" alone does not say where "here" is.
    An adapter's refusal of a native message, which has no canonical event, names the case and
    the upstream message it could read (`case_id`, `message_id`).
    """
    late_by: float | None = None
    if case is not None and event is not None:
        behind = (case.clock - event.occurred_at).total_seconds()
        late_by = behind if behind > 0 else None
        quoted = repr(case.state)
        if f"state {quoted}" not in detail and f"from {quoted}" not in detail:
            detail = f"{detail[: 1000 - len(quoted) - 12]} (in state {quoted})"
    if original is None and event is not None:
        original = event.model_dump_json().encode()
    raw = bounded_original(original or b"")
    try:
        text, encoding = raw.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        text, encoding = base64.b64encode(raw).decode("ascii"), "base64"
    encoding_: Literal["utf-8", "base64"] = "utf-8" if encoding == "utf-8" else "base64"
    return EventRejected(
        record_id=str(uuid.uuid5(RECORD_NAMESPACE, f"rejected/{origin}")),
        case_id=event.case_id if event else case_id,
        event_id=event.event_id if event else None,
        reason=reason,
        detail=detail[:1000],
        origin=origin,
        original=text,
        original_encoding=encoding_,
        headers=headers or {},
        fields=fields or [],
        workflow=case.workflow if case is not None else None,
        workflow_version=case.version if case is not None else None,
        case_state=case.state if case is not None else None,
        late_by_seconds=late_by,
        message_id=message_id,
    )


def bounded_original(raw: bytes, limit: int = MAX_ORIGINAL_JSON) -> bytes:
    """The longest prefix of `raw` whose copy in a dead-letter record (JSON text, or base64 when
    `raw` is not UTF-8) takes at most `limit` bytes."""
    if len(raw) * 6 <= limit:  # nothing grows more than sixfold (a control character)
        return raw
    whole = len(raw) <= limit
    head = raw[:limit]  # nothing shrinks either
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError as err:
        if whole or err.reason != "unexpected end of data":
            return raw[: limit // 4 * 3]  # not UTF-8: base64, 4 characters per 3 bytes
        text = head[: err.start].decode("utf-8")  # the cut split the last character
    if whole and len(json.dumps(text, ensure_ascii=False).encode("utf-8")) - 2 <= limit:
        return raw
    size = 0
    for index, char in enumerate(text):
        size += _json_size(char)
        if size > limit:
            return text[:index].encode("utf-8")
    return text.encode("utf-8")


def _json_size(char: str) -> int:
    """Bytes of one character inside a JSON string (serde_json's escaping, as pydantic's)."""
    code = ord(char)
    if code < 0x20:
        return 2 if char in "\b\t\n\f\r" else 6
    if char in '"\\':
        return 2
    return 1 if code < 0x80 else len(char.encode("utf-8", "surrogatepass"))
