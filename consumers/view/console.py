"""The web console (issue 14, item 5): server-rendered pages over the read model for the county's
supervisors (督办): the backlog (the ladder as a funnel, the overdue and at-risk lists, the
breach forecast), one case's timeline, and a search by case id.

Why server-rendered with Jinja2 and no JavaScript: the console must work offline and behind
networks that reach no CDN, show the same numbers as the JSON API (it runs the same queries of
`queries` and `counts`), and be checked by a headless browser from its DOM. The charts are SVG
drawn by the templates from `charts`' geometry; the CSS is served by this router, and the
Content-Security-Policy of every page forbids loading anything from anywhere else.

Access: `console_router` takes `scope`, a FastAPI dependency the app supplies (it authenticates
the bearer token or the session cookie and raises 401/403 itself). What it returns is the
caller's scope: an `access.Scope`, or a set of workflow names, or None for everything. Every
query of every page is restricted by it (`pages`). The stylesheet alone needs no scope: it
holds no data.

This module does not use `from __future__ import annotations`: FastAPI reads the route
functions' annotations when they are defined, and they name the `scope` dependency, a local of
the factory that a string annotation could not reach.
"""

import hashlib
from collections.abc import Callable, Mapping
from datetime import datetime
from functools import partial
from importlib import resources
from typing import Annotated, Any
from urllib.parse import quote, urlencode
from zoneinfo import ZoneInfo

import jinja2
import sqlalchemy as sa
from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.responses import RedirectResponse, Response
from starlette.templating import Jinja2Templates

from consumers.runtime.clock import WallClock
from consumers.view import labels, pages
from consumers.view.access import Scope
from consumers.view.fold import TierOrder
from consumers.view.queries import ListStatus, Visible, case_by_id, is_at_risk, is_overdue

DEFAULT_ZONE = ZoneInfo("Asia/Shanghai")
"""The shipped workflows' zone: the forecast's days and the times shown are local to it."""
WALL_CLOCK = WallClock().now
REFRESH_SECONDS = 30
HOURS_MAX = 24 * 14

