"""Signing in to the web console: pages redirect to the form without a session, the form turns
a token into the session cookie and goes back, only to a same-site path; the pages then show
only what the token's scope allows."""

from __future__ import annotations

from urllib.parse import urlencode

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from consumers.runtime.clock import FixedClock
from consumers.view.access import SESSION_COOKIE
from consumers.view.app import create_app
from tests.view.api.conftest import CALLERS, NOW, make_access

FORM = {"Content-Type": "application/x-www-form-urlencoded"}


@pytest.fixture
def browser(town_db: sa.Engine) -> TestClient:
    """A client without credentials that does not follow redirects (a browser's first visit)."""
    app = create_app(town_db, make_access(), clock=FixedClock(NOW))
    return TestClient(app, follow_redirects=False)


def sign_in(browser: TestClient, token: str, target: str = "/") -> None:
    body = urlencode({"token": token, "next": target})
    answer = browser.post("/login", content=body, headers=FORM)
    assert answer.status_code == 303, answer.text
    assert answer.headers["location"] == target
    cookie = answer.headers["set-cookie"]
    assert cookie.startswith(f"{SESSION_COOKIE}=")
    assert "HttpOnly" in cookie
    assert "samesite=strict" in cookie.lower()
    assert CALLERS["county"].token not in cookie, "the cookie is not the token"


@pytest.mark.parametrize("page", ["/", "/search?status=overdue", "/cases/FQ-D-20260105-0001"])
def test_a_page_without_a_session_goes_to_the_form_and_back(browser: TestClient, page: str) -> None:
    answer = browser.get(page)
    assert answer.status_code == 303
    location = answer.headers["location"]
    assert location.startswith("/login?next=")
    form = browser.get(location)
    assert form.status_code == 200
    assert 'type="password"' in form.text
    assert "Content-Security-Policy" in form.headers
    sign_in(browser, CALLERS["county"].token, page)
    assert browser.get(page).status_code in (200, 404)  # a case page: 404 if not in the town


def test_a_wrong_token_is_refused_on_the_form(browser: TestClient) -> None:
    answer = browser.post("/login", content=urlencode({"token": "nope", "next": "/"}),
                          headers=FORM)  # fmt: skip
    assert answer.status_code == 401
    assert "令牌无效" in answer.text
    assert "set-cookie" not in answer.headers
    assert browser.get("/").status_code == 303


@pytest.mark.parametrize("target", ["//evil.example/", "https://evil.example/", "\\\\evil", "x"])
def test_only_same_site_paths_are_followed(browser: TestClient, target: str) -> None:
    body = urlencode({"token": CALLERS["county"].token, "next": target})
    answer = browser.post("/login", content=body, headers=FORM)
    assert answer.status_code == 303
    assert answer.headers["location"] == "/"


def test_the_pages_show_only_the_scope_of_the_signed_in_token(browser: TestClient) -> None:
    scoped = next(c for name, c in CALLERS.items() if c.scope.workflows is not None)
    sign_in(browser, scoped.token)
    page = browser.get("/").text
    allowed = scoped.scope.workflows or frozenset()
    for workflow in ("dispute-escalation", "hotline-12345", "petition"):
        shown = f">{workflow}</a>" in page
        assert shown == (workflow in allowed), workflow


def test_signing_out_forgets_the_session(browser: TestClient) -> None:
    sign_in(browser, CALLERS["county"].token)
    assert browser.get("/").status_code == 200
    answer = browser.post("/logout")
    assert answer.status_code == 303
    browser.cookies.clear()  # the browser drops the expired cookie
    assert browser.get("/").status_code == 303
