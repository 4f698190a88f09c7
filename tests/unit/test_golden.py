"""Golden replays of the example streams in `workflows/examples/` (DESIGN §5 `simulate`).

Each stream retells stories of the domain brief as canonical events, bad lines included. The
replay must reproduce `tests/golden/<name>.records.jsonl` byte for byte, twice in a row, and the
records must tell the intended story (the assertions below say what each one is).

Regenerating the goldens is a deliberate act, never done by the tests: after checking that a
changed output is *right*, run from the repository root

    for n in dispute-escalation petition hotline-12345; do
      PYTHONPATH=. python -m consumers.cli.main simulate --events workflows/examples/$n.jsonl \
        --until 2026-06-01T00:00:00+08:00 --out tests/golden/$n.records.jsonl
    done

and review the diff (`UNTIL` below must stay equal to the `--until` used).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from consumers.cli.simulate import simulate
from engine.core import Engine
from engine.registry import WorkflowRegistry
from engine.replay import Replay, ReplayStats

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parent.parent.parent
WORKFLOWS = ROOT / "workflows"
EXAMPLES = WORKFLOWS / "examples"
GOLDEN = ROOT / "tests" / "golden"
UNTIL = datetime.fromisoformat("2026-06-01T00:00:00+08:00")
NAMES = ("dispute-escalation", "petition", "hotline-12345")

Record = dict[str, Any]


@dataclass(frozen=True)
class Run:
    """One in-process replay: the output bytes, the records caused by each input line, stats."""

    output: bytes
    by_line: dict[int, list[Record]]
    stats: ReplayStats

    @property
    def records(self) -> list[Record]:
        return [json.loads(line) for line in self.output.decode().splitlines()]


def replay(registry: WorkflowRegistry, name: str) -> Run:
    """What `fengqiao simulate --events <name>.jsonl --until UNTIL` does, line by line."""
    events = EXAMPLES / f"{name}.jsonl"
    engine = Replay(Engine(registry))
    out: list[str] = []
    by_line: dict[int, list[Record]] = {}
    for number, line in enumerate(events.read_bytes().splitlines(), start=1):
        if not line.strip():
            continue
        encoded = [r.model_dump_json() for r in engine.feed(line, f"{events.name}:{number}")]
        by_line[number] = [json.loads(e) for e in encoded]
        out.extend(encoded)
    out.extend(r.model_dump_json() for r in engine.advance(UNTIL))
    return Run("".join(o + "\n" for o in out).encode(), by_line, engine.stats)


def golden(name: str) -> bytes:
    return (GOLDEN / f"{name}.records.jsonl").read_bytes()


def of_case(records: list[Record], case_id: str, type_: str | None = None) -> list[Record]:
    return [r for r in records if r["case_id"] == case_id and (type_ is None or r["type"] == type_)]


def transition(records: list[Record], case_id: str, to_state: str) -> Record:
    (found,) = [r for r in of_case(records, case_id, "case.transitioned")
                if r["to_state"] == to_state]  # fmt: skip
    return found


def closed(records: list[Record], case_id: str) -> Record:
    (found,) = of_case(records, case_id, "case.closed")
    return found


def rejections(records: list[Record]) -> dict[str | None, str]:
    """Rejection reason by rejected event id (None for lines without a readable id)."""
    out: dict[str | None, str] = {}
    for r in records:
        if r["type"] == "event.rejected":
            assert r["event_id"] not in out
            out[r["event_id"]] = r["reason"]
    return out


def line_of(name: str, event_id: str) -> list[int]:
    """Line numbers of the example stream holding `event_id` (several for a resent event)."""
    lines = (EXAMPLES / f"{name}.jsonl").read_text(encoding="utf-8").splitlines()
    return [n for n, text in enumerate(lines, start=1) if f'"event_id": "{event_id}"' in text]


@pytest.fixture(scope="module")
def runs(registry: WorkflowRegistry) -> dict[str, Run]:
    return {name: replay(registry, name) for name in NAMES}


# -- determinism ---------------------------------------------------------------------------


@pytest.mark.parametrize("name", NAMES)
def test_replay_equals_golden_byte_for_byte_twice(registry: WorkflowRegistry, name: str) -> None:
    first, second = replay(registry, name), replay(registry, name)
    assert first.output == golden(name)
    assert second.output == first.output


@pytest.mark.parametrize("name", NAMES)
def test_simulate_writes_the_golden_file(
    registry: WorkflowRegistry, name: str, tmp_path: Path
) -> None:
    # The CLI path (file in, file out), from a freshly loaded registry each time.
    for attempt in ("a", "b"):
        out = tmp_path / f"{attempt}.jsonl"
        simulate(WorkflowRegistry.load(WORKFLOWS), EXAMPLES / f"{name}.jsonl", out, UNTIL)
        assert out.read_bytes() == golden(name)


@pytest.mark.parametrize("name", NAMES)
def test_every_case_history_is_contiguous_and_in_local_time(
    runs: dict[str, Run], name: str
) -> None:
    records = runs[name].records
    seqs: dict[str, list[int]] = {}
    for r in records:
        if r["type"] != "event.rejected":
            seqs.setdefault(r["case_id"], []).append(r["seq"])
            assert r["occurred_at"].endswith("+08:00")
    for case_id, seq in seqs.items():
        assert seq == list(range(1, len(seq) + 1)), case_id
        assert closed(records, case_id)["type"] == "case.closed"  # every story ends


# -- dispute-escalation ----------------------------------------------------------------------

D_CHICKEN, D_PARKING, D_ROOF_FALL, D_INJURY = (
    "FQ-D-2026-0001", "FQ-D-2026-0002", "FQ-D-2026-0003", "FQ-D-2026-0004",
)  # fmt: skip


def test_dispute_neighbours_fight_breaches_over_spring_festival_then_is_confirmed(
    runs: dict[str, Run],
) -> None:
    records = runs["dispute-escalation"].records
    # Reported Thu 2026-02-12: Fri 02-13, Sat 02-14 (make-up working day), then Spring Festival
    # 02-15..02-23, so the third working day is Tue 02-24 and the grid limit ends 24:00 that day.
    grid = transition(records, D_CHICKEN, "grid.mediating")
    assert grid["sla"]["deadline"] == "2026-02-25T00:00:00+08:00"
    (warning,) = of_case(records, D_CHICKEN, "sla.warning")
    assert warning["state"] == "grid.mediating"
    (breach,) = of_case(records, D_CHICKEN, "sla.breached")
    assert (breach["state"], breach["deadline"], breach["occurred_at"]) == (
        "grid.mediating", "2026-02-25T00:00:00+08:00", "2026-02-25T00:00:00+08:00",
    )  # fmt: skip
    center = transition(records, D_CHICKEN, "center.mediating")
    assert (center["trigger"], center["from_tier"], center["to_tier"]) == (
        "sla.breached", "grid", "center",
    )  # fmt: skip
    assert center["sla"]["deadline"] == "2026-03-28T00:00:00+08:00"  # 02-25 + 30 days
    # The 3,000-yuan agreement: 30 days to apply would end on Sun 04-05 (Qingming): → 04-07.
    agreement = transition(records, D_CHICKEN, "agreement.reached")
    assert agreement["to_tier"] == "center"
    assert agreement["sla"]["deadline"] == "2026-04-08T00:00:00+08:00"
    reviewing = transition(records, D_CHICKEN, "confirmation.reviewing")
    assert reviewing["sla"]["deadline"] == "2026-03-31T00:00:00+08:00"  # Sat 03-28 → Mon 03-30
    done = closed(records, D_CHICKEN)
    assert (done["outcome"], done["resolved_tier"], done["escalations"], done["on_time"]) == (
        "confirmed", "center", 1, False,
    )  # fmt: skip


def test_dispute_fatal_fall_extension_arrives_late_and_is_referred(runs: dict[str, Run]) -> None:
    records = runs["dispute-escalation"].records
    center = transition(records, D_ROOF_FALL, "center.mediating")
    assert center["from_state"] is None  # police transfer: straight to the center
    assert center["sla"]["deadline"] == "2026-04-02T00:00:00+08:00"
    (warning,) = of_case(records, D_ROOF_FALL, "sla.warning")
    (extended,) = of_case(records, D_ROOF_FALL, "sla.changed")
    # Signed 03-26 17:00, arrived after the 20:58 warning: applied at the case clock, marked late;
    # +30 days from the last day 04-01 ends on 05-01, Labour Day, rolled to Wed 05-06.
    assert extended["late"] is True
    assert extended["occurred_at"] == warning["occurred_at"]
    assert (extended["action"], extended["sla"]["extensions"]) == ("extended", 1)
    assert extended["sla"]["deadline"] == "2026-05-07T00:00:00+08:00"
    referred = transition(records, D_ROOF_FALL, "referred")
    assert referred["trigger"] == "mediation.failed"  # the labour guard sends it onward
    done = closed(records, D_ROOF_FALL)
    assert (done["outcome"], done["resolved_tier"], done["on_time"]) == ("referred", "center", True)


def test_dispute_cross_jurisdiction_injury_pauses_for_appraisal_and_is_confirmed(
    runs: dict[str, Run],
) -> None:
    records = runs["dispute-escalation"].records
    center = transition(records, D_INJURY, "center.mediating")
    assert center["from_state"] is None
    assert center["sla"]["deadline"] == "2026-04-09T00:00:00+08:00"
    paused, resumed = of_case(records, D_INJURY, "sla.changed")
    assert (paused["action"], paused["sla"]["paused"]) == ("paused", True)
    # Paused 03-12 → 04-02: 21 calendar days added to the last day 04-08.
    assert resumed["action"] == "resumed"
    assert resumed["sla"]["deadline"] == "2026-04-30T00:00:00+08:00"
    assert not of_case(records, D_INJURY, "sla.warning")
    reviewing = transition(records, D_INJURY, "confirmation.reviewing")
    assert reviewing["sla"]["deadline"] == "2026-05-07T00:00:00+08:00"  # 05-02 → 05-06
    done = closed(records, D_INJURY)
    assert (done["outcome"], done["resolved_tier"], done["escalations"], done["on_time"]) == (
        "confirmed", "center", 0, True,
    )  # fmt: skip
    grid_case = closed(records, D_PARKING)
    assert (grid_case["outcome"], grid_case["resolved_tier"]) == ("resolved", "grid")


def test_dispute_bad_lines_are_rejected_and_the_duplicate_is_dropped(
    runs: dict[str, Run],
) -> None:
    run = runs["dispute-escalation"]
    assert rejections(run.records) == {
        None: "malformed",
        "grid-20260303-0002": "schema_invalid",
        "grid-20260317-0011": "unauthorized_source",
        "online-20260320-0102": "invalid_transition",
        "center-20260327-0008": "unknown_case",
    }
    # The schema-invalid report was resent with an offset and opened the case.
    assert transition(run.records, D_PARKING, "grid.mediating")["caused_by"] == "grid-20260303-0002"
    first, resent = line_of("dispute-escalation", "online-20260309-0417")
    assert len(run.by_line[first]) == 1
    assert run.by_line[resent] == []
    assert run.stats.duplicates == 1


# -- petition ----------------------------------------------------------------------------------

P_ALLOWANCE, P_GROUP, P_LAND = "FQ-P-2025-0117", "FQ-P-2026-0008", "FQ-P-2026-0031"


def test_petition_acceptance_limit_rolls_over_national_day_and_breaches(
    runs: dict[str, Run],
) -> None:
    records = runs["petition"].records
    assert transition(records, P_ALLOWANCE, "township.registered")["sla"]["deadline"] == (
        "2025-09-26T00:00:00+08:00"
    )
    # Routed 09-16: 15 days end on 10-01, a holiday; the first working day after the National
    # Day break is Thu 10-09, so Art. 23's limit ends 24:00 10-09 and breaches (report only).
    accepting = transition(records, P_ALLOWANCE, "township.accepting")
    assert accepting["sla"]["deadline"] == "2025-10-10T00:00:00+08:00"
    breaches = of_case(records, P_ALLOWANCE, "sla.breached")
    assert [(b["state"], b["deadline"]) for b in breaches] == [
        ("township.accepting", "2025-10-10T00:00:00+08:00")
    ]
    handling = transition(records, P_ALLOWANCE, "township.handling")
    assert handling["trigger"] == "petition.accepted"  # the breach did not move the case
    assert handling["sla"]["deadline"] == "2025-12-10T00:00:00+08:00"  # 10-10 + 60 days
    (extended,) = of_case(records, P_ALLOWANCE, "sla.changed")
    assert extended["sla"]["deadline"] == "2026-01-09T00:00:00+08:00"  # + 30 days, Art. 34


def test_petition_goes_to_review_one_rung_up_within_the_rolled_limit(
    runs: dict[str, Run],
) -> None:
    records = runs["petition"].records
    answered = transition(records, P_ALLOWANCE, "answered")
    assert (answered["to_tier"], answered["sla"]["deadline"]) == (
        "township", "2026-01-30T00:00:00+08:00",
    )  # fmt: skip
    review = transition(records, P_ALLOWANCE, "county.reviewing")
    assert (review["from_tier"], review["to_tier"]) == ("township", "county")
    # Requested 01-20: 30 days end on 02-19, in Spring Festival → Tue 02-24; decided that day.
    assert review["sla"]["deadline"] == "2026-02-25T00:00:00+08:00"
    reviewed = transition(records, P_ALLOWANCE, "reviewed")
    assert reviewed["occurred_at"] == "2026-02-24T16:00:00+08:00"
    assert "county.reviewing" not in [b["state"] for b in of_case(records, P_ALLOWANCE,
                                                                    "sla.breached")]  # fmt: skip
    done = closed(records, P_ALLOWANCE)
    assert (done["outcome"], done["resolved_tier"], done["escalations"], done["on_time"]) == (
        "resolved", "county", 1, False,
    )  # fmt: skip


def test_petition_group_starts_at_the_county_and_overdue_registration_climbs(
    runs: dict[str, Run],
) -> None:
    records = runs["petition"].records
    group = transition(records, P_GROUP, "county.registered")
    assert (group["from_state"], group["trigger"]) == (None, "case.reported")
    assert transition(records, P_GROUP, "county.handling")["sla"]["deadline"] == (
        "2026-03-24T00:00:00+08:00"  # 01-21 + 60 = Sun 03-22 → Mon 03-23
    )
    done = closed(records, P_GROUP)
    assert (done["outcome"], done["resolved_tier"], done["escalations"], done["on_time"]) == (
        "resolved", "county", 0, True,
    )  # fmt: skip
    # 04-16 + 15 days = 05-01, Labour Day → Wed 05-06; nobody routed it, so the county takes it.
    land = transition(records, P_LAND, "township.registered")
    assert land["sla"]["deadline"] == "2026-05-07T00:00:00+08:00"
    climbed = transition(records, P_LAND, "county.registered")
    assert (climbed["trigger"], climbed["occurred_at"]) == (
        "sla.breached", "2026-05-07T00:00:00+08:00",
    )  # fmt: skip
    done = closed(records, P_LAND)
    assert (done["outcome"], done["resolved_tier"], done["escalations"]) == (
        "referred", "county", 1,
    )  # fmt: skip


def test_petition_bad_lines_are_rejected_and_the_duplicate_is_dropped(
    runs: dict[str, Run],
) -> None:
    run = runs["petition"]
    assert rejections(run.records) == {
        "online-20251120-0318": "invalid_transition",
        "petition-20251215-0013": "invalid_transition",
        "hotline-12345-20251230-0077": "unauthorized_source",
    }
    (second_extension,) = [r for r in run.records if r.get("event_id") == "petition-20251215-0013"]
    assert "no extension left" in second_extension["detail"]
    first, resent = line_of("petition", "online-20250910-0233")
    assert len(run.by_line[first]) == 1
    assert run.by_line[resent] == []
    assert run.stats.duplicates == 1


# -- hotline-12345 -------------------------------------------------------------------------------

H_ROOF, H_HEATING, H_WATER, H_NOISE = (
    "12345-20250924-0031", "12345-20260103-0266", "12345-20260216-0112", "12345-20260302-0458",
)  # fmt: skip


def test_hotline_leaking_roof_bounces_and_breaches_over_national_day(runs: dict[str, Run]) -> None:
    records = runs["hotline-12345"].records
    steps = [(r["to_state"], r["trigger"]) for r in of_case(records, H_ROOF, "case.transitioned")]
    assert steps == [
        ("street.handling", "case.reported"),
        ("district.dispatching", "order.returned"),
        ("street.handling", "order.dispatched"),
        ("district.dispatching", "order.returned"),
        ("city.supervising", "sla.breached"),
        ("follow_up", "order.replied"),
        ("resolved", "followup.rated"),
    ]
    redispatched = [r for r in of_case(records, H_ROOF, "case.transitioned")
                    if r["trigger"] == "order.dispatched"]  # fmt: skip
    # Fri 09-26: Sun 09-28 (make-up), 09-29, 09-30, then 10-09 and 10-10 after the holiday.
    assert redispatched[0]["sla"]["deadline"] == "2025-10-11T00:00:00+08:00"
    # Returned Tue 09-30 16:30: the one working day is Thu 10-09 (10-01..10-08 are off).
    (breach,) = of_case(records, H_ROOF, "sla.breached")
    assert (breach["state"], breach["deadline"]) == (
        "district.dispatching", "2025-10-10T00:00:00+08:00",
    )  # fmt: skip
    # City supervision from Fri 10-10: Sat 10-11 is a make-up working day and counts.
    assert transition(records, H_ROOF, "city.supervising")["sla"]["deadline"] == (
        "2025-10-17T00:00:00+08:00"
    )
    # Working-day limits warn at a fraction of the office time: the first dispatching stay
    # ended before its half-day mark (09-26 12:10), and the second one warns on Thu 10-09 at
    # 12:45, not on 10-05 in the middle of the National Day holiday.
    warnings = [(w["state"], w["occurred_at"]) for w in of_case(records, H_ROOF, "sla.warning")]
    assert warnings == [
        ("district.dispatching", "2025-10-09T12:45:00+08:00"),
        ("city.supervising", "2025-10-15T15:24:00+08:00"),
    ]
    done = closed(records, H_ROOF)
    assert (done["outcome"], done["resolved_tier"], done["escalations"], done["on_time"]) == (
        "resolved", "city", 3, False,
    )  # fmt: skip
    # The reply line first fires the timers the watermark passed, then moves the case; the
    # same reply resent produces nothing.
    run = runs["hotline-12345"]
    first, resent = line_of("hotline-12345", "hotline-12345-20251015-0901")
    assert [r["type"] for r in run.by_line[first]] == [
        "sla.warning", "sla.breached", "case.transitioned", "sla.warning", "case.transitioned",
    ]  # fmt: skip
    assert run.by_line[first][-1]["caused_by"] == "hotline-12345-20251015-0901"
    assert run.by_line[resent] == []
    assert run.stats.duplicates == 1


def test_hotline_urgent_orders_count_hours_through_holidays(runs: dict[str, Run]) -> None:
    records = runs["hotline-12345"].records
    # Heating failure at 20:00: no online response within 2 hours → the district takes over.
    (breach,) = of_case(records, H_HEATING, "sla.breached")
    assert (breach["state"], breach["occurred_at"]) == (
        "urgent.responding", "2026-01-03T22:00:00+08:00",
    )  # fmt: skip
    district = transition(records, H_HEATING, "district.urgent")
    assert district["sla"]["deadline"] == "2026-01-04T22:00:00+08:00"
    done = closed(records, H_HEATING)
    assert (done["outcome"], done["resolved_tier"]) == ("closed", "district")
    # Burst main on a Spring Festival night: hours ignore the holiday; the call-back's three
    # working days start only after it (02-24, 02-25, 02-26).
    responding = transition(records, H_WATER, "urgent.responding")
    assert responding["sla"]["deadline"] == "2026-02-16T23:30:00+08:00"
    # Version 2: the 24 hours run from the call (21:30), not from the response (22:10).
    assert transition(records, H_WATER, "urgent.handling")["sla"]["deadline"] == (
        "2026-02-17T21:30:00+08:00"
    )
    assert transition(records, H_WATER, "follow_up")["sla"]["deadline"] == (
        "2026-02-27T00:00:00+08:00"
    )
    done = closed(records, H_WATER)
    assert (done["outcome"], done["resolved_tier"], done["on_time"]) == ("resolved", "street", True)


def test_hotline_extension_and_unsatisfied_reopen(runs: dict[str, Run]) -> None:
    records = runs["hotline-12345"].records
    assert transition(records, H_NOISE, "street.handling")["sla"]["deadline"] == (
        "2026-03-10T00:00:00+08:00"
    )
    (extended,) = of_case(records, H_NOISE, "sla.changed")
    assert (extended["action"], extended["sla"]["deadline"]) == (
        "extended", "2026-03-17T00:00:00+08:00",
    )  # fmt: skip
    reopened = transition(records, H_NOISE, "district.handling")
    assert (reopened["trigger"], reopened["from_state"]) == ("followup.rated", "follow_up")
    done = closed(records, H_NOISE)
    assert (done["outcome"], done["resolved_tier"], done["escalations"], done["on_time"]) == (
        "resolved", "district", 1, True,
    )  # fmt: skip


def test_hotline_bad_lines_are_rejected(runs: dict[str, Run]) -> None:
    records = runs["hotline-12345"].records
    assert rejections(records) == {
        "hotline-12345-20260102-0014": "unknown_case",
        "hotline-12345-20260304-0150": "invalid_transition",
        None: "malformed",
        # A work order without urgency, and a rating outside the declared enum: refused as
        # schema_invalid with the field named (the workflow's vocabulary), not left to a guard.
        "hotline-12345-20260305-0007": "schema_invalid",
        "grid-20260316-0002": "unauthorized_source",
        "hotline-12345-20260316-0101": "schema_invalid",
    }
    # The unclassified order never opened a case.
    assert not of_case(records, "12345-20260305-0007", "case.transitioned")
