"""Storing check-ins, history, baselines, what the duty officers are told, suspicious
identical readings and deletion after the retention period.

A check-in and everything it causes (the alert of a RED result, notices to the duty
officers) are written in one transaction: the caller's session.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Select, func
from sqlalchemy import select as sa_select
from sqlmodel import Session, col, delete, select

from models import (
    Alert,
    AlertStatus,
    CheckIn,
    MissedCheckin,
    Person,
    Priority,
    ReminderPreference,
    Role,
    Status,
)
from models.health import Feeling, Tier
from services import audit, clock, erasure, outbox, people, roster
from services.alerts import policy as alerts_policy
from services.alerts import raising
from services.care import records
from services.health.assessment import Assessment, Past, Readings, assess, worsened
from services.health.config import HealthConfig
from services.health.summary import (
    CHART_DAYS,
    attach_chart,
    chart_points,
    enqueue_once,
    format_local,
    is_low_altitude,
    since,
    vitals_line,
)
from services.i18n import t
from services.outbox.attachments import Attachment
from services.people import name_of
from services.postings import load_postings

log = logging.getLogger(__name__)

HISTORY_DAYS = 4  # enough for the 3-day baseline and the 24-hour comparisons
NOTE_MAX = 200


class CheckinError(Exception):
    def __init__(self, key: str) -> None:
        super().__init__(key)
        self.key = key


# ---------------------------------------------------------------------------- places & time


def local_date(at: datetime, zone: ZoneInfo) -> date:
    return at.astimezone(zone).date()


def local_midnight(day: date, zone: ZoneInfo) -> datetime:
    return datetime.combine(day, time(0, 0), tzinfo=zone)


def ascent_at(session: Session, person: Person, zone: ZoneInfo) -> datetime | None:
    """When the person last came up: the arrival, or the return from low-altitude rest."""
    days = [person.assignment_start]
    if person.id is not None:
        days.append(records.last_rest_return(session, person.id))
    known = [d for d in days if d is not None]
    return local_midnight(max(known), zone) if known else None


# ---------------------------------------------------------------------------- reading back


def history(session: Session, person_id: int, limit: int = 14, offset: int = 0) -> list[CheckIn]:
    """The newest check-ins first: `limit` of them from `offset` (a page of /history)."""
    query = select(CheckIn).where(CheckIn.person_id == person_id)
    query = query.order_by(col(CheckIn.at).desc(), col(CheckIn.id).desc())
    return list(session.exec(query.offset(max(0, offset)).limit(limit)))


def history_count(session: Session, person_id: int) -> int:
    """How many check-ins the person has (the pages of /history)."""
    query = sa_select(func.count()).where(col(CheckIn.person_id) == person_id)
    return int(session.execute(query).scalar_one())


def past(checkin: CheckIn) -> Past:
    return Past(
        at=checkin.at,
        tier=Tier(checkin.tier),
        spo2=checkin.spo2,
        heart_rate=checkin.heart_rate,
        lls_total=checkin.lls_total,
        altitude_m=checkin.altitude_m,
    )


def amber_run_start(newest_first: Sequence[CheckIn]) -> CheckIn | None:
    """The first check-in of the unbroken run of AMBER results that ends with the newest."""
    start = None
    for checkin in newest_first:
        if checkin.tier != Tier.AMBER:
            break
        start = checkin
    return start


def recheck_at(amber_at: datetime, config: HealthConfig) -> datetime:
    """The AMBER recheck reminder: 6-12 hours later (health.md), not in the night if the
    window allows it."""
    th = config.thresholds
    earliest = amber_at + timedelta(hours=th.amber_recheck_min_hours)
    latest_at = amber_at + timedelta(hours=th.amber_recheck_max_hours)
    local = earliest.astimezone(config.zone)
    quiet = local.time() >= config.quiet_start or local.time() < config.quiet_end
    if not quiet:
        return earliest
    wake_day = local.date() if local.time() < config.quiet_end else local.date() + timedelta(1)
    wake = datetime.combine(wake_day, config.quiet_end, tzinfo=config.zone)
    return min(wake, latest_at)


# ---------------------------------------------------------------------------- who is told


def area_recipients(
    session: Session, prefecture: str | None, now: datetime, zone: ZoneInfo
) -> list[Person]:
    """Who hears about a cadre's health: the officers on duty for the prefecture now, else
    every duty officer of the prefecture, else the admins."""
    if prefecture:
        on_duty = roster.on_duty_now(session, prefecture, now, zone)
        if on_duty:
            return on_duty
        officers = roster.duty_officers(session, prefecture)
        if officers:
            return officers
    return people.admins(session)


def describe(person: Person, lang: str) -> str:
    """One line naming a cadre for a duty officer: name, posting, altitude, phone."""
    postings = load_postings()
    posting = "-"
    if person.county and postings.county(person.county):
        posting = postings.name(person.county, lang)
    elif person.prefecture and postings.prefecture(person.prefecture):
        posting = postings.name(person.prefecture, lang, short=True)
    altitude = (
        t(lang, "form.metres", metres=person.posting_altitude_m)
        if person.posting_altitude_m is not None
        else "-"
    )
    return t(
        lang,
        "health.officer.person",
        name=name_of(person, "-"),
        posting=posting,
        altitude=altitude,
        phone=person.phone or "-",
    )


def reasons_text(lang: str, keys: Iterable[str]) -> str:
    return "\n".join(f"• {t(lang, f'health.reason.{key}')}" for key in keys)


# ---------------------------------------------------------------------------- storing


@dataclass
class Outcome:
    checkin: CheckIn
    assessment: Assessment
    alert_id: int | None
    officers_told: int
    recheck_at: datetime | None


def validate(readings: Readings, config: HealthConfig) -> None:
    """The same ranges the form enforces, checked again before anything is stored."""
    th = config.thresholds

    def within(value: float | None, low: float, high: float) -> bool:
        return value is None or low <= value <= high

    checks = [
        within(readings.spo2, th.range_spo2_min, th.range_spo2_max),
        within(readings.heart_rate, th.range_hr_min, th.range_hr_max),
        within(readings.temperature_c, th.range_temp_min, th.range_temp_max),
    ]
    for sys_, dia in (
        (readings.systolic, readings.diastolic),
        (readings.systolic_2, readings.diastolic_2),
    ):
        checks += [
            within(sys_, th.range_systolic_min, th.range_systolic_max),
            within(dia, th.range_diastolic_min, th.range_diastolic_max),
            sys_ is None or dia is None or sys_ > dia,
        ]
    items = [*readings.lls_items, readings.functional]
    checks += [item is None or 0 <= item <= 3 for item in items]
    if not all(checks):
        raise CheckinError("health.invalid.out_of_range")


def submit(
    session: Session,
    person_id: int,
    readings: Readings,
    *,
    config: HealthConfig,
    policy: alerts_policy.Policy,
    feeling: str | None = None,
    note: str | None = None,
    no_oximeter: bool = False,
    complete: bool = True,
) -> Outcome:
    """Store a check-in, assess it and act on the result, in the caller's transaction:
    RED raises an alert through the emergency path; a worsening or persisting AMBER tells
    the duty officers. `policy`: what raising the alert needs (services.alerts.Policy)."""
    person = session.get(Person, person_id)
    if person is None or person.status != Status.ACTIVE:
        raise CheckinError("health.invalid.not_active")
    validate(readings, config)
    now = clock.now()
    zone = config.zone
    earlier = list(reversed(since(session, person_id, now - timedelta(days=HISTORY_DAYS))))
    low = is_low_altitude(person)
    altitude = None if low else person.posting_altitude_m
    assessment = assess(
        readings,
        altitude_m=altitude,
        low_altitude=low,
        now=now,
        history=[past(c) for c in earlier],
        ascent_at=None if low else ascent_at(session, person, zone),
        thresholds=config.thresholds,
    )
    checkin = CheckIn(
        person_id=person_id,
        at=now,
        local_date=local_date(now, zone),
        feeling=Feeling(feeling).value if feeling else None,
        red_flags=sorted(readings.red_flags),
        cough_or_breathless=readings.cough_or_breathless,
        headache=readings.headache,
        gi=readings.gi,
        fatigue=readings.fatigue,
        dizziness=readings.dizziness,
        functional=readings.functional,
        lls_total=assessment.lls_total,
        spo2=readings.spo2,
        no_oximeter=no_oximeter and readings.spo2 is None,
        heart_rate=readings.heart_rate,
        temperature_c=readings.temperature_c,
        systolic=readings.systolic,
        diastolic=readings.diastolic,
        systolic_2=readings.systolic_2,
        diastolic_2=readings.diastolic_2,
        note=(note or "").strip()[:NOTE_MAX] or None,
        altitude_m=altitude,
        tier=assessment.tier,
        reasons=assessment.reason_keys,
        ams=assessment.ams,
        complete=complete,
    )
    checkin.identical_days_before = identical_days_before(checkin, earlier)
    session.add(checkin)
    session.flush()
    assert checkin.id is not None
    alert_id = None
    told = 0
    if assessment.tier == Tier.RED:
        alert_id, told = _red(session, person, checkin, config, policy)
    elif assessment.tier == Tier.AMBER:
        told = _amber(session, person, checkin, earlier, assessment, config)
    told += _late_after_missed(session, person, checkin, config)
    recheck = recheck_at(now, config) if assessment.tier == Tier.AMBER else None
    return Outcome(checkin, assessment, alert_id, told, recheck)


def _red(
    session: Session,
    person: Person,
    checkin: CheckIn,
    config: HealthConfig,
    policy: alerts_policy.Policy,
) -> tuple[int | None, int]:
    """The emergency path. If it fails for any reason, the duty officers are still told
    directly, at emergency priority: a RED result never stays with the bot alone."""
    assert person.id is not None and checkin.id is not None
    reasons = [f"health.reason.{key}" for key in checkin.reasons]
    alert_id = None
    try:
        with session.begin_nested():
            alert_id = raising.raise_alert(
                session, person_id=person.id, cause="checkin_red", reasons=reasons, policy=policy
            )
    except NotImplementedError:
        log.warning("the emergency path is not available: telling the duty officers directly")
    except Exception:
        log.exception("raise_alert failed: telling the duty officers directly")
    told = 0
    recipients = area_recipients(session, person.prefecture, checkin.at, config.zone)
    for officer in recipients:
        if officer.id == person.id:
            continue
        lang = officer.language
        # Without the emergency path this message IS the alert; with it, the details and
        # the chart button follow the alert.
        direct = alert_id is None
        key = f"health:red:{checkin.id}:{officer.id}"
        outbox.enqueue_to(
            session,
            officer,
            priority=Priority.EMERGENCY if direct else Priority.URGENT,
            idempotency_key=key,
            source=f"checkin:{checkin.id}",
            text=_officer_text(
                lang,
                "health.officer.red" if direct else "health.officer.red_details",
                person,
                checkin,
                config,
            ),
            reply_markup=chart_button(lang, person.id),
        )
        if direct:  # with the emergency path, the chart follows the alert itself
            attach_chart(
                session,
                person,
                officer,
                after=key,
                source=f"checkin:{checkin.id}",
                zone=config.zone,
            )
        told += 1
    return alert_id, told


def _amber(
    session: Session,
    person: Person,
    checkin: CheckIn,
    earlier_newest_first: list[CheckIn],
    assessment: Assessment,
    config: HealthConfig,
) -> int:
    """Tell the officers now if this AMBER is worse than the one before, or if AMBER has
    lasted 24 hours (the periodic pass also catches that one without a new check-in)."""
    window = checkin.at - timedelta(hours=config.thresholds.amber_escalate_hours)
    previous = next((c for c in earlier_newest_first if c.at >= window), None)
    if previous is not None and worsened(
        assessment, Tier(previous.tier), previous.reasons, previous.lls_total
    ):
        return notify_officers(session, person, checkin, "worse", config)
    run = amber_run_start([checkin, *earlier_newest_first])
    if run is not None and checkin.at - run.at >= timedelta(
        hours=config.thresholds.amber_escalate_hours
    ):
        return notify_officers(session, person, checkin, "persist", config, run_id=run.id)
    return 0


def notify_officers(
    session: Session,
    person: Person,
    checkin: CheckIn,
    why: str,
    config: HealthConfig,
    run_id: int | None = None,
) -> int:
    """An AMBER result that got worse ('worse') or persisted ('persist'): urgent notice and
    the 30-day chart to the area's officers, once per run of AMBER results."""
    assert checkin.id is not None
    told = 0
    key_id = run_id if why == "persist" else checkin.id
    for officer in area_recipients(session, person.prefecture, clock.now(), config.zone):
        if officer.id == person.id:
            continue
        lang = officer.language
        key = f"health:amber-{why}:{key_id}:{officer.id}"
        new = enqueue_once(
            session,
            chat_id=officer.telegram_id,
            person_id=officer.id,
            language=lang,
            priority=Priority.URGENT,
            idempotency_key=key,
            source=f"checkin:{checkin.id}",
            text=_officer_text(lang, f"health.officer.amber_{why}", person, checkin, config),
            reply_markup=chart_button(lang, person.id) if person.id is not None else None,
        )
        if new:
            attach_chart(
                session,
                person,
                officer,
                after=key,
                source=f"checkin:{checkin.id}",
                zone=config.zone,
            )
        told += new
    return told


