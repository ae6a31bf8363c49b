"""People: registration, approval, admin actions, and each person's own data."""

from __future__ import annotations

import secrets
from dataclasses import asdict, dataclass, field
from datetime import date, timedelta
from typing import TYPE_CHECKING, Any

from sqlmodel import Session, col, delete, func, or_, select

from models import (
    AltitudeSource,
    AuditEntry,
    Consent,
    DutyArea,
    EmergencyContact,
    Invitation,
    Person,
    Role,
    Status,
)
from services import audit, clock, state
from services.i18n import t
from services.postings import load_postings

if TYPE_CHECKING:
    from services.erasure import Erased

CONSENT_PURPOSE = "health_data"
CONTACT_CONSENT_PURPOSE = "emergency_contact"  # a cadre's contact: name and phone only
CONSENT_VERSION = "2026-11-v1"
PAGE_SIZE = 8


@dataclass
class Draft:
    """What a person has entered so far in the registration form (kept between restarts)."""

    language: str | None = None
    consent_version: str | None = None
    real_name: str | None = None
    phone: str | None = None
    home_unit: str | None = None
    prefecture: str | None = None
    county: str | None = None
    posting_altitude_m: int | None = None
    altitude_source: str | None = None
    assignment_start: str | None = None
    assignment_end: str | None = None
    contact_name: str | None = None
    contact_phone: str | None = None
    invitation: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> Draft:
        known = {k: v for k, v in (data or {}).items() if k in cls.__dataclass_fields__}
        return cls(**known)


class RegistrationError(Exception):
    def __init__(self, key: str) -> None:
        super().__init__(key)
        self.key = key


def find(session: Session, telegram_id: int) -> Person | None:
    """The registered person (whatever their status); a guest who only called for help is
    not one, so everything but the emergency channel treats them as unregistered."""
    person = find_caller(session, telegram_id)
    return None if person is None or person.status == Status.GUEST else person


def find_caller(session: Session, telegram_id: int) -> Person | None:
    """Anyone known by this Telegram id, a guest who called for help included."""
    return session.exec(select(Person).where(Person.telegram_id == telegram_id)).first()


GUEST_FIELDS = ("real_name", "phone", "home_unit", "prefecture", "county", "posting_altitude_m")


def record_caller(
    session: Session, telegram_id: int, display_name: str, language: str, draft: Draft | None
) -> Person:
    """Who is calling for help: the registered person, or else a guest row (status
    ``guest``) with their Telegram name and what they gave the registration form so far,
    kept up to date at each call. The row owns their alerts, so /deleteme finds them
    (PIPL art. 13: protecting life and health needs no consent; art. 47: deletion)."""
    person = find_caller(session, telegram_id)
    if person is not None and person.status != Status.GUEST:
        return person
    new = person is None
    if person is None:
        person = Person(telegram_id=telegram_id, role=Role.CADRE, status=Status.GUEST)
    person.display_name = display_name[:200]
    person.language = language
    for name in GUEST_FIELDS:
        value = getattr(draft, name, None) if draft is not None else None
        if value:
            setattr(person, name, value)
    person.updated_at = clock.now()
    session.add(person)
    session.flush()
    if new:
        audit.record(session, "guest.recorded", actor=telegram_id, target_person_id=person.id)
    return person


def get(session: Session, person_id: int) -> Person | None:
    return session.get(Person, person_id)


def admins(session: Session) -> list[Person]:
    query = select(Person).where(Person.role == Role.ADMIN, Person.status == Status.ACTIVE)
    return list(session.exec(query))


# People whose language nobody chose yet (admins from CADRE_ADMIN_IDS): their Telegram
# app's language decides until they pick one with /language (BotState kind, key: the id).
LANGUAGE_UNCHOSEN = "language_unchosen"


def ensure_admins(session: Session, telegram_ids: list[int], language: str) -> None:
    """Bootstrap: the ids in CADRE_ADMIN_IDS are active admins from the first start. A new
    one speaks `language` until their Telegram language is known (follow_telegram_language)."""
    for telegram_id in telegram_ids:
        person = find_caller(session, telegram_id)  # a guest who called for help too
        if person is None:
            person = Person(telegram_id=telegram_id, language=language)
            state.put(session, LANGUAGE_UNCHOSEN, str(telegram_id), True)
        elif person.role == Role.ADMIN and person.status == Status.ACTIVE:
            continue
        person.role = Role.ADMIN
        person.status = Status.ACTIVE
        person.updated_at = clock.now()
        session.add(person)
        session.flush()
        audit.record(session, "admin.bootstrap", actor=None, target_person_id=person.id)


