"""Reads for the web app's reports: the event types a workspace has seen,
and the contacts that did one of them (an outcome, such as a purchase)."""

from __future__ import annotations

import sqlalchemy as sa

from .database import transaction
from .tables import events


def event_types(conn: sa.Connection, *, workspace: str) -> list[str]:
    """Every event type in the workspace's log, sorted (ix_events_type)."""
    with transaction(conn):
        rows = conn.execute(
            sa.select(events.c.type).distinct().where(events.c.workspace == workspace)
        ).scalars()
        return sorted(rows)


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
