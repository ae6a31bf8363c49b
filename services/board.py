"""The board (the Telegram Mini App for duty officers and admins): who may open it and the
data of its views (its address and button: services/board_links.py). Plain Python, like
every service: the web layer (webapp/) only reads requests and renders what these
functions return.

Who sees what is decided here from the database on every request: an active duty officer
sees their duty areas, an admin everything, anyone else nothing (services.permissions).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlmodel import Session, col, select

from models import Alert, CheckIn, Person, Role, Status
from services import audit, people
from services.alerts import cards, policy, respond
from services.alerts import timeline as alerts_timeline
from services.health import checkins
from services.health.config import HealthConfig
from services.permissions import Action, check


def may_open(person: Person | None) -> bool:
    """Active duty officers and admins get the board (and its menu button)."""
    return (
        person is not None
        and person.status == Status.ACTIVE
        and person.role in (Role.DUTY_OFFICER, Role.ADMIN)
        and check(person, Action.VIEW_AREA) is None
    )


# ---------------------------------------------------------------------------- viewer


def viewer(session: Session, telegram_id: int) -> Person | None:
    """The person behind a request, read afresh (role, status and areas may have changed
    since the board was opened)."""
    return people.find(session, telegram_id)


def duty_officers(session: Session) -> list[Person]:
    """Active duty officers (their menu button is set at start-up)."""
    return list(
        session.exec(
            select(Person).where(Person.role == Role.DUTY_OFFICER, Person.status == Status.ACTIVE)
        )
    )


def open_alerts(session: Session, person: Person, limit: int = 50) -> list[Alert]:
    """Alerts in progress the viewer may handle, in progress first, newest first."""
    found = alerts_timeline.visible_alerts(session, person, limit=limit)
    return [alert for alert in found if alert.status in policy.IN_PROGRESS]


@dataclass
class AlertView:
    alert: Alert
    text: str  # the chat card's text (Telegram HTML, valid HTML)
    timeline: list[alerts_timeline.TimelineItem]
    note: str | None


def alert_view(
    session: Session, person: Person, alert_id: int, lang: str, zone: Any
) -> AlertView | None:
    """An alert with its timeline, or None (and an audited refusal) when the viewer may not
    read it: the same rule as the chat's buttons (alerts.handling_refusal)."""
    alert = session.get(Alert, alert_id)
    refusal = respond.handling_refusal(session, person, alert)
    if refusal is not None:
        respond.refuse(session, person, alert_id, "board:alert", refusal)
        return None
    assert alert is not None
    return AlertView(
        alert,
        cards.alert_text(session, alert, lang, zone=zone, details=True),
        alerts_timeline.timeline(session, alert, lang, zone),
        alert.resolution_note,
    )


@dataclass
class PersonView:
    person: Person
    readings: list[CheckIn]
    chart: bytes
    alerts: list[Alert] = field(default_factory=list)


def person_view(
    session: Session, viewer_: Person, person_id: int, config: HealthConfig
) -> PersonView | None:
    """A person of the viewer's area: the last readings and their alerts; None (and an
    audited refusal, as the chat's chart button gives) outside the area. The 30-day chart
    comes apart (`chart`): drawing it takes longer than the rest of the page."""
    from services.permissions import may_see

    assert viewer_.id is not None
    person = session.get(Person, person_id)
    if person is None or not may_see(
        viewer_, people.duty_areas(session, viewer_.id), person.prefecture
    ):
        audit.record(
            session,
            "denied.view_area",
            actor=viewer_.telegram_id,
            target_person_id=person.id if person else None,
            outcome="denied",
            reason="area",
            attempted=f"board:person/{person_id}",
        )
        return None
    chart = b""
    readings = checkins.history(session, person_id, limit=10)
    found = list(
        session.exec(
            select(Alert)
            .where(Alert.person_id == person_id)
            .order_by(col(Alert.id).desc())
            .limit(10)
        )
    )
    return PersonView(person, readings, chart, found)


def chart(session: Session, viewer_: Person, person_id: int, config: HealthConfig) -> bytes | None:
    """The person's 30-day chart as a PNG (the chat's renderer, audited as in the chat as
    `checkin.chart_viewed`), or None outside the viewer's area (refusal audited)."""
    from services.health import reports

    shown = reports.chart_for_viewer(session, viewer_, person_id, config)
    return shown[1] if shown is not None else None
