"""Bot state that must survive restarts: conversation states and per-user form drafts."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Column
from sqlmodel import Field, SQLModel

from models.types import UTCDateTime, utcnow


class BotState(SQLModel, table=True):
    __tablename__ = "bot_state"

    kind: str = Field(primary_key=True, max_length=40)
    key: str = Field(primary_key=True, max_length=200)
    data: Any = Field(default=None, sa_column=Column(JSON, nullable=True))
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
