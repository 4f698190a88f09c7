"""The demo's HTML report: one self-contained file (inline CSS and SVG, nothing fetched).

Why a file rather than a dashboard: it must work on a fresh clone with no Grafana and no
network, be attached to an issue or mailed, and still say the same thing next year. The
Prometheus metrics served while the demo runs are the live view; this is the record.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from html import escape
from pathlib import Path

from consumers.demo.svg import Series, bars, lines, sankey
from consumers.demo.town import TownSpec
from consumers.demo.town_stats import OPEN, RESOLVED_OUTCOMES, Ratios, Tally

WORKFLOW_COLORS = {"dispute-escalation": "#2563eb", "hotline-12345": "#16a34a",
                   "petition": "#d97706"}  # fmt: skip
RUNG_COLORS = ("#0ea5e9", "#6366f1", "#a855f7", "#db2777", "#be123c")
OUTCOME_COLORS = {"resolved": "#16a34a", "confirmed": "#15803d", "withdrawn": "#94a3b8",
                  "referred": "#f59e0b", "litigation": "#dc2626", "closed": "#64748b",
                  OPEN: "#cbd5e1", "reported": "#334155"}  # fmt: skip
CLOSE_BINS = ((0, 1, "<1 d"), (1, 3, "1–3 d"), (3, 7, "3–7 d"), (7, 14, "1–2 wk"),
              (14, 30, "2–4 wk"), (30, 60, "1–2 mo"), (60, 10_000, "2 mo+"))  # fmt: skip
RATIO_NAMES = (
    ("local_resolution", "Local resolution rate", "就地化解率"),
    ("mediation_success", "Mediation success rate", "调解成功率"),
    ("on_time", "On-time rate", "按期办结率"),
    ("escalation", "Escalation rate", "上交率"),
    ("satisfaction", "Satisfaction", "满意率"),
    ("resolution", "Resolution rate", "化解率"),
)


@dataclass(frozen=True)
class RunInfo:
    """How the run went, for the report's header."""

    events: int
    duplicates: int
    seconds: float
    complete: bool
    view_url: str | None = None
    """The read model of the town's records (consumers/demo/view.py), when written."""


def percent(value: float | None) -> str:
    return "—" if value is None else f"{value:.1%}"


def write_report(path: Path, tally: Tally, spec: TownSpec, run: RunInfo) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render(tally, spec, run), encoding="utf-8")
    return path


def render(tally: Tally, spec: TownSpec, run: RunInfo) -> str:
    end = spec.start + timedelta(days=spec.days - 1)
    title = f"Fengqiao demo: a town of {spec.population:,} over {spec.days} days"
    rate = run.events / run.seconds if run.seconds > 0 else 0.0
    status = "complete" if run.complete else "interrupted (run again to resume)"
    parts = [
        f"<h1>{escape(title)}</h1>",
        f'<p class="sub">{spec.start} → {end} · seed {spec.seed} · {status} · '
        f"{run.events:,} events, {tally.records:,} records, {run.duplicates:,} duplicates "
        f"dropped · busy {run.seconds:.1f} s ({rate:,.0f} events/s)</p>",
        _cards(tally.ratios()),
        "<h2>Escalation flow</h2>",
        '<p class="note">Each band is cases: where they were reported, every rung they climbed '
        "to, and how they ended (or that they are still open).</p>",
        *(_flow(tally, wf) for wf in tally.ladders),
        "<h2>Tiers</h2>",
        _tier_table(tally),
        _ratio_table(tally),
        "<h2>Time limits (SLA)</h2>",
        '<div class="grid">',
        _weekly_breaches(tally, spec),
        _open_cases(tally, spec),
        _close_times(tally),
        _on_time(tally),
        "</div>",
        "<h2>Refused and duplicate input</h2>",
        _rejections(tally, run),
        _case_view(run),
        _definitions(),
    ]
    return _PAGE.format(title=escape(title), body="\n".join(parts))


