"""The six intake channels and the messages each one sends (discriminated by `kind`).

Assumptions about the upstream systems are written into the field descriptions, so they reach
integrators through the exported JSON Schema and AsyncAPI document.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field, TypeAdapter

from schemas.intake.common import Category, Code, ExternalId, FreeText, LocalTime, Native, Person

# -- 12345 government service hotline (接诉即办) ------------------------------------------------


class HotlineWorkOrder(Native):
    """A work order created by the 12345 center from a call, the website or the mini-program."""

    kind: Literal["work_order"]
    message_id: ExternalId = Field(description="Unique per message; a re-send reuses it.")
    ticket_no: ExternalId = Field(description="The work-order number (工单号), stable for life.")
    received_at: LocalTime
    urgency: Literal["urgent", "general"] = Field(
        description="The center's classification: urgent = 2 h online response, 24 h handling."
    )
    category: Category
    district_code: Code
    street_code: Code | None = None
    content: FreeText = Field(default="", description="The caller's words; never copied onward.")
    caller: Person | None = Field(default=None, description="Caller contact; only a keyed hash.")


class HotlineUpdate(Native):
    """A step in the life of an order, entered by the center or by the handling body."""

    kind: Literal["order_update"]
    message_id: ExternalId
    ticket_no: ExternalId
    at: LocalTime
    action: Literal[
        "responded", "dispatched", "returned", "replied", "extended", "escalated",
        "redirected", "withdrawn",
    ]  # fmt: skip
    handler_code: Code | None = Field(default=None, description="The handling body's code.")
    note: FreeText = ""


class HotlineFollowUp(Native):
    """The call-back after a reply (回访): a satisfaction rating, or the caller unreachable."""

    kind: Literal["follow_up"]
    message_id: ExternalId
    ticket_no: ExternalId
    at: LocalTime
    result: Literal["rated", "unreachable"]
    rating: Literal["satisfied", "basically_satisfied", "unsatisfied"] | None = None
    reopen: bool = Field(default=False, description="Unsatisfied and the center reopens it.")


HotlineMessage = Annotated[
    HotlineWorkOrder | HotlineUpdate | HotlineFollowUp, Field(discriminator="kind")
]

# -- grid officers' app (平安通) ---------------------------------------------------------------


class GridPatrolReport(Native):
    """A grid officer's patrol report of a dispute found or brought to them."""

    kind: Literal["patrol_report"]
    message_id: ExternalId
    report_no: ExternalId
    officer_id: Code
    grid_code: Code
    reported_at: LocalTime
    category: Category
    risk: Literal["green", "yellow", "red"] = "green"
    resolved_on_spot: bool = Field(
        default=False, description="Settled on the spot (就地化解): reported and closed at once."
    )
    description: FreeText = ""
    parties: list[Person] = Field(default_factory=list, max_length=50)


class GridMediationResult(Native):
    """The outcome of the grid's mediation of an open report."""

    kind: Literal["mediation_result"]
    message_id: ExternalId
    report_no: ExternalId
    at: LocalTime
    result: Literal["succeeded", "failed"]
    agreement_signed: bool = False
    note: FreeText = ""


GridMessage = Annotated[GridPatrolReport | GridMediationResult, Field(discriminator="kind")]

# -- online platform / mini-program (网上枫桥) -------------------------------------------------


class OnlineSubmission(Native):
    """A dispute submitted online or by scanning a code."""

    kind: Literal["submission"]
    message_id: ExternalId
    submission_id: ExternalId
    submitted_at: LocalTime
    via: Literal["website", "mini_program", "scan_code"] = "website"
    category: Category
    district_code: Code
    cross_jurisdiction: bool = False
    description: FreeText = ""
    applicant: Person | None = None


class OnlineWithdrawal(Native):
    kind: Literal["withdrawal"]
    message_id: ExternalId
    submission_id: ExternalId
    at: LocalTime


OnlineMessage = Annotated[OnlineSubmission | OnlineWithdrawal, Field(discriminator="kind")]

