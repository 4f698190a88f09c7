"""Signing in to the web console: a form that turns an access token into the session cookie.

Why a form of its own: a browser cannot send a bearer header from a link, and the API's
`POST /session` takes the token only in that header. `POST /login` reads the token from the
form's urlencoded body instead (parsed here: FastAPI's form support would need one more
package for a single field), sets the same signed session cookie (`access.Sessions`), and sends
the browser back where it wanted to go. Console pages without a valid session redirect here
(`console_scope`); the JSON API keeps answering 401, which is what programs expect.

Only same-site paths are followed after signing in (`next` must start with one `/`), so the form
cannot be used to send someone elsewhere.
"""

from urllib.parse import parse_qs, quote

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.templating import Jinja2Templates

from consumers.view.access import SESSION_COOKIE, Grant, Scope
from consumers.view.api import ViewContext, bearer_grant, session_cookie_options
from consumers.view.console import PAGE_HEADERS, environment

MAX_FORM_BYTES = 4096
"""A token and a path: anything longer is not a sign-in."""


def console_scope(request: Request) -> Scope:
    """The console's scope dependency: the caller's scope from a bearer token or the session
    cookie; without either, a redirect to the sign-in form (and back after it)."""
    context: ViewContext = request.app.state.view
    grant: Grant | None = bearer_grant(request, context)
    if grant is None:
        cookie = request.cookies.get(SESSION_COOKIE)
        grant = context.sessions.verify(cookie, context.now()) if cookie else None
    if grant is None:
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        location = f"{request.scope.get('root_path', '')}/login?next={quote(target, safe='')}"
        raise HTTPException(303, "sign in first", headers={"Location": location})
    return grant.scope


def login_router() -> APIRouter:
    router = APIRouter(include_in_schema=False)
    templates = Jinja2Templates(env=environment())

    def form(request: Request, next_: str, failed: bool = False) -> Response:
        context = {"css": str(request.url_for("console_css")), "next": _safe(next_),
                   "failed": failed, "action": str(request.url_for("console_login"))}  # fmt: skip
        status = 401 if failed else 200
        return templates.TemplateResponse(request, "login.html", context, status_code=status,
                                           headers=PAGE_HEADERS)  # fmt: skip

    @router.get("/login", name="console_login_form", response_class=HTMLResponse)
    def login_form(request: Request, next: str = "/") -> Response:
        return form(request, next)

    @router.post("/login", name="console_login")
    async def login(request: Request) -> Response:
        body = await request.body()
        fields = parse_qs(body[:MAX_FORM_BYTES].decode("utf-8", "replace"))
        token = (fields.get("token") or [""])[0].strip()
        next_ = (fields.get("next") or ["/"])[0]
        context: ViewContext = request.app.state.view
        grant = context.access.authenticate(token) if token else None
        if grant is None:
            return form(request, next_, failed=True)
        response = RedirectResponse(_safe(next_), status_code=303, headers=PAGE_HEADERS)
        response.set_cookie(value=context.sessions.issue(grant, context.now()),
                            **session_cookie_options(request, context))  # fmt: skip
        return response

    @router.post("/logout", name="console_logout")
    def logout(request: Request) -> Response:
        response = RedirectResponse(str(request.url_for("console_login_form")), status_code=303)
        response.delete_cookie(SESSION_COOKIE, path="/", httponly=True, samesite="strict")
        return response

    return router


def _safe(target: str) -> str:
    """A same-site path to go to after signing in (anything else: the backlog)."""
    if not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    return target
