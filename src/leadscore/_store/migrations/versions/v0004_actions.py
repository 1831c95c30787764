"""Triggers to actions: the outbox worker's columns (kind, lease, result,
payload), the deliveries log, contact tags, assignments, round-robin
rotations and workspace signing secrets.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-01

Like every migration, a snapshot of its time: it does not import tables.py.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_SERIAL = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    # `kind` is NOT NULL: added with a default so that existing rows can be
    # filled in from their action (whose one key it is), then the default is
    # dropped, so that code inserting outbox rows without a kind fails at
    # once rather than queue actions no worker takes (on SQLite, Alembic's
    # batch mode copies the table to drop it; nothing refers to outbox yet).
    op.add_column("outbox", sa.Column("kind", sa.Text, nullable=False, server_default=""))
    outbox = sa.table(
        "outbox", sa.column("seq", _SERIAL), sa.column("action", sa.JSON), sa.column("kind")
    )
    connection = op.get_bind()
    for seq, action in connection.execute(sa.select(outbox.c.seq, outbox.c.action)).all():
        parsed = json.loads(action) if isinstance(action, str) else action
        connection.execute(
            outbox.update().where(outbox.c.seq == seq).values(kind=next(iter(parsed)))
        )
    with op.batch_alter_table("outbox") as batch:
        batch.alter_column("kind", existing_type=sa.Text, server_default=None)
    for name, kind in (
        ("lease_owner", sa.Text),
        ("lease_until", sa.BigInteger),
        ("done_at", sa.BigInteger),
        ("last_error", sa.Text),
        ("payload", sa.Text),
    ):
        op.add_column("outbox", sa.Column(name, kind, nullable=True))
    op.create_index("ix_outbox_firing", "outbox", ["firing"])
    op.create_index("ix_outbox_workspace_kind", "outbox", ["workspace", "kind", "status"])
    op.create_index("ix_firings_contact", "firings", ["workspace", "contact_id"])
    op.create_table(
        "delivery_attempts",
        sa.Column("seq", _SERIAL, autoincrement=True, nullable=False),
        sa.Column("outbox", _SERIAL, nullable=False),
        sa.Column("workspace", sa.Text, nullable=False),
        sa.Column("attempt", sa.Integer, nullable=False),
        sa.Column("started_at", sa.BigInteger, nullable=False),
        sa.Column("duration", sa.BigInteger, nullable=False),
        sa.Column("status_code", sa.Integer, nullable=True),
        sa.Column("ok", sa.Boolean, nullable=False),
        sa.Column("error", sa.Text, nullable=True),
        sa.PrimaryKeyConstraint("seq", name="pk_delivery_attempts"),
        sa.ForeignKeyConstraint(
            ["outbox"], ["outbox.seq"], name="fk_delivery_attempts_outbox_outbox"
        ),
        sa.ForeignKeyConstraint(
            ["workspace"], ["workspaces.id"], name="fk_delivery_attempts_workspace_workspaces"
        ),
    )
    op.create_index("ix_delivery_attempts_outbox", "delivery_attempts", ["outbox"])
    op.create_index(
        "ix_delivery_attempts_failed",
        "delivery_attempts",
        ["workspace"],
        postgresql_where=sa.text("NOT ok"),
        sqlite_where=sa.text("NOT ok"),
    )
    op.create_table(
        "contact_tags",
        sa.Column("workspace", sa.Text, nullable=False),
        sa.Column("contact_id", sa.Text, nullable=False),
        sa.Column("tag", sa.Text, nullable=False),
        sa.Column("added_at", sa.BigInteger, nullable=False),
        sa.PrimaryKeyConstraint("workspace", "contact_id", "tag", name="pk_contact_tags"),
        sa.ForeignKeyConstraint(
            ["workspace"], ["workspaces.id"], name="fk_contact_tags_workspace_workspaces"
        ),
    )
    op.create_table(
        "assignments",
        sa.Column("workspace", sa.Text, nullable=False),
        sa.Column("contact_id", sa.Text, nullable=False),
        sa.Column("owner", sa.Text, nullable=False),
        sa.Column("trigger", sa.Text, nullable=False),
        sa.Column("assigned_at", sa.BigInteger, nullable=False),
        sa.PrimaryKeyConstraint("workspace", "contact_id", name="pk_assignments"),
        sa.ForeignKeyConstraint(
            ["workspace"], ["workspaces.id"], name="fk_assignments_workspace_workspaces"
        ),
    )
    op.create_index("ix_assignments_owner", "assignments", ["workspace", "owner"])
    op.create_table(
        "rotations",
        sa.Column("workspace", sa.Text, nullable=False),
        sa.Column("trigger", sa.Text, nullable=False),
        sa.Column("owners", sa.Text, nullable=False),
        sa.Column("turns", sa.BigInteger, nullable=False),
        sa.PrimaryKeyConstraint("workspace", "trigger", "owners", name="pk_rotations"),
        sa.ForeignKeyConstraint(
            ["workspace"], ["workspaces.id"], name="fk_rotations_workspace_workspaces"
        ),
    )
    op.create_table(
        "signing_secrets",
        sa.Column("workspace", sa.Text, nullable=False),
        sa.Column("secret", sa.Text, nullable=False),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.PrimaryKeyConstraint("workspace", name="pk_signing_secrets"),
        sa.ForeignKeyConstraint(
            ["workspace"], ["workspaces.id"], name="fk_signing_secrets_workspace_workspaces"
        ),
    )


def downgrade() -> None:
    for table in ("signing_secrets", "rotations", "assignments", "contact_tags"):
        op.drop_table(table)
    op.drop_table("delivery_attempts")
    op.drop_index("ix_firings_contact", "firings")
    op.drop_index("ix_outbox_workspace_kind", "outbox")
    op.drop_index("ix_outbox_firing", "outbox")
    with op.batch_alter_table("outbox") as batch:
        for name in ("payload", "last_error", "done_at", "lease_until", "lease_owner", "kind"):
            batch.drop_column(name)
