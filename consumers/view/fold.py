"""A case's row as a pure fold over its published records: `row = fold(history)`.

The read model must equal what the engine holds, yet it may only read what the engine publishes
(DESIGN §8). So every field of a row is derived here from the case records of DESIGN §4, and
nothing else: no I/O, no wall clock, so the same history always gives the same row, whether the
row is built one record at a time as records arrive (`step`) or again from the whole history
after a retraction (`fold`). The property tests hold the two to each other.

Records are plain JSON objects (dicts), read by their `type`: the view must keep working when
the engine adds a record type the pydantic models of this checkout do not know yet
(`record.retracted` is such a type), and unknown types are kept in the history but change
nothing here.

Retractions (DESIGN §4, §6): `record.retracted` names by `retracts` an earlier record of the same
case that a late event proved untrue. The rule every stateful consumer follows: the named record
leaves the case's history, and the case's row is the fold over the *live* records (neither
retracted nor retractions) in `seq` order. A retraction is final: one that names another
retraction revives nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, Literal, NamedTuple

RETRACTION = "record.retracted"

Record = Mapping[str, Any]
"""One case record as decoded from JSON."""

TierOrder = Mapping[tuple[str, int], Sequence[str]]
"""The tiers of each workflow version, lowest rung first: `(workflow, version) → tiers`.

