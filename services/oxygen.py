"""Oxygen requests: a cylinder, concentrator service or access to an oxygen room.

A request goes to the responders on duty for the cadre's prefecture (services.roster);
when nobody is on duty, straight to every duty officer of the prefecture and the admins.
A duty officer of the area (or an admin) acknowledges it, then marks it delivered; the
first acknowledgement wins (a conditional UPDATE), everybody's copy of the notice is edited,
and the cadre is told each change. An URGENT request nobody acknowledged within
CADRE_OXYGEN_ESCALATION_MINUTES escalates like an alert's first tier: every duty officer of
the prefecture and every admin is told, once (``escalate_due``, idempotent).

Every message is queued through services.outbox with a stable key:
    oxygen:<id>:n:<person>   the first notice       oxygen:<id>:e:<person>   the escalation
    oxygen:<id>:ack / :dlv / :esc / :cxl            what the cadre (or the taker) is told
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import case, func, update
from sqlalchemy import select as sa_select
from sqlmodel import Session, col, select

from config import Settings
from models import (
    DutyArea,
    OutboxMessage,
    OutboxStatus,
    OxygenEvent,
    OxygenRequest,
    OxygenStatus,
    OxygenUrgency,
    OxygenWhat,
    Person,
    Priority,
    Role,
    Status,
)
from services import audit, clock, outbox, roster
from services.care.records import clean_line
from services.care.rules import CareError
from services.care.rules import PersonFacts as _Facts
from services.care.texts import posting_text
from services.i18n import t
from services.people import name_of
from services.permissions import Action, check, may_see
from services.postings import load_postings

PLACE_MAX = 100
# A place tapped on a button is stored as its catalog key (care.ox.place.<choice>) and
# shown in the reader's language; a typed place is stored and shown as typed.
PLACE_CHOICES = ("posting", "office", "dorm")
MAX_OPEN = 3  # open requests per person: more is a mistake or a stuck button
IN_PROGRESS = (OxygenStatus.OPEN, OxygenStatus.ACKNOWLEDGED)
_NOTICE_KEY = re.compile(r"^oxygen:\d+:[ne]:\d+$")


@dataclass(frozen=True)
class OxygenConfig:
    zone: ZoneInfo
    escalation: timedelta

    @classmethod
    def from_settings(cls, settings: Settings) -> OxygenConfig:
        return cls(settings.zone, timedelta(minutes=settings.oxygen_escalation_minutes))


@dataclass(frozen=True)
class Change:
    """The outcome of acknowledge / deliver / cancel."""

    outcome: str  # won | taken | closed | refused
    request: OxygenRequest | None
    by: Person | None = None


def _source(request_id: int | None) -> str:
    return f"oxygen:{request_id}"


def _event(session: Session, request: OxygenRequest, event: str, actor: Person | None) -> None:
    assert request.id is not None
    session.add(
        OxygenEvent(
            request_id=request.id,
            at=clock.now(),
            event=event,
            actor_person_id=actor.id if actor else None,
        )
    )


def _hm(moment: datetime | None, zone: ZoneInfo) -> str:
    return moment.astimezone(zone).strftime("%m-%d %H:%M") if moment else "-"


# ---------------------------------------------------------------------------- texts


def what_text(lang: str, what: str) -> str:
    return t(lang, f"care.ox.what.{what}")


def urgency_text(lang: str, urgency: str) -> str:
    return t(lang, f"care.ox.urgency.{urgency}")


def status_line(session: Session, request: OxygenRequest, lang: str, zone: ZoneInfo) -> str:
    if request.status == OxygenStatus.ACKNOWLEDGED:
        who = session.get(Person, request.acknowledged_by or 0)
        return t(
            lang,
            "care.ox.line.acknowledged",
            name=name_of(who),
            at=_hm(request.acknowledged_at, zone),
        )
    if request.status == OxygenStatus.DELIVERED:
        who = session.get(Person, request.delivered_by or 0)
        return t(
            lang, "care.ox.line.delivered", name=name_of(who), at=_hm(request.delivered_at, zone)
        )
    if request.status == OxygenStatus.CANCELLED:
        return t(lang, "care.ox.line.cancelled", at=_hm(request.closed_at, zone))
    if request.escalated_at is not None:
        return t(lang, "care.ox.line.escalated", at=_hm(request.escalated_at, zone))
    return t(lang, "care.ox.line.open")


def place_key(choice: str) -> str | None:
    """What a tapped place is stored as (None for anything but a known choice)."""
    return f"care.ox.place.{choice}" if choice in PLACE_CHOICES else None


def place_text(lang: str, place: str, county: str | None) -> str:
    """The place of a request in `lang`: a tapped choice in the reader's words ("My posting
    (Litang)", "宿舍"), a typed place as typed. `county` is the cadre's county, by name in
    `lang` (the form knows it so) or by code."""
    for choice in PLACE_CHOICES:
        if place == place_key(choice):
            if county is not None and load_postings().county(county) is not None:
                county = load_postings().name(county, lang)
            return t(lang, f"care.ox.place.{choice}", county=county or "-")
    return place


def notice_text(
    session: Session, request: OxygenRequest, lang: str, zone: ZoneInfo, *, escalated: bool
) -> str:
    cadre = session.get(Person, request.person_id)
    facts = _Facts.of(cadre) if cadre is not None else None
    # "nobody acknowledged it" only while that is still true: a taken, delivered or
    # cancelled request shows its plain header above its status line
    still_waiting = escalated and request.status == OxygenStatus.OPEN
    head = "care.ox.notice.escalated" if still_waiting else "care.ox.notice"
    text = t(
        lang,
        head,
        id=request.id,
        name=name_of(cadre),
        phone=(cadre.phone if cadre else None) or "-",
        posting=posting_text(lang, facts) if facts else "-",
        altitude=(cadre.posting_altitude_m if cadre else None) or "-",
        what=what_text(lang, request.what),
        place=place_text(lang, request.place, cadre.county if cadre else None),
        urgency=urgency_text(lang, request.urgency),
        at=_hm(request.created_at, zone),
    )
    return text + "\n" + status_line(session, request, lang, zone)


def responder_rows(request: OxygenRequest, lang: str) -> list[list[tuple[str, str]]]:
    """What an officer may still do with a request (none once it is delivered or closed)."""
    if request.status == OxygenStatus.OPEN:
        return [
            [
                (t(lang, "care.ox.btn.ack"), f"ox:ack:{request.id}"),
                (t(lang, "care.ox.btn.delivered"), f"ox:dlv:{request.id}"),
            ]
        ]
    if request.status == OxygenStatus.ACKNOWLEDGED:
        return [[(t(lang, "care.ox.btn.delivered"), f"ox:dlv:{request.id}")]]
    return []


def responder_buttons(request: OxygenRequest, lang: str) -> dict[str, Any] | None:
    """`responder_rows` as the queued notice carries them."""
    rows = responder_rows(request, lang)
    return outbox.inline_keyboard(rows) if rows else None


def request_summary(session: Session, request: OxygenRequest, lang: str, zone: ZoneInfo) -> str:
    """How the cadre sees one of their requests."""
    cadre = session.get(Person, request.person_id)
    return t(
        lang,
        "care.ox.mine",
        id=request.id,
        what=what_text(lang, request.what),
        place=place_text(lang, request.place, cadre.county if cadre else None),
        urgency=urgency_text(lang, request.urgency),
        at=_hm(request.created_at, zone),
        status=status_line(session, request, lang, zone),
    )


# ---------------------------------------------------------------------------- who


def _everyone_for(session: Session, prefecture: str | None) -> list[Person]:
    """Every duty officer (or admin with the area) of the prefecture, and every admin."""
    found: dict[int, Person] = {}
    if prefecture:
        query = (
            select(Person)
            .join(DutyArea, col(DutyArea.person_id) == col(Person.id))
            .where(
                DutyArea.prefecture == prefecture,
                col(Person.role).in_([Role.DUTY_OFFICER, Role.ADMIN]),
                Person.status == Status.ACTIVE,
            )
        )
        for person in session.exec(query.order_by(col(Person.id))):
            found.setdefault(person.id or 0, person)
    admins = select(Person).where(Person.role == Role.ADMIN, Person.status == Status.ACTIVE)
    for person in session.exec(admins.order_by(col(Person.id))):
        found.setdefault(person.id or 0, person)
    return list(found.values())


def first_responders(
    session: Session, prefecture: str | None, now: datetime, zone: ZoneInfo
) -> tuple[list[Person], bool]:
    """Who gets a new request, and whether that is already everybody (nobody on duty)."""
    on_duty = roster.on_duty_now(session, prefecture, now, zone)
    if on_duty:
        return on_duty, False
    return _everyone_for(session, prefecture), True


def _notify(
    session: Session,
    request: OxygenRequest,
    recipients: list[Person],
    zone: ZoneInfo,
    *,
    escalated: bool,
) -> int:
    assert request.id is not None
    sent = 0
    letter = "e" if escalated else "n"
    for person in recipients:
        if person.id == request.person_id or person.id is None:
            continue
        lang = person.language
        outbox.enqueue(
            session,
            chat_id=person.telegram_id,
            text=notice_text(session, request, lang, zone, escalated=escalated),
            priority=Priority.URGENT,
            idempotency_key=f"oxygen:{request.id}:{letter}:{person.id}",
            person_id=person.id,
            language=lang,
            reply_markup=responder_buttons(request, lang),
            source=_source(request.id),
        )
        sent += 1
    return sent


def _tell_cadre(
    session: Session, request: OxygenRequest, key: str, text_key: str, zone: ZoneInfo
) -> None:
    cadre = session.get(Person, request.person_id)
    if cadre is None:
        return
    lang = cadre.language
    outbox.enqueue(
        session,
        chat_id=cadre.telegram_id,
        text=t(lang, text_key, id=request.id, what=what_text(lang, request.what))
        + "\n"
        + status_line(session, request, lang, zone),
        priority=Priority.URGENT,
        idempotency_key=f"oxygen:{request.id}:{key}",
        person_id=cadre.id,
        language=lang,
        source=_source(request.id),
    )


def _edit_notices(session: Session, request: OxygenRequest, zone: ZoneInfo) -> None:
    """Bring every copy of the notice up to date (and drop buttons that no longer apply);
    copies not sent yet are not needed any more once someone took the request."""
    rows = session.exec(
        select(OutboxMessage)
        .where(OutboxMessage.source == _source(request.id), OutboxMessage.kind == "text")
        .order_by(col(OutboxMessage.id))
    )
    for row in rows:
        if not _NOTICE_KEY.match(row.idempotency_key):
            continue
        if row.status == OutboxStatus.PENDING:
            row.status = OutboxStatus.CANCELLED
            row.outcome = "request taken before it was sent"
            session.add(row)
            continue
        lang = row.language or "zh-Hans"
        escalated = ":e:" in row.idempotency_key
        markup = responder_buttons(request, lang) or {"inline_keyboard": []}
        outbox.enqueue_edit(
            session,
            text=notice_text(session, request, lang, zone, escalated=escalated),
            edit_of=row.idempotency_key,
            reply_markup=markup,
            priority=Priority.URGENT,
            source=_source(request.id),
        )
    session.flush()


# ---------------------------------------------------------------------------- actions


def create_request(
    session: Session,
    person_id: int,
    what: str,
    place: str,
    urgency: str,
    config: OxygenConfig,
) -> OxygenRequest:
    person = session.get(Person, person_id)
    if person is None or check(person, Action.REQUEST_OXYGEN) is not None:
        raise CareError("care.forged")
    if what not in set(OxygenWhat) or urgency not in set(OxygenUrgency):
        raise CareError("care.stale")
    clean = clean_line(place, PLACE_MAX)
    open_count = len(
        session.exec(
            select(OxygenRequest.id).where(
                OxygenRequest.person_id == person_id,
                col(OxygenRequest.status).in_(IN_PROGRESS),
            )
        ).all()
    )
    if open_count >= MAX_OPEN:
        raise CareError("care.ox.too_many", count=MAX_OPEN)
    now = clock.now()
    request = OxygenRequest(
        person_id=person_id,
        prefecture=person.prefecture,
        what=OxygenWhat(what),
        place=clean,
        urgency=OxygenUrgency(urgency),
        status=OxygenStatus.OPEN,
        created_at=now,
    )
    session.add(request)
    session.flush()
    _event(session, request, "open", person)
    recipients, everybody = first_responders(session, person.prefecture, now, config.zone)
    if everybody and request.urgency == OxygenUrgency.URGENT:
        request.escalated_at = now  # nobody on duty: it starts at the escalated tier
        _event(session, request, "escalated", None)
        session.add(request)
    _notify(session, request, recipients, config.zone, escalated=False)
    audit.record(
        session,
        "oxygen.requested",
        actor=person.telegram_id,
        target_person_id=person_id,
        request=request.id,
        urgency=str(request.urgency),
        recipients=len(recipients),
    )
    return request


def _handling_refusal(
    session: Session, actor: Person, request: OxygenRequest | None, verb: str
) -> bool:
    """True (and audited) when `actor` may not handle this request."""
    areas = list(session.exec(select(DutyArea.prefecture).where(DutyArea.person_id == actor.id)))
    if (
        request is not None
        and check(actor, Action.HANDLE_OXYGEN) is None
        and may_see(actor, areas, request.prefecture)
    ):
        return False
    audit.record(
        session,
        f"denied.{Action.HANDLE_OXYGEN}",
        actor=actor.telegram_id,
        target_person_id=request.person_id if request else None,
        outcome="denied",
        reason="area" if request is not None else "unknown",
        attempted=f"ox:{verb}:{request.id if request else '?'}",
    )
    return True


def acknowledge(session: Session, actor: Person, request_id: int, config: OxygenConfig) -> Change:
    request = session.get(OxygenRequest, request_id)
    if _handling_refusal(session, actor, request, "ack"):
        return Change("refused", None)
    assert request is not None
    now = clock.now()
    result = session.execute(
        update(OxygenRequest)
        .where(col(OxygenRequest.id) == request_id, col(OxygenRequest.status) == OxygenStatus.OPEN)
        .values(status=OxygenStatus.ACKNOWLEDGED, acknowledged_at=now, acknowledged_by=actor.id)
        .execution_options(synchronize_session=False)
    )
    session.refresh(request)
    if result.rowcount != 1:  # type: ignore[attr-defined]
        if request.status == OxygenStatus.ACKNOWLEDGED:
            return Change("taken", request, session.get(Person, request.acknowledged_by or 0))
        return Change("closed", request)
    _event(session, request, "acknowledged", actor)
    audit.record(
        session,
        "oxygen.acknowledged",
        actor=actor.telegram_id,
        target_person_id=request.person_id,
        request=request.id,
    )
    _edit_notices(session, request, config.zone)
    _tell_cadre(session, request, "ack", "care.ox.told.acknowledged", config.zone)
    return Change("won", request, actor)


def deliver(session: Session, actor: Person, request_id: int, config: OxygenConfig) -> Change:
    """Mark delivered (from open or acknowledged; delivering also acknowledges)."""
    request = session.get(OxygenRequest, request_id)
    if _handling_refusal(session, actor, request, "dlv"):
        return Change("refused", None)
    assert request is not None
    now = clock.now()
    result = session.execute(
        update(OxygenRequest)
        .where(col(OxygenRequest.id) == request_id, col(OxygenRequest.status).in_(IN_PROGRESS))
        .values(
            status=OxygenStatus.DELIVERED,
            delivered_at=now,
            delivered_by=actor.id,
            closed_at=now,
        )
        .execution_options(synchronize_session=False)
    )
    session.refresh(request)
    if result.rowcount != 1:  # type: ignore[attr-defined]
        return Change("closed", request, session.get(Person, request.delivered_by or 0))
    if request.acknowledged_at is None:
        request.acknowledged_at, request.acknowledged_by = now, actor.id
        session.add(request)
    _event(session, request, "delivered", actor)
    audit.record(
        session,
        "oxygen.delivered",
        actor=actor.telegram_id,
        target_person_id=request.person_id,
        request=request.id,
    )
    _edit_notices(session, request, config.zone)
    _tell_cadre(session, request, "dlv", "care.ox.told.delivered", config.zone)
    return Change("won", request, actor)


def cancel(session: Session, person_id: int, request_id: int, config: OxygenConfig) -> Change:
    """The cadre no longer needs it (only their own, only while in progress)."""
    request = session.get(OxygenRequest, request_id)
    if request is None or request.person_id != person_id:
        person = session.get(Person, person_id)
        audit.record(
            session,
            f"denied.{Action.REQUEST_OXYGEN}",
            actor=person.telegram_id if person else None,
            target_person_id=request.person_id if request else None,
            outcome="denied",
            reason="not_owner",
            attempted=f"ox:cxl:{request_id}",
        )
        return Change("refused", None)
    now = clock.now()
    result = session.execute(
        update(OxygenRequest)
        .where(col(OxygenRequest.id) == request_id, col(OxygenRequest.status).in_(IN_PROGRESS))
        .values(status=OxygenStatus.CANCELLED, closed_at=now)
        .execution_options(synchronize_session=False)
    )
    session.refresh(request)
    if result.rowcount != 1:  # type: ignore[attr-defined]
        return Change("closed", request)
    cadre = session.get(Person, person_id)
    _event(session, request, "cancelled", cadre)
    audit.record(
        session,
        "oxygen.cancelled",
        actor=cadre.telegram_id if cadre else None,
        target_person_id=person_id,
        request=request.id,
    )
    _edit_notices(session, request, config.zone)
    return Change("won", request, cadre)


def escalate_due(session: Session, now: datetime, config: OxygenConfig) -> list[int]:
    """Escalate every urgent request unacknowledged for longer than the escalation delay;
    each once (a conditional UPDATE on escalated_at). Returns the escalated ids."""
    due = session.exec(
        select(OxygenRequest.id).where(
            OxygenRequest.status == OxygenStatus.OPEN,
            OxygenRequest.urgency == OxygenUrgency.URGENT,
            col(OxygenRequest.escalated_at).is_(None),
            col(OxygenRequest.created_at) <= now - config.escalation,
        )
    ).all()
    escalated: list[int] = []
    for request_id in due:
        assert request_id is not None
        result = session.execute(
            update(OxygenRequest)
            .where(
                col(OxygenRequest.id) == request_id,
                col(OxygenRequest.status) == OxygenStatus.OPEN,
                col(OxygenRequest.escalated_at).is_(None),
            )
            .values(escalated_at=now)
            .execution_options(synchronize_session=False)
        )
        if result.rowcount != 1:  # type: ignore[attr-defined]
            continue
        request = session.get(OxygenRequest, request_id)
        assert request is not None
        session.refresh(request)
        _event(session, request, "escalated", None)
        recipients = _everyone_for(session, request.prefecture)
        count = _notify(session, request, recipients, config.zone, escalated=True)
        _tell_cadre(session, request, "esc", "care.ox.told.escalated", config.zone)
        audit.record(
            session,
            "oxygen.escalated",
            actor=None,
            target_person_id=request.person_id,
            request=request.id,
            recipients=count,
        )
        escalated.append(request_id)
    session.flush()
    return escalated


def pending_escalations(session: Session, config: OxygenConfig) -> list[tuple[int, datetime]]:
    """(request id, when it escalates) for every urgent request still waiting: the
    scheduler rebuilds one job per entry at start-up."""
    rows = session.exec(
        select(OxygenRequest.id, OxygenRequest.created_at).where(
            OxygenRequest.status == OxygenStatus.OPEN,
            OxygenRequest.urgency == OxygenUrgency.URGENT,
            col(OxygenRequest.escalated_at).is_(None),
        )
    )
    return [(rid, created + config.escalation) for rid, created in rows if rid is not None]


# ---------------------------------------------------------------------------- views


def requests_of(
    session: Session, person_id: int, limit: int = 5, offset: int = 0
) -> list[OxygenRequest]:
    """The person's requests, newest first: `limit` from `offset` (a page of /oxygen)."""
    query = (
        select(OxygenRequest)
        .where(OxygenRequest.person_id == person_id)
        .order_by(col(OxygenRequest.created_at).desc(), col(OxygenRequest.id).desc())
        .offset(max(0, offset))
        .limit(limit)
    )
    return list(session.exec(query))


