"""Alerts: SOS and red-flag health results reaching a human.

Contract used by other features:
    raise_alert(session, *, person_id, cause, reasons=None) -> int   # the alert id
cause is "sos" or "checkin_red"; reasons are catalog keys explaining a red result. The
alert is stored, its first-tier messages are queued at emergency priority in the same
transaction, and the escalation timer starts. The caller wakes the delivery worker.
A person has at most one alert in progress: raising again while one is open returns it
(the new cause and reasons are added to its timeline and relayed to whoever handles it).

Who is alerted (``stage`` counts the notification rounds):
  1. the responders on duty for the cadre's prefecture (services.roster); when nobody is
     on duty, the alert starts at stage 2;
  2. after CADRE_SOS_ACK_TIMEOUT: the stage-1 people again, every duty officer of the
     prefecture and every admin;
  3+. after another timeout, then every CADRE_SOS_REPEAT_INTERVAL: every duty officer
     and admin, until someone acknowledges.
The cadre's contacts who joined the bot are told once, when the alert is raised.
The first acknowledgement wins (a conditional UPDATE ... WHERE status = 'open').
"""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import case, insert, update
from sqlmodel import Session, col, select

from config import Settings
from models import (
    Alert,
    AlertEvent,
    AlertRecipient,
    AlertStatus,
    Channel,
    OutboxMessage,
    OutboxStatus,
    Person,
    Priority,
    Status,
)
from services import (
    audit,
    board_links,
    channels,
    clock,
    contact_links,
    outbox,
    people,
    roster,
    state,
    tables,
)
from services.channels import ChannelConfig
from services.health import summary
from services.i18n import Html, escape, plain_text, t
from services.log_context import about_alert
from services.people import name_of, posting_text
from services.permissions import Action, check, may_see, sos_verified, visible_prefectures
from services.postings import load_postings

log = logging.getLogger(__name__)

CAUSES = ("sos", "checkin_red")
CATEGORIES = ("altitude", "injury", "accident", "other")
OUTCOMES = ("false_alarm", "on_site", "hospital", "evacuated")
IN_PROGRESS = (AlertStatus.OPEN, AlertStatus.ACKNOWLEDGED)
EVENT_KINDS = (  # the timeline's events, each with a catalog text sos.tl.<kind>
    "raised",
    "raised_again",
    "cause_added",
    "notified",
    "escalated",
    "nobody_on_duty",
    "round_failed",
    "contacts_told",
    "category",
    "details",
    "location",
    "acknowledged",
    "resolved",
    "note",
    "cancelled",
    "erased",  # the person deleted their data (services/erasure.py)
    "followup",
)
RESPONDER = "responder"
CONTACT = "contact"
LOCATION_RELAY_SECONDS = 120  # a live location is relayed at most this often
REPEAT_RELAY_SECONDS = 60  # "pressed SOS again" is relayed at most this often
MAX_DETAILS = 1000
FOLLOW_UP_HOURS = 24  # a closed alert's cadre may still write to whoever handled it
WAIT_KIND = "sos_pending"  # bot_state: the typed answers the emergency channel waits for
RECENT_DAYS = 7
_NOTIFY_KEY = re.compile(r"^alert:\d+:n\d+:\d+$")


@dataclass(frozen=True)
class Policy:
    """What raising and handling an alert needs of the settings: the timings of escalation,
    the time zone used in messages, the other channels (services.channels) and the board's
    address (its "Open board" button). Every function that sends something takes it."""

    ack_timeout: int = 180
    repeat_interval: int = 300
    zone: ZoneInfo = field(default_factory=lambda: ZoneInfo("Asia/Shanghai"))
    channels: ChannelConfig = field(default_factory=ChannelConfig)
    board_url: str | None = None  # CADRE_WEBAPP_URL

    @classmethod
    def from_settings(cls, settings: Settings, bot_username: str | None = None) -> Policy:
        """`bot_username`: the bot's own, for the acknowledgement link of the other channels
        (known once the bot has started)."""
        return cls(
            ack_timeout=settings.sos_ack_timeout,
            repeat_interval=settings.sos_repeat_interval,
            zone=settings.zone,
            channels=ChannelConfig.from_settings(settings, bot_username),
            board_url=settings.webapp_url,
        )

    def delay_after(self, stage: int) -> timedelta:
        """How long an alert at `stage` waits for an acknowledgement before the next."""
        return timedelta(seconds=self.ack_timeout if stage < 3 else self.repeat_interval)


# ---------------------------------------------------------------------------- small helpers


def _last_checkin_line(session: Session, person_id: int, lang: str, zone: ZoneInfo) -> str | None:
    """The cadre's last check-in for the card (services.health.summary); if it fails, the
    alert says that no check-in is available: it never holds the alert back."""
    try:
        return summary.last_checkin_line(session, person_id, lang, zone=zone)
    except Exception:
        log.exception("last_checkin_line failed; the alert goes out without it")
        return None


def _local(moment: datetime | None, zone: ZoneInfo) -> str:
    return moment.astimezone(zone).strftime("%Y-%m-%d %H:%M") if moment else "-"


def _hm(moment: datetime | None, zone: ZoneInfo) -> str:
    return moment.astimezone(zone).strftime("%H:%M") if moment else "-"


def _is_unreachable(person: Person) -> bool:
    return getattr(person, "unreachable_since", None) is not None


def _event(
    session: Session,
    alert: Alert,
    kind: str,
    actor: Person | int | None = None,
    **detail: Any,
) -> AlertEvent:
    actor_id = actor.id if isinstance(actor, Person) else actor
    event = AlertEvent(
        alert_id=alert.id or 0,
        at=clock.now(),
        kind=kind,
        actor_person_id=actor_id,
        detail=detail,
    )
    session.add(event)
    session.flush()
    return event


