"""SQLAlchemy Core tables: the one schema, owned by Alembic migrations."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    SmallInteger,
    String,
    Table,
    Text,
    UniqueConstraint,
    false,
    text,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator

# Stable constraint names, so Alembic migrations are the same on SQLite and PostgreSQL.
metadata = MetaData(
    naming_convention={
        "ix": "ix_%(column_0_label)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

# BigInteger ids that are still SQLite rowids (INTEGER PRIMARY KEY) on SQLite.
Id = BigInteger().with_variant(Integer(), "sqlite")


class UtcDateTime(TypeDecorator[datetime]):
    """A timestamp that takes aware datetimes and returns them in UTC, on every backend."""

    # SQLite has no time zone type: SQLAlchemy silently drops tzinfo on the way in and
    # returns naive values, so we store UTC there and mark results as UTC on the way out.
    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> Any:
        if value is None:
            return None
        if value.tzinfo is None or value.utcoffset() is None:
            # A naive value would be stored as-is and read back as UTC: refuse the guess.
            raise ValueError(f"naive datetime {value.isoformat()}: pass an aware datetime")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


Timestamp = UtcDateTime()

users = Table(
    "users",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("name", String(200), nullable=False),
    Column("role", String(20), nullable=False),  # domain.Role
    Column("telegram_chat_id", String(64), nullable=True, unique=True),
    Column("phone", String(32), nullable=True, unique=True),
    Column("email", String(200), nullable=True, unique=True),
    Column("created_at", Timestamp, nullable=False),
    # argon2 hash of the console password; None: the user cannot sign in to the console yet.
    Column("password_hash", String(255), nullable=True),
)

# One-time console invitations (`learnbot user invite`): only the SHA-256 of the token is kept.
invitations = Table(
    "invitations",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("user_id", Id, ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    Column("token_hash", String(64), nullable=False, unique=True),
    Column("created_at", Timestamp, nullable=False),
    Column("expires_at", Timestamp, nullable=False),
    Column("used_at", Timestamp, nullable=True),
)

learners = Table(
    "learners",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    # Random opaque id that survives deletion: the tombstone in the event log.
    Column("learner_key", String(36), nullable=False, unique=True),
    Column("channel", String(20), nullable=False),  # domain.ChannelName
    Column("address", String(128), nullable=True),  # E.164, chat id; nulled-out on delete
    Column("name", String(200), nullable=True),
    Column("locale", String(20), nullable=True),  # None until chosen
    Column("time_zone", String(64), nullable=True),
    Column("status", String(20), nullable=False),  # domain.LearnerStatus
    Column("profile_role", String(40), nullable=True),
    Column("profile_country", String(2), nullable=True),
    Column("profile_gender", String(20), nullable=True),
    # Where the learner is in a multi-step exchange (choosing language, profile, confirm delete).
    Column("dialogue_state", String(40), nullable=True),
    # Why a provider refused this address ("unreachable", "review" for filtered), for trainers.
    Column("flag", String(32), nullable=True),
    Column("last_inbound_at", Timestamp, nullable=True),  # WhatsApp 24 h window
    Column("created_at", Timestamp, nullable=False),
    Column("updated_at", Timestamp, nullable=False),
    UniqueConstraint("channel", "address"),
)

cohorts = Table(
    "cohorts",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("name", String(200), nullable=False),
    Column("join_code", String(32), nullable=False, unique=True),
    Column("course_ids", JSON, nullable=False),  # ordered pathway of course ids
    Column("time_zone", String(64), nullable=False),
    Column("start_date", Date, nullable=True),
    Column("pacing", String(20), nullable=False),  # "self_paced" or "scheduled"
    Column("schedule", JSON, nullable=True),  # weekdays, send time, quiet hours, reminders
    Column("owner_id", Id, ForeignKey("users.id"), nullable=True),
    Column("status", String(20), nullable=False),  # active, paused
    Column("created_at", Timestamp, nullable=False),
    # Whether the public /sandbox may join it (the demo cohort, or a trainer's choice).
    Column("open_to_sandbox", Boolean, nullable=False, default=False, server_default=false()),
    # The name learners read in a locale ({"ar": "...", "sw": "..."}); `name` for the others.
    Column("names", JSON, nullable=True),
)

enrollments = Table(
    "enrollments",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("learner_id", Id, ForeignKey("learners.id", ondelete="CASCADE"), nullable=False),
    Column("cohort_id", Id, ForeignKey("cohorts.id"), nullable=False),
    Column("course_id", String(64), nullable=False),  # the current course of the pathway
    Column("lesson_id", String(64), nullable=True),  # the current lesson, None before the first
    Column("question_index", Integer, nullable=True),  # the open question of that lesson
    Column("attempt", Integer, nullable=False, default=0),  # attempts on the open question
    Column("status", String(20), nullable=False),  # active, completed, paused
    Column("next_due_at", Timestamp, nullable=True),  # the planner's state
    Column("reminders_sent", Integer, nullable=False, default=0),
    # When the open question was sent: reminders count from here.
    Column("awaiting_since", Timestamp, nullable=True),
    Column("enrolled_at", Timestamp, nullable=False),
    Column("completed_at", Timestamp, nullable=True),
    UniqueConstraint("learner_id", "cohort_id"),
    Index("ix_enrollments_due", "status", "next_due_at"),
    Index("ix_enrollments_cohort", "cohort_id", "enrolled_at"),  # console: a cohort's
)

# Outbox rows past the dispatcher (neither `pending` nor `sending`): on PostgreSQL,
# ix_deliveries_console holds only these (0015), and a query reads it only if its WHERE
# repeats this term as written (a generic plan's parameters prove nothing).
OUTBOX_IN_FLIGHT = ("pending", "sending")
OUTBOX_SETTLED = "status NOT IN ({})".format(", ".join(f"'{s}'" for s in OUTBOX_IN_FLIGHT))

# The outbox: one row per (enrollment, lesson, kind), so planning twice creates nothing twice.
deliveries = Table(
    "deliveries",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("learner_id", Id, ForeignKey("learners.id", ondelete="CASCADE"), nullable=False),
    # None for replies and other messages that belong to no enrollment.
    Column("enrollment_id", Id, ForeignKey("enrollments.id", ondelete="CASCADE"), nullable=True),
    # The lesson id, or a unique key of its own for a reply (e.g. "reply:<uuid>").
    Column("lesson_id", String(64), nullable=False),
    Column("kind", String(20), nullable=False),  # domain.DeliveryKind
    Column("channel", String(20), nullable=False),
    Column("status", String(20), nullable=False),  # domain.DeliveryStatus
    # 0: a reply to the learner's own message, sent before 1: scheduled and pushed lessons.
    Column("priority", SmallInteger, nullable=False, default=1),
    Column("locale", String(20), nullable=True),  # the locale actually delivered
    # Ready-made channel-neutral messages (replies); None: rendered from the lesson at send time.
    Column("payload", JSON, nullable=True),
    Column("push_id", Id, ForeignKey("pushes.id"), nullable=True),
    Column("due_at", Timestamp, nullable=False),
    Column("attempts", Integer, nullable=False, default=0),
    Column("next_attempt_at", Timestamp, nullable=True),
    # A dispatcher's lease: a row claimed by a process that died is claimed again after it.
    Column("claimed_by", String(64), nullable=True),
    Column("claimed_until", Timestamp, nullable=True),
    Column("provider_message_id", String(64), nullable=True),
    Column("error_code", String(32), nullable=True),
    Column("error_detail", Text, nullable=True),
    Column("segments", Integer, nullable=True),  # SMS segments actually sent
    # Provider messages (SMS parts, text then quiz) already sent: a retry resumes after them.
    Column("parts_sent", Integer, nullable=False, default=0, server_default="0"),
    Column("created_at", Timestamp, nullable=False),
    Column("sent_at", Timestamp, nullable=True),
    Column("updated_at", Timestamp, nullable=False),
    UniqueConstraint("enrollment_id", "lesson_id", "kind"),
    Index("ix_deliveries_claim", "status", "channel", "priority", "due_at"),
    # Sent deliveries only: a planned row has no provider id yet, and no lookup asks for NULL.
    Index(
        "ix_deliveries_provider_message_id",
        "provider_message_id",
        sqlite_where=text("provider_message_id IS NOT NULL"),
        postgresql_where=text("provider_message_id IS NOT NULL"),
    ),
    Index("ix_deliveries_learner", "learner_id"),
    # Console delivery figures: counted and summed from the index alone. On PostgreSQL, rows
    # the dispatcher is still working on are left out, so planning and claiming write no
    # entry here (0015); SQLite keeps them (its planner then sorted the claim index instead).
    Index(
        "ix_deliveries_console",
        "channel",
        "status",
        "kind",
        "created_at",
        "learner_id",
        "segments",
        "locale",
        "error_code",
        postgresql_where=text(OUTBOX_SETTLED),
    ),
)

# A trainer's push of one lesson to a cohort, now or at a time: its progress and cancellation.
pushes = Table(
    "pushes",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("cohort_id", Id, ForeignKey("cohorts.id"), nullable=False),
    Column("lesson_id", String(64), nullable=False),
    Column("requested_by", Id, ForeignKey("users.id"), nullable=True),
    Column("send_at", Timestamp, nullable=False),
    Column("status", String(20), nullable=False),  # scheduled, sending, done, cancelled
    Column("total", Integer, nullable=False, default=0),
    Column("created_at", Timestamp, nullable=False),
    Column("cancelled_at", Timestamp, nullable=True),
)

answers = Table(
    "answers",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("enrollment_id", Id, ForeignKey("enrollments.id", ondelete="CASCADE"), nullable=False),
    Column("course_id", String(64), nullable=False),
    Column("lesson_id", String(64), nullable=False),
    Column("question_id", String(64), nullable=False),
    Column("attempt", Integer, nullable=False),
    Column("response", Text, nullable=False),  # normalised: option ids, a rating, or free text
    Column("correct", Boolean, nullable=True),  # None for ungraded questions
    Column("answered_at", Timestamp, nullable=False),
    Index("ix_answers_enrollment", "enrollment_id"),  # PROGRESS reads one enrollment's answers
)

# Lessons each enrollment has completed: progress is this set, not a position in the course
# (a pushed lesson is delivered out of order; NEXT gives the first lesson not in it).
lesson_completions = Table(
    "lesson_completions",
    metadata,
    Column("enrollment_id", Id, ForeignKey("enrollments.id", ondelete="CASCADE"), primary_key=True),
    Column("course_id", String(64), primary_key=True),
    Column("lesson_id", String(64), primary_key=True),
    Column("completed_at", Timestamp, nullable=False),  # the first completion
)

# ix_events_stage's predicate on PostgreSQL: every event but lesson_delivered.
EVENTS_STAGED = "type <> 'lesson_delivered'"

# Append-only completion log: the single source for dashboards and exports.
# It holds no personal data: learners are named by their opaque learner_key.
events = Table(
    "events",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("occurred_at", Timestamp, nullable=False),
    Column("type", String(32), nullable=False),  # domain.EventType
    Column("learner_key", String(36), nullable=False),
    Column("cohort_id", Id, nullable=True),
    Column("course_id", String(64), nullable=True),
    Column("lesson_id", String(64), nullable=True),
    Column("question_id", String(64), nullable=True),
    Column("locale", String(20), nullable=True),  # the locale actually delivered
    Column("channel", String(20), nullable=True),
    Column("correct", Boolean, nullable=True),
    Column("attempt", Integer, nullable=True),
    Column("detail", JSON, nullable=True),
    Index("ix_events_occurred_at", "occurred_at"),
    Index("ix_events_cohort", "cohort_id", "occurred_at"),
    # Console figures (funnel, questions, gain, survey) scan this index, not the rows. On
    # PostgreSQL it leaves out lesson_delivered, the funnel's first stage, which lesson_days
    # counts (0016): sending a lesson writes one entry fewer.
    Index(
        "ix_events_stage",
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
        postgresql_where=text(EVENTS_STAGED),
    ),
    Index("ix_events_learner", "learner_key", "occurred_at"),  # a learner's timeline
)

# Provider update ids already handled, so a provider retry changes nothing.
processed_inbound = Table(
    "processed_inbound",
    metadata,
    Column("channel", String(20), primary_key=True),
    Column("provider_id", String(64), primary_key=True),
    Column("received_at", Timestamp, nullable=False),
)

# Send schedules shared by every dispatcher process on one PostgreSQL database: a channel's
# next free send slot (GCRA), on the database's clock. Unused on SQLite (one dispatcher).
rate_limits = Table(
    "rate_limits",
    metadata,
    Column("name", String(100), primary_key=True),
    Column("next_free", Timestamp, nullable=False),
)

# The xAPI forwarder's state, one row per LRS ("lrs"): the last event the LRS holds (events
# are sent in id order), the lease that lets one process forward at a time, the last error.
xapi_cursor = Table(
    "xapi_cursor",
    metadata,
    Column("name", String(32), primary_key=True),
    Column("last_event_id", BigInteger, nullable=False, server_default="0"),
    Column("holder", String(64), nullable=True),
    Column("lease_until", Timestamp, nullable=True),
    Column("last_sent_at", Timestamp, nullable=True),
    Column("last_error", Text, nullable=True),
    Column("last_error_at", Timestamp, nullable=True),
)

# Statements the LRS refused (400): kept with its reason, visible in `learnbot xapi status`.
xapi_parked = Table(
    "xapi_parked",
    metadata,
    Column("event_id", BigInteger, primary_key=True),
    Column("statement_id", String(36), nullable=False),
    Column("status_code", Integer, nullable=False),
    Column("reason", Text, nullable=False),
    Column("parked_at", Timestamp, nullable=False),
)

# Console rollups, folded from the event log by bot.store.rollups, behind it by at most what
# arrived since the last fold (the console folds before it reads). Folded, not kept on write:
# the dialogue's turn pays nothing for them. A cohort id of None: events outside any cohort.
rollup_cursor = Table(
    "rollup_cursor",
    metadata,
    Column("name", String(32), primary_key=True),
    Column("last_event_id", BigInteger, nullable=False, server_default="0"),
    Column("folded_at", Timestamp, nullable=True),
    # enrollment_progress counts the teaching lessons named by this fingerprint, and holds
    # every enrollment as it was once the log reached this id.
    Column("teaching", String(64), nullable=True),
    Column("enrollments_as_of", BigInteger, nullable=False, server_default="0"),
)

# The learner attributes the Who page groups by, copied into the rollups from learners.
ATTRIBUTE_NAMES = ("profile_gender", "profile_role", "profile_country", "locale", "channel")


def _attribute_columns() -> list[Column[Any]]:
    return [
        Column("profile_gender", String(20), nullable=True),
        Column("profile_role", String(40), nullable=True),
        Column("profile_country", String(2), nullable=True),
        Column("locale", String(20), nullable=True),
        Column("channel", String(20), nullable=False),
    ]


# Per enrollment (the sandbox's left out): its teaching lessons completed, with the learner's
# attributes copied in, so the overview and the Who page count enrollments without joins.
enrollment_progress = Table(
    "enrollment_progress",
    metadata,
    Column("enrollment_id", Id, primary_key=True, autoincrement=False),
    Column("learner_key", String(36), nullable=False),
    Column("cohort_id", Id, nullable=False),
    Column("lessons_done", Integer, nullable=False),
    *_attribute_columns(),
    Index("ix_enrollment_progress_learner", "learner_key"),
    Index("ix_enrollment_progress_done", "cohort_id", "lessons_done"),
    # Every cohort: grouped in the index's order. A few cohorts: their entries, then sorted.
    Index(
        "ix_enrollment_progress_cube",
        *ATTRIBUTE_NAMES,
        "cohort_id",
        "lessons_done",
        "learner_key",
    ),
    Index(
        "ix_enrollment_progress_cohort_cube",
        "cohort_id",
        *ATTRIBUTE_NAMES,
        "lessons_done",
        "learner_key",
    ),
)


def _question_key_columns() -> list[Column[Any]]:
    """A graded question in a cohort (None: outside any), as the question rollups key it."""
    return [
        Column("id", Id, primary_key=True, autoincrement=True),
        Column("course_id", String(64), nullable=False),
        Column("lesson_id", String(64), nullable=False),
        Column("question_id", String(64), nullable=False),
        Column("cohort_id", Id, nullable=True),
    ]


# Per cohort, graded question and UTC day: first attempts, how many right, each option's count.
question_days = Table(
    "question_days",
    metadata,
    *_question_key_columns(),
    Column("day", Date, nullable=False),
    Column("answered", Integer, nullable=False),
    Column("right_first", Integer, nullable=False),
    *(Column(f"option_{n}", Integer, nullable=False) for n in range(1, 6)),
    Index("ix_question_days_key", "course_id", "lesson_id", "question_id", "cohort_id", "day"),
    Index("ix_question_days_day", "day"),
)

# Per cohort, lesson and UTC day: lessons delivered (the lesson_delivered events).
lesson_days = Table(
    "lesson_days",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("course_id", String(64), nullable=False),
    Column("lesson_id", String(64), nullable=False),
    Column("cohort_id", Id, nullable=True),
    Column("day", Date, nullable=False),
    Column("delivered", Integer, nullable=False),
    Index("ix_lesson_days_key", "course_id", "lesson_id", "cohort_id", "day"),
    Index("ix_lesson_days_day", "day"),
)

# Per cohort and graded question, over its learners' first attempts: the sums the corrected
# point-biserial needs, x being right on the item and t the learner's score on the course.
question_sums = Table(
    "question_sums",
    metadata,
    *_question_key_columns(),
    Column("n", BigInteger, nullable=False),
    Column("sx", BigInteger, nullable=False),
    Column("st", BigInteger, nullable=False),
    Column("stt", BigInteger, nullable=False),
    Column("sxt", BigInteger, nullable=False),
    Index("ix_question_sums_key", "course_id", "lesson_id", "question_id", "cohort_id"),
)

# Per learner, cohort and course: first attempts at graded questions and how many were right,
# with the learner's attributes copied in (refreshed on each of their events), so the Who
# page groups this table alone instead of joining every learner.
learner_scores = Table(
    "learner_scores",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("learner_key", String(36), nullable=False),
    Column("cohort_id", Id, nullable=True),
    Column("course_id", String(64), nullable=False),
    Column("answered", Integer, nullable=False),
    Column("right_first", Integer, nullable=False),
    *_attribute_columns(),
    Index("ix_learner_scores_key", "learner_key", "cohort_id", "course_id"),
    # Led by the attributes, so grouping by them walks the index in order (no sort).
    Index(
        "ix_learner_scores_cube",
        *ATTRIBUTE_NAMES,
        "cohort_id",
        "course_id",
        "answered",
        "right_first",
    ),
)
