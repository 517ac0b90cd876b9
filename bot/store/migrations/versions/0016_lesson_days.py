"""Lessons delivered per cohort, lesson and day, folded from the log; on PostgreSQL the
console's event index leaves lesson_delivered out.

The funnel counted its first stage from ix_events_stage, so every lesson sent wrote an entry
there. It sums `lesson_days` now, which the fold keeps as it keeps `question_days`, and on
PostgreSQL ix_events_stage holds every event but lesson_delivered (`WHERE type <>
'lesson_delivered'`): dispatch writes one index entry fewer per lesson, the larger part of
what the console cost it there (docs/BENCHMARKS.md). SQLite keeps the whole index: its
dispatch was within the console's budget, and there a partial index is read only by queries
that repeat its predicate word for word.

The rows for the events already folded are counted here, from the log up to the fold's
cursor, so the rollups stay exact without folding the log again.

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-06
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0016"
down_revision: str | Sequence[str] | None = "0015"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
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
_STAGED = sa.text("type <> 'lesson_delivered'")
# As the fold (bot.store.rollups) counts them: not the sandbox's, each on its UTC day.
_BACKFILL = """
INSERT INTO lesson_days (course_id, lesson_id, cohort_id, day, delivered)
SELECT course_id, lesson_id, cohort_id, {day}, count(*)
FROM events
WHERE type = 'lesson_delivered' AND channel <> 'sandbox'
  AND course_id IS NOT NULL AND lesson_id IS NOT NULL
  AND id <= (SELECT last_event_id FROM rollup_cursor WHERE name = 'console')
GROUP BY course_id, lesson_id, cohort_id, {day}
"""
_UTC_DAY = {
    "postgresql": "CAST(timezone('UTC', occurred_at) AS DATE)",
    "sqlite": "date(occurred_at)",
}


def upgrade() -> None:
    """Apply this revision."""
    op.create_table(
        "lesson_days",
        sa.Column("id", Id, primary_key=True, autoincrement=True),
        sa.Column("course_id", sa.String(64), nullable=False),
        sa.Column("lesson_id", sa.String(64), nullable=False),
        sa.Column("cohort_id", Id, nullable=True),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("delivered", sa.Integer(), nullable=False),
    )
    op.create_index(
        "ix_lesson_days_key", "lesson_days", ["course_id", "lesson_id", "cohort_id", "day"]
    )
    op.create_index("ix_lesson_days_day", "lesson_days", ["day"])
    dialect = op.get_bind().dialect.name
    op.execute(_BACKFILL.format(day=_UTC_DAY[dialect]))
    if dialect == "postgresql":
        op.drop_index("ix_events_stage", table_name="events")
        op.create_index("ix_events_stage", "events", STAGE_COLUMNS, postgresql_where=_STAGED)


def downgrade() -> None:
    """Revert this revision."""
    if op.get_bind().dialect.name == "postgresql":
        op.drop_index("ix_events_stage", table_name="events")
        op.create_index("ix_events_stage", "events", STAGE_COLUMNS)
    op.drop_index("ix_lesson_days_day", table_name="lesson_days")
    op.drop_index("ix_lesson_days_key", table_name="lesson_days")
    op.drop_table("lesson_days")
