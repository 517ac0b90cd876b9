"""Claim index by status, then channel: one channel's claim no longer scans another's backlog.

The dispatcher claims per channel. With the index on (status, priority, due_at) a claim for
WhatsApp or Telegram walked every pending SMS row (a rate-limited backlog can be 100,000 rows)
to find none of its own, once per wake-up, that is once per inbound message.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-22
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0004"
down_revision: str | Sequence[str] | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Apply this revision."""
    op.drop_index("ix_deliveries_claim", table_name="deliveries")
    op.create_index(
        "ix_deliveries_claim", "deliveries", ["status", "channel", "priority", "due_at"]
    )


def downgrade() -> None:
    """Revert this revision."""
    op.drop_index("ix_deliveries_claim", table_name="deliveries")
    op.create_index("ix_deliveries_claim", "deliveries", ["status", "priority", "due_at"])
