"""The canonical input event (DESIGN §3): what every intake adapter produces.

Upstream retries reuse `event_id`, which is how the engine recognises a duplicate. The `source` is
filled in by the adapter from the topic the message arrived on, never trusted from the sender.
"""

from __future__ import annotations

from typing import Annotated, Any

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
