"""Shared fixtures: the shipped workflows, compiled once per session (they are immutable), and a
real PostgreSQL server for the tests that need one (see tests/postgres_server.py)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from engine.core import Engine
from engine.registry import WorkflowRegistry
from tests import postgres_server

ROOT = Path(__file__).resolve().parent.parent
WORKFLOWS = ROOT / "workflows"

# For the terminal summary: which PostgreSQL server the session used, and how long it took.
_session_postgres: list[postgres_server.Server] = []


def pytest_terminal_summary(terminalreporter: Any) -> None:
    for server in _session_postgres:
        terminalreporter.write_line(server.describe())


@pytest.fixture(scope="session")
def registry() -> WorkflowRegistry:
    return WorkflowRegistry.load(WORKFLOWS)


@pytest.fixture(scope="session")
def engine(registry: WorkflowRegistry) -> Engine:
    return Engine(registry)


@pytest.fixture(scope="session")
def postgres_server_url() -> Iterator[sa.URL]:
    """The URL of a real PostgreSQL server for the whole session: `FENGQIAO_POSTGRES_URL`, or one
    started by deploy/local/postgres and stopped at the end (skip, or fail when required)."""
    explicit = postgres_server.explicit_server()
    if explicit is not None:
        _session_postgres.append(explicit)
        yield explicit.url
        return
    started = postgres_server.start_local()
    if isinstance(started, str):
        postgres_server.unavailable(started)
    _session_postgres.append(started)
    try:
        yield started.url
    finally:
        assert started.state_dir is not None
        postgres_server.stop_local(started.state_dir)


@pytest.fixture
def postgres_url(postgres_server_url: sa.URL, request: pytest.FixtureRequest) -> Iterator[sa.URL]:
    """A fresh, empty database on the session's server for this test, dropped afterwards."""
    url = postgres_server.fresh_database(postgres_server_url, request.node.name)
    yield url
    assert url.database is not None
    postgres_server.drop_database(postgres_server_url, url.database)
