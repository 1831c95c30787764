"""People who use the web app: users, their sessions, and failed sign-ins.

A user has an e-mail address (their sign-in name, unique across the
database), one workspace and one role:

- `sales`: reads leads and contacts;
- `marketer`: also edits the scoring model and reads reports;
- `admin`: also manages users, API keys and webhooks.

Passwords are hashed with argon2id (argon2-cffi's defaults, the "low
memory" profile of RFC 9106: 3 passes over 64 MiB, 4 lanes; a hash takes
some tens of milliseconds). Unlike API keys (keys.py), passwords are chosen
by people and can be guessed, so a slow, memory-hard KDF is what protects
them in a stolen copy of the database; sign-in is rare enough to pay for it.

Sessions are rows: the cookie carries 256 random bits, of which only a
SHA-256 hash is stored (as for API keys, a random secret needs no KDF), so
signing out deletes the row and the cookie is worthless from then on. Each
session has its own CSRF token that every form and POST must echo.

Failed sign-ins are rows too, per account and per client address, so that
the limit holds across server processes and restarts.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import sqlalchemy as sa
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from .database import now, transaction
from .tables import signin_failures, users, web_sessions
from .workspaces import require_workspace

_hasher = PasswordHasher()
# A hash to verify against when the e-mail is unknown, so that a sign-in
# takes as long whether the account exists or not.
_ABSENT = _hasher.hash(secrets.token_urlsafe(16))
# No spaces and no control characters: U+0000, which PostgreSQL refuses in
# any text (a 500 page when an admin added "a\x00@b.co"), and the rest,
# which no mail system delivers to.
_EMAIL = re.compile(r"[^@\s\x00-\x1f\x7f]+@[^@\s\x00-\x1f\x7f]+\.[^@\s\x00-\x1f\x7f]+")
MIN_PASSWORD = 10  # NIST SP 800-63B asks for at least 8; 10 leaves a margin


class Role(StrEnum):
    SALES = "sales"
    MARKETER = "marketer"
    ADMIN = "admin"

    def allows(self, needed: Role) -> bool:
        """Whether this role may do what needs `needed`: each role can do
        everything of the ones before it."""
        order = list(Role)
        return order.index(self) >= order.index(needed)


@dataclass(frozen=True, slots=True)
class User:
    email: str
    workspace: str
    role: Role
    created_at: int
    disabled_at: int | None


@dataclass(frozen=True, slots=True)
class Session:
    user: User
    csrf: str
    expires_at: int


def normalize_email(email: str) -> str:
    """The form an address is stored and compared in; ValueError when it is not one."""
    email = email.strip().lower()
    if not _EMAIL.fullmatch(email):
        raise ValueError(f"not an e-mail address: {email!r}")
    return email


def check_password(password: str) -> None:
    """ValueError when a password is too weak to accept."""
    if len(password) < MIN_PASSWORD:
        raise ValueError(f"a password needs at least {MIN_PASSWORD} characters")


def _user(row: sa.Row[Any, *tuple[Any, ...]]) -> User:
    return User(row.email, row.workspace, Role(row.role), row.created_at, row.disabled_at)


_COLUMNS = (users.c.email, users.c.workspace, users.c.role, users.c.created_at, users.c.disabled_at)


def create_user(
    conn: sa.Connection, *, workspace: str, email: str, role: Role, password: str
) -> User:
    """A new user. Raises ValueError for a bad address or a weak password or
    when the address is taken, UnknownWorkspace when the workspace is missing."""
    email = normalize_email(email)
    check_password(password)
    hashed = _hasher.hash(password)
    with transaction(conn):
        require_workspace(conn, workspace)
        taken = conn.execute(sa.select(users.c.email).where(users.c.email == email)).first()
        if taken is not None:
            raise ValueError(f"a user {email!r} exists already")
        created = now()
        conn.execute(
            users.insert().values(
                email=email,
                workspace=workspace,
                role=role.value,
                password_hash=hashed,
                created_at=created,
                disabled_at=None,
            )
        )
    return User(email, workspace, role, created, None)


def list_users(conn: sa.Connection, *, workspace: str) -> list[User]:
    """The workspace's users, by address."""
    with transaction(conn):
        rows = conn.execute(
            sa.select(*_COLUMNS).where(users.c.workspace == workspace).order_by(users.c.email)
        ).all()
    return [_user(row) for row in rows]


