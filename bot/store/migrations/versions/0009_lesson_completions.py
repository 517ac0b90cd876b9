"""lesson_completions: the lessons each enrollment has completed, carried over from the events.

Progress was a position (`enrollments.lesson_id`); a pushed lesson moved it. From now on it is
the set of lessons completed. Existing enrollments are carried over from the event log: a
lesson counts completed for an enrollment when a `lesson_completed` event of that learner,
cohort, course and lesson exists (its earliest time is `completed_at`). Answers alone are not
used: how many questions a lesson had is in the course files, which a migration does not read
and which may have changed since; every completed lesson logged `lesson_completed` anyway.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-02
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# Types written out, as in 0001: a migration must not change when the application code does.
Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
Timestamp = sa.DateTime(timezone=True)

revision: str = "0009"
down_revision: str | Sequence[str] | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Apply this revision."""
    op.create_table(
        "lesson_completions",
        sa.Column("enrollment_id", Id, nullable=False),
        sa.Column("course_id", sa.String(64), nullable=False),
        sa.Column("lesson_id", sa.String(64), nullable=False),
        sa.Column("completed_at", Timestamp, nullable=False),
        sa.ForeignKeyConstraint(
            ["enrollment_id"],
            ["enrollments.id"],
            name="fk_lesson_completions_enrollment_id_enrollments",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint(
            "enrollment_id", "course_id", "lesson_id", name="pk_lesson_completions"
        ),
    )
    op.execute(
        "INSERT INTO lesson_completions (enrollment_id, course_id, lesson_id, completed_at)"
        " SELECT e.id, ev.course_id, ev.lesson_id, MIN(ev.occurred_at)"
        " FROM events ev"
        " JOIN learners l ON l.learner_key = ev.learner_key"
        " JOIN enrollments e ON e.learner_id = l.id AND e.cohort_id = ev.cohort_id"
        " WHERE ev.type = 'lesson_completed'"
        " AND ev.course_id IS NOT NULL AND ev.lesson_id IS NOT NULL"
        " GROUP BY e.id, ev.course_id, ev.lesson_id"
    )


def downgrade() -> None:
    """Revert this revision."""
    op.drop_table("lesson_completions")
