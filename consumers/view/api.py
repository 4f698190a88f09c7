"""The read model's JSON API (DESIGN §8): the routes under `/api`, who may call them, and the
session the web console opens with a token.

Every route under `/api` needs a caller (`Caller`): a bearer token, or the session cookie set
from one by `POST /session`. What a caller sees is decided by the SQL, not here: each query
gets the token's scope as a WHERE clause, so a list, a count, an export or a forecast holds
only the cases of the scope, whatever the filters. Here only two refusals are made in Python:
401 without a valid token or session, 403 when a filter names a workflow outside the scope
(answering with an empty list would let the caller believe there is nothing to do). A case
outside the scope is a 404, as an unknown one: its existence is not revealed.

Handlers are plain functions (FastAPI runs them in its thread pool): SQLAlchemy's engine is
synchronous, and each request takes its own connection from the pool.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo

import sqlalchemy as sa
import structlog
from fastapi import APIRouter, Depends, HTTPException, Query, Request, Response
from fastapi.security import APIKeyCookie, HTTPBearer
from pydantic import AwareDatetime

from consumers.view import counts, queries
from consumers.view.access import SESSION_COOKIE, Access, Grant, Sessions
from consumers.view.export import csv_response, pages, wants_csv
from consumers.view.queries import PAGE_MAX, Cursor, ListStatus, Page
from consumers.view.responses import (
    BACKLOG_COLUMNS,
    CASE_COLUMNS,
    FORECAST_COLUMNS,
    HISTORY_COLUMNS,
    Backlog,
    CaseHistory,
    CaseOut,
    CasePage,
    ForecastOut,
    HistoryItem,
    backlog_out,
    csv_rows,
    decode_cursor,
    encode_cursor,
    forecast_out,
)
from engine.ports import Clock

log = structlog.get_logger("fengqiao.view")

HORIZON_MAX = 24 * 31
"""The longest forecast, in hours: a month (deadlines further out are no forecast of breaches)."""


@dataclass(frozen=True)
class ViewContext:
    """What the routes need, held by the application (`app.state.view`)."""

    db: sa.Engine
    access: Access
    sessions: Sessions
    clock: Clock
    zone: ZoneInfo
    ready: Callable[[], bool]

    def now(self) -> datetime:
        """The clock's instant, in UTC (as every instant the API answers)."""
        return self.clock.now().astimezone(UTC)


def _context(request: Request) -> ViewContext:
    context: ViewContext = request.app.state.view
    return context


Context = Annotated[ViewContext, Depends(_context)]

# Declared for the OpenAPI document (clients see both ways in); `_caller` does the checking.
_bearer = HTTPBearer(auto_error=False, description="A token of the view's token file.")
_cookie = APIKeyCookie(name=SESSION_COOKIE, auto_error=False,
                       description="The session cookie set by `POST /session`.")  # fmt: skip


def _unauthorized(detail: str, error: str | None = None) -> HTTPException:
    challenge = f'Bearer error="{error}"' if error else "Bearer"
    log.info("view.denied", status=401, reason=error or "no credentials")
    return HTTPException(401, detail, headers={"WWW-Authenticate": challenge})


def bearer_grant(request: Request, context: ViewContext) -> Grant | None:
    """The grant of the request's bearer token; None without an Authorization header."""
    header = request.headers.get("authorization")
    if header is None:
        return None
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise _unauthorized("an Authorization header must be `Bearer <token>`", "invalid_request")
    grant = context.access.authenticate(token.strip())
    if grant is None:
        raise _unauthorized("the token is not valid", "invalid_token")
    return grant


def _caller(
    request: Request,
    context: Context,
    _b: Annotated[Any, Depends(_bearer)],
    _c: Annotated[Any, Depends(_cookie)],
) -> Grant:
    """The bearer token, else the session cookie; a header that is present decides."""
    grant = bearer_grant(request, context)
    if grant is not None:
        return grant
    cookie = request.cookies.get(SESSION_COOKIE)
    if cookie is None:
        raise _unauthorized("a bearer token or a session is required")
    grant = context.sessions.verify(cookie, context.now())
    if grant is None:
        raise _unauthorized("the session is not valid or has expired", "invalid_token")
    return grant


