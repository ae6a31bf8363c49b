"""Small JSON documents kept in the database (conversation states, form drafts)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import delete, tuple_
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlmodel import Session, select

from models import BotState
from services import clock


def load_all(session: Session, kind: str) -> dict[str, Any]:
    rows = session.exec(select(BotState).where(BotState.kind == kind))
    return {row.key: row.data for row in rows}


def get(session: Session, kind: str, key: str) -> Any:
    row = session.get(BotState, (kind, key))
    return row.data if row is not None else None


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


CHUNK = 500  # keys per DELETE statement


def put_many(session: Session, rows: dict[tuple[str, str], Any]) -> None:
    """Write many documents ({(kind, key): data, or None to delete}) with few statements:
    one upsert run for all the written ones (its compiled form is cached, whatever their
    number), deletes for the others."""
    table = BotState.__table__  # type: ignore[attr-defined]
    now = clock.now()
    written = [
        {"kind": kind, "key": key, "data": data, "updated_at": now}
        for (kind, key), data in rows.items()
        if data is not None
    ]
    deleted = [row for row, data in rows.items() if data is None]
    dialect = session.get_bind().dialect.name
    if written and dialect in ("sqlite", "postgresql"):
        insert = sqlite_insert(table) if dialect == "sqlite" else postgresql_insert(table)
        upsert = insert.on_conflict_do_update(
            index_elements=[table.c.kind, table.c.key],
            set_={"data": insert.excluded.data, "updated_at": insert.excluded.updated_at},
        )
        session.execute(upsert, written)
    else:
        for row in written:
            put(session, row["kind"], row["key"], row["data"])
    for start in range(0, len(deleted), CHUNK):
        keys = deleted[start : start + CHUNK]
        session.execute(delete(table).where(tuple_(table.c.kind, table.c.key).in_(keys)))
