"""Alerts: the texts and buttons of an alert's card (what the responders and handlers see),
and the lines of the /alerts list. Every string from the catalogs.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlmodel import Session, col, select

from models import Alert, AlertEvent, AlertStatus, Person
from services import board_links, contact_links, outbox, people
from services.alerts.policy import (
    RESPONDER,
    Policy,
    hour_minute,
    is_unreachable,
    local_time,
    persons_by_id,
    recipients,
)
from services.health import summary
from services.i18n import Html, t
from services.people import name_of, posting_text
from services.screens import SCREEN, lines_on_phone

log = logging.getLogger(__name__)


# ---------------------------------------------------------------------------- small helpers


def _last_checkin_line(session: Session, person_id: int, lang: str, zone: ZoneInfo) -> str | None:
    """The cadre's last check-in for the card (services.health.summary); if it fails, the
    alert says that no check-in is available: it never holds the alert back."""
    try:
        return summary.last_checkin_line(session, person_id, lang, zone=zone)
    except Exception:
        log.exception("last_checkin_line failed; the alert goes out without it")
        return None


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
        time=hour_minute(alert.location_at, zone),
    )


def _status_line(session: Session, alert: Alert, lang: str, zone: ZoneInfo) -> str:
    if alert.status == AlertStatus.ACKNOWLEDGED:
        who = session.get(Person, alert.acknowledged_by) if alert.acknowledged_by else None
        return t(
            lang,
            "sos.alert.status_taken",
            name=name_of(who),
            time=hour_minute(alert.acknowledged_at, zone),
        )
    if alert.status == AlertStatus.RESOLVED:
        who = session.get(Person, alert.resolved_by) if alert.resolved_by else None
        return t(
            lang,
            "sos.alert.status_resolved",
            name=name_of(who),
            time=hour_minute(alert.resolved_at, zone),
            outcome=t(lang, f"sos.outcome.{alert.outcome or 'on_site'}"),
        )
    if alert.status == AlertStatus.CANCELLED:
        return t(lang, "sos.alert.status_cancelled", time=hour_minute(alert.cancelled_at, zone))
    return t(lang, "sos.alert.status_open")


def alert_text(
    session: Session,
    alert: Alert,
    lang: str,
    *,
    zone: ZoneInfo,
    stage: int | None = None,
    with_status: bool = True,
    details: bool = False,
) -> str:
    """The alert's card as a responder sees it, one phone screen (issue 16): who, where,
    when, what, location, the phone to call, who cannot be reached on Telegram, and its
    status. The emergency contacts and the last check-in are one tap away, under «ℹ️
    Details» (`details_text`); `details`: with them, for the board's page, which has room."""
    person = session.get(Person, alert.person_id) if alert.person_id is not None else None
    if person is None:  # the person deleted their data: the record keeps times only
        return _erased_text(session, alert, lang, zone, with_status)
    steps = causes(session, alert)
    lines = [_title(steps, alert, person, lang)]
    if alert.unverified:
        lines.append(_unverified_line(alert, lang))
    if stage and stage > 1:
        lines.append(t(lang, "sos.alert.escalated", stage=stage))
    posting = posting_text(person, lang)
    if posting != "-":  # an unregistered caller has none: no empty line
        lines.append(t(lang, "sos.alert.posting", posting=posting))
    if len(steps) > 1:
        # what really happened, in order, with times and what the SOS said (a RED
        # check-in, then an SOS: 🩹 Injury, fell on ice): no time, what or description
        # lines besides, which would say it twice
        lines.append(t(lang, "sos.alert.history", steps=_history(alert, steps, lang, zone)))
    else:
        lines.append(t(lang, "sos.alert.time", time=local_time(alert.created_at, zone)))
        lines.append(t(lang, "sos.alert.what", what=_category_text(alert, lang)))
        if alert.details:
            lines.append(t(lang, "sos.alert.details", details=alert.details))
    reasons_at = len(lines)  # the reasons go here, as many as the screen has room for
    lines.append(t(lang, "sos.alert.location", location=_location_text(alert, lang, zone)))
    if person.phone or not alert.unverified:
        lines.append(t(lang, "sos.alert.phone", phone=person.phone or "-"))
    if alert.unverified and not person.phone:
        # how to reach a caller the bot does not know, when there is no phone to call
        lines.append(t(lang, "sos.alert.telegram", telegram=_telegram_of(alert)))
    if details:
        lines += _detail_lines(session, alert, person, lang, zone)
    unreachable = _unreachable_lines(session, alert, lang)
    if unreachable:
        lines.append(t(lang, "sos.alert.call_them", people=Html("\n".join(unreachable))))
    count = len(recipients(session, alert.id or 0, RESPONDER))
    # "press I'm on it" only while that is what is needed
    alerted = "sos.alert.alerted" if alert.status == AlertStatus.OPEN else "sos.alert.alerted_count"
    lines.append(t(lang, alerted, count=count))
    if with_status:
        lines.append(_status_line(session, alert, lang, zone))
    if alert.reasons:
        key = "sos.alert.reasons_red" if len(steps) > 1 else "sos.alert.reasons"
        lines.insert(reasons_at, _reasons_line(alert, lang, key, lines, fit=not details))
    return "\n".join(lines)


