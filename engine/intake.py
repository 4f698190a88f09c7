"""Translate native intake messages into canonical `CaseEvent`s (pure; the Kafka loop is in
`consumers/kafka/adapter_loop.py`).

Identity is deterministic, so re-sent messages are duplicates, not new events:
- `case_id` = `<channel>:<external number>` (ticket, report, petition, incident, filing number),
  or the `case_ref` a follow-up message names explicitly;
- `event_id` = `<channel>:<message_id>`, with a suffix when one message yields several events.

The `source` of every event is the channel, i.e. the topic the message arrived on: nothing in a
payload can claim another source. Personal data never leaves: free text and parties are dropped;
where a workflow may want to link reports by the same person (同人同事), a keyed HMAC of the
phone or ID number is added as `person_key` (only when a secret key is configured).
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, tzinfo
from typing import Any
from zoneinfo import ZoneInfo

from pydantic import ValidationError

from engine.decode import MAX_FIELD_PROBLEMS, NotJson, load_json_object, time_problem
from schemas.events import CaseEvent
from schemas.intake.channels import (
    CHANNELS,
    CourtConfirmation,
    CourtDiversion,
    CourtMediationOutcome,
    GridMediationResult,
    GridPatrolReport,
    HotlineFollowUp,
    HotlineUpdate,
    HotlineWorkOrder,
    OnlineSubmission,
    OnlineWithdrawal,
    PetitionDecision,
    PetitionRegistration,
    PoliceTransfer,
)
from schemas.intake.common import Person

MAX_MESSAGE_BYTES = 256 * 1024

PETITION_EVENTS = {
    "routed": "petition.routed", "redirected": "petition.redirected",
    "accepted": "petition.accepted", "not_accepted": "petition.not_accepted",
    "extended": "handling.extended", "answered": "petition.answered",
    "review_requested": "review.requested", "review_answered": "review.answered",
    "rereview_requested": "rereview.requested", "rereview_answered": "rereview.answered",
    "satisfied": "petition.satisfied", "concluded": "petition.concluded",
    "withdrawn": "petition.withdrawn",
}  # fmt: skip


@dataclass(frozen=True, slots=True)
class FieldError:
    path: str
    message: str


@dataclass(frozen=True, slots=True)
class Refused:
    """Why a native message cannot become canonical events."""

    reason: str  # malformed | schema_invalid
    detail: str
    errors: tuple[FieldError, ...] = ()


@dataclass(frozen=True, slots=True)
class IntakeContext:
    """What translation needs beyond the message: the zone of naive timestamps, the HMAC key."""

    timezone: tzinfo = field(default_factory=lambda: ZoneInfo("Asia/Shanghai"))
    person_key_secret: bytes | None = None


def translate(channel: str, raw: bytes, ctx: IntakeContext) -> list[CaseEvent] | Refused:
    """One native message of `channel` → its canonical events, or the reason it is refused."""
    parser = CHANNELS.get(channel)
    if parser is None:
        return Refused("schema_invalid", f"unknown channel {channel!r}")
    if len(raw) > MAX_MESSAGE_BYTES:
        return Refused("malformed", f"message larger than {MAX_MESSAGE_BYTES} bytes")
    try:
        data = load_json_object(raw)
    except NotJson as err:
        return Refused("malformed", str(err))
    try:
        message = parser.validate_python(data)
    except ValidationError as err:
        errors = tuple(
            FieldError(_json_path(e["loc"], data)[:200], e["msg"])
            for e in err.errors()[:MAX_FIELD_PROBLEMS]
        )
        detail = "; ".join(f"{e.path}: {e.message}" for e in errors[:10])
        return Refused("schema_invalid", detail, errors)
    try:
        events = _Translator(channel, ctx).events(message)
    except ValidationError as err:  # a canonical event out of range (e.g. a too-long id)
        return Refused(
            "schema_invalid", f"cannot build a canonical event: {err.errors()[0]['msg']}"
        )
    return _time_refusal(message, ctx) or events


def _time_refusal(message: Any, ctx: IntakeContext) -> Refused | None:
    """A time stamp no canonical event may carry (far future or past: see engine.decode)."""
    for name, value in vars(message).items():
        if isinstance(value, datetime):
            at = value if value.tzinfo is not None else value.replace(tzinfo=ctx.timezone)
            problem = time_problem(at)
            if problem is not None:
                error = FieldError(f"$.{name}", problem)
                return Refused("schema_invalid", f"{error.path}: {problem}", (error,))
    return None


def _json_path(loc: tuple[Any, ...], data: dict[str, Any]) -> str:
    """`$.parties.0.phone` style; pydantic's union tag (the `kind` value) is not a field."""
    parts = list(loc)
    if parts and parts[0] == data.get("kind"):
        parts = parts[1:]
    return "$." + ".".join(str(p) for p in parts) if parts else "$.kind"


_KEY_CHARS = re.compile(r"[\s\-()+]")


