"""The duty roster: who is on duty for which prefecture, now.

A duty officer (or an admin with duty areas) is on duty for all their duty areas when
either
  * they said so with /onduty (an ``on_duty`` row, open until /offduty or its ``until``), or
  * a weekly shift of theirs for that prefecture covers the current local time
    (``CADRE_TIMEZONE``; a shift whose end is not after its start runs past midnight).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from sqlmodel import Session, col, func, or_, select

from models import DutyArea, DutyShift, OnDuty, Person, Priority, Role, Status
from services import audit, clock, outbox
from services.i18n import t
from services.people import name_of
from services.postings import load_postings

RESPONDER_ROLES = (Role.DUTY_OFFICER, Role.ADMIN)
DAY = 24 * 60
# Shift blocks admins pick from with buttons: (code, start minute, end minute).
SHIFT_BLOCKS: dict[str, tuple[int, int]] = {
    "day": (8 * 60, 20 * 60),
    "night": (20 * 60, 8 * 60),
    "office": (8 * 60 + 30, 17 * 60 + 30),
    "all": (0, DAY),
}
ON_DUTY_HOURS = (4, 8, 12, 24)


class RosterError(Exception):
    def __init__(self, key: str) -> None:
        super().__init__(key)
        self.key = key


# ---------------------------------------------------------------------------- who


def duty_areas_of(session: Session, person_ids: Iterable[int]) -> dict[int, list[str]]:
    ids = list(person_ids)
    result: dict[int, list[str]] = defaultdict(list)
    if not ids:
        return result
    for row in session.exec(select(DutyArea).where(col(DutyArea.person_id).in_(ids))):
        result[row.person_id].append(row.prefecture)
    return result


def duty_officers(session: Session, prefecture: str | None = None) -> list[Person]:
    """Active duty officers (of one prefecture, or all of them)."""
    query = select(Person).where(Person.role == Role.DUTY_OFFICER, Person.status == Status.ACTIVE)
    if prefecture is not None:
        query = query.join(DutyArea, col(DutyArea.person_id) == col(Person.id)).where(
            DutyArea.prefecture == prefecture
        )
    return list(session.exec(query.order_by(col(Person.id))).unique())


def _responders_of(session: Session, prefecture: str) -> list[Person]:
    query = (
        select(Person)
        .join(DutyArea, col(DutyArea.person_id) == col(Person.id))
        .where(
            DutyArea.prefecture == prefecture,
            col(Person.role).in_(RESPONDER_ROLES),
            Person.status == Status.ACTIVE,
        )
    )
    return list(session.exec(query.order_by(col(Person.id))).unique())


def shift_covers(shift: DutyShift, local: datetime) -> bool:
    """Whether a weekly shift covers a local (time-zone aware) moment."""
    minute = local.hour * 60 + local.minute
    weekday = local.weekday()
    start, end = shift.start_minute, shift.end_minute
    if end > start:
        return shift.weekday == weekday and start <= minute < end
    # past midnight: [start, 24:00) on its day and [00:00, end) on the next
    if shift.weekday == weekday and minute >= start:
        return True
    return (shift.weekday + 1) % 7 == weekday and minute < end


def _open_duty_filter(now: datetime):  # type: ignore[no-untyped-def]
    return (
        col(OnDuty.ended_at).is_(None),
        or_(col(OnDuty.until).is_(None), col(OnDuty.until) > now),
    )


def on_duty_ids(session: Session, person_ids: Iterable[int], now: datetime) -> set[int]:
    """Who among person_ids said /onduty and is still on duty."""
    ids = list(person_ids)
    if not ids:
        return set()
    query = select(OnDuty.person_id).where(col(OnDuty.person_id).in_(ids), *_open_duty_filter(now))
    return set(session.exec(query))


def on_duty_now(
    session: Session, prefecture: str | None, now: datetime, zone: ZoneInfo
) -> list[Person]:
    """The people on duty for a prefecture at `now` (by /onduty or by a weekly shift)."""
    if not prefecture:
        return []
    candidates = _responders_of(session, prefecture)
    if not candidates:
        return []
    ids = [p.id for p in candidates if p.id is not None]
    active = on_duty_ids(session, ids, now)
    local = now.astimezone(zone)
    shifts = session.exec(
        select(DutyShift).where(
            DutyShift.prefecture == prefecture, col(DutyShift.person_id).in_(ids)
        )
    )
    for shift in shifts:
        if shift_covers(shift, local):
            active.add(shift.person_id)
    return [p for p in candidates if p.id in active]


def current_duty(session: Session, person_id: int, now: datetime) -> OnDuty | None:
    query = select(OnDuty).where(OnDuty.person_id == person_id, *_open_duty_filter(now))
    return session.exec(query.order_by(col(OnDuty.id).desc())).first()


# ---------------------------------------------------------------------------- /onduty, /offduty


def go_on_duty(session: Session, person: Person, hours: int | None) -> OnDuty:
    """Start (or extend) a period on duty; `hours` None means until /offduty."""
    assert person.id is not None
    if not duty_areas_of(session, [person.id]).get(person.id):
        raise RosterError("sos.duty.no_areas")
    now = clock.now()
    for row in session.exec(
        select(OnDuty).where(OnDuty.person_id == person.id, col(OnDuty.ended_at).is_(None))
    ):
        row.ended_at = now
        session.add(row)
    duty = OnDuty(
        person_id=person.id,
        started_at=now,
        until=now + timedelta(hours=hours) if hours else None,
    )
    session.add(duty)
    session.flush()
    audit.record(
        session, "duty.on", actor=person.telegram_id, target_person_id=person.id, hours=hours
    )
    return duty


def go_off_duty(session: Session, person: Person) -> bool:
    """End the period on duty; False when the person was not on duty by /onduty."""
    now = clock.now()
    rows = list(
        session.exec(select(OnDuty).where(OnDuty.person_id == person.id, *_open_duty_filter(now)))
    )
    for row in rows:
        row.ended_at = now
        session.add(row)
    audit.record(session, "duty.off", actor=person.telegram_id, target_person_id=person.id)
    return bool(rows)


# ---------------------------------------------------------------------------- weekly shifts


def add_shifts(
    session: Session,
    actor: Person,
    person_id: int,
    prefecture: str,
    weekdays: Iterable[int],
    block: str,
) -> list[DutyShift]:
    """Give a duty officer a shift block on some weekdays (skipping exact duplicates)."""
    if block not in SHIFT_BLOCKS or load_postings().prefecture(prefecture) is None:
        raise RosterError("sos.roster.invalid")
    officer = session.get(Person, person_id)
    if (
        officer is None
        or officer.status != Status.ACTIVE
        or officer.role not in RESPONDER_ROLES
        or prefecture not in duty_areas_of(session, [person_id]).get(person_id, [])
    ):
        raise RosterError("sos.roster.not_officer_here")
    start, end = SHIFT_BLOCKS[block]
    days = sorted({d for d in weekdays if 0 <= d <= 6})
    if not days:
        raise RosterError("sos.roster.invalid")
    existing = {
        (s.weekday, s.start_minute, s.end_minute)
        for s in session.exec(
            select(DutyShift).where(
                DutyShift.person_id == person_id, DutyShift.prefecture == prefecture
            )
        )
    }
    created = []
    for day in days:
        if (day, start, end) in existing:
            continue
        shift = DutyShift(
            person_id=person_id,
            prefecture=prefecture,
            weekday=day,
            start_minute=start,
            end_minute=end,
            created_by=actor.id,
            created_at=clock.now(),
        )
        session.add(shift)
        created.append(shift)
    session.flush()
    audit.record(
        session,
        "roster.added",
        actor=actor.telegram_id,
        target_person_id=person_id,
        prefecture=prefecture,
        days=days,
        block=block,
    )
    if created:
        _tell_officer(session, actor, officer, prefecture, created, "sos.roster.told_added")
    return created


def shift_text(lang: str, shift: DutyShift) -> str:
    """``Mon 08:00–20:00`` in the reader's language."""
    end = "24:00" if shift.end_minute == DAY else hhmm(shift.end_minute % DAY)
    return f"{t(lang, f'sos.day.{shift.weekday}')} {hhmm(shift.start_minute)}–{end}"