def _source(alert: Alert) -> str:
    return f"alert:{alert.id}"


def recipients(session: Session, alert_id: int, kind: str | None = None) -> list[AlertRecipient]:
    query = select(AlertRecipient).where(AlertRecipient.alert_id == alert_id)
    if kind is not None:
        query = query.where(AlertRecipient.kind == kind)
    return list(session.exec(query.order_by(col(AlertRecipient.id))))


def _people(session: Session, ids: Iterable[int]) -> list[Person]:
    ids = list(dict.fromkeys(ids))
    if not ids:
        return []
    found = {p.id: p for p in session.exec(select(Person).where(col(Person.id).in_(ids)))}
    return [found[i] for i in ids if i in found]


def _active(persons: Iterable[Person], exclude: int | None) -> list[Person]:
    seen: set[int] = set()
    result = []
    for person in persons:
        if person.id is None or person.id == exclude or person.id in seen:
            continue
        if person.status != Status.ACTIVE:
            continue
        seen.add(person.id)
        result.append(person)
    return result


# ---------------------------------------------------------------------------- who is alerted


def _stage_people(session: Session, alert: Alert, stage: int, policy: Policy) -> list[Person]:
    """The responders of a notification round (never the cadre themself)."""
    earlier = _people(session, (r.person_id for r in recipients(session, alert.id or 0, RESPONDER)))
    if stage <= 1:
        found = roster.on_duty_now(session, alert.prefecture, clock.now(), policy.zone)
    elif stage == 2:
        area = roster.duty_officers(session, alert.prefecture) if alert.prefecture else []
        found = [*earlier, *area, *people.admins(session)]
    else:
        found = [*earlier, *roster.duty_officers(session), *people.admins(session)]
    return _active(found, exclude=alert.person_id)


def responders_for_stage(
    session: Session, alert_id: int, stage: int, policy: Policy
) -> list[Person]:
    alert = session.get(Alert, alert_id)
    return _stage_people(session, alert, stage, policy) if alert else []


# ---------------------------------------------------------------------------- texts


def _category_text(alert: Alert, lang: str) -> str:
    if alert.cause == "checkin_red" and not alert.category:
        return t(lang, "sos.cause.checkin_red")
    if not alert.category:
        return t(lang, "sos.alert.category_unknown")
    return t(lang, f"sos.category.{alert.category}")


def _reasons_text(alert: Alert, lang: str) -> str:
    return "; ".join(t(lang, key) for key in alert.reasons or [])


def _location_text(alert: Alert, lang: str, zone: ZoneInfo) -> str:
    if alert.latitude is None or alert.longitude is None:
        return t(lang, "sos.alert.location_unknown")
    key = "sos.alert.location_live" if alert.live_location else "sos.alert.location_at"
    return t(
        lang,
        key,
        lat=f"{alert.latitude:.5f}",
        lon=f"{alert.longitude:.5f}",
        time=_hm(alert.location_at, zone),
    )


def _status_line(session: Session, alert: Alert, lang: str, zone: ZoneInfo) -> str:
    if alert.status == AlertStatus.ACKNOWLEDGED:
        who = session.get(Person, alert.acknowledged_by) if alert.acknowledged_by else None
        return t(
            lang,
            "sos.alert.status_taken",
            name=name_of(who),
            time=_hm(alert.acknowledged_at, zone),
        )
    if alert.status == AlertStatus.RESOLVED:
        who = session.get(Person, alert.resolved_by) if alert.resolved_by else None
        return t(
            lang,
            "sos.alert.status_resolved",
            name=name_of(who),
            time=_hm(alert.resolved_at, zone),
            outcome=t(lang, f"sos.outcome.{alert.outcome or 'on_site'}"),
        )
    if alert.status == AlertStatus.CANCELLED:
        return t(lang, "sos.alert.status_cancelled", time=_hm(alert.cancelled_at, zone))
    return t(lang, "sos.alert.status_open")


def alert_text(
    session: Session,
    alert: Alert,
    lang: str,
    *,
    zone: ZoneInfo,
    stage: int | None = None,
    with_status: bool = True,
) -> str:
    """The alert as a responder sees it: who, where, when, what, location, phones,
    the last check-in, who cannot be reached on Telegram, and its status."""
    person = session.get(Person, alert.person_id) if alert.person_id is not None else None
    if person is None:  # the person deleted their data: the record keeps times only
        return _erased_text(session, alert, lang, zone, with_status)
    steps = causes(session, alert)
    sos = any(cause == "sos" for cause, _ in steps)
    title_key = "sos.alert.title" if sos else "sos.alert.title_red"
    lines = [t(lang, title_key, id=alert.id, name=name_of(person))]
    if alert.unverified:
        lines.append(_unverified_line(alert, lang))
    if stage and stage > 1:
        lines.append(t(lang, "sos.alert.escalated", stage=stage))
    lines.append(t(lang, "sos.alert.posting", posting=posting_text(person, lang)))
    lines.append(t(lang, "sos.alert.time", time=_local(alert.created_at, zone)))
    if len(steps) > 1:  # what really happened, in order: a RED check-in, then an SOS
        lines.append(t(lang, "sos.alert.history", steps=_history(alert, steps, lang, zone)))
    lines.append(t(lang, "sos.alert.what", what=_category_text(alert, lang)))
    if alert.details:
        lines.append(t(lang, "sos.alert.details", details=alert.details))
    if alert.reasons:
        key = "sos.alert.reasons_red" if len(steps) > 1 else "sos.alert.reasons"
        lines.append(t(lang, key, reasons=_reasons_text(alert, lang)))
    lines.append(t(lang, "sos.alert.location", location=_location_text(alert, lang, zone)))
    lines.append(t(lang, "sos.alert.phone", phone=person.phone or "-"))
    contacts = people.emergency_contacts(session, person.id or 0)
    if contacts:
        listed = "; ".join(f"{c.name} {c.phone}" for c in contacts)
        lines.append(t(lang, "sos.alert.contacts", contacts=listed))
    checkin = _last_checkin_line(session, person.id or 0, lang, zone)
    # The check-in line carries its own label ("Last check-in: ...").
    lines.append(checkin or t(lang, "sos.alert.checkin", checkin=t(lang, "sos.alert.no_checkin")))
    unreachable = _unreachable_lines(session, alert, lang)
    if unreachable:
        lines.append(t(lang, "sos.alert.call_them", people=Html("\n".join(unreachable))))
    count = len(recipients(session, alert.id or 0, RESPONDER))
    # "press I'm on it" only while that is what is needed
    alerted = "sos.alert.alerted" if alert.status == AlertStatus.OPEN else "sos.alert.alerted_count"
    lines.append(t(lang, alerted, count=count))
    if with_status:
        lines.append(_status_line(session, alert, lang, zone))
    return "\n".join(lines)


