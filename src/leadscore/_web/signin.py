"""Signing in and out of the web app.

Failed sign-ins are counted per account and per client address over a
window (settings: signin_failures_per_account, signin_failures_per_address,
signin_window_minutes); past either limit the form answers 429 without
checking the password, so a guesser learns nothing more until the window
has passed. A success clears the account's count.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse, Response

from .._service.bodies import BodyFirst
from .._service.deps import CurrentSettings, Database
from .._store.database import now
from .._store.users import (
    clear_failures,
    close_session,
    failures,
    forget_attempt,
    open_session,
    record_failure,
    verify_password,
)
from .common import (
    SESSION_COOKIE,
    SIGNIN_COOKIE,
    Page,
    new_token,
    set_cookie,
)

router = APIRouter(route_class=BodyFirst, include_in_schema=False)

_MINUTE = 60_000_000


def _safe_next(target: str | None) -> str:
    # Only paths of this site: an open redirect would let a link to the
    # sign-in page send people elsewhere once they have signed in. Browsers
    # also read `/\evil.example` (and a tab or newline after the first
    # slash) as `//evil.example`; RedirectResponse percent-encodes those
    # characters, so such a path stays a path here.
    if target and target.startswith("/") and not target.startswith("//"):
        return target
    return "/"


def _form(request: Request, settings: CurrentSettings, **values: Any) -> Response:
    token = new_token()
    status = values.pop("status", 200)
    assert isinstance(status, int)
    response = Page(request, None).render("signin.html", status=status, signin_csrf=token, **values)
    set_cookie(
        response,
        request,
        setting=settings.secure_cookies,
        name=SIGNIN_COOKIE,
        value=token,
        age=3600,
    )
    return response


@router.get("/signin")
def signin_page(request: Request, settings: CurrentSettings, next: str | None = None) -> Response:
    return _form(request, settings, next=_safe_next(next), email="")


@router.post("/signin")
def signin(
    request: Request,
    *,
    settings: CurrentSettings,
    database: Database,
    email: Annotated[str, Form()],
    password: Annotated[str, Form()],
    next: Annotated[str, Form()] = "/",
) -> Response:
    address = request.client.host if request.client else "unknown"
    # U+0000 (in no address: _EMAIL) as an escape: PostgreSQL refuses it in
    # any text, and the failure it records was a 500 page.
    account = email.strip().lower().replace("\x00", "\\x00")
    subjects = [f"email:{account}", f"ip:{address}"]
    window = int(settings.signin_window_minutes * _MINUTE)
    since = now() - window
    with database.connect() as conn:
        # The attempt counts as a failure before its password is checked:
        # counted after, guesses sent in parallel each saw the count from
        # before any of them, and all were checked (dozens at once, one per
        # thread of the pool, for a limit of 5). Counted first, the last of
        # any set of attempts to be recorded sees them all.
        attempt = record_failure(conn, subjects=subjects, before=since)
        counts = [failures(conn, subject=subject, since=since) for subject in subjects]
        limits = [settings.signin_failures_per_account, settings.signin_failures_per_address]
        if any(count > limit for count, limit in zip(counts, limits, strict=True)):
            # Not checked, so not a failure: the lock lasts from the failures.
            forget_attempt(conn, seqs=attempt)
            return _form(
                request,
                settings,
                status=429,
                next=_safe_next(next),
                email=email,
                error="Too many failed sign-ins. Wait "
                f"{settings.signin_window_minutes:g} minutes and try again.",
            )
        user = verify_password(conn, email=email, password=password)
        if user is None:
            return _form(
                request,
                settings,
                status=401,
                next=_safe_next(next),
                email=email,
                error="Wrong e-mail address or password.",
            )
        forget_attempt(conn, seqs=attempt)
        clear_failures(conn, subject=subjects[0])
        lifetime = int(settings.session_hours * 3600 * 1_000_000)
        token = open_session(conn, email=user.email, lifetime=lifetime)
    response = RedirectResponse(_safe_next(next), status_code=303)
    set_cookie(
        response,
        request,
        setting=settings.secure_cookies,
        name=SESSION_COOKIE,
        value=token,
        age=lifetime // 1_000_000,
    )
    response.delete_cookie(SIGNIN_COOKIE, path="/")
    return response


@router.post("/signout")
def signout(request: Request, database: Database) -> Response:
    token = request.cookies.get(SESSION_COOKIE)
    if token:
        with database.connect() as conn:
            close_session(conn, token=token)
    response = RedirectResponse("/signin", status_code=303)
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response
