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
from typing import Any

from sqlalchemy import and_, or_
from sqlalchemy import select as sa_select
from sqlmodel import Session, col, func, select

from models import (
    AuditEntry,
    CheckIn,
    MissedCheckin,
    OutboxMessage,
    Person,
    Priority,
    ReminderPreference,
)
from models.health import Tier
from services import audit, clock, erasure, outbox
from services.care import records
from services.health import checkins, summary
from services.health.config import HealthConfig, parse_hhmm
from services.i18n import Html, t
from services.postings import load_postings

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
    if summary.is_low_altitude(person):
        return False  # altitude features are off for Zhejiang postings
    if day < first_day(person, config):
        return False
    if person.assignment_end is not None and day > person.assignment_end:
        return False
    return not checkins.is_paused(pref, day)


def monitored_on(day: date, config: HealthConfig) -> Any:
    """`is_monitored` without the pause, as a condition on the person table: a high-altitude
    posting, registered before `day` (local), the assignment begun and not ended."""
    postings = load_postings()
    counties = [c for p in postings.prefectures() for c in postings.counties(p.code)]
    high_counties = [c.code for c in counties if not c.low_altitude]
    high_prefectures = [p.code for p in postings.prefectures() if not p.low_altitude]
    county, prefecture = col(Person.county), col(Person.prefecture)
    return and_(
        or_(
            county.in_(high_counties),
            and_(
                or_(county.is_(None), county.not_in([c.code for c in counties])),
                prefecture.in_(high_prefectures),
            ),
        ),
        # first_day: the day after registration (local), and not before the assignment
        col(Person.created_at) < checkins.local_midnight(day, config.zone),
        or_(col(Person.assignment_start).is_(None), col(Person.assignment_start) <= day),
        or_(col(Person.assignment_end).is_(None), col(Person.assignment_end) >= day),
    )


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


@dataclass
class _Pending:
    """The reminders of one pass, queued together at its end (services.outbox.enqueue_many):
    a key queued before, by this pass or an earlier one, is not queued again and not
    counted. `queued` holds the keys known to be in the outbox already."""

    queued: set[str]
    messages: list[tuple[str, outbox.NewMessage]] = field(default_factory=list)

    def add(self, counter: str, person: Person, key: str, text_key: str, **values: object) -> None:
        if key in self.queued:
            return
        self.queued.add(key)
        self.messages.append(
            (
                counter,
                outbox.NewMessage(
                    chat_id=person.telegram_id,
                    idempotency_key=key,
                    text=t(person.language, text_key, **values),
                    priority=Priority.REMINDER,
                    person_id=person.id,
                    language=person.language,
                    reply_markup=_button(person.language),
                    source=REMINDER_SOURCE,
                ),
            )
        )

    def flush(self, session: Session, result: PassResult) -> None:
        keys = [message.idempotency_key for _, message in self.messages]
        existing: set[str] = set()
        for start in range(0, len(keys), 500):
            existing.update(
                session.exec(
                    select(OutboxMessage.idempotency_key).where(
                        col(OutboxMessage.idempotency_key).in_(keys[start : start + 500])
                    )
                )
            )
        fresh = []
        for counter, message in self.messages:
            if message.idempotency_key not in existing:
                setattr(result, counter, getattr(result, counter) + 1)
                fresh.append(message)
        outbox.enqueue_many(session, fresh)
        self.messages = []