def _erased_text(
    session: Session, alert: Alert, lang: str, zone: ZoneInfo, with_status: bool
) -> str:
    title_key = "sos.alert.title_red" if alert.cause == "checkin_red" else "sos.alert.title"
    lines = [
        t(lang, title_key, id=alert.id, name=t(lang, "sos.deleted_person")),
        t(lang, "sos.alert.time", time=_local(alert.created_at, zone)),
    ]
    if with_status:
        lines.append(_status_line(session, alert, lang, zone))
    return "\n".join(lines)


def causes(session: Session, alert: Alert) -> list[tuple[str, datetime]]:
    """What raised the alert, in order: its own cause, then any other cause that joined it
    (an SOS pressed while a RED check-in's alert was open, or the reverse)."""
    steps = [(alert.cause, alert.created_at)]
    added = session.exec(
        select(AlertEvent)
        .where(AlertEvent.alert_id == alert.id, AlertEvent.kind == "cause_added")
        .order_by(col(AlertEvent.id))
    )
    steps += [(str((e.detail or {}).get("cause", "sos")), e.at) for e in added]
    return steps


def _history(alert: Alert, steps: list[tuple[str, datetime]], lang: str, zone: ZoneInfo) -> str:
    """ "RED check-in at 07:02; SOS pressed at 07:12: 🩹 Injury, fell on ice"."""
    parts = []
    for cause, at in steps:
        part = t(lang, f"sos.alert.step.{cause}", time=_hm(at, zone))
        if cause == "sos" and (alert.category or alert.details):
            said = [t(lang, f"sos.category.{alert.category}")] if alert.category else []
            said += [alert.details] if alert.details else []
            part = t(lang, "sos.alert.step_said", step=Html(part), said=", ".join(said))
        parts.append(part)
    return Html("; ".join(parts))


def _unverified_line(alert: Alert, lang: str) -> str:
    """Who called, as far as the bot knows: not an active member, their Telegram name."""
    caller = alert.caller or {}
    status = str(caller.get("status") or "guest")
    handle = str(caller.get("telegram_name") or "-")
    if caller.get("username"):
        handle += f" (@{caller['username']})"
    return t(
        lang,
        "sos.alert.unverified",
        status=t(lang, f"sos.alert.caller.{status}"),
        telegram=handle,
    )


def _unreachable_lines(session: Session, alert: Alert, lang: str) -> list[str]:
    """Responders and joined contacts Telegram cannot reach, with their phone numbers."""
    ids = [r.person_id for r in recipients(session, alert.id or 0)]
    if alert.person_id is not None:
        ids += [p.id for p in contact_links.contacts_of(session, alert.person_id) if p.id]
    lines = []
    for person in _people(session, ids):
        if _is_unreachable(person):
            role = t(lang, f"role.{person.role}")
            lines.append(
                t(
                    lang,
                    "sos.alert.call_line",
                    name=name_of(person),
                    role=role,
                    phone=person.phone or "-",
                )
            )
    return lines


def responder_buttons(alert: Alert, lang: str, board_url: str | None) -> dict[str, Any]:
    """Acknowledge, resolve, the timeline; "Open board" when there is a board."""
    keyboard = outbox.inline_keyboard(
        [
            [
                (t(lang, "sos.btn.ack"), f"sos:ack:{alert.id}"),
                (t(lang, "sos.btn.resolve"), f"sos:res:{alert.id}"),
            ],
            [(t(lang, "sos.btn.timeline"), f"sos:tl:{alert.id}")],
        ]
    )
    buttons: dict[str, Any] = board_links.with_open_button(
        keyboard, board_url, lang, f"alert/{alert.id}"
    )
    return buttons  # with the Mini App's "Open board" row when the board is on


def handler_buttons(alert: Alert, lang: str) -> dict[str, Any]:
    """For the person who took it: resolve and the timeline."""
    return outbox.inline_keyboard(
        [
            [
                (t(lang, "sos.btn.resolve"), f"sos:res:{alert.id}"),
                (t(lang, "sos.btn.timeline"), f"sos:tl:{alert.id}"),
            ]
        ]
    )


# ---------------------------------------------------------------------------- notifying