Caller = Annotated[Grant, Depends(_caller)]
Format = Annotated[
    Literal["json", "csv"] | None,
    Query(alias="format", description="`csv` for a CSV download (or send `Accept: text/csv`)."),
]
WorkflowFilter = Annotated[str | None, Query(description="Only this workflow's cases.")]
_Responses = dict[int | str, dict[str, Any]]

_CSV: _Responses = {200: {"content": {"text/csv": {"schema": {"type": "string"}}}}}
_NOT_FOUND: _Responses = {404: {"description": "No such case, or none the token may see."}}
_DENIED: _Responses = {
    401: {"description": "No valid bearer token or session."},
    403: {"description": "The workflow asked for is outside the token's scope."},
}

router = APIRouter(prefix="/api", responses=_DENIED)
session_router = APIRouter(tags=["session"])


def _workflow_allowed(grant: Grant, workflow: str | None) -> None:
    if workflow is not None and not grant.scope.allows_workflow(workflow):
        log.info("view.denied", status=403, token=grant.name, reason="workflow outside scope")
        raise HTTPException(403, f"this token's scope does not include workflow {workflow!r}")


def _visible(grant: Grant) -> sa.ColumnElement[bool]:
    clause = grant.scope.clause()
    return clause if clause is not None else sa.true()


@router.get("/cases/{case_id}", response_model=CaseOut, responses=_NOT_FOUND, tags=["cases"])
def get_case(case_id: str, grant: Caller, context: Context) -> CaseOut:
    """One case's row."""
    with context.db.connect() as conn:
        row = queries.case_by_id(conn, case_id, _visible(grant))
    if row is None:
        raise HTTPException(404, "no such case")
    return CaseOut.of(row, context.now())


@router.get("/cases/{case_id}/history", response_model=CaseHistory,
            responses={**_NOT_FOUND, **_CSV}, tags=["cases"])  # fmt: skip
def get_history(
    *, request: Request, case_id: str, grant: Caller, context: Context, format_: Format = None
) -> Any:
    """Every record of the case in `seq` order, retracted ones and retractions included."""
    with context.db.connect() as conn:
        entries = queries.history_of(conn, case_id, _visible(grant))
    if not entries:  # a case with a visible row has at least its opening record
        raise HTTPException(404, "no such case")
    items = [HistoryItem.of(e) for e in entries]
    if wants_csv(format_, request.headers.get("accept")):
        return csv_response("history.csv", HISTORY_COLUMNS, csv_rows(items, HISTORY_COLUMNS))
    return CaseHistory(case_id=case_id, items=items)


@router.get("/cases", response_model=CasePage, responses=_CSV, tags=["cases"])
def get_cases(
    *,
    request: Request,
    grant: Caller,
    context: Context,
    status: ListStatus = "open",
    workflow: WorkflowFilter = None,
    tier: str | None = None,
    state: str | None = None,
    due_before: Annotated[
        AwareDatetime | None, Query(description="A deadline before this instant.")
    ] = None,
    q: Annotated[
        str | None,
        Query(min_length=1, max_length=200, description="A case id prefix, or a ticket number."),
    ] = None,
    limit: Annotated[int, Query(ge=1, le=PAGE_MAX, description="Rows per page (JSON).")] = 50,
    after: Annotated[str | None, Query(description="The `next` of the previous page.")] = None,
    format_: Format = None,
) -> Any:
    """The cases in `status`, soonest deadline first (none last), then by id, a page at a time
    (keyset: pass `next` as `after`). As CSV, the whole list from `after` on, streamed."""
    _workflow_allowed(grant, workflow)
    try:
        cursor = decode_cursor(after) if after is not None else None
    except ValueError:
        raise HTTPException(400, "`after` is not a cursor of this API") from None
    now = context.now()
    visible = _visible(grant)

    def read(at: Cursor | None, size: int) -> Page:
        with context.db.connect() as conn:
            return queries.list_cases(conn, status, now=now, after=at, limit=size,
                                      workflow=workflow, tier=tier, state=state,
                                      due_before=due_before, search=q,
                                      visible=visible)  # fmt: skip

    if wants_csv(format_, request.headers.get("accept")):
        every = pages(lambda at: read(at, PAGE_MAX), cursor)
        rows = (CaseOut.of(row, now) for page in every for row in page.rows)
        return csv_response(f"cases-{status}.csv", CASE_COLUMNS, csv_rows(rows, CASE_COLUMNS))
    page = read(cursor, limit)
    return CasePage(
        status=status,
        now=now,
        items=[CaseOut.of(row, now) for row in page.rows],
        next=encode_cursor(page.next) if page.next is not None else None,
    )


