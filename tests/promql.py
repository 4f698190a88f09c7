"""The PromQL of deploy/: every expression of the rules and dashboards, and what it reads.

Shared by the offline checks (tests/unit/test_observability_config.py) and the end-to-end test
against a real Prometheus (tests/integration/test_observability_e2e.py), so both look at exactly
the same expressions. The small lexer here is enough for our own files: it strips strings,
label matchers, ranges and grouping clauses, then the names left that are not functions or
keywords are metric names.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
PROMETHEUS = ROOT / "deploy" / "prometheus"
GRAFANA = ROOT / "deploy" / "grafana"
RULE_FILES = sorted(PROMETHEUS.glob("*.rules.yml"))
DASHBOARDS = sorted((GRAFANA / "dashboards").glob("*.json"))

VARIABLES = {
    "$workflow": ".*",
    "$instance": ".*",
    "$__rate_interval": "1m",
    "$__interval": "15s",
    "$__range": "1h",
}
"""Dashboard variables and what the tests put in their place (all values; a one-minute rate)."""

_KEYWORDS = frozenset({
    "by", "without", "on", "ignoring", "group_left", "group_right", "and", "or", "unless",
    "bool", "offset", "inf", "nan",
})  # fmt: skip
_STRING = re.compile(r'"(?:[^"\\]|\\.)*"')
_MATCHERS = re.compile(r"\{[^{}]*\}")
_RANGE = re.compile(r"\[[^\[\]]*\]")
_GROUPING = re.compile(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^()]*\)")
_NAME = re.compile(r"[A-Za-z_:][A-Za-z0-9_:]*")
_NUMBER = re.compile(r"^-?\s*\d+(?:\.\d+)?(?:e[+-]?\d+)?$", re.IGNORECASE)


@dataclass(frozen=True)
class Expression:
    where: str
    """e.g. `alerts.rules.yml: FengqiaoNoProgress` or `fengqiao-engine.json: Total lag`."""
    expr: str
    kind: str
    """`record`, `alert`, `panel` or `variable`."""


def rule_expressions() -> Iterator[Expression]:
    for path in RULE_FILES:
        for group in yaml.safe_load(path.read_text(encoding="utf-8"))["groups"]:
            for rule in group["rules"]:
                kind = "alert" if "alert" in rule else "record"
                yield Expression(f"{path.name}: {rule[kind]}", rule["expr"].strip(), kind)


def load_dashboard(path: Path) -> dict[str, Any]:
    board: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return board


def panels(board: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for panel in board["panels"]:
        yield panel
        yield from panel.get("panels", [])


def dashboard_expressions() -> Iterator[Expression]:
    for path in DASHBOARDS:
        board = load_dashboard(path)
        for panel in panels(board):
            for target in panel.get("targets", []):
                yield Expression(f"{path.name}: {panel['title']}", target["expr"], "panel")
        for variable in board["templating"]["list"]:
            if variable["type"] == "query":
                query = variable["query"]["query"]
                found = re.fullmatch(r"label_values\((\w+),\s*\w+\)", query)
                assert found, f"{path.name}: variable {variable['name']}: unexpected {query!r}"
                yield Expression(f"{path.name}: ${variable['name']}", found.group(1), "variable")


def all_expressions() -> list[Expression]:
    return [*rule_expressions(), *dashboard_expressions()]


def substitute(expr: str) -> str:
    """The expression with dashboard variables replaced; fails on a variable it does not know."""
    for name in sorted(VARIABLES, key=len, reverse=True):
        expr = expr.replace(name, VARIABLES[name])
    unknown = re.findall(r"\$\{?[A-Za-z_]\w*", expr)
    assert not unknown, f"unknown dashboard variable(s) {unknown} in {expr!r}"
    return expr


def metric_names(expr: str) -> set[str]:
    """Metric (and recorded series) names an expression selects."""
    text = _STRING.sub('""', substitute(expr))
    text = _MATCHERS.sub("", text)
    text = _RANGE.sub("", text)
    text = _GROUPING.sub("", text)
    names: set[str] = set()
    for match in _NAME.finditer(text):
        name = match.group(0)
        rest = text[match.end() :].lstrip()
        previous = text[match.start() - 1] if match.start() else " "
        if previous.isdigit() or previous == ".":  # the tail of a number: 1e3, a duration
            continue
        if name.lower() in _KEYWORDS or rest.startswith("("):
            continue
        names.add(name)
    return names


def split_top_level(expr: str, separators: tuple[str, ...]) -> list[str]:
    """Split at the separators found outside parentheses, brackets, braces and strings."""
    parts: list[str] = []
    depth, start, i, quoted = 0, 0, 0, False
    while i < len(expr):
        char = expr[i]
        if quoted:
            if char == "\\":
                i += 1
            elif char == '"':
                quoted = False
        elif char == '"':
            quoted = True
        elif char in "([{":
            depth += 1
        elif char in ")]}":
            depth -= 1
        elif depth == 0:
            for sep in separators:
                if expr.startswith(sep, i) and _is_operator(expr, i, sep):
                    parts.append(expr[start:i])
                    i += len(sep)
                    start = i
                    break
            else:
                i += 1
                continue
            continue
        i += 1
    parts.append(expr[start:])
    return [p.strip() for p in parts if p.strip()]


def _is_operator(expr: str, i: int, sep: str) -> bool:
    if sep in (">", "<"):  # not the start of >= / <=
        return not expr.startswith(sep + "=", i)
    return True


def alert_operands(expr: str) -> list[str]:
    """The signals an alert compares: `a > 10 and delta(b[1h]) > 0` → `a`, `delta(b[1h])`.

    An alert's expression returns nothing while all is well, so the end-to-end test queries its
    operands instead: each must return data. Numbers are dropped and `absent(x)` becomes `x`.
    """
    operands: list[str] = []
    flat = " ".join(expr.split())
    for clause in split_top_level(flat, (" and ", " or ", " unless ")):
        for raw in split_top_level(clause, ("==", "!=", ">=", "<=", ">", "<")):
            side = re.sub(r"^bool\s+", "", raw.strip())
            if _NUMBER.match(side):
                continue
            absent = re.fullmatch(r"absent\((.*)\)", side, re.DOTALL)
            operands.append(absent.group(1) if absent else side)
    return operands
