"""Care schedules: reading and writing the care_item rows and the people's facts they are
computed from (without the ORM where the reminder pass reads thousands of them).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import bindparam
from sqlalchemy import select as sa_select
from sqlalchemy import update as sa_update
from sqlmodel import Session, col, select

from models import CareItem, CareKind, CareProfile, Person, Role, Status
from services import clock
from services.care.rules import ItemRow, PersonFacts
from services.db import insert_ignoring_existing

# ---------------------------------------------------------------------------- loading


def facts_query() -> Any:
    return select(  # type: ignore[call-overload,misc]
        Person.id,
        Person.telegram_id,
        Person.language,
        Person.real_name,
        Person.display_name,
        Person.prefecture,
        Person.county,
        Person.posting_altitude_m,
        Person.assignment_start,
        Person.assignment_end,
    ).where(
        Person.status == Status.ACTIVE,
        Person.role != Role.CONTACT,
        col(Person.assignment_start).is_not(None),
        col(Person.posting_altitude_m).is_not(None),
    )


def person_facts(row: Sequence[Any]) -> PersonFacts:
    pid, tid, lang, real, display, pref, county, alt, start, end = row
    return PersonFacts(pid, tid, lang, real or display or str(tid), pref, county, alt, start, end)


def items_by_person(
    session: Session, person_ids: Iterable[int] | None = None
) -> dict[int, dict[CareKind, CareItem]]:
    query = select(CareItem)
    if person_ids is not None:
        query = query.where(col(CareItem.person_id).in_(list(person_ids)))
    found: dict[int, dict[CareKind, CareItem]] = {}
    for item in session.exec(query):
        found.setdefault(item.person_id, {})[CareKind(item.kind)] = item
    return found


def care_profiles(
    session: Session, person_ids: Iterable[int] | None = None
) -> dict[int, CareProfile]:
    query = select(CareProfile)
    if person_ids is not None:
        query = query.where(col(CareProfile.person_id).in_(list(person_ids)))
    return {p.person_id: p for p in session.exec(query)}


ITEM_TABLE = CareItem.__table__  # type: ignore[attr-defined]
ROW_COLUMNS = (
    "id",
    "person_id",
    "kind",
    "last_done",
    "override_due",
    "booked_for",
    "snoozed_until",
    "changed_at",
    "reminded_until",
    "escalated_due",
)


def item_rows(
    session: Session, person_ids: Iterable[int] | None = None
) -> dict[int, dict[CareKind, ItemRow]]:
    query = sa_select(*(ITEM_TABLE.c[name] for name in ROW_COLUMNS))
    if person_ids is not None:
        query = query.where(ITEM_TABLE.c.person_id.in_(list(person_ids)))
    found: dict[int, dict[CareKind, ItemRow]] = {}
    kinds = {kind.value: kind for kind in CareKind}
    for values in session.execute(query):
        row = ItemRow(*values)
        row.kind = kinds[row.kind]
        found.setdefault(row.person_id, {})[row.kind] = row
    return found


def save_watermarks(session: Session, rows: Iterable[ItemRow]) -> None:
    """Only the pass's own columns, so that a concurrent Done or Booked is never undone."""
    changed = [
        {"b_id": r.id, "b_until": r.reminded_until, "b_escalated": r.escalated_due}
        for r in rows
        if r.dirty
    ]
    if changed:
        session.execute(
            sa_update(ITEM_TABLE)
            .where(ITEM_TABLE.c.id == bindparam("b_id"))
            .values(
                reminded_until=bindparam("b_until", type_=ITEM_TABLE.c.reminded_until.type),
                escalated_due=bindparam("b_escalated", type_=ITEM_TABLE.c.escalated_due.type),
            ),
            changed,
        )


def create_items(session: Session, wanted: Iterable[tuple[int, CareKind]]) -> None:
    """Create item rows that do not exist yet. INSERT ... ON CONFLICT DO NOTHING: a pass
    and a person's /schedule may create the same row at the same moment; neither fails."""
    rows: list[dict[str, object]] = [
        {"person_id": pid, "kind": kind.value, "created_at": clock.now()} for pid, kind in wanted
    ]
    if not rows:
        return
    insert_ignoring_existing(session, ITEM_TABLE, rows, ["person_id", "kind"])


def ensure_item(
    session: Session, person_id: int, kind: CareKind, items: dict[CareKind, CareItem]
) -> CareItem:
    item = items.get(kind)
    if item is None:
        create_items(session, [(person_id, kind)])
        item = session.exec(
            select(CareItem).where(CareItem.person_id == person_id, CareItem.kind == kind)
        ).one()
        items[kind] = item
    return item
