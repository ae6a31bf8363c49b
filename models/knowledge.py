"""Policy questions: uploaded document versions, the question log and handoffs to a person.

The documents that ship with the bot live in the package (services/knowledge_base); the
database holds what admins add: uploads and answers saved as FAQ, every version kept.
Questions and handoffs belong to the asker and go with them (ON DELETE CASCADE, /deleteme).
Readings that look like vital signs are removed from question text before it is stored.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, BigInteger, Column, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

from models.types import EnumString, UTCDateTime, utcnow


class DocumentOrigin(StrEnum):
    UPLOAD = "upload"  # a file an admin sent to the bot
    FAQ = "faq"  # a person's reply saved as an answer
    SHIPPED = "shipped"  # only to record that a shipped document was retired


class KbDocument(SQLModel, table=True):
    """One version of one language version of a document."""

    __tablename__ = "kb_document"
    __table_args__ = (
        UniqueConstraint("doc_id", "language", "version", name="uq_kb_document_version"),
    )

    id: int | None = Field(default=None, primary_key=True)
    doc_id: str = Field(max_length=64, index=True)
    language: str = Field(max_length=10)
    version: int
    origin: DocumentOrigin = Field(sa_type=EnumString(DocumentOrigin, 10))
    title: str = Field(max_length=200)
    issuer: str = Field(max_length=200)
    issued: str = Field(default="", max_length=40)
    status: str = Field(default="current", max_length=20)
    content: str = Field(sa_type=Text)
    sha256: str = Field(max_length=64)
    filename: str | None = Field(default=None, max_length=200)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    created_by: int | None = Field(default=None, sa_column=Column(BigInteger, nullable=True))
    retired_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    retired_by: int | None = Field(default=None, sa_column=Column(BigInteger, nullable=True))


class QuestionOutcome(StrEnum):
    ANSWER = "answer"
    NOT_SURE = "not_sure"
    OUT_OF_SCOPE = "out_of_scope"
    SMALL_TALK = "small_talk"
    TOO_SHORT = "too_short"


class KbQuestion(SQLModel, table=True):
    """A question asked and what the bot did with it (no health readings)."""

    __tablename__ = "kb_question"

    id: int | None = Field(default=None, primary_key=True)
    person_id: int | None = Field(
        default=None, foreign_key="person.id", index=True, ondelete="CASCADE"
    )
    language: str = Field(max_length=10)
    text: str = Field(max_length=1000)
    grouping: str = Field(max_length=200, index=True)
    outcome: str = Field(max_length=20, index=True)
    confidence: float = 0.0
    topic_key: str | None = Field(default=None, max_length=16)
    doc_ref: str | None = Field(default=None, max_length=120)
    chosen_topic: str | None = Field(default=None, max_length=16)
    feedback: int | None = None  # 1 helpful, -1 not helpful
    feedback_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, index=True)


class HandoffStatus(StrEnum):
    OPEN = "open"
    ANSWERED = "answered"


class KbHandoff(SQLModel, table=True):
    """A question sent to the admins with "Ask a person"."""

    __tablename__ = "kb_handoff"

    id: int | None = Field(default=None, primary_key=True)
    question_id: int = Field(foreign_key="kb_question.id", index=True, ondelete="CASCADE")
    person_id: int = Field(foreign_key="person.id", index=True, ondelete="CASCADE")
    asker_telegram_id: int = Field(sa_column=Column(BigInteger, nullable=False))
    language: str = Field(max_length=10)
    question: str = Field(max_length=1000)
    guess_topic: str | None = Field(default=None, max_length=16)
    guess_title: str | None = Field(default=None, max_length=200)
    status: HandoffStatus = Field(
        default=HandoffStatus.OPEN, sa_type=EnumString(HandoffStatus, 20), index=True
    )
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    reminded_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    reminders: int = 0
    answered_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    answered_by: int | None = Field(default=None, sa_column=Column(BigInteger, nullable=True))
    answer: str | None = Field(default=None, sa_type=Text)
    faq_doc_id: str | None = Field(default=None, max_length=64)
    admin_messages: list[Any] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
