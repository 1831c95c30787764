"""API keys: created per workspace with a scope, stored hashed, revocable.

A key reads `lsk_<id>_<secret>`. The id (16 hex digits) is public: it names
the key in listings, logs and `DELETE /v1/keys/{id}`, and finds its row. The
secret is 32 random bytes from `secrets` (256 bits), written in base64url.

Only a hash of the secret is stored, so a copy of the database (a backup, a
leaked dump) holds no usable key. The hash is keyed BLAKE2b, not a slow
password KDF such as scrypt: a KDF's cost only slows the guessing of inputs
people choose, and nobody can guess 256 random bits at any speed, while the
cost would be paid on every request and make authentication an easy way to
burn the server's CPU. The key id is the BLAKE2 key, so a hash is bound to its
row (copied into another row it authenticates nothing), and the
personalization string keeps these hashes apart from any other use of BLAKE2.
Hashes are compared in constant time.

Scopes: a `write` key only sends events (safe to embed in a web page), a
`read` key only reads, an `admin` key may do everything, including what the
other two do. A read key cannot send events: reading is no reason to be
able to change scores.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from enum import StrEnum
from typing import NamedTuple

import sqlalchemy as sa

from .database import now, transaction
from .prepared import Prepared
from .tables import api_keys
from .workspaces import require_workspace

_PREFIX = "lsk_"
_ID = re.compile(r"[0-9a-f]{16}")
_PERSON = b"leadscore-apikey"  # BLAKE2b personalization: at most 16 bytes


class Scope(StrEnum):
    WRITE = "write"
    READ = "read"
    ADMIN = "admin"

    def allows(self, needed: Scope) -> bool:
        """Whether a key of this scope may do what needs `needed`."""
        return self is Scope.ADMIN or self is needed


@dataclass(frozen=True, slots=True)
class ApiKey:
    """What is known of a key besides its secret."""

    key_id: str
    workspace: str
    scope: Scope
    created_at: int  # microseconds since the epoch
    revoked_at: int | None


class Caller(NamedTuple):
    """Whom a valid key speaks for."""

    workspace: str
    scope: Scope
    key_id: str


def _hash(key_id: str, secret: str) -> bytes:
    return hashlib.blake2b(
        secret.encode("utf-8"), digest_size=32, key=key_id.encode("ascii"), person=_PERSON
    ).digest()


def create_key(conn: sa.Connection, *, workspace: str, scope: Scope) -> tuple[ApiKey, str]:
    """A new key of the workspace: its description and the key itself, which
    exists nowhere else (only its hash is stored). Raises UnknownWorkspace."""
    with transaction(conn):
        require_workspace(conn, workspace)
        while True:
            key_id = secrets.token_hex(8)
            # 64-bit ids collide about never; when one does, draw again
            # rather than fail on the primary key.
            taken = conn.execute(sa.select(api_keys.c.id).where(api_keys.c.id == key_id)).first()
            if taken is None:
                break
        secret = secrets.token_urlsafe(32)
        created = now()
        conn.execute(
            api_keys.insert().values(
                id=key_id,
                workspace=workspace,
                secret_hash=_hash(key_id, secret),
                scope=scope.value,
                created_at=created,
                revoked_at=None,
            )
        )
    return ApiKey(key_id, workspace, scope, created, None), f"{_PREFIX}{key_id}_{secret}"


# Every request checks a key: on the driver's cursor (prepared.py).
_BY_ID = Prepared(
    sa.select(api_keys.c.workspace, api_keys.c.scope, api_keys.c.secret_hash).where(
        api_keys.c.id == sa.bindparam("key_id"), api_keys.c.revoked_at.is_(None)
    )
)


def authenticate(conn: sa.Connection, *, key: str) -> Caller | None:
    """The workspace and scope of a valid key; None when it is malformed,
    unknown or revoked."""
    if not key.startswith(_PREFIX):
        return None
    key_id, _, secret = key.removeprefix(_PREFIX).partition("_")
    if not _ID.fullmatch(key_id) or not secret:
        return None
    with transaction(conn):
        found = _BY_ID.rows(conn, {"key_id": key_id})
    # Whether an id exists may show in the timing: ids are not secret. The
    # secret is compared in constant time.
    if not found:
        return None
    ((workspace, scope, secret_hash),) = found
    if not hmac.compare_digest(bytes(secret_hash), _hash(key_id, secret)):
        return None
    return Caller(workspace, Scope(scope), key_id)


def revoke_key(conn: sa.Connection, *, workspace: str, key_id: str) -> bool:
    """Revoke a key of the workspace; False when the workspace has no such key.
    Revoking a revoked key keeps its first revocation time."""
    if not _ID.fullmatch(key_id):
        # Names no key (ids are 16 hex digits), and must not reach SQL: a
        # U+0000 in it was a server error on PostgreSQL, which refuses it.
        return False
    with transaction(conn):
        found = conn.execute(
            sa.select(api_keys.c.revoked_at).where(
                api_keys.c.id == key_id, api_keys.c.workspace == workspace
            )
        ).first()
        if found is None:
            return False
        if found.revoked_at is None:
            conn.execute(
                api_keys.update()
                .where(api_keys.c.id == key_id, api_keys.c.workspace == workspace)
                .values(revoked_at=now())
            )
    return True


def list_keys(conn: sa.Connection, *, workspace: str) -> list[ApiKey]:
    """Every key of the workspace, revoked ones included, oldest first."""
    with transaction(conn):
        rows = conn.execute(
            sa.select(api_keys.c.id, api_keys.c.scope, api_keys.c.created_at, api_keys.c.revoked_at)
            .where(api_keys.c.workspace == workspace)
            .order_by(api_keys.c.created_at, api_keys.c.id)
        ).all()
    return [
        ApiKey(row.id, workspace, Scope(row.scope), row.created_at, row.revoked_at) for row in rows
    ]
