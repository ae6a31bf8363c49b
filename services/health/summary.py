"""What other features show of a person's check-ins: the last one in a line (an alert's
card), and their 30-day chart queued after a notice or an alert, drawn by the delivery
worker when it is sent (`chart_attachment` in services.health.checkins). services.alerts
reads these directly; nothing here imports the alerts.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import or_
from sqlmodel import Session, col, select

from models import CheckIn, OutboxMessage, Person, Priority
from models.health import Tier
from services import audit, clock, outbox, people
from services.i18n import Html, t
from services.people import name_of
from services.permissions import may_see
from services.postings import load_postings

CHART_DAYS = 30  # the chart attached to officers' notices, as /trend and the 📈 button
CHART_RENDERER = "health.chart"  # drawn by the delivery worker when the message is sent
TIER_ICON = {Tier.GREEN: "🟢", Tier.AMBER: "🟠", Tier.RED: "🔴"}


def is_low_altitude(person: Person) -> bool:
    """Zhejiang (training and study) postings: the altitude features are off."""
    postings = load_postings()
    county = postings.county(person.county or "")
    if county is not None:
        return county.low_altitude
    prefecture = postings.prefecture(person.prefecture or "")
    return prefecture is None or prefecture.low_altitude


def latest(session: Session, person_id: int) -> CheckIn | None:
    query = select(CheckIn).where(CheckIn.person_id == person_id)
    return session.exec(query.order_by(col(CheckIn.at).desc(), col(CheckIn.id).desc())).first()


def since(session: Session, person_id: int, start: datetime) -> list[CheckIn]:
    """Check-ins from `start` on, oldest first."""
    query = select(CheckIn).where(CheckIn.person_id == person_id, col(CheckIn.at) >= start)
    return list(session.exec(query.order_by(col(CheckIn.at), col(CheckIn.id))))


def chart_points(
    session: Session, person_id: int, start: datetime, end: datetime, *, limit: int | None = None
) -> list[CheckIn]:
    """Check-ins in [start, end] with something to plot (SpO2, heart rate or Lake Louise
    score), oldest first. A red-flag check-in alone has none: no chart is drawn then."""
    query = select(CheckIn).where(
        CheckIn.person_id == person_id,
        col(CheckIn.at) >= start,
        col(CheckIn.at) <= end,
        or_(
            col(CheckIn.spo2).is_not(None),
            col(CheckIn.heart_rate).is_not(None),
            col(CheckIn.lls_total).is_not(None),
        ),
    )
    return list(session.exec(query.order_by(col(CheckIn.at), col(CheckIn.id)).limit(limit)))


def vitals_line(lang: str, checkin: CheckIn) -> str:
    """The measurements a responder needs, in one line (never for contacts)."""
    parts = []
    if checkin.spo2 is not None:
        parts.append(t(lang, "health.line.spo2", value=checkin.spo2))
    elif checkin.no_oximeter:
        parts.append(t(lang, "health.line.no_oximeter"))
    if checkin.heart_rate is not None:
        parts.append(t(lang, "health.line.hr", value=checkin.heart_rate))
    if checkin.temperature_c is not None:
        parts.append(t(lang, "health.line.temp", value=f"{checkin.temperature_c:.1f}"))
    if checkin.lls_total is not None:
        parts.append(t(lang, "health.line.lls", value=checkin.lls_total))
    if checkin.systolic is not None and checkin.diastolic is not None:
        sys_, dia = checkin.systolic, checkin.diastolic
        if checkin.systolic_2 is not None and checkin.diastolic_2 is not None:
            sys_, dia = checkin.systolic_2, checkin.diastolic_2
        parts.append(t(lang, "health.line.bp", systolic=sys_, diastolic=dia))
    return " · ".join(parts)


def format_local(at: datetime, zone: ZoneInfo) -> str:
    return at.astimezone(zone).strftime("%m-%d %H:%M")


def last_checkin_line(
    session: Session,
    person_id: int,
    lang: str,
    *,
    vitals: bool = True,
    zone: ZoneInfo,
) -> str | None:
    """'Last check-in: 11-26 09:12 · 🟠 AMBER · SpO2 86% · HR 104/min · LLS 4', for an alert.
    None when the person never checked in. `vitals=False` (for emergency contacts) gives
    only the time: contacts never see readings."""
    checkin = latest(session, person_id)
    if checkin is None:
        return None
    when = format_local(checkin.at, zone)
    if not vitals:
        return t(lang, "health.line.last_time", when=when)
    tier = Tier(checkin.tier)
    details = [vitals_line(lang, checkin)]
    if checkin.note:  # what the cadre wrote, for the responder
        details.append(t(lang, "health.line.note", note=checkin.note))
    shown = " · ".join(d for d in details if d)
    return t(
        lang,
        "health.line.last",
        when=when,
        tier=f"{TIER_ICON[tier]} {t(lang, f'health.tier.{tier}')}",
        details=Html(f" · {shown}") if shown else "",
    )


def history_line(lang: str, checkin: CheckIn, zone: ZoneInfo) -> str:
    """One /history line: time, 🟢🟠🔴, the readings, and for AMBER and RED what made it
    so ("12-06 06:59 🔴 Breathless at rest …", even when a red flag ended the form before
    any reading)."""
    tier = Tier(checkin.tier)
    parts = [vitals_line(lang, checkin)]
    if tier != Tier.GREEN and checkin.reasons:
        parts.append("; ".join(t(lang, f"health.reason.{key}") for key in checkin.reasons))
    shown = " · ".join(part for part in parts if part)
    return f"{format_local(checkin.at, zone)} {TIER_ICON[tier]} {shown}".rstrip()


def enqueue_once(session: Session, **kwargs: Any) -> bool:
    """services.outbox.enqueue, telling whether the message is new (False: its idempotency
    key was already queued, so nobody is told twice)."""
    key = kwargs["idempotency_key"]
    exists = session.exec(
        select(OutboxMessage.id).where(OutboxMessage.idempotency_key == key)
    ).first()
    if exists is not None:
        return False
    outbox.enqueue(session, **kwargs)
    return True


def attach_chart(
    session: Session,
    cadre: Person,
    recipient: Person,
    *,
    after: str,
    source: str | None,
    zone: ZoneInfo,
    key: str | None = None,
) -> bool:
    """Queue the cadre's 30-day chart for an officer, right after the notice `after` (a
    reply to it, in the same chat; dropped if the notice never goes out). False when there
    is nothing to draw (no readings in 30 days): the notice goes alone.

    The chart is URGENT, whatever its notice: below an EMERGENCY alert, so that an upload
    never goes before anyone's emergency text; not lower than an URGENT notice, so that it
    is retried until sent and is not queued behind reminders and broadcasts. It waits
    for its own notice (``after``). Only a reference is stored: the delivery worker draws
    it (services.outbox.attachments.Attachment), with the readings up to now, in the
    recipient's language, without holding a send slot while it draws."""
    assert cadre.id is not None and recipient.id is not None
    end = clock.now()
    if not chart_points(session, cadre.id, end - timedelta(days=CHART_DAYS), end, limit=1):
        return False
    lang = recipient.language
    queued = enqueue_once(
        session,
        chat_id=recipient.telegram_id,
        person_id=recipient.id,
        language=lang,
        priority=Priority.URGENT,
        idempotency_key=key or f"{after}:chart",
        source=source,
        kind="photo",
        text=t(
            lang,
            "health.chart.attached",
            name=name_of(cadre, "-"),
            count=CHART_DAYS,
            when=format_local(end, zone),
        ),
        payload={
            "render": CHART_RENDERER,
            "args": {
                "person_id": cadre.id,
                "end": end.isoformat(),
                "days": CHART_DAYS,
                "lang": lang,
            },
            "after": after,
        },
    )
    if queued:
        audit.record(
            session,
            "checkin.chart_sent",
            actor=None,
            target_person_id=cadre.id,
            recipient=recipient.id,
        )
    return queued


def attach_alert_chart(
    session: Session, alert_id: int, cadre_id: int, responder: Person, *, after: str, zone: ZoneInfo
) -> bool:
    """For services.alerts: the alert of a RED check-in comes with the cadre's chart, once
    per alert and responder, for responders whose area covers the cadre. From the third
    round an alert reaches every duty officer: those of other areas get the alert with its
    last check-in line, not 30 days of readings (the 📈 button would refuse them too)."""
    cadre = session.get(Person, cadre_id)
    if cadre is None or responder.id is None:
        return False
    areas = people.duty_areas(session, responder.id)
    if not may_see(responder, areas, cadre.prefecture):
        return False
    return attach_chart(
        session,
        cadre,
        responder,
        after=after,
        source=f"chart:alert:{alert_id}",
        zone=zone,
        key=f"alert:{alert_id}:chart:{responder.id}",
    )
