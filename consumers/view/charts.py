"""The console's charts as geometry: numbers in, shapes out; the templates draw them as SVG.

Why server-side SVG: the console must work offline, behind a county network that reaches no
CDN, with no charting library to vendor and keep patched, and a headless browser must be able
to tell that a chart rendered (its shapes are in the DOM). Why geometry objects rather than SVG
strings: the templates escape every text they draw (state and workflow names come from YAML
files), and the shapes can be tested without parsing markup.

Three charts: the ladder as a funnel (`funnel`), the breaches to expect per day (`day_bars`),
and one case's life on a time axis (`timeline`, from `TimelineInput`s the console derives from
the history).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

RUNG_COLORS = ("#0ea5e9", "#6366f1", "#a855f7", "#db2777", "#be123c")
"""The rungs from the lowest up; the same order of colours as the demo report's."""
NO_RUNG_COLOR = "#94a3b8"
SERIES_COLORS = ("#0ea5e9", "#f59e0b", "#10b981", "#8b5cf6", "#ef4444", "#64748b")


def rung_color(index: int | None) -> str:
    return NO_RUNG_COLOR if index is None else RUNG_COLORS[index % len(RUNG_COLORS)]


def nice_step(top: float, ticks: int = 4) -> int:
    """A 1/2/5 × 10^k integer step giving about `ticks` gridlines up to `top` (counts)."""
    raw = max(top / ticks, 1.0)
    power = 10 ** math.floor(math.log10(raw))
    return int(next(m * power for m in (1, 2, 5, 10) if m * power >= raw))


# -- the funnel -------------------------------------------------------------------------------


@dataclass(frozen=True)
class RungCount:
    """One rung's open cases (what the funnel is given)."""

    tier: str | None
    label: str
    open: int
    overdue: int
    at_risk: int
    paused: int
    color: str
    link: str


@dataclass(frozen=True)
class FunnelBar:
    rung: RungCount
    x: float
    y: float
    width: float
    height: float
    overdue_width: float
    """The overdue share of the bar, drawn over its middle in red."""
    text_y: float


@dataclass(frozen=True)
class Funnel:
    width: int
    height: int
    label_x: float
    bars: list[FunnelBar]
    necks: list[str]
    """The polygons joining a bar to the next (SVG `points`): the funnel's shape."""


def funnel(rungs: Sequence[RungCount], *, width: int = 720, bar_room: int = 380) -> Funnel:
    """Centred bars, lowest rung on top, each as wide as its open cases (at least a sliver, so
    an empty rung still shows where it stands on the ladder)."""
    bar_h, gap, margin = 34.0, 14.0, 8.0
    centre = margin + bar_room / 2
    busiest = max((r.open for r in rungs), default=0) or 1
    bars: list[FunnelBar] = []
    for i, rung in enumerate(rungs):
        w = max(bar_room * rung.open / busiest, 4.0)
        y = margin + i * (bar_h + gap)
        overdue_w = w * rung.overdue / max(rung.open, 1)
        bars.append(FunnelBar(rung, centre - w / 2, y, w, bar_h, overdue_w, y + bar_h / 2 + 5))
    necks = [
        f"{a.x:.1f},{a.y + a.height:.1f} {a.x + a.width:.1f},{a.y + a.height:.1f} "
        f"{b.x + b.width:.1f},{b.y:.1f} {b.x:.1f},{b.y:.1f}"
        for a, b in itertools.pairwise(bars)
    ]
    height = int(2 * margin + len(rungs) * bar_h + max(len(rungs) - 1, 0) * gap)
    return Funnel(width, max(height, 40), margin + bar_room + 16, bars, necks)


# -- bars per day -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Segment:
    x: float
    y: float
    width: float
    height: float
    color: str
    title: str


@dataclass(frozen=True)
class DayColumn:
    day: date
    label: str
    total: int
    x: float
    """The centre of the column."""
    top: float
    segments: list[Segment]


@dataclass(frozen=True)
class Tick:
    at: float
    label: str


@dataclass(frozen=True)
class Legend:
    name: str
    color: str


@dataclass(frozen=True)
class DayBars:
    width: int
    height: int
    left: float
    right: float
    baseline: float
    columns: list[DayColumn]
    ticks: list[Tick]
    legend: list[Legend]
    empty: bool


def day_bars(
    days: Sequence[date],
    stacks: Sequence[tuple[str, Sequence[int]]],
    *,
    day_label: dict[date, str],
    width: int = 720,
    height: int = 250,
) -> DayBars:
    """One stacked column per day; `stacks` are (series name, count per day) in legend order."""
    left, right, head, bottom = 40.0, float(width - 10), 30.0, float(height - 36)
    totals = [sum(values[i] for _, values in stacks) for i in range(len(days))]
    step = nice_step(max(totals, default=0))
    top = max(step, math.ceil(max(totals, default=0) / step) * step)
    ky = (bottom - head) / top
    ticks = [Tick(bottom - v * ky, str(v)) for v in range(0, top + 1, step)]
    slot = (right - left) / max(len(days), 1)
    colors = {name: SERIES_COLORS[i % len(SERIES_COLORS)] for i, (name, _) in enumerate(stacks)}
    columns: list[DayColumn] = []
    for i, day in enumerate(days):
        x0, y = left + slot * i + slot * 0.2, bottom
        segments = []
        for name, values in stacks:
            h = values[i] * ky
            if values[i] <= 0:
                continue
            y -= h
            title = f"{day_label[day]} · {name}: {values[i]}"
            segments.append(Segment(x0, y, slot * 0.6, h, colors[name], title))
        columns.append(DayColumn(day, day_label[day], totals[i], left + slot * (i + 0.5), y,
                                 segments))  # fmt: skip
    legend = [Legend(name, colors[name]) for name, _ in stacks]
    return DayBars(width, height, left, right, bottom, columns, ticks, legend,
                   empty=not any(totals))  # fmt: skip


