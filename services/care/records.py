"""Care schedules: one person's schedule and what they (or an admin) record on it: done,
booked, snoozed, a due day set, a reminder time; their records and their data export.

Contract used by other features:
    last_rest_return(session, person_id) -> date | None
The day the person last came back up from a completed low-altitude rest, so that health
monitoring can restart closer checks (re-entry risk) for the days after it.
"""

from __future__ import annotations

import re
import unicodedata
from datetime import date, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlmodel import Session, col, func, select

from models import (
    CareItem,
    CareKind,
    CareProfile,
    CareRecord,
    CareRecordKind,
    OxygenEvent,
    OxygenRequest,
    Person,
    Priority,
    Status,
)
from services import audit, clock, outbox
from services.care.items import ensure_item, items_by_person
from services.care.rules import (
    BEFORE_DAYS,
    BOOK_MAX_AHEAD_DAYS,
    DONE_MAX_AGE_DAYS,
    PLACE_MAX,
    RESULT_MAX,
    SET_RANGE_DAYS,
    SNOOZE_DAYS,
    CareConfig,
    CareError,
    Due,
    PersonFacts,
    Schedule,
    compute,
    policy_for,
    schedule_state,
    timing_for,
)
from services.care.texts import item_name, reminder_buttons
from services.care_policy import effective_policy
from services.i18n import t

# ---------------------------------------------------------------------------- one person


def _person(session: Session, person_id: int) -> Person:
    person = session.get(Person, person_id)
    if person is None:
        raise CareError("care.stale")
    return person


def schedule_for(session: Session, person_id: int, config: CareConfig) -> Schedule:
    """A person's schedule now (creates the item rows their reminder buttons need)."""
    person = _person(session, person_id)
    facts = PersonFacts.of(person)
    timing = timing_for(session.get(CareProfile, person_id), config)
    today = timing.today(clock.now())
    band, band_policy = policy_for(effective_policy(session, config.policy_override), facts)
    state = schedule_state(facts, today)
    items = items_by_person(session, [person_id]).get(person_id, {})
    dues: dict[CareKind, Due | None] = {}
    for kind in CareKind:
        due = compute(facts, kind, band_policy, items.get(kind), today)
        if due is not None and due.item_id is None:
            ensure_item(session, person_id, kind, items)
            due = compute(facts, kind, band_policy, items.get(kind), today)
        dues[kind] = due
    days = None
    if state == "ok" and facts.start is not None:
        days = max(0, (min(today, facts.end or today) - facts.start).days)
    return Schedule(
        person=facts,
        state=state,
        band=band if state == "ok" else None,
        policy=band_policy if state == "ok" else None,
        items=dues,
        today=today,
        timing=timing,
        days_at_altitude=days,
        last_rest_return=last_rest_return(session, person_id),
    )


def _owned_item(
    session: Session, person_id: int, item_id: int, due: date | None, config: CareConfig
) -> tuple[CareItem, Schedule]:
    """The item, if it is this person's and (when `due` is given) still due on that day."""
    item = session.get(CareItem, item_id)
    if item is None or item.person_id != person_id:
        raise CareError("care.forged")
    schedule = schedule_for(session, person_id, config)
    current = schedule.items.get(CareKind(item.kind))
    if current is None or (due is not None and current.due != due):
        raise CareError("care.stale")
    return item, schedule


def check_action(
    session: Session, person_id: int, item_id: int, due: date | None, config: CareConfig
) -> CareKind:
    """Raises CareError when a reminder button is forged or out of date."""
    item, _ = _owned_item(session, person_id, item_id, due, config)
    return CareKind(item.kind)


def clean_line(text: str | None, limit: int) -> str:
    """One line of free text: normalised, control characters removed, within `limit`."""
    value = unicodedata.normalize("NFKC", text or "")
    value = "".join(ch for ch in value if unicodedata.category(ch)[0] != "C" or ch == " ")
    value = re.sub(r"\s+", " ", value).strip()
    if not value:
        raise CareError("care.invalid.empty")
    if len(value) > limit:
        raise CareError("care.invalid.too_long", limit=limit)
    return value


def _add_record(
    session: Session,
    item: CareItem,
    record: CareRecordKind,
    on_date: date,
    actor_telegram_id: int | None,
    **details: Any,
) -> None:
    """One line of the item's history (done, booked, snoozed), with who did it and when."""
    session.add(
        CareRecord(
            person_id=item.person_id,
            kind=item.kind,
            record=record,
            on_date=on_date,
            actor_telegram_id=actor_telegram_id,
            recorded_at=clock.now(),
            **details,
        )
    )