def _reasons_line(alert: Alert, lang: str, label: str, around: list[str], *, fit: bool) -> str:
    """The reasons, in the assessment's order; with `fit`, as many as keep the card one phone
    screen (at least one), then how many more «ℹ️ Details» lists."""
    reasons = list(alert.reasons or [])
    shown = len(reasons)
    while True:
        text = "; ".join(t(lang, key) for key in reasons[:shown])
        if shown < len(reasons):
            more = t(lang, "sos.alert.more_reasons", count=len(reasons) - shown)
            text = t(lang, "sos.alert.reasons_cut", reasons=Html(text), more=Html(more))
        line = t(lang, label, reasons=Html(text))
        card = "\n".join([*around, line])
        if not fit or shown <= 1 or lines_on_phone(card, html=True) <= SCREEN:
            return line
        shown -= 1


def _detail_lines(
    session: Session, alert: Alert, person: Person, lang: str, zone: ZoneInfo
) -> list[str]:
    """The emergency contacts and the last check-in (what «ℹ️ Details» shows)."""
    lines: list[str] = []
    if alert.unverified and person.phone:  # (without a phone, the card has it)
        lines.append(t(lang, "sos.alert.telegram", telegram=_telegram_of(alert)))
    contacts = people.emergency_contacts(session, person.id or 0)
    if contacts:
        listed = "; ".join(f"{c.name} {c.phone}" for c in contacts)
        lines.append(t(lang, "sos.alert.contacts", contacts=listed))
    elif not alert.unverified:
        lines.append(t(lang, "sos.alert.contacts", contacts=t(lang, "sos.alert.no_contacts")))
    checkin = _last_checkin_line(session, person.id or 0, lang, zone)
    # The check-in line carries its own label ("Last check-in: ...").
    if checkin or not alert.unverified:
        none = t(lang, "sos.alert.checkin", checkin=t(lang, "sos.alert.no_checkin"))
        lines.append(checkin or none)
    return lines


def details_text(session: Session, alert: Alert, lang: str, *, zone: ZoneInfo) -> str:
    """What «ℹ️ Details» under a card sends: the alert's title, then the cadre's emergency
    contacts and last check-in (with its readings), which the card leaves out to stay one
    screen."""
    person = session.get(Person, alert.person_id) if alert.person_id is not None else None
    if person is None:
        return _erased_text(session, alert, lang, zone, with_status=False)
    lines = _detail_lines(session, alert, person, lang, zone)
    if alert.reasons:  # all of them (the card may show the first ones only)
        lines.insert(0, t(lang, "sos.alert.reasons", reasons=_reasons_text(alert, lang)))
    return "\n".join(
        [
            _title(causes(session, alert), alert, person, lang),
            *(lines or [t(lang, "sos.alert.no_details")]),
        ]
    )


def heading(session: Session, alert: Alert, lang: str, *, zone: ZoneInfo) -> str:
    """The card's title and status (above a timeline)."""
    person = session.get(Person, alert.person_id) if alert.person_id is not None else None
    if person is None:
        return _erased_text(session, alert, lang, zone, with_status=True)
    title = _title(causes(session, alert), alert, person, lang)
    return title + "\n" + _status_line(session, alert, lang, zone)