@dataclass(frozen=True)
class _Translator:
    """One method per native message kind; `events` dispatches on the message's class."""

    channel: str
    ctx: IntakeContext

    def events(self, m: Any) -> list[CaseEvent]:
        handler: Callable[[Any], list[CaseEvent]] = getattr(self, f"_{type(m).__name__}")
        return handler(m)

    def _HotlineWorkOrder(self, m: HotlineWorkOrder) -> list[CaseEvent]:
        attrs: dict[str, Any] = {"urgency": m.urgency, "category": m.category,
                                 "district": m.district_code}  # fmt: skip
        if m.street_code:
            attrs["street"] = m.street_code
        people = [m.caller] if m.caller else []
        return [self._report(m.message_id, m.ticket_no, m.received_at, "hotline-12345", attrs,
                             people)]  # fmt: skip

    def _HotlineUpdate(self, m: HotlineUpdate) -> list[CaseEvent]:
        payload = {"by": m.handler_code} if m.handler_code else {}
        return [self._event(m.message_id, m.ticket_no, f"order.{m.action}", m.at, payload)]

    def _HotlineFollowUp(self, m: HotlineFollowUp) -> list[CaseEvent]:
        if m.result == "unreachable":
            return [self._event(m.message_id, m.ticket_no, "followup.unreachable", m.at)]
        payload = {"rating": m.rating, "reopen": m.reopen}
        return [self._event(m.message_id, m.ticket_no, "followup.rated", m.at, payload)]

    def _GridPatrolReport(self, m: GridPatrolReport) -> list[CaseEvent]:
        attrs: dict[str, Any] = {"category": m.category, "grid": m.grid_code, "risk": m.risk,
                                 "officer": m.officer_id}  # fmt: skip
        report = self._report(f"{m.message_id}/reported", m.report_no, m.reported_at,
                              "dispute-escalation", attrs, m.parties)  # fmt: skip
        if not m.resolved_on_spot:
            return [report]
        settled = self._event(f"{m.message_id}/settled", m.report_no, "mediation.succeeded",
                              m.reported_at, {"agreement_signed": False})  # fmt: skip
        return [report, settled]

    def _GridMediationResult(self, m: GridMediationResult) -> list[CaseEvent]:
        payload = {"agreement_signed": m.agreement_signed}
        return [self._event(m.message_id, m.report_no, f"mediation.{m.result}", m.at, payload)]

    def _OnlineSubmission(self, m: OnlineSubmission) -> list[CaseEvent]:
        attrs: dict[str, Any] = {
            "category": m.category,
            "district": m.district_code,
            "via": m.via,
            "cross_jurisdiction": m.cross_jurisdiction,
        }
        people = [m.applicant] if m.applicant else []
        return [self._report(m.message_id, m.submission_id, m.submitted_at,
                             "dispute-escalation", attrs, people)]  # fmt: skip

    def _OnlineWithdrawal(self, m: OnlineWithdrawal) -> list[CaseEvent]:
        return [self._event(m.message_id, m.submission_id, "case.withdrawn", m.at)]

    def _PetitionRegistration(self, m: PetitionRegistration) -> list[CaseEvent]:
        attrs: dict[str, Any] = {"form": m.form, "petitioners": m.petitioner_count,
                                 "repeat": m.repeat, "matter": m.matter}  # fmt: skip
        if m.respondent_level:
            attrs["respondent_level"] = m.respondent_level
        return [self._report(m.message_id, m.petition_no, m.received_at, "petition", attrs,
                             m.petitioners)]  # fmt: skip

    def _PetitionDecision(self, m: PetitionDecision) -> list[CaseEvent]:
        event_type = PETITION_EVENTS[m.decision]
        return [self._event(m.message_id, m.petition_no, event_type, m.at)]

    def _PoliceTransfer(self, m: PoliceTransfer) -> list[CaseEvent]:
        attrs: dict[str, Any] = {"category": m.category, "station": m.station_code}
        return [self._report(m.message_id, m.incident_no, m.received_at, "dispute-escalation",
                             attrs, m.parties)]  # fmt: skip

    def _CourtDiversion(self, m: CourtDiversion) -> list[CaseEvent]:
        attrs: dict[str, Any] = {"category": m.category, "court": m.court_code, "consent": True}
        return [self._report(m.message_id, m.filing_no, m.filed_at, "dispute-escalation",
                             attrs, m.parties)]  # fmt: skip

    def _CourtMediationOutcome(self, m: CourtMediationOutcome) -> list[CaseEvent]:
        payload = {"agreement_signed": m.agreement_signed}
        return [self._event(m.message_id, m.filing_no, f"mediation.{m.result}", m.at, payload)]

    def _CourtConfirmation(self, m: CourtConfirmation) -> list[CaseEvent]:
        event_type = f"confirmation.{m.decision}"
        return [self._event(m.message_id, None, event_type, m.at, case_id=m.case_ref)]

    def _report(  # noqa: PLR0917 - the six facts of every report, always given in this order
        self,
        message_id: str,
        number: str,
        at: datetime,
        workflow: str,
        attrs: dict[str, Any],
        people: list[Person],
    ) -> CaseEvent:
        key = self.person_key(people)
        if key is not None:
            attrs = {**attrs, "person_key": key}
        payload = {"workflow": workflow, "attributes": attrs}
        return self._event(message_id, number, "case.reported", at, payload)

    def _event(
        self,
        message_id: str,
        number: str | None,
        event_type: str,
        at: datetime,
        payload: dict[str, Any] | None = None,
        *,
        case_id: str | None = None,
    ) -> CaseEvent:
        return CaseEvent(
            event_id=f"{self.channel}:{message_id}",
            case_id=case_id or f"{self.channel}:{number}",
            type=event_type,
            occurred_at=at if at.tzinfo is not None else at.replace(tzinfo=self.ctx.timezone),
            source=self.channel,
            payload=payload or {},
        )

    def person_key(self, people: list[Person]) -> str | None:
        """HMAC-SHA256 of the first party's normalised phone or ID number, or None."""
        secret = self.ctx.person_key_secret
        if secret is None:
            return None
        for person in people:
            raw = person.id_number or person.phone
            if raw:
                normalised = _KEY_CHARS.sub("", raw).upper()
                return hmac.new(secret, normalised.encode(), hashlib.sha256).hexdigest()[:32]
        return None
