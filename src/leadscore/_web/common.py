"""What every page of the web app shares: templates, who is signed in, CSRF,
and the errors pages answer with.

Sessions (see _store/users.py) travel in an HttpOnly, SameSite=Lax cookie,
Secure when the request came over https (or when the settings say so).
SameSite=Lax already keeps other sites' forms from carrying the cookie, and
on top of it every POST must echo the session's CSRF token (a form field or
the X-CSRF-Token header): `csrf_guard` runs on every route of the web app.
The sign-in form has no session yet: there the token is a cookie of its own,
echoed by the form (a double submit).
"""

from __future__ import annotations

import hmac
import inspect
import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.routing import APIRoute
from fastapi.templating import Jinja2Templates
from jinja2.utils import htmlsafe_json_dumps
from starlette.datastructures import MutableHeaders
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import BaseRoute
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .._service.deps import Database, Models
from .._service.problems import CLOSE
from .._store.users import Role, Session, find_session
from .._store.workspaces import ModelVersion
from .._time import format_timestamp

HERE = Path(__file__).parent
SESSION_COOKIE = "ls_session"
SIGNIN_COOKIE = "ls_signin"
CSRF_HEADER = "x-csrf-token"

templates = Jinja2Templates(directory=HERE / "templates")

# Defence in depth on every answer of the web app (PageHeaders): no browser
# guesses another type than the one sent (nosniff), and no other site shows
# a page in a frame, where a click meant for its own page would press this
# one's buttons (frame-ancestors; X-Frame-Options for browsers without CSP
# level 2).
PAGE_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Content-Security-Policy": "frame-ancestors 'self'",
    "X-Frame-Options": "SAMEORIGIN",
}


def _when(micros: int | None) -> str:
    if micros is None:
        return "—"
    return format_timestamp(micros).replace("T", " ").removesuffix("Z")[:16] + " UTC"


def contact_href(contact_id: str) -> str:
    """The link to a contact's card.

    `/contacts/<id>`, the id percent-encoded but its "/" kept (the card's route
    takes the id whole). An id with a "." or ".." segment (`..`, `a/.`) cannot
    travel so: browsers collapse such segments ("/contacts/.." is "/"), and
    %2E does not help, since the URL standard collapses "%2e" and "%2E%2E" too
    (httpx does not, so only a browser shows it). Such an id goes in the query
    instead, `/contacts/?id=<id>`, which no one normalises; the card's route
    reads it there when its path holds none.
    """
    if any(segment in (".", "..") for segment in contact_id.split("/")):
        return "/contacts/?id=" + quote(contact_id, safe="")
    return "/contacts/" + quote(contact_id, safe="/")


templates.env.filters["when"] = _when
templates.env.filters["contact_href"] = contact_href
templates.env.globals["vendor"] = lambda name: (HERE / "static" / "vendor" / name).is_file()


def script_json(value: Any) -> str:
    """`value` as JSON to put in a <script> element, where HTML escaping does
    not apply: a name from the model holding "</script>" would end the
    element and run what follows. Jinja's own dumps writes <, >, & and ' as
    JSON escapes, which JSON reads as the characters."""
    return str(htmlsafe_json_dumps(value))


class SignInNeeded(Exception):
    def __init__(self, back: str) -> None:
        self.back = back


