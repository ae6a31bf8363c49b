"""Admin broadcasts, who they went to and who confirmed them, and people's cohort tags.

Each recipient's message is an outbox row (source ``broadcast:<id>``); the per-recipient
delivery status is read from there, so it can never disagree with what was sent.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, BigInteger, Column, UniqueConstraint
from sqlmodel import Field, SQLModel

from models.types import EnumString, UTCDateTime, utcnow


class BroadcastStatus(StrEnum):
    SCHEDULED = "scheduled"  # waits for scheduled_at (an APScheduler job starts it)
    SENDING = "sending"  # recipients' messages are queued; progress is being reported
    DONE = "done"  # every message has an outcome; the final report went out
    CANCELLED = "cancelled"  # cancelled before it finished; unsent messages were dropped


class Audience(StrEnum):
    ALL = "all"
    PREFECTURE = "prefecture"  # audience_value: a prefecture code
    ROLE = "role"  # audience_value: a Role
    TAG = "tag"  # audience_value: a cohort tag (PersonTag)
    OVERDUE = "overdue"  # people with an overdue item (sources registered by features)


class Broadcast(SQLModel, table=True):
    __tablename__ = "broadcast"

    id: int | None = Field(default=None, primary_key=True)
    created_by: int | None = Field(default=None, foreign_key="person.id", ondelete="SET NULL")
    admin_chat_id: int = Field(sa_column=Column(BigInteger, nullable=False))
    admin_language: str = Field(default="zh-Hans", max_length=10)
    status: BroadcastStatus = Field(
        default=BroadcastStatus.SENDING, sa_type=EnumString(BroadcastStatus, 12), index=True
    )
    kind: str = Field(default="text", max_length=12)  # text | photo | document
    file_id: str | None = Field(default=None, max_length=200)  # Telegram file id of the media
    texts: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    audience: Audience = Field(default=Audience.ALL, sa_type=EnumString(Audience, 12))
    audience_value: str | None = Field(default=None, max_length=40)
    confirm_required: bool = False
    total: int = 0  # recipients resolved when it started
    resends: int = 0  # re-sends to those who had not confirmed
    progress_seq: int = 0  # edits of the live progress message so far
    last_progress: str | None = Field(default=None, max_length=120)  # counts last shown
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    scheduled_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    started_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    finished_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    cancelled_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class BroadcastRecipient(SQLModel, table=True):
    __tablename__ = "broadcast_recipient"
    __table_args__ = (UniqueConstraint("broadcast_id", "person_id"),)

    id: int | None = Field(default=None, primary_key=True)
    broadcast_id: int = Field(foreign_key="broadcast.id", index=True, ondelete="CASCADE")
    person_id: int = Field(foreign_key="person.id", index=True, ondelete="CASCADE")
    chat_id: int = Field(sa_column=Column(BigInteger, nullable=False))
    language: str = Field(default="zh-Hans", max_length=10)
    confirmed_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class PersonTag(SQLModel, table=True):
    """A cohort tag (e.g. ``2026-spring``) that admins give people, to address broadcasts."""

    __tablename__ = "person_tag"
    __table_args__ = (UniqueConstraint("person_id", "tag"),)

    id: int | None = Field(default=None, primary_key=True)
    person_id: int = Field(foreign_key="person.id", index=True, ondelete="CASCADE")
    tag: str = Field(max_length=24, index=True)