Records do not say whether a transition climbed the ladder (only `case.closed` carries the
count), so the open cases' `escalations` need the ladder's order, taken from the workflows."""

Status = Literal["open", "closed"]


class CaseRow(NamedTuple):
    """What the view shows of one case. Instants are aware datetimes in UTC.

    A NamedTuple, not a frozen dataclass: the fold copies a row once or twice per record, and
    `_replace` costs a fifth of `dataclasses.replace` (which took a fifth of a batch).

    `last_seq` is the highest `seq` of any record of the case seen (live, retracted or a
    retraction): a record at or below it has been applied already. `updated_at` is the domain
    time of the latest live record (not processing time: a rebuild gives the same rows).
    `attributes` are not in any record: the projection copies them from the report that opened
    the case (`opened_by`, read from `fengqiao.case-events`: consumers/view/reports.py), so the
    fold leaves them empty and a row stepped from a stored row keeps them.
    """

    case_id: str
    workflow: str
    workflow_version: int
    state: str
    tier: str | None
    status: Status
    opened_at: datetime
    entered_at: datetime
    updated_at: datetime
    last_seq: int
    deadline: datetime | None = None
    warning_at: datetime | None = None
    warned: bool = False
    breached: bool = False
    """The limit of the current stay has passed (a breach record came, no transition since)."""
    paused: bool = False
    extensions: int = 0
    escalations: int = 0
    breaches: int = 0
    """Breaches by the handling organ (a party's lapsed window is not one)."""
    on_time: bool | None = None
    """From `case.closed`: no organ breach in the case's life; None while open."""
    outcome: str | None = None
    resolved_tier: str | None = None
    closed_at: datetime | None = None
    attributes: Mapping[str, Any] = {}
    ticket: str = ""
    """The upstream number (ticket, report, filing) a caller searches by: `ticket_of(case_id)`."""
    opened_by: str = ""
    """The `caused_by` of the record that opened the case: the `event_id` of its report."""


def ticket_of(case_id: str) -> str:
    """The upstream number in a case id: the intake adapters make ids `<channel>:<number>`
    (engine/intake.py), so a caller with the 12345 hotline's ticket number finds the case
    without knowing the prefix; an id without a channel is its own number."""
    return case_id.partition(":")[2] or case_id


def instant(text: str) -> datetime:
    """An RFC 3339 instant from a record, in UTC (rows compare and sort across offsets)."""
    moment = datetime.fromisoformat(text)
    if moment.tzinfo is None:  # astimezone would take the machine's zone: refuse instead
        raise ValueError(f"an instant without a UTC offset: {text!r}")
    return moment.astimezone(UTC)


def is_retraction(record: Record) -> bool:
    return record.get("type") == RETRACTION


def retracted_ids(history: Iterable[Record]) -> set[str]:
    """The `record_id`s named by the retractions in a case's history."""
    return {str(r["retracts"]) for r in history if is_retraction(r) and r.get("retracts")}


def live_records(history: Iterable[Record]) -> list[Record]:
    """The records that count for the row, in `seq` order: neither retracted nor retractions."""
    ordered = sorted(history, key=lambda r: int(r["seq"]))
    gone = retracted_ids(ordered)
    return [r for r in ordered if not is_retraction(r) and r["record_id"] not in gone]


def fold(history: Iterable[Record], tiers: TierOrder) -> CaseRow | None:
    """The row of one case from its whole history (retractions included, any order); None when
    no live record remains (every record of the case was retracted)."""
    records = list(history)
    row: CaseRow | None = None
    for record in live_records(records):
        row = step(row, record, tiers)
    if row is None or not records:
        return row
    return row._replace(last_seq=max(int(r["seq"]) for r in records))


def step(row: CaseRow | None, record: Record, tiers: TierOrder) -> CaseRow | None:
    """The row after one more live record (`row` None: the case's first record). A retraction
    cannot be stepped over (it changes the past): call `fold` on the whole history instead."""
    if is_retraction(record):
        raise ValueError("a retraction changes the past: fold the whole history instead")
    at = instant(record["occurred_at"])
    if row is None:
        if record.get("type") not in ("case.transitioned", "case.migrated"):
            return None  # the case's opening was retracted: nothing to show yet
        row = _opened(record, at)
    row = row._replace(workflow_version=int(record["workflow_version"]), updated_at=at,
                  last_seq=max(row.last_seq, int(record["seq"])))  # fmt: skip
    change = _CHANGES.get(record.get("type", ""))
    # A record type this view does not know is kept in the history and changes nothing here.
    return change(row, record, at, tiers) if change is not None else row


def _opened(record: Record, at: datetime) -> CaseRow:
    return CaseRow(
        case_id=record["case_id"], workflow=record["workflow"],
        workflow_version=int(record["workflow_version"]), state=record["to_state"],
        tier=record.get("to_tier"), status="open", opened_at=at, entered_at=at,
        updated_at=at, last_seq=int(record["seq"]), ticket=ticket_of(record["case_id"]),
        opened_by=str(record.get("caused_by", "")),
    )  # fmt: skip


def _transitioned(row: CaseRow, record: Record, at: datetime, tiers: TierOrder) -> CaseRow:
    from_tier, to_tier = record.get("from_tier"), record.get("to_tier")
    climbed = _climbed(tiers.get((row.workflow, row.workflow_version)), from_tier, to_tier)
    return row._replace(state=record["to_state"], tier=to_tier, entered_at=at,
                   escalations=row.escalations + int(climbed), breached=False,
                   **_sla_fields(record.get("sla"), at))  # fmt: skip


def _warning(row: CaseRow, _record: Record, _at: datetime, _tiers: TierOrder) -> CaseRow:
    return row._replace(warned=True)


def _breached(row: CaseRow, record: Record, _at: datetime, _tiers: TierOrder) -> CaseRow:
    """A party's lapsed window is reported, but is no breach by the organ (`breaches`)."""
    organ = record.get("owner", "organ") == "organ"
    return row._replace(breached=True, warned=True, breaches=row.breaches + int(organ))


def _sla_changed(row: CaseRow, record: Record, at: datetime, _tiers: TierOrder) -> CaseRow:
    """Paused, resumed or extended: a deadline moved ahead arms its warning again."""
    sla = _sla_fields(record.get("sla"))
    return row._replace(warned=row.warned and _passed(sla["warning_at"], at), **sla)


def _closed(row: CaseRow, record: Record, at: datetime, _tiers: TierOrder) -> CaseRow:
    """`case.closed` carries the engine's own count of escalations: it wins over ours."""
    return row._replace(status="closed", outcome=record["outcome"],
                   resolved_tier=record.get("resolved_tier"),
                   escalations=int(record["escalations"]), on_time=bool(record["on_time"]),
                   closed_at=at, deadline=None, warning_at=None, paused=False,
                   extensions=0)  # fmt: skip


def _migrated(row: CaseRow, record: Record, at: datetime, _tiers: TierOrder) -> CaseRow:
    """A migration keeps the stay (no new `entered_at`). Its limit is either the old one kept
    (policy `keep`, or `earliest` when the old deadline is the earlier: the deadline does not
    move, and warning and breach stay as they were) or a recomputed one, fresh."""
    sla = _sla_fields(record.get("sla"))
    kept = (
        record.get("sla_policy") != "recompute"
        and row.deadline is not None
        and sla["deadline"] == row.deadline
    )
    warned = row.warned if kept else _passed(sla["warning_at"], at)
    breached = row.breached and kept
    return row._replace(state=record["to_state"], tier=record.get("to_tier"), warned=warned,
                   breached=breached, **sla)  # fmt: skip


def _passed(moment: datetime | None, at: datetime) -> bool:
    return moment is not None and moment <= at


def _sla_fields(sla: Mapping[str, Any] | None, entered: datetime | None = None) -> dict[str, Any]:
    """Deadline, warning instant, pause and extensions of the current stay from a record's `sla`
    (None: the state has no limit). `entered`: a new stay, whose warning counts as given when
    the limit had passed already on entry (the engine then breaches without warning first)."""
    fields: dict[str, Any] = {"deadline": None, "warning_at": None, "paused": False,
                              "extensions": 0}  # fmt: skip
    if sla is not None:
        fields = {
            "deadline": instant(sla["deadline"]),
            "warning_at": instant(sla["warning_at"]),
            "paused": bool(sla.get("paused", False)),
            "extensions": int(sla.get("extensions", 0)),
        }
    if entered is not None:
        fields["warned"] = _passed(fields["deadline"], entered)
    return fields


_CHANGES: dict[str, Callable[[CaseRow, Record, datetime, TierOrder], CaseRow]] = {
    "case.transitioned": _transitioned,
    "case.migrated": _migrated,
    "sla.warning": _warning,
    "sla.breached": _breached,
    "sla.changed": _sla_changed,
    "case.closed": _closed,
}


def _climbed(ladder: Sequence[str] | None, from_tier: str | None, to_tier: str | None) -> bool:
    """Whether a transition moved the case up its ladder (the engine's `escalations`). Without
    the ladder (a workflow the view was not given) any change of rung counts."""
    if from_tier is None or to_tier is None or from_tier == to_tier:
        return False
    if ladder is None or from_tier not in ladder or to_tier not in ladder:
        return True
    return ladder.index(to_tier) > ladder.index(from_tier)