PAGE_HEADERS = {
    # The pages hold the caller's cases: no shared cache keeps them.
    "Cache-Control": "no-store",
    # Nothing loads from anywhere but here: no CDN, no script at all, no framing.
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; "
        "base-uri 'none'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}

ScopeValue = Scope | frozenset[str] | set[str] | None
"""What the `scope` dependency may return: a scope, the workflows allowed, or None (all)."""


def visible_of(granted: ScopeValue) -> Visible:
    """The WHERE clause of what the dependency returned (None: every case)."""
    if granted is None:
        return None
    if isinstance(granted, Scope):
        return granted.clause()
    if isinstance(granted, frozenset | set):
        return Scope(workflows=frozenset(granted)).clause()
    raise TypeError(f"the console's scope dependency returned {type(granted).__name__}")


def scope_text(granted: ScopeValue) -> str:
    """The scope as the page header says it (workflow names and the id prefix: no secret)."""
    scope = Scope(workflows=frozenset(granted)) if isinstance(granted, frozenset | set) else granted
    if scope is None or scope.unlimited:
        return labels.WORDS["everything"]
    parts = sorted(scope.workflows) if scope.workflows is not None else []
    if scope.prefix is not None:
        parts.append(f"{scope.prefix_of} {scope.prefix}…")
    return " · ".join(parts) or labels.WORDS["none"]


def environment() -> jinja2.Environment:
    """The templates, from the installed package (not the working directory), every value
    escaped, and an unknown name an error rather than an empty string."""
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("consumers.view", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.globals.update(words=labels.WORDS, kinds=labels.KINDS, rung=labels.rung,
                       outcome=labels.outcome, time_left=labels.time_left,
                       is_overdue=is_overdue, is_at_risk=is_at_risk)  # fmt: skip
    return env


def _stylesheet() -> bytes:
    return resources.files("consumers.view").joinpath("static/console.css").read_bytes()


def console_router(
    db: sa.Engine,
    *,
    scope: Callable[..., Any],
    now: Callable[[], datetime] = WALL_CLOCK,
    zone: ZoneInfo = DEFAULT_ZONE,
    tiers: TierOrder | None = None,
    refresh_seconds: int = REFRESH_SECONDS,
) -> APIRouter:
    """The console's pages: `/` (backlog), `/cases/{case_id}`, `/search`, and its stylesheet.

    `scope`: a dependency returning the caller's `ScopeValue` (see the module's docstring);
    `now`: the clock (overdue and at-risk are relative to it); `zone`: local time of the pages;
    `tiers`: each workflow version's ladder (`view.tier_order(registry)`), for the funnel's
    order; without it rungs are ordered by size."""
    env = environment()
    templates = Jinja2Templates(env=env)
    ladder_of = pages.ladders(tiers)
    css = _stylesheet()
    css_version = hashlib.sha256(css).hexdigest()[:12]
    env.globals.update(zone_name=str(zone), refresh_seconds=refresh_seconds)
    router = APIRouter(include_in_schema=False)
    Granted = Annotated[ScopeValue, Depends(scope)]

    def local(at: datetime | None) -> str:
        return "" if at is None else f"{at.astimezone(zone):%Y-%m-%d %H:%M}"

    def render(request: Request, name: str, context: dict[str, Any], status: int = 200) -> Response:
        link = partial(render_link, request)
        full = {"request": request, "link": link, "local": local,
                "css": link("console_css", v=css_version), **context}  # fmt: skip
        return templates.TemplateResponse(request, name, full, status_code=status,
                                          headers=PAGE_HEADERS)  # fmt: skip

    def reading() -> sa.Connection:
        """One connection per page; on PostgreSQL one snapshot too (REPEATABLE READ), so the
        counts and the lists of a page agree while the projection commits beside it."""
        conn = db.connect()
        if db.dialect.name == "postgresql":
            conn.execution_options(isolation_level="REPEATABLE READ", postgresql_readonly=True)
        return conn

    @router.get("/static/console.css", name="console_css")
    def stylesheet() -> Response:
        return Response(css, media_type="text/css; charset=utf-8",
                        headers={"Cache-Control": "public, max-age=86400"})  # fmt: skip

    @router.get("/", name="console_backlog")
    def backlog(
        request: Request,
        granted: Granted,
        workflow: Annotated[str | None, Query(max_length=200)] = None,
        hours: Annotated[int, Query(ge=1, le=HOURS_MAX)] = 72,
    ) -> Response:
        at = now()
        with reading() as conn:
            page = pages.backlog_page(
                conn, now=at, hours=hours, zone=zone, visible=visible_of(granted),
                workflow=workflow or None, ladder_of=ladder_of,
                link=partial(render_link, request),
            )  # fmt: skip
        context = {"page": page, "now": at, "workflow": workflow or "",
                   "scope_text": scope_text(granted), "refresh": True}  # fmt: skip
        return render(request, "backlog.html", context)

    # `:path`: a case id may hold a slash (ids are any text of 1-200 characters); links carry
    # it percent-encoded (`render_link`), and the server hands it back decoded.
    @router.get("/cases/{case_id:path}", name="console_case")
    def case(request: Request, case_id: str, granted: Granted) -> Response:
        at = now()
        with reading() as conn:
            page = pages.case_page(conn, case_id, now=at, zone=zone, visible=visible_of(granted),
                                   tiers=tiers or {}, ladder_of=ladder_of)  # fmt: skip
        context: dict[str, Any] = {"now": at, "scope_text": scope_text(granted),
                                   "refresh": False, "case_id": case_id}  # fmt: skip
        if page is None:
            return render(request, "missing.html", context, status=404)
        return render(request, "case.html", {**context, "page": page})

    @router.get("/search", name="console_search")
    def search(
        request: Request,
        granted: Granted,
        *,
        q: Annotated[str, Query(max_length=200)] = "",
        status: ListStatus | None = None,
        workflow: Annotated[str | None, Query(max_length=200)] = None,
        tier: Annotated[str | None, Query(max_length=200)] = None,
        after: Annotated[str | None, Query(max_length=200)] = None,
        after_deadline: datetime | None = None,
    ) -> Response:
        if after_deadline is not None and after_deadline.tzinfo is None:
            raise HTTPException(422, "after_deadline: an instant with its UTC offset")
        at, q = now(), q.strip()
        visible = visible_of(granted)
        found = None
        with reading() as conn:
            if q and status is None and after is None and case_by_id(conn, q, visible):
                # An exact id: straight to the case (what a search box is mostly used for).
                target = render_link(request, "console_case", case_id=q)
                return RedirectResponse(target, status_code=303, headers=PAGE_HEADERS)
            if q or status or workflow:
                found = pages.search_page(
                    conn, q=q, status=status, workflow=workflow or None, tier=tier or None,
                    after=after, after_deadline=after_deadline, now=at, visible=visible,
                )  # fmt: skip
        context = {"now": at, "scope_text": scope_text(granted), "refresh": False, "q": q,
                   "status": status, "workflow": workflow or "", "tier": tier or "",
                   "found": found, "statuses": STATUSES}  # fmt: skip
        return render(request, "search.html", context)

    return router


STATUSES: Mapping[str, str] = {s: labels.WORDS[s] for s in
                               ("overdue", "at_risk", "open", "paused", "closed")}  # fmt: skip


def render_link(request: Request, route: str, /, **query: Any) -> str:
    """The path of a console page (wherever the app mounted the router) with a query string;
    a case id percent-encoded whole (`/`, `?`, `#`, `%` and spaces included)."""
    path_params = {k: quote(str(query.pop(k)), safe="") for k in ("case_id",) if k in query}
    path = request.url_for(route, **path_params).path
    shown = {k: v for k, v in query.items() if v not in (None, "")}
    return f"{path}?{urlencode(shown)}" if shown else path
