"""A synthetic stream of dispute cases: the input of the benchmarks and of the integration
tests that need many cases (deterministic for a seed; paths through the ladder weighted roughly
as the domain brief's figures: most cases settle at the grid)."""

from __future__ import annotations

import json
import random
from datetime import datetime, timedelta
from typing import Any

WORKFLOW = "dispute-escalation"
START = datetime.fromisoformat("2025-03-03T09:00:00+08:00")

# Paths through the ladder with rough weights from the brief: most cases settle at the grid.
PATHS: list[tuple[float, list[tuple[str, str]]]] = [
    (0.55, [("mediation.succeeded", "grid")]),
    (0.15, [("mediation.succeeded", "grid"), ("agreement.fulfilled", "grid")]),
    (0.12, [("mediation.failed", "grid"), ("mediation.succeeded", "center"),
            ("confirmation.applied", "center"), ("confirmation.granted", "court")]),
    (0.08, [("mediation.failed", "grid"), ("appraisal.started", "center"),
            ("appraisal.finished", "center"), ("mediation.succeeded", "center"),
            ("agreement.fulfilled", "center")]),
    (0.06, [("mediation.failed", "grid"), ("mediation.failed", "center"),
            ("mediation.succeeded", "court"), ("agreement.fulfilled", "court")]),
    (0.04, [("mediation.failed", "grid"), ("mediation.failed", "center"),
            ("mediation.failed", "court")]),
]  # fmt: skip
CATEGORIES = ["neighbour", "neighbour", "family", "property", "labour", "traffic", "medical"]


def synthetic_stream(cases: int, seed: int = 7) -> list[bytes]:
    """Interleaved canonical events of `cases` cases, as the JSON bytes Kafka would carry."""
    rng = random.Random(seed)  # noqa: S311 - synthetic data, not secrets
    weights = [w for w, _ in PATHS]
    timeline: list[tuple[datetime, str, dict[str, Any]]] = []
    for n in range(cases):
        case_id = f"bench-{n}"
        at = START + timedelta(minutes=rng.randrange(0, 60 * 24 * 60))
        category = rng.choice(CATEGORIES)
        report = {"workflow": WORKFLOW, "attributes": {"category": category}}
        timeline.append(
            (at, "grid", _event(case_id, 0, "case.reported", at, source="grid", payload=report))
        )
        path = rng.choices([p for _, p in PATHS], weights)[0]
        for i, (type_, source) in enumerate(path, start=1):
            at += timedelta(hours=rng.randrange(2, 40))
            payload = {"agreement_signed": True} if type_ == "mediation.succeeded" else {}
            timeline.append(
                (at, source, _event(case_id, i, type_, at, source=source, payload=payload))
            )
    timeline.sort(key=lambda item: item[0])
    return [json.dumps(e, ensure_ascii=False).encode() for _, _, e in timeline]


def _event(
    case_id: str, n: int, type_: str, at: datetime, *, source: str, payload: dict[str, Any]
) -> dict[str, Any]:
    return {
        "event_id": f"{case_id}-{n}", "case_id": case_id, "type": type_,
        "occurred_at": at.isoformat(), "source": source, "payload": payload,
    }  # fmt: skip
