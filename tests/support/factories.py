"""People for tests, created through the services (fast, no conversation)."""

from __future__ import annotations

from typing import Any

from models import Person, Role
from services import people
from services.db import Database
from services.people import Draft

ADMIN_ID = 9001


def draft(**overrides: Any) -> Draft:
    values: dict[str, Any] = dict(
        language="en",
        consent_version=people.CONSENT_VERSION,
        real_name="Li Wei",
        phone="+8613800138000",
        home_unit="Hangzhou Health Commission",
        prefecture="ganzi",
        county="ganzi.litang",
        posting_altitude_m=4014,
        altitude_source="county",
        assignment_start="2026-03-01",
        assignment_end="2027-03-01",
        contact_name="Wang Fang",
        contact_phone="+8613900139000",
    )
    values.update(overrides)
    return Draft(**values)


def admin(db: Database, telegram_id: int = ADMIN_ID) -> Person:
    db.call(people.ensure_admins, [telegram_id], "zh-Hans")
    found = db.call(people.find, telegram_id)
    assert found is not None
    return found


def person(
    db: Database,
    telegram_id: int = 1001,
    *,
    approve: bool = True,
    role: Role = Role.CADRE,
    display_name: str = "Li",
    **overrides: Any,
) -> Person:
    """A registered person (active unless approve=False), with the given role."""
    created = db.call(people.submit_registration, telegram_id, display_name, draft(**overrides))
    if not approve:
        return created
    approver = admin(db)
    approved = db.call(people.decide, approver, created.id, True)
    assert approved is not None
    if role != Role.CADRE:
        approved = db.call(people.set_role, approver, created.id, role)
    return approved
