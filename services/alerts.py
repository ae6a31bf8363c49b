"""Alerts: SOS and red-flag health results reaching a human (Emergency channel issue).

Contract used by other features (implemented by the Emergency channel work):
    raise_alert(session, *, person_id, cause, reasons=None) -> int   # the alert id
cause is "sos" or "checkin_red"; reasons are catalog keys explaining a red result.
The alert is stored, its first-tier messages are queued at emergency priority in the same
transaction, and escalation timers start. The caller wakes the delivery worker.
"""

from __future__ import annotations

from sqlmodel import Session


def raise_alert(
    session: Session, *, person_id: int, cause: str, reasons: list[str] | None = None
) -> int:
    raise NotImplementedError("the Emergency channel is being built")