def posting_altitude(prefecture: str | None, county: str | None) -> int | None:
    if not county:
        return None
    found = load_postings().county(county)
    return found.seat_elevation_m if found else None


def _check_posting(prefecture: str | None, county: str | None) -> None:
    postings = load_postings()
    found = postings.county(county) if county else None
    if found is None or found.prefecture_code != prefecture:
        raise RegistrationError("invalid.county")


def invitation_role(session: Session, code: str | None) -> Role | None:
    """The role a usable invitation gives, or None."""
    if not code or invitation_problem(session, code) is not None:
        return None
    invitation = session.exec(select(Invitation).where(Invitation.code == code)).first()
    return Role(invitation.role) if invitation else None


def invitation_problem(session: Session, code: str | None) -> str | None:
    """Why an invitation code cannot be used now (a catalog key), or None."""
    if not code:
        return None
    invitation = session.exec(select(Invitation).where(Invitation.code == code)).first()
    if invitation is None or invitation.revoked:
        return "invite.invalid"
    if invitation.expires_at and invitation.expires_at <= clock.now():
        return "invite.expired"
    if invitation.max_uses is not None and invitation.uses >= invitation.max_uses:
        return "invite.used_up"
    return None


def submit_registration(
    session: Session, telegram_id: int, display_name: str, draft: Draft
) -> Person:
    """Create the person from a complete draft: pending, or active when an invitation is used."""
    guest = find_caller(session, telegram_id)
    if guest is not None and guest.status != Status.GUEST:
        raise RegistrationError("reg.already_registered")
    as_contact = invitation_role(session, draft.invitation) == Role.CONTACT
    required = (draft.language, draft.consent_version, draft.real_name, draft.phone)
    if not all(required):
        raise RegistrationError("reg.incomplete")
    if not as_contact:
        if not (draft.home_unit and draft.contact_name and draft.contact_phone):
            raise RegistrationError("reg.incomplete")
        _check_posting(draft.prefecture, draft.county)
    now = clock.now()
    person = Person(
        telegram_id=telegram_id,
        display_name=display_name[:200],
        real_name=draft.real_name,
        phone=draft.phone,
        language=draft.language or "zh-Hans",
        home_unit=draft.home_unit,
        prefecture=draft.prefecture,
        county=draft.county,
        posting_altitude_m=draft.posting_altitude_m,
        altitude_source=AltitudeSource(draft.altitude_source) if draft.altitude_source else None,
        assignment_start=date.fromisoformat(draft.assignment_start)
        if draft.assignment_start
        else None,
        assignment_end=date.fromisoformat(draft.assignment_end) if draft.assignment_end else None,
        status=Status.PENDING,
        role=Role.CADRE,
        created_at=now,
        updated_at=now,
    )
    if guest is not None:  # they called for help before registering: their alerts stay theirs
        for name, value in person.model_dump(exclude={"id", "created_at"}).items():
            setattr(guest, name, value)
        person = guest
    problem = invitation_problem(session, draft.invitation)
    invitation = None
    if draft.invitation and problem is None:
        invitation = session.exec(
            select(Invitation).where(Invitation.code == draft.invitation)
        ).one()
        invitation.uses += 1
        session.add(invitation)
        person.role = Role(invitation.role)
        person.status = Status.ACTIVE
        person.invitation_id = invitation.id
    session.add(person)
    session.flush()
    assert person.id is not None
    session.add(
        Consent(
            person_id=person.id,
            purpose=CONTACT_CONSENT_PURPOSE if as_contact else CONSENT_PURPOSE,
            text_version=draft.consent_version or CONSENT_VERSION,
            language=person.language,
            given_at=now,
        )
    )
    if draft.contact_name and draft.contact_phone:
        session.add(
            EmergencyContact(
                person_id=person.id, name=draft.contact_name, phone=draft.contact_phone
            )
        )
    if person.role == Role.DUTY_OFFICER and person.prefecture:
        session.add(DutyArea(person_id=person.id, prefecture=person.prefecture))
    audit.record(
        session,
        "registration.submitted",
        actor=telegram_id,
        target_person_id=person.id,
        invitation=invitation.id if invitation else None,
    )
    if invitation:
        audit.record(
            session,
            "registration.approved",
            actor=None,
            target_person_id=person.id,
            via="invitation",
        )
    return person


