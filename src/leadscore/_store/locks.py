"""Serializing writers per owner and per anonymous id, without deadlocks.

On PostgreSQL several writers ingest at once. Two of them must never work
on the same owner's state, nor decide the same anonymous id's link, at the
same time: each would build on a state the other is replacing, and the stored
scores would no longer be a replay of the log. So a writer takes transaction
advisory locks (released at commit or rollback) in this order:

1. before any lock, it inserts the event row. A resend of the same id racing
   with it waits on the unique index here, while holding nothing else;
2. the lock of the event's anonymous id, if it has one. Whoever holds it is
   the only one reading or changing that id's link, so the owner it reads
   next stays the owner until commit;
3. the locks of every owner the event touches (its owner; when it moves an
   anonymous id to another contact, the previous owner too), in increasing
   key order.

Every writer takes at most one anonymous-id lock, before any owner lock, and
owner locks in one global order, so no two writers can each hold a lock the
other waits for: no deadlock. Keys are 64-bit hashes in two ranges (anonymous
ids below 2^62, owners above), so a hash collision only makes two writers
wait for each other needlessly; it can never invert the order.

SQLite has one writer at a time (BEGIN IMMEDIATE, see database.py) and needs
none of this.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable

import sqlalchemy as sa

from .._replay import Owner

_ANONYMOUS = 0
_OWNER = 1
_LOCK = sa.text("SELECT pg_advisory_xact_lock(:key)")


def _key(kind: int, workspace: str, name: str) -> int:
    digest = hashlib.blake2b(f"{workspace}\0{name}".encode(), digest_size=8).digest()
    return (kind << 62) | (int.from_bytes(digest, "big") >> 2)


def anonymous_key(workspace: str, anonymous_id: str) -> int:
    return _key(_ANONYMOUS, workspace, anonymous_id)


def owner_key(workspace: str, owner: Owner) -> int:
    identified, key = owner
    return _key(_OWNER, workspace, ("c:" if identified else "a:") + key)


def lock_anonymous(conn: sa.Connection, workspace: str, anonymous_id: str) -> None:
    if conn.dialect.name == "postgresql":
        conn.execute(_LOCK, {"key": anonymous_key(workspace, anonymous_id)})


def lock_owners(conn: sa.Connection, workspace: str, owners: Iterable[Owner]) -> None:
    if conn.dialect.name == "postgresql":
        for key in sorted({owner_key(workspace, owner) for owner in owners}):
            conn.execute(_LOCK, {"key": key})
