"""`fengqiao simulate`: file in, records out, through the pure replay in `engine.replay`.

Two formats of the same records: JSON lines (the default, byte for byte what `run` publishes,
for machines and golden files) and `table`, a per-case timeline for a workflow author checking
that a ladder does what they meant. The table is rendered from the records the replay yielded,
never from a second replay, so the two can never tell different stories.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, tzinfo
from pathlib import Path
from typing import BinaryIO, Literal, TextIO

from engine.core import Engine
from engine.registry import WorkflowRegistry
from engine.replay import Replay, ReplayStats
from schemas.records import (
    CaseClosed,
    CaseMigrated,
    CaseTransitioned,
    EventRejected,
    OutputRecord,
    RecordRetracted,
    SlaBreached,
    SlaChanged,
    SlaWarning,
)

Format = Literal["json", "table"]

NO_CASE = "(no case)"
DETAIL_WIDTH = 90
"""Rejection details quote the input; the JSON output has all of it."""


def simulate(
    registry: WorkflowRegistry,
    events: Path,
    out: Path | None,
    until: datetime | None,
    *,
    fmt: Format = "json",
    retention: timedelta | None = None,
) -> ReplayStats:
    """Replay `events` (JSON lines, file order); records go to `out` or stdout. `retention`:
    closed cases retire after it, as in `run` (None: kept for ever, the default here).

    The events file is opened before `out`, so a missing input leaves no empty output behind.
    Raises `OSError` when a file cannot be opened (the CLI reports it in one line).
    """
    replay = Replay(Engine(registry, retention))
    with ExitStack() as stack:
        source = stack.enter_context(events.open("rb"))
        sink: TextIO = (
            stack.enter_context(out.open("w", encoding="utf-8", newline="\n"))
            if out
            else sys.stdout
        )
        records = _replayed(replay, source, events.name, until)
        if fmt == "table":
            sink.write(timeline(registry, list(records)))
        else:
            for record in records:
                sink.write(record.model_dump_json() + "\n")
    return replay.stats


def _replayed(
    replay: Replay, source: BinaryIO, name: str, until: datetime | None
) -> Iterator[OutputRecord]:
    for number, line in enumerate(source, start=1):
        if not line.strip():
            continue
        yield from replay.feed(line.rstrip(b"\r\n"), f"{name}:{number}")
    if until is not None:
        yield from replay.advance(until)


# -- the table ---------------------------------------------------------------------------------

COLUMNS = ("time", "record", "state", "tier", "trigger", "deadline", "detail")


@dataclass(frozen=True)
class Row:
    """One line of a case's timeline; empty strings are blank cells."""

    time: str
    record: str
    state: str = ""
    tier: str = ""
    trigger: str = ""
    deadline: str = ""
    detail: str = ""

    def cells(self) -> tuple[str, ...]:
        return (self.time, self.record, self.state, self.tier, self.trigger, self.deadline,
                self.detail)  # fmt: skip


@dataclass
class _Case:
    """What the table knows of one case so far: the records carry no state or tier on SLA and
    closing records, so the last transition's are carried forward."""

    title: str
    tz: tzinfo
    named: bool = False
    """The heading names the workflow (a case seen first through a rejection is not yet)."""
    state: str = ""
    tier: str = ""


def _local(instant: datetime, tz: tzinfo) -> str:
    return instant.astimezone(tz).strftime("%Y-%m-%d %H:%M")


def _flags(late: bool, *more: str) -> str:
    return ", ".join([*(m for m in more if m), *(["late"] if late else [])])


def _transitioned(r: CaseTransitioned, case: _Case) -> Row:
    case.state, case.tier = r.to_state, r.to_tier or case.tier
    arrow = f"{r.from_state} → {r.to_state}" if r.from_state else f"→ {r.to_state}"
    deadline = _local(r.sla.deadline, case.tz) if r.sla else ""
    return Row(_local(r.occurred_at, case.tz), r.type, arrow, case.tier, r.trigger, deadline,
               _flags(r.late))  # fmt: skip


def _sla(r: SlaWarning | SlaBreached, case: _Case) -> Row:
    return Row(_local(r.occurred_at, case.tz), r.type, r.state, case.tier,
               deadline=_local(r.deadline, case.tz), detail=_flags(r.late))  # fmt: skip