def _case_view(run: RunInfo) -> str:
    """Where every case of the town can be looked up: its read model, and the commands."""
    if run.view_url is None:
        return ""
    url = escape(run.view_url)
    return (
        "<h2>Every case 案件查询</h2>"
        '<p class="note">The town\'s records are projected into a read model, as '
        "<code>fengqiao view</code> projects <code>fengqiao.transitions</code>: "
        f'<a href="{url}"><code>{url}</code></a>. List the overdue cases with '
        f"<code>fengqiao cases list --status overdue --db {url}</code>, one case's timeline "
        f"with <code>fengqiao cases show CASE_ID --db {url}</code>, or browse them in the "
        f"console: <code>FENGQIAO_VIEW_DB={url} fengqiao view</code>.</p>"
    )


def _cards(ratios: Ratios) -> str:
    cards = [
        f'<div class="card"><div class="value">{percent(getattr(ratios, key))}</div>'
        f'<div class="label">{escape(name)}<br><span lang="zh">{zh}</span></div></div>'
        for key, name, zh in RATIO_NAMES
    ]
    return '<div class="cards">' + "".join(cards) + "</div>"


def _flow(tally: Tally, wf: str) -> str:
    ladder = tally.ladders[wf]
    links = tally.flows(wf)
    ends = sorted({b for (_, b) in links if b not in ladder.tiers}, key=_outcome_order)
    colors = dict(OUTCOME_COLORS)
    colors.update({t: RUNG_COLORS[i % len(RUNG_COLORS)] for i, t in enumerate(ladder.tiers)})
    columns = [["reported"], *([t] for t in ladder.tiers), ends]
    if not links:
        return f"<h3>{escape(wf)}</h3><p>No cases.</p>"
    chart = sankey(columns, links, colors, label=f"Escalation flow of {wf}")
    return f'<h3>{escape(wf)}</h3><figure class="flow">{chart}</figure>'


def _outcome_order(name: str) -> tuple[int, str]:
    return (0 if name in RESOLVED_OUTCOMES else 2 if name == OPEN else 1, name)


def _tier_table(tally: Tally) -> str:
    rows = []
    for (wf, tier), t in tally.tiers.items():
        rate = percent(t.escalated / t.entered if t.entered else None)
        rows.append(
            f"<tr><td>{escape(wf)}</td><td>{escape(tier)}</td><td>{t.entered:,}</td>"
            f"<td>{t.resolved:,}</td><td>{t.escalated:,}</td><td>{rate}</td>"
            f"<td>{t.breached:,}</td></tr>"
        )
    head = (
        "<tr><th>workflow</th><th>tier</th><th>entered</th><th>resolved here</th>"
        "<th>escalated from</th><th>escalation rate</th><th>SLA breaches</th></tr>"
    )
    return f'<table class="tiers">{head}{"".join(rows)}</table>'


def _ratio_table(tally: Tally) -> str:
    names = list(tally.ladders)
    head = "<tr><th>ratio</th>" + "".join(f"<th>{escape(n)}</th>" for n in names) + "</tr>"
    per = {n: tally.ratios(n) for n in names}
    rows = [
        f"<tr><td>{escape(label)} <span lang='zh'>{zh}</span></td>"
        + "".join(f"<td>{percent(getattr(per[n], key))}</td>" for n in names)
        + "</tr>"
        for key, label, zh in RATIO_NAMES
    ]
    return f'<table class="ratios">{head}{"".join(rows)}</table>'


