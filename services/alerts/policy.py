"""Alerts: SOS and red-flag health results reaching a human. This module: the settings an
alert needs (`Policy`), the constants, who is alerted at each stage, and the small helpers
every part of an alert uses (its events, its people, times shown in the alert's zone).

Who is alerted (``stage`` counts the notification rounds):
  1. the responders on duty for the cadre's prefecture (services.roster); when nobody is
     on duty, the alert starts at stage 2;
  2. after CADRE_SOS_ACK_TIMEOUT: the stage-1 people again, every duty officer of the
     prefecture and every admin;
  3+. after another timeout, then every CADRE_SOS_REPEAT_INTERVAL: every duty officer
     and admin, until someone acknowledges.
The cadre's contacts who joined the bot are told once, when the alert is raised.

The parts: services.alerts.raising (raise, what the cadre adds, escalation),
services.alerts.respond (acknowledge, resolve, cancel, follow-up), services.alerts.cards
(the alert's texts and buttons), services.alerts.messages (queuing and editing its
messages; the outbox hook), services.alerts.timeline (reading, the timeline, CSV) and
services.alerts.coverage (warnings when nobody on duty can be reached).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlmodel import Session, col, select

from config import Settings
from models import Alert, AlertEvent, AlertRecipient, AlertStatus, Person, Status
from services import clock, people, roster
from services.duty_channels.alerting import ChannelConfig

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
NOTIFY_KEY = re.compile(r"^alert:\d+:n\d+:\d+$")


@dataclass(frozen=True)
class Policy:
    """What raising and handling an alert needs of the settings: the timings of escalation,
    the time zone used in messages, the other channels (services.duty_channels) and the board's
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


def local_time(moment: datetime | None, zone: ZoneInfo) -> str:
    return moment.astimezone(zone).strftime("%Y-%m-%d %H:%M") if moment else "-"


def hour_minute(moment: datetime | None, zone: ZoneInfo) -> str:
    return moment.astimezone(zone).strftime("%H:%M") if moment else "-"


def is_unreachable(person: Person) -> bool:
    return getattr(person, "unreachable_since", None) is not None


def add_event(
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


def source_of(alert: Alert) -> str:
    return f"alert:{alert.id}"


def recipients(session: Session, alert_id: int, kind: str | None = None) -> list[AlertRecipient]:
    query = select(AlertRecipient).where(AlertRecipient.alert_id == alert_id)
    if kind is not None:
        query = query.where(AlertRecipient.kind == kind)
    return list(session.exec(query.order_by(col(AlertRecipient.id))))


def persons_by_id(session: Session, ids: Iterable[int]) -> list[Person]:
    ids = list(dict.fromkeys(ids))
    if not ids:
        return []
    found = {p.id: p for p in session.exec(select(Person).where(col(Person.id).in_(ids)))}
    return [found[i] for i in ids if i in found]


def active_only(persons: Iterable[Person], exclude: int | None) -> list[Person]:
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


def stage_people(session: Session, alert: Alert, stage: int, policy: Policy) -> list[Person]:
    """The responders of a notification round (never the cadre themself)."""
    earlier = persons_by_id(
        session, (r.person_id for r in recipients(session, alert.id or 0, RESPONDER))
    )
    if stage <= 1:
        found = roster.on_duty_now(session, alert.prefecture, clock.now(), policy.zone)
    elif stage == 2:
        area = roster.duty_officers(session, alert.prefecture) if alert.prefecture else []
        found = [*earlier, *area, *people.admins(session)]
    else:
        found = [*earlier, *roster.duty_officers(session), *people.admins(session)]
    return active_only(found, exclude=alert.person_id)


def responders_for_stage(
    session: Session, alert_id: int, stage: int, policy: Policy
) -> list[Person]:
    alert = session.get(Alert, alert_id)
    return stage_people(session, alert, stage, policy) if alert else []


# ---------------------------------------------------------------------------- reading


def get(session: Session, alert_id: int) -> Alert | None:
    return session.get(Alert, alert_id)