# -- a case's timeline ------------------------------------------------------------------------


@dataclass(frozen=True)
class Stay:
    """A stay in one state, from its transition to the next (`end` None: still there)."""

    state: str
    tier_index: int | None
    start: datetime
    end: datetime | None
    deadline: datetime | None
    """The last deadline of the stay (after extensions and pauses)."""


@dataclass(frozen=True)
class Mark:
    """One record on the axis: its kind (CSS class and shape), when, what the tooltip says."""

    kind: str
    at: datetime
    title: str
    retracted: bool


@dataclass(frozen=True)
class TimelineInput:
    stays: list[Stay]
    marks: list[Mark]
    now: datetime | None
    """Drawn while the case is open."""


@dataclass(frozen=True)
class StayBar:
    x: float
    width: float
    color: str
    label: str
    title: str


@dataclass(frozen=True)
class WindowBar:
    """From the start of a stay to its deadline: the time the limit allowed."""

    x: float
    width: float
    deadline_x: float
    title: str
    passed: bool
    """The stay outlived its deadline."""


@dataclass(frozen=True)
class MarkDot:
    kind: str
    x: float
    y: float
    title: str
    retracted: bool


@dataclass(frozen=True)
class Timeline:
    width: int
    height: int
    left: float
    right: float
    rows: dict[str, float]
    """The y of each row's middle: `state`, `limit`, `records`."""
    stays: list[StayBar]
    windows: list[WindowBar]
    marks: list[MarkDot]
    ticks: list[Tick]
    now_x: float | None
    axis_y: float
    labels: dict[str, str] = field(default_factory=dict)


def timeline(
    data: TimelineInput, zone: ZoneInfo, *, row_labels: dict[str, str], width: int = 960
) -> Timeline:
    """The case on one axis from its first record to the later of its last record, its
    deadline and now (while open). Marks that would overlap in the records row are stacked."""
    moments = [m.at for m in data.marks] + [s.start for s in data.stays]
    moments += [s.deadline for s in data.stays if s.deadline is not None]
    if data.now is not None:
        moments.append(data.now)
    start, end = min(moments), max(moments)
    span = max((end - start).total_seconds(), 3600.0)
    start -= timedelta(seconds=span * 0.03)
    end = start + timedelta(seconds=span * 1.06)
    left, right = 120.0, float(width - 16)
    k = (right - left) / (end - start).total_seconds()

    def x(at: datetime) -> float:
        return left + (at - start).total_seconds() * k

    rows = {"state": 40.0, "limit": 78.0, "records": 112.0}
    stays, windows = [], []
    for s in data.stays:
        until = s.end or data.now or end
        title = f"{s.state}: {_local(s.start, zone)} → {_local(s.end, zone) if s.end else '…'}"
        stays.append(StayBar(x(s.start), max(x(until) - x(s.start), 2.0),
                             rung_color(s.tier_index), s.state, title))  # fmt: skip
        if s.deadline is not None:
            passed = (s.end or data.now or end) > s.deadline
            windows.append(WindowBar(x(s.start), max(x(s.deadline) - x(s.start), 1.0),
                                     x(s.deadline), f"{s.state} · {_local(s.deadline, zone)}",
                                     passed))  # fmt: skip
    marks: list[MarkDot] = []
    placed: list[tuple[float, float]] = []
    for m in sorted(data.marks, key=lambda m: m.at):
        mx, my = x(m.at), rows["records"]
        while any(abs(px - mx) < 9 and py == my for px, py in placed):
            my += 14
        placed.append((mx, my))
        marks.append(MarkDot(m.kind, mx, my, m.title, m.retracted))
    axis_y = max([rows["records"] + 24] + [py + 20 for _, py in placed])
    return Timeline(width, int(axis_y + 28), left, right, rows, stays, windows, marks,
                    _time_ticks(start, end, zone, x), x(data.now) if data.now else None,
                    axis_y, row_labels)  # fmt: skip


def _local(at: datetime, zone: ZoneInfo) -> str:
    return at.astimezone(zone).strftime("%Y-%m-%d %H:%M")


_STEPS_HOURS = (1, 2, 3, 6, 12, 24, 48, 72, 7 * 24, 14 * 24, 28 * 24, 56 * 24, 91 * 24, 182 * 24)


def _time_ticks(
    start: datetime, end: datetime, zone: ZoneInfo, x: Callable[[datetime], float]
) -> list[Tick]:
    """About eight ticks on whole hours or local midnights, labelled in the zone."""
    hours = (end - start).total_seconds() / 3600
    step = next((s for s in _STEPS_HOURS if hours / s <= 8), _STEPS_HOURS[-1])
    local = start.astimezone(zone)
    if step < 24:
        first = local.replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)
        fmt = "%m-%d %H:%M"
    else:
        first = local.replace(hour=0, minute=0, second=0, microsecond=0) + timedelta(days=1)
        fmt = "%m-%d" if hours < 300 * 24 else "%Y-%m-%d"
    ticks, at = [], first
    while at <= end:
        ticks.append(Tick(x(at), at.strftime(fmt)))
        # step in wall time of the zone (days stay at midnight across offset changes)
        at = (at.replace(tzinfo=None) + timedelta(hours=step)).replace(tzinfo=zone)
    return ticks