def _notify_round(
    session: Session, alert: Alert, stage: int, kind: str, policy: Policy
) -> list[Person]:
    """Queue one round of alert messages (and map pins) to the responders of `stage`."""
    targets = _stage_people(session, alert, stage, policy)
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
            source=_source(alert),
        )
        if alert.latitude is not None and alert.longitude is not None:
            _enqueue_location(session, alert, person, f"{key}:loc")
        if alert.cause == "checkin_red":
            _attach_checkin_chart(session, alert, person, key, zone)
    _event(session, alert, kind, stage=stage, people=[p.id for p in targets])
    return targets


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


def _notify_contacts(session: Session, alert: Alert, cadre: Person, zone: ZoneInfo) -> list[Person]:
    contacts = _active(contact_links.contacts_of(session, cadre.id or 0), exclude=cadre.id)
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
                time=_local(alert.created_at, zone),
                phone=cadre.phone or "-",
            ),
            source=_source(alert),
        )
    if contacts:
        session.flush()
        _event(session, alert, "contacts_told", people=[c.id for c in contacts])
    return contacts


def _enqueue_location(session: Session, alert: Alert, person: Person, key: str) -> None:
    outbox.enqueue_to(
        session,
        person,
        priority=Priority.EMERGENCY,
        idempotency_key=key,
        kind="location",
        payload={"latitude": alert.latitude, "longitude": alert.longitude},
        source=_source(alert),
    )


def _taker(session: Session, alert: Alert) -> Person | None:
    if alert.status == AlertStatus.ACKNOWLEDGED and alert.acknowledged_by:
        return session.get(Person, alert.acknowledged_by)
    return None


def _handlers(session: Session, alert: Alert) -> list[Person]:
    """Who gets updates: the person who took it, or every responder while nobody has."""
    if alert.status == AlertStatus.ACKNOWLEDGED and alert.acknowledged_by:
        taker = session.get(Person, alert.acknowledged_by)
        return [taker] if taker else []
    ids = [r.person_id for r in recipients(session, alert.id or 0, RESPONDER)]
    return _active(_people(session, ids), exclude=alert.person_id)


