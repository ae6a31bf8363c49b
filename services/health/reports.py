"""For duty officers and admins: today's picture per prefecture and exports of check-ins,
always limited to the viewer's area (services.permissions.visible_prefectures)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import and_, case, func, not_, union_all
from sqlalchemy import select as sa_select
from sqlmodel import Session, col, select

from models import CheckIn, MissedCheckin, Person, ReminderPreference
from models.health import Tier
from services import audit, clock, people, tables
from services.health import checkins
from services.health.config import HealthConfig
from services.permissions import visible_prefectures
from services.postings import load_postings

EXPORT_MAX_DAYS = 366


NAMES_SHOWN = 30  # names listed per group in /today; the counts cover everyone


@dataclass
class Group:
    """Some of an area's people: how many, and the first NAMES_SHOWN (+1, so that the
    reader knows the list goes on) by person id."""

    count: int = 0
    people: list[Person] = field(default_factory=list)


@dataclass
class AreaDay:
    prefecture: str
    total: int = 0
    checked_in: int = 0
    paused: int = 0
    amber: Group = field(default_factory=Group)
    red: Group = field(default_factory=Group)
    missing: Group = field(default_factory=Group)
    suspicious: Group = field(default_factory=Group)


def area_of(session: Session, viewer: Person) -> list[str] | None:
    """The prefectures the viewer may see, sorted; None means all of them."""
    assert viewer.id is not None
    area = visible_prefectures(viewer, people.duty_areas(session, viewer.id))
    return None if area is None else sorted(area)


def today(
    session: Session, viewer: Person, config: HealthConfig, day: date | None = None
) -> list[AreaDay]:
    """Checked in, AMBER, RED, missing (no check-in yet), paused, suspicious: per prefecture.

    A person with a check-in today counts by the tier of their latest one; without, as
    paused, or as missing when they are monitored that day (reminders.is_monitored). The
    database counts (one GROUP BY) and picks the names shown, so that an area of tens of
    thousands costs a few queries and no more than NAMES_SHOWN + 1 people per group are
    loaded."""
    day = day or checkins.local_date(clock.now(), config.zone)
    area = area_of(session, viewer)
    monitored = checkins.monitored_clause(area)
    person = Person.__table__  # type: ignore[attr-defined]
    latest = _latest_tiers(day)
    state = _state(latest, day, config)
    counts = session.execute(
        sa_select(person.c.prefecture, state.label("state"), func.count())
        .select_from(_with_pauses(person.outerjoin(latest, latest.c.person_id == person.c.id)))
        .where(*monitored)
        .group_by(person.c.prefecture, state)
    ).all()
    missing_in = [prefecture for prefecture, state_name, _ in counts if state_name == "missing"]
    named = _first_named(session, day, config, monitored, missing_in)
    identical = checkins.suspicious_select(day, config)  # a few people in all: then the area
    flagged = (
        list(
            session.execute(
                sa_select(person.c.id, person.c.prefecture)
                .where(person.c.id.in_(identical), *monitored)
                .order_by(person.c.id)
            )
        )
        if identical is not None
        else []
    )
    flagged_named: dict[str, list[int]] = {}
    for pid, prefecture in flagged:
        first = flagged_named.setdefault(prefecture, [])
        if len(first) <= NAMES_SHOWN:
            first.append(pid)
    shown = {pid for pid, _, _ in named}.union(*flagged_named.values())
    loaded = {p.id: p for p in session.exec(select(Person).where(col(Person.id).in_(shown)))}
    result: dict[str, AreaDay] = {}
    for prefecture, state_name, count in counts:
        summary = result.setdefault(prefecture, AreaDay(prefecture))
        summary.total += count
        if state_name in ("red", "amber", "checked"):
            summary.checked_in += count
        elif state_name == "paused":
            summary.paused = count
        if state_name in ("red", "amber", "missing"):
            getattr(summary, state_name).count = count
    for pid, prefecture, state_name in named:
        getattr(result[prefecture], state_name).people.append(loaded[pid])
    for _, prefecture in flagged:
        result.setdefault(prefecture, AreaDay(prefecture)).suspicious.count += 1
    for prefecture, first in flagged_named.items():
        result[prefecture].suspicious.people = [loaded[pid] for pid in first]
    order = [p.code for p in load_postings().prefectures()]
    return sorted(
        result.values(), key=lambda a: order.index(a.prefecture) if a.prefecture in order else 99
    )


def _state(latest: Any, day: date, config: HealthConfig) -> Any:
    """Each person's state on `day`: red, amber, checked, paused, missing or none."""
    return case(
        (latest.c.tier == Tier.RED.value, "red"),
        (latest.c.tier == Tier.AMBER.value, "amber"),
        (latest.c.person_id.is_not(None), "checked"),
        (_paused(day), "paused"),
        (_missing(day, config), "missing"),
        else_="none",
    )


STATES = ("red", "amber", "missing", "paused", "checked")


