"""Model activations (a background rescore with progress), firings that
history produced under a newly activated model, and model names.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-01

Like every migration, a snapshot of its time: it does not import tables.py.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_SERIAL = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "activations",
        sa.Column("id", _SERIAL, autoincrement=True, nullable=False),
        sa.Column("workspace", sa.Text, nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("status", sa.Text, nullable=False),
        sa.Column("total", sa.Integer, nullable=False),
        sa.Column("rescored", sa.Integer, nullable=False),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.Column("finished_at", sa.BigInteger, nullable=True),
        sa.Column("lease_until", sa.BigInteger, nullable=True),
        sa.Column("error", sa.Text, nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_activations"),
        sa.ForeignKeyConstraint(
            ["workspace"], ["workspaces.id"], name="fk_activations_workspace_workspaces"
        ),
        sa.CheckConstraint(
            "status IN ('running', 'done', 'superseded', 'failed')", name="ck_activations_status"
        ),
    )
    op.create_index("ix_activations_workspace", "activations", ["workspace"])
    op.create_index("ix_activations_status", "activations", ["status"])
    op.add_column("models", sa.Column("name", sa.Text, nullable=True))
    op.add_column(
        "firings",
        sa.Column("history", sa.Boolean, nullable=False, server_default=sa.false()),
    )


def downgrade() -> None:
    with op.batch_alter_table("firings") as batch:
        batch.drop_column("history")
    with op.batch_alter_table("models") as batch:
        batch.drop_column("name")
    op.drop_table("activations")
