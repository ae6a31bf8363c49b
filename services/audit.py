"""Writing to the append-only audit log."""

from __future__ import annotations

from typing import Any

from sqlmodel import Session

from models import AuditEntry
from services import clock


def record(
    session: Session,
    action: str,
    *,
    actor: int | None,
    target_person_id: int | None = None,
    outcome: str = "ok",
    **detail: Any,
) -> None:
    """Append an audit entry. `detail` must never hold health readings or contact data."""
    session.add(
        AuditEntry(
            at=clock.now(),
            actor_telegram_id=actor,
            action=action,
            outcome=outcome,
            target_person_id=target_person_id,
            detail=detail,
        )
    )
