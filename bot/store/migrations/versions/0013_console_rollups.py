"""Console rollups: per question and day, per question's score sums, per learner's score, per
enrollment's progress; and the error code in the delivery figures' index.

Empty at first, with no cursor row: the first fold (the scheduler's, or the console's before
its first page) folds the whole event log, a chunk per transaction (bot.store.rollups).

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-03
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0013"
down_revision: str | Sequence[str] | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
QUESTION = ["course_id", "lesson_id", "question_id", "cohort_id"]
ATTRIBUTES = ["profile_gender", "profile_role", "profile_country", "locale", "channel"]
# The delivery figures count failures by error code from the console's index alone.
DELIVERY_COLUMNS = ["channel", "status", "kind", "created_at", "learner_id", "segments", "locale"]


def _question_columns() -> list[sa.Column[object]]:
    return [
        sa.Column("id", Id, primary_key=True, autoincrement=True),
        sa.Column("course_id", sa.String(64), nullable=False),
        sa.Column("lesson_id", sa.String(64), nullable=False),
        sa.Column("question_id", sa.String(64), nullable=False),
        sa.Column("cohort_id", Id, nullable=True),
    ]


def _attribute_columns() -> list[sa.Column[object]]:
    """The learner's attributes the Who page groups by, copied from learners."""
    return [
        sa.Column("profile_gender", sa.String(20), nullable=True),
        sa.Column("profile_role", sa.String(40), nullable=True),
        sa.Column("profile_country", sa.String(2), nullable=True),
        sa.Column("locale", sa.String(20), nullable=True),
        sa.Column("channel", sa.String(20), nullable=False),
    ]


def upgrade() -> None:
    """Apply this revision."""
    op.create_table(
        "rollup_cursor",
        sa.Column("name", sa.String(32), primary_key=True),
        sa.Column("last_event_id", sa.BigInteger(), nullable=False, server_default="0"),
        sa.Column("folded_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("teaching", sa.String(64), nullable=True),
        sa.Column("enrollments_as_of", sa.BigInteger(), nullable=False, server_default="0"),
    )
    op.create_table(
        "enrollment_progress",
        sa.Column("enrollment_id", Id, primary_key=True, autoincrement=False),
        sa.Column("learner_key", sa.String(36), nullable=False),
        sa.Column("cohort_id", Id, nullable=False),
        sa.Column("lessons_done", sa.Integer(), nullable=False),
        *_attribute_columns(),
    )
    op.create_index("ix_enrollment_progress_learner", "enrollment_progress", ["learner_key"])
    op.create_index(
        "ix_enrollment_progress_done", "enrollment_progress", ["cohort_id", "lessons_done"]
    )
    # Every cohort: grouped in the index's order. A few cohorts: their entries, then sorted.
    op.create_index(
        "ix_enrollment_progress_cube",
        "enrollment_progress",
        [*ATTRIBUTES, "cohort_id", "lessons_done", "learner_key"],
    )
    op.create_index(
        "ix_enrollment_progress_cohort_cube",
        "enrollment_progress",
        ["cohort_id", *ATTRIBUTES, "lessons_done", "learner_key"],
    )
    op.create_table(
        "question_days",
        *_question_columns(),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("answered", sa.Integer(), nullable=False),
        sa.Column("right_first", sa.Integer(), nullable=False),
        *(sa.Column(f"option_{n}", sa.Integer(), nullable=False) for n in range(1, 6)),
    )
    op.create_index("ix_question_days_key", "question_days", [*QUESTION, "day"])
    op.create_index("ix_question_days_day", "question_days", ["day"])
    op.create_table(
        "question_sums",
        *_question_columns(),
        *(sa.Column(name, sa.BigInteger(), nullable=False) for name in ("n", "sx", "st", "stt")),
        sa.Column("sxt", sa.BigInteger(), nullable=False),
    )
    op.create_index("ix_question_sums_key", "question_sums", QUESTION)
    op.create_table(
        "learner_scores",
        sa.Column("id", Id, primary_key=True, autoincrement=True),
        sa.Column("learner_key", sa.String(36), nullable=False),
        sa.Column("cohort_id", Id, nullable=True),
        sa.Column("course_id", sa.String(64), nullable=False),
        sa.Column("answered", sa.Integer(), nullable=False),
        sa.Column("right_first", sa.Integer(), nullable=False),
        *_attribute_columns(),
    )
    op.drop_index("ix_deliveries_console", table_name="deliveries")
    op.create_index("ix_deliveries_console", "deliveries", [*DELIVERY_COLUMNS, "error_code"])
    op.create_index(
        "ix_learner_scores_key", "learner_scores", ["learner_key", "cohort_id", "course_id"]
    )
    op.create_index(
        "ix_learner_scores_cube",
        "learner_scores",
        [*ATTRIBUTES, "cohort_id", "course_id", "answered", "right_first"],
    )


def downgrade() -> None:
    """Revert this revision."""
    op.drop_index("ix_deliveries_console", table_name="deliveries")
    op.create_index("ix_deliveries_console", "deliveries", DELIVERY_COLUMNS)
    op.drop_table("enrollment_progress")
    op.drop_table("learner_scores")
    op.drop_table("question_sums")
    op.drop_table("question_days")
    op.drop_table("rollup_cursor")
