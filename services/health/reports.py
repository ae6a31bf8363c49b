"""For duty officers and admins: today's picture per prefecture and exports of check-ins,
always limited to the viewer's area (services.permissions.visible_prefectures)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import and_, case, func, literal, true, union_all
from sqlalchemy import select as sa_select
from sqlmodel import Session, col, select

from models import CheckIn, MissedCheckin, Person, ReminderPreference
from models.health import Tier
from services import audit, clock, people, tables
from services.health import checkins
from services.health.config import HealthConfig
from services.people import name_of
from services.permissions import visible_prefectures
from services.postings import load_postings

EXPORT_MAX_DAYS = 366


NAMES_SHOWN = 3  # names listed per group on the /today screen; "and N more" for the rest
PAGE_SIZE = 7  # /today all: people per page (one phone screen with its title)

# The states of /today, in the order the screen and `/today all` list them. "none": counted
# in the area but not asked to check in today (a low-altitude posting, registered today,
# the assignment not begun or ended).
LISTED = ("red", "amber", "missing", "paused", "checked", "none")


@dataclass
class Group:
    """Some of an area's people: how many, and the first NAMES_SHOWN by person id."""

    count: int = 0
    people: list[Person] = field(default_factory=list)

    @property
    def more(self) -> int:
        """How many the names shown leave out."""
        return self.count - len(self.people)


@dataclass
class AreaDay:
    prefecture: str
    total: int = 0
    checked_in: int = 0  # red + amber + checked
    red: Group = field(default_factory=Group)
    amber: Group = field(default_factory=Group)
    missing: Group = field(default_factory=Group)
    paused: Group = field(default_factory=Group)
    checked: Group = field(default_factory=Group)  # checked in GREEN
    none: Group = field(default_factory=Group)
    suspicious: Group = field(default_factory=Group)

    def groups(self) -> list[tuple[str, Group]]:
        """(state, group) in the order of LISTED: together they count `total`."""
        return [(state, getattr(self, state)) for state in LISTED]


def area_of(session: Session, viewer: Person) -> list[str] | None:
    """The prefectures the viewer may see, sorted; None means all of them."""
    assert viewer.id is not None
    area = visible_prefectures(viewer, people.duty_areas(session, viewer.id))
    return None if area is None else sorted(area)


def today(
    session: Session, viewer: Person, config: HealthConfig, day: date | None = None
) -> list[AreaDay]:
    """RED, AMBER, missing (no check-in yet), paused, checked in GREEN, not due today, and
    suspicious: per prefecture, each group counted and its first NAMES_SHOWN people named.

    A person with a check-in today counts by the tier of their latest one; without, as
    paused, as missing when they are monitored that day (reminders.is_monitored), else as
    not due ("none"). The database counts (one GROUP BY) and picks the names shown with
    short ordered reads, so that an area of tens of thousands costs a few queries and no
    more than NAMES_SHOWN people per group are loaded."""
    day = day or checkins.local_date(clock.now(), config.zone)
    area = area_of(session, viewer)
    monitored = checkins.monitored_clause(area)
    person = Person.__table__  # type: ignore[attr-defined]
    latest = _latest_tiers(day)
    state = _state(latest, day, config)
    counts = session.execute(
        sa_select(person.c.prefecture, state.label("state"), func.count())
        .select_from(_with_pauses(person.outerjoin(latest, latest.c.person_id == person.c.id), day))
        .where(*monitored)
        .group_by(person.c.prefecture, state)
    ).all()
    named = _first_named(session, day, config, monitored, list(counts))
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
        if len(first) < NAMES_SHOWN:
            first.append(pid)
    shown = {pid for pid, _, _ in named}.union(*flagged_named.values())
    loaded = {p.id: p for p in session.exec(select(Person).where(col(Person.id).in_(shown)))}
    result: dict[str, AreaDay] = {}
    for prefecture, state_name, count in counts:
        summary = result.setdefault(prefecture, AreaDay(prefecture))
        summary.total += count
        if state_name in ("red", "amber", "checked"):
            summary.checked_in += count
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


