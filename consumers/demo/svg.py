"""Small inline-SVG charts for the demo report: a Sankey diagram, bars and lines.

Why hand-written SVG: the report must open anywhere, offline, as one file (no CDN, no charting
library to vendor), and a test must be able to see that the charts rendered. Plain SVG strings
with `<title>` tooltips do all of that in a couple of hundred lines.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from html import escape

FONT = 'font-family="system-ui, sans-serif" font-size="12"'


@dataclass(frozen=True)
class Series:
    name: str
    color: str
    values: Sequence[float]


def _svg(width: int, height: int, css_class: str, label: str, body: list[str]) -> str:
    return (
        f'<svg class="{css_class}" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} '
        f'{height}" width="{width}" height="{height}" role="img" aria-label="{escape(label)}" '
        f"{FONT}>" + "".join(body) + "</svg>"
    )


def _nice_step(top: float, ticks: int = 5) -> float:
    """A 1/2/5 × 10^k step giving about `ticks` gridlines up to `top`."""
    raw = max(top, 1e-9) / ticks
    power = 10.0 ** math.floor(math.log10(raw))
    return next(m * power for m in (1.0, 2.0, 5.0, 10.0) if m * power >= raw)


def _fmt(value: float, percent: bool = False) -> str:
    return f"{value:.0%}" if percent else f"{value:g}"


# -- Sankey ------------------------------------------------------------------------------------


@dataclass
class _Node:
    name: str
    column: int
    value: float = 0.0
    x: float = 0.0
    y: float = 0.0
    out_offset: float = 0.0
    in_offset: float = 0.0


def sankey(
    columns: Sequence[Sequence[str]],
    links: Mapping[tuple[str, str], int],
    colors: Mapping[str, str],
    *,
    label: str,
    width: int = 960,
    height: int = 380,
) -> str:
    """Nodes in columns left to right; bands as wide as the cases that took each link."""
    margin, node_w, pad, label_room = 10, 14, 14, 120
    nodes = {n: _Node(n, c) for c, col in enumerate(columns) for n in col}
    links = {k: v for k, v in links.items() if v > 0 and k[0] in nodes and k[1] in nodes}
    for node in nodes.values():
        out = sum(v for (a, _), v in links.items() if a == node.name)
        into = sum(v for (_, b), v in links.items() if b == node.name)
        node.value = max(out, into)
    shown = [[n for n in col if nodes[n].value > 0] for col in columns]
    busiest = max(sum(nodes[n].value for n in col) for col in shown)
    scale = (height - 2 * margin - pad * max(len(c) for c in shown)) / max(busiest, 1.0)
    step = (width - label_room - node_w - 2 * margin) / max(len(columns) - 1, 1)
    for c, col in enumerate(shown):
        y = float(margin)
        for name in col:
            node = nodes[name]
            node.x, node.y = margin + c * step, y
            y += node.value * scale + pad
    body: list[str] = []
    ordered = sorted(links.items(), key=lambda kv: (nodes[kv[0][0]].y, nodes[kv[0][1]].y))
    for (a, b), value in ordered:
        src, dst, band = nodes[a], nodes[b], value * scale
        x0, x1 = src.x + node_w, dst.x
        y0, y1 = src.y + src.out_offset, dst.y + dst.in_offset
        src.out_offset += band
        dst.in_offset += band
        xm = (x0 + x1) / 2
        path = (
            f"M{x0:.1f},{y0:.1f} C{xm:.1f},{y0:.1f} {xm:.1f},{y1:.1f} {x1:.1f},{y1:.1f} "
            f"L{x1:.1f},{y1 + band:.1f} C{xm:.1f},{y1 + band:.1f} {xm:.1f},{y0 + band:.1f} "
            f"{x0:.1f},{y0 + band:.1f} Z"
        )
        color = colors.get(b if b in colors else a, "#94a3b8")
        body.append(
            f'<path class="link" d="{path}" fill="{color}" fill-opacity="0.45">'
            f"<title>{escape(a)} → {escape(b)}: {value} cases</title></path>"
        )
    for node in nodes.values():
        if node.value <= 0:
            continue
        h = max(node.value * scale, 1.0)
        color = colors.get(node.name, "#475569")
        body.append(
            f'<rect class="node" x="{node.x:.1f}" y="{node.y:.1f}" width="{node_w}" '
            f'height="{h:.1f}" fill="{color}"><title>{escape(node.name)}: '
            f"{node.value:g}</title></rect>"
            f'<text x="{node.x + node_w + 4:.1f}" y="{node.y + h / 2 + 4:.1f}">'
            f"{escape(node.name)} {node.value:g}</text>"
        )
    return _svg(width, height, "chart sankey", label, body)


# -- bars and lines ----------------------------------------------------------------------------


def _axes(
    width: int, height: int, top: float, labels: Sequence[str], *, every: int, percent: bool
) -> tuple[list[str], float, float, float]:
    """Gridlines, y ticks and x labels; returns (elements, x0, plot width, y scale)."""
    left, bottom, right, head = 44, 24, 10, 26
    step = _nice_step(top)
    top = max(step, math.ceil(top / step) * step)
    plot_w, plot_h = width - left - right, height - bottom - head
    ky = plot_h / top
    out: list[str] = []
    tick = 0.0
    while tick <= top + 1e-9:
        y = head + plot_h - tick * ky
        out.append(
            f'<line x1="{left}" x2="{width - right}" y1="{y:.1f}" y2="{y:.1f}" stroke="#e2e8f0"/>'
            f'<text x="{left - 6}" y="{y + 4:.1f}" text-anchor="end" fill="#475569">'
            f"{_fmt(tick, percent)}</text>"
        )
        tick += step
    slot = plot_w / max(len(labels), 1)
    for i, text in enumerate(labels):
        if i % every == 0:
            x = left + slot * (i + 0.5)
            out.append(
                f'<text x="{x:.1f}" y="{height - 6}" text-anchor="middle" fill="#475569">'
                f"{escape(text)}</text>"
            )
    return out, left, plot_w, ky


def _legend(series: Sequence[Series]) -> list[str]:
    out, x = [], 44.0
    for s in series:
        out.append(
            f'<rect x="{x:.0f}" y="6" width="10" height="10" fill="{s.color}"/>'
            f'<text x="{x + 14:.0f}" y="15">{escape(s.name)}</text>'
        )
        x += 24 + 7 * len(s.name)
    return out


def bars(
    labels: Sequence[str],
    series: Sequence[Series],
    *,
    label: str,
    width: int = 460,
    height: int = 240,
    every: int = 1,
    percent: bool = False,
) -> str:
    """Stacked bars, one stack per label (`percent`: values are fractions, shown as %)."""
    totals = [sum(s.values[i] for s in series) for i in range(len(labels))]
    top = 1.0 if percent else max(totals, default=0) or 1
    body, left, plot_w, ky = _axes(width, height, top, labels, every=every, percent=percent)
    base_y = height - 24
    slot = plot_w / max(len(labels), 1)
    for i, text in enumerate(labels):
        y = float(base_y)
        for s in series:
            h = s.values[i] * ky
            if h <= 0:
                continue
            y -= h
            body.append(
                f'<rect class="bar" x="{left + slot * i + slot * 0.15:.1f}" y="{y:.1f}" '
                f'width="{slot * 0.7:.1f}" height="{h:.1f}" fill="{s.color}">'
                f"<title>{escape(text)} · {escape(s.name)}: {_fmt(s.values[i], percent)}"
                "</title></rect>"
            )
    return _svg(width, height, "chart bars", label, body + _legend(series))


def lines(
    labels: Sequence[str],
    series: Sequence[Series],
    *,
    label: str,
    width: int = 460,
    height: int = 240,
    every: int = 1,
) -> str:
    """One polyline per series over the labels."""
    top = max((v for s in series for v in s.values), default=0) or 1
    body, left, plot_w, ky = _axes(width, height, top, labels, every=every, percent=False)
    base_y = height - 24
    slot = plot_w / max(len(labels), 1)
    for s in series:
        points = " ".join(
            f"{left + slot * (i + 0.5):.1f},{base_y - v * ky:.1f}" for i, v in enumerate(s.values)
        )
        body.append(
            f'<polyline class="line" points="{points}" fill="none" stroke="{s.color}" '
            f'stroke-width="2"><title>{escape(s.name)}</title></polyline>'
        )
    return _svg(width, height, "chart lines", label, body + _legend(series))