def _relay(
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
    targets = _handlers(session, alert)
    for person in targets:
        lang = person.language
        base = f"alert:{alert.id}:u{event.id}:{person.id}"
        outbox.enqueue_to(
            session,
            person,
            priority=Priority.EMERGENCY,
            idempotency_key=base,
            text=t(lang, key, id=alert.id, name=name_of(cadre), **values),
            reply_markup=_buttons_for(alert, lang, policy),
            source=_source(alert),
        )
        if with_location:
            _enqueue_location(session, alert, person, f"{base}:loc")
    return len(targets)


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
) -> int:
    """Store an alert and queue its first messages at emergency priority (see the module
    docstring). Returns the alert id; an alert already in progress is reused.

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
        _raised_again(session, existing, person, cause, reasons or [], policy)
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
        _raised_again(session, existing, person, cause, reasons or [], policy)
        return existing.id or 0
    about_alert(new_id)  # log lines from here on name the alert
    alert = session.get(Alert, new_id)
    assert alert is not None
    _event(
        session,
        alert,
        "raised",
        person,
        cause=cause,
        reasons=list(reasons or []),
        unverified=unverified,
    )
    targets = [] if unverified else _notify_round(session, alert, 1, "notified", policy)
    if unverified:  # the admins and the area's duty officers, at once
        alert.stage = 2
        targets = _notify_round(session, alert, 2, "notified", policy)
    elif not targets:
        alert.stage = 2
        _event(session, alert, "nobody_on_duty")
        targets = _notify_round(session, alert, 2, "notified", policy)
    channels.alert_round(session, alert, targets, policy.channels)  # WeCom, DingTalk, SMS
    alert.next_escalation_at = now + policy.delay_after(alert.stage)
    session.add(alert)
    _notify_contacts(session, alert, person, policy.zone)
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


def _raised_again(
    session: Session, alert: Alert, person: Person, cause: str, reasons: list[str], policy: Policy
) -> None:
    now = clock.now()
    if cause == "checkin_red" and reasons:
        merged = list(dict.fromkeys([*(alert.reasons or []), *reasons]))
        alert.reasons = merged
        session.add(alert)
    if cause not in {known for known, _ in causes(session, alert)}:
        # Not "again": an SOS pressed while a RED check-in's alert is open (or the
        # reverse) is its own event and cause, and the handlers are told what happened.
        event = _event(session, alert, "cause_added", person, cause=cause, reasons=reasons)
        zone = policy.zone
        _relay(
            session,
            alert,
            event,
            f"sos.relay.{cause}_added",
            policy,
            time=_hm(now, zone),
            first=_hm(alert.created_at, zone),
        )
        _edit_alert_messages(session, alert, policy, taker=_taker(session, alert))
        return
    last = session.exec(
        select(AlertEvent)
        .where(AlertEvent.alert_id == alert.id, AlertEvent.kind == "raised_again")
        .order_by(col(AlertEvent.id).desc())
    ).first()
    event = _event(session, alert, "raised_again", person, cause=cause, reasons=reasons)
    if last is not None and (now - last.at).total_seconds() < REPEAT_RELAY_SECONDS:
        return
    key = "sos.relay.red_again" if cause == "checkin_red" else "sos.relay.sos_again"
    _relay(session, alert, event, key, policy)


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
    event = _event(session, alert, "category", person_id, category=category)
    for person in _handlers(session, alert):
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
            reply_markup=_buttons_for(alert, lang, policy),
            source=_source(alert),
        )
    return Change.DONE


def _buttons_for(alert: Alert, lang: str, policy: Policy) -> dict[str, Any]:
    if alert.status == AlertStatus.ACKNOWLEDGED:
        return handler_buttons(alert, lang)
    return responder_buttons(alert, lang, policy.board_url)


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
    event = _event(session, alert, "details", person_id)
    _relay(session, alert, event, "sos.relay.details", policy, details=text)
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
    event = _event(session, alert, "location", person_id, live=live)
    _relay(
        session,
        alert,
        event,
        "sos.relay.location",
        policy,
        with_location=True,
        time=_hm(now, policy.zone),
    )
    _edit_alert_messages(session, alert, policy, taker=_taker(session, alert))  # every card
    return Change.DONE


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
    event = _event(session, alert, "acknowledged", actor)
    audit.record(
        session,
        "alert.acknowledged",
        actor=actor.telegram_id,
        target_person_id=alert.person_id,
        alert=alert.id,
    )
    _cancel_unsent_rounds(session, alert)
    _edit_alert_messages(session, alert, policy, taker=actor, pressed=pressed_message_id)
    _tell_cadre_and_contacts(session, alert, event, "acknowledged", actor, policy)
    return AckResult(Ack.WON, alert, by=actor)


def _alert_messages(session: Session, alert: Alert) -> list[OutboxMessage]:
    rows = session.exec(
        select(OutboxMessage)
        .where(OutboxMessage.source == _source(alert), OutboxMessage.kind == "text")
        .order_by(col(OutboxMessage.id))
    )
    return [row for row in rows if _NOTIFY_KEY.match(row.idempotency_key)]


def _cancel_unsent_rounds(session: Session, alert: Alert) -> None:
    """Alert messages still waiting to be sent are not needed once someone took it (those
    the worker has already taken go out, and are then edited like the others)."""
    keys = [r.idempotency_key for r in _alert_messages(session, alert) if r.status == "pending"]
    if keys:
        outbox.cancel(session, keys=keys)
        session.expire_all()


def _edit_alert_messages(
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
            source=_source(alert),
        )


def _tell_cadre_and_contacts(
    session: Session,
    alert: Alert,
    event: AlertEvent,
    what: str,
    actor: Person | None,
    policy: Policy,
) -> None:
    channels.alert_update(session, alert, what, actor, policy.channels)  # the duty groups
    cadre = session.get(Person, alert.person_id)
    if cadre is None:
        return
    zone = policy.zone
    values = {
        "id": alert.id,
        "name": name_of(actor),
        "phone": (actor.phone if actor else None) or "-",
        "role": t(cadre.language, f"role.{actor.role}") if actor else "-",
        "time": _hm(clock.now(), zone),
        "outcome": t(cadre.language, f"sos.outcome.{alert.outcome}") if alert.outcome else "-",
    }
    if what in ("acknowledged", "resolved"):  # whatever their status: they called
        outbox.enqueue_to(
            session,
            cadre,
            priority=Priority.EMERGENCY,
            idempotency_key=f"alert:{alert.id}:cadre:{event.id}",
            text=t(cadre.language, f"sos.cadre.{what}", **values),
            source=_source(alert),
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
            source=_source(alert),
        )


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
    event = _event(session, alert, "resolved", actor, outcome=outcome)
    audit.record(
        session,
        "alert.resolved",
        actor=actor.telegram_id,
        target_person_id=alert.person_id,
        alert=alert.id,
        outcome=outcome,
    )
    _cancel_unsent_rounds(session, alert)
    _edit_alert_messages(session, alert, policy, taker=actor, pressed=pressed_message_id)
    _tell_cadre_and_contacts(session, alert, event, "resolved", actor, policy)
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
    _event(session, alert, "note", actor)
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
    _event(session, alert, "cancelled", actor)
    audit.record(
        session,
        "alert.cancelled",
        actor=actor.telegram_id,
        target_person_id=actor.id,
        alert=alert.id,
    )
    _cancel_unsent_rounds(session, alert)
    _edit_alert_messages(session, alert, policy)
    channels.alert_update(session, alert, "cancelled", actor, policy.channels)
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
                time=_hm(now, zone),
            ),
            source=_source(alert),
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
    return _active(_people(session, ids), exclude=alert.person_id)


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
    event = _event(session, alert, "followup", person_id, people=[p.id for p in targets])
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
                time=_hm(closed, zone),
                text=body,
            ),
            source=_source(alert),
        )
    return FollowUp(targets, alert)


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
        targets = _notify_round(session, alert, stage, "escalated", policy)
        channels.alert_round(session, alert, targets, policy.channels)
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


# ---------------------------------------------------------------------------- reading


def get(session: Session, alert_id: int) -> Alert | None:
    return session.get(Alert, alert_id)


def without_cadre_notice(session: Session, hours: int = 6) -> list[tuple[int, int]]:
    """(alert id, person id) of SOS alerts in progress, raised in the last `hours`, whose
    cadre has no "help is called" message queued (a crash between the two transactions)."""
    since = clock.now() - timedelta(hours=hours)
    found = session.exec(
        select(Alert.id, Alert.person_id).where(
            col(Alert.status).in_(IN_PROGRESS),
            Alert.cause == "sos",
            col(Alert.created_at) >= since,
        )
    ).all()
    result = []
    for alert_id, person_id in found:
        keys = session.exec(
            select(OutboxMessage.idempotency_key).where(OutboxMessage.source == f"alert:{alert_id}")
        ).all()
        if person_id is not None and not any(
            key.startswith(f"alert:{alert_id}:help:") for key in keys
        ):
            result.append((alert_id or 0, person_id))
    return result


def alerted_counts(session: Session, alert_id: int) -> tuple[int, int]:
    """(responders, contacts) alerted so far."""
    rows = recipients(session, alert_id)
    responders = sum(1 for r in rows if r.kind == RESPONDER)
    return responders, len(rows) - responders


def visible_alerts(
    session: Session, viewer: Person, *, days: int = RECENT_DAYS, limit: int = 30
) -> list[Alert]:
    """Alerts in progress and those of the last `days` days, in the viewer's area (or sent
    to them for action); in progress first, newest first. The same alerts as
    `handling_refusal` lets the viewer read, selected by the database."""
    assert viewer.id is not None
    if check(viewer, Action.HANDLE_ALERTS) is not None:
        return []
    since = clock.now() - timedelta(days=days)
    in_progress = col(Alert.status).in_(IN_PROGRESS)
    query = select(Alert).where(in_progress | (col(Alert.created_at) >= since))
    query = query.where(col(Alert.person_id).is_(None) | (col(Alert.person_id) != viewer.id))
    area = visible_prefectures(viewer, people.duty_areas(session, viewer.id))
    if area is not None:
        sent = select(AlertRecipient.alert_id).where(
            AlertRecipient.person_id == viewer.id, AlertRecipient.kind == RESPONDER
        )
        query = query.where(col(Alert.prefecture).in_(sorted(area)) | col(Alert.id).in_(sent))
    first = case((in_progress, 0), else_=1)
    return list(session.exec(query.order_by(first, col(Alert.id).desc()).limit(limit)))


@dataclass
class TimelineItem:
    at: datetime
    text: str


def _namer(session: Session, lang: str) -> Callable[[int | None], str]:
    """Names of the people on a timeline, each read once."""
    names: dict[int, str] = {}

    def who(person_id: int | None) -> str:
        if person_id is None:
            return t(lang, "sos.tl.system")
        if person_id not in names:
            names[person_id] = name_of(session.get(Person, person_id))
        return names[person_id]

    return who


def _event_values(event: AlertEvent, who: Callable[[int | None], str], lang: str) -> dict[str, Any]:
    """The values an event's catalog text (sos.tl.<kind>) may use."""
    detail = event.detail or {}
    return {
        "actor": who(event.actor_person_id),
        "stage": detail.get("stage", "-"),
        "count": len(detail.get("people", [])),
        "cause": t(lang, f"sos.cause.{detail.get('cause', 'sos')}"),
        "what": t(lang, f"sos.category.{detail.get('category', 'other')}"),
        "outcome": t(lang, f"sos.outcome.{detail.get('outcome', 'on_site')}"),
    }


