"""What a caller sees when something breaks: JSON, never a traceback or the error's text (it
could quote data); a database that does not answer is a 503, anything else a 500."""

from __future__ import annotations

from datetime import datetime

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from structlog.testing import capture_logs

from consumers.runtime.clock import FixedClock
from consumers.view.app import create_app
from consumers.view.tables import create_view_engine
from tests.view.api.conftest import CALLERS, NOW, make_access

pytestmark = pytest.mark.unit

QUOTED = "110101199003077777"  # an identity card number, as a careless message would quote


class BrokenClock:
    def now(self) -> datetime:
        raise RuntimeError(f"a bug that quotes {QUOTED}")


def test_an_unexpected_error_is_a_bare_json_500() -> None:
    db = sa.create_engine("sqlite://")
    app = create_app(db, make_access(), clock=BrokenClock())
    with capture_logs() as logs, TestClient(app) as client:
        answer = client.get("/api/backlog", headers=CALLERS["county"].headers)
    assert answer.status_code == 500
    assert answer.json() == {"detail": "internal error"}
    assert answer.headers["cache-control"] == "no-store"
    failed = [entry for entry in logs if entry["event"] == "view.failed"]
    assert [entry["error"] for entry in failed] == ["RuntimeError"]
    assert QUOTED not in repr(logs)
    db.dispose()


def test_a_database_that_does_not_answer_is_a_503() -> None:
    db = create_view_engine(
        "postgresql+psycopg://nobody:nothing@127.0.0.1:1/none", connect_args={"connect_timeout": 2}
    )
    with TestClient(create_app(db, make_access())) as client:
        for path in ("/api/cases", "/api/cases/FQ-1", "/api/backlog", "/api/forecast"):
            answer = client.get(path, headers=CALLERS["county"].headers)
            assert (answer.status_code, answer.json()) == (
                503,
                {"detail": "the read model's database is unavailable"},
            )
        assert client.get("/healthz").status_code == 200  # liveness does not hang on it
    db.dispose()


def test_every_answer_is_timed_by_its_route_template_never_its_case_id(
    town_db: sa.Engine,
) -> None:
    seen: list[tuple[str, int, float]] = []
    app = create_app(town_db, make_access(), clock=FixedClock(NOW),
                     observe=lambda route, status, s: seen.append((route, status, s)))  # fmt: skip
    with TestClient(app) as client:
        headers = CALLERS["county"].headers
        client.get("/api/cases/FQ-D-20260105-0001", headers=headers)
        client.get("/api/cases?status=overdue", headers=headers)
        client.get("/api/backlog")
    routes = [(route, status) for route, status, _ in seen]
    assert ("/api/cases/{case_id}", 200) in routes or ("/api/cases/{case_id}", 404) in routes
    assert ("/api/cases", 200) in routes
    assert ("/api/backlog", 401) in routes
    assert all(seconds >= 0 for _, _, seconds in seen)
    assert not any("FQ-D-" in route for route, _, _ in seen), "no case id in a label"
