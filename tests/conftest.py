"""Shared fixtures: the shipped workflows, compiled once per session (they are immutable)."""

from __future__ import annotations

from pathlib import Path

import pytest

from engine.core import Engine
from engine.registry import WorkflowRegistry

ROOT = Path(__file__).resolve().parent.parent
WORKFLOWS = ROOT / "workflows"


@pytest.fixture(scope="session")
def registry() -> WorkflowRegistry:
    return WorkflowRegistry.load(WORKFLOWS)


@pytest.fixture(scope="session")
def engine(registry: WorkflowRegistry) -> Engine:
    return Engine(registry)
