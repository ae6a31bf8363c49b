"""Who is due a reminder, a nudge or a cut-off notice at a given instant, in each person's
local time (a lone-worker safety timer), and the pass that queues them.

Nothing here is a timer of its own: everything is derived from the database (people,
reminder preferences, check-ins, missed days) at the instant of the pass, and every message
has a stable outbox idempotency key. A pass that runs twice, late or after a restart queues
each message once; a reminder whose time passed while the bot was down is replaced by the
next step (nudge, cut-off) rather than piling up.

One local day of a monitored person (times in CADRE_TIMEZONE, the person's own reminder
time T, default CADRE_HEALTH_REMINDER_TIME):
  T                       reminder, unless they already checked in today
  T + nudge_after_hours   nudge, unless they checked in
  T + cutoff_after_hours  the area's duty officers are told they have not checked in
                          (exactly once per missed day: a health_missed_day row)
In the first `close_monitoring_days` days after arrival and after each return from a
low-altitude rest, a second check-in is asked at CADRE_HEALTH_SECOND_TIME (with its own
nudge two hours later). After an AMBER result a recheck reminder goes out 6-12 hours later,
and the officers are told if AMBER has lasted 24 hours.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta

from sqlmodel import Session, col, select

from models import CheckIn, MissedCheckin, OutboxMessage, Person, Priority, ReminderPreference
from models.health import Tier
from services import care, clock, outbox
from services.health import checkins
from services.health.config import HealthConfig, parse_hhmm
from services.i18n import Html, t

SECOND_NUDGE_HOURS = 2
REMINDER_SOURCE = "health:reminder"
LATEST_LOCAL = time(23, 30)


@dataclass(frozen=True)
class DayPlan:
    """The instants of one person's local day."""

    day: date
    reminder: datetime
    nudge: datetime
    cutoff: datetime
    second: datetime | None  # closer monitoring only
    second_nudge: datetime | None
    second_opens: datetime | None  # a check-in from here on answers the second reminder


@dataclass
class PassResult:
    reminders: int = 0
    nudges: int = 0
    second: int = 0
    rechecks: int = 0
    missed: list[tuple[int, date]] = field(default_factory=list)
    officer_notices: int = 0
    amber_persist: int = 0

    @property
    def queued(self) -> int:
        return (
            self.reminders
            + self.nudges
            + self.second
            + self.rechecks
            + self.officer_notices
            + self.amber_persist
        )


def reminder_time(pref: ReminderPreference | None, config: HealthConfig) -> time:
    if pref is not None and pref.local_time:
        return parse_hhmm(pref.local_time)
    return config.reminder_time


def first_day(person: Person, config: HealthConfig) -> date:
    """Monitoring starts the day after registration, and not before the assignment."""
    registered = checkins.local_date(person.created_at, config.zone) + timedelta(days=1)
    if person.assignment_start and person.assignment_start > registered:
        return person.assignment_start
    return registered


def is_monitored(
    person: Person, pref: ReminderPreference | None, day: date, config: HealthConfig
) -> bool:
    if checkins.is_low_altitude(person):
        return False  # altitude features are off for Zhejiang postings
    if day < first_day(person, config):
        return False
    if person.assignment_end is not None and day > person.assignment_end:
        return False
    return not checkins.is_paused(pref, day)


def close_monitoring(
    person: Person, rest_return: date | None, day: date, config: HealthConfig
) -> bool:
    """The first days after arrival and after each return from a low-altitude rest."""
    span = timedelta(days=config.close_monitoring_days)
    for start in (person.assignment_start, rest_return):
        if start is not None and start <= day < start + span:
            return True
    return False


def plan(
    person: Person,
    pref: ReminderPreference | None,
    day: date,
    config: HealthConfig,
    rest_return: date | None = None,
) -> DayPlan:
    zone = config.zone
    start = datetime.combine(day, reminder_time(pref, config), tzinfo=zone)
    latest = datetime.combine(day, LATEST_LOCAL, tzinfo=zone)
    cutoff = min(start + timedelta(hours=config.cutoff_after_hours), latest)
    nudge = min(start + timedelta(hours=config.nudge_after_hours), cutoff)
    second = second_nudge = opens = None
    if close_monitoring(person, rest_return, day, config):
        second = datetime.combine(day, config.second_time, tzinfo=zone)
        second_nudge = min(second + timedelta(hours=SECOND_NUDGE_HOURS), latest)
        opens = start + (second - start) / 2
    return DayPlan(day, start, nudge, cutoff, second, second_nudge, opens)


def _button(lang: str) -> dict[str, object]:
    return outbox.inline_keyboard([[(t(lang, "health.remind.button"), "ci:start")]])


def _to_person(
    session: Session,
    person: Person,
    key: str,
    text_key: str,
    priority: Priority,
    queued: set[str],
    **values: object,
) -> bool:
    """Queue a reminder unless its key was queued before; True when it is new."""
    if key in queued:
        return False
    queued.add(key)
    return checkins.enqueue_once(
        session,
        chat_id=person.telegram_id,
        person_id=person.id,
        language=person.language,
        priority=priority,
        idempotency_key=key,
        source=REMINDER_SOURCE,
        text=t(person.language, text_key, **values),
        reply_markup=_button(person.language),
    )


