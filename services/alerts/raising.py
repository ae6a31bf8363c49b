"""Alerts: raising one, what the cadre adds to it, and escalation.

Contract used by other features:
    raise_alert(session, *, person_id, cause, reasons=None) -> int   # the alert id
cause is "sos" or "checkin_red"; reasons are catalog keys explaining a red result. The
alert is stored, its first-tier messages are queued at emergency priority in the same
transaction, and the escalation timer starts. The caller wakes the delivery worker.
A person has at most one alert in progress: raising again while one is open returns it
(the new cause and reasons are added to its timeline and relayed to whoever handles it).
Who is alerted at each stage: services.alerts.policy.
"""

from __future__ import annotations

import logging
import math
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import insert, update
from sqlmodel import Session, col, select

from models import Alert, AlertEvent, AlertStatus, Person, Priority, Status
from services import audit, clock, outbox
from services.alerts.cards import buttons_for, causes
from services.alerts.messages import (
    edit_alert_messages,
    handlers_of,
    notify_contacts,
    notify_round,
    relay_event,
    taker_of,
)
from services.alerts.policy import (
    CATEGORIES,
    CAUSES,
    IN_PROGRESS,
    LOCATION_RELAY_SECONDS,
    MAX_DETAILS,
    REPEAT_RELAY_SECONDS,
    Policy,
    add_event,
    hour_minute,
    source_of,
)
from services.duty_channels import alerting
from services.i18n import t
from services.log_context import about_alert
from services.people import name_of
from services.permissions import sos_verified

log = logging.getLogger(__name__)

# ---------------------------------------------------------------------------- raising


def open_alert_of(session: Session, person_id: int) -> Alert | None:
    query = select(Alert).where(Alert.person_id == person_id, col(Alert.status).in_(IN_PROGRESS))
    return session.exec(query.order_by(col(Alert.id).desc())).first()


def raise_alert(
    session: Session,
    *,
    person_id: int,
    cause: str,
    reasons: list[str] | None = None,
    policy: Policy,
    caller: dict[str, Any] | None = None,
    update_id: int | None = None,
) -> int:
    """Store an alert and queue its first messages at emergency priority (see the module
    docstring). Returns the alert id; an alert already in progress is reused.

    `update_id`: the Telegram update that raised it. Updates are handled at least once
    (services/inbox.py): the same update handled again finds its alert and changes nothing
    (no second "pressed SOS again" to the officers).

    Anyone may call for help: a person who is not an active member (a guest, a pending,
    suspended or rejected person, a contact) raises an *unverified* alert, which goes at
    once to the admins and the duty officers of the prefecture they gave (stage 2), with
    `caller` (their Telegram name) on the card."""
    if cause not in CAUSES:
        raise ValueError(f"unknown alert cause {cause!r}")
    person = session.get(Person, person_id)
    if person is None:
        raise ValueError(f"no person {person_id}")
    existing = open_alert_of(session, person_id)
    if existing is not None:
        _raised_again(session, existing, person, cause, reasons or [], policy, update_id)
        return existing.id or 0
    now = clock.now()
    unverified = not sos_verified(person)
    new_id = _insert_alert(
        session,
        person_id=person_id,
        cause=cause,
        reasons=list(reasons or []),
        status=AlertStatus.OPEN,
        prefecture=person.prefecture,
        stage=1,
        live_location=False,
        created_at=now,
        unverified=unverified,
        caller={**(caller or {}), "status": _caller_status(person)} if unverified else None,
    )
    if new_id is None:  # raised at the same moment elsewhere (uq_alert_in_progress)
        existing = open_alert_of(session, person_id)
        assert existing is not None
        _raised_again(session, existing, person, cause, reasons or [], policy, update_id)
        return existing.id or 0
    about_alert(new_id)  # log lines from here on name the alert
    alert = session.get(Alert, new_id)
    assert alert is not None
    add_event(
        session,
        alert,
        "raised",
        person,
        cause=cause,
        reasons=list(reasons or []),
        unverified=unverified,
        **_from_update(update_id),
    )
    targets = [] if unverified else notify_round(session, alert, 1, "notified", policy)
    if unverified:  # the admins and the area's duty officers, at once
        alert.stage = 2
        targets = notify_round(session, alert, 2, "notified", policy)
    elif not targets:
        alert.stage = 2
        add_event(session, alert, "nobody_on_duty")
        targets = notify_round(session, alert, 2, "notified", policy)
    alerting.alert_round(session, alert, targets, policy.channels)  # WeCom, DingTalk, SMS
    alert.next_escalation_at = now + policy.delay_after(alert.stage)
    session.add(alert)
    notify_contacts(session, alert, person, policy.zone)
    audit.record(
        session,
        "alert.raised",
        actor=person.telegram_id,
        target_person_id=person_id,
        alert=alert.id,
        cause=cause,
    )
    return alert.id or 0


