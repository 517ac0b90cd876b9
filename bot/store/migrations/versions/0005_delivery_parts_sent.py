"""deliveries.parts_sent: a retried multi-part delivery resumes at the part that failed.

A lesson goes out as several provider messages (its text, then its question; an SMS split
into parts). When part k failed, the retry sent parts 1..k-1 again; the dispatcher now
records how many parts went out and skips them on the next attempt.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-23
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | Sequence[str] | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Apply this revision."""
    # Batch mode, like 0002: on SQLite, Alembic rebuilds the table where ALTER falls short.
    with op.batch_alter_table("deliveries") as batch:
        batch.add_column(sa.Column("parts_sent", sa.Integer(), nullable=False, server_default="0"))


def downgrade() -> None:
    """Revert this revision."""
    with op.batch_alter_table("deliveries") as batch:
        batch.drop_column("parts_sent")
