"""SQLModel tables. Importing this package registers every table on SQLModel.metadata."""

from models.alerts import (
    Alert,
    AlertEvent,
    AlertRecipient,
    AlertStatus,
    ContactLink,
    DirectoryEntry,
    DutyShift,
    OnDuty,
)
from models.audit import AuditEntry
from models.broadcasts import Audience, Broadcast, BroadcastRecipient, BroadcastStatus, PersonTag
from models.care import (
    CareItem,
    CareKind,
    CarePolicyBand,
    CareProfile,
    CareRecord,
    CareRecordKind,
    OxygenEvent,
    OxygenRequest,
    OxygenStatus,
    OxygenUrgency,
    OxygenWhat,
)
from models.duty_channels import Channel, DutyGroup
from models.ha import HaLeader, UpdateInbox
from models.health import CheckIn, MissedCheckin, ReminderPreference, Tier
from models.knowledge import HandoffStatus, KbDocument, KbHandoff, KbQuestion
from models.outbox import OutboxMessage, OutboxStatus, OutcomeCode, Priority
from models.people import (
    AltitudeSource,
    Consent,
    DutyArea,
    EmergencyContact,
    Invitation,
    Person,
    Role,
    Status,
)
from models.state import BotState


def _ids_never_reused() -> None:
    """SQLite reuses the highest id after a delete ("SOS alert 1" again, for someone else)
    unless the table is AUTOINCREMENT: every table with one integer id is (PostgreSQL
    sequences never go back). Migration 0011 rebuilt the existing tables that way."""
    from sqlalchemy import Integer
    from sqlmodel import SQLModel

    for table in SQLModel.metadata.tables.values():
        key = list(table.primary_key.columns)
        if len(key) == 1 and isinstance(key[0].type, Integer) and not key[0].foreign_keys:
            table.dialect_kwargs["sqlite_autoincrement"] = True


_ids_never_reused()

__all__ = [
    "Alert",
    "AlertEvent",
    "AlertRecipient",
    "AlertStatus",
    "AltitudeSource",
    "Audience",
    "AuditEntry",
    "BotState",
    "Broadcast",
    "BroadcastRecipient",
    "BroadcastStatus",
    "CareItem",
    "CareKind",
    "CarePolicyBand",
    "CareProfile",
    "CareRecord",
    "CareRecordKind",
    "Channel",
    "CheckIn",
    "Consent",
    "ContactLink",
    "DirectoryEntry",
    "DutyArea",
    "DutyGroup",
    "DutyShift",
    "EmergencyContact",
    "HaLeader",
    "HandoffStatus",
    "Invitation",
    "KbDocument",
    "KbHandoff",
    "KbQuestion",
    "MissedCheckin",
    "OnDuty",
    "OutboxMessage",
    "OutboxStatus",
    "OutcomeCode",
    "OxygenEvent",
    "OxygenRequest",
    "OxygenStatus",
    "OxygenUrgency",
    "OxygenWhat",
    "Person",
    "PersonTag",
    "Priority",
    "ReminderPreference",
    "Role",
    "Status",
    "Tier",
    "UpdateInbox",
]
