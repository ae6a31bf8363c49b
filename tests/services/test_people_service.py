"""Registration, approval, invitations, admin actions and own-data rights, without Telegram."""

from datetime import timedelta

import pytest
import time_machine
from sqlmodel import select

from models import AuditEntry, Consent, EmergencyContact, Person, Role, Status
from services import people
from services.people import RegistrationError
from services.permissions import Action, Denial, check
from tests.support import factories


def register(db, telegram_id=1001, **overrides) -> Person:
    return factories.person(db, telegram_id, approve=False, **overrides)


def test_a_submitted_registration_waits_for_approval_with_consent_and_contact(db):
    person = register(db)
    assert person.status == Status.PENDING and person.role == Role.CADRE
    with db.session() as s:
        consent = s.exec(select(Consent)).one()
        contact = s.exec(select(EmergencyContact)).one()
    assert consent.text_version == people.CONSENT_VERSION and consent.given_at is not None
    assert (contact.name, contact.phone) == ("Wang Fang", "+8613900139000")
    assert check(person, Action.APPROVE) == Denial.PENDING
    assert check(person, Action.OWN_DATA) is None  # export and deletion stay open


def test_telegram_ids_beyond_32_bits_are_stored(db):
    big = 2**40 + 7
    register(db, telegram_id=big)
    assert db.call(people.find, big).telegram_id == big


def test_registering_twice_is_refused(db):
    register(db)
    with pytest.raises(RegistrationError):
        register(db)


def test_a_county_outside_the_prefecture_is_refused(db):
    with pytest.raises(RegistrationError) as caught:
        register(db, prefecture="aba", county="ganzi.litang")
    assert caught.value.key == "invalid.county"
    assert db.call(people.find, 1001) is None


def test_approval_activates_and_the_first_decision_wins(db):
    admin_id = 9001
    db.call(people.ensure_admins, [admin_id], "zh-Hans")
    admin = db.call(people.find, admin_id)
    person = register(db)
    approved = db.call(people.decide, admin, person.id, True)
    assert approved.status == Status.ACTIVE
    assert db.call(people.decide, admin, person.id, False) is None
    assert check(approved, Action.OWN_DATA) is None
    assert check(approved, Action.MANAGE_PEOPLE) == Denial.ROLE


def test_an_invitation_approves_on_use_with_its_role_until_used_up(db):
    db.call(people.ensure_admins, [9001], "en")
    admin = db.call(people.find, 9001)
    invitation = db.call(people.create_invitation, admin, Role.DUTY_OFFICER, timedelta(days=1), 1)
    person = register(db, invitation=invitation.code)
    assert (person.status, person.role) == (Status.ACTIVE, Role.DUTY_OFFICER)
    assert db.call(people.duty_areas, person.id) == ["ganzi"]
    assert db.call(people.invitation_problem, invitation.code) == "invite.used_up"
    second = register(db, telegram_id=1002, invitation=invitation.code)
    assert second.status == Status.PENDING


def test_an_expired_invitation_does_not_approve(db):
    db.call(people.ensure_admins, [9001], "en")
    admin = db.call(people.find, 9001)
    invitation = db.call(people.create_invitation, admin, Role.CADRE, timedelta(hours=1), None)
    with time_machine.travel(invitation.created_at + timedelta(hours=2)):
        assert db.call(people.invitation_problem, invitation.code) == "invite.expired"
        assert register(db, invitation=invitation.code).status == Status.PENDING


def test_admins_from_settings_are_active_admins_from_the_first_start(db):
    db.call(people.ensure_admins, [9001, 9002], "zh-Hans")
    db.call(people.ensure_admins, [9001, 9002], "zh-Hans")
    assert sorted(p.telegram_id for p in db.call(people.admins)) == [9001, 9002]


def test_suspension_blocks_everything_and_admins_cannot_lock_themselves_out(db):
    db.call(people.ensure_admins, [9001], "en")
    admin = db.call(people.find, 9001)
    person = register(db)
    suspended = db.call(people.set_status, admin, person.id, Status.SUSPENDED)
    assert check(suspended, Action.INVITE) == Denial.SUSPENDED
    with pytest.raises(RegistrationError):
        db.call(people.set_status, admin, admin.id, Status.SUSPENDED)
    with pytest.raises(RegistrationError):
        db.call(people.set_role, admin, admin.id, Role.CADRE)


def test_export_contains_everything_and_deletion_leaves_only_a_tombstone(db):
    person = register(db)
    exported = db.call(people.export_own_data, 1001)
    assert exported["person"]["real_name"] == "Li Wei"
    assert exported["emergency_contacts"][0]["phone"] == "+8613900139000"
    assert exported["consents"][0]["text_version"] == people.CONSENT_VERSION
    assert db.call(people.delete_own_data, 1001) is True
    assert db.call(people.find, 1001) is None
    with db.session() as s:
        assert s.exec(select(Consent)).all() == []
        assert s.exec(select(EmergencyContact)).all() == []
        entries = s.exec(select(AuditEntry)).all()
    tombstone = [e for e in entries if e.action == "person.deleted"]
    assert tombstone and tombstone[0].target_person_id == person.id
    assert all(
        "Li Wei" not in str(e.detail) and "13800138000" not in str(e.detail) for e in entries
    )


def test_people_are_listed_by_status_and_prefecture_in_pages(db):
    for i in range(12):
        register(
            db,
            telegram_id=2000 + i,
            prefecture="aba" if i % 2 else "ganzi",
            county="aba.barkam" if i % 2 else "ganzi.litang",
        )
    page = db.call(people.list_people, status="pending", prefecture="aba")
    assert page.total == 6 and len(page.people) == 6
    everyone = db.call(people.list_people, page=1)
    assert everyone.total == 12 and everyone.pages == 2 and len(everyone.people) == 4
