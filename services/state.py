"""Small JSON documents kept in the database (conversation states, form drafts)."""

from __future__ import annotations

from typing import Any

from sqlmodel import Session, select

from models import BotState
from services import clock


def load_all(session: Session, kind: str) -> dict[str, Any]:
    rows = session.exec(select(BotState).where(BotState.kind == kind))
    return {row.key: row.data for row in rows}


def put(session: Session, kind: str, key: str, data: Any) -> None:
    row = session.get(BotState, (kind, key))
    if data is None:
        if row is not None:
            session.delete(row)
        return
    if row is None:
        row = BotState(kind=kind, key=key)
    row.data = data
    row.updated_at = clock.now()
    session.add(row)


def drop(session: Session, kind: str, key: str) -> None:
    put(session, kind, key, None)
