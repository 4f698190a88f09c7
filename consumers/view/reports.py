"""Case attributes for the read model: taken from the reports on `fengqiao.case-events`.

Why: supervisors are scoped by area (a township sees its township's cases: consumers/view/
access.py) and filter by category, and those facts are the case's *attributes*, which the
intake puts on the `case.reported` event (workflows/channels/) and no published record
repeats (DESIGN §4 stays as it is). So the view also reads the engine's input topic, keeps the
attributes of every report it finds there (`view_reports`, by case and `event_id`), and gives a
row the attributes of the report that opened it: the one whose `event_id` is the opening
record's `caused_by` (`CaseRow.opened_by`). A report the engine refused, or a second report of
the same case, is stored but never shown.

The two topics are read side by side, so either may come first: a stored report updates its
case's row if the row exists already (`store`), and a row folded anew looks its report up
(`attach`). Both run inside the projection's one transaction, with the offsets.

What is not shown: `person_key`, the keyed hash of a party (repeat disputes). It names no one,
but it links one person's cases, and the view shows no personal data (issue 14). The rest are
non-personal by the intake's own rule (schemas/channel.py refuses a personal field mapped to an
attribute), and the engine refuses a report whose attributes its workflow does not declare.

Limit: `fengqiao.case-events` keeps 7 days (consumers/kafka/topics.py), so a read model rebuilt
later has no attributes for older cases (and a scope on an attribute does not see them: it
fails closed). Raise that topic's retention too where the view must be rebuildable.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping
from typing import Any, NamedTuple

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from consumers.view.fold import CaseRow
from consumers.view.tables import cases, reports

NOT_SHOWN = frozenset({"person_key"})
"""Attributes the view never stores (see the module docstring)."""

_MARK = b'"case.reported"'
"""Cheap test before decoding: most case events are no report and are skipped undecoded."""


_CHUNK = 5000
"""Keys per `IN (...)` (as the projection's)."""


class Report(NamedTuple):
    case_id: str
    event_id: str
    attributes: dict[str, Any]


def report_of(value: bytes | None) -> Report | None:
    """The report in a consumed value, or None (another event, a tombstone, not JSON, no
    attributes: a report the engine would refuse is harmless here, it is never shown)."""
    if value is None or _MARK not in value:
        return None
    try:
        event = json.loads(value)
    except ValueError:  # UnicodeDecodeError included
        return None
    if not isinstance(event, dict) or event.get("type") != "case.reported":
        return None
    case_id, event_id = event.get("case_id"), event.get("event_id")
    payload = event.get("payload")
    if not isinstance(case_id, str) or not isinstance(event_id, str):
        return None
    found = payload.get("attributes") if isinstance(payload, dict) else None
    if not isinstance(found, dict):
        found = {}
    return Report(case_id, event_id, shown(found))


def shown(attributes: Mapping[str, Any]) -> dict[str, Any]:
    """The attributes the view may keep: plain values, none of `NOT_SHOWN`."""
    return {
        str(k): v
        for k, v in attributes.items()
        if k not in NOT_SHOWN and (v is None or isinstance(v, str | int | float | bool))
    }


def store(conn: Connection, found: Iterable[Report], insert: Callable[[sa.Table], Any]) -> int:
    """Keep the batch's reports (the first of each `event_id`: a report sent twice is one) and
    give the rows opened by them, if already there, their attributes. `insert` makes the
    dialect's INSERT of a table (it has ON CONFLICT). The number of reports in the batch.

    Usually the report is read first (the engine made its records after it was committed), so
    the rows it opened are looked up in one query and only those are updated."""
    unique = {(r.case_id, r.event_id): r for r in reversed(list(found))}
    if not unique:
        return 0
    values = [r._asdict() for r in unique.values()]
    statement = insert(reports).on_conflict_do_nothing(index_elements=["case_id", "event_id"])
    conn.execute(statement, values)
    keys = sorted({case_id for case_id, _ in unique})
    opened: list[dict[str, str]] = []
    for start in range(0, len(keys), _CHUNK):
        query = sa.select(cases.c.case_id, cases.c.opened_by).where(
            cases.c.case_id.in_(keys[start : start + _CHUNK])
        )
        opened += [{"b_case": c, "b_event": e} for c, e in conn.execute(query) if (c, e) in unique]
    if opened:
        # The stored report, not this batch's copy: a report sent twice keeps its first.
        first = (
            sa.select(reports.c.attributes)
            .where(reports.c.case_id == cases.c.case_id, reports.c.event_id == cases.c.opened_by)
            .scalar_subquery()
        )
        conn.execute(
            sa.update(cases)
            .where(cases.c.case_id == sa.bindparam("b_case"))
            .values(attributes=first),
            opened,
        )
    return len(unique)


def attach(conn: Connection, rows: Mapping[str, CaseRow | None], chunk: int) -> dict[str, CaseRow]:
    """The rows with the attributes of the reports that opened them (a row whose report has
    not been read yet keeps none: `store` gives them when it comes)."""
    wanted = {c: r for c, r in rows.items() if r is not None}
    keys = sorted(wanted)
    found: dict[tuple[str, str], dict[str, Any]] = {}
    for start in range(0, len(keys), chunk):
        query = sa.select(reports.c.case_id, reports.c.event_id, reports.c.attributes).where(
            reports.c.case_id.in_(keys[start : start + chunk])
        )
        for case_id, event_id, attributes in conn.execute(query):
            found[case_id, event_id] = attributes
    return {c: r._replace(attributes=found.get((c, r.opened_by), {})) for c, r in wanted.items()}
