"""Serializing writers per owner and per anonymous id, without deadlocks.

On PostgreSQL several writers ingest at once. Two of them must never work
on the same owner's state, nor decide the same anonymous id's link, at the
same time: each would build on a state the other is replacing, and the stored
scores would no longer be a replay of the log. So a writer takes transaction
advisory locks (released at commit or rollback) in this order:

1. before any lock, it inserts the rows of its events (a batch in one
   statement), in increasing id order. A resend of the same id racing with
   it waits on the unique index here, while holding no advisory lock, and
   two batches that share ids take the index entries in one order;
2. the locks of every anonymous id of its events, in increasing key order.
   Whoever holds one is the only one reading or changing that id's link, so
   the owners it reads next stay the owners until commit;
3. the locks of every owner its events may touch, in increasing key order:
   the events' contacts, and for each anonymous id its current winner and
   its anonymous profile (a link in the batch can move the id's events only
   between those and the batch's contacts).

Advisory locks are therefore always taken in increasing key order (anonymous
ids below 2^62, owners above), after every index entry a writer will wait
for: no two writers can each hold a lock the other waits for, so no deadlock.
Keys are 64-bit hashes, so a hash collision only makes two writers wait for
each other needlessly; it can never invert the order. A model activation's
rescore takes only owner locks, in the same order.

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
# Many locks in one round trip: a function scan of unnest yields the array's
# elements in order, and the select list is evaluated row by row, so the
# locks are taken in the order of the (sorted) array.
_LOCK_ALL = sa.text("SELECT pg_advisory_xact_lock(k) FROM unnest(CAST(:keys AS bigint[])) AS k")


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


def lock_anonymous_ids(conn: sa.Connection, workspace: str, anonymous_ids: Iterable[str]) -> None:
    if conn.dialect.name == "postgresql":
        _lock_all(conn, (anonymous_key(workspace, anonymous) for anonymous in anonymous_ids))


def lock_owners(conn: sa.Connection, workspace: str, owners: Iterable[Owner]) -> None:
    if conn.dialect.name == "postgresql":
        _lock_all(conn, (owner_key(workspace, owner) for owner in owners))


def _lock_all(conn: sa.Connection, keys: Iterable[int]) -> None:
    ordered = sorted(set(keys))
    if len(ordered) == 1:
        conn.execute(_LOCK, {"key": ordered[0]})
    elif ordered:
        conn.execute(_LOCK_ALL, {"keys": ordered})