def record_done(
    session: Session,
    person_id: int,
    item_id: int,
    on_date: date,
    config: CareConfig,
    *,
    place: str | None = None,
    result: str | None = None,
    actor_telegram_id: int | None = None,
) -> Schedule:
    item, schedule = _owned_item(session, person_id, item_id, None, config)
    today = schedule.today
    if on_date > today:
        raise CareError("care.invalid.future")
    if on_date < today - timedelta(days=DONE_MAX_AGE_DAYS):
        raise CareError("care.invalid.too_old", count=DONE_MAX_AGE_DAYS)
    kind = CareKind(item.kind)
    if kind == CareKind.REST:
        place, result = None, None
    place = clean_line(place, PLACE_MAX) if place else None
    result = clean_line(result, RESULT_MAX) if result else None
    _add_record(
        session, item, CareRecordKind.DONE, on_date, actor_telegram_id, place=place, result=result
    )
    item.last_done = max(on_date, item.last_done) if item.last_done else on_date
    item.override_due = None
    item.booked_for = None
    item.snoozed_until = None
    item.changed_at = clock.now()
    session.add(item)
    session.flush()
    audit.record(
        session,
        "schedule.done",
        actor=actor_telegram_id,
        target_person_id=person_id,
        item=str(kind),
        on=on_date.isoformat(),
    )
    return schedule_for(session, person_id, config)


def record_booked(
    session: Session,
    person_id: int,
    item_id: int,
    on_date: date,
    config: CareConfig,
    *,
    actor_telegram_id: int | None = None,
) -> Schedule:
    item, schedule = _owned_item(session, person_id, item_id, None, config)
    today = schedule.today
    if on_date < today:
        raise CareError("care.invalid.past")
    if on_date > today + timedelta(days=BOOK_MAX_AHEAD_DAYS):
        raise CareError("care.invalid.too_far", count=BOOK_MAX_AHEAD_DAYS)
    item.booked_for = on_date
    item.snoozed_until = None
    item.changed_at = clock.now()
    session.add(item)
    _add_record(session, item, CareRecordKind.BOOKED, on_date, actor_telegram_id)
    session.flush()
    audit.record(
        session,
        "schedule.booked",
        actor=actor_telegram_id,
        target_person_id=person_id,
        item=str(item.kind),
        on=on_date.isoformat(),
    )
    return schedule_for(session, person_id, config)


def record_snoozed(
    session: Session,
    person_id: int,
    item_id: int,
    days: int,
    config: CareConfig,
    *,
    due: date | None = None,
    actor_telegram_id: int | None = None,
) -> Schedule:
    """Reminders to the person pause for `days` (1, 3 or 7); escalation does not."""
    if days not in SNOOZE_DAYS:
        raise CareError("care.stale")
    item, schedule = _owned_item(session, person_id, item_id, due, config)
    until = schedule.today + timedelta(days=days)
    item.snoozed_until = until
    item.changed_at = clock.now()
    session.add(item)
    _add_record(session, item, CareRecordKind.SNOOZED, until, actor_telegram_id)
    session.flush()
    audit.record(
        session, "schedule.snoozed", actor=actor_telegram_id, target_person_id=person_id, days=days
    )
    return schedule_for(session, person_id, config)


def set_due(
    session: Session,
    actor: Person,
    person_id: int,
    kind: CareKind,
    on_date: date,
    config: CareConfig,
) -> Schedule:
    """An admin sets or moves the due day of one person's rest or exam. The person is told
    (queued; the caller wakes the delivery worker)."""
    person = _person(session, person_id)
    facts = PersonFacts.of(person)
    timing = timing_for(session.get(CareProfile, person_id), config)
    today = timing.today(clock.now())
    if person.status != Status.ACTIVE or schedule_state(facts, today) != "ok":
        raise CareError("care.set.no_schedule")
    low, high = (today + timedelta(days=d) for d in SET_RANGE_DAYS)
    if not low <= on_date <= high:
        raise CareError("care.invalid.out_of_range", low=low.isoformat(), high=high.isoformat())
    items = items_by_person(session, [person_id]).get(person_id, {})
    item = ensure_item(session, person_id, kind, items)
    item.override_due = on_date
    item.booked_for = None
    item.snoozed_until = None
    item.changed_at = clock.now()
    session.add(item)
    record = CareRecord(
        person_id=person_id,
        kind=kind,
        record=CareRecordKind.SET,
        on_date=on_date,
        actor_telegram_id=actor.telegram_id,
        recorded_at=clock.now(),
    )
    session.add(record)
    session.flush()
    assert item.id is not None and record.id is not None
    audit.record(
        session,
        "schedule.set",
        actor=actor.telegram_id,
        target_person_id=person_id,
        item=str(kind),
        on=on_date.isoformat(),
    )
    lang = person.language
    outbox.enqueue(
        session,
        chat_id=person.telegram_id,
        text=t(
            lang, _set_notice(on_date, today), item=item_name(lang, kind), date=on_date.isoformat()
        ),
        priority=Priority.REMINDER,
        idempotency_key=f"care:set:{record.id}",
        person_id=person_id,
        language=lang,
        reply_markup=reminder_buttons(lang, item.id, on_date),
        source=f"care:{item.id}",
    )
    return schedule_for(session, person_id, config)


