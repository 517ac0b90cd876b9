"""Console rollups: per question and day, per question's score sums, per learner's score.

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


def _question_columns() -> list[sa.Column[object]]:
    return [
        sa.Column("id", Id, primary_key=True, autoincrement=True),
        sa.Column("course_id", sa.String(64), nullable=False),
        sa.Column("lesson_id", sa.String(64), nullable=False),
        sa.Column("question_id", sa.String(64), nullable=False),
        sa.Column("cohort_id", Id, nullable=True),
    ]


def upgrade() -> None:
    """Apply this revision."""
    op.create_table(
        "rollup_cursor",
        sa.Column("name", sa.String(32), primary_key=True),
        sa.Column("last_event_id", sa.BigInteger(), nullable=False, server_default="0"),
        sa.Column("folded_at", sa.DateTime(timezone=True), nullable=True),
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
        sa.Column("profile_gender", sa.String(20), nullable=True),
        sa.Column("profile_role", sa.String(40), nullable=True),
        sa.Column("profile_country", sa.String(2), nullable=True),
        sa.Column("locale", sa.String(20), nullable=True),
        sa.Column("channel", sa.String(20), nullable=False),
    )
    op.create_index(
        "ix_learner_scores_key", "learner_scores", ["learner_key", "cohort_id", "course_id"]
    )
    op.create_index(
        "ix_learner_scores_cube",
        "learner_scores",
        [
            "cohort_id",
            "course_id",
            "profile_gender",
            "profile_role",
            "profile_country",
            "locale",
            "channel",
            "answered",
            "right_first",
        ],
    )


def downgrade() -> None:
    """Revert this revision."""
    op.drop_table("learner_scores")
    op.drop_table("question_sums")
    op.drop_table("question_days")
    op.drop_table("rollup_cursor")
