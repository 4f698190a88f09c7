"""What `fengqiao cases` prints: the list of cases, one case with its timeline, and their JSON.

Tables are for a supervisor at a terminal: instants in one time zone (the `--tz` of the
command, named in the output), the time left or overdue spelled out (`in 2d 3h`, `overdue 5h`),
and a case's history as a timeline like `simulate --format table`'s. A record that a late event
proved untrue stays in the timeline, marked `✗` with the number of the retraction that took it
back (and struck through on a terminal): the corrected records follow the retraction.

JSON is for scripts, and it is the API's (consumers/view/responses.py): a case as
`GET /api/cases/{id}` answers it, its records as the items of `…/history`, instants in UTC. It
is built from the same rows as the tables, so the CLI, the API and the tables never disagree.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timedelta, tzinfo
from typing import Any

from consumers.view.fold import CaseRow
from consumers.view.queries import HistoryEntry
from consumers.view.responses import CaseOut, HistoryItem

STRIKE, PLAIN = "\x1b[9m", "\x1b[0m"
RETRACTED = "✗"
LIST_COLUMNS = ("case", "workflow", "state", "tier", "deadline", "due", "notes")
TIMELINE_COLUMNS = ("#", "time", "record", "state", "tier", "deadline", "detail")


# -- JSON ------------------------------------------------------------------------------------------


def row_json(row: CaseRow, now: datetime) -> dict[str, Any]:
    """The row as `GET /api/cases/{id}` answers it (consumers/view/responses.py): the same
    fields, `overdue` and `at_risk` judged at `now`, instants in UTC."""
    return CaseOut.of(row, now).model_dump(mode="json")


def entry_json(entry: HistoryEntry) -> dict[str, Any]:
    """A record as an item of `GET /api/cases/{id}/history`."""
    return HistoryItem.of(entry).model_dump(mode="json")


# -- shared pieces ---------------------------------------------------------------------------------


def local(instant: datetime | None, tz: tzinfo) -> str:
    """`2026-03-16 17:00` in `tz`; empty for no instant."""
    return instant.astimezone(tz).strftime("%Y-%m-%d %H:%M") if instant is not None else ""


def span(delta: timedelta) -> str:
    """A duration as a supervisor reads it: `2d 3h`, `3h 20m`, `20m`."""
    minutes = int(abs(delta).total_seconds() // 60)
    days, rest = divmod(minutes, 24 * 60)
    hours, minutes = divmod(rest, 60)
    if days:
        return f"{days}d {hours}h"
    return f"{hours}h {minutes}m" if hours else f"{minutes}m"


def _plural(count: int, word: str) -> str:
    return f"{count} {word}{'' if count == 1 else 's'}"


def _table(
    header: Sequence[str], rows: Iterable[Sequence[str]], struck: Sequence[bool] = ()
) -> str:
    table = [tuple(header), *(tuple(r) for r in rows)]
    widths = [max(len(cells[i]) for cells in table) for i in range(len(header))]
    lines = []
    for number, cells in enumerate(table):
        text = "  " + "  ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)).rstrip()
        if number and struck and struck[number - 1]:
            text = "  " + STRIKE + text[2:] + PLAIN
        lines.append(text)
    return "\n".join(lines) + "\n"


# -- the list --------------------------------------------------------------------------------------


def due(row: CaseRow, now: datetime) -> str:
    """Time left on the current limit, or how long it is overdue; the outcome once closed."""
    if row.status == "closed":
        return row.outcome or "closed"
    if row.deadline is None:
        return ""
    if row.paused:
        return "paused"
    if row.breached or row.deadline <= now:
        return f"overdue {span(now - row.deadline)}"
    return f"in {span(row.deadline - now)}"


def notes(row: CaseRow) -> str:
    parts: list[str] = []
    if row.status == "closed":
        parts.append("on time" if row.on_time else "not on time")
    elif row.breached:
        parts.append("breached")
    elif row.warned:
        parts.append("warned")
    if row.extensions:
        parts.append(f"extended ×{row.extensions}")
    if row.escalations:
        parts.append(_plural(row.escalations, "escalation"))
    return ", ".join(parts)


def case_list(rows: Sequence[CaseRow], now: datetime, tz: tzinfo, what: str) -> str:
    """The cases as a table, deadline first (as queried), and a line saying what it shows."""
    if not rows:
        return f"no {what} cases\n"
    body = [
        (row.case_id, f"{row.workflow} v{row.workflow_version}", row.state, row.tier or "",
         local(row.deadline, tz), due(row, now), notes(row))
        for row in rows
    ]  # fmt: skip
    header = tuple(c.upper() for c in LIST_COLUMNS)
    summary = f"{_plural(len(rows), what + ' case')}; times in {tz}, as of {local(now, tz)}\n"
    return _table(header, body) + summary


# -- one case --------------------------------------------------------------------------------------


def case_card(row: CaseRow, history: Sequence[HistoryEntry], now: datetime, tz: tzinfo,
              *, color: bool = False) -> str:  # fmt: skip
    """The row as a few labelled lines, then its timeline."""
    where = f"{row.state} (tier {row.tier})" if row.tier else row.state
    lines = [
        f"{row.case_id}  {row.workflow} v{row.workflow_version}  (times in {tz})",
        f"  status    {row.status}, {where}",
        f"  opened    {local(row.opened_at, tz)}   in this state since {local(row.entered_at, tz)}",
    ]
    if row.deadline is not None:
        warning = f"   warning {local(row.warning_at, tz)}" if row.warning_at else ""
        lines.append(f"  deadline  {local(row.deadline, tz)} ({due(row, now)}){warning}")
    if row.status == "closed":
        tier = f" at tier {row.resolved_tier}" if row.resolved_tier else ""
        lines.append(f"  closed    {local(row.closed_at, tz)}: {row.outcome}{tier}")
    if notes(row):
        lines.append(f"  notes     {notes(row)}")
    return "\n".join(lines) + "\n\n" + timeline(history, tz, color=color)


def timeline(history: Sequence[HistoryEntry], tz: tzinfo, *, color: bool = False) -> str:
    """One line per record, in `seq` order, retracted ones marked (see the module docstring)."""
    by = {str(e.record.get("retracts")): e.seq for e in history if e.type == "record.retracted"}
    state = tier = ""
    rows: list[tuple[str, ...]] = []
    struck: list[bool] = []
    for entry in history:
        r = entry.record
        if entry.type in ("case.transitioned", "case.migrated"):
            state, tier = str(r.get("to_state") or state), str(r.get("to_tier") or tier)
        cells = _cells(entry, state, tier, tz)
        if entry.retracted:
            retraction = by.get(entry.record_id)
            mark = f"retracted by #{retraction}" if retraction is not None else "retracted"
            cells = (f"{entry.seq} {RETRACTED}", *cells[1:-1], _join(mark, cells[-1]))
        rows.append(cells)
        struck.append(entry.retracted and color)
    text = _table(TIMELINE_COLUMNS, rows, struck)
    if any(e.retracted for e in history):
        text += (f"  {RETRACTED} retracted: a late event proved the record untrue; the corrected "
                 "records follow its retraction\n")  # fmt: skip
    return text


def _join(*parts: str) -> str:
    return ", ".join(p for p in parts if p)


def _deadline(record: Mapping[str, Any], tz: tzinfo) -> str:
    sla = record.get("sla")
    text = sla.get("deadline") if isinstance(sla, Mapping) else record.get("deadline")
    return local(datetime.fromisoformat(text), tz) if isinstance(text, str) else ""


def _cells(entry: HistoryEntry, state: str, tier: str, tz: tzinfo) -> tuple[str, ...]:
    """The cells of one record; a record type this checkout does not know shows its type and
    time only (the view keeps working when the engine adds one)."""
    r, kind = entry.record, entry.type
    shown_state, detail = state, ""
    if kind == "case.transitioned":
        source = r.get("from_state")
        shown_state = f"{source} → {r['to_state']}" if source else f"→ {r['to_state']}"
        detail = str(r.get("trigger") or "")
    elif kind in ("sla.warning", "sla.breached"):
        shown_state = str(r.get("state") or state)
        if r.get("owner", "organ") != "organ":
            detail = f"{r['owner']}'s window"
    elif kind == "sla.changed":
        sla = r.get("sla") or {}
        action = str(r.get("action") or "")
        detail = f"extended ({sla.get('extensions')})" if action == "extended" else action
        shown_state = str(r.get("state") or state)
    elif kind == "case.closed":
        detail = _join(str(r.get("outcome") or ""),
                       "on time" if r.get("on_time") else "not on time",
                       _plural(int(r.get("escalations") or 0), "escalation"))  # fmt: skip
        tier = str(r.get("resolved_tier") or tier)
    elif kind == "case.migrated":
        shown_state = f"{r.get('from_state')} → {r.get('to_state')}"
        detail = _join(f"v{r.get('from_version')} → v{r.get('workflow_version')}",
                       f"sla {r.get('sla_policy')}")  # fmt: skip
    elif kind == "record.retracted":
        detail = f"retracts #{r.get('retracted_seq')} ({r.get('retracted_type')})"
    if r.get("late"):
        detail = _join(detail, "late")
    return (str(entry.seq), local(entry.occurred_at, tz), kind, shown_state, tier,
            _deadline(r, tz), detail)  # fmt: skip
