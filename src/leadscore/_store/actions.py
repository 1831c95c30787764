"""What the local actions change: contacts' tags, their owner, and the
round-robin rotations that choose it. Called by outbox.carry_out_due in the
transaction that marks the action done, so each takes effect exactly once.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from .database import insert_new
from .tables import assignments, contact_tags, rotations


@dataclass(slots=True)
class Labels:
    """What actions put on a contact: its tags (sorted) and its owner."""

    tags: list[str] = field(default_factory=list)
    owner: str | None = None


def add_tag(conn: sa.Connection, workspace: str, contact_id: str, tag: str, now: int) -> None:
    conn.execute(
        insert_new(conn, contact_tags, "workspace", "contact_id", "tag").values(
            workspace=workspace, contact_id=contact_id, tag=tag, added_at=now
        )
    )


def remove_tag(conn: sa.Connection, workspace: str, contact_id: str, tag: str) -> None:
    conn.execute(
        contact_tags.delete().where(
            contact_tags.c.workspace == workspace,
            contact_tags.c.contact_id == contact_id,
            contact_tags.c.tag == tag,
        )
    )


def _upsert(conn: sa.Connection, table: sa.Table) -> Any:
    return (postgresql if conn.dialect.name == "postgresql" else sqlite).insert(table)


def next_turn(conn: sa.Connection, workspace: str, trigger: str, owners: list[str]) -> int:
    """Advance the rotation of (workspace, trigger, owner list) by one; the
    turn taken, from 0. One statement (an upsert), so two workers never take
    the same turn and none is skipped: on PostgreSQL the row's lock orders
    them, on SQLite the one writer does."""
    statement = _upsert(conn, rotations).values(
        workspace=workspace, trigger=trigger, owners=rotation_key(owners), turns=1
    )
    statement = statement.on_conflict_do_update(
        index_elements=["workspace", "trigger", "owners"],
        set_={"turns": rotations.c.turns + 1},
    ).returning(rotations.c.turns)
    turns: int = conn.execute(statement).scalar_one()
    return turns - 1


def rotation_key(owners: list[str]) -> str:
    """How a rotation's owner list is stored: the list as JSON text."""
    return json.dumps(owners)


def set_owner(
    conn: sa.Connection, workspace: str, contact_id: str, *, owner: str, trigger: str, now: int
) -> None:
    """Give the contact this owner (the last assignment wins)."""
    statement = _upsert(conn, assignments).values(
        workspace=workspace, contact_id=contact_id, owner=owner, trigger=trigger, assigned_at=now
    )
    conn.execute(
        statement.on_conflict_do_update(
            index_elements=["workspace", "contact_id"],
            set_={"owner": owner, "trigger": trigger, "assigned_at": now},
        )
    )


def labels(
    conn: sa.Connection, workspace: str, contact_ids: Iterable[str] | None = None
) -> dict[str, Labels]:
    """The tags and owner of the contacts named (every contact that has any,
    with None); contacts with neither are absent."""
    tags = sa.select(contact_tags.c.contact_id, contact_tags.c.tag).where(
        contact_tags.c.workspace == workspace
    )
    owners = sa.select(assignments.c.contact_id, assignments.c.owner).where(
        assignments.c.workspace == workspace
    )
    if contact_ids is not None:
        wanted = sorted(set(contact_ids))
        tags = tags.where(contact_tags.c.contact_id.in_(wanted))
        owners = owners.where(assignments.c.contact_id.in_(wanted))
    found: dict[str, Labels] = {}
    for contact_id, tag in conn.execute(tags):
        found.setdefault(contact_id, Labels()).tags.append(tag)
    for contact_id, owner in conn.execute(owners):
        found.setdefault(contact_id, Labels()).owner = owner
    for item in found.values():
        item.tags.sort()  # by code point, whatever the collation
    return found


def tag_names(conn: sa.Connection, workspace: str) -> list[str]:
    """Every tag some contact of the workspace has, sorted."""
    query = sa.select(contact_tags.c.tag).where(contact_tags.c.workspace == workspace).distinct()
    return sorted(conn.execute(query).scalars())


def forget(conn: sa.Connection, workspace: str, contact_id: str) -> None:
    """Erase a contact's tags and owner (GDPR erasure)."""
    for table in (contact_tags, assignments):
        conn.execute(
            table.delete().where(table.c.workspace == workspace, table.c.contact_id == contact_id)
        )
