"""Identity links: which contact each anonymous id belongs to (spec 1)."""

from __future__ import annotations

from typing import NamedTuple

import sqlalchemy as sa

from .prepared import Prepared
from .tables import identity_links


class Link(NamedTuple):
    timestamp: int
    event_id: str
    contact_id: str

    @property
    def order_key(self) -> tuple[int, str]:
        return (self.timestamp, self.event_id)


def winner(conn: sa.Connection, workspace: str, anonymous_id: str) -> Link | None:
    """The link in force: the first in (timestamp, event id) order."""
    row = conn.execute(
        sa.select(
            identity_links.c.timestamp, identity_links.c.event_id, identity_links.c.contact_id
        ).where(
            identity_links.c.workspace == workspace,
            identity_links.c.anonymous_id == anonymous_id,
        )
    ).first()
    return None if row is None else Link(row.timestamp, row.event_id, row.contact_id)


# Ingestion reads and writes links for every event with an anonymous id: on
# the driver's cursor (prepared.py).
_WINNERS = Prepared(
    sa.select(
        identity_links.c.anonymous_id,
        identity_links.c.timestamp,
        identity_links.c.event_id,
        identity_links.c.contact_id,
    ).where(
        identity_links.c.workspace == sa.bindparam("workspace"),
        identity_links.c.anonymous_id.in_(sa.bindparam("anonymous_ids", expanding=True)),
    )
)


def winners(conn: sa.Connection, workspace: str, anonymous_ids: list[str]) -> dict[str, Link]:
    """The links in force of these anonymous ids (those that have one)."""
    if not anonymous_ids:
        return {}
    rows = _WINNERS.rows(conn, {"workspace": workspace, "anonymous_ids": anonymous_ids})
    return {anonymous: Link(stamp, event, contact) for anonymous, stamp, event, contact in rows}


def offer(
    conn: sa.Connection, workspace: str, anonymous_id: str, current: Link | None, candidate: Link
) -> bool:
    """Record a new candidate link; whether it is the new winner.

    `current` is the winner read under the anonymous id's lock, so comparing
    with it is comparing with every candidate so far.
    """
    if current is not None and current.order_key <= candidate.order_key:
        return False
    values = {
        "w_workspace": workspace,
        "w_anonymous_id": anonymous_id,
        "timestamp": candidate.timestamp,
        "event_id": candidate.event_id,
        "contact_id": candidate.contact_id,
    }
    (_LINK_INSERT if current is None else _LINK_UPDATE).rows(conn, values)
    return True


_LINK_INSERT = Prepared(
    identity_links.insert().values(
        workspace=sa.bindparam("w_workspace"),
        anonymous_id=sa.bindparam("w_anonymous_id"),
        timestamp=sa.bindparam("timestamp"),
        event_id=sa.bindparam("event_id"),
        contact_id=sa.bindparam("contact_id"),
    )
)
_LINK_UPDATE = Prepared(
    identity_links.update()
    .where(
        identity_links.c.workspace == sa.bindparam("w_workspace"),
        identity_links.c.anonymous_id == sa.bindparam("w_anonymous_id"),
    )
    .values(
        timestamp=sa.bindparam("timestamp"),
        event_id=sa.bindparam("event_id"),
        contact_id=sa.bindparam("contact_id"),
    )
)