def count_of(session: Session, person_id: int) -> int:
    """How many requests the person has made (the pages of their /oxygen)."""
    query = sa_select(func.count()).where(col(OxygenRequest.person_id) == person_id)
    return int(session.execute(query).scalar_one())


def _in_area(prefectures: frozenset[str] | None) -> list[Any]:
    """The WHERE of the requests in progress in `prefectures` (None: everywhere)."""
    where = [col(OxygenRequest.status).in_(IN_PROGRESS)]
    if prefectures is not None:
        where.append(col(OxygenRequest.prefecture).in_(sorted(prefectures)))
    return where


_URGENCY_RANK = case(
    {OxygenUrgency.URGENT: 0, OxygenUrgency.TODAY: 1},
    value=col(OxygenRequest.urgency),
    else_=2,
)


def open_in_area(
    session: Session, prefectures: frozenset[str] | None, limit: int = 20, offset: int = 0
) -> list[OxygenRequest]:
    """The requests in progress in the area, the most urgent first: nobody's yet before
    taken, then by urgency (now, today, in a few days), then the oldest; `limit` from
    `offset` (a page of the officer's /oxygen)."""
    if prefectures is not None and not prefectures:
        return []
    taken = case((col(OxygenRequest.status) == OxygenStatus.OPEN, 0), else_=1)
    query = (
        select(OxygenRequest)
        .where(*_in_area(prefectures))
        .order_by(taken, _URGENCY_RANK, col(OxygenRequest.created_at), col(OxygenRequest.id))
        .offset(max(0, offset))
        .limit(limit)
    )
    return list(session.exec(query))


def count_in_area(session: Session, prefectures: frozenset[str] | None) -> int:
    """How many requests are in progress in the area."""
    if prefectures is not None and not prefectures:
        return 0
    query = sa_select(func.count()).where(*_in_area(prefectures))
    return int(session.execute(query).scalar_one())


def timeline(session: Session, request_id: int) -> list[OxygenEvent]:
    query = (
        select(OxygenEvent)
        .where(OxygenEvent.request_id == request_id)
        .order_by(col(OxygenEvent.at), col(OxygenEvent.id))
    )
    return list(session.exec(query))
