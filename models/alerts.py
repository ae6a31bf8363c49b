"""The emergency channel: alerts and their timelines, who was alerted, the duty roster,
the emergency directory and the links between cadres and their emergency contacts."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, Column, Index, UniqueConstraint, text
from sqlmodel import Field, SQLModel

from models.types import EnumString, UTCDateTime, utcnow


class AlertStatus(StrEnum):
    OPEN = "open"  # nobody has taken it yet: escalation runs
    ACKNOWLEDGED = "acknowledged"  # a human has taken it
    RESOLVED = "resolved"
    CANCELLED = "cancelled"  # a false alarm, cancelled by the cadre


class Alert(SQLModel, table=True):
    """One emergency: an SOS, or a RED health check-in (the cause)."""

    __tablename__ = "alert"
    __table_args__ = (
        Index("ix_alert_due", "status", "next_escalation_at"),
        # at most one alert in progress per person, whatever runs at the same moment
        Index(
            "uq_alert_in_progress",
            "person_id",
            unique=True,
            sqlite_where=text("status IN ('open', 'acknowledged')"),
            postgresql_where=text("status IN ('open', 'acknowledged')"),
        ),
    )

    id: int | None = Field(default=None, primary_key=True)
    # Null once the person deleted their data (/deleteme): the alert stays in the officers'
    # record as "a deleted person" with its times (services/erasure.py).
    person_id: int | None = Field(
        default=None, foreign_key="person.id", index=True, ondelete="SET NULL"
    )
    cause: str = Field(max_length=20)  # sos | checkin_red
    reasons: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    status: AlertStatus = Field(
        default=AlertStatus.OPEN, sa_type=EnumString(AlertStatus, 14), index=True
    )
    prefecture: str | None = Field(default=None, max_length=24, index=True)  # at raise time
    category: str | None = Field(default=None, max_length=20)  # altitude|injury|accident|other
    details: str | None = Field(default=None, max_length=1000)
    latitude: float | None = None
    longitude: float | None = None
    location_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    live_location: bool = False
    stage: int = 1  # escalation stage reached: 1 first tier, 2 second, 3+ everyone (repeats)
    next_escalation_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, index=True)
    acknowledged_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    acknowledged_by: int | None = Field(default=None, foreign_key="person.id", ondelete="SET NULL")
    resolved_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    resolved_by: int | None = Field(default=None, foreign_key="person.id", ondelete="SET NULL")
    outcome: str | None = Field(default=None, max_length=20)
    resolution_note: str | None = Field(default=None, max_length=1000)
    cancelled_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    # Raised by someone who is not an active member (a guest, a pending, suspended or
    # rejected person, a contact): who they were when they called (status, Telegram name).
    unverified: bool = False
    caller: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON, nullable=True))


class AlertEvent(SQLModel, table=True):
    """The timeline: every event of an alert, with its time and actor. Deliveries are read
    from the outbox (source ``alert:<id>``) and merged when the timeline is shown."""

    __tablename__ = "alert_event"

    id: int | None = Field(default=None, primary_key=True)
    alert_id: int = Field(foreign_key="alert.id", index=True, ondelete="CASCADE")
    at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    kind: str = Field(max_length=24)
    actor_person_id: int | None = Field(default=None, foreign_key="person.id", ondelete="SET NULL")
    detail: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))


class AlertRecipient(SQLModel, table=True):
    """Someone told of an alert: a duty officer or admin (who may act on it) or a contact."""

    __tablename__ = "alert_recipient"
    __table_args__ = (UniqueConstraint("alert_id", "person_id"),)

    id: int | None = Field(default=None, primary_key=True)
    alert_id: int = Field(foreign_key="alert.id", index=True, ondelete="CASCADE")
    person_id: int = Field(foreign_key="person.id", index=True, ondelete="CASCADE")
    kind: str = Field(max_length=12)  # responder | contact
    stage: int = 1  # the escalation stage at which they were first alerted
    notified_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class OnDuty(SQLModel, table=True):
    """A period on duty started with /onduty; open while ended_at is null (or until passed)."""

    __tablename__ = "on_duty"

    id: int | None = Field(default=None, primary_key=True)
    person_id: int = Field(foreign_key="person.id", index=True, ondelete="CASCADE")
    started_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    until: datetime | None = Field(default=None, sa_type=UTCDateTime)
    ended_at: datetime | None = Field(default=None, sa_type=UTCDateTime, index=True)


class DutyShift(SQLModel, table=True):
    """A weekly shift in the configured time zone. ``end_minute <= start_minute`` means the
    shift runs past midnight into the next day (20:00-08:00)."""

    __tablename__ = "duty_shift"

    id: int | None = Field(default=None, primary_key=True)
    person_id: int = Field(foreign_key="person.id", index=True, ondelete="CASCADE")
    prefecture: str = Field(max_length=24, index=True)
    weekday: int  # 0 Monday ... 6 Sunday
    start_minute: int  # minutes after local midnight
    end_minute: int
    created_by: int | None = Field(default=None, foreign_key="person.id", ondelete="SET NULL")
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class DirectoryEntry(SQLModel, table=True):
    """An emergency number or medical contact; national when prefecture is null. Seeded from
    services/data/emergency_directory.json (``key``), then kept current by admins."""

    __tablename__ = "directory_entry"

    id: int | None = Field(default=None, primary_key=True)
    key: str | None = Field(default=None, max_length=40, unique=True)  # seed entries only
    prefecture: str | None = Field(default=None, max_length=24, index=True)
    kind: str = Field(default="hospital", max_length=12)  # number | hospital | oxygen | other
    name_zh: str = Field(max_length=100)
    name_en: str = Field(default="", max_length=100)
    phone: str | None = Field(default=None, max_length=40)
    address: str | None = Field(default=None, max_length=200)
    sort: int = 100
    confirmed_by: str | None = Field(default=None, max_length=100)
    confirmed_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class ContactLink(SQLModel, table=True):
    """A cadre's invitation to an emergency contact. The contact who registers with the
    invitation (person.invitation_id) is told of that cadre's alerts, and of nothing else."""

    __tablename__ = "contact_link"

    id: int | None = Field(default=None, primary_key=True)
    cadre_person_id: int = Field(foreign_key="person.id", index=True, ondelete="CASCADE")
    invitation_id: int = Field(
        foreign_key="invitation.id", unique=True, index=True, ondelete="CASCADE"
    )
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    revoked_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