# -- petition office (信访: letters, visits, online) --------------------------------------------


class PetitionRegistration(Native):
    """A petition registered in the petition information system."""

    kind: Literal["registration"]
    message_id: ExternalId
    petition_no: ExternalId
    received_at: LocalTime
    form: Literal["letter", "visit", "online"]
    petitioner_count: int = Field(ge=1, le=100_000, description="Five or more: group petition.")
    repeat: bool = Field(default=False, description="The same matter was petitioned before.")
    matter: Category
    respondent_level: Literal["township", "county", "city"] | None = None
    petitioners: list[Person] = Field(default_factory=list, max_length=200)
    content: FreeText = ""


class PetitionDecision(Native):
    """A step decided or recorded by a petition organ (routing, acceptance, opinions)."""

    kind: Literal["decision"]
    message_id: ExternalId
    petition_no: ExternalId
    at: LocalTime
    decision: Literal[
        "routed", "redirected", "accepted", "not_accepted", "extended", "answered",
        "review_requested", "review_answered", "rereview_requested", "rereview_answered",
        "satisfied", "concluded", "withdrawn",
    ]  # fmt: skip
    note: FreeText = ""


PetitionMessage = Annotated[PetitionRegistration | PetitionDecision, Field(discriminator="kind")]

# -- police non-emergency transfers (110 → mediation, 警调对接) ---------------------------------


class PoliceTransfer(Native):
    """A 110 incident that needs mediation rather than policing, transferred by a station."""

    kind: Literal["transfer"]
    message_id: ExternalId
    incident_no: ExternalId
    station_code: Code
    received_at: LocalTime
    category: Category
    summary: FreeText = ""
    parties: list[Person] = Field(default_factory=list, max_length=50)


PoliceMessage = PoliceTransfer

# -- court: diversion to pre-litigation mediation, outcomes, judicial confirmation -------------


class CourtDiversion(Native):
    """A filing diverted to pre-litigation mediation (诉前调解); needs the parties' consent."""

    kind: Literal["diversion"]
    message_id: ExternalId
    filing_no: ExternalId
    court_code: Code
    filed_at: LocalTime
    category: Category
    parties_consent: Literal[True] = Field(
        description="Pre-litigation mediation needs consent; without it the court files the case."
    )
    parties: list[Person] = Field(default_factory=list, max_length=50)


class CourtMediationOutcome(Native):
    """The entrusted mediator's outcome; failure means the court registers the case (转立案)."""

    kind: Literal["mediation_outcome"]
    message_id: ExternalId
    filing_no: ExternalId
    at: LocalTime
    result: Literal["succeeded", "failed"]
    agreement_signed: bool = True


class CourtConfirmation(Native):
    """The court's decision on an application for judicial confirmation (司法确认) of an
    agreement reached at any rung: the agreement names the Fengqiao case it came from."""

    kind: Literal["confirmation_decision"]
    message_id: ExternalId
    case_ref: ExternalId = Field(description="The Fengqiao case id the agreement belongs to.")
    at: LocalTime
    decision: Literal["granted", "refused"]


CourtMessage = Annotated[
    CourtDiversion | CourtMediationOutcome | CourtConfirmation, Field(discriminator="kind")
]

ChannelMessage = (
    HotlineWorkOrder | HotlineUpdate | HotlineFollowUp | GridPatrolReport | GridMediationResult
    | OnlineSubmission | OnlineWithdrawal | PetitionRegistration | PetitionDecision
    | PoliceTransfer | CourtDiversion | CourtMediationOutcome | CourtConfirmation
)  # fmt: skip

CHANNELS: dict[str, TypeAdapter[Any]] = {
    "hotline-12345": TypeAdapter(HotlineMessage),
    "grid": TypeAdapter(GridMessage),
    "online": TypeAdapter(OnlineMessage),
    "petition": TypeAdapter(PetitionMessage),
    "police": TypeAdapter(PoliceMessage),
    "court": TypeAdapter(CourtMessage),
}
"""Channel name (= the `source` of its canonical events) → the parser of its topic's messages."""
