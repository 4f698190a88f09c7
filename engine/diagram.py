"""State diagrams of a workflow (Mermaid for Markdown, DOT for Graphviz).

Drawn from the checked spec rather than from `transitions`' own GraphMachine, which would pull in
Graphviz bindings for what is a few lines of text. The diagram is for the workflow's author and
reviewers, so it shows what decides a case's path: each transition's trigger, the channels that
may send it (`[court]`), the window it is accepted in (`within 30 calendar days`) and its guard;
the routing rules from the start, in order (first match wins); each state's tier, SLA (with what
it counts from and whose time it is) and, for terminal states, outcome; and what a breach does:
an escalation up the ladder (`sla.breached`) or a lapse to any state (`sla.timed_out`), both
dashed in DOT in their own colours, marked ⌛ and ⏱ in Mermaid, whose state diagrams cannot style
one edge. The two must not look alike: an escalation is the ladder working, a lapse (mediation
that ran out, a party who let a window pass) ends the road the case was on.

The text of each element is built once, format-neutral (`state_lines`, `edge_lines`), then
escaped for each format; one small function per element kind (`sla_text`, `window_text`,
`edge_guard`), so a new field of the workflow language shows up by changing one place.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from schemas.workflow import DurationSpec, SlaSpec, StateSpec, WindowSpec, WorkflowSpec

GUARD_WIDTH = 72
"""Longer guards are cut (with …): the diagram says *that* and roughly *what*; the YAML has it
all."""
SNAP = 12
"""A cut moves to a space at most this far away rather than split a word."""

BREACH_TRIGGER = "sla.breached"
TIMEOUT_TRIGGER = "sla.timed_out"
"""The engine's reserved triggers (`engine.machine`), repeated so that drawing a diagram does not
import the state machine library; a unit test keeps them equal."""

TIER_COLOURS = (
    ("#e8f5e9", "#2e7d32"),  # green: the lowest rung, where most should end
    ("#fff8e1", "#f9a825"),
    ("#fdecea", "#c62828"),
    ("#ede7f6", "#5e35b1"),
    ("#e3f2fd", "#1565c0"),
)
"""(fill, stroke) per rung, lowest first, cycling: the same colours in both formats."""

EdgeKind = Literal["event", "escalation", "timeout"]

BREACH_COLOUR = "#c62828"
TIMEOUT_COLOUR = "#6d4c41"
"""Red for a climb (an alarm on the ladder), brown for a lapse (a road that ended)."""
MERMAID_MARKS: dict[EdgeKind, str] = {"event": "", "escalation": "⌛ ", "timeout": "⏱ "}
DOT_COLOURS: dict[EdgeKind, str] = {"escalation": BREACH_COLOUR, "timeout": TIMEOUT_COLOUR}


@dataclass(frozen=True)
class Edge:
    """One arrow: `src` None is the start (`[*]`), a new case's entry."""

    src: str | None
    dest: str
    trigger: str
    allowed_sources: tuple[str, ...] = ()
    guard: str | None = None
    kind: EdgeKind = "event"
    window: str | None = None
    """`within 30 calendar days`: when the event is accepted at all."""


# -- the elements, format-neutral -------------------------------------------------------------


def route_edges(spec: WorkflowSpec) -> list[Edge]:
    """Entry edges of `case.reported`, numbered when there are several (first match wins)."""
    numbered = len(spec.routing) > 1
    return [
        Edge(
            None,
            route.dest,
            "case.reported" + (f" ({i})" if numbered else ""),
            tuple(route.allowed_sources or ()),
            route.guard,
        )
        for i, route in enumerate(spec.routing, start=1)
    ]


def transition_edges(spec: WorkflowSpec) -> list[Edge]:
    """One edge per (source state, transition); `*` stands for every non-terminal state."""
    edges: list[Edge] = []
    for tr in spec.transitions:
        sources = (
            [n for n, s in spec.states.items() if not s.terminal]
            if tr.source == "*"
            else tr.source_states
        )
        allowed = tuple(tr.allowed_sources or ())
        window = window_text(tr.within) if tr.within is not None else None
        edges.extend(
            Edge(src, tr.dest, tr.trigger, allowed, tr.guard, window=window) for src in sources
        )
    return edges