def _weeks(spec: TownSpec) -> list[str]:
    return [
        (spec.start + timedelta(days=7 * w)).strftime("%m-%d") for w in range((spec.days + 6) // 7)
    ]


def _weekly_breaches(tally: Tally, spec: TownSpec) -> str:
    weeks = _weeks(spec)
    series = []
    for wf in tally.ladders:
        values = [0.0] * len(weeks)
        for (name, day), n in tally.daily["breaches"].items():
            if name == wf and 0 <= day < spec.days:
                values[day // 7] += n
        series.append(Series(wf, WORKFLOW_COLORS.get(wf, "#64748b"), values))
    chart = bars(weeks, series, label="SLA breaches per week", every=2)
    return _figure("SLA breaches per week (by the week they fired)", chart)


def _open_cases(tally: Tally, spec: TownSpec) -> str:
    days = [(spec.start + timedelta(days=d)).strftime("%m-%d") for d in range(spec.days)]
    series = []
    for wf in tally.ladders:
        level, values = 0, []
        for d in range(spec.days):
            level += tally.daily["opened"][(wf, d)] - tally.daily["closed"][(wf, d)]
            values.append(float(level))
        series.append(Series(wf, WORKFLOW_COLORS.get(wf, "#64748b"), values))
    chart = lines(days, series, label="Open cases per day", every=max(1, spec.days // 6))
    return _figure("Open cases at the end of each day", chart)


def _close_times(tally: Tally) -> str:
    labels = [name for _, _, name in CLOSE_BINS]
    series = []
    for wf, days in tally.close_days.items():
        values = [float(sum(1 for d in days if lo <= d < hi)) for lo, hi, _ in CLOSE_BINS]
        series.append(Series(wf, WORKFLOW_COLORS.get(wf, "#64748b"), values))
    return _figure("Time from report to closure", bars(labels, series, label="Days to close"))


def _on_time(tally: Tally) -> str:
    names = list(tally.ladders)
    values = [tally.ratios(n).on_time or 0.0 for n in names]
    series = [Series("closed on time", "#0d9488", values)]
    chart = bars(names, series, label="On-time rate", percent=True)
    return _figure("On-time rate of closed cases", chart)


def _figure(caption: str, chart: str) -> str:
    return f"<figure>{chart}<figcaption>{escape(caption)}</figcaption></figure>"


def _rejections(tally: Tally, run: RunInfo) -> str:
    rows = "".join(
        f"<tr><td>{escape(reason)}</td><td>{n:,}</td></tr>"
        for reason, n in sorted(tally.rejected.items())
    )
    missing = tally.holiday_data_missing
    note = (
        f"<p>{missing:,} deadlines fell in a year without holiday data "
        "(<code>holiday_data_missing</code>): add that year's file to workflows/calendars/.</p>"
        if missing
        else ""
    )
    return (
        f"<p>{run.duplicates:,} duplicate deliveries (same <code>event_id</code>) were dropped "
        "and counted. Refused events go to the dead-letter topic with a reason; here they are "
        "reports of an already open case from a second channel.</p>"
        f'<table class="rejected"><tr><th>reason</th><th>events</th></tr>{rows}</table>{note}'
    )


def _definitions() -> str:
    items: Sequence[str] = (
        "<b>Local resolution rate</b>: resolved on the two lowest rungs ÷ resolved.",
        "<b>Mediation success rate</b>: mediations ending in agreement ÷ mediations concluded.",
        "<b>On-time rate</b>: closed without a breached deadline ÷ closed.",
        "<b>Escalation rate</b>: climbs out of a rung ÷ entries into a rung.",
        "<b>Satisfaction</b>: call-back ratings satisfied or basically satisfied ÷ ratings.",
        "<b>Resolution rate</b>: resolved, confirmed or withdrawn ÷ closed.",
    )
    return "<h2>Definitions</h2><ul>" + "".join(f"<li>{i}</li>" for i in items) + "</ul>"


_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 24px auto; max-width: 1000px;
       color: #0f172a; padding: 0 16px; background: #fff; }}
h1 {{ font-size: 24px; margin-bottom: 4px; }} h2 {{ margin-top: 32px; font-size: 19px; }}
h3 {{ font-size: 15px; margin: 16px 0 4px; color: #334155; }}
.sub, .note, figcaption {{ color: #475569; font-size: 13px; }}
.cards {{ display: grid; grid-template-columns: repeat(6, 1fr); gap: 8px; margin-top: 16px; }}
.card {{ border: 1px solid #e2e8f0; border-radius: 8px; padding: 10px; }}
.card .value {{ font-size: 22px; font-weight: 600; }}
.card .label {{ font-size: 12px; color: #475569; }}
.grid {{ display: grid; grid-template-columns: 1fr 1fr; gap: 16px; }}
figure {{ margin: 0; }} svg {{ max-width: 100%; height: auto; }}
table {{ border-collapse: collapse; margin: 8px 0 16px; font-size: 13px; }}
th, td {{ border-bottom: 1px solid #e2e8f0; padding: 4px 10px; text-align: right; }}
th:first-child, td:first-child, .tiers td:nth-child(2) {{ text-align: left; }}
</style></head>
<body>
{body}
</body></html>
"""
