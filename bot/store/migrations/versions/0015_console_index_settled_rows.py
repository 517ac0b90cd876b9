"""On PostgreSQL, the console's outbox index holds only rows the dispatcher is done with.

ix_deliveries_console had an entry added for every delivery planned (`pending`), another
when a dispatcher claimed it (`sending`: on PostgreSQL an update that changes an indexed
column writes every index) and a third when it was sent. Planning and the claim write none
now: the index leaves out `pending` and `sending` rows (`WHERE status NOT IN ('pending',
'sending')`), which the delivery figures count from the claim index instead. That was most
of what the console cost planning on PostgreSQL (docs/BENCHMARKS.md).

SQLite keeps the whole index: there a partial one turned its planner to the narrower claim
index for the settled rows, sorted through a temporary B-tree (the delivery page's p95
from 343 to 609 ms), and SQLite's planning and dispatch were within the console's budget.

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-06
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0015"
down_revision: str | Sequence[str] | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Written out, as in tables.py: a migration must not change when the application code does.
COLUMNS = [
    "channel",
    "status",
    "kind",
    "created_at",
    "learner_id",
    "segments",
    "locale",
    "error_code",
]
_SETTLED = sa.text("status NOT IN ('pending', 'sending')")


def upgrade() -> None:
    """Apply this revision."""
    if op.get_bind().dialect.name != "postgresql":
        return
    op.drop_index("ix_deliveries_console", table_name="deliveries")
    op.create_index("ix_deliveries_console", "deliveries", COLUMNS, postgresql_where=_SETTLED)


def downgrade() -> None:
    """Revert this revision."""
    if op.get_bind().dialect.name != "postgresql":
        return
    op.drop_index("ix_deliveries_console", table_name="deliveries")
    op.create_index("ix_deliveries_console", "deliveries", COLUMNS)