def breach_edges(spec: WorkflowSpec) -> list[Edge]:
    """Where a case goes when its deadline passes: up the ladder (`escalate_to`) or, a lapse,
    to any state (`timeout_to`)."""
    found: list[Edge] = []
    for name, state in spec.states.items():
        sla = state.sla
        if sla is not None and sla.escalate_to:
            found.append(Edge(name, sla.escalate_to, BREACH_TRIGGER, kind="escalation"))
        if sla is not None and sla.timeout_to:
            found.append(Edge(name, sla.timeout_to, TIMEOUT_TRIGGER, kind="timeout"))
    return found


def edges(spec: WorkflowSpec) -> list[Edge]:
    return route_edges(spec) + transition_edges(spec) + breach_edges(spec)


def duration_text(duration: DurationSpec) -> str:
    """`3 working days`, `1 hour`."""
    words = duration.unit.replace("_", " ")
    return f"{duration.amount} {words.removesuffix('s') if duration.amount == 1 else words}"


def counted_text(duration: DurationSpec, counted_from: str) -> str:
    """`30 calendar days`, or `24 hours from opened` when it does not count from the entry."""
    anchor = "" if counted_from == "entered" else f" from {counted_from}"
    return duration_text(duration) + anchor


def sla_text(sla: SlaSpec) -> str:
    """`3 working days, warn 67%, ext +30 calendar days ×1`; `30 calendar days from opened,
    party's window, warn 80%` for a party's limit counted from the case's opening."""
    parts = [counted_text(sla, sla.counted_from)]
    if sla.owner == "party":
        parts.append("party's window")
    parts.append(f"warn {sla.warn_at:.0%}")
    if sla.extension is not None and sla.max_extensions:
        parts.append(f"ext +{duration_text(sla.extension)} ×{sla.max_extensions}")
    return ", ".join(parts)


def window_text(window: WindowSpec) -> str:
    """`within 30 calendar days`, `within 10 working days from grid.mediating`."""
    return f"within {counted_text(window, window.counted_from)}"


def state_lines(state: StateSpec) -> list[str]:
    """What a state's box says under its name: tier, SLA, outcome."""
    lines = []
    if state.tier:
        lines.append(f"tier {state.tier}")
    if state.sla is not None:
        lines.append(f"SLA {sla_text(state.sla)}")
    if state.terminal:
        lines.append(f"outcome: {state.outcome or '-'}")
    return lines


def short_guard(guard: str, width: int = GUARD_WIDTH) -> str:
    """One line (a YAML block guard spans several), at most `width` characters.

    A long guard keeps its start and its end, cut in the middle (at a space when one is near):
    guards of one trigger often share their first condition and differ in their last
    (`rating == "unsatisfied" && … && case.tier == "city"`)."""
    text = " ".join(guard.split())
    if len(text) <= width:
        return text
    keep = width - 3  # for " … "
    cut = keep * 3 // 5
    head, tail = text[:cut], text[len(text) - (keep - cut) :]
    space = head.rfind(" ")
    if text[cut] != " " and space >= 0 and cut - space <= SNAP:
        head = head[:space]
    space = tail.find(" ")
    if text[-len(tail) - 1] != " " and 0 <= space < SNAP:
        tail = tail[space + 1 :]
    return f"{head.rstrip()} … {tail.lstrip()}"


def edge_head(edge: Edge) -> str:
    """`mediation.failed [court]`: the trigger and the channels allowed to send it."""
    if edge.allowed_sources:
        return f"{edge.trigger} [{', '.join(edge.allowed_sources)}]"
    return edge.trigger


def edge_guard(edge: Edge) -> str | None:
    return f"if {short_guard(edge.guard)}" if edge.guard else None


def edge_lines(edge: Edge) -> list[str]:
    """An edge's label, line by line: head, window, guard (when it has them)."""
    guard = edge_guard(edge)
    return [edge_head(edge), *([edge.window] if edge.window else []), *([guard] if guard else [])]


def _tier_colours(spec: WorkflowSpec) -> dict[str, tuple[str, str]]:
    return {t: TIER_COLOURS[i % len(TIER_COLOURS)] for i, t in enumerate(spec.tiers)}


# -- Mermaid -----------------------------------------------------------------------------------

_MERMAID_UNSAFE = re.compile(r"[#;<>]|&(?=[#A-Za-z])|:(?=:)|(?<=:):|%(?=%)|(?<=%)%")
"""What breaks or changes a Mermaid label: `;` ends a statement, `#…;` is an entity code, `<`
and `>` read as HTML (a guard `a<b && c>d` would lose `b && c`), `::` (`:::` sets a class),
`%%` (a comment or `%%{init}%%` directive), and `&` starting an HTML entity."""


