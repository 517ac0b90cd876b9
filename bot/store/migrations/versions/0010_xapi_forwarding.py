"""xapi_cursor and xapi_parked: the xAPI forwarder's durable cursor, its lease, and refusals.

The forwarder sends the event log to a Learning Record Store in id order. Its cursor (the
last event the LRS holds), the lease that lets one process forward at a time, and the last
error live in one row; statements the LRS refused (400) are parked with the reason, so they
are visible and do not hold up the rest.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-03
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | Sequence[str] | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Apply this revision."""
    op.create_table(
        "xapi_cursor",
        sa.Column("name", sa.String(32), primary_key=True),
        sa.Column("last_event_id", sa.BigInteger(), nullable=False, server_default="0"),
        sa.Column("holder", sa.String(64), nullable=True),
        sa.Column("lease_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("last_error_at", sa.DateTime(timezone=True), nullable=True),
    )
    op.create_table(
        "xapi_parked",
        sa.Column("event_id", sa.BigInteger(), primary_key=True),
        sa.Column("statement_id", sa.String(36), nullable=False),
        sa.Column("status_code", sa.Integer(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("parked_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    """Revert this revision."""
    op.drop_table("xapi_parked")
    op.drop_table("xapi_cursor")