def run_pass(session: Session, config: HealthConfig, now: datetime | None = None) -> PassResult:
    """Queue everything due at `now` (default: the clock). Safe to run at any frequency."""
    now = now or clock.now()
    zone = config.zone
    today = checkins.local_date(now, zone)
    yesterday = today - timedelta(days=1)
    result = PassResult()
    monitored = checkins.monitored_rows(session)
    if not monitored:
        return result
    # Whole tables, filtered by time: not IN lists of every monitored id (a statement takes
    # at most 32,766 parameters on SQLite and 65,535 on PostgreSQL); rows of people who are
    # not monitored are simply never looked up.
    prefs: dict[int, Any] = {  # rows, not ORM objects (see checkins.monitored_rows)
        p.person_id: p
        for p in session.execute(sa_select(ReminderPreference.__table__))  # type: ignore[attr-defined]
    }
    # (id, person_id, at, local_date, tier) of each check-in: the pass reads a hundred
    # thousand of them at 100,000 people; the few AMBER notices load theirs in full
    recent: dict[int, list[Any]] = defaultdict(list)  # newest first
    since = now - timedelta(days=3)
    for row in session.execute(
        select(  # type: ignore[call-overload]
            CheckIn.id, CheckIn.person_id, CheckIn.at, CheckIn.local_date, CheckIn.tier
        )
        .where(
            # local_date is indexed, `at` is not alone; a day's margin covers any time zone
            col(CheckIn.local_date) >= since.date() - timedelta(days=1),
            col(CheckIn.at) >= since,
        )
        .order_by(col(CheckIn.at).desc(), col(CheckIn.id).desc())
    ):
        if row.at <= now:
            recent[row.person_id].append(row)
    missed_since_yesterday = sa_select(MissedCheckin.person_id, MissedCheckin.local_date).where(  # type: ignore[call-overload]
        col(MissedCheckin.local_date) >= yesterday
    )
    already_missed = {(pid, day) for pid, day in session.execute(missed_since_yesterday)}
    rest_returns = records.last_rest_returns(session)
    newly_missed: dict[str | None, list[tuple[Person, MissedCheckin]]] = defaultdict(list)
    persisting: list[tuple[Person, int, int]] = []  # AMBER for 24 h: (who, latest id, run id)
    pending = _Pending(
        set(
            session.exec(
                select(OutboxMessage.idempotency_key).where(
                    OutboxMessage.source == REMINDER_SOURCE,
                    col(OutboxMessage.created_at) >= now - timedelta(days=2),
                )
            )
        )
    )

    for person in monitored:
        assert person.id is not None
        pref = prefs.get(person.id)
        mine = recent.get(person.id, [])
        rest_return = rest_returns.get(person.id)
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
                    newly_missed[person.prefecture].append((person, missed))
                    result.missed.append((person.id, day))
            elif day == today and now >= day_plan.nudge:
                key = f"health:nudge:{person.id}:{day.isoformat()}"
                pending.add("nudges", person, key, "health.remind.nudge")
            elif day == today:
                key = f"health:remind:{person.id}:{day.isoformat()}"
                pending.add("reminders", person, key, "health.remind.daily")
            if day == today and day_plan.second is not None and now >= day_plan.second:
                assert day_plan.second_opens is not None and day_plan.second_nudge is not None
                answered = any(c.at >= day_plan.second_opens for c in on_day)
                if not answered:
                    late = now >= day_plan.second_nudge
                    kind = "second-nudge" if late else "second"
                    text_key = "health.remind.second_nudge" if late else "health.remind.second"
                    key = f"health:{kind}:{person.id}:{day.isoformat()}"
                    pending.add("second", person, key, text_key)
        _amber_follow_up(session, person, mine, now, config, result, pending, persisting)

    pending.flush(session, result)
    result.amber_persist += _tell_amber_persisting(session, persisting, config)
    session.flush()  # the missed days get their ids (the officers' notice key names one)
    for prefecture, rows in newly_missed.items():
        result.officer_notices += _tell_officers_missed(session, prefecture, rows, now, config)
    return result


def _amber_follow_up(
    session: Session,
    person: Person,
    newest_first: list[Any],
    now: datetime,
    config: HealthConfig,
    result: PassResult,
    pending: _Pending,
    persisting: list[tuple[Person, int, int]],
) -> None:
    if not newest_first or newest_first[0].tier != Tier.AMBER:
        return
    latest = newest_first[0]
    assert latest.id is not None
    th = config.thresholds
    due = checkins.recheck_at(latest.at, config)
    if due <= now < latest.at + timedelta(hours=th.amber_escalate_hours):
        pending.add(
            "rechecks",
            person,
            f"health:recheck:{latest.id}",
            "health.remind.recheck",
            when=summary.format_local(latest.at, config.zone),
        )
    run = checkins.amber_run_start(newest_first)
    if run is not None and now - run.at >= timedelta(hours=th.amber_escalate_hours):
        assert run.id is not None
        persisting.append((person, latest.id, run.id))


