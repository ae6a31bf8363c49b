"""SQLModel tables. Importing this package registers every table on SQLModel.metadata."""

from models.audit import AuditEntry
from models.knowledge import HandoffStatus, KbDocument, KbHandoff, KbQuestion
from models.outbox import OutboxMessage, OutboxStatus, Priority
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
    "AltitudeSource",
    "AuditEntry",
    "BotState",
    "Consent",
    "DutyArea",
    "EmergencyContact",
    "HandoffStatus",
    "Invitation",
    "KbDocument",
    "KbHandoff",
    "KbQuestion",
    "OutboxMessage",
    "OutboxStatus",
    "Person",
    "Priority",
    "Role",
    "Status",
]
