"""The outbox: every message the bot sends on its own initiative is stored here first."""

from __future__ import annotations

from datetime import datetime
from enum import IntEnum, StrEnum
from typing import Any

from sqlalchemy import JSON, BigInteger, Column, Index, text
from sqlmodel import Field, SQLModel

from models.types import EnumString, UTCDateTime, utcnow


class Priority(IntEnum):
    """Lower sends first. A broadcast never delays an emergency."""

    EMERGENCY = 0
    URGENT = 1  # duty notices, red-flag health results, escalations of urgent requests
    REMINDER = 2
    BROADCAST = 3


class OutboxStatus(StrEnum):
    PENDING = "pending"  # waiting for its next attempt
    SENDING = "sending"  # claimed by the worker; outcome unknown until recorded
    SENT = "sent"
    FAILED = "failed"  # permanent failure (blocked, chat not found...)
    CANCELLED = "cancelled"


class OutcomeCode(StrEnum):
    """Why a message ended (or was last retried) the way it did; `outcome` has the detail."""

    SENT = "sent"
    SENT_PLAIN = "sent_plain"  # Telegram refused the HTML: sent again as plain text
    RETRY = "retry"  # transient failure (5xx, timeout, network): another attempt is due
    RESTART = "restart"  # the bot stopped while sending: outcome unknown, sent again
    BLOCKED = "blocked"  # 403 bot was blocked by the user
    DEACTIVATED = "deactivated"  # 403 user is deactivated
    NOT_STARTED = "not_started"  # 403 the person never started the bot
    CHAT_NOT_FOUND = "chat_not_found"  # 400 chat not found
    KICKED = "kicked"  # 403 the bot is no longer in the group
    FORBIDDEN = "forbidden"  # another 403
    BAD_REQUEST = "bad_request"  # 400: the message itself is wrong; retrying cannot help
    GAVE_UP = "gave_up"  # transient failures beyond CADRE_DELIVERY_MAX_ATTEMPTS
    CANCELLED = "cancelled"
    NO_TARGET = "no_target"  # an edit whose original message was never sent
    # WeCom, DingTalk and SMS (bot/duty_channels.py):
    REFUSED = "refused"  # the service refused for good: bad key or signature, a 4xx
    NO_CHANNEL = "no_channel"  # the duty group or SMS number was removed, or SMS is off


# The person cannot be reached on Telegram until they write to the bot again.
UNREACHABLE_CODES = frozenset(
    {
        OutcomeCode.BLOCKED,
        OutcomeCode.DEACTIVATED,
        OutcomeCode.NOT_STARTED,
        OutcomeCode.CHAT_NOT_FOUND,
        OutcomeCode.KICKED,
        OutcomeCode.FORBIDDEN,
    }
)


CHANNEL_ROWS = "channel <> 'telegram'"  # the rows bot/duty_channels.py sends


class OutboxMessage(SQLModel, table=True):
    __tablename__ = "outbox"
    __table_args__ = (
        Index("ix_outbox_due", "status", "priority", "next_attempt_at"),
        # WeCom, DingTalk and SMS rows only (few): the Telegram worker's claim keeps using
        # ix_outbox_due, and this one never grows with broadcasts.
        Index(
            "ix_outbox_channel_due",
            "status",
            "next_attempt_at",
            sqlite_where=text(CHANNEL_ROWS),
            postgresql_where=text(CHANNEL_ROWS),
        ),
        # The health pass reads the reminder keys of the last two days every minute; by
        # source alone that is every reminder ever queued (70,000 a day for 100,000 people).
        Index("ix_outbox_source_created", "source", "created_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    idempotency_key: str = Field(max_length=120, unique=True)
    chat_id: int = Field(sa_column=Column(BigInteger, nullable=False, index=True))
    # Deleting a person (/deleteme) deletes the messages addressed to them.
    person_id: int | None = Field(
        default=None, foreign_key="person.id", index=True, ondelete="CASCADE"
    )
    priority: int = Field(default=Priority.REMINDER)
    # text | photo | document | location | edit (payload: text, caption, photo, document,
    # latitude, longitude, live_period, message_id or edit_of, reply_markup; render + args:
    # a file drawn when sent; after: the key of a message to follow, as a reply)
    kind: str = Field(default="text", max_length=20)
    payload: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    language: str | None = Field(default=None, max_length=10)
    status: OutboxStatus = Field(default=OutboxStatus.PENDING, sa_type=EnumString(OutboxStatus, 12))
    attempts: int = 0
    next_attempt_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    sent_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    outcome: str | None = Field(default=None, max_length=200)  # cause of the last failure
    telegram_message_id: int | None = Field(default=None, sa_column=Column(BigInteger))
    source: str | None = Field(default=None, max_length=60, index=True)  # "alert:12", "broadcast:3"
    outcome_code: str | None = Field(default=None, max_length=20)  # an OutcomeCode
    parts_sent: int = 0  # parts of a long text already delivered (resumes after a restart)
    # telegram (chat_id) | wecom | dingtalk | sms (bot/duty_channels.py): for the others `target`
    # names the duty group ("duty_group:3") or person ("person:12") whose stored channel
    # settings are read when the message is sent, so no credential is copied here.
    channel: str = Field(
        default="telegram", max_length=10, sa_column_kwargs={"server_default": "telegram"}
    )
    target: str | None = Field(default=None, max_length=60)
    # A row in ``sending`` is leased: `lease_owner` (one worker of one process, see
    # services.outbox.leases.new_owner) took it and renews `lease_expires_at` while it
    # holds it.
    # Only the owner writes its outcome; recovery takes back only rows whose lease expired
    # (None: taken without a lease, e.g. before migration 0016: expired).
    lease_owner: str | None = Field(default=None, max_length=80)
    lease_expires_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
