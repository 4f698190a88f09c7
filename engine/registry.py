"""All workflow versions the engine knows, loaded from a folder.

Several versions of one workflow load side by side: new cases take the newest, a case keeps the
version it started on (its record names it), so deploying version 2 never moves open cases.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from engine.calendar import BusinessCalendar
from engine.machine import CompiledWorkflow, compile_workflow
from engine.problems import InvalidWorkflowError, Problem
from engine.validate import CheckedWorkflow, check_file
from schemas.workflow import WorkflowSpec

WORKFLOW_SUFFIXES = (".yaml", ".yml")


def workflow_files(paths: Iterable[Path]) -> list[Path]:
    """The workflow files named by `paths`: files as given, folders by their top-level YAML."""
    found: list[Path] = []
    for path in paths:
        if path.is_dir():
            found.extend(sorted(p for p in path.iterdir() if p.suffix in WORKFLOW_SUFFIXES))
        else:
            found.append(path)
    return found


def check_paths(paths: Iterable[Path]) -> tuple[list[CheckedWorkflow], list[Problem]]:
    """Check every file; also refuse two files that declare the same name and version."""
    checked: list[CheckedWorkflow] = []
    problems: list[Problem] = []
    seen: dict[tuple[str, int], str] = {}
    for path in workflow_files(paths):
        try:
            raw = path.read_bytes()
        except OSError as err:
            problems.append(Problem(str(path), 1, 1, f"cannot read file: {err.strerror}"))
            continue
        workflow, found = check_file(str(path), raw)
        problems.extend(found)
        if workflow is None:
            continue
        key = (workflow.spec.name, workflow.spec.version)
        if key in seen:
            problems.append(
                Problem(str(path), 1, 1, f"{key[0]}@{key[1]} is already defined in {seen[key]}")
            )
            continue
        seen[key] = str(path)
        checked.append(workflow)
    return checked, problems


@dataclass(frozen=True)
class WorkflowRegistry:
    """Compiled workflows by name and version."""

    workflows: dict[str, dict[int, CompiledWorkflow]] = field(default_factory=dict)

    @classmethod
    def load(cls, folder: Path, calendar: BusinessCalendar | None = None) -> WorkflowRegistry:
        """Load and compile a folder; raise `InvalidWorkflowError` listing every problem."""
        checked, problems = check_paths([folder])
        if problems:
            raise InvalidWorkflowError(problems)
        if calendar is None:
            overrides = folder / "calendars"
            calendar = BusinessCalendar.chinese(overrides if overrides.is_dir() else None)
        return cls.build(checked, calendar)

    @classmethod
    def build(
        cls, checked: Iterable[CheckedWorkflow], calendar: BusinessCalendar
    ) -> WorkflowRegistry:
        workflows: dict[str, dict[int, CompiledWorkflow]] = {}
        for item in checked:
            compiled = compile_workflow(item, calendar)
            workflows.setdefault(compiled.name, {})[compiled.version] = compiled
        return cls(workflows)

    def newest(self, name: str) -> CompiledWorkflow | None:
        """The version new cases take: the newest that is not a `preview`."""
        versions = self.workflows.get(name, {})
        current = [v for v, w in versions.items() if not w.spec.preview]
        return versions[max(current)] if current else None

    def get(self, name: str, version: int) -> CompiledWorkflow | None:
        return self.workflows.get(name, {}).get(version)

    def specs(self) -> list[WorkflowSpec]:
        """Every loaded version's spec (what channel files are checked against)."""
        return [w.spec for versions in self.workflows.values() for w in versions.values()]

    def sources(self) -> frozenset[str]:
        """Every source some loaded workflow names: the bounded set of channels (metric labels
        keyed by an event's `source` may take no other value)."""
        versions = [w for by_version in self.workflows.values() for w in by_version.values()]
        return frozenset(source for w in versions for source in w.spec.sources)
