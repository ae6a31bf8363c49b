"""The one place that decides who may do what."""

from __future__ import annotations

from enum import StrEnum

from models import Person, Role, Status


class Action(StrEnum):
    OWN_DATA = "own_data"  # /me, /mydata, /deleteme
    MANAGE_PEOPLE = "manage_people"  # /people and every action on a person
    APPROVE = "approve"  # approve or reject a registration
    INVITE = "invite"  # /invite


_ROLE_ACTIONS: dict[Role, frozenset[Action]] = {
    Role.CADRE: frozenset({Action.OWN_DATA}),
    Role.DUTY_OFFICER: frozenset({Action.OWN_DATA}),
    Role.ADMIN: frozenset(Action),
}


class Denial(StrEnum):
    """Why an action was refused; each has a message in the catalogs (``deny.<value>``)."""

    UNREGISTERED = "unregistered"
    PENDING = "pending"
    SUSPENDED = "suspended"
    REJECTED = "rejected"
    ROLE = "role"


def check(person: Person | None, action: Action) -> Denial | None:
    """None when `person` may perform `action`, otherwise the reason for refusal.

    Seeing, exporting and deleting one's own data is a right whatever the account's status
    (PIPL arts. 45 and 47), so OWN_DATA is open to pending and suspended people too.
    """
    if person is None:
        return Denial.UNREGISTERED
    if action == Action.OWN_DATA:
        return None
    if person.status == Status.PENDING:
        return Denial.PENDING
    if person.status == Status.SUSPENDED:
        return Denial.SUSPENDED
    if person.status == Status.REJECTED:
        return Denial.REJECTED
    if action not in _ROLE_ACTIONS[Role(person.role)]:
        return Denial.ROLE
    return None


def actions_for(person: Person | None) -> frozenset[Action]:
    if person is None or person.status != Status.ACTIVE:
        return frozenset()
    return _ROLE_ACTIONS[Role(person.role)]