def _changed(r: SlaChanged, case: _Case) -> Row:
    action = f"extended ({r.sla.extensions})" if r.action == "extended" else r.action
    return Row(_local(r.occurred_at, case.tz), r.type, r.state, case.tier,
               deadline=_local(r.sla.deadline, case.tz), detail=_flags(r.late, action))  # fmt: skip


def _closed(r: CaseClosed, case: _Case) -> Row:
    timing = "on time" if r.on_time else "not on time"
    escalations = f"{r.escalations} escalation{'' if r.escalations == 1 else 's'}"
    return Row(_local(r.occurred_at, case.tz), r.type, case.state, r.resolved_tier or "",
               detail=_flags(r.late, r.outcome, timing, escalations))  # fmt: skip


def _migrated(r: CaseMigrated, case: _Case) -> Row:
    case.state, case.tier = r.to_state, r.to_tier or case.tier
    deadline = _local(r.sla.deadline, case.tz) if r.sla else ""
    detail = _flags(r.late, f"v{r.from_version} → v{r.workflow_version}", f"sla {r.sla_policy}")
    return Row(_local(r.occurred_at, case.tz), r.type, f"{r.from_state} → {r.to_state}",
               case.tier, deadline=deadline, detail=detail)  # fmt: skip


def _retracted(r: RecordRetracted, case: _Case) -> Row:
    return Row(_local(r.occurred_at, case.tz), r.type, case.state, case.tier,
               detail=f"record #{r.retracted_seq} no longer true (corrected below)")  # fmt: skip


def _rejected(r: EventRejected) -> Row:
    detail = " ".join(r.detail.split())
    if len(detail) > DETAIL_WIDTH:
        detail = detail[: DETAIL_WIDTH - 1] + "…"
    return Row("-", r.type, detail=f"{r.reason} at {r.origin}: {detail}")


def _row(record: OutputRecord, case: _Case) -> Row:  # noqa: PLR0911 - one per record kind
    """One row per record kind: a new record type gets its own small function here."""
    match record:
        case CaseTransitioned():
            return _transitioned(record, case)
        case SlaWarning() | SlaBreached():
            return _sla(record, case)
        case SlaChanged():
            return _changed(record, case)
        case CaseClosed():
            return _closed(record, case)
        case CaseMigrated():
            return _migrated(record, case)
        case RecordRetracted():
            return _retracted(record, case)
        case EventRejected():
            return _rejected(record)


def _case_of(registry: WorkflowRegistry, record: OutputRecord) -> _Case:
    """A case's heading and time zone, from the first record that names its workflow."""
    case_id = record.case_id or NO_CASE
    if isinstance(record, EventRejected):
        return _Case(case_id, UTC)
    workflow = registry.get(record.workflow, record.workflow_version)
    tz: tzinfo = workflow.tz if workflow is not None else UTC
    title = f"{case_id}  {record.workflow} v{record.workflow_version}  ({tz})"
    return _Case(title, tz, named=True)


def timeline(registry: WorkflowRegistry, records: list[OutputRecord]) -> str:
    """Records grouped by case in order of first appearance, one aligned row each; times are
    local to each case's workflow. Rejections without a case come last, under `(no case)`."""
    cases: dict[str, _Case] = {}
    rows: dict[str, list[Row]] = {}
    for record in records:
        key = record.case_id or NO_CASE
        case = cases.get(key)
        if case is None or (not case.named and not isinstance(record, EventRejected)):
            case = cases[key] = _case_of(registry, record)
        rows.setdefault(key, []).append(_row(record, case))
    order = sorted(rows, key=lambda k: k == NO_CASE)  # stable: first appearance, (no case) last
    table = [Row(*COLUMNS).cells(), *(row.cells() for k in order for row in rows[k])]
    widths = [max(len(cells[i]) for cells in table) for i in range(len(COLUMNS))]

    def line(cells: tuple[str, ...]) -> str:
        return "  " + "  ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)).rstrip()

    out = [line(table[0])]
    for key in order:
        out.extend(["", cases[key].title])
        out.extend(line(row.cells()) for row in rows[key])
    return "\n".join(out) + "\n"
