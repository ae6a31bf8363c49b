"""Health check-ins: every reading of a check-in, reminder preferences and pauses, and the
days on which a person's duty officer was told that they had not checked in."""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, Column, Index, UniqueConstraint, text
from sqlmodel import Field, SQLModel

from models.types import EnumString, UTCDateTime, utcnow


class Tier(StrEnum):
    GREEN = "green"
    AMBER = "amber"
    RED = "red"


class Feeling(StrEnum):
    FINE = "fine"
    NOT_WELL = "not_well"
    UNWELL = "unwell"


# The red-flag questions, in the order they are shown (HACE, then HAPE signs; health.md).
RED_FLAGS: tuple[str, ...] = (
    "confused",  # confused, irrational or unusually drowsy
    "ataxia",  # cannot walk heel-to-toe in a straight line
    "breathless_rest",  # breathless at rest
    "sputum",  # frothy or pink sputum
    "chest_pain",  # chest pain or tightness
    "headache_vomiting",  # severe headache with non-stop vomiting
)


class CheckIn(SQLModel, table=True):
    """One health check-in with every reading (detailed readings: deleted after the
    retention period that follows the end of the assignment)."""

    __tablename__ = "health_checkin"
    __table_args__ = (
        Index("ix_health_checkin_person_at", "person_id", "at"),
        # A day's check-ins, each person's latest first, with its tier: the area reports
        # rank a day's check-ins from this index alone, without a sort (migration 0015).
        Index(
            "ix_health_checkin_day",
            "local_date",
            "person_id",
            text("at DESC"),
            text("id DESC"),
            postgresql_include=["tier"],
        ),
        # the few check-ins that repeat earlier days' readings (/today, exports)
        Index(
            "ix_health_checkin_repeats",
            "local_date",
            postgresql_where=text("identical_days_before > 0"),
            sqlite_where=text("identical_days_before > 0"),
        ),
    )

    id: int | None = Field(default=None, primary_key=True)
    person_id: int = Field(foreign_key="person.id", ondelete="CASCADE")
    at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    local_date: date
    feeling: str | None = Field(default=None, max_length=10)
    red_flags: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    cough_or_breathless: bool | None = None
    headache: int | None = None
    gi: int | None = None
    fatigue: int | None = None
    dizziness: int | None = None
    functional: int | None = None
    lls_total: int | None = None
    spo2: int | None = None
    no_oximeter: bool = False
    heart_rate: int | None = None
    temperature_c: float | None = None
    systolic: int | None = None
    diastolic: int | None = None
    systolic_2: int | None = None
    diastolic_2: int | None = None
    note: str | None = Field(default=None, max_length=300)
    altitude_m: int | None = None
    tier: Tier = Field(default=Tier.GREEN, sa_type=EnumString(Tier, 8))
    reasons: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    ams: bool = False
    complete: bool = True  # False when a red flag ended the form before the readings
    # How many days in a row, just before this one, ended with a check-in whose readings
    # (vitals()) were identical to these; 0 without readings. Written once, at submit.
    identical_days_before: int = Field(default=0, sa_column_kwargs={"server_default": "0"})

    def vitals(self) -> tuple[Any, ...]:
        """The self-reported measurements, for spotting identical readings day after day."""
        return (self.spo2, self.heart_rate, self.temperature_c, self.systolic, self.diastolic)


class ReminderPreference(SQLModel, table=True):
    """When a person wants the daily reminder, and a pause (leave, low altitude)."""

    __tablename__ = "health_reminder"

    person_id: int = Field(foreign_key="person.id", primary_key=True, ondelete="CASCADE")
    local_time: str | None = Field(default=None, max_length=5)  # "HH:MM"; None = the default
    paused_from: date | None = None
    paused_until: date | None = None  # inclusive
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class MissedCheckin(SQLModel, table=True):
    """A day without a check-in by the cut-off, of which the duty officers were told once."""

    __tablename__ = "health_missed_day"
    __table_args__ = (UniqueConstraint("person_id", "local_date", name="uq_health_missed_day"),)

    id: int | None = Field(default=None, primary_key=True)
    person_id: int = Field(foreign_key="person.id", index=True, ondelete="CASCADE")
    local_date: date = Field(index=True)
    notified_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