CALLER_STATUSES = ("guest", "pending", "suspended", "rejected", "contact")


def _caller_status(person: Person) -> str:
    """Why a caller is unverified (one of CALLER_STATUSES: sos.alert.caller.<status>)."""
    if person.status == Status.ACTIVE:
        return str(person.role)  # a contact
    return str(person.status)


def _insert_alert(session: Session, **values: Any) -> int | None:
    """INSERT ... ON CONFLICT DO NOTHING: None when the person already has an alert in
    progress (the partial unique index), without aborting the transaction (no savepoint:
    pysqlite's savepoints can commit on their own)."""
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        statement: Any = pg_insert(Alert).values(**values).on_conflict_do_nothing()
    elif dialect == "sqlite":
        from sqlalchemy.dialects.sqlite import insert as sqlite_insert

        statement = sqlite_insert(Alert).values(**values).on_conflict_do_nothing()
    else:  # pragma: no cover - SQLite and PostgreSQL are the supported databases
        statement = insert(Alert).values(**values)
    return session.execute(statement.returning(col(Alert.id))).scalar_one_or_none()


def _from_update(update_id: int | None) -> dict[str, int]:
    """The event detail naming the update that raised (or raised again) an alert."""
    return {} if update_id is None else {"update_id": update_id}


def raised_by(
    session: Session, alert: Alert, update_id: int | None, *, again: bool = False
) -> bool:
    """Whether this update raised `alert` (with `again`: or raised it again) already: the
    update is being handled a second time (services/inbox.py)."""
    if update_id is None:
        return False
    kinds = ("raised", "raised_again", "cause_added") if again else ("raised",)
    events = session.exec(
        select(AlertEvent).where(AlertEvent.alert_id == alert.id, col(AlertEvent.kind).in_(kinds))
    )
    return any((event.detail or {}).get("update_id") == update_id for event in events)


def _raised_again(
    session: Session,
    alert: Alert,
    person: Person,
    cause: str,
    reasons: list[str],
    policy: Policy,
    update_id: int | None = None,
) -> None:
    if raised_by(session, alert, update_id, again=True):
        log.info("update %s raised alert %s already: nothing new", update_id, alert.id)
        return
    now = clock.now()
    if cause == "checkin_red" and reasons:
        merged = list(dict.fromkeys([*(alert.reasons or []), *reasons]))
        alert.reasons = merged
        session.add(alert)
    if cause not in {known for known, _ in causes(session, alert)}:
        # Not "again": an SOS pressed while a RED check-in's alert is open (or the
        # reverse) is its own event and cause, and the handlers are told what happened.
        event = add_event(
            session,
            alert,
            "cause_added",
            person,
            cause=cause,
            reasons=reasons,
            **_from_update(update_id),
        )
        zone = policy.zone
        relay_event(
            session,
            alert,
            event,
            f"sos.relay.{cause}_added",
            policy,
            time=hour_minute(now, zone),
            first=hour_minute(alert.created_at, zone),
        )
        edit_alert_messages(session, alert, policy, taker=taker_of(session, alert))
        return
    last = session.exec(
        select(AlertEvent)
        .where(AlertEvent.alert_id == alert.id, AlertEvent.kind == "raised_again")
        .order_by(col(AlertEvent.id).desc())
    ).first()
    event = add_event(
        session,
        alert,
        "raised_again",
        person,
        cause=cause,
        reasons=reasons,
        **_from_update(update_id),
    )
    if last is not None and (now - last.at).total_seconds() < REPEAT_RELAY_SECONDS:
        return
    key = "sos.relay.red_again" if cause == "checkin_red" else "sos.relay.sos_again"
    relay_event(session, alert, event, key, policy)


# ---------------------------------------------------------------------------- what the cadre adds


class Change(StrEnum):
    DONE = "done"
    NOT_FOUND = "not_found"  # no alert in progress for this person (or not theirs)
    INVALID = "invalid"


def _cadres_alert(session: Session, alert_id: int, person_id: int) -> Alert | None:
    alert = session.get(Alert, alert_id)
    if alert is None or alert.person_id != person_id or alert.status not in IN_PROGRESS:
        return None
    return alert