def decide(session: Session, actor: Person, person_id: int, approve: bool) -> Person | None:
    """Approve or reject a pending registration. None when it was already decided."""
    person = session.get(Person, person_id)
    if person is None or person.status != Status.PENDING:
        return None
    person.status = Status.ACTIVE if approve else Status.REJECTED
    person.updated_at = clock.now()
    session.add(person)
    action = "registration.approved" if approve else "registration.rejected"
    audit.record(session, action, actor=actor.telegram_id, target_person_id=person.id)
    return person


def set_role(session: Session, actor: Person, person_id: int, role: Role) -> Person | None:
    person = session.get(Person, person_id)
    if person is None or person.status == Status.EXPECTED:  # not joined yet
        return None
    if person.id == actor.id and role != Role.ADMIN:
        raise RegistrationError("people.cannot_demote_self")
    person.role = role
    person.updated_at = clock.now()
    session.add(person)
    if role == Role.DUTY_OFFICER and person.prefecture:
        exists = session.exec(
            select(DutyArea).where(
                DutyArea.person_id == person.id, DutyArea.prefecture == person.prefecture
            )
        ).first()
        if not exists:
            assert person.id is not None
            session.add(DutyArea(person_id=person.id, prefecture=person.prefecture))
    audit.record(
        session, "person.role", actor=actor.telegram_id, target_person_id=person.id, role=str(role)
    )
    return person


def set_status(session: Session, actor: Person, person_id: int, status: Status) -> Person | None:
    person = session.get(Person, person_id)
    if person is None or person.status == Status.EXPECTED:  # not joined yet
        return None
    if person.id == actor.id:
        raise RegistrationError("people.cannot_suspend_self")
    person.status = status
    person.updated_at = clock.now()
    session.add(person)
    audit.record(session, f"person.{status}", actor=actor.telegram_id, target_person_id=person.id)
    return person


def set_altitude(session: Session, actor: Person, person_id: int, altitude_m: int) -> Person | None:
    person = session.get(Person, person_id)
    if person is None:
        return None
    person.posting_altitude_m = altitude_m
    person.altitude_source = AltitudeSource.ADMIN
    person.updated_at = clock.now()
    session.add(person)
    audit.record(session, "person.altitude", actor=actor.telegram_id, target_person_id=person.id)
    return person


def toggle_duty_area(
    session: Session, actor: Person, person_id: int, prefecture: str
) -> list[str] | None:
    person = session.get(Person, person_id)
    if person is None or load_postings().prefecture(prefecture) is None:
        return None
    existing = session.exec(
        select(DutyArea).where(DutyArea.person_id == person_id, DutyArea.prefecture == prefecture)
    ).first()
    if existing:
        session.delete(existing)
    else:
        session.add(DutyArea(person_id=person_id, prefecture=prefecture))
    session.flush()
    audit.record(
        session,
        "person.duty_area",
        actor=actor.telegram_id,
        target_person_id=person_id,
        prefecture=prefecture,
        added=existing is None,
    )
    return duty_areas(session, person_id)


def duty_areas(session: Session, person_id: int) -> list[str]:
    rows = session.exec(select(DutyArea.prefecture).where(DutyArea.person_id == person_id))
    return sorted(rows)


def update_profile(session: Session, telegram_id: int, **changes: Any) -> Person | None:
    """Change one's own profile fields (already validated by the caller's parsers)."""
    allowed = {
        "real_name",
        "phone",
        "home_unit",
        "language",
        "prefecture",
        "county",
        "posting_altitude_m",
        "altitude_source",
        "assignment_start",
        "assignment_end",
    }
    person = find(session, telegram_id)
    if person is None:
        return None
    unknown = set(changes) - allowed
    if unknown:
        raise ValueError(f"not editable: {sorted(unknown)}")
    if "county" in changes:
        _check_posting(changes.get("prefecture", person.prefecture), changes["county"])
    for name, value in changes.items():
        setattr(person, name, value)
    person.updated_at = clock.now()
    session.add(person)
    audit.record(
        session,
        "profile.updated",
        actor=telegram_id,
        target_person_id=person.id,
        fields=sorted(changes),
    )
    return person


