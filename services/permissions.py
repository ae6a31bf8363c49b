"""The one place that decides who may do what, and which area a person may see."""

from __future__ import annotations

from collections.abc import Iterable
from enum import StrEnum

from models import Person, Role, Status


class Action(StrEnum):
    OWN_DATA = "own_data"  # /me, /mydata, /deleteme
    MANAGE_PEOPLE = "manage_people"  # /people and every action on a person
    APPROVE = "approve"  # approve or reject a registration
    INVITE = "invite"  # /invite
    # /sos and the 🆘 button as a verified member. Anyone else who calls for help still
    # raises an alert, marked unverified (sos_verified); a denial never means no alert.
    RAISE_SOS = "raise_sos"
    HANDLE_ALERTS = "handle_alerts"  # acknowledge / resolve alerts, /alerts, /alert
    GO_ON_DUTY = "go_on_duty"  # /onduty, /offduty
    MANAGE_ROSTER = "manage_roster"  # weekly duty shifts
    MANAGE_DIRECTORY = "manage_directory"  # emergency numbers and hospitals
    CHECKIN = "checkin"  # daily health check-in, /history, /trend
    VIEW_AREA = "view_area"  # /today, /export, /overdue, /upcoming for one's area
    MANAGE_SCHEDULES = "manage_schedules"  # set or move someone's rest or exam dates
    REQUEST_OXYGEN = "request_oxygen"  # /oxygen
    HANDLE_OXYGEN = "handle_oxygen"  # acknowledge and deliver oxygen requests
    ASK = "ask"  # policy questions
    MANAGE_KB = "manage_kb"  # /kb, answering handoffs, /kbstats
    BROADCAST = "broadcast"  # /broadcast, /broadcasts
    CONFIRM_NOTICE = "confirm_notice"  # "Received ✓" under a broadcast notice


_MEMBER = frozenset(
    {
        Action.OWN_DATA,
        Action.RAISE_SOS,
        Action.CHECKIN,
        Action.REQUEST_OXYGEN,
        Action.ASK,
        Action.CONFIRM_NOTICE,  # broadcasts go to active cadres, officers and admins
    }
)
_ROLE_ACTIONS: dict[Role, frozenset[Action]] = {
    Role.CADRE: _MEMBER,
    Role.DUTY_OFFICER: _MEMBER
    | {Action.HANDLE_ALERTS, Action.GO_ON_DUTY, Action.VIEW_AREA, Action.HANDLE_OXYGEN},
    Role.ADMIN: frozenset(Action),
    Role.CONTACT: frozenset({Action.OWN_DATA}),
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
    denial = status_denial(person)
    if denial is not None:
        return denial
    if action not in _ROLE_ACTIONS[Role(person.role)]:
        return Denial.ROLE
    return None


_STATUS_DENIALS = {
    Status.PENDING: Denial.PENDING,
    Status.SUSPENDED: Denial.SUSPENDED,
    Status.REJECTED: Denial.REJECTED,
}


def status_denial(person: Person) -> Denial | None:
    """Why an account that is not active may not act (None: active). A guest, who only
    called for help, and anyone else not active is not registered."""
    if person.status == Status.ACTIVE:
        return None
    return _STATUS_DENIALS.get(Status(person.status), Denial.UNREGISTERED)


def refusal_key(action: Action, denial: Denial) -> str:
    """The catalog key of the answer to a refused action. A role refusal says plainly who
    the action is for ("This is for duty officers and administrators."), without warning
    anyone: the attempt is audited all the same."""
    if denial != Denial.ROLE:
        return f"deny.{denial}"
    for role in (Role.CADRE, Role.DUTY_OFFICER, Role.ADMIN):  # the first role allowed
        if action in _ROLE_ACTIONS[role]:
            return f"deny.role.{role}"
    return "deny.role"


def sos_verified(person: Person | None) -> bool:
    """Whether a call for help comes from an active member who may raise an alert; anyone
    else's raises an *unverified* alert (to the admins and the area's duty officers)."""
    return check(person, Action.RAISE_SOS) is None


def actions_for(person: Person | None) -> frozenset[Action]:
    if person is None or person.status != Status.ACTIVE:
        return frozenset()
    return _ROLE_ACTIONS[Role(person.role)]


def visible_prefectures(person: Person, duty_areas: Iterable[str]) -> frozenset[str] | None:
    """The prefectures whose people a person may see: None means all (admins); a duty
    officer sees their duty areas; anyone else sees no one else's data."""
    if person.status != Status.ACTIVE:
        return frozenset()
    if person.role == Role.ADMIN:
        return None
    if person.role == Role.DUTY_OFFICER:
        return frozenset(duty_areas)
    return frozenset()


def may_see(person: Person, duty_areas: Iterable[str], prefecture: str | None) -> bool:
    area = visible_prefectures(person, duty_areas)
    return area is None or (prefecture is not None and prefecture in area)
