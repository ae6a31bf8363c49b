"""Alerts: answering one. Acknowledge (the first acknowledgement wins: a conditional
UPDATE ... WHERE status = 'open'), resolve, cancel, notes, and the follow-up after the
close; who may do which (`handling_refusal`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import update
from sqlmodel import Session, col, select

from models import Alert, AlertRecipient, AlertStatus, Person, Priority, Status
from services import audit, clock, outbox, people, state
from services.alerts.messages import (
    cancel_unsent_rounds,
    edit_alert_messages,
    tell_cadre_and_contacts,
)
from services.alerts.policy import (
    FOLLOW_UP_HOURS,
    IN_PROGRESS,
    MAX_DETAILS,
    OUTCOMES,
    RESPONDER,
    WAIT_KIND,
    Policy,
    active_only,
    add_event,
    hour_minute,
    persons_by_id,
    recipients,
    source_of,
)
from services.alerts.raising import Change
from services.duty_channels import alerting
from services.i18n import t
from services.people import name_of
from services.permissions import Action, check, may_see

# ---------------------------------------------------------------------------- permission


class Refusal(StrEnum):
    NOT_FOUND = "not_found"
    OWN = "own"  # nobody acknowledges or resolves their own alert
    ROLE = "role"
    AREA = "area"


def handling_refusal(session: Session, actor: Person, alert: Alert | None) -> Refusal | None:
    """Whether `actor` may acknowledge, resolve or read `alert`: a responder of its area,
    or someone it was sent to for action; never the cadre themself."""
    if alert is None:
        return Refusal.NOT_FOUND
    if alert.person_id == actor.id:
        return Refusal.OWN
    if check(actor, Action.HANDLE_ALERTS) is not None:
        return Refusal.ROLE
    areas = people.duty_areas(session, actor.id or 0)
    if may_see(actor, areas, alert.prefecture):
        return None
    was_sent = session.exec(
        select(AlertRecipient).where(
            AlertRecipient.alert_id == alert.id,
            AlertRecipient.person_id == actor.id,
            AlertRecipient.kind == RESPONDER,
        )
    ).first()
    return None if was_sent else Refusal.AREA


def refuse(
    session: Session,
    actor: Person | None,
    alert_id: int | None,
    attempted: str,
    reason: str,
    action: str = Action.HANDLE_ALERTS,
) -> None:
    """Audit a refused attempt (forged, replayed or out-of-area buttons; an SOS from
    someone who cannot raise one)."""
    audit.record(
        session,
        f"denied.{action}",
        actor=actor.telegram_id if actor else None,
        target_person_id=actor.id if actor else None,
        outcome="denied",
        reason=str(reason),
        attempted=attempted,
        alert=alert_id,
    )


# ---------------------------------------------------------------------------- acknowledge


class Ack(StrEnum):
    WON = "won"
    TAKEN = "taken"  # somebody else was first
    CLOSED = "closed"  # resolved or cancelled already
    REFUSED = "refused"


@dataclass
class AckResult:
    outcome: Ack
    alert: Alert | None = None
    by: Person | None = None
    refusal: Refusal | None = None


def acknowledge(
    session: Session,
    *,
    alert_id: int,
    actor: Person,
    pressed_message_id: int | None = None,
    policy: Policy,
) -> AckResult:
    """The first acknowledgement wins: a conditional UPDATE, so two officers pressing at the
    same moment cannot both take it. The winner's other alert messages and everybody
    else's are edited; the cadre and their contacts are told who is handling it."""
    alert = session.get(Alert, alert_id)
    refusal = handling_refusal(session, actor, alert)
    if refusal is not None:
        refuse(session, actor, alert_id, "ack", refusal)
        return AckResult(Ack.REFUSED, alert, refusal=refusal)
    assert alert is not None
    now = clock.now()
    result = session.execute(
        update(Alert)
        .where(col(Alert.id) == alert_id, col(Alert.status) == AlertStatus.OPEN)
        .values(
            status=AlertStatus.ACKNOWLEDGED,
            acknowledged_by=actor.id,
            acknowledged_at=now,
            next_escalation_at=None,
        )
        .execution_options(synchronize_session=False)
    )
    session.refresh(alert)
    if result.rowcount != 1:  # type: ignore[attr-defined]
        if alert.status == AlertStatus.ACKNOWLEDGED:
            return AckResult(Ack.TAKEN, alert, by=session.get(Person, alert.acknowledged_by or 0))
        return AckResult(Ack.CLOSED, alert)
    event = add_event(session, alert, "acknowledged", actor)
    audit.record(
        session,
        "alert.acknowledged",
        actor=actor.telegram_id,
        target_person_id=alert.person_id,
        alert=alert.id,
    )
    cancel_unsent_rounds(session, alert)
    edit_alert_messages(session, alert, policy, taker=actor, pressed=pressed_message_id)
    tell_cadre_and_contacts(session, alert, event, "acknowledged", actor, policy)
    return AckResult(Ack.WON, alert, by=actor)