def set_language(session: Session, telegram_id: int, language: str) -> Person | None:
    """The language a person chose; it is theirs from now on, whatever Telegram says."""
    person = find(session, telegram_id)
    if person is None:
        return None
    person.language = language
    session.add(person)
    state.drop(session, LANGUAGE_UNCHOSEN, str(telegram_id))
    return person


def language_unchosen(session: Session) -> set[int]:
    """The Telegram ids whose language follows their Telegram app (nobody chose one)."""
    return {int(key) for key in state.load_all(session, LANGUAGE_UNCHOSEN)}


def follow_telegram_language(session: Session, telegram_id: int, language: str) -> Person | None:
    """A person who never chose a language gets their Telegram app's; the person when
    that changed their language, else None (chose one, or already speaks it)."""
    if state.get(session, LANGUAGE_UNCHOSEN, str(telegram_id)) is None:
        return None
    person = find(session, telegram_id)
    if person is None or person.language == language:
        return None
    person.language = language
    session.add(person)
    return person


def emergency_contacts(session: Session, person_id: int) -> list[EmergencyContact]:
    query = select(EmergencyContact).where(EmergencyContact.person_id == person_id)
    return list(session.exec(query.order_by(col(EmergencyContact.id))))


def replace_contact(session: Session, telegram_id: int, name: str, phone: str) -> Person | None:
    person = find(session, telegram_id)
    if person is None or person.id is None:
        return None
    session.exec(delete(EmergencyContact).where(col(EmergencyContact.person_id) == person.id))
    session.add(EmergencyContact(person_id=person.id, name=name, phone=phone))
    audit.record(session, "profile.contact", actor=telegram_id, target_person_id=person.id)
    return person


@dataclass
class PeoplePage:
    people: list[Person]
    total: int
    page: int
    pages: int


