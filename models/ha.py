"""High availability on PostgreSQL (bot/leader.py): who leads, since when."""

from __future__ import annotations

from datetime import datetime

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
