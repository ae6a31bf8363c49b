"""Duty channels: the officers' SMS numbers (given with /sms, their consent), checked and
filled into the gateway's request template (CADRE_SMS_URL).
"""

from __future__ import annotations

import json

from sqlmodel import Session

from models import Person, Role, Status
from services import audit, clock
from services.duty_channels.groups import national_number
from services.validation import InvalidInput, parse_phone

SMS_ROLES = (Role.DUTY_OFFICER, Role.ADMIN)  # the people alerts are sent to for action


# ---------------------------------------------------------------------------- SMS numbers


def may_have_sms(person: Person) -> bool:
    return person.status == Status.ACTIVE and person.role in SMS_ROLES


def set_sms(session: Session, person: Person, raw: str) -> Person:
    """The person's own number for alert texts (their consent, timestamped). Raises
    InvalidInput for a number that is not one."""
    phone = parse_phone(raw)
    person = session.get(Person, person.id) or person
    person.sms_phone = phone
    person.sms_consented_at = clock.now()
    session.add(person)
    audit.record(session, "sms.set", actor=person.telegram_id, target_person_id=person.id)
    return person


def clear_sms(session: Session, person: Person) -> Person:
    person = session.get(Person, person.id) or person
    person.sms_phone = None
    person.sms_consented_at = None
    session.add(person)
    audit.record(session, "sms.cleared", actor=person.telegram_id, target_person_id=person.id)
    return person


def sms_body(template: str, phone: str, text: str) -> tuple[str, str]:
    """The SMS gateway's request body and its content type: a JSON template gets its
    values JSON-escaped, anything else is taken as form fields (values URL-encoded)."""
    from urllib.parse import quote_plus

    values = {"{phone}": phone, "{phone_national}": national_number(phone), "{text}": text}
    probe = template
    for placeholder in values:
        probe = probe.replace(placeholder, "x")
    try:
        json.loads(probe)
        is_json = True
    except ValueError:
        is_json = False
    body = template
    for placeholder, value in values.items():
        escaped = json.dumps(value, ensure_ascii=False)[1:-1] if is_json else quote_plus(value)
        body = body.replace(placeholder, escaped)
    kind = "application/json" if is_json else "application/x-www-form-urlencoded"
    return body, kind


def invalid_phone_key(raw: str) -> str | None:
    try:
        parse_phone(raw)
    except InvalidInput as exc:
        return exc.key
    return None
