"""/overdue, /upcoming and the CSV are computed by the database (services.care.areas:
area_summary, area_rows): they must list the same items, due days, counts and order as `compute`
gives person by person, whatever the person's band, history, time zone or name."""

from __future__ import annotations

from dataclasses import replace
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
import time_machine
from sqlmodel import select

from models import CareItem, CareKind, CareProfile, Person, Role, Status
from services import care_policy
from services.care import areas as care_areas
from services.care import records, rules
from services.care.rules import CareConfig
from services.care_policy import Band
from services.clock import now as clock_now
from tests.support import factories

ZONE = ZoneInfo("Asia/Shanghai")
# The mid band (2,500-3,499 m) without examinations, as an operator may configure it.
CFG = CareConfig(
    zone=ZONE,
    reminder_seconds=9 * 3600,
    grace=timedelta(hours=8),
    escalation_days=7,
    policy_override={"mid": {"exam_first_days": None, "exam_every_days": None}},
)
BARKAM = {"prefecture": "aba", "county": "aba.barkam", "posting_altitude_m": 2615}  # mid
XICHANG = {"prefecture": "liangshan", "county": "liangshan.xichang", "posting_altitude_m": 1542}


def at(day: date, hour: int = 9, minute: int = 0) -> datetime:
    return datetime(day.year, day.month, day.day, hour, minute, tzinfo=ZONE)


@pytest.fixture
def clock():
    with time_machine.travel(at(date(2026, 3, 1), 10), tick=False) as traveller:
        yield traveller


def edit(db, person_id: int, **values) -> None:
    """Columns the registration form would refuse (no name, no prefecture)."""
    with db.session() as s:
        person = s.get(Person, person_id)
        for name, value in values.items():
            setattr(person, name, value)
        s.add(person)
        s.commit()


def item_id(db, person: Person, kind: CareKind) -> int:
    due = db.call(records.schedule_for, person.id, CFG).items[kind]
    assert due is not None and due.item_id is not None
    return due.item_id


def documented_order(row: care_areas.AreaRow) -> tuple:
    return (row.person.prefecture or "", row.due.due, row.person.name, row.due.kind, row.person.id)


def person_by_person(
    db, visible: frozenset[str] | None, first: int | None, last: int, cfg: CareConfig = CFG
):
    """The rows as `compute` decides them for every person, one by one, in the documented
    order: prefecture, due day, name (code points), item, person."""
    now = clock_now()
    rows = []
    with db.session() as s:
        policy = care_policy.effective_policy(s, cfg.policy_override)
        items = {(i.person_id, CareKind(i.kind)): i for i in s.exec(select(CareItem))}
        profiles = {p.person_id: p for p in s.exec(select(CareProfile))}
        for person in s.exec(select(Person)):
            if person.status != Status.ACTIVE or person.role == Role.CONTACT:
                continue
            if visible is not None and person.prefecture not in visible:
                continue
            facts = rules.PersonFacts.of(person)
            today = rules.timing_for(profiles.get(person.id), cfg).today(now)
            band = care_policy.band_for_altitude(person.posting_altitude_m)
            band_policy = policy.get(band) if band else None
            for kind in CareKind:
                due = rules.compute(facts, kind, band_policy, items.get((person.id, kind)), today)
                if due is None or due.due > today + timedelta(days=last):
                    continue
                if first is not None and due.due < today + timedelta(days=first):
                    continue
                rows.append(care_areas.AreaRow(facts, due, today))
    rows.sort(
        key=lambda r: (r.person.prefecture or "", r.due.due, r.person.name, r.due.kind, r.person.id)
    )
    return rows