def timeline(session: Session, alert: Alert, lang: str, zone: ZoneInfo) -> list[TimelineItem]:
    """Every event with its time and actor, and each message's delivery from the outbox."""
    items: list[TimelineItem] = []
    who = _namer(session, lang)

    events = session.exec(
        select(AlertEvent).where(AlertEvent.alert_id == alert.id).order_by(col(AlertEvent.id))
    )
    for event in events:
        values = _event_values(event, who, lang)
        key = f"sos.tl.{event.kind}"
        items.append(TimelineItem(event.at, t(lang, key, **values)))
    rows = session.exec(
        select(OutboxMessage)
        .where(OutboxMessage.source == _source(alert))
        .order_by(col(OutboxMessage.id))
    )
    for row in rows:
        if row.kind == "edit":
            continue
        elsewhere = channels.timeline_text(row, lang)  # WeCom, DingTalk, SMS
        if elsewhere is not None:
            items.append(TimelineItem(*elsewhere))
            continue
        target = who(row.person_id) if row.person_id else str(row.chat_id)
        if row.status == OutboxStatus.SENT and row.sent_at:
            items.append(TimelineItem(row.sent_at, t(lang, "sos.tl.delivered", to=target)))
        elif row.status == OutboxStatus.FAILED:
            reason = getattr(row, "outcome_code", None) or row.outcome or "-"
            when = row.sent_at or row.next_attempt_at or row.created_at
            items.append(
                TimelineItem(when, t(lang, "sos.tl.failed", to=target, reason=str(reason)[:80]))
            )
        elif row.status in (OutboxStatus.PENDING, OutboxStatus.SENDING):
            items.append(
                TimelineItem(
                    row.created_at,
                    t(lang, "sos.tl.pending", to=target, attempts=row.attempts),
                )
            )
    items.sort(key=lambda item: item.at)
    return items


_ROUND_KEY = re.compile(r"^alert:\d+:[ngs](\d+):")  # a round's message: Telegram, group, SMS
MAX_NAMES = 5  # names on a round's line before "+n"