@dataclass
class AreaPage:
    """One page of the people of the viewer's area in one state (the board's list)."""

    counts: dict[str, int]  # state -> people, within the filter
    people: list[Person]
    total: int  # people in the chosen state
    more_before: bool = False  # people of the state before this page (by id)
    more_after: bool = False  # ... and after it
    flagged: set[int] = field(default_factory=set)  # of `people`: identical readings (❓)
    suspicious: int = 0  # people with identical readings day after day, within the filter


def area_page(
    session: Session,
    viewer: Person,
    config: HealthConfig,
    *,
    state: str,
    prefecture: str | None = None,
    county: str | None = None,
    name: str | None = None,
    offset: int = 0,
    after: int | None = None,
    before: int | None = None,
    limit: int = 50,
    day: date | None = None,
) -> AreaPage:
    """The same states as `today` (LISTED), counted by the database (one GROUP BY) within
    the viewer's area narrowed to `prefecture` / `county` / a part of the `name`, and one
    page of the people in `state` by id: from `offset`, or (the board) the `limit` after
    the id `after` or before the id `before`, so that a page far down the list costs what
    the first one does. A prefecture outside the viewer's area gives nothing.

    The counts are one pass over the area, read from indexes alone on PostgreSQL
    (person.ix_person_active, health_checkin.ix_health_checkin_day, migration 0015);
    the page is a short ordered read that starts, for a rare state, from that state's few
    rows (the day's RED check-ins, the pauses) rather than from the whole area."""
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
    matches = people.name_matches(name)
    if matches is not None:
        where.append(matches)
    joined = _with_pauses(person.outerjoin(latest, latest.c.person_id == person.c.id), day)
    counts = {
        state_name: count
        for state_name, count in session.execute(
            sa_select(current, func.count()).select_from(joined).where(*where).group_by(current)
        )
    }
    query = (
        sa_select(person.c.id).select_from(joined).where(*where, _in_state(state, current, latest))
    )
    if before is not None:
        query = query.where(person.c.id < before).order_by(person.c.id.desc())
    else:
        if after is not None:
            query = query.where(person.c.id > after)
        query = query.order_by(person.c.id).offset(max(0, offset) if after is None else 0)
    ids = [pid for (pid,) in session.execute(query.limit(limit + 1))]
    more = len(ids) > limit
    ids = sorted(ids[:limit])
    loaded = {p.id: p for p in session.exec(select(Person).where(col(Person.id).in_(ids)))}
    if before is not None:
        more_before, more_after = more, bool(ids)
    else:
        more_before, more_after = (after is not None or offset > 0) and bool(ids), more
    found = AreaPage(
        counts,
        [loaded[pid] for pid in ids],
        counts.get(state, 0),
        more_before=more_before,
        more_after=more_after,
    )
    identical = checkins.suspicious_select(day, config)  # a few people in all
    if identical is not None:
        suspicious = list(
            session.scalars(sa_select(person.c.id).where(person.c.id.in_(identical), *where))
        )
        found.suspicious = len(suspicious)
        found.flagged = set(ids).intersection(suspicious)
    return found


def _in_state(state: str, current: Any, latest: Any) -> Any:
    """`current == state` (`current`: `_state`'s expression), with what that implies of
    the joins spelled out (a RED state has a check-in today, a missing one has none...),
    so that the database may start from a rare state's few rows, not the whole area."""
    pref = ReminderPreference.__table__  # type: ignore[attr-defined]
    implied = {
        "red": latest.c.tier == Tier.RED.value,
        "amber": latest.c.tier == Tier.AMBER.value,
        "checked": latest.c.person_id.is_not(None),
        "paused": and_(latest.c.person_id.is_(None), pref.c.person_id.is_not(None)),
    }.get(state, and_(latest.c.person_id.is_(None), pref.c.person_id.is_(None)))
    return and_(current == state, implied)


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


def _with_pauses(joined: Any, day: date) -> Any:
    """`joined` with the reminder preferences of the people paused on `day` (a few: the
    rest of the preferences do not bear on the day's state)."""
    person, pref = Person.__table__, ReminderPreference.__table__  # type: ignore[attr-defined]
    return joined.outerjoin(pref, and_(pref.c.person_id == person.c.id, _paused(day)))


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