def _title(steps: list[tuple[str, datetime]], alert: Alert, person: Person, lang: str) -> str:
    """SOS in the title if one of its causes (`causes`) is an SOS, else a RED check-in."""
    sos = any(cause == "sos" for cause, _ in steps)
    title_key = "sos.alert.title" if sos else "sos.alert.title_red"
    return t(lang, title_key, id=alert.id, name=name_of(person))


def _erased_text(
    session: Session, alert: Alert, lang: str, zone: ZoneInfo, with_status: bool
) -> str:
    title_key = "sos.alert.title_red" if alert.cause == "checkin_red" else "sos.alert.title"
    lines = [
        t(lang, title_key, id=alert.id, name=t(lang, "sos.deleted_person")),
        t(lang, "sos.alert.time", time=local_time(alert.created_at, zone)),
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
        part = t(lang, f"sos.alert.step.{cause}", time=hour_minute(at, zone))
        if cause == "sos" and (alert.category or alert.details):
            said = [t(lang, f"sos.category.{alert.category}")] if alert.category else []
            said += [alert.details] if alert.details else []
            part = t(lang, "sos.alert.step_said", step=Html(part), said=", ".join(said))
        parts.append(part)
    return Html("; ".join(parts))


def _unverified_line(alert: Alert, lang: str) -> str:
    """Who called, as far as the bot knows: not an active member (their Telegram name is
    on its own line, where a phone would be)."""
    status = str((alert.caller or {}).get("status") or "guest")
    return t(lang, "sos.alert.unverified", status=t(lang, f"sos.alert.caller.{status}"))


def _telegram_of(alert: Alert) -> str:
    caller = alert.caller or {}
    handle = str(caller.get("telegram_name") or "-")
    if caller.get("username"):
        handle += f" (@{caller['username']})"
    return handle


def _unreachable_lines(session: Session, alert: Alert, lang: str) -> list[str]:
    """Responders and joined contacts Telegram cannot reach, with their phone numbers."""
    ids = [r.person_id for r in recipients(session, alert.id or 0)]
    if alert.person_id is not None:
        ids += [p.id for p in contact_links.contacts_of(session, alert.person_id) if p.id]
    lines = []
    for person in persons_by_id(session, ids):
        if is_unreachable(person):
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
            [
                (t(lang, "sos.btn.details"), f"sos:info:{alert.id}"),
                (t(lang, "sos.btn.timeline"), f"sos:tl:{alert.id}"),
            ],
        ]
    )
    buttons: dict[str, Any] = board_links.with_open_button(
        keyboard, board_url, lang, f"alert/{alert.id}"
    )
    return buttons  # with the Mini App's "Open board" row when the board is on


def handler_rows(alert: Alert, lang: str) -> list[list[tuple[str, str]]]:
    """For the person who took it: resolve, the details and the timeline."""
    return [
        [(t(lang, "sos.btn.resolve"), f"sos:res:{alert.id}")],
        [
            (t(lang, "sos.btn.details"), f"sos:info:{alert.id}"),
            (t(lang, "sos.btn.timeline"), f"sos:tl:{alert.id}"),
        ],
    ]


def handler_buttons(alert: Alert, lang: str) -> dict[str, Any]:
    """`handler_rows` as a queued card carries them."""
    return outbox.inline_keyboard(handler_rows(alert, lang))


def buttons_for(alert: Alert, lang: str, policy: Policy) -> dict[str, Any]:
    if alert.status == AlertStatus.ACKNOWLEDGED:
        return handler_buttons(alert, lang)
    return responder_buttons(alert, lang, policy.board_url)


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
        time=local_time(alert.created_at, zone),
        status=t(lang, f"sos.status.{alert.status}"),
    )


_STATUS_ICONS = {
    AlertStatus.OPEN: "🔴",
    AlertStatus.ACKNOWLEDGED: "🟠",
    AlertStatus.RESOLVED: "🟢",
    AlertStatus.CANCELLED: "⚪",
}