# ---------------------------------------------------------------------------- resolve, cancel


class Close(StrEnum):
    DONE = "done"
    CLOSED = "closed"  # already resolved or cancelled
    REFUSED = "refused"
    INVALID = "invalid"


@dataclass
class CloseResult:
    outcome: Close
    alert: Alert | None = None
    refusal: Refusal | None = None


def resolve(
    session: Session,
    *,
    alert_id: int,
    actor: Person,
    outcome: str,
    pressed_message_id: int | None = None,
    policy: Policy,
) -> CloseResult:
    """Close an alert with an outcome. An alert nobody acknowledged is acknowledged by the
    resolver at the same time. Conditional, like acknowledge: it closes once."""
    if outcome not in OUTCOMES:
        return CloseResult(Close.INVALID)
    alert = session.get(Alert, alert_id)
    refusal = handling_refusal(session, actor, alert)
    if refusal is not None:
        refuse(session, actor, alert_id, "resolve", refusal)
        return CloseResult(Close.REFUSED, alert, refusal)
    assert alert is not None
    now = clock.now()
    was_open = alert.status == AlertStatus.OPEN
    values: dict[str, Any] = {
        "status": AlertStatus.RESOLVED,
        "resolved_by": actor.id,
        "resolved_at": now,
        "outcome": outcome,
        "next_escalation_at": None,
    }
    if was_open:
        values.update(acknowledged_by=actor.id, acknowledged_at=now)
    result = session.execute(
        update(Alert)
        .where(col(Alert.id) == alert_id, col(Alert.status).in_(IN_PROGRESS))
        .values(**values)
        .execution_options(synchronize_session=False)
    )
    session.refresh(alert)
    if result.rowcount != 1:  # type: ignore[attr-defined]
        return CloseResult(Close.CLOSED, alert)
    event = add_event(session, alert, "resolved", actor, outcome=outcome)
    audit.record(
        session,
        "alert.resolved",
        actor=actor.telegram_id,
        target_person_id=alert.person_id,
        alert=alert.id,
        outcome=outcome,
    )
    cancel_unsent_rounds(session, alert)
    edit_alert_messages(session, alert, policy, taker=actor, pressed=pressed_message_id)
    tell_cadre_and_contacts(session, alert, event, "resolved", actor, policy)
    _wait_for_follow_up(session, alert)
    return CloseResult(Close.DONE, alert)


def add_note(session: Session, *, alert_id: int, actor: Person, note: str) -> Change:
    """The resolver's note on what happened."""
    text = " ".join(note.split())[:MAX_DETAILS]
    alert = session.get(Alert, alert_id)
    if alert is None or alert.resolved_by != actor.id:
        return Change.NOT_FOUND
    if not text:
        return Change.INVALID
    alert.resolution_note = text
    session.add(alert)
    add_event(session, alert, "note", actor)
    return Change.DONE


