"""What the view's API answers, as pydantic models (they make its OpenAPI document), and the
same data as CSV rows.

The models are the wire format, apart from the read model's own types (`CaseRow`, `Forecast`):
a column added to the tables is not published until it is added here. Nothing here adds data
to what the read model holds: no personal data can come in through the API's answers.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Iterable, Iterator
from datetime import date, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from consumers.view.counts import BacklogRow, Forecast
from consumers.view.fold import CaseRow
from consumers.view.queries import Cursor, HistoryEntry, ListStatus, is_at_risk, is_overdue


class _Out(BaseModel):
    model_config = ConfigDict(frozen=True)


class CaseOut(_Out):
    """One case's row (DESIGN §8), instants in UTC, and whether it is overdue or at risk now."""

    case_id: str
    workflow: str
    workflow_version: int
    state: str
    tier: str | None
    status: Literal["open", "closed"]
    opened_at: datetime
    entered_at: datetime
    updated_at: datetime
    deadline: datetime | None
    warning_at: datetime | None
    warned: bool
    breached: bool
    paused: bool
    extensions: int
    escalations: int
    breaches: int
    on_time: bool | None
    outcome: str | None
    resolved_tier: str | None
    closed_at: datetime | None
    attributes: dict[str, Any] = Field(
        description="The non-personal attributes of the report that opened the case."
    )
    ticket: str = Field(description="The upstream number (ticket, report, filing) in the id.")
    overdue: bool = Field(description="Open, running, and past its deadline (or breached).")
    at_risk: bool = Field(description="Open, running, warned of, its deadline not yet past.")

    @classmethod
    def of(cls, row: CaseRow, now: datetime) -> CaseOut:
        fields = {name: getattr(row, name) for name in CASE_COLUMNS if name not in _DERIVED}
        fields["attributes"] = dict(row.attributes)
        return cls(**fields, overdue=is_overdue(row, now), at_risk=is_at_risk(row, now))


_DERIVED = ("overdue", "at_risk")
CASE_COLUMNS = tuple(CaseOut.model_fields)
"""The CSV columns of a case list: the JSON fields, in the same order."""


class CasePage(_Out):
    status: ListStatus
    now: datetime = Field(description="The instant `overdue` and `at_risk` were judged at.")
    items: list[CaseOut]
    next: str | None = Field(description="Pass as `after` for the next page; null on the last.")


class HistoryItem(_Out):
    seq: int
    record_id: str
    type: str
    occurred_at: datetime
    retracted: bool = Field(description="A later `record.retracted` took this record back.")
    record: dict[str, Any] = Field(description="The record as the engine published it.")

    @classmethod
    def of(cls, entry: HistoryEntry) -> HistoryItem:
        return cls(seq=entry.seq, record_id=entry.record_id, type=entry.type,
                   occurred_at=entry.occurred_at, retracted=entry.retracted,
                   record=dict(entry.record))  # fmt: skip


HISTORY_COLUMNS = tuple(HistoryItem.model_fields)


class CaseHistory(_Out):
    case_id: str
    items: list[HistoryItem]


class BacklogRung(_Out):
    workflow: str
    tier: str | None
    state: str
    open: int
    paused: int
    overdue: int
    at_risk: int


BACKLOG_COLUMNS = tuple(BacklogRung.model_fields)


class BacklogTotals(_Out):
    open: int
    paused: int
    overdue: int
    at_risk: int


class Backlog(_Out):
    """The open cases per rung (workflow, tier, state), and over all rungs the caller sees."""

    now: datetime
    rungs: list[BacklogRung]
    totals: BacklogTotals


def backlog_out(rows: list[BacklogRow], now: datetime) -> Backlog:
    rungs = [BacklogRung(**vars(r)) for r in rows]
    totals = BacklogTotals(
        open=sum(r.open for r in rows), paused=sum(r.paused for r in rows),
        overdue=sum(r.overdue for r in rows), at_risk=sum(r.at_risk for r in rows),
    )  # fmt: skip
    return Backlog(now=now, rungs=rungs, totals=totals)


class ForecastDay(_Out):
    day: date
    count: int


class ForecastRung(_Out):
    workflow: str
    tier: str | None
    state: str
    count: int


class ForecastCell(_Out):
    day: date
    workflow: str
    tier: str | None
    state: str
    count: int


FORECAST_COLUMNS = tuple(ForecastCell.model_fields)


class ForecastOut(_Out):
    """Open, running cases whose deadline falls within the horizon: the breaches to expect if
    nobody acts. Days are calendar days in `zone`; a deadline at 00:00 counts for the day
    before (days end at 24:00)."""

    now: datetime
    until: datetime
    hours: int
    zone: str
    total: int
    by_day: list[ForecastDay]
    by_rung: list[ForecastRung]
    cells: list[ForecastCell] = Field(description="Per day and rung (what the CSV holds).")


def forecast_out(result: Forecast, hours: int) -> ForecastOut:
    return ForecastOut(
        now=result.now,
        until=result.until,
        hours=hours,
        zone=result.zone.key,
        total=result.total,
        by_day=[ForecastDay(day=day, count=count) for day, count in result.days],
        by_rung=[
            ForecastRung(workflow=wf, tier=tier, state=state, count=count)
            for (wf, tier, state), count in result.rungs
        ],
        cells=[ForecastCell(**vars(cell)) for cell in result.cells],
    )


def encode_cursor(cursor: Cursor) -> str:
    """An opaque `after` value: where the page ended. Not signed: it only says where to start,
    and the scope is applied by the query whatever it says."""
    deadline = cursor.deadline.isoformat() if cursor.deadline is not None else None
    text = json.dumps([deadline, cursor.case_id], ensure_ascii=False, separators=(",", ":"))
    return base64.urlsafe_b64encode(text.encode("utf-8")).rstrip(b"=").decode("ascii")


def decode_cursor(value: str) -> Cursor:
    """The cursor of `encode_cursor`; ValueError when the value is not one."""
    try:
        text = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4)).decode("utf-8")
        deadline, case_id = json.loads(text)
        moment = datetime.fromisoformat(deadline) if deadline is not None else None
    except (binascii.Error, ValueError, TypeError) as err:
        raise ValueError("not a cursor of this API") from err
    if not isinstance(case_id, str) or (moment is not None and moment.tzinfo is None):
        raise ValueError("not a cursor of this API")
    return Cursor(moment, case_id)


def csv_cells(model: BaseModel, columns: Iterable[str]) -> list[Any]:
    """A model's values as CSV cells, as in its JSON: instants in ISO 8601, `true`/`false`,
    objects as JSON text, null as an empty cell."""
    data = model.model_dump(mode="json")
    cells: list[Any] = []
    for name in columns:
        value = data[name]
        if isinstance(value, bool | dict | list):
            value = json.dumps(value, ensure_ascii=False, sort_keys=True)
        cells.append(value)
    return cells


def csv_rows(models: Iterable[BaseModel], columns: tuple[str, ...]) -> Iterator[list[Any]]:
    for model in models:
        yield csv_cells(model, columns)
