"""Alerts: the messages of an alert, queued in the outbox (a notification round, the
cadre's contacts, relays to whoever handles it, the cadre told), the cards edited when the
alert changes, and the outbox hook that escalates at once when a whole round failed.
"""

from __future__ import annotations

import logging
from typing import Any
from zoneinfo import ZoneInfo

from sqlmodel import Session, col, select

from models import (
    Alert,
    AlertEvent,
    AlertRecipient,
    AlertStatus,
    OutboxMessage,
    OutboxStatus,
    Person,
    Priority,
    Status,
)
from services import clock, contact_links, outbox
from services.alerts.cards import (
    alert_text,
    buttons_for,
    details_text,
    handler_buttons,
    responder_buttons,
)
from services.alerts.policy import (
    CONTACT,
    NOTIFY_KEY,
    RESPONDER,
    Policy,
    active_only,
    add_event,
    hour_minute,
    local_time,
    persons_by_id,
    recipients,
    source_of,
    stage_people,
)
from services.duty_channels import alerting
from services.health import summary
from services.i18n import t
from services.people import name_of

log = logging.getLogger(__name__)


# ---------------------------------------------------------------------------- notifying


def notify_round(
    session: Session, alert: Alert, stage: int, kind: str, policy: Policy
) -> list[Person]:
    """Queue one round of alert messages (and map pins) to the responders of `stage`."""
    targets = stage_people(session, alert, stage, policy)
    existing = {r.person_id for r in recipients(session, alert.id or 0)}
    now = clock.now()
    for person in targets:
        assert person.id is not None
        if person.id not in existing:
            session.add(
                AlertRecipient(
                    alert_id=alert.id or 0,
                    person_id=person.id,
                    kind=RESPONDER,
                    stage=stage,
                    notified_at=now,
                )
            )
    session.flush()
    zone = policy.zone
    texts: dict[str, str] = {}
    for person in targets:
        lang = person.language
        key = f"alert:{alert.id}:n{stage}:{person.id}"
        if lang not in texts:
            texts[lang] = alert_text(
                session, alert, lang, zone=zone, stage=stage, with_status=False
            )
        outbox.enqueue_to(
            session,
            person,
            priority=Priority.EMERGENCY,
            idempotency_key=key,
            text=texts[lang],
            reply_markup=responder_buttons(alert, lang, policy.board_url),
            source=source_of(alert),
        )
        if alert.latitude is not None and alert.longitude is not None:
            _enqueue_location(session, alert, person, f"{key}:loc")
        if alert.cause == "checkin_red":
            _attach_checkin_chart(session, alert, person, key, zone)
    add_event(session, alert, kind, stage=stage, people=[p.id for p in targets])
    return targets


def send_details(
    session: Session, alert_id: int, viewer: Person, zone: ZoneInfo, pressed: str
) -> None:
    """«ℹ️ Details» under a card: what the card leaves out (`cards.details_text`), sent to
    `viewer` through the outbox as one of the alert's messages, so that the cadre's
    deletion edits it away like the cards (services/erasure.py). `pressed`: the button
    press, once a press."""
    alert = session.get(Alert, alert_id)
    assert alert is not None
    outbox.enqueue_to(
        session,
        viewer,
        priority=Priority.URGENT,
        idempotency_key=f"alert:{alert_id}:info:{viewer.id}:{pressed}",
        text=details_text(session, alert, viewer.language, zone=zone),
        source=source_of(alert),
    )


def _attach_checkin_chart(
    session: Session, alert: Alert, person: Person, key: str, zone: ZoneInfo
) -> None:
    """A RED check-in's alert comes with the cadre's 30-day chart, after the alert message
    (summary.attach_alert_chart decides who may see it; contacts never get it). A failure
    here never holds the alert back: it goes without the chart."""
    if alert.person_id is None:  # the cadre deleted their data: nothing to draw
        return
    try:
        with session.begin_nested():
            summary.attach_alert_chart(
                session, alert.id or 0, alert.person_id, person, after=key, zone=zone
            )
    except Exception:
        log.exception("attaching the check-in chart failed; the alert goes without it")


