"""A snapshot's instants are `isoformat()` texts even though they are remembered (engine/case.py
`_iso`): equal instants in other zones, or the other side of a fold, keep their own text."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest

from engine.case import _iso

pytestmark = pytest.mark.unit


def test_remembered_text_is_isoformat_for_equal_instants_in_other_zones() -> None:
    shanghai = datetime(2026, 3, 1, 8, 0, tzinfo=ZoneInfo("Asia/Shanghai"))
    same_instant = [
        shanghai,
        shanghai.astimezone(UTC),
        shanghai.astimezone(timezone(timedelta(hours=8))),
        shanghai.astimezone(timezone(timedelta(hours=-5))),
    ]
    assert len({*same_instant}) == 1  # equal as datetimes, not as text
    for _ in range(2):  # computed, then remembered
        assert [_iso(at) for at in same_instant] == [at.isoformat() for at in same_instant]


def test_remembered_text_tells_the_two_sides_of_a_fold_apart() -> None:
    first = datetime(2026, 11, 1, 1, 30, tzinfo=ZoneInfo("America/New_York"))
    second = first.replace(fold=1)
    assert first == second  # same zone: compared without the fold
    for _ in range(2):
        assert (_iso(first), _iso(second)) == (
            "2026-11-01T01:30:00-04:00",
            "2026-11-01T01:30:00-05:00",
        )


def test_naive_and_microsecond_instants() -> None:
    for at in (datetime(2026, 1, 2, 3, 4, 5), datetime(2026, 1, 2, 3, 4, 5, 6, tzinfo=UTC)):
        assert _iso(at) == _iso(at) == at.isoformat()
