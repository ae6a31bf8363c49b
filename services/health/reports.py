"""For duty officers and admins: today's picture per prefecture and exports of check-ins,
always limited to the viewer's area (services.permissions.visible_prefectures)."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from openpyxl import Workbook
from openpyxl.styles import Font
from sqlmodel import Session, col, select

from models import CheckIn, MissedCheckin, Person
from models.health import Tier
from services import audit, clock, people
from services.health import checkins
from services.health.config import HealthConfig
from services.permissions import visible_prefectures
from services.postings import load_postings

EXPORT_MAX_DAYS = 366


@dataclass
class AreaDay:
    prefecture: str
    total: int = 0
    checked_in: list[Person] = field(default_factory=list)
    amber: list[Person] = field(default_factory=list)
    red: list[Person] = field(default_factory=list)
    missing: list[Person] = field(default_factory=list)
    paused: list[Person] = field(default_factory=list)
    suspicious: list[Person] = field(default_factory=list)


def area_of(session: Session, viewer: Person) -> list[str] | None:
    """The prefectures the viewer may see, sorted; None means all of them."""
    assert viewer.id is not None
    area = visible_prefectures(viewer, people.duty_areas(session, viewer.id))
    return None if area is None else sorted(area)


def today(
    session: Session, viewer: Person, config: HealthConfig, day: date | None = None
) -> list[AreaDay]:
    """Checked in, AMBER, RED, missing (no check-in yet), paused, suspicious: per prefecture."""
    from services.health import reminders

    day = day or checkins.local_date(clock.now(), config.zone)
    area = area_of(session, viewer)
    monitored = checkins.monitored_people(session, area)
    ids = [p.id for p in monitored if p.id is not None]
    latest = checkins.checkins_on(session, ids, day)
    prefs = {pid: checkins.preference(session, pid) for pid in ids}
    flagged = checkins.suspicious(session, ids, day, config)
    order = [p.code for p in load_postings().prefectures()]
    result: dict[str, AreaDay] = {}
    for person in monitored:
        assert person.id is not None and person.prefecture is not None
        summary = result.setdefault(person.prefecture, AreaDay(person.prefecture))
        summary.total += 1
        checkin = latest.get(person.id)
        if person.id in flagged:
            summary.suspicious.append(person)
        if checkin is not None:
            summary.checked_in.append(person)
            if checkin.tier == Tier.AMBER:
                summary.amber.append(person)
            elif checkin.tier == Tier.RED:
                summary.red.append(person)
        elif checkins.is_paused(prefs[person.id], day):
            summary.paused.append(person)
        elif reminders.is_monitored(person, prefs[person.id], day, config):
            summary.missing.append(person)
    return sorted(
        result.values(), key=lambda a: order.index(a.prefecture) if a.prefecture in order else 99
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


def _cell(value: Any) -> Any:
    if value is None:
        return ""
    return value


def _safe_text(value: Any) -> Any:
    """Spreadsheet formula injection: text starting with = + - @ is prefixed with '."""
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return value


def to_csv(data: Export) -> bytes:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(EXPORT_COLUMNS)
    for row in data.rows:
        writer.writerow([_safe_text(_cell(v)) for v in row])
    return ("\ufeff" + buffer.getvalue()).encode("utf-8")  # BOM: Excel reads UTF-8 Chinese


def to_xlsx(data: Export) -> bytes:
    workbook = Workbook()
    sheet = workbook.active
    assert sheet is not None
    sheet.title = "check-ins"
    sheet.append(list(EXPORT_COLUMNS))
    for cell in sheet[1]:
        cell.font = Font(bold=True)
    for row in data.rows:
        sheet.append([_safe_text(v) for v in row])
    sheet.freeze_panes = "A2"
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()


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
