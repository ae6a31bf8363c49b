"""Care schedules: low-altitude rest and physical examinations per person, the altitude-band
policy admins change, and oxygen requests with their status timeline.

Due dates are not stored: services.care derives them from the person row (assignment start,
posting altitude) and the records below every time, so a profile edit needs no hook. What
is stored is what cannot be derived: what the person (or an admin) recorded, and how far the
reminder pass has got (its watermark), which makes reminders exactly-once.
"""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum

from sqlalchemy import JSON, BigInteger, Column, Index, UniqueConstraint
from sqlmodel import Field, SQLModel

from models.types import EnumString, UTCDateTime, utcnow


class CareKind(StrEnum):
    REST = "rest"  # a low-altitude rest (rotation down to a lower place)
    EXAM = "exam"  # a physical examination


class CareRecordKind(StrEnum):
    DONE = "done"  # on_date: the exam day, or the day the person came back up from a rest
    BOOKED = "booked"  # on_date: the booked day
    SNOOZED = "snoozed"  # on_date: reminders resume on this day
    SET = "set"  # on_date: an admin set or moved the due date


class CareItem(SQLModel, table=True):
    """One schedule (rest or exam) of one person: its current state and the reminder
    watermark. The due date itself is computed (services.care.rules.compute)."""

    __tablename__ = "care_item"
    __table_args__ = (UniqueConstraint("person_id", "kind", name="uq_care_item_person_kind"),)

    id: int | None = Field(default=None, primary_key=True)
    person_id: int = Field(foreign_key="person.id", index=True, ondelete="CASCADE")
    kind: CareKind = Field(sa_type=EnumString(CareKind, 8))
    last_done: date | None = None  # the latest DONE record's date
    override_due: date | None = None  # set by an admin; cleared by the next DONE
    booked_for: date | None = None  # cleared by the next DONE
    snoozed_until: date | None = None  # cadre reminders resume on this local day
    changed_at: datetime | None = Field(default=None, sa_type=UTCDateTime)  # last action
    reminded_until: datetime | None = Field(default=None, sa_type=UTCDateTime)  # watermark
    escalated_due: date | None = None  # the due date whose overdue escalation went out
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class CareRecord(SQLModel, table=True):
    """History: what was done, booked, snoozed or set, when and by whom."""

    __tablename__ = "care_record"

    id: int | None = Field(default=None, primary_key=True)
    person_id: int = Field(foreign_key="person.id", index=True, ondelete="CASCADE")
    kind: CareKind = Field(sa_type=EnumString(CareKind, 8))
    record: CareRecordKind = Field(sa_type=EnumString(CareRecordKind, 8))
    on_date: date
    place: str | None = Field(default=None, max_length=100)  # exams: where (optional)
    result: str | None = Field(default=None, max_length=200)  # exams: private one-line result
    actor_telegram_id: int | None = Field(default=None, sa_column=Column(BigInteger))
    recorded_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class CareProfile(SQLModel, table=True):
    """A person's own reminder time and time zone (defaults come from the settings)."""

    __tablename__ = "care_profile"

    person_id: int = Field(foreign_key="person.id", primary_key=True, ondelete="CASCADE")
    reminder_seconds: int | None = None  # local time of day, seconds after midnight
    timezone: str | None = Field(default=None, max_length=64)  # IANA name


class CarePolicyBand(SQLModel, table=True):
    """An admin's values for one altitude band; absent bands use the documented defaults
    (services.care_policy.DEFAULT_POLICY) and the CADRE_CARE_POLICY setting."""

    __tablename__ = "care_policy"

    band: str = Field(primary_key=True, max_length=10)
    rest_every_days: int | None = None
    rest_length_days: int | None = None
    exam_first_days: int | None = None
    exam_every_days: int | None = None
    exam_contents: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    confirmed: bool = False
    updated_by: int | None = Field(default=None, sa_column=Column(BigInteger))
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class OxygenWhat(StrEnum):
    CYLINDER = "cylinder"
    CONCENTRATOR = "concentrator"  # concentrator service or repair
    ROOM = "room"  # access to an oxygen room


class OxygenUrgency(StrEnum):
    URGENT = "urgent"  # now; escalates when nobody acknowledges
    TODAY = "today"
    DAYS = "days"  # within a few days


class OxygenStatus(StrEnum):
    OPEN = "open"
    ACKNOWLEDGED = "acknowledged"
    DELIVERED = "delivered"
    CANCELLED = "cancelled"


class OxygenRequest(SQLModel, table=True):
    __tablename__ = "oxygen_request"
    __table_args__ = (Index("ix_oxygen_request_area", "prefecture", "status"),)

    id: int | None = Field(default=None, primary_key=True)
    person_id: int = Field(foreign_key="person.id", index=True, ondelete="CASCADE")
    prefecture: str | None = Field(default=None, max_length=24)  # the area, at request time
    what: OxygenWhat = Field(sa_type=EnumString(OxygenWhat, 16))
    place: str = Field(max_length=100)
    urgency: OxygenUrgency = Field(sa_type=EnumString(OxygenUrgency, 10))
    status: OxygenStatus = Field(default=OxygenStatus.OPEN, sa_type=EnumString(OxygenStatus, 14))
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    acknowledged_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    acknowledged_by: int | None = None  # person id of the duty officer or admin
    delivered_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    delivered_by: int | None = None
    escalated_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    closed_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class OxygenEvent(SQLModel, table=True):
    """The status timeline of a request (created, acknowledged, escalated, delivered...)."""

    __tablename__ = "oxygen_event"

    id: int | None = Field(default=None, primary_key=True)
    request_id: int = Field(foreign_key="oxygen_request.id", index=True, ondelete="CASCADE")
    at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    event: str = Field(max_length=16)  # an OxygenStatus value, or "escalated"
    actor_person_id: int | None = None