class Refused(Exception):
    """A page answer other than a success: rendered as an HTML page."""

    def __init__(self, status: int, title: str, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.title = title
        self.detail = detail


def secure(request: Request, setting: bool | None) -> bool:
    """Whether cookies must be marked Secure."""
    return setting if setting is not None else request.url.scheme == "https"


def set_cookie(
    response: Response, request: Request, *, setting: bool | None, name: str, value: str, age: int
) -> None:
    response.set_cookie(
        name,
        value,
        max_age=age,
        httponly=True,
        samesite="lax",
        secure=secure(request, setting),
        path="/",
    )


def _session(request: Request, database: Database) -> Session | None:
    token = request.cookies.get(SESSION_COOKIE)
    if not token:
        return None
    with database.connect() as conn:
        return find_session(conn, token=token)


def _viewer(needed: Role) -> Callable[[Request, Database], Session]:
    def dependency(request: Request, database: Database) -> Session:
        session = _session(request, database)
        if session is None:
            back = request.url.path + (f"?{request.url.query}" if request.url.query else "")
            raise SignInNeeded(back)
        if not session.user.role.allows(needed):
            raise Refused(
                403,
                "Not for your role",
                f"This page is for {needed.value}s"
                + (" and admins." if needed is Role.MARKETER else ".")
                + f" You are signed in as {session.user.role.value}.",
            )
        return session

    return dependency


# The signed-in user of a page, by the role the page needs.
Sales = Annotated[Session, Depends(_viewer(Role.SALES))]
Marketer = Annotated[Session, Depends(_viewer(Role.MARKETER))]
Admin = Annotated[Session, Depends(_viewer(Role.ADMIN))]


async def csrf_guard(request: Request, database: Database) -> None:
    """Every POST carries the CSRF token of its session (or, signing in, of
    its sign-in cookie), as a form field or the X-CSRF-Token header."""
    if request.method in ("GET", "HEAD", "OPTIONS"):
        return
    sent = request.headers.get(CSRF_HEADER)
    if sent is None and request.headers.get("content-type", "").startswith(
        ("application/x-www-form-urlencoded", "multipart/form-data")
    ):
        value = (await request.form()).get("csrf")
        sent = value if isinstance(value, str) else None
    if request.url.path == "/signin":
        expected = request.cookies.get(SIGNIN_COOKIE)
    else:
        # Blocking I/O, but one indexed read.
        session = _session(request, database)
        if session is None and request.url.path == "/signout":
            # No live session (expired, closed, its user disabled): nothing
            # to protect, and a tab left open past the session's end must
            # still sign out, its cookie cleared, not find "Form expired".
            # A live session's sign-out keeps the check: no other site may
            # sign its user out.
            return
        expected = None if session is None else session.csrf
    # As bytes: compare_digest raises TypeError on str past ASCII (a 500 for
    # a forged token "é").
    if not sent or not expected or not hmac.compare_digest(sent.encode(), expected.encode()):
        raise Refused(
            403,
            "Form expired",
            "This form could not be verified (CSRF check). Reload the page and try again.",
        )


def new_token() -> str:
    return secrets.token_urlsafe(32)


@dataclass(frozen=True)
class Page:
    """What a template is given besides its own values."""

    request: Request
    session: Session | None

    def render(self, template: str, *, status: int = 200, **values: Any) -> HTMLResponse:
        user = None if self.session is None else self.session.user
        context = {
            "user": user,
            "csrf": None if self.session is None else self.session.csrf,
            "roles": Role,
            "can": (lambda role: user is not None and user.role.allows(role)),
            "path": self.request.url.path,
            **values,
        }
        return templates.TemplateResponse(self.request, template, context, status_code=status)


def active(database: Database, models: Models, workspace: str) -> ModelVersion | None:
    with database.connect() as conn:
        return models.active(conn, workspace=workspace)


def _error_page(request: Request, exc: Refused) -> Response:
    session = _session(request, request.app.state.database)
    return Page(request, session).render(
        "error.html", status=exc.status, title=exc.title, detail=exc.detail
    )


# Where a value of a request comes from, as the error page names it.
_PLACES = {
    "query": "in the address's query",
    "path": "in the address's path",
    "body": "in the form",
    "header": "in a header",
    "cookie": "in a cookie",
}


def _invalid(request: Request, exc: RequestValidationError) -> str:
    """What is wrong with a request, for people: each value at fault, by
    its name and where it came from."""
    form = request.headers.get("content-type", "").startswith(
        ("application/x-www-form-urlencoded", "multipart/form-data")
    )
    said = []
    for error in exc.errors():
        where, *names = (str(part) for part in error["loc"])
        name = ".".join(names) or where
        place = _PLACES.get(where, f"in the {where}")
        if where == "body" and not form:
            place = "in the request's body"
        if error.get("type") == "missing":
            said.append(f"{name!r} ({place}) is missing.")
            continue
        value = repr(error.get("input"))
        value = value if len(value) <= 60 else value[:57] + "..."
        said.append(f"{name!r} ({place}) is not valid: {value}. {error['msg']}.")
    return " ".join(said)


# The service's own paths: never a page, whatever the client asks for.
_API_PATHS = ("/v1/", "/healthz", "/readyz", "/metrics", "/docs", "/redoc", "/openapi.json")


def of_the_web_app(path: str) -> bool:
    """Whether an answer at `path` is the web app's: any path outside the API's."""
    return not path.startswith(_API_PATHS)


class PageHeaders:
    """ASGI middleware: PAGE_HEADERS on every answer of the web app, whatever
    made it (a page, a redirect, the CSV export, the model editor's JSON, a
    static file, an error page, Starlette's 405, BodyLimit's 413, a CORS
    preflight), set in this one place rather than by each route. The API's
    paths are left as they are. Starlette's answer to an unexpected error is
    made outside every middleware: the handler of those (`install`) sets
    them itself."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not of_the_web_app(scope["path"]):
            await self.app(scope, receive, send)
            return

        async def guarded(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in PAGE_HEADERS.items():
                    headers[name] = value  # replaced, never sent twice
            await send(message)

        await self.app(scope, receive, guarded)


def _browsing(request: Request) -> bool:
    """A browser's navigation to a path of no route: a GET asking for HTML
    before anything else, outside the API's paths."""
    accepted = request.headers.get("accept", "")
    return (
        request.method == "GET"
        and request.scope.get("route") is None
        and accepted.startswith("text/html")
        and of_the_web_app(request.url.path)
    )


async def _answered(handler: Callable[..., Any], request: Request, exc: Exception) -> Response:
    """The answer of the handler the service had installed (the API's
    problem), which Starlette allows to be sync or async."""
    answer = handler(request, exc)
    response: Response = await answer if inspect.isawaitable(answer) else answer
    return response


def install(app: FastAPI, pages: Sequence[BaseRoute]) -> None:
    """The answers of pages that cannot be shown; `pages`: the web app's
    routes, whose invalid requests and failures answer an HTML page rather
    than the API's problem."""
    endpoints = {route.endpoint for route in pages if isinstance(route, APIRoute)}

    def of_a_page(request: Request) -> bool:
        route = request.scope.get("route")
        return isinstance(route, APIRoute) and route.endpoint in endpoints

    api_invalid = app.exception_handlers[RequestValidationError]

    @app.exception_handler(RequestValidationError)
    async def on_invalid(request: Request, exc: RequestValidationError) -> Response:
        if of_a_page(request):
            return _error_page(request, Refused(422, "Not a valid request", _invalid(request, exc)))
        return await _answered(api_invalid, request, exc)

    api_http = app.exception_handlers[StarletteHTTPException]

    @app.exception_handler(StarletteHTTPException)
    async def on_http(request: Request, exc: StarletteHTTPException) -> Response:
        # An address that is no page, typed or followed by a person: a
        # browser's navigation asks for HTML first, a program for JSON or
        # anything (`*/*`), so only the former gets the error page. The API's
        # paths keep their problem whatever was asked, as every API error does.
        if exc.status_code == 404 and _browsing(request):
            detail = "There is no page at this address. The leads list is at the start page."
            return _error_page(request, Refused(404, "Not found", detail))
        return await _answered(api_http, request, exc)

    api_unexpected = app.exception_handlers[Exception]

    @app.exception_handler(Exception)
    async def on_unexpected(request: Request, exc: Exception) -> Response:
        # A bug or an outage (the database gone) on a page, or in the 404
        # page of a browser's navigation: the error page, saying nothing of
        # the cause. Starlette raises the exception again once this is sent,
        # so the server logs its traceback, as for the API's 500s. No menu:
        # finding the session needs the database, maybe what failed.
        if of_a_page(request) or _browsing(request):
            response: Response = Page(request, None).render(
                "error.html",
                status=500,
                title="Server error",
                detail="This page could not be shown: the server failed. "
                "It has been logged; try again in a moment.",
            )
        else:
            response = await _answered(api_unexpected, request, exc)
        if of_the_web_app(request.url.path):
            # Starlette sends this outside every middleware, PageHeaders too.
            response.headers.update(PAGE_HEADERS)
        response.headers.update(CLOSE)  # as the API's (problems.CLOSE says why)
        return response

    @app.exception_handler(SignInNeeded)
    async def on_signin(request: Request, exc: SignInNeeded) -> Response:
        return RedirectResponse(f"/signin?next={quote(exc.back, safe='/')}", status_code=303)

    @app.exception_handler(Refused)
    async def on_refused(request: Request, exc: Refused) -> Response:
        return _error_page(request, exc)
