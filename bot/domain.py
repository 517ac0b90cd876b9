"""Plain dataclasses and enums shared by every layer: no I/O, no imports of ours."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum


class ChannelName(StrEnum):
    """Where a learner is reached."""

    SANDBOX = "sandbox"
    TELEGRAM = "telegram"
    WHATSAPP = "whatsapp"
    SMS = "sms"


class LearnerStatus(StrEnum):
    """Whether we may send to a learner."""

    ACTIVE = "active"
    STOPPED = "stopped"  # said STOP: nothing is sent until START
    PAUSED = "paused"  # too many unanswered reminders: resumes on reply
    UNREACHABLE = "unreachable"  # provider says the address cannot receive
    DELETED = "deleted"  # personal data removed; only a tombstone remains


class QuestionKind(StrEnum):
    """Kinds of quiz and survey questions a lesson may ask."""

    SINGLE_CHOICE = "single_choice"
    TRUE_FALSE = "true_false"
    MULTIPLE_SELECT = "multiple_select"
    RATING = "rating"  # 1 to 5, ungraded survey
    FREE_TEXT = "free_text"  # reflection, ungraded


class EventType(StrEnum):
    """Entries of the append-only completion log."""

    ENROLLED = "enrolled"
    LESSON_DELIVERED = "lesson_delivered"
    ANSWERED = "answered"
    LESSON_COMPLETED = "lesson_completed"
    COURSE_COMPLETED = "course_completed"
    STOPPED = "stopped"
    RESTARTED = "restarted"
    DATA_DELETED = "data_deleted"
    LANGUAGE_CHANGED = "language_changed"
    PROFILE_UPDATED = "profile_updated"
    PAUSED = "paused"  # no answer after the last reminder: resumes on reply


class DeliveryKind(StrEnum):
    """What an outbox row carries; part of its unique key."""

    LESSON = "lesson"
    REMINDER = "reminder"
    TEMPLATE = "template"  # WhatsApp content template outside the 24 h window
    REPLY = "reply"  # ready-made replies to a learner's own message (payload)


class DeliveryStatus(StrEnum):
    """Life of an outbox row, updated by the dispatcher and status callbacks."""

    PENDING = "pending"
    SENDING = "sending"
    QUEUED = "queued"
    SENT = "sent"
    DELIVERED = "delivered"
    READ = "read"
    UNDELIVERED = "undelivered"
    FAILED = "failed"
    DEAD = "dead"
    CANCELLED = "cancelled"
    HELD = "held"  # WhatsApp lesson outside the 24 h window: sent after the learner replies


class Role(StrEnum):
    """Roles of staff users."""

    TRAINER = "trainer"
    ADMIN = "admin"


@dataclass(frozen=True, slots=True)
class Button:
    """A choice offered with a message: a label shown, a payload sent back."""

    label: str
    payload: str


@dataclass(frozen=True, slots=True)
class Image:
    """An image with the alt text that replaces it where images cannot go (SMS)."""

    url: str
    alt: str


@dataclass(frozen=True, slots=True)
class InboundMessage:
    """A message from a learner, already authenticated and de-duplicated by its channel."""

    channel: ChannelName
    address: str  # E.164 phone number, Telegram chat id, or sandbox session id
    text: str = ""
    payload: str | None = None  # button callback data, if a button was pressed
    provider_id: str | None = None  # update_id / MessageSid, for de-duplication
    received_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class OutboundMessage:
    """A channel-neutral message; channels render buttons as keyboards or numbered lines."""

    channel: ChannelName
    address: str
    text: str
    locale: str
    buttons: tuple[Button, ...] = ()
    image: Image | None = None
    numbered: bool = True  # on text-only channels, prefix buttons with 1), 2), ...
    is_reply: bool = True  # a reply to the learner's own message goes before bulk sends
    meta: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class RenderedMessage:
    """One provider message, already rendered for its channel: what `Channel.send` transmits."""

    channel: ChannelName
    address: str
    text: str
    buttons: tuple[Button, ...] = ()  # Telegram / sandbox only; text channels number them
    image_url: str | None = None
    encoding: str | None = None  # SMS: "GSM-7" or "UCS-2"
    segments: int = 1  # SMS segments this part costs
    is_reply: bool = True
    # (start, end) character ranges of `text` shown in bold where the channel has formatting
    # as data (Telegram's entities: no markup to escape). WhatsApp gets *bold* in its text.
    bold: tuple[tuple[int, int], ...] = ()
    # WhatsApp outside the 24 h window: an approved content template instead of free text.
    content_sid: str | None = None
    content_variables: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True, slots=True)
class SendResult:
    """What a provider said when it accepted a message."""

    provider_message_id: str | None
    segments: int = 1
