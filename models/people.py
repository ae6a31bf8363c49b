"""People, their consents, emergency contacts, duty areas and invitations."""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum

from sqlalchemy import BigInteger, Column, Index, UniqueConstraint, text
from sqlmodel import Field, SQLModel

from models.types import EnumString, UTCDateTime, utcnow


class Role(StrEnum):
    CADRE = "cadre"
    DUTY_OFFICER = "duty_officer"
    ADMIN = "admin"
    CONTACT = "contact"  # a cadre's emergency contact: told of that cadre's alerts, nothing else


class Status(StrEnum):
    PENDING = "pending"
    ACTIVE = "active"
    SUSPENDED = "suspended"
    REJECTED = "rejected"
    # Imported from a roster (services/roster_import.py): no Telegram account yet; becomes
    # active when they /start and share a matching phone (docs/board.md).
    EXPECTED = "expected"
    # Someone who never registered and called for help: a minimal row (their Telegram name,
    # what they gave the form so far) that owns the unverified alert; registering turns it
    # into a pending person, /deleteme erases it. Never a member: see services.people.find.
    GUEST = "guest"


class AltitudeSource(StrEnum):
    COUNTY = "county"
    SELF = "self"
    ADMIN = "admin"


# What the area pages read of a person besides the prefecture and id (ix_person_active):
# whether they are due to check in today and their care schedule, and their name.
AREA_COLUMNS = (
    "role",
    "county",
    "created_at",
    "assignment_start",
    "assignment_end",
    "posting_altitude_m",
    "real_name",
    "display_name",
    "telegram_id",
)


class Person(SQLModel, table=True):
    __table_args__ = (
        # The active people of a prefecture in id order, with every column the area pages
        # read (the board's Today and Overdue, /today, /overdue): they count and page an
        # area of tens of thousands from this index alone on PostgreSQL (migration 0015).
        Index(
            "ix_person_active",
            "prefecture",
            "id",
            postgresql_include=list(AREA_COLUMNS),
            postgresql_where=text("status = 'active'"),
            sqlite_where=text("status = 'active'"),
        ),
        # /people and the board's people list, newest first, a page at a time, and its
        # counts by status (of a prefecture) from the index alone
        Index("ix_person_listed", "created_at", "id"),
        Index("ix_person_status", "status", "prefecture"),
    )

    id: int | None = Field(default=None, primary_key=True)
    # None only for an *expected* person (imported, not yet joined).
    telegram_id: int = Field(sa_column=Column(BigInteger, unique=True, nullable=True))
    display_name: str = Field(default="", max_length=200)
    real_name: str | None = Field(default=None, max_length=100)
    phone: str | None = Field(default=None, max_length=32, index=True)
    language: str = Field(default="zh-Hans", max_length=10)
    role: Role = Field(default=Role.CADRE, sa_type=EnumString(Role, 20))
    status: Status = Field(default=Status.PENDING, sa_type=EnumString(Status, 20))
    home_unit: str | None = Field(default=None, max_length=200)
    prefecture: str | None = Field(default=None, max_length=24, index=True)
    county: str | None = Field(default=None, max_length=24)
    posting_altitude_m: int | None = None
    altitude_source: AltitudeSource | None = Field(
        default=None, sa_type=EnumString(AltitudeSource, 10)
    )
    assignment_start: date | None = None
    assignment_end: date | None = None
    invitation_id: int | None = Field(
        default=None, foreign_key="invitation.id", ondelete="SET NULL"
    )
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    # Set by the delivery engine when Telegram refuses every message (blocked, deactivated):
    # since when, and why (an OutcomeCode). Cleared when a message gets through again.
    unreachable_since: datetime | None = Field(default=None, sa_type=UTCDateTime)
    unreachable_reason: str | None = Field(default=None, max_length=20)
    # A number for alert texts by SMS (docs/emergency.md), set by the person themselves
    # with /sms (their consent, and when it was given); null: no SMS.
    sms_phone: str | None = Field(default=None, max_length=32)
    sms_consented_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class Consent(SQLModel, table=True):
    """A consent given (and possibly withdrawn), with the version of the text shown."""

    id: int | None = Field(default=None, primary_key=True)
    person_id: int = Field(foreign_key="person.id", index=True, ondelete="CASCADE")
    purpose: str = Field(max_length=40)
    text_version: str = Field(max_length=20)
    language: str = Field(max_length=10)
    given_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    withdrawn_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class EmergencyContact(SQLModel, table=True):
    __tablename__ = "emergency_contact"

    id: int | None = Field(default=None, primary_key=True)
    person_id: int = Field(foreign_key="person.id", index=True, ondelete="CASCADE")
    name: str = Field(max_length=100)
    phone: str = Field(max_length=32)
    relation: str | None = Field(default=None, max_length=50)
    telegram_id: int | None = Field(default=None, sa_column=Column(BigInteger, nullable=True))
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class DutyArea(SQLModel, table=True):
    """A prefecture a duty officer is responsible for."""

    __tablename__ = "duty_area"
    __table_args__ = (UniqueConstraint("person_id", "prefecture"),)

    id: int | None = Field(default=None, primary_key=True)
    person_id: int = Field(foreign_key="person.id", index=True, ondelete="CASCADE")
    prefecture: str = Field(max_length=24, index=True)


class Invitation(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    code: str = Field(max_length=32, unique=True, index=True)
    role: Role = Field(sa_type=EnumString(Role, 20))
    created_by: int = Field(sa_column=Column(BigInteger, nullable=False))
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    expires_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    max_uses: int | None = None
    uses: int = 0
    revoked: bool = False
