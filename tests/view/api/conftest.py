"""A read model of a small town, filled once per module through the real projection from the
engine's own output, on SQLite (`unit`) and on the session's PostgreSQL (`integration`); the
tokens the API tests call it with; a TestClient on a fixed clock.

The town's input events are projected too, as the view reads them from the case-events topic:
its dispute cases get the `village` their report named as an attribute, which the
attribute-prefix scope reads.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, timedelta

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from consumers.demo.town import Town, TownSpec
from consumers.runtime.clock import FixedClock
from consumers.view.access import Access, Scope, Token, hash_token
from consumers.view.app import create_app
from consumers.view.fold import CaseRow, TierOrder
from consumers.view.projection import project
from consumers.view.tables import create_view_engine, prepare
from engine.core import Engine
from engine.registry import WorkflowRegistry
from tests import postgres_server
from tests.view.conftest import DATABASES
from tests.view.streams import as_consumed, as_consumed_events, replay, stored_rows

TOWN = TownSpec(population=15_000, start=date(2026, 1, 5), days=40)
STOPPED = datetime.fromisoformat("2026-02-14T00:00:00+08:00")
NOW = STOPPED + timedelta(days=20)
"""The view's clock, 20 days past the engine's: overdue cases the engine has not reported yet,
some at risk, paused ones neither (as in tests/view/test_queries.py)."""


@dataclass(frozen=True)
class Caller:
    """A token of the test token file, and what its scope lets it see of a row."""

    token: str
    scope: Scope

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    def sees(self, row: CaseRow) -> bool:
        if self.scope.workflows is not None and row.workflow not in self.scope.workflows:
            return False
        if self.scope.prefix is None:
            return True
        if self.scope.prefix_of == "case_id":
            return row.case_id.startswith(self.scope.prefix)
        value = row.attributes.get(self.scope.prefix_of.removeprefix("attributes."))
        return value is not None and str(value).startswith(self.scope.prefix)


CALLERS = {
    "county": Caller("county-token-0123456789", Scope()),
    "petitions": Caller("petitions-token-0123456789", Scope(frozenset({"petition"}))),
    "fq-disputes": Caller(
        "fq-disputes-token-0123456789",
        Scope(frozenset({"dispute-escalation", "hotline-12345"}), "FQ-"),
    ),
    "early-february-hotline": Caller(
        "early-february-hotline-0123456789", Scope(prefix="12345-2026020")
    ),
    "villages-1x": Caller(
        "villages-token-0123456789", Scope(prefix="V1", prefix_of="attributes.village")
    ),
}
"""An unlimited token, and one per kind of scope: workflows; workflows and a case-id prefix
(both must hold: `FQ-` alone would also match petitions); a case-id prefix alone; an
attribute prefix."""

SCOPED = [name for name in CALLERS if name != "county"]


def make_access() -> Access:
    return Access(
        Token(name, bytes.fromhex(hash_token(c.token)), c.scope) for name, c in CALLERS.items()
    )


@pytest.fixture(scope="session")
def town_events(registry: WorkflowRegistry) -> list[bytes]:
    town = Town(TOWN, registry)
    assert town.end == STOPPED
    return [e.raw for e in town.events()]


@pytest.fixture(scope="session")
def town_published(engine: Engine, town_events: list[bytes]) -> list[bytes]:
    return replay(engine, town_events, STOPPED)[1]


@pytest.fixture(scope="module", params=DATABASES)
def town_db(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    town_events: list[bytes],
    town_published: list[bytes],
    tiers: TierOrder,
) -> Iterator[sa.Engine]:
    """The town's read model (shared by the tests of a module: they only read it)."""
    server: sa.URL | None = None
    if request.param == "sqlite":
        url: str | sa.URL = f"sqlite:///{tmp_path_factory.mktemp('view') / 'view.sqlite'}"
    else:
        server = request.getfixturevalue("postgres_server_url")
        url = postgres_server.fresh_database(server, request.module.__name__.split(".")[-1])
    db = create_view_engine(url)
    try:
        assert prepare(db) == "created"
        project(db, as_consumed(town_published) + as_consumed_events(town_events), tiers)
        yield db
    finally:
        db.dispose()
        if server is not None and isinstance(url, sa.URL) and url.database is not None:
            postgres_server.drop_database(server, url.database)


@pytest.fixture(scope="module")
def town_rows(town_db: sa.Engine) -> dict[str, CaseRow]:
    rows = stored_rows(town_db)
    assert any(row.attributes for row in rows.values())
    return rows


@pytest.fixture(scope="module")
def client(town_db: sa.Engine) -> Iterator[TestClient]:
    app = create_app(town_db, make_access(), clock=FixedClock(NOW))
    with TestClient(app) as test_client:
        yield test_client
