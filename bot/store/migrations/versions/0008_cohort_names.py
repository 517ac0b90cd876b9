"""cohorts.names: a cohort's name per locale, the one learners read in their language.

NULL (or a locale missing from it) means the cohort's `name`. The demo cohort gets its
translated names when the bot starts (from the UI catalogs), not here.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-02
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | Sequence[str] | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Apply this revision."""
    # Batch mode, like 0006: on SQLite, Alembic rebuilds the table where ALTER falls short.
    with op.batch_alter_table("cohorts") as batch:
        batch.add_column(sa.Column("names", sa.JSON(), nullable=True))


def downgrade() -> None:
    """Revert this revision."""
    with op.batch_alter_table("cohorts") as batch:
        batch.drop_column("names")
