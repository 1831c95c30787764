"""API keys: per workspace, hashed, scoped (write, read, admin), revocable.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-29

Like every migration, a snapshot of its time: it does not import tables.py.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "api_keys",
        sa.Column("id", sa.Text, nullable=False),
        sa.Column("workspace", sa.Text, nullable=False),
        sa.Column("secret_hash", sa.LargeBinary, nullable=False),
        sa.Column("scope", sa.Text, nullable=False),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.Column("revoked_at", sa.BigInteger, nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_api_keys"),
        sa.ForeignKeyConstraint(
            ["workspace"], ["workspaces.id"], name="fk_api_keys_workspace_workspaces"
        ),
        sa.CheckConstraint("scope IN ('write', 'read', 'admin')", name="ck_api_keys_scope"),
    )
    op.create_index("ix_api_keys_workspace", "api_keys", ["workspace"])


def downgrade() -> None:
    op.drop_table("api_keys")