def compact_timeline(
    session: Session, alert: Alert, lang: str, zone: ZoneInfo
) -> list[TimelineItem]:
    """The timeline for a phone screen: each event once, a run of locations as its last
    one, each notification round as one line ("round 1: delivered 2/2, Zhang Qiang, Chen
    Jing"), and the other messages (to the cadre, the contacts, updates) as one line. The CSV
    (`timeline_csv`) keeps every event and every delivery."""
    who = _namer(session, lang)

    rounds: dict[int, list[OutboxMessage]] = {}
    others: list[OutboxMessage] = []
    rows = session.exec(
        select(OutboxMessage)
        .where(OutboxMessage.source == _source(alert))
        .order_by(col(OutboxMessage.id))
    )
    for row in rows:
        if row.kind == "edit":
            continue
        found = _ROUND_KEY.match(row.idempotency_key)
        if found and row.kind == "text":
            rounds.setdefault(int(found.group(1)), []).append(row)
        elif not found:
            others.append(row)

    def target(row: OutboxMessage) -> str:
        if row.channel not in (None, Channel.TELEGRAM):
            label = str((row.payload or {}).get("label") or row.target or "-")
            if row.channel == Channel.SMS:
                return t(lang, "channels.label.sms", phone=label)
            return label
        return who(row.person_id) if row.person_id else str(row.chat_id)

    def summary(batch: list[OutboxMessage]) -> dict[str, Any]:
        sent = [r for r in batch if r.status == OutboxStatus.SENT]
        failed = [r for r in batch if r.status == OutboxStatus.FAILED]
        waiting = [r for r in batch if r.status in (OutboxStatus.PENDING, OutboxStatus.SENDING)]
        sep = t(lang, "sos.tl.sep")
        listed = [escape(target(r)) for r in sent[:MAX_NAMES]]
        if len(sent) > MAX_NAMES:
            listed.append(f"+{len(sent) - MAX_NAMES}")
        extra = [
            t(lang, "sos.tl.failed_short", to=target(r), reason=str(r.outcome_code or "-"))
            for r in failed[:MAX_NAMES]
        ]
        extra += [
            t(lang, "sos.tl.pending", to=target(r), attempts=r.attempts)
            for r in waiting[:MAX_NAMES]
        ]
        counted = [r for r in batch if r.status != OutboxStatus.CANCELLED]
        names = t(lang, "sos.tl.names", names=Html(sep.join(listed))) if listed else ""
        problems = t(lang, "sos.tl.problems", problems=Html(sep.join(extra))) if extra else ""
        return {
            "sent": len(sent),
            "total": len(counted),
            "names": Html(names),
            "problems": Html(problems),
        }

    items: list[TimelineItem] = []
    events = list(
        session.exec(
            select(AlertEvent).where(AlertEvent.alert_id == alert.id).order_by(col(AlertEvent.id))
        )
    )
    for index, event in enumerate(events):
        detail = event.detail or {}
        if event.kind in ("notified", "escalated") and detail.get("stage") in rounds:
            stage = int(detail["stage"])
            key = "sos.tl.round" if event.kind == "notified" else "sos.tl.round_escalated"
            text = t(lang, key, stage=stage, **summary(rounds.pop(stage)))
            items.append(TimelineItem(event.at, text))
            continue
        if event.kind == "location" and any(e.kind == "location" for e in events[index + 1 :]):
            continue  # a run of positions: the last one says how many
        values = _event_values(event, who, lang)
        text = t(lang, f"sos.tl.{event.kind}", **values)
        if event.kind == "location":
            many = sum(1 for e in events if e.kind == "location")
            if many > 1:
                text = t(lang, "sos.tl.locations", actor=values["actor"], count=many)
        items.append(TimelineItem(event.at, text))
    for stage, batch in sorted(rounds.items()):  # rounds without their event (older alerts)
        text = t(lang, "sos.tl.round", stage=stage, **summary(batch))
        items.append(TimelineItem(batch[0].created_at, text))
    if others:
        last = max(r.sent_at or r.created_at for r in others)
        items.append(TimelineItem(last, t(lang, "sos.tl.others", **summary(others))))
    items.sort(key=lambda item: item.at)
    return items


def timeline_csv(session: Session, alert_id: int, lang: str, zone: ZoneInfo) -> bytes | None:
    """Every event and every delivery of one alert, one row each (the full timeline the
    phone view summarises)."""
    alert = session.get(Alert, alert_id)
    if alert is None:
        return None
    rows = [
        (item.at.astimezone(zone).isoformat(timespec="seconds"), plain_text(item.text))
        for item in timeline(session, alert, lang, zone)
    ]
    return tables.to_csv(("time", "event"), rows)


def timeline_text(session: Session, alert_id: int, lang: str, zone: ZoneInfo) -> str | None:
    alert = session.get(Alert, alert_id)
    if alert is None:
        return None
    head = alert_text(session, alert, lang, zone=zone)
    lines = [
        f"{_local(item.at, zone)[5:]} · {item.text}"
        for item in compact_timeline(session, alert, lang, zone)
    ]
    note = ""
    if alert.resolution_note:
        note = "\n" + t(lang, "sos.tl.note_text", note=alert.resolution_note)
    return head + "\n\n" + t(lang, "sos.tl.header") + "\n" + "\n".join(lines) + note


def list_lines(session: Session, found: list[Alert], lang: str, zone: ZoneInfo) -> list[str]:
    """`list_line` of each alert, the people named loaded in one query."""
    ids = {a.person_id for a in found}
    # held while the lines are built: the session's identity map keeps only what is referenced
    held = list(session.exec(select(Person).where(col(Person.id).in_(ids))))
    lines = [list_line(session, alert, lang, zone) for alert in found]  # session.get finds them
    held.clear()
    return lines


def list_line(session: Session, alert: Alert, lang: str, zone: ZoneInfo) -> str:
    person = session.get(Person, alert.person_id) if alert.person_id is not None else None
    return t(
        lang,
        "sos.list.line",
        id=alert.id,
        icon=_STATUS_ICONS.get(alert.status, "•"),
        name=name_of(person) if person else t(lang, "sos.deleted_person"),
        where=posting_text(person, lang) if person else "-",
        time=_local(alert.created_at, zone),
        status=t(lang, f"sos.status.{alert.status}"),
    )


_STATUS_ICONS = {
    AlertStatus.OPEN: "🔴",
    AlertStatus.ACKNOWLEDGED: "🟠",
    AlertStatus.RESOLVED: "🟢",
    AlertStatus.CANCELLED: "⚪",
}


