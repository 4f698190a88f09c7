"""What a caller sees when something breaks: JSON, never a traceback or the error's text (it
could quote data); a database that does not answer is a 503, anything else a 500."""

from __future__ import annotations

from datetime import datetime

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from structlog.testing import capture_logs

from consumers.view.app import create_app
from consumers.view.tables import create_view_engine
from tests.view.api.conftest import CALLERS, make_access

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