def _row_state(day: date, config: HealthConfig) -> Any:
    """`_state` for one person row, the latest tier of `day` read through the (person_id,
    at) index instead of ranking the day's check-ins: for reads that stop after a few."""
    checkin = CheckIn.__table__  # type: ignore[attr-defined]
    person = Person.__table__  # type: ignore[attr-defined]
    tier = (
        sa_select(checkin.c.tier)
        .where(checkin.c.person_id == person.c.id, checkin.c.local_date == day)
        .order_by(checkin.c.at.desc(), checkin.c.id.desc())
        .limit(1)
        .scalar_subquery()
    )
    return case(
        (tier == Tier.RED.value, "red"),
        (tier == Tier.AMBER.value, "amber"),
        (tier.is_not(None), "checked"),
        (_paused(day), "paused"),
        (_missing(day, config), "missing"),
        else_="none",
    )


def _first_named(
    session: Session,
    day: date,
    config: HealthConfig,
    monitored: list[Any],
    counts: list[Any],
) -> list[tuple[int, str, str]]:
    """(person id, prefecture, state) of the first NAMES_SHOWN people by id of each group
    counted in `counts` ((prefecture, state, count) rows). RED and AMBER come from the day's
    few check-ins; the other groups read each prefecture's people in id order until they
    have enough (one UNION ALL of short reads), a cheap condition first (paused: the
    pause; missing: monitored that day; none: not monitored) and then the person's state,
    so that a read stops early where the group is common."""
    person = Person.__table__  # type: ignore[attr-defined]
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
                tiered.c.rank <= NAMES_SHOWN
            )
        )
    ]
    state = _row_state(day, config)
    missing = case((_missing(day, config), 1), else_=0)
    cheap = {
        "checked": true(),
        "paused": _paused(day),
        "missing": missing == 1,
        "none": missing == 0,
    }
    firsts = [
        sa_select(person.c.id, person.c.prefecture, literal(state_name).label("state"))
        .select_from(_with_pauses(person, day))
        .where(
            *monitored,
            person.c.prefecture == prefecture,
            cheap[state_name],
            state == state_name,
        )
        .order_by(person.c.id)
        .limit(NAMES_SHOWN)
        .subquery()
        for prefecture, state_name, count in sorted(counts)
        if count and state_name in cheap
    ]
    if firsts:
        query = union_all(*(sa_select(f.c.id, f.c.prefecture, f.c.state) for f in firsts))
        named += [
            (pid, prefecture, state_name) for pid, prefecture, state_name in session.execute(query)
        ]
    return sorted(named)


@dataclass
class EveryonePage:
    """`/today all`: one page of one state's people of the viewer's area, by id."""

    state: str
    page: int  # from 0
    pages: int  # of this state
    counts: dict[str, int]  # state -> people in the area
    people: list[Person]
    flagged: set[int]  # of `people`: identical readings day after day (❓)
    several: bool  # the viewer's area has more than one prefecture: name it on each line


def everyone_page(
    session: Session,
    viewer: Person,
    config: HealthConfig,
    state: str,
    page: int,
    day: date | None = None,
) -> EveryonePage:
    """`/today all`: the people of one state (LISTED; "all": the first state with people),
    PAGE_SIZE a page, counted and paged by the database (`area_page`), so that listing an
    area of tens of thousands never loads more than a page. A page beyond the last shows
    the last."""
    day = day or checkins.local_date(clock.now(), config.zone)
    wanted = state if state in LISTED else LISTED[0]
    found = area_page(
        session, viewer, config, state=wanted, offset=page * PAGE_SIZE, limit=PAGE_SIZE, day=day
    )
    if state not in LISTED and not found.total:  # "all": the first state with people
        state = next((s for s in LISTED if found.counts.get(s)), LISTED[0])
        page = 0
    else:
        state = wanted
    pages = max(1, -(-found.counts.get(state, 0) // PAGE_SIZE))
    if state != wanted or not 0 <= page < pages:  # another state, or a page gone since
        page = min(max(0, page), pages - 1)
        found = area_page(
            session, viewer, config, state=state, offset=page * PAGE_SIZE, limit=PAGE_SIZE, day=day
        )
    area = area_of(session, viewer)
    return EveryonePage(
        state, page, pages, found.counts, found.people, found.flagged, area is None or len(area) > 1
    )


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
                name_of(p, ""),
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
