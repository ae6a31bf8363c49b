"""A person's right to a copy of their data (PIPL art. 45): everything, from every feature.

Each feature that stores personal data contributes one exporter here; /mydata sends the
result. Deletion (/deleteme) relies on the foreign keys' ON DELETE CASCADE for the
person's own rows, so a new table that references person.id must declare it, and on
services/erasure.py for the copies elsewhere (messages, alerts, audit details): a feature
that copies personal data into another table or into a message's text adds it there.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlmodel import Session

from services import broadcasts, people
from services.alerts import timeline
from services.care import records
from services.health import checkins
from services.kb import questions as kb_questions

Exporter = Callable[[Session, int], dict[str, Any]]

EXPORTERS: dict[str, Exporter] = {
    "health_check_ins": lambda session, person_id: {
        "check_ins": checkins.export_own(session, person_id)
    },
    "care_schedules": records.export_for_person,
    "alerts": timeline.export_for_person,
    "policy_questions": kb_questions.export_for_person,
    "broadcasts_and_messages": broadcasts.export_for_person,
}


def export(session: Session, telegram_id: int) -> dict[str, Any] | None:
    data = people.export_own_data(session, telegram_id)
    if data is None:
        return None
    person_id = data["person"]["id"]
    for name, exporter in EXPORTERS.items():
        data[name] = exporter(session, person_id)
    return data