def _tell_amber_persisting(
    session: Session, persisting: list[tuple[Person, int, int]], config: HealthConfig
) -> int:
    """checkins.notify_officers for each AMBER run of 24 hours, skipping the runs whose
    notices are all queued already (every pass finds them again until the next check-in):
    their keys are looked up together, and each area's recipients once."""
    recipients: dict[str | None, list[Person]] = {}
    keys: dict[int, list[str]] = {}
    for person, _, run_id in persisting:
        if person.prefecture not in recipients:
            recipients[person.prefecture] = checkins.area_recipients(
                session, person.prefecture, clock.now(), config.zone
            )
        keys[run_id] = [  # as notify_officers names them
            f"health:amber-persist:{run_id}:{officer.id}"
            for officer in recipients[person.prefecture]
            if officer.id != person.id
        ]
    wanted = [key for run_keys in keys.values() for key in run_keys]
    queued: set[str] = set()
    for start in range(0, len(wanted), 500):
        queued.update(
            session.exec(
                select(OutboxMessage.idempotency_key).where(
                    col(OutboxMessage.idempotency_key).in_(wanted[start : start + 500])
                )
            )
        )
    due = [(p, latest, run) for p, latest, run in persisting if not queued.issuperset(keys[run])]
    full: dict[int | None, CheckIn] = {}
    people: dict[int | None, Person] = {}  # the pass read rows; the notices take the people
    for start in range(0, len(due), 500):
        chunk = due[start : start + 500]
        latest_ids = [latest for _, latest, _ in chunk]
        full.update(
            (c.id, c) for c in session.exec(select(CheckIn).where(col(CheckIn.id).in_(latest_ids)))
        )
        person_ids = [person.id for person, _, _ in chunk]
        people.update(
            (p.id, p) for p in session.exec(select(Person).where(col(Person.id).in_(person_ids)))
        )
    told = 0
    for person, latest, run_id in due:
        told += checkins.notify_officers(
            session, people[person.id], full[latest], "persist", config, run_id=run_id
        )
    return told


MISSED_LINES = 50  # people named in one cut-off notice to an officer


def _tell_officers_missed(
    session: Session,
    prefecture: str | None,
    rows: list[tuple[Person, MissedCheckin]],
    now: datetime,
    config: HealthConfig,
) -> int:
    """One message per officer with everyone of their area newly past the cut-off (the
    first MISSED_LINES of them: at a daily cut-off of tens of thousands, a list of all
    would be hundreds of Telegram messages; /today lists them)."""
    told = 0
    first_id = min(m.id or 0 for _, m in rows)
    for officer in checkins.area_recipients(session, prefecture, now, config.zone):
        lang = officer.language
        listed = [(p, m) for p, m in rows if p.id != officer.id]
        if not listed:
            continue
        lines = "\n".join(
            f"• {checkins.describe(p, lang)} ({m.local_date.strftime('%m-%d')})"
            for p, m in listed[:MISSED_LINES]
        )
        if len(listed) > MISSED_LINES:
            more = t(lang, "health.officer.missed_more", count=len(listed) - MISSED_LINES)
            lines += "\n" + more
        told += summary.enqueue_once(
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


# The daily retention pass runs at this local time (handlers.checkin schedules it).
RETENTION_TIME = time(3, 30)
RETENTION_AUDIT = "health.retention"


def retention_pass(
    session: Session, config: HealthConfig, now: datetime | None = None
) -> checkins.Expired:
    """The daily deletion of readings past the retention period (see checkins.delete_expired),
    and one audit entry summing it up: even a pass that deleted nothing is recorded, so the
    audit log shows that retention runs. The summary holds counts and dates, no readings."""
    today = checkins.local_date(now or clock.now(), config.zone)
    expired = checkins.delete_expired(session, today, config.retention_days)
    cleared = erasure.clear_sent(session, config.outbox_sent_days, now)
    audit.record(
        session,
        RETENTION_AUDIT,
        actor=None,
        retention_days=config.retention_days,
        assignments_ended_before=expired.cutoff.isoformat(),
        people=expired.people,
        checkins=expired.checkins,
        missed_days=expired.missed_days,
        outbox_sent_days=config.outbox_sent_days,
        messages_cleared=cleared,
    )
    return expired


def retention_missed(session: Session, config: HealthConfig, now: datetime | None = None) -> bool:
    """Whether the latest scheduled retention pass (RETENTION_TIME local, today or yesterday)
    has not run, e.g. because the bot was down then: the scheduler keeps its jobs in memory,
    so a run missed while stopped is caught up at start-up only if someone asks."""
    local = (now or clock.now()).astimezone(config.zone)
    latest = datetime.combine(local.date(), RETENTION_TIME, tzinfo=config.zone)
    if latest > local:
        latest -= timedelta(days=1)
    last = session.exec(
        select(func.max(AuditEntry.at)).where(AuditEntry.action == RETENTION_AUDIT)
    ).one()
    return last is None or last < latest
