"""SQLite: the events' `seq` is never handed out twice (AUTOINCREMENT).

An INTEGER PRIMARY KEY without AUTOINCREMENT takes the largest rowid in the
table plus one. Erasing the contact whose events were the newest (GDPR
erasure deletes its events) therefore gave the next event a `seq` an earlier
reader had already seen. A model activation reads the log up to a mark and
trusts that every event above it is new (bulk.py): an erased contact that
came back with a reused `seq` at or below the mark would have had its
pre-erasure state written back. With AUTOINCREMENT, SQLite keeps the largest
`seq` ever given in `sqlite_sequence`, as a PostgreSQL sequence does, so
nothing changes there.

SQLite cannot add AUTOINCREMENT to a table, so the table is made anew and
its rows copied (the copy keeps every `seq`; inserting them sets the
counter to the largest). The cost is one copy of the log at upgrade time.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-02

Like every migration, a snapshot of its time: it does not import tables.py.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_COLUMNS = "seq, workspace, id, type, contact_id, anonymous_id, timestamp, body, received_at"


def _remake_events(*, autoincrement: bool) -> None:
    op.create_table(
        "events_remade",
        sa.Column("seq", sa.Integer, nullable=False, autoincrement=True),
        sa.Column("workspace", sa.Text, nullable=False),
        sa.Column("id", sa.Text, nullable=False),
        sa.Column("type", sa.Text, nullable=False),
        sa.Column("contact_id", sa.Text),
        sa.Column("anonymous_id", sa.Text),
        sa.Column("timestamp", sa.BigInteger, nullable=False),
        sa.Column("body", sa.Text, nullable=False),
        sa.Column("received_at", sa.BigInteger, nullable=False),
        sa.PrimaryKeyConstraint("seq", name="pk_events"),
        sa.ForeignKeyConstraint(
            ["workspace"], ["workspaces.id"], name="fk_events_workspace_workspaces"
        ),
        sa.UniqueConstraint("workspace", "id", name="uq_events_workspace_id"),
        sqlite_autoincrement=autoincrement,
    )
    op.execute(f"INSERT INTO events_remade ({_COLUMNS}) SELECT {_COLUMNS} FROM events")
    op.drop_table("events")  # its indexes go with it
    op.rename_table("events_remade", "events")
    op.create_index("ix_events_contact", "events", ["workspace", "contact_id", "timestamp"])
    op.create_index(
        "ix_events_anonymous_only",
        "events",
        ["workspace", "anonymous_id", "timestamp"],
        sqlite_where=sa.text("contact_id IS NULL"),
    )
    op.create_index("ix_events_type", "events", ["workspace", "type", "contact_id"])


def upgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        _remake_events(autoincrement=True)


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        _remake_events(autoincrement=False)
