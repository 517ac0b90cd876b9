"""Index answers by enrollment: PROGRESS reads one enrollment's answers.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-22
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0003"
down_revision: str | Sequence[str] | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Apply this revision."""
    op.create_index("ix_answers_enrollment", "answers", ["enrollment_id"])


def downgrade() -> None:
    """Revert this revision."""
    op.drop_index("ix_answers_enrollment", table_name="answers")
