"""The web app: users (per workspace, with a role), their sessions, failed
sign-ins for rate limiting; indexes for reports by event type and for
ranked lists of contacts, and the owners' search text.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01

Like every migration, a snapshot of its time: it does not import tables.py.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "users",
        sa.Column("email", sa.Text, nullable=False),
        sa.Column("workspace", sa.Text, nullable=False),
        sa.Column("role", sa.Text, nullable=False),
        sa.Column("password_hash", sa.Text, nullable=False),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.Column("disabled_at", sa.BigInteger, nullable=True),
        sa.PrimaryKeyConstraint("email", name="pk_users"),
        sa.ForeignKeyConstraint(
            ["workspace"], ["workspaces.id"], name="fk_users_workspace_workspaces"
        ),
        sa.CheckConstraint("role IN ('admin', 'marketer', 'sales')", name="ck_users_role"),
    )
    op.create_index("ix_users_workspace", "users", ["workspace"])
    op.create_table(
        "web_sessions",
        sa.Column("token_hash", sa.LargeBinary, nullable=False),
        sa.Column("email", sa.Text, nullable=False),
        sa.Column("csrf", sa.Text, nullable=False),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.Column("expires_at", sa.BigInteger, nullable=False),
        sa.PrimaryKeyConstraint("token_hash", name="pk_web_sessions"),
        sa.ForeignKeyConstraint(["email"], ["users.email"], name="fk_web_sessions_email_users"),
    )
    op.create_index("ix_web_sessions_email", "web_sessions", ["email"])
    op.create_table(
        "signin_failures",
        sa.Column("seq", sa.Integer, nullable=False, autoincrement=True),
        sa.Column("subject", sa.Text, nullable=False),
        sa.Column("at", sa.BigInteger, nullable=False),
        sa.PrimaryKeyConstraint("seq", name="pk_signin_failures"),
    )
    op.create_index("ix_signin_failures_subject", "signin_failures", ["subject", "at"])
    op.create_index("ix_events_type", "events", ["workspace", "type", "contact_id"])
    op.add_column("owners", sa.Column("search", sa.Text, nullable=True))
    op.create_index(
        "ix_owners_ranking",
        "owners",
        ["workspace", "identified", "model_version", "key", "ref", "decaying", "flat",
         "fit", "grade", "stage", "last_event_at", "search"],
    )  # fmt: skip


def downgrade() -> None:
    op.drop_index("ix_owners_ranking", table_name="owners")
    with op.batch_alter_table("owners") as batch:
        batch.drop_column("search")
    op.drop_index("ix_events_type", table_name="events")
    op.drop_table("signin_failures")
    op.drop_table("web_sessions")
    op.drop_table("users")
