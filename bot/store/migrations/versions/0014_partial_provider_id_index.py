"""The provider-id index holds only sent deliveries: planning no longer writes an entry.

A delivery is planned without a provider message id and gets one when it is sent, so every
planned row had added a NULL entry to ix_deliveries_provider_message_id that no lookup
reads (a status callback asks for one id: `provider_message_id = :id`, which both SQLite
and PostgreSQL answer from a partial index `WHERE provider_message_id IS NOT NULL`). It
takes back part of what the console's index on the outbox costs planning (about 3% on
PostgreSQL of some 7-10%: docs/BENCHMARKS.md).

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-04
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0014"
down_revision: str | Sequence[str] | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_SENT = sa.text("provider_message_id IS NOT NULL")


def upgrade() -> None:
    """Apply this revision."""
    op.drop_index("ix_deliveries_provider_message_id", table_name="deliveries")
    op.create_index(
        "ix_deliveries_provider_message_id",
        "deliveries",
        ["provider_message_id"],
        sqlite_where=_SENT,
        postgresql_where=_SENT,
    )


def downgrade() -> None:
    """Revert this revision."""
    op.drop_index("ix_deliveries_provider_message_id", table_name="deliveries")
    op.create_index("ix_deliveries_provider_message_id", "deliveries", ["provider_message_id"])
