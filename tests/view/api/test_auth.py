"""Who gets in: 401 without a valid token or session, 403 for a workflow outside the scope,
404 for a case outside it (as for an unknown one); the session cookie of the web console; the
probes and the OpenAPI document, which need no token."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from httpx2 import Response

from consumers.view.access import SESSION_COOKIE
from consumers.view.app import create_app
from consumers.view.fold import CaseRow
from consumers.view.settings import ViewSettings, session_key
from tests.view.api.conftest import CALLERS, NOW, make_access

ROOT = Path(__file__).resolve().parents[3]
ROUTES = [
    "/api/cases",
    "/api/cases?status=overdue&format=csv",
    "/api/cases/FQ-D-20260105-0001",
    "/api/cases/FQ-D-20260105-0001/history",
    "/api/backlog",
    "/api/forecast",
    "/api/forecast?format=csv",
]


@dataclass
class MovableClock:
    instant: datetime

    def now(self) -> datetime:
        return self.instant


@pytest.fixture
def clock() -> MovableClock:
    return MovableClock(NOW)


@pytest.fixture
def own_client(town_db: sa.Engine, clock: MovableClock) -> Iterator[TestClient]:
    """A client of its own (its cookie jar is not shared with other tests)."""
    with TestClient(create_app(town_db, make_access(), clock=clock)) as client:
        yield client


def assert_401(answer: Response, error: str | None) -> None:
    assert answer.status_code == 401, answer.text
    assert answer.headers["content-type"] == "application/json"
    assert set(answer.json()) == {"detail"}
    challenge = answer.headers["www-authenticate"]
    assert challenge == (f'Bearer error="{error}"' if error else "Bearer")


@pytest.mark.parametrize("route", ROUTES)
def test_every_api_route_needs_a_valid_token(client: TestClient, route: str) -> None:
    assert_401(client.get(route), None)
    assert_401(client.get(route, headers={"Authorization": "Bearer not-a-token"}), "invalid_token")
    assert_401(
        client.get(route, headers={"Authorization": "Basic YWxhZGRpbjpvcGVu"}), "invalid_request"
    )
    assert_401(client.get(route, headers={"Authorization": "Bearer "}), "invalid_request")
    # the hash (what the token file holds) is not the token
    stored = make_access().tokens[0].sha256.hex()
    assert_401(client.get(route, headers={"Authorization": f"Bearer {stored}"}), "invalid_token")
    assert client.get(route, headers=CALLERS["county"].headers).status_code in (200, 404)


def test_probes_and_the_openapi_document_need_no_token(client: TestClient) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}
    assert client.get("/readyz").json() == {"status": "ready"}
    document = client.get("/api/openapi.json").json()
    assert "/api/cases/{case_id}" in document["paths"]
    committed = ROOT / "schemas" / "view-api.openapi.json"  # `fengqiao schemas export`
    assert document == json.loads(committed.read_text(encoding="utf-8"))
    assert client.get("/docs").status_code == 404  # Swagger UI would load from a CDN


def test_readyz_says_what_ready_says(town_db: sa.Engine) -> None:
    def broken() -> bool:
        raise RuntimeError("secret detail")

    for ready, detail in (
        (lambda: False, "not ready"),
        (broken, "not ready: check raised RuntimeError"),
    ):
        with TestClient(create_app(town_db, make_access(), ready=ready)) as client:
            answer = client.get("/readyz")
            assert (answer.status_code, answer.json()) == (503, {"detail": detail})
            assert client.get("/healthz").status_code == 200


def test_a_workflow_outside_the_scope_is_403(client: TestClient) -> None:
    petitions = CALLERS["petitions"].headers
    for route in ("/api/cases", "/api/backlog", "/api/forecast"):
        denied = client.get(route, params={"workflow": "dispute-escalation"}, headers=petitions)
        assert denied.status_code == 403
        assert denied.json() == {
            "detail": "this token's scope does not include workflow 'dispute-escalation'"
        }
        allowed = client.get(route, params={"workflow": "petition"}, headers=petitions)
        assert allowed.status_code == 200


def test_a_case_outside_the_scope_is_as_unknown_as_a_missing_one(
    client: TestClient, town_rows: dict[str, CaseRow]
) -> None:
    petitions = CALLERS["petitions"].headers
    dispute = next(r for r in town_rows.values() if r.workflow == "dispute-escalation")
    petition = next(r for r in town_rows.values() if r.workflow == "petition")
    for suffix in ("", "/history"):
        hidden = client.get(f"/api/cases/{dispute.case_id}{suffix}", headers=petitions)
        missing = client.get(f"/api/cases/no-such-case{suffix}", headers=petitions)
        assert (hidden.status_code, hidden.json()) == (missing.status_code, missing.json())
        assert hidden.status_code == 404
        assert client.get(f"/api/cases/{petition.case_id}{suffix}", headers=petitions).is_success


def test_a_session_cookie_stands_for_its_token_until_it_expires(
    own_client: TestClient, clock: MovableClock, town_rows: dict[str, CaseRow]
) -> None:
    caller = CALLERS["petitions"]
    assert_401(own_client.post("/session"), None)  # a session is opened with a token only
    opened = own_client.post("/session", headers=caller.headers)
    assert opened.status_code == 204
    set_cookie = opened.headers["set-cookie"]
    assert set_cookie.startswith(f"{SESSION_COOKIE}=")
    for flag in ("HttpOnly", "SameSite=strict", "Path=/", "Max-Age=28800"):
        assert flag in set_cookie
    cookie = own_client.cookies[SESSION_COOKIE]
    assert caller.token not in cookie

    listed = own_client.get("/api/cases", params={"limit": 1000})  # the cookie alone
    assert listed.status_code == 200
    assert {i["workflow"] for i in listed.json()["items"]} == {"petition"}  # the token's scope
    dispute = next(r for r in town_rows.values() if r.workflow == "dispute-escalation")
    assert own_client.get(f"/api/cases/{dispute.case_id}").status_code == 404
    # a header that is present decides, even beside a valid session
    assert_401(
        own_client.get("/api/cases", headers={"Authorization": "Bearer nope"}), "invalid_token"
    )
    assert_401(own_client.post("/session"), None)  # a session does not renew itself

    clock.instant += timedelta(hours=8)
    assert_401(own_client.get("/api/cases"), "invalid_token")
    closed = own_client.delete("/session")
    assert closed.status_code == 204
    assert SESSION_COOKIE not in own_client.cookies


def test_a_forged_or_foreign_cookie_is_refused(own_client: TestClient, town_db: sa.Engine) -> None:
    county = CALLERS["county"].headers
    with TestClient(create_app(town_db, make_access(), clock=MovableClock(NOW))) as other:
        foreign = other.post("/session", headers=county).cookies[SESSION_COOKIE]
    mine = own_client.post("/session", headers=county).cookies[SESSION_COOKIE]
    own_client.cookies.clear()
    name, expires, signature = mine.split(".")
    forged = [
        foreign,  # another process's key
        f"{name}.{int(expires) + 3600}.{signature}",  # a later expiry
        f"cGV0aXRpb25z.{expires}.{signature}",  # another token's name
        "garbage",
        "a.b.c.d",
        "ÿ.1.x",
    ]
    for value in forged:
        cookie = f"{SESSION_COOKIE}={value}".encode()  # bytes: the last one is not ASCII
        answer = own_client.get("/api/backlog", headers={b"Cookie": cookie})
        assert_401(answer, "invalid_token")
    good = own_client.get("/api/backlog", headers={"Cookie": f"{SESSION_COOKIE}={mine}"})
    assert good.status_code == 200


def test_replicas_given_one_session_key_accept_each_others_sessions(
    town_db: sa.Engine, clock: MovableClock
) -> None:
    """Console replicas behind one address (`FENGQIAO_VIEW_SESSION_KEY`): a session opened on
    one is good on the other; a replica with its own random key refuses it (401)."""
    shared = session_key(ViewSettings(view_session_key="k" * 40))

    def replica(key: bytes | None) -> TestClient:
        return TestClient(create_app(town_db, make_access(), clock=clock, session_key=key))

    with replica(shared) as first, replica(shared) as second, replica(None) as own:
        assert first.post("/session", headers=CALLERS["petitions"].headers).status_code == 204
        cookies = {SESSION_COOKIE: first.cookies[SESSION_COOKIE]}
        second.cookies.update(cookies)
        own.cookies.update(cookies)
        listed = second.get("/api/cases", params={"limit": 1000})
        assert listed.status_code == 200
        assert {i["workflow"] for i in listed.json()["items"]} == {"petition"}
        assert own.get("/api/cases").status_code == 401