def disable_user(conn: sa.Connection, *, workspace: str, email: str) -> bool:
    """Disable a user of the workspace and end their sessions; False when there is none."""
    if "\x00" in email:  # no stored address holds one (_EMAIL); PostgreSQL refuses it
        return False
    with transaction(conn):
        found = conn.execute(
            users.update()
            .where(users.c.workspace == workspace, users.c.email == email)
            .values(disabled_at=sa.func.coalesce(users.c.disabled_at, now()))
        ).rowcount
        # Only when the user is of this workspace: sessions are by address
        # alone, and an admin must not sign out users of another workspace.
        if found:
            conn.execute(web_sessions.delete().where(web_sessions.c.email == email))
    return found > 0


def verify_password(conn: sa.Connection, *, email: str, password: str) -> User | None:
    """The enabled user with this address and password, else None."""
    try:
        email = normalize_email(email)
    except ValueError:
        email = ""
    with transaction(conn):
        row = conn.execute(
            sa.select(*_COLUMNS, users.c.password_hash).where(
                users.c.email == email, users.c.disabled_at.is_(None)
            )
        ).first()
    try:
        _hasher.verify(_ABSENT if row is None else row.password_hash, password)
    except (VerificationError, InvalidHashError):
        return None
    return None if row is None else _user(row)


# -- failed sign-ins ----------------------------------------------------------------


def failures(conn: sa.Connection, *, subject: str, since: int) -> int:
    """Failed sign-ins of a subject ("email:..." or "ip:...") since an instant."""
    with transaction(conn):
        count = conn.execute(
            sa.select(sa.func.count())
            .select_from(signin_failures)
            .where(signin_failures.c.subject == subject, signin_failures.c.at >= since)
        ).scalar_one()
    return int(count)


def record_failure(conn: sa.Connection, *, subjects: list[str], before: int) -> list[int]:
    """Record a failed sign-in for each subject; forget failures older than
    `before`. The rows' ids, for `forget_attempt`."""
    at = now()
    seqs = []
    with transaction(conn):
        conn.execute(signin_failures.delete().where(signin_failures.c.at < before))
        for subject in subjects:
            seq = conn.execute(
                signin_failures.insert()
                .values(subject=subject, at=at)
                .returning(signin_failures.c.seq)
            ).scalar_one()
            seqs.append(int(seq))
    return seqs


def forget_attempt(conn: sa.Connection, *, seqs: list[int]) -> None:
    """Remove rows `record_failure` added: an attempt counted before its
    password was checked that turned out not to be a failure."""
    with transaction(conn):
        conn.execute(signin_failures.delete().where(signin_failures.c.seq.in_(seqs)))


def clear_failures(conn: sa.Connection, *, subject: str) -> None:
    with transaction(conn):
        conn.execute(signin_failures.delete().where(signin_failures.c.subject == subject))


# -- sessions -----------------------------------------------------------------------


def _digest(token: str) -> bytes:
    return hashlib.sha256(token.encode("utf-8")).digest()


def open_session(conn: sa.Connection, *, email: str, lifetime: int) -> str:
    """A new session for a user, lasting `lifetime` microseconds: its token."""
    token = secrets.token_urlsafe(32)
    created = now()
    with transaction(conn):
        conn.execute(web_sessions.delete().where(web_sessions.c.expires_at < created))
        conn.execute(
            web_sessions.insert().values(
                token_hash=_digest(token),
                email=email,
                csrf=secrets.token_urlsafe(32),
                created_at=created,
                expires_at=created + lifetime,
            )
        )
    return token


def find_session(conn: sa.Connection, *, token: str) -> Session | None:
    """The live session of a token (of an enabled user), else None."""
    joined = web_sessions.join(users, users.c.email == web_sessions.c.email)
    with transaction(conn):
        row = conn.execute(
            sa.select(*_COLUMNS, web_sessions.c.csrf, web_sessions.c.expires_at)
            .select_from(joined)
            .where(
                web_sessions.c.token_hash == _digest(token),
                web_sessions.c.expires_at > now(),
                users.c.disabled_at.is_(None),
            )
        ).first()
    if row is None:
        return None
    return Session(_user(row), row.csrf, row.expires_at)


def close_session(conn: sa.Connection, *, token: str) -> None:
    """End a session (signing out): its token stops working at once."""
    with transaction(conn):
        conn.execute(web_sessions.delete().where(web_sessions.c.token_hash == _digest(token)))