def test_area_lists_are_what_compute_gives_person_by_person(db, clock):
    # four names whose code-point order (B, Z, a, 张) is not a language's (a, B, Z, 张)
    for telegram_id, name in ((1001, "a"), (1002, "B"), (1003, "张"), (1004, "Z")):
        factories.person(db, telegram_id, real_name=name)
    unnamed = factories.person(db, 1005, display_name="Display only")
    nameless = factories.person(db, 1006)
    no_area = factories.person(db, 1007, real_name="No prefecture")
    factories.person(db, 1010, real_name="Barkam, no exams", **BARKAM)
    low = factories.person(db, 1011, real_name="Xichang, no rests", **XICHANG)
    done_before = factories.person(db, 1012, real_name="Done before")
    long_before = factories.person(db, 1013, real_name="Long before")
    later = factories.person(db, 1014, real_name="Arrives in May", assignment_start="2026-05-01")
    booked = factories.person(db, 1015, real_name="Booked")
    admin_set = factories.person(db, 1016, real_name="Set by admin")
    ending = factories.person(db, 1017, real_name="Ends in April", assignment_end="2026-04-01")
    factories.person(db, 1023, real_name="Ends before its rest", assignment_end="2026-06-20")
    east = factories.person(db, 1018, real_name="Kiritimati")
    west = factories.person(db, 1019, real_name="Pago Pago", **BARKAM)
    factories.person(
        db,
        1020,
        real_name="Zhejiang",
        prefecture="zhejiang",
        county="zhejiang.hangzhou",
        posting_altitude_m=None,
        altitude_source=None,
    )
    factories.person(db, 1021, real_name="No start", assignment_start=None)
    factories.person(db, 1022, real_name="Pending", approve=False)
    edit(db, unnamed.id, real_name=None)
    edit(db, nameless.id, real_name=None, display_name="")
    edit(db, no_area.id, prefecture=None, county=None)

    rest, exam = CareKind.REST, CareKind.EXAM

    # a rest done before the posting does not count; an exam 28 days before does (the
    # arrival exam), one 106 days before does not
    def done(who: Person, kind: CareKind, day: date) -> None:
        db.call(records.record_done, who.id, item_id(db, who, kind), day, CFG)

    done(done_before, rest, date(2026, 2, 20))
    done(done_before, exam, date(2026, 2, 1))
    done(long_before, exam, date(2025, 11, 15))
    done(later, exam, date(2026, 3, 1))
    done(low, exam, date(2026, 2, 10))
    db.call(records.record_booked, booked.id, item_id(db, booked, exam), date(2026, 3, 20), CFG)
    admin = factories.admin(db)
    db.call(records.set_due, admin, admin_set.id, rest, date(2026, 3, 15), CFG)  # as the exams
    db.call(records.set_due, admin, booked.id, rest, date(2026, 3, 5), CFG)
    db.call(records.record_booked, booked.id, item_id(db, booked, rest), date(2026, 3, 25), CFG)
    db.call(records.set_due, admin, ending.id, rest, date(2026, 5, 1), CFG)  # after the end
    db.call(records.set_reminder_time, east.id, None, "Pacific/Kiritimati")  # UTC+14
    db.call(records.set_reminder_time, west.id, None, "Pacific/Pago_Pago")  # UTC-11

    moments = (
        at(date(2026, 3, 1), 10),
        at(date(2026, 3, 14), 23, 30),  # already the 15th in Kiritimati
        at(date(2026, 3, 16)),
        at(date(2026, 4, 2)),  # the April assignment has ended
        at(date(2026, 6, 10)),
        at(date(2026, 6, 29), 0, 30),  # still the 28th in Pago Pago
        at(date(2026, 8, 31), 18),
        at(date(2027, 2, 20)),
    )
    areas = (None, frozenset({"ganzi"}), frozenset({"aba", "liangshan"}), frozenset())
    for moment in moments:
        with time_machine.travel(moment, tick=False):
            for visible in areas:
                for overdue in (True, False):
                    first, last = (None, -1) if overdue else (0, rules.UPCOMING_DAYS)
                    wanted = person_by_person(db, visible, first, last)
                    counts: dict[str, int] = {}
                    for row in wanted:
                        area = row.person.prefecture or ""
                        counts[area] = counts.get(area, 0) + 1
                    for limit in (3, 100):
                        summary = db.call(
                            care_areas.area_summary, CFG, visible, overdue=overdue, limit=limit
                        )
                        assert summary.rows == wanted[:limit], (moment, visible, overdue)
                        assert summary.counts == counts and summary.total == len(wanted)
                for horizon in (0, 14, 60):
                    wanted = person_by_person(db, visible, None, horizon)
                    assert (
                        db.call(care_areas.area_rows, CFG, visible, horizon_days=horizon) == wanted
                    )
            # /metrics and the broadcasts' "overdue" audience count the same items
            overdue = person_by_person(db, None, None, -1)
            by_kind = {kind: sum(r.due.kind == kind for r in overdue) for kind in CareKind}
            assert db.call(care_areas.overdue_by_kind, CFG) == by_kind
            assert db.call(care_areas.overdue_people, CFG) == {r.person.id for r in overdue}

    with time_machine.travel(at(date(2026, 3, 16)), tick=False):
        summary = db.call(
            care_areas.area_summary, CFG, frozenset({"ganzi"}), overdue=True, limit=100
        )
    names = [r.person.name for r in summary.rows if r.person.name in {"a", "B", "Z", "张"}]
    assert names == ["B", "Z", "a", "张"]
    shown = {(r.person.name, r.due.kind) for r in summary.rows}
    assert {("Display only", exam), (str(nameless.telegram_id), exam)} <= shown
    assert ("Kiritimati", exam) in shown and ("Booked", exam) not in shown
    assert ("Done before", exam) not in shown and ("Long before", exam) in shown


def test_a_policy_without_any_rest_lists_only_examinations(db, clock):
    no_rests = replace(CFG, policy_override={band: {"rest_every_days": None} for band in Band})
    factories.person(db, 1001, real_name="Litang")
    factories.person(db, 1002, real_name="Barkam", **BARKAM)
    with time_machine.travel(at(date(2026, 7, 1)), tick=False):
        summary = db.call(care_areas.area_summary, no_rests, None, overdue=True, limit=10)
        assert summary.rows == person_by_person(db, None, None, -1, no_rests)
    exams = [("Barkam", CareKind.EXAM), ("Litang", CareKind.EXAM)]  # aba, then ganzi
    assert [(r.person.name, r.due.kind) for r in summary.rows] == exams
