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
from models.channels import Channel, DutyGroup
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
]
