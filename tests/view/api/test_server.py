"""The application served as `fengqiao view` serves it: a real uvicorn server on a free port,
called over HTTP by a real client (the TestClient of the other tests skips the server)."""

from __future__ import annotations

import csv
import io
import socket
import threading
import time
from collections.abc import Iterator

import httpx2
import pytest
import sqlalchemy as sa
import uvicorn

from consumers.runtime.clock import FixedClock
from consumers.view.access import SESSION_COOKIE
from consumers.view.app import create_app
from consumers.view.fold import CaseRow
from tests.view.api.conftest import CALLERS, NOW, make_access


@pytest.fixture
def base_url(town_db: sa.Engine) -> Iterator[str]:
    app = create_app(town_db, make_access(), clock=FixedClock(NOW))
    server = uvicorn.Server(uvicorn.Config(app, log_config=None, access_log=False))
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", 0))  # a free port, held from here on: no race for it
    port = listener.getsockname()[1]
    thread = threading.Thread(target=server.run, kwargs={"sockets": [listener]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert thread.is_alive(), "uvicorn stopped while starting"
        assert time.monotonic() < deadline, "uvicorn did not start within 20 s"
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=20)
        listener.close()
        assert not thread.is_alive()


def test_the_api_over_a_real_server(base_url: str, town_rows: dict[str, CaseRow]) -> None:
    county = CALLERS["county"].headers
    with httpx2.Client(base_url=base_url, timeout=20) as http:
        assert http.get("/healthz").json() == {"status": "ok"}
        denied = http.get("/api/cases")
        assert denied.status_code == 401
        assert denied.headers["www-authenticate"] == "Bearer"

        first = http.get("/api/cases", params={"status": "overdue", "limit": 3}, headers=county)
        assert first.status_code == 200
        assert len(first.json()["items"]) == 3
        overdue = [
            r
            for r in town_rows.values()
            if r.status == "open"
            and not r.paused
            and (r.breached or (r.deadline is not None and r.deadline <= NOW))
        ]

        with http.stream("GET", "/api/cases?status=overdue&format=csv", headers=county) as got:
            assert got.status_code == 200
            assert got.headers["content-type"] == "text/csv; charset=utf-8"
            assert got.headers.get("transfer-encoding") == "chunked"  # streamed, not buffered
            text = got.read().decode("utf-8")
        assert len(list(csv.DictReader(io.StringIO(text)))) == len(overdue)

        opened = http.post("/session", headers=CALLERS["petitions"].headers)
        assert opened.status_code == 204
        assert "Secure" not in opened.headers["set-cookie"]  # plain HTTP: a Secure one is lost
        assert SESSION_COOKIE in http.cookies
        listed = http.get("/api/cases", params={"limit": 1000}).json()["items"]
        assert listed
        assert {item["workflow"] for item in listed} == {"petition"}

        document = http.get("/api/openapi.json").json()
        assert document["info"]["title"] == "Fengqiao read model"
