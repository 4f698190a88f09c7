"""The channel language: what an integrator writes in `workflows/channels/<channel>.yaml`.

A channel file describes one upstream system's native messages (their kinds and fields) and how
each kind becomes canonical case events: which event type, which case it belongs to, which
workflow a new case opens, and which fields may travel onward as attributes or payload. One
generic interpreter (`engine.intake`) runs every file, so adding a channel or routing a category
to its own workflow needs no Python.

Personal data is the one thing a channel file cannot leak by accident: `text`, `person` and
`persons` fields are personal unless declared `personal: false`, and `fengqiao validate` refuses
a personal field mapped to an attribute or payload field. Parties can only feed the keyed
`person_key` hash.

These models check shape only; names are checked against the workflows by
`engine.channel_checks`.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

from schemas.workflow import FieldName, Name

NativeType = Literal[
    "id", "code", "category", "string", "text", "int", "bool", "timestamp", "person", "persons"
]
"""Field types of native messages (see `FieldDecl.type`)."""

PERSONAL_TYPES = frozenset({"text", "person", "persons"})
"""Personal unless declared otherwise: free text may hold names and numbers; parties are people."""

Scalar = str | int | bool
KindName = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]{0,39}$")]
Cel = Annotated[str, StringConstraints(min_length=1, max_length=2000)]
EventTypeText = Annotated[
    str, StringConstraints(pattern=r"^[A-Za-z{][A-Za-z0-9_.{}\-]*$", min_length=1, max_length=80)
]
"""An event type, or a template with one `{field}` placeholder (`order.{action}`)."""


class _Strict(BaseModel):
    """Unknown keys are refused, values are never coerced (as in workflow files)."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True, allow_inf_nan=False)


class FieldDecl(_Strict):
    """One field of a native message.

    Types: `id` (message, ticket and case numbers: ASCII, up to 80 characters, safe inside case
    ids), `code` (administrative, grid, court and station codes), `category` (snake_case code
    list values), `string` (short text, usually with `enum`), `text` (free text as people type it,
    personal), `int`, `bool`, `timestamp` (RFC 3339; without an offset it is read in the channel's
    time zone), `person` (a party: name, phone, id_number; personal), `persons` (a list of them).
    """

    type: NativeType
    required: bool | None = Field(
        default=None,
        description="Default: required unless a default is given or the type is text, person "
        "or persons (which default to empty).",
    )
    default: Scalar | None = None
    enum: list[str] | list[int] | list[bool] | None = Field(default=None, min_length=1)
    minimum: int | None = None
    maximum: int | None = None
    max_items: int = Field(default=50, ge=1, le=10_000, description="For persons only.")
    personal: bool | None = Field(
        default=None,
        description="Whether the field may hold personal data (default: true for text, person, "
        "persons and a string without an enum). Personal fields never leave the adapter, "
        "except parties into the keyed person_key hash.",
    )
    description: str | None = None

    @property
    def is_personal(self) -> bool:
        """Free text and parties are; so is a `string` with no `enum` (it could hold a name)."""
        if self.personal is not None:
            return self.personal
        return self.type in PERSONAL_TYPES or (self.type == "string" and self.enum is None)

    @property
    def is_required(self) -> bool:
        if self.required is not None:
            return self.required
        return self.default is None and self.type not in PERSONAL_TYPES


class TypeFromField(_Strict):
    """The event type chosen by the value of one field (every value must be mapped)."""

    field: FieldName
    map: dict[str, Name] = Field(min_length=1)


class WorkflowRule(_Strict):
    """New cases open this workflow when `when` holds (the first rule that holds wins).

    A rule that cannot be evaluated refuses the message (as guards do): one that reads an
    optional field should test it first, `message.n != null && message.n > 3`."""

    when: Cel | None = None
    use: Name


Value = FieldName | int | bool | dict[Literal["value"], Scalar]
"""A field's name (its value is copied, and left out when empty), or a constant: a number, true
or false, or `{value: TEXT}` for a constant text."""


class EmitSpec(_Strict):
    """One canonical event a message of this kind becomes (when `when` holds).

    `type` is a literal (`case.withdrawn`), a template naming one enum field (`order.{action}`),
    or a map from one field's values (`{field: decision, map: {routed: petition.routed}}`).
    A `case.reported` event opens a case: it names the `workflow` (or rules choosing one), the
    `attributes` the case keeps, and which `person_key` fields feed the keyed hash.
    """

    type: EventTypeText | TypeFromField
    when: Cel | None = None
    id_suffix: Annotated[str, StringConstraints(pattern=r"^[a-z0-9_\-]{1,20}$")] | None = Field(
        default=None,
        description="Appended to the event id as '/SUFFIX'; needed when one message yields "
        "several events.",
    )
    payload: dict[FieldName, Value] = Field(default_factory=dict)
    workflow: Name | Annotated[list[WorkflowRule], Field(min_length=1)] | None = None
    attributes: dict[FieldName, Value] = Field(default_factory=dict)
    person_key: list[FieldName] = Field(default_factory=list)


class KindSpec(_Strict):
    """One native message kind (the value of the message's `kind` field)."""

    description: str | None = None
    fields: dict[FieldName, FieldDecl] = Field(min_length=1)
    message_id: FieldName = Field(
        default="message_id",
        description="The field unique per message; a re-send reuses it (duplicates are dropped).",
    )
    case_number: FieldName | None = Field(
        default=None,
        description="The upstream number of the case (ticket, report, filing); the case id is "
        "'<channel>:<number>'.",
    )
    case_id: FieldName | None = Field(
        default=None, description="A field holding a whole Fengqiao case id (any channel's)."
    )
    occurred_at: FieldName = Field(description="The timestamp field the events carry.")
    emits: list[EmitSpec] = Field(
        default_factory=list, description="Empty: the kind is accepted and ignored."
    )

    @model_validator(mode="after")
    def _one_case_reference(self) -> KindSpec:
        if (self.case_number is None) == (self.case_id is None):
            raise ValueError("give exactly one of case_number and case_id")
        return self


class ChannelSpec(_Strict):
    """A whole channel file: one upstream system, its topic `fengqiao.intake.<channel>`."""

    channel: Name = Field(description="The source name of its events and its topic's suffix.")
    description: str = ""
    timezone: str = Field(
        default="Asia/Shanghai", description="The zone of timestamps sent without an offset."
    )
    kinds: dict[KindName, KindSpec] = Field(min_length=1)
