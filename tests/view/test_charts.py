"""The console's chart geometry (consumers/view/charts.py): sizes follow the numbers, empty
charts still draw, and a timeline's ticks fall on local midnights."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from consumers.view import charts

pytestmark = pytest.mark.unit

SHANGHAI = ZoneInfo("Asia/Shanghai")


def rung(tier: str, open_: int, overdue: int = 0) -> charts.RungCount:
    return charts.RungCount(tier, tier, open_, overdue, 0, 0, "#000000", f"/search?tier={tier}")


def test_funnel_bars_are_as_wide_as_their_open_cases() -> None:
    funnel = charts.funnel([rung("grid", 40, overdue=10), rung("center", 20), rung("court", 0)])
    grid, center, court = funnel.bars
    assert center.width == pytest.approx(grid.width / 2)
    assert grid.overdue_width == pytest.approx(grid.width / 4)
    assert court.width == 4.0  # an empty rung is a sliver, still on the ladder
    assert grid.x + grid.width / 2 == pytest.approx(center.x + center.width / 2)  # centred
    assert len(funnel.necks) == 2
    assert grid.y < center.y < court.y


def test_day_bars_stack_per_day_and_draw_an_empty_horizon() -> None:
    days = [date(2026, 3, 11), date(2026, 3, 12)]
    label = {d: d.isoformat() for d in days}
    bars = charts.day_bars(days, [("a", [3, 0]), ("b", [2, 6])], day_label=label)
    first, second = bars.columns
    assert (first.total, second.total) == (5, 6)
    assert [s.title for s in first.segments] == ["2026-03-11 · a: 3", "2026-03-11 · b: 2"]
    assert sum(s.height for s in first.segments) == pytest.approx(bars.baseline - first.top)
    assert bars.ticks[0].label == "0"
    empty = charts.day_bars(days, [], day_label=label)
    assert empty.empty
    assert [c.segments for c in empty.columns] == [[], []]
    assert [t.label for t in empty.ticks] == ["0", "1"]


def test_a_timeline_spans_the_case_and_ticks_on_local_midnights() -> None:
    start = datetime(2026, 3, 1, 9, 0, tzinfo=SHANGHAI)
    day = timedelta(days=1)
    stays = [
        charts.Stay("grid.mediating", 0, start, start + 2 * day, start + 3 * day),
        charts.Stay("center.mediating", 1, start + 2 * day, None, start + 9 * day),
    ]
    marks = [charts.Mark("opened", start, "opened", retracted=False),
             charts.Mark("warning", start, "warning", retracted=True),
             charts.Mark("escalation", start + 2 * day, "up", retracted=False)]  # fmt: skip
    now = start + 4 * day
    drawn = charts.timeline(charts.TimelineInput(stays, marks, now), SHANGHAI,
                            row_labels={"state": "s", "limit": "l", "records": "r"})  # fmt: skip
    assert drawn.left <= drawn.stays[0].x < drawn.stays[1].x
    assert drawn.stays[1].x + drawn.stays[1].width == pytest.approx(drawn.now_x)
    assert [w.passed for w in drawn.windows] == [False, False]
    opened, warning, _ = drawn.marks
    assert warning.y > opened.y  # two records at one instant are stacked, not overlaid
    assert warning.retracted
    assert [t.label for t in drawn.ticks] == ["03-02", "03-04", "03-06", "03-08", "03-10"]
    per_day = (drawn.ticks[1].at - drawn.ticks[0].at) / 2
    # the first tick is 03-02 00:00 local, 15 hours after the first record
    assert drawn.ticks[0].at == pytest.approx(drawn.stays[0].x + per_day * 15 / 24)
    assert all(drawn.left <= t.at <= drawn.right for t in drawn.ticks)
