"""What the view tests feed and what they compare: real engine output, as Kafka would carry it.

Records come from the engine itself (a `Replay`, as `simulate` runs it), never written by hand,
except retractions, which the engine does not publish yet: `retraction()` builds one by the
documented shape (DESIGN §4). `expected_row` says what the engine holds of a case in the terms
of a view row, so a projected row can be compared with the engine's final case field by field.
"""

from __future__ import annotations

import json
import zlib
from collections.abc import Iterable, Iterator
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from consumers.view.fold import CaseRow, Record
from consumers.view.projection import Consumed
from consumers.view.reports import shown
from consumers.view.tables import cases, history, offsets, reports
from engine.case import Case
from engine.core import Engine
from engine.replay import Replay

TOPIC = "fengqiao.transitions"
DEAD_LETTER = "fengqiao.dead-letter"
CASE_EVENTS = "fengqiao.case-events"


def replay(
    engine: Engine, lines: Iterable[bytes], until: datetime | None, name: str = "test"
) -> tuple[Replay, list[bytes]]:
    """Run canonical events through the core as `simulate` runs a file called `name` (blank
    lines skipped but counted): the replay (its final cases) and every output record's JSON
    bytes, in output order."""
    run = Replay(engine)
    out: list[bytes] = []
    for number, line in enumerate(lines, start=1):
        if line.strip():
            out.extend(r.model_dump_json().encode() for r in run.feed(line, f"{name}:{number}"))
    if until is not None:
        out.extend(r.model_dump_json().encode() for r in run.advance(until))
    return run, out


def as_consumed(values: Iterable[bytes], partitions: int = 3) -> list[Consumed]:
    """The records as the view's consumer reads them: case records keyed by case, so each case
    stays in one partition in order; rejections to the dead-letter topic (read too, ignored)."""
    next_offset: dict[tuple[str, int], int] = {}
    consumed: list[Consumed] = []
    for value in values:
        record = json.loads(value)
        topic = DEAD_LETTER if record["type"] == "event.rejected" else TOPIC
        partition = zlib.crc32(str(record.get("case_id")).encode()) % partitions
        offset = next_offset.get((topic, partition), 0)
        next_offset[(topic, partition)] = offset + 1
        consumed.append(Consumed(topic, partition, offset, value))
    return consumed


def as_consumed_events(lines: Iterable[bytes], partitions: int = 3) -> list[Consumed]:
    """Input events as the view reads them from the case-events topic (for the reports'
    attributes), keyed by case as the intake writes them."""
    next_offset: dict[int, int] = {}
    consumed: list[Consumed] = []
    for line in lines:
        if not line.strip():
            continue
        try:
            event = json.loads(line)
        except ValueError:
            event = None
        key = str(event.get("case_id")) if isinstance(event, dict) else ""
        partition = zlib.crc32(key.encode()) % partitions
        offset = next_offset.get(partition, 0)
        next_offset[partition] = offset + 1
        consumed.append(Consumed(CASE_EVENTS, partition, offset, line))
    return consumed


def by_case(values: Iterable[bytes]) -> dict[str, list[Record]]:
    """The case records of an output stream, per case, in order."""
    histories: dict[str, list[Record]] = {}
    for value in values:
        record = json.loads(value)
        if record["type"] != "event.rejected":
            histories.setdefault(record["case_id"], []).append(record)
    return histories


def retraction(of: Record, seq: int) -> Record:
    """A `record.retracted` of `of`, published as the case's record number `seq`."""
    return {
        "record_id": f"{of['case_id']}/retraction/{seq}",
        "case_id": of["case_id"],
        "seq": seq,
        "workflow": of["workflow"],
        "workflow_version": of["workflow_version"],
        "occurred_at": of["occurred_at"],
        "caused_by": "late-event",
        "late": True,
        "type": "record.retracted",
        "retracts": of["record_id"],
        "retracted_seq": of["seq"],
        "retracted_type": of["type"],
    }


def reissued(record: Record, seq: int) -> Record:
    """The same record published again under a new number (a correction that says the same)."""
    return {**record, "seq": seq, "record_id": f"{record['case_id']}/reissued/{seq}"}


def encode(records: Iterable[Record]) -> list[bytes]:
    return [json.dumps(r, ensure_ascii=False).encode() for r in records]


def expected_row(engine: Engine, case: Case, *, attributes: bool = False) -> dict[str, Any]:
    """The engine's final case in the view's terms (the fields a row must agree on); with
    `attributes` (the view read the reports too) its attributes, those the view may show."""
    sla = case.sla
    workflow = engine.workflow_of(case)
    assert workflow is not None
    outcome = (workflow.state(case.state).outcome or "closed") if case.closed else None
    return {
        "workflow": case.workflow,
        "workflow_version": case.version,
        "state": case.state,
        "tier": case.tier,
        "status": "closed" if case.closed else "open",
        "opened_at": case.opened_at,
        "entered_at": case.entered_at,
        "deadline": sla.deadline if sla else None,
        "warning_at": sla.warning_at if sla else None,
        "warned": sla.warned if sla else False,
        "breached": sla.breached if sla else False,
        "paused": sla.paused_at is not None if sla else False,
        "extensions": sla.extensions if sla else 0,
        "escalations": case.escalations,
        "breaches": case.breaches,
        "outcome": outcome,
        "on_time": case.breaches == 0 if case.closed else None,
    } | ({"attributes": shown(case.attrs)} if attributes else {})


def row_fields(row: CaseRow, *, attributes: bool = False) -> dict[str, Any]:
    """The same fields of a view row."""
    return {
        "workflow": row.workflow,
        "workflow_version": row.workflow_version,
        "state": row.state,
        "tier": row.tier,
        "status": row.status,
        "opened_at": row.opened_at,
        "entered_at": row.entered_at,
        "deadline": row.deadline,
        "warning_at": row.warning_at,
        "warned": row.warned,
        "breached": row.breached,
        "paused": row.paused,
        "extensions": row.extensions,
        "escalations": row.escalations,
        "breaches": row.breaches,
        "outcome": row.outcome,
        "on_time": row.on_time,
    } | ({"attributes": dict(row.attributes)} if attributes else {})


def stored_rows(db: sa.Engine) -> dict[str, CaseRow]:
    with db.connect() as conn:
        return {r.case_id: CaseRow(**r._mapping) for r in conn.execute(sa.select(cases))}


def dump(db: sa.Engine) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of the read model's tables, in key order: two databases holding the same
    read model dump equal."""
    tables = {"cases": cases, "history": history, "offsets": offsets, "reports": reports}
    with db.connect() as conn:
        return {
            name: [tuple(row) for row in conn.execute(sa.select(t).order_by(*t.primary_key))]
            for name, t in tables.items()
        }


def batches(items: list[Consumed], cuts: Iterable[int]) -> Iterator[list[Consumed]]:
    """`items` cut at the given positions (any order, out-of-range ones ignored)."""
    start = 0
    for cut in sorted({c for c in cuts if 0 < c < len(items)}):
        yield items[start:cut]
        start = cut
    yield items[start:]