def _set_notice(on_date: date, today: date) -> str:
    """What the person is told of a date an admin set: which reminders are still to come,
    or that it is due today, or already overdue (a date in the past is allowed)."""
    days = (on_date - today).days
    if days < 0:
        return "care.set.notice_overdue"
    if days == 0:
        return "care.set.notice_today"
    if days == 1:
        return "care.set.notice_tomorrow"
    if days <= max(BEFORE_DAYS):
        return "care.set.notice_soon"
    return "care.set.notice"


def set_reminder_time(
    session: Session, person_id: int, seconds: int | None, timezone: str | None = None
) -> CareProfile:
    """A person's own reminder time (seconds after local midnight; None: the default)."""
    if seconds is not None and not 0 <= seconds < 86400:
        raise CareError("care.stale")
    if timezone is not None:
        try:
            ZoneInfo(timezone)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise CareError("care.stale") from exc
    profile = session.get(CareProfile, person_id) or CareProfile(person_id=person_id)
    profile.reminder_seconds = seconds
    if timezone is not None:
        profile.timezone = timezone
    session.add(profile)
    session.flush()
    return profile


def last_rest_return(session: Session, person_id: int) -> date | None:
    """The day the person last came back up from a completed low-altitude rest."""
    return session.exec(
        select(func.max(CareRecord.on_date)).where(
            CareRecord.person_id == person_id,
            CareRecord.kind == CareKind.REST,
            CareRecord.record == CareRecordKind.DONE,
        )
    ).one()


def last_rest_returns(session: Session) -> dict[int, date]:
    """`last_rest_return` of everyone who has one, in one query (the health pass)."""
    rows = session.exec(
        select(CareRecord.person_id, func.max(CareRecord.on_date))
        .where(CareRecord.kind == CareKind.REST, CareRecord.record == CareRecordKind.DONE)
        .group_by(col(CareRecord.person_id))
    )
    return {person_id: day for person_id, day in rows if day is not None}


def records_of(session: Session, person_id: int, limit: int = 10) -> list[CareRecord]:
    query = (
        select(CareRecord)
        .where(CareRecord.person_id == person_id)
        .order_by(col(CareRecord.recorded_at).desc(), col(CareRecord.id).desc())
        .limit(limit)
    )
    return list(session.exec(query))


def export_for_person(session: Session, person_id: int) -> dict[str, Any]:
    """Everything care-related stored about a person (schedules, records with their private
    results, reminder time, oxygen requests and their timelines), for /mydata (PIPL art. 45)."""
    items = items_by_person(session, [person_id]).get(person_id, {})
    records = session.exec(
        select(CareRecord).where(CareRecord.person_id == person_id).order_by(col(CareRecord.id))
    )
    profile = session.get(CareProfile, person_id)
    requests = session.exec(
        select(OxygenRequest)
        .where(OxygenRequest.person_id == person_id)
        .order_by(col(OxygenRequest.id))
    ).all()
    events = (
        session.exec(
            select(OxygenEvent)
            .where(col(OxygenEvent.request_id).in_([r.id for r in requests]))
            .order_by(col(OxygenEvent.id))
        ).all()
        if requests
        else []
    )
    return {
        "items": [i.model_dump(mode="json", exclude={"person_id"}) for i in items.values()],
        "records": [r.model_dump(mode="json", exclude={"person_id"}) for r in records],
        "reminder_profile": profile.model_dump(mode="json") if profile else None,
        "oxygen_requests": [r.model_dump(mode="json", exclude={"person_id"}) for r in requests],
        "oxygen_events": [e.model_dump(mode="json") for e in events],
    }