def _officer_text(
    lang: str, key: str, person: Person, checkin: CheckIn, config: HealthConfig
) -> str:
    """An officer's notice of a check-in: the reasons, the readings and the cadre's own
    note, each on its line when there is one (a red-flag stop has no readings)."""
    details = [reasons_text(lang, checkin.reasons), vitals_line(lang, checkin)]
    if checkin.note:
        details.append(t(lang, "health.officer.note", note=checkin.note))
    return t(
        lang,
        key,
        person=_html(describe(person, lang)),
        when=format_local(checkin.at, config.zone),
        details=_html("\n".join(line for line in details if line)),
    )


def _html(text: str) -> Any:
    from services.i18n import Html

    return Html(text)


def chart_attachment(
    config: HealthConfig, session: Session, args: dict[str, Any]
) -> Attachment | None:
    """The outbox renderer CHART_RENDERER (see `summary.attach_chart`; the composition root
    registers it with the health settings, bot/app.py), called by the delivery
    worker: the cadre's chart over `days` days up to `end` (the notice's time, so that a
    retry or a restart draws the same picture), in `lang`. None when the readings are gone
    (deleted after the retention period, or with the person): the message is not sent.
    matplotlib is imported and the picture drawn in the worker's drawing thread."""
    person = session.get(Person, int(args["person_id"]))
    if person is None or person.id is None:
        return None
    end = datetime.fromisoformat(str(args["end"]))
    start = end - timedelta(days=int(args.get("days", CHART_DAYS)))
    points = chart_points(session, person.id, start, end)
    if not points:
        return None
    lang = str(args.get("lang") or person.language)

    def draw() -> bytes:
        from services.health import charts

        bands = charts.bands_for(person, config.thresholds)
        return charts.render(points, bands, lang, start=start, end=end, zone=config.zone)

    return Attachment("trend.png", draw)


