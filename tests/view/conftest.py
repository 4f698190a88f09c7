"""The read model's database for a test: SQLite (a file, `unit`) and the real PostgreSQL server
of the session (`integration`), so that every projection test runs against both."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from consumers.view import tier_order
from consumers.view.fold import TierOrder
from consumers.view.tables import create_view_engine, prepare
from engine.registry import WorkflowRegistry

DATABASES = [
    pytest.param("sqlite", marks=pytest.mark.unit),
    pytest.param("postgresql", marks=pytest.mark.integration),
]


@pytest.fixture(params=DATABASES)
def view_db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[sa.Engine]:
    """An empty read model (tables made) on SQLite or on PostgreSQL."""
    if request.param == "sqlite":
        url: str | sa.URL = f"sqlite:///{tmp_path / 'view' / 'view.sqlite'}"
    else:
        url = request.getfixturevalue("postgres_url")
    db = create_view_engine(url)
    assert prepare(db) == "created"
    yield db
    db.dispose()


@pytest.fixture(scope="session")
def tiers(registry: WorkflowRegistry) -> TierOrder:
    return tier_order(registry)
