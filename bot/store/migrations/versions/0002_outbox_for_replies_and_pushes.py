"""Outbox for replies and pushes: learner_id, priority, payload, leases; pushes; flags.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Frozen copies of the column types at this revision (see 0001).
Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
Timestamp = sa.DateTime(timezone=True)


def upgrade() -> None:
    """Apply this revision."""
    op.create_table(
        "pushes",
        sa.Column("id", Id, autoincrement=True, nullable=False),
        sa.Column("cohort_id", Id, nullable=False),
        sa.Column("lesson_id", sa.String(length=64), nullable=False),
        sa.Column("requested_by", Id, nullable=True),
        sa.Column("send_at", Timestamp, nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("total", sa.Integer(), nullable=False),
        sa.Column("created_at", Timestamp, nullable=False),
        sa.Column("cancelled_at", Timestamp, nullable=True),
        sa.ForeignKeyConstraint(
            ["cohort_id"], ["cohorts.id"], name=op.f("fk_pushes_cohort_id_cohorts")
        ),
        sa.ForeignKeyConstraint(
            ["requested_by"], ["users.id"], name=op.f("fk_pushes_requested_by_users")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_pushes")),
    )
    with op.batch_alter_table("users") as batch:
        batch.add_column(sa.Column("email", sa.String(length=200), nullable=True))
        batch.create_unique_constraint(op.f("uq_users_email"), ["email"])
    with op.batch_alter_table("learners") as batch:
        batch.add_column(sa.Column("flag", sa.String(length=32), nullable=True))
    with op.batch_alter_table("enrollments") as batch:
        batch.add_column(sa.Column("awaiting_since", Timestamp, nullable=True))

    # learner_id is filled from the enrollment of every existing row before it becomes NOT NULL.
    with op.batch_alter_table("deliveries") as batch:
        batch.add_column(sa.Column("learner_id", Id, nullable=True))
        batch.add_column(sa.Column("priority", sa.SmallInteger(), nullable=True))
        batch.add_column(sa.Column("payload", sa.JSON(), nullable=True))
        batch.add_column(sa.Column("push_id", Id, nullable=True))
        batch.add_column(sa.Column("claimed_by", sa.String(length=64), nullable=True))
        batch.add_column(sa.Column("claimed_until", Timestamp, nullable=True))
    op.execute(
        "UPDATE deliveries SET priority = 1, learner_id = "
        "(SELECT enrollments.learner_id FROM enrollments "
        "WHERE enrollments.id = deliveries.enrollment_id)"
    )
    with op.batch_alter_table("deliveries") as batch:
        batch.alter_column("learner_id", existing_type=Id, nullable=False)
        batch.alter_column("priority", existing_type=sa.SmallInteger(), nullable=False)
        batch.alter_column("enrollment_id", existing_type=Id, nullable=True)
        batch.create_foreign_key(
            op.f("fk_deliveries_learner_id_learners"),
            "learners",
            ["learner_id"],
            ["id"],
            ondelete="CASCADE",
        )
        batch.create_foreign_key(
            op.f("fk_deliveries_push_id_pushes"), "pushes", ["push_id"], ["id"]
        )
        batch.drop_index("ix_deliveries_claim")
        batch.create_index("ix_deliveries_claim", ["status", "priority", "due_at"])
        batch.create_index("ix_deliveries_learner", ["learner_id"])


def downgrade() -> None:
    """Revert this revision (replies without an enrollment are dropped)."""
    op.execute("DELETE FROM deliveries WHERE enrollment_id IS NULL")
    with op.batch_alter_table("deliveries") as batch:
        batch.drop_index("ix_deliveries_learner")
        batch.drop_index("ix_deliveries_claim")
        batch.create_index("ix_deliveries_claim", ["status", "due_at"])
        batch.drop_constraint(op.f("fk_deliveries_push_id_pushes"), type_="foreignkey")
        batch.drop_constraint(op.f("fk_deliveries_learner_id_learners"), type_="foreignkey")
        batch.alter_column("enrollment_id", existing_type=Id, nullable=False)
        for column in ("claimed_until", "claimed_by", "push_id", "payload", "priority"):
            batch.drop_column(column)
        batch.drop_column("learner_id")
    with op.batch_alter_table("enrollments") as batch:
        batch.drop_column("awaiting_since")
    with op.batch_alter_table("learners") as batch:
        batch.drop_column("flag")
    with op.batch_alter_table("users") as batch:
        batch.drop_constraint(op.f("uq_users_email"), type_="unique")
        batch.drop_column("email")
    op.drop_table("pushes")