def run_pass(session: Session, config: HealthConfig, now: datetime | None = None) -> PassResult:
    """Queue everything due at `now` (default: the clock). Safe to run at any frequency."""
    now = now or clock.now()
    zone = config.zone
    today = checkins.local_date(now, zone)
    yesterday = today - timedelta(days=1)
    result = PassResult()
    monitored = checkins.monitored_people(session)
    if not monitored:
        return result
    ids = [p.id for p in monitored if p.id is not None]
    prefs = {
        p.person_id: p
        for p in session.exec(
            select(ReminderPreference).where(col(ReminderPreference.person_id).in_(ids))
        )
    }
    recent: dict[int, list[CheckIn]] = defaultdict(list)  # newest first
    for row in session.exec(
        select(CheckIn)
        .where(col(CheckIn.person_id).in_(ids), col(CheckIn.at) >= now - timedelta(days=3))
        .order_by(col(CheckIn.at).desc(), col(CheckIn.id).desc())
    ):
        if row.at <= now:
            recent[row.person_id].append(row)
    already_missed = {
        (m.person_id, m.local_date)
        for m in session.exec(
            select(MissedCheckin).where(
                col(MissedCheckin.person_id).in_(ids),
                col(MissedCheckin.local_date) >= yesterday,
            )
        )
    }
    newly_missed: dict[str | None, list[tuple[Person, MissedCheckin]]] = defaultdict(list)
    queued = set(
        session.exec(
            select(OutboxMessage.idempotency_key).where(
                OutboxMessage.source == REMINDER_SOURCE,
                col(OutboxMessage.created_at) >= now - timedelta(days=2),
            )
        )
    )

    for person in monitored:
        assert person.id is not None
        pref = prefs.get(person.id)
        mine = recent.get(person.id, [])
        rest_return = care.last_rest_return(session, person.id)
        for day in (yesterday, today):
            if not is_monitored(person, pref, day, config):
                continue
            day_plan = plan(person, pref, day, config, rest_return)
            on_day = [c for c in mine if c.local_date == day]
            if on_day or now < day_plan.reminder:
                pass
            elif now >= day_plan.cutoff:
                if (person.id, day) not in already_missed:
                    missed = MissedCheckin(person_id=person.id, local_date=day, notified_at=now)
                    session.add(missed)
                    session.flush()
                    newly_missed[person.prefecture].append((person, missed))
                    result.missed.append((person.id, day))
            elif day == today and now >= day_plan.nudge:
                result.nudges += _to_person(
                    session,
                    person,
                    f"health:nudge:{person.id}:{day.isoformat()}",
                    "health.remind.nudge",
                    Priority.REMINDER,
                    queued,
                )
            elif day == today:
                result.reminders += _to_person(
                    session,
                    person,
                    f"health:remind:{person.id}:{day.isoformat()}",
                    "health.remind.daily",
                    Priority.REMINDER,
                    queued,
                )
            if day == today and day_plan.second is not None and now >= day_plan.second:
                assert day_plan.second_opens is not None and day_plan.second_nudge is not None
                answered = any(c.at >= day_plan.second_opens for c in on_day)
                if not answered:
                    late = now >= day_plan.second_nudge
                    kind = "second-nudge" if late else "second"
                    result.second += _to_person(
                        session,
                        person,
                        f"health:{kind}:{person.id}:{day.isoformat()}",
                        "health.remind.second_nudge" if late else "health.remind.second",
                        Priority.REMINDER,
                        queued,
                    )
        _amber_follow_up(session, person, mine, now, config, result, queued)

    for prefecture, rows in newly_missed.items():
        result.officer_notices += _tell_officers_missed(session, prefecture, rows, now, config)
    return result


def _amber_follow_up(
    session: Session,
    person: Person,
    newest_first: list[CheckIn],
    now: datetime,
    config: HealthConfig,
    result: PassResult,
    queued: set[str],
) -> None:
    if not newest_first or newest_first[0].tier != Tier.AMBER:
        return
    latest = newest_first[0]
    assert latest.id is not None
    th = config.thresholds
    due = checkins.recheck_at(latest.at, config)
    if due <= now < latest.at + timedelta(hours=th.amber_escalate_hours):
        result.rechecks += _to_person(
            session,
            person,
            f"health:recheck:{latest.id}",
            "health.remind.recheck",
            Priority.REMINDER,
            queued,
            when=checkins.format_local(latest.at, config.zone),
        )
    run = checkins.amber_run_start(newest_first)
    if run is not None and now - run.at >= timedelta(hours=th.amber_escalate_hours):
        result.amber_persist += checkins.notify_officers(
            session, person, latest, "persist", config, run_id=run.id
        )


def _tell_officers_missed(
    session: Session,
    prefecture: str | None,
    rows: list[tuple[Person, MissedCheckin]],
    now: datetime,
    config: HealthConfig,
) -> int:
    """One message per officer with everyone of their area newly past the cut-off."""
    told = 0
    first_id = min(m.id or 0 for _, m in rows)
    for officer in checkins.area_recipients(session, prefecture, now, config.zone):
        lang = officer.language
        listed = [(p, m) for p, m in rows if p.id != officer.id]
        if not listed:
            continue
        lines = "\n".join(
            f"• {checkins.describe(p, lang)} ({m.local_date.strftime('%m-%d')})" for p, m in listed
        )
        told += checkins.enqueue_once(
            session,
            chat_id=officer.telegram_id,
            person_id=officer.id,
            language=lang,
            priority=Priority.URGENT,
            idempotency_key=f"health:missed:{officer.id}:{first_id}",
            source="health:missed",
            text=t(lang, "health.officer.missed", count=len(listed), people=Html(lines)),
        )
    return told


def retention_pass(session: Session, config: HealthConfig, now: datetime | None = None) -> int:
    """The daily deletion of readings past the retention period (see checkins.delete_expired)."""
    today = checkins.local_date(now or clock.now(), config.zone)
    return checkins.delete_expired(session, today, config.retention_days)