def notify_contacts(session: Session, alert: Alert, cadre: Person, zone: ZoneInfo) -> list[Person]:
    contacts = active_only(contact_links.contacts_of(session, cadre.id or 0), exclude=cadre.id)
    for contact in contacts:
        assert contact.id is not None
        session.add(
            AlertRecipient(
                alert_id=alert.id or 0,
                person_id=contact.id,
                kind=CONTACT,
                stage=alert.stage,
                notified_at=clock.now(),
            )
        )
        lang = contact.language
        key = "sos.contact.alert_red" if alert.cause == "checkin_red" else "sos.contact.alert"
        outbox.enqueue_to(
            session,
            contact,
            priority=Priority.EMERGENCY,
            idempotency_key=f"alert:{alert.id}:c:{contact.id}",
            text=t(
                lang,
                key,
                id=alert.id,
                name=name_of(cadre),
                time=local_time(alert.created_at, zone),
                phone=cadre.phone or "-",
            ),
            source=source_of(alert),
        )
    if contacts:
        session.flush()
        add_event(session, alert, "contacts_told", people=[c.id for c in contacts])
    return contacts


def _enqueue_location(session: Session, alert: Alert, person: Person, key: str) -> None:
    outbox.enqueue_to(
        session,
        person,
        priority=Priority.EMERGENCY,
        idempotency_key=key,
        kind="location",
        payload={"latitude": alert.latitude, "longitude": alert.longitude},
        source=source_of(alert),
    )


def taker_of(session: Session, alert: Alert) -> Person | None:
    if alert.status == AlertStatus.ACKNOWLEDGED and alert.acknowledged_by:
        return session.get(Person, alert.acknowledged_by)
    return None


def handlers_of(session: Session, alert: Alert) -> list[Person]:
    """Who gets updates: the person who took it, or every responder while nobody has."""
    if alert.status == AlertStatus.ACKNOWLEDGED and alert.acknowledged_by:
        taker = session.get(Person, alert.acknowledged_by)
        return [taker] if taker else []
    ids = [r.person_id for r in recipients(session, alert.id or 0, RESPONDER)]
    return active_only(persons_by_id(session, ids), exclude=alert.person_id)


def relay_event(
    session: Session,
    alert: Alert,
    event: AlertEvent,
    key: str,
    policy: Policy,
    with_location: bool = False,
    **values: Any,
) -> int:
    """Tell whoever handles the alert about a change (and send the map pin)."""
    cadre = session.get(Person, alert.person_id)
    targets = handlers_of(session, alert)
    for person in targets:
        lang = person.language
        base = f"alert:{alert.id}:u{event.id}:{person.id}"
        outbox.enqueue_to(
            session,
            person,
            priority=Priority.EMERGENCY,
            idempotency_key=base,
            text=t(lang, key, id=alert.id, name=name_of(cadre), **values),
            reply_markup=buttons_for(alert, lang, policy),
            source=source_of(alert),
        )
        if with_location:
            _enqueue_location(session, alert, person, f"{base}:loc")
    return len(targets)


def _alert_messages(session: Session, alert: Alert) -> list[OutboxMessage]:
    rows = session.exec(
        select(OutboxMessage)
        .where(OutboxMessage.source == source_of(alert), OutboxMessage.kind == "text")
        .order_by(col(OutboxMessage.id))
    )
    return [row for row in rows if NOTIFY_KEY.match(row.idempotency_key)]


def cancel_unsent_rounds(session: Session, alert: Alert) -> None:
    """Alert messages still waiting to be sent are not needed once someone took it (those
    the worker has already taken go out, and are then edited like the others)."""
    keys = [r.idempotency_key for r in _alert_messages(session, alert) if r.status == "pending"]
    if keys:
        outbox.cancel(session, keys=keys)
        session.expire_all()


