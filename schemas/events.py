"""The canonical input event (DESIGN §3): what every intake adapter produces.

Upstream retries reuse `event_id`, which is how the engine recognises a duplicate. The `source` is
filled in by the adapter from the topic the message arrived on, never trusted from the sender.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, StringConstraints

from schemas.workflow import Name

Identifier = Annotated[str, StringConstraints(min_length=1, max_length=200)]
Scalar = str | int | float | bool


class CaseEvent(BaseModel):
    """One thing that happened to one dispute case. Kafka key = `case_id`."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    event_id: Identifier = Field(description="Unique per logical event; retries reuse it.")
    case_id: Identifier = Field(description="Stable id of the dispute case.")
    type: Name = Field(description="Event type, e.g. case.reported, mediation.failed.")
    occurred_at: AwareDatetime = Field(description="Domain time, RFC 3339 with an offset.")
    source: Name = Field(description="Intake channel or handling system that emitted it.")
    payload: dict[str, Any] = Field(default_factory=dict)


class CaseReported(BaseModel):
    """Payload of `case.reported`: which workflow the case follows and what routing may read.

    `attributes` become the case's attributes (`case.attrs` in guards). They must be bounded,
    non-personal facts (category, district code, urgency): names, phone numbers and ID numbers
    never enter the engine.
    """

    model_config = ConfigDict(extra="allow", frozen=True)

    workflow: Name
    attributes: Annotated[dict[Name, Scalar], Field(max_length=50)] = Field(default_factory=dict)


PAYLOAD_MODELS: dict[str, type[BaseModel]] = {"case.reported": CaseReported}
"""Payload models by event type; types not listed carry a free-form payload."""


MIGRATION_TYPE = "case.migrated"
MIGRATION_SOURCE = "migrate"
"""The source of migration events: only `fengqiao migrate` writes them, to the case-events topic
(protect that topic with an ACL like the intake topics)."""


class CaseMigration(BaseModel):
    """Payload of `case.migrated`: move an open case to another version of its workflow."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    from_version: int = Field(ge=1)
    to_version: int = Field(ge=1)
    state_map: dict[Name, Name] = Field(
        min_length=1, description="Old state → new state, for every state open cases may be in."
    )
    sla: Literal["keep", "recompute", "earliest"] = Field(
        description="keep: the deadline instant stays; recompute: count the new state's limit "
        "from when the case entered the old one; earliest: the earlier of the two."
    )


PAYLOAD_MODELS[MIGRATION_TYPE] = CaseMigration
