"""The view's web application: `create_app` puts the API (`api`), the probes and the guard
around every answer together; the `fengqiao view` service serves it with uvicorn.

The guard (`_Guard`) is why no answer carries a traceback or is kept by a cache: an error the
routes did not expect becomes a JSON 500 (logged by type and place, never its message, which
could quote data), a database that does not answer a JSON 503, and every answer says
`Cache-Control: no-store` (case lists are not for proxies and browser caches to keep) unless
its route said otherwise (the console's stylesheet holds no data and may be cached).

The web console (`console`) is mounted at the root, with its sign-in form (`login`): a page
asked for without a session redirects to `/login` and back.
"""

from __future__ import annotations

import json
import time
import traceback
from collections.abc import Callable
from datetime import timedelta
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa
import structlog
from fastapi import FastAPI
from fastapi.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from consumers.runtime.clock import WallClock
from consumers.view.access import Access, Sessions
from consumers.view.api import ViewContext, router, session_router
from consumers.view.console import console_router
from consumers.view.fold import TierOrder
from consumers.view.login import console_scope, login_router
from engine.ports import Clock

log = structlog.get_logger("fengqiao.view")

Observe = Callable[[str, int, float], None]
"""(route template, status, seconds) of one answered request."""

VERSION = "0.1.0"
OPENAPI_URL = "/api/openapi.json"
DEFAULT_ZONE = ZoneInfo("Asia/Shanghai")
"""The forecast's days: the shipped workflows' time zone (and the workflow schema's default)."""

_HEADERS = [
    (b"cache-control", b"no-store"),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
]


def create_app(
    db: sa.Engine,
    access: Access,
    *,
    ready: Callable[[], bool] = lambda: True,
    clock: Clock | None = None,
    zone: ZoneInfo = DEFAULT_ZONE,
    session_key: bytes | None = None,
    session_ttl: timedelta | None = None,
    tiers: TierOrder | None = None,
    observe: Observe | None = None,
) -> FastAPI:
    """The application over the read model in `db`, for the tokens of `access`.

    `ready`: what `/readyz` says (e.g. the schema is current and the consumer caught up);
    `clock`: "now" for overdue, at-risk and the forecast (the wall clock by default); `zone`:
    the forecast's calendar days; `session_key`: the HMAC key of session cookies (random per
    process by default: replicas behind one address must be given the same); `session_ttl`:
    how long a session lasts (8 hours by default); `tiers`: each workflow version's ladder
    (`view.tier_order(registry)`), the order of the console's funnels; `observe`: called with
    each answered request's route template, status and seconds (the view's latency metric)."""
    app = FastAPI(
        title="Fengqiao read model",
        version=VERSION,
        description="Cases, their histories, the backlog and the breach forecast, as the "
        "engine published them (DESIGN §8). Every `/api` route needs a bearer token or the "
        "session cookie set from one by `POST /session`.",
        openapi_url=OPENAPI_URL,
        docs_url=None,  # Swagger UI and ReDoc load scripts from a CDN: the view works offline
        redoc_url=None,
    )
    app.state.view = ViewContext(
        db=db,
        access=access,
        sessions=Sessions(access, session_key, session_ttl),
        clock=clock if clock is not None else WallClock(),
        zone=zone,
        ready=ready,
    )
    app.include_router(router)
    app.include_router(session_router)
    app.include_router(login_router())
    now = app.state.view.now
    pages = console_router(db, scope=console_scope, now=now, zone=zone, tiers=tiers)
    app.include_router(pages, include_in_schema=False)
    _probes(app, ready)
    app.add_exception_handler(sa.exc.OperationalError, _database_away)
    app.add_exception_handler(sa.exc.InterfaceError, _database_away)
    app.add_middleware(_Guard, observe=observe)
    return app


def _probes(app: FastAPI, ready: Callable[[], bool]) -> None:
    @app.get("/healthz", tags=["probes"])
    def healthz() -> dict[str, str]:
        """Liveness: the process answers (the database is `/readyz`'s business)."""
        return {"status": "ok"}

    @app.get("/readyz", tags=["probes"], responses={503: {"description": "Not ready."}})
    def readyz() -> Any:
        """Readiness: 200 while `ready()` says so; 503 otherwise (or when it raises)."""
        try:
            ok = bool(ready())
        except Exception as err:  # a broken check answers 503, as consumers/runtime/http.py
            return JSONResponse({"detail": f"not ready: check raised {type(err).__name__}"}, 503)
        return {"status": "ready"} if ok else JSONResponse({"detail": "not ready"}, 503)


async def _database_away(_request: Any, err: Exception) -> JSONResponse:
    log.warning("view.database_unavailable", error=type(err).__name__)
    return JSONResponse({"detail": "the read model's database is unavailable"}, 503)


class _Guard:
    """Pure ASGI (no buffering of streamed CSV): adds the headers of `_HEADERS` to every answer,
    and turns an unexpected error into a JSON 500 when no answer has started (after that the
    connection is closed: a truncated download, never a traceback)."""

    def __init__(self, app: ASGIApp, observe: Observe | None = None) -> None:
        self.app = app
        self.observe = observe

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False
        status = 500
        began = time.perf_counter()

        async def guarded_send(message: Message) -> None:
            nonlocal started, status
            if message["type"] == "http.response.start":
                started = True
                status = int(message.get("status", 500))
                headers = list(message.get("headers", []))
                present = {name.lower() for name, _ in headers}
                message["headers"] = headers + [h for h in _HEADERS if h[0] not in present]
            await send(message)

        try:
            await self.app(scope, receive, guarded_send)
        except Exception as err:
            last = traceback.extract_tb(err.__traceback__)[-1]
            log.error("view.failed", error=type(err).__name__, at=f"{last.filename}:{last.lineno}",
                      started=started)  # fmt: skip
            if not started:
                await _internal_error(guarded_send)
        finally:
            if self.observe is not None:
                route = getattr(scope.get("route"), "path", None) or "unrouted"
                self.observe(route, status, time.perf_counter() - began)


async def _internal_error(send: Send) -> None:
    body = json.dumps({"detail": "internal error"}).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": 500, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def openapi_document() -> dict[str, Any]:
    """The API's OpenAPI document, as `/api/openapi.json` serves it (no database touched)."""
    db = sa.create_engine("sqlite://")
    try:
        document: dict[str, Any] = create_app(db, Access([])).openapi()
    finally:
        db.dispose()
    return document