@router.get("/backlog", response_model=Backlog, responses=_CSV, tags=["counts"])
def get_backlog(
    *,
    request: Request,
    grant: Caller,
    context: Context,
    workflow: WorkflowFilter = None,
    format_: Format = None,
) -> Any:
    """The open cases per workflow, tier and state, with how many are paused, overdue and at
    risk (the same conditions as the lists)."""
    _workflow_allowed(grant, workflow)
    now = context.now()
    with context.db.connect() as conn:
        rows = counts.backlog(conn, now=now, visible=_visible(grant), workflow=workflow)
    result = backlog_out(rows, now)
    if wants_csv(format_, request.headers.get("accept")):
        return csv_response("backlog.csv", BACKLOG_COLUMNS,
                            csv_rows(result.rungs, BACKLOG_COLUMNS))  # fmt: skip
    return result


@router.get("/forecast", response_model=ForecastOut, responses=_CSV, tags=["counts"])
def get_forecast(
    *,
    request: Request,
    grant: Caller,
    context: Context,
    hours: Annotated[int, Query(ge=1, le=HORIZON_MAX, description="The horizon.")] = 72,
    workflow: WorkflowFilter = None,
    format_: Format = None,
) -> Any:
    """The open, running cases whose deadline falls within the next `hours`: the breaches to
    expect if nobody acts, per day and per workflow, tier and state."""
    _workflow_allowed(grant, workflow)
    with context.db.connect() as conn:
        result = counts.forecast(conn, now=context.now(), hours=hours, zone=context.zone,
                                 visible=_visible(grant), workflow=workflow)  # fmt: skip
    out = forecast_out(result, hours)
    if wants_csv(format_, request.headers.get("accept")):
        return csv_response("forecast.csv", FORECAST_COLUMNS,
                            csv_rows(out.cells, FORECAST_COLUMNS))  # fmt: skip
    return out


@session_router.post(
    "/session", status_code=204, responses={401: _DENIED[401]}, dependencies=[Depends(_bearer)]
)
def open_session(request: Request, response: Response, context: Context) -> None:
    """A session cookie for the web console, from a valid bearer token (a session cannot renew
    itself). HttpOnly and SameSite=Strict; Secure when the request came over HTTPS."""
    grant = bearer_grant(request, context)
    if grant is None:
        raise _unauthorized("a bearer token is required to open a session")
    response.set_cookie(
        value=context.sessions.issue(grant, context.now()),
        **session_cookie_options(request, context),
    )


def session_cookie_options(request: Request, context: ViewContext) -> dict[str, Any]:
    """How the session cookie is set (`POST /session` and the console's sign-in form)."""
    return {
        "key": SESSION_COOKIE,
        "max_age": int(context.sessions.ttl.total_seconds()),
        "path": "/",
        "httponly": True,
        "samesite": "strict",
        "secure": request.url.scheme == "https",
    }


@session_router.delete("/session", status_code=204)
def close_session(response: Response) -> None:
    """Forget the session cookie (the browser drops it)."""
    response.delete_cookie(SESSION_COOKIE, path="/", httponly=True, samesite="strict")