def chart_button(lang: str, person_id: int) -> dict[str, Any]:
    """The officer's button for the cadre's 30-day chart (checked against their area)."""
    return outbox.inline_keyboard([[(t(lang, "health.officer.chart_button"), f"ct:{person_id}")]])


def _late_after_missed(
    session: Session, person: Person, checkin: CheckIn, config: HealthConfig
) -> int:
    """The officers were told this person missed today: tell them they checked in after all."""
    missed = session.exec(
        select(MissedCheckin).where(
            MissedCheckin.person_id == person.id, MissedCheckin.local_date == checkin.local_date
        )
    ).first()
    if missed is None:
        return 0
    told = 0
    for officer in area_recipients(session, person.prefecture, checkin.at, config.zone):
        if officer.id == person.id:
            continue
        told += enqueue_once(
            session,
            chat_id=officer.telegram_id,
            person_id=officer.id,
            language=officer.language,
            priority=Priority.REMINDER,
            idempotency_key=f"health:late:{missed.id}:{officer.id}",
            source=f"checkin:{checkin.id}",
            text=t(
                officer.language,
                "health.officer.late",
                person=_html(describe(person, officer.language)),
                when=format_local(checkin.at, config.zone),
            ),
        )
    return told


# ---------------------------------------------------------------------------- areas


