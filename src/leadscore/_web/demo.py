"""A demo sign-in for `leadscore demo` (which starts the service on a demo
workspace): an admin user with a fresh random password, so the printed
credentials always work and are never a well-known default."""

from __future__ import annotations

import secrets

import sqlalchemy as sa

from .._store.tables import users, web_sessions
from .._store.users import Role, create_user

DEMO_EMAIL = "demo@leadscore.example"


def demo_user(conn: sa.Connection, *, workspace: str) -> tuple[str, str]:
    """Create the demo user in `workspace` (replacing an earlier one and its
    sessions) and return its (e-mail, password) to print."""
    password = secrets.token_urlsafe(12)
    with conn.begin():
        conn.execute(web_sessions.delete().where(web_sessions.c.email == DEMO_EMAIL))
        conn.execute(users.delete().where(users.c.email == DEMO_EMAIL))
        create_user(conn, workspace=workspace, email=DEMO_EMAIL, role=Role.ADMIN, password=password)
    return DEMO_EMAIL, password
