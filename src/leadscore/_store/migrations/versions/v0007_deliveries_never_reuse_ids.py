"""SQLite: a delivery's id (the outbox's `seq`) is never handed out twice (AUTOINCREMENT).

A delivery's id is its webhooks' `Idempotency-Key`, which receivers keep to
act on each firing once. Without AUTOINCREMENT, SQLite gives a new row the
largest `seq` in the table plus one, so erasing the contact whose firing
was the newest (GDPR erasure deletes its outbox rows) gave the next firing's
webhook the id of one already delivered: a receiver that remembered it
dropped the new webhook as a repeat, and a worker still delivering the
erased one recorded its answer against the new row. With AUTOINCREMENT,
SQLite keeps the largest `seq` ever given, as PostgreSQL's sequences do, so
nothing changes there. The attempts are numbered the same way.

SQLite cannot add AUTOINCREMENT to a table, so both tables are made anew
and their rows copied back with their `seq` (which sets the counters to the
largest). The attempts refer to the outbox, so they are dropped first and
made last: foreign keys stay on, and no row ever refers to a missing one.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-02

Like every migration, a snapshot of its time: it does not import tables.py.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_OUTBOX = (
    "seq, firing, workspace, action_index, action, status, attempts, next_attempt_at, "
    "created_at, kind, lease_owner, lease_until, done_at, last_error, payload"
)
_ATTEMPTS = "seq, outbox, workspace, attempt, started_at, duration, status_code, ok, error"


def _remake(*, autoincrement: bool) -> None:
    op.execute(f"CREATE TEMPORARY TABLE outbox_copy AS SELECT {_OUTBOX} FROM outbox")
    op.execute(
        f"CREATE TEMPORARY TABLE delivery_attempts_copy AS SELECT {_ATTEMPTS} "
        "FROM delivery_attempts"
    )
    op.drop_table("delivery_attempts")  # its indexes go with it
    op.drop_table("outbox")
    op.create_table(
        "outbox",
        sa.Column("seq", sa.Integer, nullable=False, autoincrement=True),
        sa.Column("firing", sa.Integer, nullable=False),
        sa.Column("workspace", sa.Text, nullable=False),
        sa.Column("action_index", sa.Integer, nullable=False),
        sa.Column("action", sa.JSON, nullable=False),
        sa.Column("status", sa.Text, nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("next_attempt_at", sa.BigInteger, nullable=False),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.Column("kind", sa.Text, nullable=False),
        sa.Column("lease_owner", sa.Text, nullable=True),
        sa.Column("lease_until", sa.BigInteger, nullable=True),
        sa.Column("done_at", sa.BigInteger, nullable=True),
        sa.Column("last_error", sa.Text, nullable=True),
        sa.Column("payload", sa.Text, nullable=True),
        sa.PrimaryKeyConstraint("seq", name="pk_outbox"),
        sa.ForeignKeyConstraint(["firing"], ["firings.seq"], name="fk_outbox_firing_firings"),
        sa.ForeignKeyConstraint(
            ["workspace"], ["workspaces.id"], name="fk_outbox_workspace_workspaces"
        ),
        sqlite_autoincrement=autoincrement,
    )
    op.execute(f"INSERT INTO outbox ({_OUTBOX}) SELECT {_OUTBOX} FROM outbox_copy")
    op.create_index("ix_outbox_status", "outbox", ["status", "next_attempt_at"])
    op.create_index("ix_outbox_firing", "outbox", ["firing"])
    op.create_index("ix_outbox_workspace_kind", "outbox", ["workspace", "kind", "status"])
    op.create_table(
        "delivery_attempts",
        sa.Column("seq", sa.Integer, nullable=False, autoincrement=True),
        sa.Column("outbox", sa.Integer, nullable=False),
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
        sqlite_autoincrement=autoincrement,
    )
    op.execute(
        f"INSERT INTO delivery_attempts ({_ATTEMPTS}) "
        f"SELECT {_ATTEMPTS} FROM delivery_attempts_copy"
    )
    op.create_index("ix_delivery_attempts_outbox", "delivery_attempts", ["outbox"])
    op.create_index(
        "ix_delivery_attempts_failed",
        "delivery_attempts",
        ["workspace"],
        sqlite_where=sa.text("NOT ok"),
    )
    op.execute("DROP TABLE outbox_copy")
    op.execute("DROP TABLE delivery_attempts_copy")


def upgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        _remake(autoincrement=True)


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        _remake(autoincrement=False)