def monitored_clause(prefectures: Iterable[str] | None = None) -> list[Any]:
    """Who the daily check-in is for: active cadres and duty officers with a posting (in
    `prefectures`; None: every prefecture). Conditions on the person table."""
    conditions: list[Any] = [
        Person.status == Status.ACTIVE,
        col(Person.role).in_([Role.CADRE, Role.DUTY_OFFICER]),
        col(Person.prefecture).is_not(None),
    ]
    if prefectures is not None:
        conditions.append(col(Person.prefecture).in_(list(prefectures)))
    return conditions


def monitored_rows(session: Session) -> list[Any]:
    """Active cadres and duty officers with a posting, as read-only rows of every person
    column (read like a Person: row.id, row.prefecture...), not ORM objects: the health
    pass reads all of them every minute, and 100,000 ORM objects cost seconds."""
    person = Person.__table__  # type: ignore[attr-defined]
    query = sa_select(*person.columns).where(*monitored_clause()).order_by(person.c.id)
    return list(session.execute(query))


def checkins_on(session: Session, person_ids: Sequence[int], day: date) -> dict[int, CheckIn]:
    """The newest check-in of each person on a local day."""
    if not person_ids:
        return {}
    rows = session.exec(
        select(CheckIn)
        .where(col(CheckIn.person_id).in_(list(person_ids)), CheckIn.local_date == day)
        .order_by(col(CheckIn.at), col(CheckIn.id))
    )
    return {row.person_id: row for row in rows}