def set_category(
    session: Session, *, alert_id: int, person_id: int, category: str, policy: Policy
) -> Change:
    if category not in CATEGORIES:
        return Change.INVALID
    alert = _cadres_alert(session, alert_id, person_id)
    if alert is None:
        return Change.NOT_FOUND
    alert.category = category
    session.add(alert)
    event = add_event(session, alert, "category", person_id, category=category)
    for person in handlers_of(session, alert):
        lang = person.language
        outbox.enqueue_to(
            session,
            person,
            priority=Priority.EMERGENCY,
            idempotency_key=f"alert:{alert.id}:u{event.id}:{person.id}",
            text=t(
                lang,
                "sos.relay.category",
                id=alert.id,
                name=name_of(session.get(Person, person_id)),
                what=t(lang, f"sos.category.{category}"),
            ),
            reply_markup=buttons_for(alert, lang, policy),
            source=source_of(alert),
        )
    return Change.DONE


def set_details(
    session: Session, *, alert_id: int, person_id: int, details: str, policy: Policy
) -> Change:
    text = " ".join(details.split())[:MAX_DETAILS]
    if not text:
        return Change.INVALID
    alert = _cadres_alert(session, alert_id, person_id)
    if alert is None:
        return Change.NOT_FOUND
    alert.details = text if not alert.details else f"{alert.details} / {text}"[:MAX_DETAILS]
    session.add(alert)
    event = add_event(session, alert, "details", person_id)
    relay_event(session, alert, event, "sos.relay.details", policy, details=text)
    return Change.DONE


def update_location(
    session: Session,
    *,
    alert_id: int,
    person_id: int,
    latitude: float,
    longitude: float,
    live: bool = False,
    policy: Policy,
) -> Change:
    """Store the cadre's latest location; relay a map pin to whoever handles the alert
    (a moving live location at most every LOCATION_RELAY_SECONDS)."""
    if not (-90 <= latitude <= 90 and -180 <= longitude <= 180):
        return Change.INVALID
    if math.isnan(latitude) or math.isnan(longitude):
        return Change.INVALID
    alert = _cadres_alert(session, alert_id, person_id)
    if alert is None:
        return Change.NOT_FOUND
    now = clock.now()
    first = alert.latitude is None
    alert.latitude, alert.longitude = latitude, longitude
    alert.location_at = now
    alert.live_location = live
    session.add(alert)
    last = session.exec(
        select(AlertEvent)
        .where(AlertEvent.alert_id == alert.id, AlertEvent.kind == "location")
        .order_by(col(AlertEvent.id).desc())
    ).first()
    if not first and last is not None and (now - last.at).total_seconds() < LOCATION_RELAY_SECONDS:
        return Change.DONE
    event = add_event(session, alert, "location", person_id, live=live)
    relay_event(
        session,
        alert,
        event,
        "sos.relay.location",
        policy,
        with_location=True,
        time=hour_minute(now, policy.zone),
    )
    edit_alert_messages(session, alert, policy, taker=taker_of(session, alert))  # every card
    return Change.DONE


# ---------------------------------------------------------------------------- escalation


def escalate_due(session: Session, policy: Policy) -> list[int]:
    """Advance every open alert whose timer ran out by one stage (re-notify and widen).
    Safe to run from several places at once: each step is a conditional UPDATE."""
    now = clock.now()
    due = list(
        session.exec(
            select(Alert).where(
                Alert.status == AlertStatus.OPEN,
                col(Alert.next_escalation_at).is_not(None),
                col(Alert.next_escalation_at) <= now,
            )
        )
    )
    escalated = []
    for alert in due:
        stage = alert.stage + 1
        result = session.execute(
            update(Alert)
            .where(
                col(Alert.id) == alert.id,
                col(Alert.status) == AlertStatus.OPEN,
                col(Alert.stage) == alert.stage,
            )
            .values(stage=stage, next_escalation_at=now + policy.delay_after(stage))
            .execution_options(synchronize_session=False)
        )
        if result.rowcount != 1:  # type: ignore[attr-defined]
            continue
        session.refresh(alert)
        targets = notify_round(session, alert, stage, "escalated", policy)
        alerting.alert_round(session, alert, targets, policy.channels, escalated=True)
        audit.record(
            session,
            "alert.escalated",
            actor=None,
            target_person_id=alert.person_id,
            alert=alert.id,
            stage=stage,
        )
        escalated.append(alert.id or 0)
    return escalated


def next_due(session: Session) -> datetime | None:
    """When the next escalation is due (for the scheduler)."""
    query = (
        select(Alert.next_escalation_at)
        .where(Alert.status == AlertStatus.OPEN, col(Alert.next_escalation_at).is_not(None))
        .order_by(col(Alert.next_escalation_at))
    )
    return session.exec(query).first()
