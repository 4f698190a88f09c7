"""The demo town's figures: who reports what, how often, and how each rung tends to do.

All the numbers live here so that they can be read against ../shared/domain/BRIEF.md in one
place. The seeds taken from it:

- a county mediation center accepted 193 cases, 165 were mediatable (85 %), 148 succeeded
  (89.7 % of the mediatable): center acts below refer 12 % onward and settle ~75 %;
- mediation organisations resolve 95–99 % of what they accept, local resolution runs at
  97–98 %: most disputes end at the grid or the center, a few per cent reach the court;
- satisfaction ≥ 97 % (hotline call-backs: 83 % satisfied + 14 % basically satisfied of 99 %
  rated); first-time petition resolution 95–99 % (few reviews, fewer re-reviews);
- a city hotline handled 130,000 requests a year; assuming a city of about a million people
  and leaving consultations out, that is ~60 work orders per 1,000 residents a year. The
  dispute (16) and petition (4) rates per 1,000 are likewise assumptions of this demo, chosen
  so that a town of 60,000 sees two or three disputes and ten work orders a day.

Rates are per 1,000 residents a year; on weekends and public holidays they are scaled by
`rest_day` (offices close, neighbours are at home). The `start` functions mirror each
workflow's `routing:` rules, so a story starts where the engine will put the case.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass

from consumers.demo.stories import Act, Detour, Play, PlayBook, Sketch
from schemas.events import Scalar

Attributes = Callable[[random.Random], dict[str, Scalar]]


def _pick(rng: random.Random, weighted: tuple[tuple[str, float], ...]) -> str:
    return rng.choices([k for k, _ in weighted], [w for _, w in weighted])[0]


# -- disputes (dispute-escalation) -------------------------------------------------------------

DISPUTE_CATEGORIES = (
    ("neighbour", 0.27), ("family", 0.17), ("land_property", 0.12), ("labour", 0.10),
    ("debt", 0.10), ("traffic", 0.08), ("consumer", 0.08), ("environment", 0.05),
    ("medical", 0.03),
)  # fmt: skip
SPECIALISED = frozenset({"traffic", "medical", "labour"})


def dispute_attributes(rng: random.Random) -> dict[str, Scalar]:
    risk = _pick(rng, (("green", 0.80), ("yellow", 0.17), ("red", 0.03)))
    return {
        "category": _pick(rng, DISPUTE_CATEGORIES),
        "village": f"V{rng.randrange(1, 28):02d}",
        "risk": risk,
        "claimed_yuan": int(rng.lognormvariate(8.5, 1.1)) // 100 * 100,
        "cross_jurisdiction": rng.random() < 0.03,
    }


def dispute_start(sketch: Sketch, source: str) -> str:
    if source == "court":
        return "court.mediating"
    if (
        source == "police"
        or sketch.attrs.get("cross_jurisdiction") is True
        or sketch.attrs.get("category") in SPECIALISED
    ):
        return "center.mediating"
    return "grid.mediating"


def _after_center_failure(sketch: Sketch) -> str:
    return "referred" if sketch.attrs.get("category") == "labour" else "court.mediating"


def _follow_up_by(sketch: Sketch) -> str:
    """The follow-up visit (回访) is made by the rung that settled the case."""
    return {"grid": "grid", "center": "center"}.get(sketch.tier or "", "court")


def _specialised(sketch: Sketch) -> bool:
    return sketch.attrs.get("category") in ("traffic", "medical")


DISPUTE: PlayBook = {
    "grid.mediating": Play((
        Act(0.54, "mediation.succeeded", "resolved", ("grid",), {"agreement_signed": False},
            when=(0.02, 0.6)),
        Act(0.29, "mediation.succeeded", "agreement.reached", ("grid",),
            {"agreement_signed": True}, when=(0.05, 0.8)),
        Act(0.11, "mediation.failed", "center.mediating", ("grid",), when=(0.2, 0.95)),
        Act(0.02, "case.withdrawn", "withdrawn", ("grid",)),
        Act(0.04, None),
    )),
    "center.mediating": Play((
        Act(0.12, "case.referred", "referred", ("center",), when=(0.03, 0.3)),
        Act(0.75, "mediation.succeeded", "agreement.reached", ("center",),
            {"agreement_signed": True}),
        Act(0.06, "mediation.failed", _after_center_failure, ("center",), when=(0.3, 0.95)),
        Act(0.01, "case.escalated", "court.mediating", ("center",)),
        Act(0.03, "case.withdrawn", "withdrawn", ("center",)),
        Act(0.03, None),
    ), detours=(
        Detour(0.5, "appraisal.started", ("center",), then="appraisal.finished", days=(5, 25),
               only=_specialised),
        Detour(0.08, "deadline.extended", ("center",)),
    )),
    "court.mediating": Play((
        Act(0.66, "mediation.succeeded", "agreement.reached", ("court",),
            {"agreement_signed": True}),
        Act(0.26, "mediation.failed", "litigation", ("court",), when=(0.3, 0.95)),
        Act(0.04, "case.withdrawn", "withdrawn", ("court",)),
        Act(0.04, None),
    ), detours=(Detour(0.10, "deadline.extended", ("court",)),)),
    "agreement.reached": Play((
        Act(0.30, "confirmation.applied", "confirmation.reviewing", ("court",),
            when=(0.05, 0.6)),
        Act(0.67, "agreement.fulfilled", "resolved", _follow_up_by, when=(0.15, 0.9)),
        Act(0.03, None),
    )),
    "confirmation.reviewing": Play((
        Act(0.96, "confirmation.granted", "confirmed", ("court",)),
        Act(0.04, "confirmation.refused", "court.mediating", ("court",)),
    ), detours=(Detour(0.05, "deadline.extended", ("court",)),)),
}  # fmt: skip


# -- 12345 work orders (hotline-12345) ---------------------------------------------------------

HOTLINE_CATEGORIES = (
    ("housing_repair", 0.14), ("noise", 0.12), ("environment", 0.12), ("roads_traffic", 0.12),
    ("utilities", 0.13), ("property_management", 0.12), ("consumer", 0.10),
    ("labour_wages", 0.07), ("social_assistance", 0.08),
)  # fmt: skip
CENTER = ("hotline-12345",)


def hotline_attributes(rng: random.Random) -> dict[str, Scalar]:
    attrs: dict[str, Scalar] = {
        "urgency": "urgent" if rng.random() < 0.08 else "general",
        "category": _pick(rng, HOTLINE_CATEGORIES),
        "district": f"D{rng.randrange(1, 6):02d}",
    }
    if rng.random() < 0.04:
        attrs["vulnerable_resident"] = True
    return attrs


def hotline_start(sketch: Sketch, source: str) -> str:
    return "urgent.responding" if sketch.attrs.get("urgency") == "urgent" else "street.handling"


def _reopened(sketch: Sketch) -> str:
    return "city.supervising" if sketch.tier == "city" else "district.handling"


HOTLINE: PlayBook = {
    "urgent.responding": Play((
        Act(0.95, "order.responded", "urgent.handling", CENTER, when=(0.05, 0.8)),
        Act(0.05, None),
    )),
    "urgent.handling": Play((
        Act(0.95, "order.replied", "follow_up", CENTER, when=(0.1, 0.9)),
        Act(0.05, None),
    )),
    "district.urgent": Play((
        Act(0.95, "order.replied", "follow_up", CENTER), Act(0.05, None),
    )),
    "street.handling": Play((
        Act(0.70, "order.replied", "follow_up", CENTER, when=(0.1, 0.95)),
        Act(0.10, "order.replied", "follow_up", ("grid",), when=(0.1, 0.9)),
        Act(0.06, "order.returned", "district.dispatching", CENTER, when=(0.05, 0.4)),
        Act(0.04, "order.redirected", "referred", CENTER, when=(0.02, 0.3)),
        Act(0.02, "order.escalated", "district.handling", CENTER),
        Act(0.01, "order.withdrawn", "withdrawn", ("hotline-12345", "online")),
        Act(0.03, None),
    ), detours=(Detour(0.05, "order.extended", CENTER),)),
    "district.dispatching": Play((
        Act(0.95, "order.dispatched", "street.handling", CENTER),
        Act(0.03, "order.escalated", "district.handling", CENTER),
        Act(0.02, None),
    )),
    "district.handling": Play((
        Act(0.90, "order.replied", "follow_up", CENTER),
        Act(0.03, "order.escalated", "city.supervising", CENTER),
        Act(0.02, "order.redirected", "referred", CENTER),
        Act(0.05, None),
    )),
    "city.supervising": Play((
        Act(0.92, "order.replied", "follow_up", CENTER), Act(0.08, None),
    )),
    "follow_up": Play((
        Act(0.83, "followup.rated", "resolved", CENTER, {"rating": "satisfied"},
            when=(0.05, 0.7)),
        Act(0.14, "followup.rated", "resolved", CENTER, {"rating": "basically_satisfied"},
            when=(0.05, 0.7)),
        Act(0.01, "followup.rated", _reopened, CENTER,
            {"rating": "unsatisfied", "reopen": True}),
        Act(0.01, "followup.rated", "closed", CENTER,
            {"rating": "unsatisfied", "reopen": False}),
        Act(0.01, "followup.unreachable", "closed", CENTER, when=(0.6, 0.95)),
    )),
}  # fmt: skip


# -- petitions (petition) ----------------------------------------------------------------------

PETITION_CATEGORIES = (
    ("land_requisition", 0.18), ("social_assistance", 0.16), ("labour_wages", 0.15),
    ("housing", 0.14), ("environment", 0.10), ("law_enforcement", 0.12), ("pensions", 0.15),
)  # fmt: skip
OFFICE = ("petition",)
PETITIONER = ("petition", "online")


def petition_attributes(rng: random.Random) -> dict[str, Scalar]:
    roll = rng.random()
    petitioners = 1 if roll < 0.82 else rng.randrange(2, 5) if roll < 0.95 else rng.randrange(5, 40)
    return {
        "category": _pick(rng, PETITION_CATEGORIES),
        "petitioners": petitioners,
        "respondent_level": "county" if rng.random() < 0.07 else "township",
        "channel": _pick(rng, (("letter", 0.3), ("visit", 0.3), ("online", 0.4))),
    }


def petition_start(sketch: Sketch, source: str) -> str:
    petitioners = sketch.attrs.get("petitioners")
    group = isinstance(petitioners, int) and petitioners >= 5
    if group or sketch.attrs.get("respondent_level") == "county":
        return "county.registered"
    return "township.registered"


def _review(sketch: Sketch) -> str:
    return "county.reviewing" if sketch.tier == "township" else "city.reviewing"


def _rereview(sketch: Sketch) -> str:
    return "city.rereviewing" if sketch.tier == "county" else "province.rereviewing"


_CONCLUDED = Act(1.0, "petition.concluded", "concluded", OFFICE)

PETITION: PlayBook = {
    "township.registered": Play((
        Act(0.90, "petition.routed", "township.accepting", OFFICE, when=(0.05, 0.6)),
        Act(0.08, "petition.redirected", "referred", OFFICE),
        Act(0.02, None),
    )),
    "county.registered": Play((
        Act(0.93, "petition.routed", "county.accepting", OFFICE, when=(0.05, 0.6)),
        Act(0.07, "petition.redirected", "referred", OFFICE),
    )),
    "township.accepting": Play((
        Act(0.88, "petition.accepted", "township.handling", OFFICE),
        Act(0.10, "petition.not_accepted", "referred", OFFICE),
        Act(0.02, None),
    )),
    "county.accepting": Play((
        Act(0.90, "petition.accepted", "county.handling", OFFICE),
        Act(0.10, "petition.not_accepted", "referred", OFFICE),
    )),
    "township.handling": Play((
        Act(0.93, "petition.answered", "answered", OFFICE, when=(0.2, 0.95)),
        Act(0.02, "petition.withdrawn", "withdrawn", PETITIONER),
        Act(0.05, None),
    ), detours=(Detour(0.06, "handling.extended", OFFICE),)),
    "county.handling": Play((
        Act(0.96, "petition.answered", "answered", OFFICE, when=(0.2, 0.95)),
        Act(0.04, None),
    ), detours=(Detour(0.08, "handling.extended", OFFICE),)),
    "answered": Play((
        Act(0.86, "petition.satisfied", "resolved", OFFICE, when=(0.1, 0.8)),
        Act(0.05, "review.requested", _review, PETITIONER, when=(0.3, 0.95)),
        Act(0.09, None),
    ), late=_CONCLUDED),
    "county.reviewing": Play((Act(0.95, "review.answered", "reviewed", OFFICE), Act(0.05, None))),
    "city.reviewing": Play((Act(0.95, "review.answered", "reviewed", OFFICE), Act(0.05, None))),
    "reviewed": Play((
        Act(0.55, "petition.satisfied", "resolved", OFFICE),
        Act(0.10, "rereview.requested", _rereview, PETITIONER, when=(0.3, 0.95)),
        Act(0.35, None),
    ), late=_CONCLUDED),
    "city.rereviewing": Play((Act(0.95, "rereview.answered", "concluded", OFFICE),
                              Act(0.05, None))),
    "province.rereviewing": Play((Act(0.95, "rereview.answered", "concluded", OFFICE),
                                  Act(0.05, None))),
}  # fmt: skip


# -- intake: how often each kind of case is reported, and through which channel ---------------


@dataclass(frozen=True)
class Intake:
    """One stream of new cases of one workflow."""

    workflow: str
    prefix: str
    """Case ids are PREFIX-YYYYMMDD-NNNN (a day's reports numbered in order)."""
    per_1000: float
    """New cases per 1,000 residents per year."""
    rest_day: float
    """Arrival factor on weekends and public holidays."""
    sources: tuple[tuple[str, float], ...]
    attributes: Attributes
    start: Callable[[Sketch, str], str]
    book: PlayBook
    second_report: float = 0.0
    """Chance that another channel reports the same case again (the engine refuses it: one
    dispute may arrive from several channels, the first report opens the case)."""


INTAKES: tuple[Intake, ...] = (
    Intake(
        "dispute-escalation", "FQ-D", per_1000=16.0, rest_day=1.15,
        sources=(("grid", 0.44), ("police", 0.14), ("online", 0.12), ("hotline-12345", 0.12),
                 ("center", 0.09), ("petition", 0.07), ("court", 0.02)),
        attributes=dispute_attributes, start=dispute_start, book=DISPUTE, second_report=0.03,
    ),
    Intake(
        "hotline-12345", "12345", per_1000=60.0, rest_day=0.75,
        sources=(("hotline-12345", 0.76), ("online", 0.19), ("grid", 0.05)),
        attributes=hotline_attributes, start=hotline_start, book=HOTLINE,
    ),
    Intake(
        "petition", "FQ-P", per_1000=4.0, rest_day=0.35,
        sources=(("petition", 0.55), ("online", 0.33), ("hotline-12345", 0.12)),
        attributes=petition_attributes, start=petition_start, book=PETITION,
    ),
)  # fmt: skip

RETRY_CHANCE = 0.01
"""Chance that an upstream system delivers an event twice (same event_id: dropped, counted)."""