def identical_days_before(checkin: CheckIn, newest_first: Sequence[CheckIn]) -> int:
    """How many days in a row before the check-in's day ended with the same readings: the
    previous day's last check-in (by time, then id, among `newest_first`) adds its own
    count + 1 when its readings equal these and these are not all missing."""
    readings = checkin.vitals()
    if all(value is None for value in readings):
        return 0
    day_before = checkin.local_date - timedelta(days=1)
    for earlier in newest_first:  # the first of the day before is its last
        if earlier.local_date == day_before:
            return earlier.identical_days_before + 1 if earlier.vitals() == readings else 0
        if earlier.local_date < day_before:
            break
    return 0


def suspicious(
    session: Session, person_ids: Sequence[int], today: date, config: HealthConfig
) -> set[int]:
    """People whose self-reported vitals were identical on each of the last N days with a
    check-in (N = suspicious_identical_days), N consecutive days ending today or yesterday."""
    query = suspicious_select(today, config)
    if query is None:
        return set()
    table = CheckIn.__table__  # type: ignore[attr-defined]
    flagged: set[int] = set()
    ids = sorted(set(person_ids))
    for start in range(0, len(ids), ID_CHUNK):
        chunk = table.c.person_id.in_(ids[start : start + ID_CHUNK])
        flagged.update(session.execute(query.where(chunk)).scalars())
    return flagged


ID_CHUNK = 5000  # ids per IN list: PostgreSQL takes 65,535 parameters, SQLite 32,766


def suspicious_select(today: date, config: HealthConfig) -> Select[tuple[int]] | None:
    """The people `suspicious` flags, everyone's (None: the check is off): the last check-in
    of today or yesterday repeats at least N-1 days before it (`identical_days_before`,
    counted when it was stored). The partial index on those few check-ins makes this a
    lookup, not a comparison of everyone's last days; callers narrow it to their people
    (an id list, or `IN` this select for an area)."""
    days = int(config.thresholds.suspicious_identical_days)
    if days < 2:
        return None
    table = CheckIn.__table__  # type: ignore[attr-defined]
    later = table.alias("later")
    last_of_day = (  # per row found, through the (person_id, at) index: never a join
        sa_select(later.c.id)
        .where(later.c.person_id == table.c.person_id, later.c.local_date == table.c.local_date)
        .order_by(later.c.at.desc(), later.c.id.desc())
        .limit(1)
        .scalar_subquery()
    )
    return (
        sa_select(table.c.person_id)
        .where(
            table.c.identical_days_before > 0,  # the partial index's condition, as written
            table.c.identical_days_before >= days - 1,
            table.c.local_date.in_([today - timedelta(days=1), today]),
            table.c.id == last_of_day,
        )
        .distinct()
    )


def record_forged(session: Session, telegram_id: int | None, data: str) -> None:
    """A check-in button whose value no question ever offered: refused and audited."""
    person = people.find(session, telegram_id) if telegram_id is not None else None
    audit.record(
        session,
        "denied.checkin",
        actor=telegram_id,
        target_person_id=person.id if person else None,
        outcome="denied",
        reason="forged",
        attempted=data[:64],
    )


