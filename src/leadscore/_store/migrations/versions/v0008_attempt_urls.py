"""A delivery attempt records the address it was sent to.

A delivery goes to the webhook its trigger has at each attempt (outbox.py,
`current_webhook`): after a model version moved a webhook, one delivery's
attempts went to different addresses, and the log showed only where the
latest went. Attempts logged before this migration have no address (null).

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-07

Like every migration, a snapshot of its time: it does not import tables.py.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("delivery_attempts", sa.Column("url", sa.Text, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("delivery_attempts") as table:
        table.drop_column("url")