@dataclass
class AreaPage:
    """One page of the people of the viewer's area in one state (the board's list)."""

    counts: dict[str, int]  # state -> people, within the filter
    people: list[Person]
    total: int  # people in the chosen state


def area_page(
    session: Session,
    viewer: Person,
    config: HealthConfig,
    *,
    state: str,
    prefecture: str | None = None,
    county: str | None = None,
    offset: int = 0,
    limit: int = 50,
    day: date | None = None,
) -> AreaPage:
    """The same states as `today`, counted by the database (one GROUP BY) within the
    viewer's area narrowed to `prefecture` / `county`, and one page of the people in
    `state` by id. A prefecture outside the viewer's area gives nothing."""
    day = day or checkins.local_date(clock.now(), config.zone)
    area = area_of(session, viewer)
    if prefecture:
        area = [prefecture] if area is None or prefecture in area else []
    person = Person.__table__  # type: ignore[attr-defined]
    latest = _latest_tiers(day)
    current = _state(latest, day, config)
    where = list(checkins.monitored_clause(area))
    if county:
        where.append(person.c.county == county)
    joined = _with_pauses(person.outerjoin(latest, latest.c.person_id == person.c.id))
    counts = {
        name: count
        for name, count in session.execute(
            sa_select(current, func.count()).select_from(joined).where(*where).group_by(current)
        )
    }
    ids = [
        pid
        for (pid,) in session.execute(
            sa_select(person.c.id)
            .select_from(joined)
            .where(*where, current == state)
            .order_by(person.c.id)
            .offset(max(0, offset))
            .limit(limit)
        )
    ]
    loaded = {p.id: p for p in session.exec(select(Person).where(col(Person.id).in_(ids)))}
    return AreaPage(counts, [loaded[pid] for pid in ids], counts.get(state, 0))


def _latest_tiers(day: date) -> Any:
    """The tier of each person's latest check-in of `day` (person_id, tier)."""
    checkin = CheckIn.__table__  # type: ignore[attr-defined]
    ranked = (
        sa_select(
            checkin.c.person_id,
            checkin.c.tier,
            func.row_number()
            .over(
                partition_by=checkin.c.person_id,
                order_by=(checkin.c.at.desc(), checkin.c.id.desc()),
            )
            .label("rank"),
        )
        .where(checkin.c.local_date == day)
        .subquery()
    )
    return sa_select(ranked.c.person_id, ranked.c.tier).where(ranked.c.rank == 1).subquery("latest")


def _with_pauses(joined: Any) -> Any:
    person, pref = Person.__table__, ReminderPreference.__table__  # type: ignore[attr-defined]
    return joined.outerjoin(pref, pref.c.person_id == person.c.id)


def _paused(day: date) -> Any:
    pref = ReminderPreference.__table__  # type: ignore[attr-defined]
    return and_(
        pref.c.paused_from.is_not(None),
        pref.c.paused_until.is_not(None),
        pref.c.paused_from <= day,
        pref.c.paused_until >= day,
    )


def _missing(day: date, config: HealthConfig) -> Any:
    """Monitored on `day` (reminders.is_monitored without the pause)."""
    from services.health import reminders

    return reminders.monitored_on(day, config)


def _first_named(
    session: Session,
    day: date,
    config: HealthConfig,
    monitored: list[Any],
    missing_in: list[str],
) -> list[tuple[int, str, str]]:
    """(person id, prefecture, "red" | "amber" | "missing") of the first NAMES_SHOWN + 1
    people by id of each group that lists names. RED and AMBER come from the day's few
    check-ins; "missing" reads each prefecture's people in id order until it has enough,
    which stops early because most people without a check-in are missing."""
    person = Person.__table__  # type: ignore[attr-defined]
    checkin = CheckIn.__table__  # type: ignore[attr-defined]
    latest = _latest_tiers(day)
    tiered = (
        sa_select(
            person.c.id,
            person.c.prefecture,
            latest.c.tier,
            func.row_number()
            .over(partition_by=(person.c.prefecture, latest.c.tier), order_by=person.c.id)
            .label("rank"),
        )
        .select_from(person.join(latest, latest.c.person_id == person.c.id))
        .where(latest.c.tier.in_([Tier.RED.value, Tier.AMBER.value]), *monitored)
        .subquery()
    )
    named = [
        (pid, prefecture, tier)
        for pid, prefecture, tier in session.execute(
            sa_select(tiered.c.id, tiered.c.prefecture, tiered.c.tier).where(
                tiered.c.rank <= NAMES_SHOWN + 1
            )
        )
    ]
    checked = (
        sa_select(checkin.c.id)
        .where(checkin.c.person_id == person.c.id, checkin.c.local_date == day)
        .exists()
    )
    firsts = [
        sa_select(person.c.id, person.c.prefecture)
        .select_from(_with_pauses(person))
        .where(
            *monitored,
            person.c.prefecture == prefecture,
            _missing(day, config),
            not_(_paused(day)),
            not_(checked),
        )
        .order_by(person.c.id)
        .limit(NAMES_SHOWN + 1)
        .subquery()
        for prefecture in sorted(missing_in)
    ]
    if firsts:
        query = union_all(*(sa_select(first.c.id, first.c.prefecture) for first in firsts))
        named += [(pid, prefecture, "missing") for pid, prefecture in session.execute(query)]
    return sorted(named)