def cancel(session: Session, *, alert_id: int, actor: Person, policy: Policy) -> CloseResult:
    """The cadre cancels a false alarm. Everyone alerted is told, and their messages say so."""
    alert = session.get(Alert, alert_id)
    if alert is None or alert.person_id != actor.id:
        refuse(session, actor, alert_id, "cancel", Refusal.NOT_FOUND)
        return CloseResult(Close.REFUSED, alert, Refusal.NOT_FOUND)
    now = clock.now()
    result = session.execute(
        update(Alert)
        .where(col(Alert.id) == alert_id, col(Alert.status).in_(IN_PROGRESS))
        .values(status=AlertStatus.CANCELLED, cancelled_at=now, next_escalation_at=None)
        .execution_options(synchronize_session=False)
    )
    session.refresh(alert)
    if result.rowcount != 1:  # type: ignore[attr-defined]
        return CloseResult(Close.CLOSED, alert)
    add_event(session, alert, "cancelled", actor)
    audit.record(
        session,
        "alert.cancelled",
        actor=actor.telegram_id,
        target_person_id=actor.id,
        alert=alert.id,
    )
    cancel_unsent_rounds(session, alert)
    edit_alert_messages(session, alert, policy)
    alerting.alert_update(session, alert, "cancelled", actor, policy.channels)
    zone = policy.zone
    for row in recipients(session, alert.id or 0):
        person = session.get(Person, row.person_id)
        if person is None or person.status != Status.ACTIVE:
            continue
        outbox.enqueue_to(
            session,
            person,
            priority=Priority.EMERGENCY,
            idempotency_key=f"alert:{alert.id}:x:{person.id}",
            text=t(
                person.language,
                "sos.cancelled_notice",
                id=alert.id,
                name=name_of(actor),
                time=hour_minute(now, zone),
            ),
            source=source_of(alert),
        )
    _wait_for_follow_up(session, alert)
    return CloseResult(Close.DONE, alert)


# ---------------------------------------------------------------------------- after close


def _wait_for_follow_up(session: Session, alert: Alert) -> None:
    """From the close on, what the cadre types (outside any command or form) goes to whoever
    handled the alert, for FOLLOW_UP_HOURS (handlers/sos.py reads this wait). The handler
    that closed the alert reloads the cadre's wait into its cache (sos_common.reload_wait)."""
    cadre = session.get(Person, alert.person_id) if alert.person_id is not None else None
    if cadre is None:
        return
    record = {"what": "after", "alert": alert.id, "since": clock.now().isoformat()}
    state.put(session, WAIT_KIND, str(cadre.telegram_id), record)


def closed_at(alert: Alert) -> datetime | None:
    return alert.resolved_at or alert.cancelled_at


def follow_up_targets(session: Session, alert: Alert) -> list[Person]:
    """Who handled a closed alert: the resolver, else the one who took it; a false alarm
    nobody took goes to the responders who were alerted."""
    for person_id in (alert.resolved_by, alert.acknowledged_by):
        person = session.get(Person, person_id) if person_id else None
        if person is not None and person.status == Status.ACTIVE:
            return [person]
    ids = [r.person_id for r in recipients(session, alert.id or 0, RESPONDER)]
    return active_only(persons_by_id(session, ids), exclude=alert.person_id)


@dataclass
class FollowUp:
    sent_to: list[Person]
    alert: Alert | None = None


def follow_up(
    session: Session, *, alert_id: int, person_id: int, text: str, zone: ZoneInfo
) -> FollowUp:
    """A message the cadre writes after their alert closed, passed on to whoever handled it
    ("about #12, closed at 07:40: …", the text escaped) and put on the timeline. Nobody is
    told when the alert is not theirs, still in progress, or closed more than
    FOLLOW_UP_HOURS ago."""
    body = " ".join(text.split())[:MAX_DETAILS]
    alert = session.get(Alert, alert_id)
    if alert is None or alert.person_id != person_id or alert.status in IN_PROGRESS or not body:
        return FollowUp([], alert)
    closed = closed_at(alert)
    if closed is None or clock.now() - closed > timedelta(hours=FOLLOW_UP_HOURS):
        return FollowUp([], alert)
    targets = follow_up_targets(session, alert)
    cadre = session.get(Person, person_id)
    event = add_event(session, alert, "followup", person_id, people=[p.id for p in targets])
    for person in targets:
        outbox.enqueue_to(
            session,
            person,
            priority=Priority.URGENT,
            idempotency_key=f"alert:{alert.id}:f{event.id}:{person.id}",
            text=t(
                person.language,
                "sos.relay.followup",
                id=alert.id,
                name=name_of(cadre),
                time=hour_minute(closed, zone),
                text=body,
            ),
            source=source_of(alert),
        )
    return FollowUp(targets, alert)
