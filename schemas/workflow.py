"""The workflow language: what a workflow author may write in `workflows/*.yaml`.

The shape mirrors the `transitions` library's own configuration (`trigger`, `source`, `dest`,
`conditions` become `trigger`, `source`, `dest`, `guard`) so that a reader who knows the library
recognises the file, and so that compilation is a near one-to-one mapping.

These models check *shape* only (types, required keys, value ranges). Whether the names refer to
each other correctly, whether every state is reachable, and whether guards compile is the job of
`engine.validate`, which needs the whole document at once.
"""

from __future__ import annotations

from datetime import time
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

Name = Annotated[
    str,
    StringConstraints(pattern=r"^[A-Za-z][A-Za-z0-9_.\-]*$", min_length=1, max_length=80),
]
"""State, tier, source and event-type names: ASCII so they are safe as metric labels and ids."""

FieldName = Annotated[
    str, StringConstraints(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$", min_length=1, max_length=64)
]
"""Attribute and payload field names: CEL identifiers, so a guard can write `case.attrs.NAME`."""

DurationUnit = Literal["working_days", "calendar_days", "hours", "working_hours"]
FieldType = Literal["string", "int", "number", "bool", "timestamp"]
Outcome = Literal["resolved", "confirmed", "litigation", "referred", "withdrawn", "closed"]
"""How a case can end; the resolution-rate metrics and dashboards count these (domain brief)."""


class _Strict(BaseModel):
    """Unknown keys are refused: a typo in a key must not silently disable a rule."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True, allow_inf_nan=False)
    """Strict: `working_days: "3"` or `terminal: "yes"` is refused, never coerced."""


class DurationSpec(_Strict):
    """A length of time in exactly one unit.

    Day units follow Chinese procedural counting (the start day is not counted, a limit ending on a
    holiday ends on the next working day, days end at 24:00 in the workflow's time zone).
    """

    working_days: int | None = Field(default=None, ge=0, le=3650)
    calendar_days: int | None = Field(default=None, ge=0, le=3650)
    hours: int | None = Field(default=None, ge=0, le=87600)
    working_hours: int | None = Field(default=None, ge=0, le=87600)

    @model_validator(mode="after")
    def _exactly_one_unit(self) -> DurationSpec:
        given = [u for u in self.unit_names() if getattr(self, u) is not None]
        if len(given) != 1:
            raise ValueError(
                "give exactly one of working_days, calendar_days, hours, working_hours"
                + (f" (got {', '.join(given)})" if given else "")
            )
        return self

    @staticmethod
    def unit_names() -> tuple[DurationUnit, ...]:
        return ("working_days", "calendar_days", "hours", "working_hours")

    @property
    def unit(self) -> DurationUnit:
        return next(u for u in self.unit_names() if getattr(self, u) is not None)

    @property
    def amount(self) -> int:
        value = getattr(self, self.unit)
        assert isinstance(value, int)
        return value


ANCHOR_HELP = (
    "When the period starts: `entered` (entering this state, the default), `opened` (the case's "
    "opening, e.g. 12345's limits count from the message), or the name of an earlier state "
    "(its last entry)."
)


class SlaSpec(DurationSpec):
    """The time limit of one state: a duration, when to warn, and what a breach does."""

    warn_at: float = Field(
        default=0.8,
        gt=0,
        lt=1,
        description="Fraction of the allowed time after which `sla.warning` is emitted; for "
        "working-day and working-hour limits a fraction of the working time, so the warning "
        "lands inside office hours.",
    )
    escalate_to: Name | None = Field(
        default=None,
        description="State on a higher rung the case climbs to when the deadline passes.",
    )
    timeout_to: Name | None = Field(
        default=None,
        description="State the case moves to when the deadline passes, on any rung (a lapse, "
        "not an escalation: court mediation that lapses without consent to extend → litigation).",
    )
    counted_from: Name = Field(default="entered", alias="from", description=ANCHOR_HELP)
    owner: Literal["organ", "party"] = Field(
        default="organ",
        description="Whose time it is: a `party` window (a petitioner's 30 days to request "
        "review) that lapses is no breach of the handling organ and leaves `on_time` alone.",
    )
    extension: DurationSpec | None = Field(
        default=None, description="How far one authorised extension moves the deadline."
    )
    max_extensions: int = Field(default=0, ge=0, le=10)


class WindowSpec(DurationSpec):
    """A period within which a transition is accepted (a legal time limit for an application);
    counted like deadlines. After it, the event is refused as `window_closed`."""

    counted_from: Name = Field(default="entered", alias="from", description=ANCHOR_HELP)


class StateSpec(_Strict):
    tier: Name | None = None
    terminal: bool = False
    outcome: Outcome | None = Field(
        default=None,
        description="Outcome reported when a case ends here; required on terminal states.",
    )
    sla: SlaSpec | None = None
    description: str | None = None


class TransitionSpec(_Strict):
    trigger: Name = Field(description="Event type that fires this transition.")
    source: Literal["*"] | Name | list[Name] = Field(
        description="State(s) the case must be in; '*' for every non-terminal state."
    )
    dest: Name
    guard: str | None = Field(
        default=None,
        max_length=2000,
        description="CEL expression over `event`, `case` and `now`; the transition is taken "
        "only when it is true.",
    )
    allowed_sources: list[Name] | None = Field(
        default=None,
        description="Intake channels that may send this event; default: all workflow sources.",
    )
    within: WindowSpec | None = Field(
        default=None,
        description="Accept the event only within this period (e.g. 30 days from the agreement "
        "to apply for judicial confirmation); later ones are refused as `window_closed`.",
    )

    @property
    def source_states(self) -> list[str]:
        return [self.source] if isinstance(self.source, str) else list(self.source)


class RouteSpec(_Strict):
    """One rule routing a new case (`case.reported`) to its entry state; first match wins."""

    dest: Name
    guard: str | None = Field(default=None, max_length=2000)
    allowed_sources: list[Name] | None = None


class ClockSpec(_Strict):
    """Events that stop, restart and extend the SLA clock of the current state."""

    pause: list[Name] = Field(default_factory=list)
    resume: list[Name] = Field(default_factory=list)
    extend: list[Name] = Field(default_factory=list)


class WorkingHoursSpec(_Strict):
    start: time = Field(default=time(9, 0), strict=False)  # "09:00" in YAML is a string
    end: time = Field(default=time(17, 0), strict=False)

    @model_validator(mode="after")
    def _ordered(self) -> WorkingHoursSpec:
        if self.start >= self.end:
            raise ValueError("working hours must start before they end")
        return self


class FieldSpec(_Strict):
    """One declared attribute or payload field: what guards may read, and what the engine
    accepts at run time (a value of another type is refused as `schema_invalid`)."""

    type: FieldType
    enum: list[str] | list[int] | None = Field(
        default=None, min_length=1, description="The only values allowed (string or int fields)."
    )
    required: bool = False
    description: str | None = None


class EventSpec(_Strict):
    """One event type the workflow accepts, and the payload fields its guards may read."""

    payload: dict[FieldName, FieldSpec] = Field(default_factory=dict)
    allowed_sources: list[Name] | None = Field(
        default=None,
        description="Channels that may send this event at all (e.g. only the center pauses or "
        "extends a clock); a transition's own allowed_sources narrow it further.",
    )
    description: str | None = None


class WorkflowSpec(_Strict):
    """A whole workflow file."""

    name: Name
    version: int = Field(ge=1)
    preview: bool = Field(
        default=False,
        description="Loaded, validated and testable (scenarios, graph, a migration target), but "
        "new cases keep taking the newest version that is not a preview: how a new ladder is "
        "trialled before it becomes the default. Remove the flag to promote it.",
    )
    description: str | None = None
    timezone: str = "Asia/Shanghai"
    calendar: Literal["cn"] = "cn"
    working_hours: WorkingHoursSpec = Field(default_factory=WorkingHoursSpec)
    tiers: list[Name] = Field(min_length=1, description="The ladder, lowest rung first.")
    sources: list[Name] = Field(min_length=1, description="Intake channels this workflow accepts.")
    states: dict[Name, StateSpec] = Field(min_length=1)
    routing: list[RouteSpec] = Field(min_length=1)
    transitions: list[TransitionSpec] = Field(default_factory=list)
    clock: ClockSpec = Field(default_factory=ClockSpec)
    attributes: dict[FieldName, FieldSpec] = Field(
        default_factory=dict,
        description="The case attributes (`case.attrs`) new cases may carry and guards may read.",
    )
    events: dict[Name, EventSpec] = Field(
        default_factory=dict,
        description="Every event type this workflow receives (transition triggers and clock "
        "events), with its payload fields; `case.reported` is built in.",
    )
    lateness: dict[Name, DurationSpec] = Field(
        default_factory=dict,
        description="Allowed lateness per source, in hours: how long after an act its event may "
        "still be delivered (a grid officer's app syncing when it has signal). A timer of a case "
        "fires that much after its due instant, for the largest lateness among the sources that "
        "may act on the case's state, so an act made in time but delivered late still counts; "
        "the records keep the due instant.",
    )
    correction: DurationSpec | None = Field(
        default=None,
        description="Correction horizon, in hours or calendar_days (wall time): an event that "
        "arrives after something later in its case already took effect (a timer fired, a later "
        "act was applied), and happened no longer ago than this before the case's clock, "
        "re-derives the case in domain-time order; the records no longer true are retracted "
        "(`record.retracted`) and the corrected ones follow. Each case keeps a checkpoint per "
        "input within the horizon for this. Without it (or past it) a late event is applied at "
        "the case's clock, marked `late` with its lag.",
    )