CSV_COLUMNS = (
    "id",
    "cause",
    "status",
    "person_id",
    "name",
    "prefecture",
    "county",
    "altitude_m",
    "category",
    "raised_at",
    "acknowledged_at",
    "acknowledged_by",
    "seconds_to_acknowledge",
    "stage_reached",
    "responders_alerted",
    "contacts_told",
    "resolved_at",
    "resolved_by",
    "outcome",
    "cancelled_at",
)


def export_csv(session: Session, viewer: Person, *, days: int = 365) -> bytes:
    """Every alert the viewer may see from the last `days` days, one row each (UTF-8 with a
    byte-order mark so that spreadsheet programs read the Chinese names)."""
    since = clock.now() - timedelta(days=days)
    rows = session.exec(select(Alert).where(col(Alert.created_at) >= since).order_by(col(Alert.id)))
    table: list[tuple[Any, ...]] = []
    for alert in rows:
        if handling_refusal(session, viewer, alert) is not None:
            continue
        person = session.get(Person, alert.person_id) if alert.person_id is not None else None
        acker = session.get(Person, alert.acknowledged_by) if alert.acknowledged_by else None
        resolver = session.get(Person, alert.resolved_by) if alert.resolved_by else None
        responders, contacts = alerted_counts(session, alert.id or 0)
        to_ack = (
            int((alert.acknowledged_at - alert.created_at).total_seconds())
            if alert.acknowledged_at
            else None
        )
        table.append(
            (
                alert.id,
                alert.cause,
                alert.status,
                alert.person_id,
                name_of(person),
                alert.prefecture,
                person.county if person else None,
                person.posting_altitude_m if person else None,
                alert.category,
                alert.created_at.isoformat(),
                alert.acknowledged_at.isoformat() if alert.acknowledged_at else None,
                name_of(acker) if acker else None,
                to_ack,
                alert.stage,
                responders,
                contacts,
                alert.resolved_at.isoformat() if alert.resolved_at else None,
                name_of(resolver) if resolver else None,
                alert.outcome,
                alert.cancelled_at.isoformat() if alert.cancelled_at else None,
            )
        )
    audit.record(session, "alerts.exported", actor=viewer.telegram_id, rows=len(table))
    return tables.to_csv(CSV_COLUMNS, table)


# ---------------------------------------------------------------------------- coverage warnings

_COVERAGE = "sos_coverage"


def _area_name(prefecture: str, lang: str) -> str:
    postings = load_postings()
    return (
        postings.name(prefecture, lang, short=True)
        if postings.prefecture(prefecture)
        else prefecture
    )


def coverage_warnings(session: Session, policy: Policy) -> int:
    """Tell the admins (once per gap) when a prefecture with active cadres has nobody on
    duty who can be reached, and (once per blocking) when a duty officer blocked the bot.
    Returns how many warnings were queued."""
    now = clock.now()
    admins = [a for a in people.admins(session) if not _is_unreachable(a)]
    gaps = state.load_all(session, _COVERAGE)
    queued = 0
    seen: set[str] = set()
    for cover in roster.coverage(session, now, policy.zone):
        seen.add(cover.prefecture)
        reachable = [p for p in cover.on_duty if not _is_unreachable(p)]
        if reachable:
            if cover.prefecture in gaps:
                state.drop(session, _COVERAGE, cover.prefecture)
        elif cover.prefecture not in gaps:
            since = now.isoformat()
            state.put(session, _COVERAGE, cover.prefecture, {"since": since})
            for admin in admins:
                lang = admin.language
                outbox.enqueue_to(
                    session,
                    admin,
                    priority=Priority.URGENT,
                    idempotency_key=f"sos:gap:{cover.prefecture}:{since}:{admin.id}",
                    text=t(
                        lang,
                        "sos.coverage.gap",
                        prefecture=_area_name(cover.prefecture, lang),
                        cadres=cover.cadres,
                        officers=len(cover.officers),
                    ),
                    source="sos:coverage",
                )
                queued += 1
        for officer in cover.officers:
            since_blocked = getattr(officer, "unreachable_since", None)
            if since_blocked is None:
                continue
            for admin in admins:
                key = f"sos:blocked:{officer.id}:{since_blocked.isoformat()}:{admin.id}"[:120]
                if outbox.find(session, key) is not None:
                    continue
                lang = admin.language
                outbox.enqueue_to(
                    session,
                    admin,
                    priority=Priority.URGENT,
                    idempotency_key=key,
                    text=t(
                        lang,
                        "sos.coverage.blocked",
                        name=name_of(officer),
                        phone=officer.phone or "-",
                        prefecture=_area_name(cover.prefecture, lang),
                    ),
                    source="sos:coverage",
                )
                queued += 1
    for prefecture in set(gaps) - seen:  # no more cadres there: forget the gap
        state.drop(session, _COVERAGE, prefecture)
    return queued


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
                _event(session, alert, "round_failed", stage=alert.stage)


def export_for_person(session: Session, person_id: int) -> dict[str, Any]:
    """For /mydata: the alerts a person raised, with their timelines."""
    raised = list(
        session.exec(select(Alert).where(Alert.person_id == person_id).order_by(col(Alert.id)))
    )
    events = session.exec(
        select(AlertEvent)
        .where(col(AlertEvent.alert_id).in_([a.id for a in raised]))
        .order_by(col(AlertEvent.id))
    )
    by_alert: dict[int, list[dict[str, Any]]] = {}
    for event in events:
        by_alert.setdefault(event.alert_id, []).append(
            event.model_dump(mode="json", exclude={"alert_id"})
        )
    return {
        "alerts": [
            {
                **a.model_dump(mode="json", exclude={"person_id"}),
                "timeline": by_alert.get(a.id or 0, []),
            }
            for a in raised
        ]
    }
