"""Personal data stays in private chats, edits never act, and /mydata exports without
warnings (issue 13). Group, supergroup and channel chats through the emulator; the gate is
bot/app.py's first handler group (handlers/privacy.py)."""

from __future__ import annotations

import json
import warnings

from sqlmodel import select

from models import Alert, CheckIn, Person, Role, Status, Tier
from services import own_data
from services.health import checkins
from tests.test_checkin_helpers import CONFIG, make_person
from tests.test_health_checkins import AMBER, RED

# ------------------------------------------------------------------ /mydata's warnings


def test_the_export_of_a_person_with_check_ins_and_an_alert_raises_no_warning(db):
    """Enum columns come back as their enums, so model_dump has nothing to warn about
    (it wrote PydanticSerializationUnexpectedValue to the log at every /mydata)."""
    person = make_person(db, 1001)
    db.call(checkins.submit, person.id, AMBER, config=CONFIG)
    db.call(checkins.submit, person.id, RED, config=CONFIG)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        data = db.call(own_data.export, 1001)
    json.dumps(data)
    assert data["person"]["role"] == "cadre" and data["person"]["status"] == "active"
    tiers = {c["tier"] for c in data["health_check_ins"]["check_ins"]}
    assert tiers == {"amber", "red"}
    with db.session() as session:
        stored = session.exec(select(Person).where(Person.telegram_id == 1001)).one()
        assert type(stored.role) is Role and type(stored.status) is Status
        assert {type(c.tier) for c in session.exec(select(CheckIn))} == {Tier}
        assert session.exec(select(Alert)).first() is not None
