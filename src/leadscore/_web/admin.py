"""Settings for admins: the workspace's API keys and users (webhooks: webhooks.py)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse, Response

from .._service.deps import Database
from .._store.keys import Scope, create_key, list_keys, revoke_key
from .._store.users import Role, create_user, disable_user, list_users
from .common import Admin, Page, Refused

router = APIRouter(include_in_schema=False)


def _keys_page(session: Admin, request: Request, database: Database, **values: Any) -> Response:
    with database.connect() as conn:
        found = list_keys(conn, workspace=session.user.workspace)
    return Page(request, session).render("keys.html", keys=found, scopes=list(Scope), **values)


@router.get("/settings/keys")
def keys(session: Admin, request: Request, database: Database) -> Response:
    return _keys_page(session, request, database)


@router.post("/settings/keys")
def new_key(
    session: Admin, request: Request, database: Database, scope: Annotated[str, Form()]
) -> Response:
    try:
        wanted = Scope(scope)
    except ValueError:
        raise Refused(422, "Unknown scope", f"{scope!r} is not write, read or admin.") from None
    with database.connect() as conn:
        created, key = create_key(conn, workspace=session.user.workspace, scope=wanted)
    # Shown in this answer only: the store keeps a hash.
    return _keys_page(session, request, database, created=created, secret=key)


@router.post("/settings/keys/{key_id}/revoke")
def revoke(session: Admin, key_id: str, database: Database) -> Response:
    with database.connect() as conn:
        if not revoke_key(conn, workspace=session.user.workspace, key_id=key_id):
            raise Refused(404, "No such key", f"This workspace has no key {key_id!r}.")
    return RedirectResponse("/settings/keys", status_code=303)


def _users_page(
    session: Admin, request: Request, database: Database, *, status: int = 200, **values: Any
) -> Response:
    with database.connect() as conn:
        found = list_users(conn, workspace=session.user.workspace)
    return Page(request, session).render(
        "users.html", status=status, users=found, role_choices=list(Role), **values
    )


@router.get("/settings/users")
def users(session: Admin, request: Request, database: Database) -> Response:
    return _users_page(session, request, database)


@router.post("/settings/users")
def new_user(
    session: Admin,
    request: Request,
    *,
    database: Database,
    email: Annotated[str, Form()],
    role: Annotated[str, Form()],
    password: Annotated[str, Form()],
) -> Response:
    try:
        with database.connect() as conn:
            created = create_user(
                conn,
                workspace=session.user.workspace,
                email=email,
                role=Role(role),
                password=password,
            )
    except ValueError as error:
        # The address and role as typed, to correct rather than type again.
        typed = {"email": email, "role": role}
        return _users_page(session, request, database, status=422, error=str(error), typed=typed)
    return _users_page(session, request, database, created=created)


# The address travels in the form, not the path: it may hold a "/", and a
# "." or ".." segment (`a/../b@example.com`) that a browser collapses before
# posting, so that the form of one user would disable another.
@router.post("/settings/users/disable")
def disable(session: Admin, email: Annotated[str, Form()], database: Database) -> Response:
    if email == session.user.email:
        raise Refused(409, "That is you", "Admins cannot disable themselves.")
    with database.connect() as conn:
        if not disable_user(conn, workspace=session.user.workspace, email=email):
            raise Refused(404, "No such user", f"This workspace has no user {email!r}.")
    return RedirectResponse("/settings/users", status_code=303)
