"""The pure fold of a case's records into its view row (consumers/view/fold.py).

The records are the engine's own, from random event streams (hypothesis): whatever the engine
does to a case, the fold of its records must say what the engine's final case says. Then the
retraction rule (DESIGN §4): a retracted record counts as never published.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from consumers.view.fold import CaseRow, Record, TierOrder, fold, live_records, step
from engine.core import Engine
from schemas.events import CaseEvent
from tests.view.streams import (
    by_case,
    expected_row,
    reissued,
    replay,
    retraction,
    row_fields,
)

pytestmark = pytest.mark.unit

START = datetime.fromisoformat("2025-09-20T09:00:00+08:00")
TYPES = [
    "case.reported", "mediation.succeeded", "mediation.succeeded", "mediation.failed",
    "mediation.failed", "case.escalated", "confirmation.applied", "agreement.fulfilled",
    "confirmation.granted", "confirmation.refused", "case.withdrawn", "appraisal.started",
    "appraisal.finished", "appraisal.finished", "deadline.extended", "case.migrated",
    "case.migrated", "case.migrated",
]  # fmt: skip
SOURCES = ["grid", "center", "court", "police", "hotline-12345"]
MIGRATION = {"from_version": 1, "to_version": 2, "sla": "keep",
             "state_map": {"grid.mediating": "grid.mediating",
                           "center.mediating": "township.mediating",
                           "court.mediating": "court.mediating"}}  # fmt: skip

event_steps = st.lists(
    st.tuples(
        st.sampled_from(["c1", "c2", "c3", "c4"]),
        st.sampled_from(TYPES),
        st.sampled_from(SOURCES),
        # hours after the previous event: mostly within a working day, sometimes past a limit
        st.one_of(st.integers(0, 30), st.integers(0, 40 * 24)),
        st.sampled_from(["keep", "recompute", "earliest"]),
    ),
    max_size=40,
)


def to_lines(raw: list[tuple[str, str, str, int, str]]) -> list[bytes]:
    """Canonical events: a report of each case first (hours apart), then the random steps."""
    opening = [(case_id, "case.reported", "grid", 1, "keep") for case_id in ("c1", "c2", "c3")]
    lines: list[bytes] = []
    at = START
    raw = opening + raw
    for n, (case_id, type_, source, hours, policy) in enumerate(raw):
        at += timedelta(hours=hours)
        payload: dict[str, Any] = {}
        sender = source
        if type_ == "case.reported":
            payload = {"workflow": "dispute-escalation", "attributes": {"category": "family"}}
        elif type_ == "case.migrated":
            sender, payload = "migrate", {**MIGRATION, "sla": policy}
        event = CaseEvent(event_id=f"{case_id}-{n}", case_id=case_id, type=type_,
                          occurred_at=at, source=sender, payload=payload)  # fmt: skip
        lines.append(event.model_dump_json().encode())
    return lines


def engine_histories(
    engine: Engine, raw: list[tuple[str, str, str, int, str]], days: int = 200
) -> tuple[dict[str, Any], dict[str, list[Record]]]:
    """The engine's final cases and each case's records, after `days` of clock past the start."""
    run, out = replay(engine, to_lines(raw), START + timedelta(days=days))
    return run.cases, by_case(out)


def unstamped(row: CaseRow | None) -> CaseRow | None:
    """A row without its bookkeeping of what was read (`last_seq`)."""
    return None if row is None else row._replace(last_seq=0)


# -- the fold equals the engine ----------------------------------------------------------------


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(raw=event_steps, days=st.integers(min_value=0, max_value=400))
def test_the_fold_of_a_cases_records_says_what_the_engine_holds(
    engine: Engine, tiers: TierOrder, raw: list[tuple[str, str, str, int, str]], days: int
) -> None:
    final, histories = engine_histories(engine, raw, days)
    assert set(histories) == set(final)
    for case_id, records in histories.items():
        row = fold(records, tiers)
        assert row is not None
        assert row_fields(row) == expected_row(engine, final[case_id]), case_id
        assert row.last_seq == final[case_id].seq
        # one record at a time (how the projection moves a case on) gives the same row
        stepped: CaseRow | None = None
        for record in records:
            stepped = step(stepped, record, tiers)
        assert stepped == row


def test_a_known_story_folds_into_the_expected_row(engine: Engine, tiers: TierOrder) -> None:
    """Grid fails, the center's clock is paused for an appraisal and resumed, then extended, the
    case settles at the center: the fields each record changes, checked by hand."""
    raw = [("c1", "case.reported", "grid", 0, "keep"),
           ("c1", "mediation.failed", "grid", 26, "keep"),
           ("c1", "appraisal.started", "center", 48, "keep"),
           ("c1", "appraisal.finished", "center", 24 * 5, "keep"),
           ("c1", "deadline.extended", "center", 24, "keep"),
           ("c1", "mediation.succeeded", "center", 24 * 40, "keep"),
           ("c1", "agreement.fulfilled", "center", 24, "keep")]  # fmt: skip
    final, histories = engine_histories(engine, raw, days=0)
    records = histories["c1"]
    kinds = [r["type"] for r in records]
    assert kinds[:2] == ["case.transitioned", "case.transitioned"]
    assert kinds.count("sla.changed") == 3
    row = fold(records, tiers)
    assert row is not None
    assert (row.state, row.tier, row.status) == ("resolved", "center", "closed")
    assert (row.escalations, row.outcome, row.resolved_tier, row.on_time) == (
        1,
        "resolved",
        "center",
        True,
    )
    assert (row.deadline, row.warning_at, row.paused, row.extensions) == (None, None, False, 0)
    assert row.closed_at == datetime.fromisoformat(records[-1]["occurred_at"])
    assert row.attributes == {}
    assert row_fields(row) == expected_row(engine, final["c1"])
    paused = fold(records[:3], tiers)
    assert paused is not None
    assert paused.paused
    assert paused.state == "center.mediating"


# -- retractions ---------------------------------------------------------------------------------


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(raw=event_steps, data=st.data())
def test_retracting_records_and_publishing_them_again_is_as_if_nothing_happened(
    engine: Engine, tiers: TierOrder, raw: list[tuple[str, str, str, int, str]], data: st.DataObject
) -> None:
    """How the engine corrects a case (DESIGN §6): it retracts every record from some point on
    and publishes the corrected ones after. When the correction says the same, the row must be
    the same as if there had been none."""
    _, histories = engine_histories(engine, raw)
    for case_id, records in histories.items():
        cut = data.draw(st.integers(min_value=0, max_value=len(records)), label=case_id)
        seq = len(records)
        corrected = list(records)
        for record in records[cut:]:
            seq += 1
            corrected.append(retraction(record, seq))
        for record in records[cut:]:
            seq += 1
            corrected.append(reissued(record, seq))
        assert unstamped(fold(corrected, tiers)) == unstamped(fold(records, tiers))
        stamped = fold(corrected, tiers)
        assert stamped is None or stamped.last_seq == seq


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(raw=event_steps, data=st.data())
def test_a_retracted_record_counts_as_never_published(
    engine: Engine, tiers: TierOrder, raw: list[tuple[str, str, str, int, str]], data: st.DataObject
) -> None:
    """Any records retracted, the retractions anywhere after them: the row is the fold of the
    others, and the retractions themselves never count as records of the case."""
    _, histories = engine_histories(engine, raw)
    for case_id, records in histories.items():
        gone = data.draw(st.sets(st.sampled_from(range(len(records)))), label=case_id)
        retractions = [
            retraction(records[i], len(records) + n + 1) for n, i in enumerate(sorted(gone))
        ]
        shuffled = data.draw(st.permutations(records + retractions), label="order")
        kept = [r for i, r in enumerate(records) if i not in gone]
        assert live_records(shuffled) == kept
        assert unstamped(fold(shuffled, tiers)) == unstamped(fold(kept, tiers))
        if len(gone) == len(records):
            assert fold(shuffled, tiers) is None


def test_a_retraction_is_final_and_cannot_be_stepped_over(engine: Engine, tiers: TierOrder) -> None:
    raw = [
        ("c1", "case.reported", "grid", 0, "keep"),
        ("c1", "mediation.failed", "grid", 26, "keep"),
    ]
    _, histories = engine_histories(engine, raw, days=0)
    first, second = histories["c1"]
    undo = retraction(second, 3)
    undo_the_undo = retraction(undo, 4)
    row = fold([first, second, undo, undo_the_undo], tiers)
    assert row is not None
    assert (row.state, row.last_seq) == ("grid.mediating", 4)  # the failure stays retracted
    with pytest.raises(ValueError, match="fold the whole history"):
        step(fold([first], tiers), undo, tiers)


def test_unknown_record_types_are_kept_but_change_nothing(engine: Engine, tiers: TierOrder) -> None:
    raw = [("c1", "case.reported", "grid", 0, "keep")]
    _, histories = engine_histories(engine, raw, days=0)
    (opened,) = histories["c1"]
    later = {**opened, "type": "case.annotated", "seq": 2, "record_id": "x",
             "occurred_at": "2025-09-21T09:00:00+08:00"}  # fmt: skip
    before, after = fold([opened], tiers), fold([opened, later], tiers)
    assert before is not None
    assert after == before._replace(last_seq=2, updated_at=datetime(2025, 9, 21, 1, tzinfo=UTC))
    assert json.dumps(later)  # still plain JSON: kept as-is in the history
