"""Alerts: reading them. The alerts a viewer may see, the timeline of one (full and
compact, as text and CSV), the CSV export of many, and a person's own data export.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import case
from sqlmodel import Session, col, select

from models import Alert, AlertEvent, AlertRecipient, Channel, OutboxMessage, OutboxStatus, Person
from services import audit, clock, people, tables
from services.alerts.cards import heading
from services.alerts.policy import (
    IN_PROGRESS,
    RECENT_DAYS,
    RESPONDER,
    local_time,
    recipients,
    source_of,
)
from services.alerts.respond import handling_refusal
from services.duty_channels import alerting
from services.i18n import Html, escape, plain_text, t
from services.people import name_of
from services.permissions import Action, check, visible_prefectures
from services.screens import paginate


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


def _events(session: Session, alert: Alert) -> list[AlertEvent]:
    """The alert's events, in order."""
    query = select(AlertEvent).where(AlertEvent.alert_id == alert.id)
    return list(session.exec(query.order_by(col(AlertEvent.id))))


def _messages(session: Session, alert: Alert) -> list[OutboxMessage]:
    """The messages sent about the alert (not the edits of its cards), in order."""
    query = select(OutboxMessage).where(
        OutboxMessage.source == source_of(alert), OutboxMessage.kind != "edit"
    )
    return list(session.exec(query.order_by(col(OutboxMessage.id))))


def timeline(session: Session, alert: Alert, lang: str, zone: ZoneInfo) -> list[TimelineItem]:
    """Every event with its time and actor, and each message's delivery from the outbox."""
    items: list[TimelineItem] = []
    who = _namer(session, lang)

    for event in _events(session, alert):
        values = _event_values(event, who, lang)
        key = f"sos.tl.{event.kind}"
        items.append(TimelineItem(event.at, t(lang, key, **values)))
    for row in _messages(session, alert):
        elsewhere = alerting.timeline_text(row, lang)  # WeCom, DingTalk, SMS
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
    for row in _messages(session, alert):
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
    events = _events(session, alert)
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
    """The whole timeline as one text (the chat shows it a page at a time: `timeline_pages`)."""
    parts = _timeline_parts(session, alert_id, lang, zone)
    if parts is None:
        return None
    head, lines, note = parts
    return head + "\n".join(lines) + note


def timeline_pages(session: Session, alert_id: int, lang: str, zone: ZoneInfo) -> list[str]:
    """The timeline a phone screen a page (services.screens.paginate), each page headed by
    the alert's title and status; [] when there is no such alert."""
    parts = _timeline_parts(session, alert_id, lang, zone)
    if parts is None:
        return []
    head, lines, note = parts
    return [page.text for page in paginate(lines, header=head, footer=note, whole=True)]


def _timeline_parts(
    session: Session, alert_id: int, lang: str, zone: ZoneInfo
) -> tuple[str, list[str], str] | None:
    alert = session.get(Alert, alert_id)
    if alert is None:
        return None
    head = heading(session, alert, lang, zone=zone)  # the card is right above it
    lines = [
        f"{local_time(item.at, zone)[5:]} · {item.text}"
        for item in compact_timeline(session, alert, lang, zone)
    ]
    note = ""
    if alert.resolution_note:
        note = "\n" + t(lang, "sos.tl.note_text", note=alert.resolution_note)
    return head + "\n\n" + t(lang, "sos.tl.header") + "\n", lines, note


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
