"""The store's first schema: workspaces, models, the event log, identity links,
owner states, firings and their outbox.

Revision ID: 0001
Revises:
Create Date: 2026-11-22

A migration is a snapshot: it spells out the schema of its time rather than
import tables.py, which moves on with later revisions.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_SERIAL = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "workspaces",
        sa.Column("id", sa.Text, nullable=False),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_workspaces"),
    )
    op.create_table(
        "models",
        sa.Column("workspace", sa.Text, nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("document", sa.Text, nullable=False),
        sa.Column("active", sa.Boolean, nullable=False),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.PrimaryKeyConstraint("workspace", "version", name="pk_models"),
        sa.ForeignKeyConstraint(
            ["workspace"], ["workspaces.id"], name="fk_models_workspace_workspaces"
        ),
    )
    op.create_index(
        "ix_models_active",
        "models",
        ["workspace"],
        unique=True,
        postgresql_where=sa.text("active"),
        sqlite_where=sa.text("active"),
    )
    op.create_table(
        "events",
        sa.Column("seq", _SERIAL, autoincrement=True, nullable=False),
        sa.Column("workspace", sa.Text, nullable=False),
        sa.Column("id", sa.Text, nullable=False),
        sa.Column("type", sa.Text, nullable=False),
        sa.Column("contact_id", sa.Text, nullable=True),
        sa.Column("anonymous_id", sa.Text, nullable=True),
        sa.Column("timestamp", sa.BigInteger, nullable=False),
        sa.Column("body", sa.Text, nullable=False),
        sa.Column("received_at", sa.BigInteger, nullable=False),
        sa.PrimaryKeyConstraint("seq", name="pk_events"),
        sa.ForeignKeyConstraint(
            ["workspace"], ["workspaces.id"], name="fk_events_workspace_workspaces"
        ),
        sa.UniqueConstraint("workspace", "id", name="uq_events_workspace_id"),
    )
    op.create_index("ix_events_contact", "events", ["workspace", "contact_id", "timestamp"])
    op.create_index(
        "ix_events_anonymous_only",
        "events",
        ["workspace", "anonymous_id", "timestamp"],
        postgresql_where=sa.text("contact_id IS NULL"),
        sqlite_where=sa.text("contact_id IS NULL"),
    )
    op.create_table(
        "identity_links",
        sa.Column("workspace", sa.Text, nullable=False),
        sa.Column("anonymous_id", sa.Text, nullable=False),
        sa.Column("contact_id", sa.Text, nullable=False),
        sa.Column("timestamp", sa.BigInteger, nullable=False),
        sa.Column("event_id", sa.Text, nullable=False),
        sa.PrimaryKeyConstraint("workspace", "anonymous_id", name="pk_identity_links"),
        sa.ForeignKeyConstraint(
            ["workspace"], ["workspaces.id"], name="fk_identity_links_workspace_workspaces"
        ),
    )
    op.create_index("ix_identity_links_contact", "identity_links", ["workspace", "contact_id"])
    op.create_table(
        "owners",
        sa.Column("workspace", sa.Text, nullable=False),
        sa.Column("identified", sa.Boolean, nullable=False),
        sa.Column("key", sa.Text, nullable=False),
        sa.Column("model_version", sa.Integer, nullable=False),
        sa.Column("state", sa.JSON, nullable=False),
        sa.Column("fit", sa.Integer, nullable=False),
        sa.Column("grade", sa.Text, nullable=True),
        sa.Column("stage", sa.Text, nullable=True),
        sa.Column("stage_entered_at", sa.BigInteger, nullable=True),
        sa.Column("last_event_at", sa.BigInteger, nullable=False),
        sa.Column("ref", sa.BigInteger, nullable=False),
        sa.Column("decaying", sa.Double, nullable=False),
        sa.Column("flat", sa.Double, nullable=False),
        sa.PrimaryKeyConstraint("workspace", "identified", "key", name="pk_owners"),
        sa.ForeignKeyConstraint(
            ["workspace"], ["workspaces.id"], name="fk_owners_workspace_workspaces"
        ),
    )
    op.create_table(
        "firings",
        sa.Column("seq", _SERIAL, autoincrement=True, nullable=False),
        sa.Column("workspace", sa.Text, nullable=False),
        sa.Column("trigger", sa.Text, nullable=False),
        sa.Column("contact_id", sa.Text, nullable=False),
        sa.Column("event_key", sa.Text, nullable=False),
        sa.Column("event_id", sa.Text, nullable=False),
        sa.Column("timestamp", sa.BigInteger, nullable=False),
        sa.Column("model_version", sa.Integer, nullable=False),
        sa.Column("recorded_at", sa.BigInteger, nullable=False),
        sa.PrimaryKeyConstraint("seq", name="pk_firings"),
        sa.ForeignKeyConstraint(
            ["workspace"], ["workspaces.id"], name="fk_firings_workspace_workspaces"
        ),
        sa.UniqueConstraint(
            "workspace",
            "trigger",
            "contact_id",
            "event_key",
            name="uq_firings_workspace_trigger_contact_id_event_key",
        ),
    )
    op.create_table(
        "outbox",
        sa.Column("seq", _SERIAL, autoincrement=True, nullable=False),
        sa.Column("firing", _SERIAL, nullable=False),
        sa.Column("workspace", sa.Text, nullable=False),
        sa.Column("action_index", sa.Integer, nullable=False),
        sa.Column("action", sa.JSON, nullable=False),
        sa.Column("status", sa.Text, nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("next_attempt_at", sa.BigInteger, nullable=False),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.PrimaryKeyConstraint("seq", name="pk_outbox"),
        sa.ForeignKeyConstraint(["firing"], ["firings.seq"], name="fk_outbox_firing_firings"),
        sa.ForeignKeyConstraint(
            ["workspace"], ["workspaces.id"], name="fk_outbox_workspace_workspaces"
        ),
    )
    op.create_index("ix_outbox_status", "outbox", ["status", "next_attempt_at"])


def downgrade() -> None:
    for table in ("outbox", "firings", "owners", "identity_links", "events", "models"):
        op.drop_table(table)
    op.drop_table("workspaces")