def list_people(
    session: Session,
    status: str | None = None,
    prefecture: str | None = None,
    page: int = 0,
    page_size: int = PAGE_SIZE,
) -> PeoplePage:
    query = select(Person).where(Person.status != Status.GUEST)
    count = select(func.count()).select_from(Person).where(Person.status != Status.GUEST)
    if status:
        query = query.where(Person.status == status)
        count = count.where(Person.status == status)
    else:  # expected people (roster import) have not joined: listed by /import
        query = query.where(Person.status != Status.EXPECTED)
        count = count.where(Person.status != Status.EXPECTED)
    if prefecture:
        query = query.where(Person.prefecture == prefecture)
        count = count.where(Person.prefecture == prefecture)
    total = session.exec(count).one()
    pages = max(1, -(-total // page_size))
    page = min(max(page, 0), pages - 1)
    rows = session.exec(
        query.order_by(col(Person.created_at).desc(), col(Person.id).desc())
        .offset(page * page_size)
        .limit(page_size)
    )
    return PeoplePage(list(rows), total, page, pages)


def status_counts(session: Session, prefecture: str | None = None) -> dict[str, int]:
    """How many people /people lists under each status (in `prefecture`), and under "all":
    one GROUP BY on the status index. Guests and expected people are not members yet."""
    query = select(Person.status, func.count()).where(
        col(Person.status).not_in([Status.GUEST, Status.EXPECTED])
    )
    if prefecture:
        query = query.where(Person.prefecture == prefecture)
    counts = {str(status): count for status, count in session.exec(query.group_by(Person.status))}
    counts["all"] = sum(counts.values())
    return counts


NAME_MATCHES = 8  # at most this many people offered for a name typed in a command


def name_matches(text: str | None) -> Any | None:
    """The condition "the real name (or Telegram name) contains this part of a name typed
    by someone", case-insensitively (spaces folded, LIKE's wildcards left out), or None
    when nothing is left to look for."""
    needle = " ".join((text or "").split()).lower()
    cleaned = "".join(ch for ch in needle if ch not in "\\%_")  # no LIKE wildcards
    if not cleaned:
        return None
    pattern = f"%{cleaned}%"
    return or_(
        func.lower(col(Person.real_name)).like(pattern),
        func.lower(col(Person.display_name)).like(pattern),
    )


def search_by_name(session: Session, text: str, limit: int = NAME_MATCHES) -> list[Person]:
    """People whose real name (or Telegram name) contains `text`, case-insensitively (at
    most limit + 1: more means "too many"); a single exact real name wins. Expected people
    (not joined yet) are left out."""
    needle = " ".join(text.split()).lower()
    matches = name_matches(needle)
    if matches is None:
        return []
    rows = session.exec(
        select(Person)
        .where(Person.status != Status.EXPECTED, matches)
        .order_by(col(Person.id))
        .limit(limit + 1)
    )
    found = list(rows)
    exact = [p for p in found if (p.real_name or "").lower() == needle]
    return exact if len(exact) == 1 else found[: limit + 1]


def export_own_data(session: Session, telegram_id: int) -> dict[str, Any] | None:
    """Everything stored about a person, for /mydata (PIPL art. 45)."""
    person = find_caller(session, telegram_id)
    if person is None or person.id is None:
        return None
    consents = session.exec(select(Consent).where(Consent.person_id == person.id))
    audit.record(session, "data.exported", actor=telegram_id, target_person_id=person.id)
    return {
        "exported_at": clock.now().isoformat(),
        "person": person.model_dump(mode="json", exclude={"invitation_id"}),
        "duty_areas": duty_areas(session, person.id),
        "consents": [c.model_dump(mode="json") for c in consents],
        "emergency_contacts": [
            c.model_dump(mode="json", exclude={"person_id"})
            for c in emergency_contacts(session, person.id)
        ],
    }


def delete_own_data(session: Session, telegram_id: int) -> bool:
    """Erase a person and everything attached (PIPL art. 47). The audit log keeps a
    tombstone: the fact of deletion and the internal id, not the data. A guest who only
    called for help is erased the same way (their alerts go with the row)."""
    return erase_person(session, telegram_id) is not None


def erase_person(session: Session, telegram_id: int) -> Erased | None:
    """`delete_own_data`, returning what was redacted elsewhere (services.erasure): the
    copies in messages, alerts and audit details go first, then the person's own rows."""
    from services import erasure  # it reads every feature's tables

    person = find_caller(session, telegram_id)  # a guest who called for help too
    if person is None or person.id is None:
        return None
    person_id = person.id
    erased = erasure.erase(session, person)
    for table in (Consent, EmergencyContact, DutyArea):
        session.exec(delete(table).where(col(table.person_id) == person_id))
    session.delete(person)
    audit.record(
        session,
        "person.deleted",
        actor=None,
        target_person_id=person_id,
        alerts_redacted=len(erased.alerts),
        messages_cleared=erased.outbox_cleared,
        messages_redacted=erased.outbox_scrubbed,
        audit_redacted=erased.audit_redacted,
    )
    return erased


def create_invitation(
    session: Session,
    actor: Person,
    role: Role,
    expires_in: timedelta | None,
    max_uses: int | None,
) -> Invitation:
    now = clock.now()
    invitation = Invitation(
        code=secrets.token_urlsafe(12),
        role=role,
        created_by=actor.telegram_id,
        created_at=now,
        expires_at=now + expires_in if expires_in else None,
        max_uses=max_uses,
    )
    session.add(invitation)
    session.flush()
    audit.record(
        session,
        "invitation.created",
        actor=actor.telegram_id,
        invitation=invitation.id,
        role=str(role),
    )
    return invitation


def audit_entries(session: Session, action_prefix: str = "") -> list[AuditEntry]:
    query = select(AuditEntry).order_by(col(AuditEntry.id))
    if action_prefix:
        query = query.where(col(AuditEntry.action).startswith(action_prefix))
    return list(session.exec(query))


def days_at_post(person: Person, today: date) -> int | None:
    if person.assignment_start is None:
        return None
    return max(0, (today - person.assignment_start).days)


def local_today(zone: Any) -> date:
    return clock.now().astimezone(zone).date() if zone else clock.now().date()


def name_of(person: Person | None, missing: str | None = None) -> str:
    """What to call a person: their real name, else their Telegram name, else `missing`
    (by default "#<id>"); "-" for nobody."""
    if person is None:
        return "-"
    fallback = f"#{person.id}" if missing is None else missing
    return person.real_name or person.display_name or fallback


def posting_text(person: Person, lang: str) -> str:
    postings = load_postings()
    parts = []
    if person.prefecture and postings.prefecture(person.prefecture):
        parts.append(postings.name(person.prefecture, lang, short=True))
    if person.county and postings.county(person.county):
        parts.append(postings.name(person.county, lang))
    where = " · ".join(parts) or "-"
    if person.posting_altitude_m is not None:
        return t(lang, "sos.alert.posting_alt", posting=where, metres=person.posting_altitude_m)
    return where
