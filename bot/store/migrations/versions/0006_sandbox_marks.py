"""cohorts.open_to_sandbox: the public /sandbox may join only cohorts marked open to it.

The sandbox's learners need no column of their own: `learners.channel` is 'sandbox' for
every one of them (a learner's channel never changes; it is half of the unique
(channel, address) key), and each event names its learner by `learner_key` and carries the
channel of the message that caused it. Exports and figures leave them out through that join.

The demo cohort (join code DEMO) is open to the sandbox. No other cohort can have that
code: generated codes never contain the letter O.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-02
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | Sequence[str] | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Apply this revision."""
    # Batch mode, like 0002: on SQLite, Alembic rebuilds the table where ALTER falls short.
    with op.batch_alter_table("cohorts") as batch:
        batch.add_column(
            sa.Column("open_to_sandbox", sa.Boolean(), nullable=False, server_default=sa.false())
        )
    cohorts = sa.table("cohorts", sa.column("join_code"), sa.column("open_to_sandbox"))
    op.execute(cohorts.update().where(cohorts.c.join_code == "DEMO").values(open_to_sandbox=True))


def downgrade() -> None:
    """Revert this revision."""
    with op.batch_alter_table("cohorts") as batch:
        batch.drop_column("open_to_sandbox")
