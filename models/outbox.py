"""The outbox: every message the bot sends on its own initiative is stored here first."""

from __future__ import annotations

from datetime import datetime
from enum import IntEnum, StrEnum
from typing import Any

from sqlalchemy import JSON, BigInteger, Column, Index, String
from sqlmodel import Field, SQLModel

from models.types import UTCDateTime, utcnow


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


class OutboxMessage(SQLModel, table=True):
    __tablename__ = "outbox"
    __table_args__ = (Index("ix_outbox_due", "status", "priority", "next_attempt_at"),)

    id: int | None = Field(default=None, primary_key=True)
    idempotency_key: str = Field(max_length=120, unique=True)
    chat_id: int = Field(sa_column=Column(BigInteger, nullable=False, index=True))
    person_id: int | None = Field(default=None, index=True)
    priority: int = Field(default=Priority.REMINDER)
    kind: str = Field(default="text", max_length=20)  # text | photo | document | location | edit
    payload: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    language: str | None = Field(default=None, max_length=10)
    status: OutboxStatus = Field(default=OutboxStatus.PENDING, sa_type=String(12))
    attempts: int = 0
    next_attempt_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    sent_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    outcome: str | None = Field(default=None, max_length=200)  # cause of the last failure
    telegram_message_id: int | None = Field(default=None, sa_column=Column(BigInteger))
    source: str | None = Field(default=None, max_length=60, index=True)  # "alert:12", "broadcast:3"
