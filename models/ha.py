"""High availability (bot/leader.py): who leads, since when; the updates taken from Telegram."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Column
from sqlmodel import Field, SQLModel

from models.types import UTCDateTime, utcnow


class HaLeader(SQLModel, table=True):
    """One row (id 1), written by the leader when it takes over and renewed by its
    heartbeat (every CADRE_HA_LEASE / 6 seconds, on the connection that holds the lock).
    A standby reads it to know whether the leader is alive: a heartbeat older than
    CADRE_HA_LEASE means a leader that holds the lock but does nothing (paused, hung), whose
    lock connection the standby then terminates. `cadre-bot status` prints it."""

    __tablename__ = "ha_leader"

    id: int = Field(default=1, primary_key=True)
    node: str = Field(max_length=80)  # host:pid:random, unique per process
    host: str = Field(max_length=255)
    pid: int
    backend_pid: int  # PostgreSQL backend of the lock connection (pg_terminate_backend)
    term: int = 1  # +1 at every takeover
    since: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    heartbeat_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class UpdateInbox(SQLModel, table=True):
    """Updates taken from Telegram, stored before Telegram is told they arrived
    (services/inbox.py): with getUpdates, before the next call confirms them; with a
    webhook, before the 200 answer. A process that dies (or loses the leadership) while
    handling one leaves it here unhandled, and the next process to lead handles it.

    Its content is personal data: `payload` is cleared as soon as the update is handled
    (the id stays, to recognize Telegram sending it again), the rows of a person who
    deletes their data are deleted, and handled rows go once Telegram can no longer send
    them again."""

    __tablename__ = "update_inbox"

    update_id: int = Field(sa_column=Column(BigInteger, primary_key=True, autoincrement=False))
    user_id: int | None = Field(default=None, sa_column=Column(BigInteger, index=True))
    payload: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON, nullable=True))
    received_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    handled_at: datetime | None = Field(default=None, sa_type=UTCDateTime, index=True)
    resumed: int = 0  # starts that took it up again unhandled (given up after 3)
