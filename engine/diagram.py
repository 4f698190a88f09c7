"""State diagrams of a workflow (Mermaid for Markdown, DOT for Graphviz).

Drawn from the checked spec rather than from `transitions`' own GraphMachine, which would pull in
Graphviz bindings for what is a few lines of text. Escalations on SLA breach are dashed.
"""

from __future__ import annotations

from schemas.workflow import WorkflowSpec


def _edges(spec: WorkflowSpec) -> list[tuple[str, str, str, bool]]:
    edges: list[tuple[str, str, str, bool]] = []
    for route in spec.routing:
        edges.append(("[*]", route.dest, "case.reported" + (" [guard]" if route.guard else ""),
                      False))  # fmt: skip
    for tr in spec.transitions:
        sources = (
            [n for n, s in spec.states.items() if not s.terminal]
            if tr.source == "*"
            else tr.source_states
        )
        label = tr.trigger + (" [guard]" if tr.guard else "")
        edges.extend((src, tr.dest, label, False) for src in sources)
    for name, state in spec.states.items():
        if state.sla and state.sla.escalate_to:
            edges.append((name, state.sla.escalate_to, f"SLA breach ({_sla(state.sla)})", True))
    return edges


def _sla(sla: object) -> str:
    unit = getattr(sla, "unit", "")
    return f"{getattr(sla, unit, '')} {unit.replace('_', ' ')}"


def mermaid(spec: WorkflowSpec) -> str:
    ids = {name: f"s{i}" for i, name in enumerate(spec.states)}
    ids["[*]"] = "[*]"
    lines = ["stateDiagram-v2", f"    %% {spec.name} v{spec.version}"]
    for name, state in spec.states.items():
        extra = f" — {_sla(state.sla)}" if state.sla else ""
        lines.append(f'    state "{name} ({state.tier or "-"}){extra}" as {ids[name]}')
    for src, dest, label, _dashed in _edges(spec):
        lines.append(f"    {ids[src]} --> {ids[dest]}: {label}")
    lines.extend(f"    {ids[n]} --> [*]" for n, s in spec.states.items() if s.terminal)
    return "\n".join(lines) + "\n"


def dot(spec: WorkflowSpec) -> str:
    lines = [f'digraph "{spec.name}" {{', "    rankdir=LR;", '    start [shape=point, label=""];']
    for tier in spec.tiers:
        members = [n for n, s in spec.states.items() if s.tier == tier]
        lines.append(f'    subgraph "cluster_{tier}" {{ label="{tier}";')
        lines.extend(f'        "{n}";' for n in members)
        lines.append("    }")
    for name, state in spec.states.items():
        shape = "doublecircle" if state.terminal else "box"
        lines.append(f'    "{name}" [shape={shape}];')
    for src, dest, label, dashed in _edges(spec):
        style = ", style=dashed" if dashed else ""
        source = "start" if src == "[*]" else f'"{src}"'
        lines.append(f'    {source} -> "{dest}" [label="{label}"{style}];')
    lines.append("}")
    return "\n".join(lines) + "\n"