EXPORT_COLUMNS = (
    "checkin_id",
    "local_time",
    "name",
    "prefecture",
    "county",
    "altitude_m",
    "tier",
    "reasons",
    "feeling",
    "red_flags",
    "cough_or_breathless",
    "headache",
    "gi",
    "fatigue",
    "dizziness",
    "lls_total",
    "functional",
    "ams",
    "spo2",
    "no_oximeter",
    "heart_rate",
    "temperature_c",
    "systolic",
    "diastolic",
    "systolic_2",
    "diastolic_2",
    "note",
    "suspicious",
)


@dataclass
class Export:
    start: date
    end: date
    rows: list[list[Any]]
    prefectures: list[str] | None
    missed: int


def export(
    session: Session, viewer: Person, start: date, end: date, config: HealthConfig
) -> Export:
    """Check-ins of the viewer's area between two local dates (inclusive). Audited."""
    if end < start or (end - start).days >= EXPORT_MAX_DAYS:
        raise checkins.CheckinError("health.export.bad_range")
    area = area_of(session, viewer)
    query = (
        select(CheckIn, Person)
        .join(Person, col(Person.id) == col(CheckIn.person_id))
        .where(col(CheckIn.local_date) >= start, col(CheckIn.local_date) <= end)
        .order_by(col(CheckIn.at), col(CheckIn.id))
    )
    if area is not None:
        query = query.where(col(Person.prefecture).in_(area))
    pairs = list(session.exec(query))
    ids = sorted({p.id for _, p in pairs if p.id is not None})
    flagged = checkins.suspicious(session, ids, end, config)
    rows = []
    for c, p in pairs:
        rows.append(
            [
                c.id,
                c.at.astimezone(config.zone).strftime("%Y-%m-%d %H:%M"),
                p.real_name or p.display_name,
                p.prefecture,
                p.county,
                c.altitude_m,
                str(c.tier),
                " ".join(c.reasons),
                c.feeling,
                " ".join(c.red_flags),
                c.cough_or_breathless,
                c.headache,
                c.gi,
                c.fatigue,
                c.dizziness,
                c.lls_total,
                c.functional,
                c.ams,
                c.spo2,
                c.no_oximeter,
                c.heart_rate,
                c.temperature_c,
                c.systolic,
                c.diastolic,
                c.systolic_2,
                c.diastolic_2,
                c.note,
                p.id in flagged,
            ]
        )
    missed_query = (
        select(MissedCheckin, Person)
        .join(Person, col(Person.id) == col(MissedCheckin.person_id))
        .where(col(MissedCheckin.local_date) >= start, col(MissedCheckin.local_date) <= end)
    )
    if area is not None:
        missed_query = missed_query.where(col(Person.prefecture).in_(area))
    missed = len(list(session.exec(missed_query)))
    audit.record(
        session,
        "checkin.exported",
        actor=viewer.telegram_id,
        target_person_id=None,
        start=start.isoformat(),
        end=end.isoformat(),
        rows=len(rows),
        prefectures=area,
    )
    return Export(start, end, rows, area, missed)


def to_csv(data: Export) -> bytes:
    return tables.to_csv(EXPORT_COLUMNS, data.rows)


def to_xlsx(data: Export) -> bytes:
    return tables.to_xlsx(EXPORT_COLUMNS, data.rows, "check-ins")


def default_range(days: int, today_: date) -> tuple[date, date]:
    return today_ - timedelta(days=days - 1), today_


def parse_range(args: list[str]) -> tuple[date, date] | None:
    """`/export 2026-11-01 2026-11-30` (or one date: that day)."""
    try:
        dates = [date.fromisoformat(a) for a in args[:2]]
    except ValueError:
        return None
    if not dates:
        return None
    return (dates[0], dates[-1])


def stamp(at: datetime) -> str:
    return at.strftime("%Y%m%d")


def chart_for_viewer(
    session: Session, viewer: Person, person_id: int, config: HealthConfig
) -> tuple[Person, bytes] | None:
    """A cadre's 30-day chart for an officer or admin whose area covers them; None (and an
    audited refusal) otherwise, e.g. for a forged or stale button."""
    from services.health import charts
    from services.permissions import may_see

    assert viewer.id is not None
    person = session.get(Person, person_id)
    areas = people.duty_areas(session, viewer.id)
    if person is None or not may_see(viewer, areas, person.prefecture):
        audit.record(
            session,
            "denied.view_area",
            actor=viewer.telegram_id,
            target_person_id=person.id if person else None,
            outcome="denied",
            reason="area",
            attempted=f"ct:{person_id}",
        )
        return None
    audit.record(
        session, "checkin.chart_viewed", actor=viewer.telegram_id, target_person_id=person.id
    )
    return person, charts.render_for(session, person, config, lang=viewer.language)