def edit_alert_messages(
    session: Session,
    alert: Alert,
    policy: Policy,
    *,
    taker: Person | None = None,
    pressed: int | None = None,
) -> None:
    """Bring every alert message that went out up to date (who took it, or the outcome).
    An edit of a message still queued waits for it; one never sent is dropped."""
    zone = policy.zone
    texts: dict[str, str] = {}
    for row in _alert_messages(session, alert):
        if row.status == OutboxStatus.CANCELLED:
            continue
        mine = taker is not None and row.person_id == taker.id
        if mine and pressed is not None and row.telegram_message_id == pressed:
            continue  # the handler edits the message that was pressed, right away
        lang = row.language or "zh-Hans"
        if lang not in texts:
            texts[lang] = alert_text(session, alert, lang, zone=zone)
        markup = None
        if mine and alert.status == AlertStatus.ACKNOWLEDGED:
            markup = handler_buttons(alert, lang)
        elif alert.status == AlertStatus.OPEN:  # a new location: the card keeps ✋
            markup = responder_buttons(alert, lang, policy.board_url)
        outbox.enqueue_edit(
            session,
            text=texts[lang],
            edit_of=row.idempotency_key,
            reply_markup=markup,
            priority=Priority.EMERGENCY,
            source=source_of(alert),
        )


def tell_cadre_and_contacts(
    session: Session,
    alert: Alert,
    event: AlertEvent,
    what: str,
    actor: Person | None,
    policy: Policy,
) -> None:
    alerting.alert_update(session, alert, what, actor, policy.channels)  # the duty groups
    cadre = session.get(Person, alert.person_id)
    if cadre is None:
        return
    zone = policy.zone
    values = {
        "id": alert.id,
        "name": name_of(actor),
        "phone": (actor.phone if actor else None) or "-",
        "role": t(cadre.language, f"role.{actor.role}") if actor else "-",
        "time": hour_minute(clock.now(), zone),
        "outcome": t(cadre.language, f"sos.outcome.{alert.outcome}") if alert.outcome else "-",
    }
    if what in ("acknowledged", "resolved"):  # whatever their status: they called
        outbox.enqueue_to(
            session,
            cadre,
            priority=Priority.EMERGENCY,
            idempotency_key=f"alert:{alert.id}:cadre:{event.id}",
            text=t(cadre.language, f"sos.cadre.{what}", **values),
            source=source_of(alert),
        )
    for row in recipients(session, alert.id or 0, CONTACT):
        contact = session.get(Person, row.person_id)
        if contact is None or contact.status != Status.ACTIVE:
            continue
        lang = contact.language
        contact_values = dict(values)
        contact_values["cadre"] = name_of(cadre)
        contact_values["role"] = t(lang, f"role.{actor.role}") if actor else "-"
        contact_values["outcome"] = (
            t(lang, f"sos.outcome.{alert.outcome}") if alert.outcome else "-"
        )
        outbox.enqueue_to(
            session,
            contact,
            priority=Priority.EMERGENCY,
            idempotency_key=f"alert:{alert.id}:ct{event.id}:{contact.id}",
            text=t(lang, f"sos.contact.{what}", **contact_values),
            source=source_of(alert),
        )


# ---------------------------------------------------------------------------- delivery outcomes


def on_delivery_outcomes(session: Session, outcomes: list[Any]) -> None:
    """Outbox hook (source ``alert:``): when every alert message of the current round failed
    for good (the people on duty blocked the bot, say), escalate now instead of waiting for
    the acknowledgement timeout: an SOS must reach a human."""
    alert_ids: set[int] = set()
    for outcome in outcomes:
        if outcome.status != OutboxStatus.FAILED:
            continue
        parts = (outcome.source or "").split(":")
        if len(parts) == 2 and parts[1].isdigit():
            alert_ids.add(int(parts[1]))
    now = clock.now()
    for alert_id in alert_ids:
        alert = session.get(Alert, alert_id)
        if alert is None or alert.status != AlertStatus.OPEN:
            continue
        session.refresh(alert)
        prefix = f"alert:{alert.id}:n{alert.stage}:"
        rows = [r for r in _alert_messages(session, alert) if r.idempotency_key.startswith(prefix)]
        for row in rows:
            session.refresh(row)
        if rows and all(r.status == OutboxStatus.FAILED for r in rows):
            if alert.next_escalation_at is None or alert.next_escalation_at > now:
                alert.next_escalation_at = now
                session.add(alert)
                add_event(session, alert, "round_failed", stage=alert.stage)