def mermaid_text(text: str) -> str:
    """`text` as a Mermaid label: one line, risky characters as entity codes (`#59;`)."""
    one_line = " ".join(text.split())
    return _MERMAID_UNSAFE.sub(lambda m: f"#{ord(m.group())};", one_line)


def _mermaid_label(edge: Edge) -> str:
    return MERMAID_MARKS[edge.kind] + "<br/>".join(mermaid_text(line) for line in edge_lines(edge))


def mermaid(spec: WorkflowSpec) -> str:
    """A `stateDiagram-v2`: states with their tier/SLA/outcome lines, tiers as colour classes."""
    ids = {name: f"s{i}" for i, name in enumerate(spec.states)}
    lines = ["stateDiagram-v2", f"    %% {spec.name} v{spec.version}"]
    for name, state in spec.states.items():
        lines.append(f'    state "{name}" as {ids[name]}')
        lines.extend(f"    {ids[name]} : {mermaid_text(line)}" for line in state_lines(state))
    for edge in edges(spec):
        src = "[*]" if edge.src is None else ids[edge.src]
        lines.append(f"    {src} --> {ids[edge.dest]} : {_mermaid_label(edge)}")
    lines.extend(f"    {ids[n]} --> [*]" for n, s in spec.states.items() if s.terminal)
    for i, (tier, (fill, stroke)) in enumerate(_tier_colours(spec).items()):
        members = [ids[n] for n, s in spec.states.items() if s.tier == tier]
        if members:
            lines.append(f"    classDef tier{i} fill:{fill},stroke:{stroke}")
            lines.append(f"    class {','.join(members)} tier{i}")
    return "\n".join(lines) + "\n"


# -- Graphviz DOT ------------------------------------------------------------------------------

_DOT_UNSAFE = re.compile(r'[\\"]|&(?=#?\w+;)')
"""Inside a quoted DOT string: `\\` would start a label escape (`\\n`, `\\N`), `"` ends the
string, and Graphviz decodes HTML entities (`&lt;`) in every label."""


def dot_text(text: str) -> str:
    """`text` for the inside of a quoted DOT string, on one line."""
    one_line = " ".join(text.split())
    return _DOT_UNSAFE.sub(lambda m: "&amp;" if m.group() == "&" else "\\" + m.group(), one_line)


def _dot_lines(lines: list[str]) -> str:
    return "\\n".join(dot_text(line) for line in lines)


def _dot_state(name: str, state: StateSpec) -> str:
    attrs = [f'label="{_dot_lines([name, *state_lines(state)])}"']
    if state.terminal:
        attrs.append("peripheries=2")
    return f'    "{dot_text(name)}" [{", ".join(attrs)}];'


def _dot_edge(edge: Edge) -> str:
    src = '"[*]"' if edge.src is None else f'"{dot_text(edge.src)}"'
    attrs = [f'label="{_dot_lines(edge_lines(edge))}"']
    colour = DOT_COLOURS.get(edge.kind)
    if colour is not None:
        attrs.append(f'style=dashed, color="{colour}", fontcolor="{colour}"')
    return f'    {src} -> "{dot_text(edge.dest)}" [{", ".join(attrs)}];'


def dot(spec: WorkflowSpec) -> str:
    """A `digraph`: one cluster per tier, terminal states double-bordered, what a breach does
    dashed (escalations red, lapses brown)."""
    lines = [
        f'digraph "{dot_text(spec.name)}" {{',
        f"    // {dot_text(spec.name)} v{spec.version}",
        "    rankdir=LR;",
        '    node [shape=box, style="rounded,filled", fillcolor=white, fontsize=11];',
        "    edge [fontsize=10];",
        '    "[*]" [shape=point, label=""];',
    ]
    for tier, (fill, stroke) in _tier_colours(spec).items():
        members = [n for n, s in spec.states.items() if s.tier == tier]
        lines.append(f'    subgraph "cluster_{dot_text(tier)}" {{')
        lines.append(
            f'        label="tier {dot_text(tier)}"; style=filled; '
            f'fillcolor="{fill}"; color="{stroke}";'
        )
        lines.extend(f'        "{dot_text(n)}";' for n in members)
        lines.append("    }")
    lines.extend(_dot_state(name, state) for name, state in spec.states.items())
    lines.extend(_dot_edge(edge) for edge in edges(spec))
    lines.append("}")
    return "\n".join(lines) + "\n"
