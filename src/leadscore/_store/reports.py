"""Reads for the web app's reports: the event types a workspace has seen,
and the contacts that did one of them (an outcome, such as a purchase)."""

from __future__ import annotations

import sqlalchemy as sa

from .database import transaction
from .tables import events


def event_types(conn: sa.Connection, *, workspace: str) -> list[str]:
    """Every event type in the workspace's log, sorted (ix_events_type).

    One index seek per type (the next type after the last one found) rather
    than a DISTINCT, which reads every entry of the index: a log has a
    handful of types and may have millions of events."""
    found: list[str] = []
    with transaction(conn):
        while True:
            query = sa.select(sa.func.min(events.c.type)).where(events.c.workspace == workspace)
            if found:
                query = query.where(events.c.type > found[-1])
            following = conn.execute(query).scalar()
            if following is None:
                return sorted(found)  # in code point order, whatever the collation
            found.append(following)


def contacts_with(conn: sa.Connection, *, workspace: str, event_type: str) -> set[str]:
    """The contact ids of the events of a type (ix_events_type). Anonymous-only
    events count for no one here, even when their anonymous id is linked."""
    with transaction(conn):
        rows = conn.execute(
            sa.select(events.c.contact_id)
            .distinct()
            .where(
                events.c.workspace == workspace,
                events.c.type == event_type,
                events.c.contact_id.is_not(None),
            )
        ).scalars()
        return {row for row in rows if row is not None}
