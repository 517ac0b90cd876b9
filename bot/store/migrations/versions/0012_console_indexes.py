"""Console indexes: the figures read covering indexes instead of the tables' rows.

- ix_events_stage: per event type, course, lesson and question, every column the funnel,
  questions, gain and survey figures filter or count on, so they scan the index alone.
- ix_events_learner: a learner's events in time order (the timeline; pairing assessments).
- ix_enrollments_cohort: a cohort's enrollments (scoped figures start from them).
- ix_deliveries_console: the outbox by channel, status and kind, with what the delivery
  figures sum (segments, locale), so they scan the index alone.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-03
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0012"
down_revision: str | Sequence[str] | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Written out, as in tables.py: a migration must not change when the application code does.
STAGE_COLUMNS = [
    "type",
    "course_id",
    "lesson_id",
    "question_id",
    "attempt",
    "correct",
    "cohort_id",
    "channel",
    "learner_key",
    "occurred_at",
]
DELIVERY_COLUMNS = ["channel", "status", "kind", "created_at", "learner_id", "segments", "locale"]


def upgrade() -> None:
    """Apply this revision."""
    op.create_index("ix_events_stage", "events", STAGE_COLUMNS)
    op.create_index("ix_events_learner", "events", ["learner_key", "occurred_at"])
    op.create_index("ix_enrollments_cohort", "enrollments", ["cohort_id", "enrolled_at"])
    op.create_index("ix_deliveries_console", "deliveries", DELIVERY_COLUMNS)


def downgrade() -> None:
    """Revert this revision."""
    op.drop_index("ix_deliveries_console", table_name="deliveries")
    op.drop_index("ix_enrollments_cohort", table_name="enrollments")
    op.drop_index("ix_events_learner", table_name="events")
    op.drop_index("ix_events_stage", table_name="events")