def _tell_officer(
    session: Session,
    actor: Person,
    officer: Person,
    prefecture: str,
    shifts: list[DutyShift],
    key: str,
) -> None:
    """The officer hears, through the outbox, of a change to their own shifts (not when
    they made it themselves)."""
    if officer.id == actor.id:
        return
    lang = officer.language
    text = t(
        lang,
        key,
        admin=name_of(actor, t(lang, "sos.roster.an_admin")),  # an admin of the settings
        area=load_postings().name(prefecture, lang, short=True),
        shifts=t(lang, "sos.tl.sep").join(shift_text(lang, s) for s in shifts),
    )
    stamp = clock.now().strftime("%Y%m%d%H%M%S%f")
    outbox.enqueue_to(
        session,
        officer,
        text=text,
        priority=Priority.URGENT,
        idempotency_key=f"roster:{officer.id}:{stamp}:{shifts[0].id}",
        source=f"roster:{officer.id}",
    )


def remove_shift(session: Session, actor: Person, shift_id: int) -> DutyShift | None:
    shift = session.get(DutyShift, shift_id)
    if shift is None:
        return None
    officer = session.get(Person, shift.person_id)
    if officer is not None and officer.status == Status.ACTIVE:
        _tell_officer(session, actor, officer, shift.prefecture, [shift], "sos.roster.told_removed")
    session.delete(shift)
    audit.record(
        session,
        "roster.removed",
        actor=actor.telegram_id,
        target_person_id=shift.person_id,
        prefecture=shift.prefecture,
        weekday=shift.weekday,
    )
    return shift


def shifts_of(session: Session, prefecture: str) -> list[tuple[DutyShift, Person]]:
    query = (
        select(DutyShift, Person)
        .join(Person, col(Person.id) == col(DutyShift.person_id))
        .where(DutyShift.prefecture == prefecture)
        .order_by(col(DutyShift.weekday), col(DutyShift.start_minute), col(Person.id))
    )
    return [(shift, person) for shift, person in session.exec(query)]


def hhmm(minute: int) -> str:
    return f"{minute // 60:02d}:{minute % 60:02d}"


# ---------------------------------------------------------------------------- coverage


@dataclass
class Coverage:
    prefecture: str
    cadres: int
    on_duty: list[Person] = field(default_factory=list)
    officers: list[Person] = field(default_factory=list)


def cadre_counts(session: Session) -> dict[str, int]:
    """Active cadres per prefecture (plateau and Zhejiang groups alike)."""
    query = (
        select(Person.prefecture, func.count())
        .where(
            Person.role == Role.CADRE,
            Person.status == Status.ACTIVE,
            col(Person.prefecture).is_not(None),
        )
        .group_by(col(Person.prefecture))
    )
    return {prefecture: count for prefecture, count in session.exec(query) if prefecture}


def coverage(session: Session, now: datetime, zone: ZoneInfo) -> list[Coverage]:
    """For every prefecture with active cadres: who is on duty now, and the officers."""
    result = []
    for prefecture, count in sorted(cadre_counts(session).items()):
        result.append(
            Coverage(
                prefecture=prefecture,
                cadres=count,
                on_duty=on_duty_now(session, prefecture, now, zone),
                officers=duty_officers(session, prefecture),
            )
        )
    return result