# ---------------------------------------------------------------------------- reminders


def preference(session: Session, person_id: int) -> ReminderPreference | None:
    return session.get(ReminderPreference, person_id)


def set_reminder_time(session: Session, person: Person, value: time) -> ReminderPreference:
    if not time(5, 0) <= value < time(14, 0):
        raise CheckinError("health.reminders.bad_time")
    assert person.id is not None
    pref = preference(session, person.id) or ReminderPreference(person_id=person.id)
    pref.local_time = value.strftime("%H:%M")
    pref.updated_at = clock.now()
    session.add(pref)
    audit.record(
        session, "checkin.reminder_time", actor=person.telegram_id, target_person_id=person.id
    )
    return pref


def pause(session: Session, person: Person, start: date, end: date | None) -> ReminderPreference:
    """Pause the reminders and the missed-day notices for a date range (inclusive);
    end None resumes them."""
    assert person.id is not None
    pref = preference(session, person.id) or ReminderPreference(person_id=person.id)
    if end is not None and (end < start or (end - start).days > 366):
        raise CheckinError("health.reminders.bad_range")
    pref.paused_from, pref.paused_until = (start, end) if end is not None else (None, None)
    pref.updated_at = clock.now()
    session.add(pref)
    audit.record(
        session,
        "checkin.paused" if end is not None else "checkin.resumed",
        actor=person.telegram_id,
        target_person_id=person.id,
        start=start.isoformat() if end else None,
        end=end.isoformat() if end else None,
    )
    return pref


def is_paused(pref: ReminderPreference | None, day: date) -> bool:
    return bool(
        pref
        and pref.paused_from is not None
        and pref.paused_until is not None
        and pref.paused_from <= day <= pref.paused_until
    )


# ---------------------------------------------------------------------------- retention


@dataclass(frozen=True)
class Expired:
    """What one retention pass deleted: the readings of people whose assignment ended
    before `cutoff`."""

    cutoff: date
    people: int
    checkins: int
    missed_days: int


def delete_expired(session: Session, today: date, retention_days: int) -> Expired:
    """Delete the detailed readings (check-ins and missed days) of people whose assignment
    ended more than `retention_days` ago (PIPL art. 19). Audited per person, without the
    readings."""
    cutoff = today - timedelta(days=retention_days)
    ended = col(Person.assignment_end).is_not(None), col(Person.assignment_end) < cutoff
    people_ids = sorted(
        set(
            session.exec(
                select(CheckIn.person_id)
                .join(Person, col(Person.id) == col(CheckIn.person_id))
                .where(*ended)
                .distinct()
            )
        )
        | set(
            session.exec(
                select(MissedCheckin.person_id)
                .join(Person, col(Person.id) == col(MissedCheckin.person_id))
                .where(*ended)
                .distinct()
            )
        )
    )
    total = missed_total = 0
    for person_id in people_ids:
        ids = list(session.exec(select(CheckIn.id).where(CheckIn.person_id == person_id)))
        count = len(ids)
        # the readings were copied into officers' notices and alert texts: those go too
        alert_ids = session.exec(
            select(Alert.id).where(
                Alert.person_id == person_id,
                col(Alert.status).in_((AlertStatus.RESOLVED, AlertStatus.CANCELLED)),
            )
        )
        copies = [f"checkin:{i}" for i in ids]
        copies += [f"{kind}:{i}" for i in alert_ids for kind in ("alert", "chart:alert")]
        erasure.clear_sources(session, copies, erasure.EXPIRED)
        session.exec(delete(CheckIn).where(col(CheckIn.person_id) == person_id))
        missed = session.exec(
            delete(MissedCheckin).where(col(MissedCheckin.person_id) == person_id)
        )
        audit.record(
            session,
            "checkin.readings_deleted",
            actor=None,
            target_person_id=person_id,
            checkins=int(count),
            reason="retention",
            retention_days=retention_days,
        )
        total += int(count)
        missed_total += max(missed.rowcount or 0, 0)
    return Expired(cutoff, len(people_ids), total, missed_total)


def export_own(session: Session, person_id: int) -> list[dict[str, Any]]:
    """A person's own check-ins, for /mydata-style exports."""
    return [c.model_dump(mode="json") for c in history(session, person_id, limit=10_000)]
