"""Building blocks shared by the channel formats."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

ExternalId = Annotated[
    str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.:/\-]*$", min_length=1, max_length=80)
]
"""Ticket, report, filing and message numbers: ASCII, so they can become part of case ids."""

Code = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_.\-]{1,40}$")]
"""Administrative, grid, court and station codes."""

Category = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]{0,39}$")]
"""A dispute or order category from the channel's code list (snake_case)."""

FreeText = Annotated[str, Field(max_length=20_000)]
"""Descriptions as typed by people: may contain names and numbers, never copied onward."""


class Native(BaseModel):
    """Base of every native message: extra fields are ignored, not refused (see package doc)."""

    model_config = ConfigDict(extra="ignore", frozen=True, str_strip_whitespace=True)


class Person(Native):
    """A party as upstream systems send it. Only a keyed hash of the phone or ID number leaves
    the adapter (to link repeat reports by the same person, 同人同事); nothing else does."""

    name: Annotated[str, Field(max_length=100)] | None = None
    phone: Annotated[str, Field(max_length=30)] | None = None
    id_number: Annotated[str, Field(max_length=30)] | None = None
