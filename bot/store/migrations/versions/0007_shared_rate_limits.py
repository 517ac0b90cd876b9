"""rate_limits: each channel's send schedule, shared by the dispatcher processes.

Several `learnbot serve` processes on one PostgreSQL database each sent at the provider's
full rate. A row per channel holds the next free send slot; each process reserves blocks of
slots from it in one statement (`bot/store/rate_limits.py`).

Revision ID: 0007
Revises: 0005
Create Date: 2026-12-02
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | Sequence[str] | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Apply this revision."""
    op.create_table(
        "rate_limits",
        sa.Column("name", sa.String(100), primary_key=True),
        sa.Column("next_free", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    """Revert this revision."""
    op.drop_table("rate_limits")
