"""Care schedules without Telegram: the altitude-band policy, due dates derived from the
profile, what a cadre records, reminders at the right local time, exactly once, and the
escalation of overdue items."""

from __future__ import annotations

import csv
import io
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
import time_machine
from sqlmodel import select

from models import AuditEntry, CareItem, CareKind, CareRecord, OutboxMessage, Priority, Role
from services import care_policy, outbox, people
from services.care import areas, records, reminders
from services.care import items as care_items
from services.care.rules import CareConfig, CareError
from services.care_policy import Band, PolicyError
from tests.support import factories

ZONE = ZoneInfo("Asia/Shanghai")
CFG = CareConfig(zone=ZONE, reminder_seconds=9 * 3600, grace=timedelta(hours=8), escalation_days=7)
# The default person (tests.support.factories): Litang, 4014 m, assignment from 2026-03-01.
# High band defaults: rest every 120 days (14 days long), exam within 14 days, then 180.
REST_DUE = date(2026, 6, 29)
EXAM_DUE = date(2026, 3, 15)


def at(day: date, hour: int = 9, minute: int = 0, zone: ZoneInfo = ZONE) -> datetime:
    return datetime(day.year, day.month, day.day, hour, minute, tzinfo=zone)


@pytest.fixture
def clock():
    with time_machine.travel(at(date(2026, 3, 1), 10), tick=False) as traveller:
        yield traveller


def run(db, moment: datetime, cfg: CareConfig = CFG) -> reminders.PassResult:
    """A pass at `moment`, as the scheduler runs it (clock.now() is `moment` too)."""
    with time_machine.travel(moment, tick=False):
        return db.call(reminders.run_pass, moment, cfg)


def outbox_rows(db, **where) -> list[OutboxMessage]:
    with db.session() as s:
        query = select(OutboxMessage).order_by(OutboxMessage.id)
        for name, value in where.items():
            query = query.where(getattr(OutboxMessage, name) == value)
        return list(s.exec(query))


def reminder_keys(db, chat_id: int) -> list[str]:
    return [m.idempotency_key for m in outbox_rows(db, chat_id=chat_id)]


def dues(db, person_id: int, cfg: CareConfig = CFG) -> dict[str, date | None]:
    schedule = db.call(records.schedule_for, person_id, cfg)
    return {str(k): (d.due if d else None) for k, d in schedule.items.items()}


# ---------------------------------------------------------------------------- policy


def test_altitude_bands_have_documented_boundaries():
    expected = {
        0: Band.LOW,
        2499: Band.LOW,
        2500: Band.MID,
        3499: Band.MID,
        3500: Band.HIGH,
        4499: Band.HIGH,
        4500: Band.EXTREME,
        5200: Band.EXTREME,
    }
    assert {m: care_policy.band_for_altitude(m) for m in expected} == expected
    assert care_policy.band_for_altitude(None) is None


def test_default_policy_is_a_proposal_with_the_exam_contents_of_the_domain_note(db):
    policy = db.call(care_policy.effective_policy, {})
    assert not any(p.confirmed for p in policy.values())
    assert policy[Band.LOW].rest_every_days is None  # no rotation below 2,500 m
    for band in (Band.MID, Band.HIGH, Band.EXTREME):
        assert set(policy[band].exam_contents) == {
            "bp",
            "pulse",
            "heart_lung",
            "ecg",
            "chest_xray",
            "haemoglobin",
        }
    rests = [policy[b].rest_every_days for b in (Band.MID, Band.HIGH, Band.EXTREME)]
    assert rests == sorted(rests, reverse=True)  # higher means more frequent rest


def test_admins_change_and_confirm_a_band_over_the_settings_override(db, clock):
    override = {"high": {"rest_every_days": 60}}
    person = factories.person(db)
    cfg = CareConfig(ZONE, 9 * 3600, timedelta(hours=8), 7, override)
    assert dues(db, person.id, cfg)["rest"] == date(2026, 4, 30)
    policy = db.call(care_policy.effective_policy, override)[Band.HIGH]
    assert (policy.source, policy.confirmed) == ("setting", False)

    changed = db.call(care_policy.set_value, 9001, Band.HIGH, "rest_every_days", 90, override)
    assert (changed.rest_every_days, changed.confirmed, changed.source) == (90, True, "admin")
    assert dues(db, person.id, cfg)["rest"] == date(2026, 5, 30)
    with pytest.raises(PolicyError):
        db.call(care_policy.set_value, 9001, Band.HIGH, "rest_every_days", 3, override)
    off = db.call(care_policy.set_value, 9001, Band.HIGH, "rest_every_days", None, override)
    assert off.rest_every_days is None and dues(db, person.id, cfg)["rest"] is None
    toggled = db.call(care_policy.toggle_content, 9001, Band.HIGH, "chest_xray", override)
    assert "chest_xray" not in toggled.exam_contents
    mid = db.call(care_policy.confirm_band, 9001, Band.MID, override)
    assert mid.confirmed and mid.rest_every_days == 180
    with db.session() as s:
        actions = [e.action for e in s.exec(select(AuditEntry))]
    assert actions.count("schedule.policy_set") == 2 and "schedule.policy_confirmed" in actions


def test_a_bad_policy_setting_is_refused_at_start_up():
    from pydantic import ValidationError

    from config import Settings

    for bad in (
        {"alpine": {"rest_every_days": 90}},
        {"high": {"rest_every_day": 90}},
        {"high": {"rest_every_days": 5}},
        {"high": {"exam_contents": ["mri"]}},
    ):
        with pytest.raises(ValidationError):
            Settings(_env_file=None, care_policy=bad)
    with pytest.raises(ValidationError):
        Settings(_env_file=None, care_reminder_time="25:00")


# ---------------------------------------------------------------------------- due dates


def test_due_dates_follow_the_profile_at_once_without_any_hook(db, clock):
    person = factories.person(db)
    assert dues(db, person.id) == {"rest": REST_DUE, "exam": EXAM_DUE}
    db.call(people.update_profile, person.telegram_id, posting_altitude_m=4700)  # extreme
    assert dues(db, person.id) == {"rest": date(2026, 5, 30), "exam": date(2026, 3, 8)}
    db.call(people.update_profile, person.telegram_id, assignment_start=date(2026, 2, 1))
    assert dues(db, person.id) == {"rest": date(2026, 5, 2), "exam": date(2026, 2, 8)}
    xichang = {"prefecture": "liangshan", "county": "liangshan.xichang", "posting_altitude_m": 1542}
    db.call(people.update_profile, person.telegram_id, **xichang)  # below 2,500 m
    assert dues(db, person.id) == {"rest": None, "exam": date(2027, 2, 1)}


def test_low_altitude_postings_and_incomplete_profiles_have_no_schedule(db, clock):
    zhejiang = factories.person(
        db,
        1001,
        prefecture="zhejiang",
        county="zhejiang.hangzhou",
        posting_altitude_m=None,
        altitude_source=None,
    )
    schedule = db.call(records.schedule_for, zhejiang.id, CFG)
    assert schedule.state == "low_altitude" and set(schedule.items.values()) == {None}
    no_start = factories.person(db, 1002, assignment_start=None)
    assert db.call(records.schedule_for, no_start.id, CFG).state == "incomplete"
    assert run(db, at(date(2026, 12, 1))).items == 0


def test_nothing_is_due_after_the_assignment_ends(db, clock):
    person = factories.person(db, assignment_end="2026-06-01")
    assert dues(db, person.id)["rest"] is None  # 2026-06-29 is after the end
    clock.move_to(at(date(2026, 6, 2)))
    assert db.call(records.schedule_for, person.id, CFG).state == "ended"


def test_done_booked_and_snoozed_move_the_schedule(db, clock):
    person = factories.person(db)
    schedule = db.call(records.schedule_for, person.id, CFG)
    exam = schedule.items[CareKind.EXAM]
    rest = schedule.items[CareKind.REST]
    clock.move_to(at(date(2026, 3, 16), 15))
    after = db.call(
        records.record_done,
        person.id,
        exam.item_id,
        date(2026, 3, 16),
        CFG,
        place="康定 州人民医院",
        result="一切正常",
        actor_telegram_id=person.telegram_id,
    )
    assert after.items[CareKind.EXAM].due == date(2026, 3, 16) + timedelta(days=180)
    booked = db.call(records.record_booked, person.id, rest.item_id, date(2026, 7, 3), CFG)
    assert booked.items[CareKind.REST].due == date(2026, 7, 3)
    assert booked.items[CareKind.REST].base_due == REST_DUE
    snoozed = db.call(records.record_snoozed, person.id, rest.item_id, 3, CFG)
    assert snoozed.items[CareKind.REST].snoozed_until == date(2026, 3, 19)
    with db.session() as s:
        record = s.exec(select(CareRecord).where(CareRecord.record == "done")).one()
        audit = s.exec(select(AuditEntry).where(AuditEntry.action == "schedule.done")).one()
    assert (record.place, record.result) == ("康定 州人民医院", "一切正常")
    assert "一切正常" not in str(audit.detail)  # results never reach the audit log


def test_an_exam_just_before_arrival_counts_and_an_old_posting_does_not(db, clock):
    person = factories.person(db)
    exam = db.call(records.schedule_for, person.id, CFG).items[CareKind.EXAM]
    db.call(records.record_done, person.id, exam.item_id, date(2026, 2, 20), CFG)
    assert dues(db, person.id)["exam"] == date(2026, 2, 20) + timedelta(days=180)
    db.call(people.update_profile, person.telegram_id, assignment_start=date(2026, 9, 1))
    assert dues(db, person.id)["exam"] == date(2026, 9, 15)  # a new posting: a new cycle


@pytest.mark.parametrize(
    ("call", "args", "key"),
    [
        ("record_done", (date(2026, 3, 2),), "care.invalid.future"),
        ("record_done", (date(2025, 1, 1),), "care.invalid.too_old"),
        ("record_booked", (date(2026, 2, 27),), "care.invalid.past"),
        ("record_booked", (date(2027, 6, 1),), "care.invalid.too_far"),
    ],
)
def test_impossible_dates_are_refused_and_change_nothing(db, clock, call, args, key):
    person = factories.person(db)
    item = db.call(records.schedule_for, person.id, CFG).items[CareKind.EXAM]
    with pytest.raises(CareError) as caught:
        db.call(getattr(records, call), person.id, item.item_id, *args, CFG)
    assert caught.value.key == key
    assert dues(db, person.id)["exam"] == EXAM_DUE
    with db.session() as s:
        assert s.exec(select(CareRecord)).all() == []


def test_someone_elses_item_is_refused(db, clock):
    mine = factories.person(db, 1001)
    other = factories.person(db, 1002)
    item = db.call(records.schedule_for, other.id, CFG).items[CareKind.EXAM]
    with pytest.raises(CareError) as caught:
        db.call(records.record_done, mine.id, item.item_id, date(2026, 3, 1), CFG)
    assert caught.value.key == "care.forged"
    with pytest.raises(CareError) as stale:
        db.call(records.check_action, other.id, item.item_id, date(2026, 3, 20), CFG)
    assert stale.value.key == "care.stale"


def test_last_rest_return_is_the_latest_completed_rest(db, clock):
    person = factories.person(db)
    assert db.call(records.last_rest_return, person.id) is None
    rest = db.call(records.schedule_for, person.id, CFG).items[CareKind.REST]
    clock.move_to(at(date(2026, 7, 20)))
    db.call(records.record_done, person.id, rest.item_id, date(2026, 7, 14), CFG)
    db.call(records.record_done, person.id, rest.item_id, date(2026, 7, 10), CFG)  # an older one
    assert db.call(records.last_rest_return, person.id) == date(2026, 7, 14)
    assert dues(db, person.id)["rest"] == date(2026, 7, 14) + timedelta(days=120)


def test_an_admin_sets_a_date_and_the_cadre_is_told(db, clock):
    admin = factories.admin(db)
    person = factories.person(db)
    schedule = db.call(records.set_due, admin, person.id, CareKind.REST, date(2026, 4, 20), CFG)
    assert schedule.items[CareKind.REST].due == date(2026, 4, 20)
    assert schedule.items[CareKind.REST].set_by_admin
    notice = outbox_rows(db, chat_id=person.telegram_id)[-1]
    assert "2026-04-20" in notice.payload["text"] and notice.priority == Priority.REMINDER
    assert notice.payload["reply_markup"]["inline_keyboard"][0][0]["callback_data"].startswith(
        "cs:d:"
    )
    with pytest.raises(CareError):
        db.call(records.set_due, admin, person.id, CareKind.REST, date(2030, 1, 1), CFG)
    rest = schedule.items[CareKind.REST]
    clock.move_to(at(date(2026, 4, 25)))
    db.call(records.record_done, person.id, rest.item_id, date(2026, 4, 25), CFG)
    assert dues(db, person.id)["rest"] == date(2026, 4, 25) + timedelta(days=120)


# ---------------------------------------------------------------------------- reminders


def test_reminders_come_7_days_and_1_day_before_and_on_the_day_at_local_time(db, clock):
    person = factories.person(db)
    exam = db.call(records.schedule_for, person.id, CFG).items[CareKind.EXAM]
    first = run(db, at(date(2026, 3, 1), 10))
    assert first.reminders == 0 and first.next_wakeup == at(date(2026, 3, 8))
    assert run(db, at(date(2026, 3, 8), 8, 59)).reminders == 0
    for day, offset in ((8, "-7"), (14, "-1"), (15, "0"), (16, "+1")):
        moment = at(date(2026, 3, day))
        result = run(db, moment)
        assert result.reminders == 1, day
        assert run(db, moment + timedelta(minutes=5)).reminders == 0  # never twice
        assert (
            reminder_keys(db, person.telegram_id)[-1] == f"care:{exam.item_id}:2026-03-15:{offset}"
        )
    rows = outbox_rows(db, chat_id=person.telegram_id)
    assert [m.created_at.astimezone(ZONE).time().isoformat() for m in rows] == ["09:00:00"] * 4
    assert all(m.priority == Priority.REMINDER for m in rows)
    text = rows[0].payload["text"]
    assert "2026-03-15" in text and "not a diagnosis" in text and "haemoglobin" in text
    callbacks = [
        b["callback_data"] for r in rows[0].payload["reply_markup"]["inline_keyboard"] for b in r
    ]
    assert callbacks == [f"cs:{a}:{exam.item_id}:20260315" for a in ("d", "b", "z")]
    assert all(len(c.encode()) <= 64 for c in callbacks)


def test_overdue_items_are_reminded_daily_and_escalated_on_the_configured_day(db, clock):
    off = {"assignment_start": None}  # officers with no schedule of their own
    duty = factories.person(db, 2001, role=Role.DUTY_OFFICER, **off)
    elsewhere = factories.person(
        db, 2002, role=Role.DUTY_OFFICER, prefecture="aba", county="aba.barkam", **off
    )
    person = factories.person(db, 1001)
    for day in range(15, 22):
        assert run(db, at(date(2026, 3, day))).escalations == 0
    assert run(db, at(date(2026, 3, 22), 8, 59)).escalations == 0
    result = run(db, at(date(2026, 3, 22)))  # 7 days overdue, at the reminder time
    assert result.escalations == 2
    told = outbox_rows(db, chat_id=duty.telegram_id) + outbox_rows(db, chat_id=9001)
    assert len(told) == 2 and all(m.priority == Priority.URGENT for m in told)
    assert all(m.created_at == at(date(2026, 3, 22)) for m in told)
    assert "Li Wei" in told[0].payload["text"] and "7" in told[0].payload["text"]
    assert outbox_rows(db, chat_id=elsewhere.telegram_id) == []  # not their area
    for day in range(23, 30):
        assert run(db, at(date(2026, 3, day))).escalations == 0  # once per due date
    daily = [k for k in reminder_keys(db, person.telegram_id) if ":2026-03-15:" in k]
    assert daily[-1].endswith(":+14") and len(daily) == 1 + 14  # "0" and +1..+14


def test_a_reminder_missed_while_stopped_is_sent_once_within_the_grace_period(db, clock):
    person = factories.person(db)
    run(db, at(date(2026, 3, 13), 20))
    # stopped from 08:00 to 16:00 on the 14th: the 09:00 reminder goes out at 16:00, once
    late = run(db, at(date(2026, 3, 14), 16))
    assert late.reminders == 1 and run(db, at(date(2026, 3, 14), 16, 1)).reminders == 0
    assert outbox_rows(db, chat_id=person.telegram_id)[-1].created_at == at(date(2026, 3, 14), 16)
    # stopped from the 14th evening until 18:00 on the 15th (9 hours after the slot):
    # too late for "due today"; the daily overdue reminder follows the next morning
    skipped = run(db, at(date(2026, 3, 15), 18))
    assert (skipped.reminders, skipped.skipped_late) == (0, 1)
    assert run(db, at(date(2026, 3, 16))).reminders == 1
    keys = reminder_keys(db, person.telegram_id)
    assert [k.rsplit(":", 1)[1] for k in keys] == ["-1", "+1"]


def test_a_long_stop_still_escalates_once_on_start(db, clock):
    factories.person(db)
    run(db, at(date(2026, 3, 1), 10))
    result = run(db, at(date(2026, 4, 2), 3))  # down for a month, back at 3 a.m.
    assert result.escalations == 1 and result.reminders == 0  # 3 a.m. is past the grace
    assert run(db, at(date(2026, 4, 2), 4)).escalations == 0


def test_a_person_chooses_their_reminder_time_and_time_zone(db, clock):
    person = factories.person(db)
    db.call(records.set_reminder_time, person.id, 20 * 3600 + 30 * 60)
    assert run(db, at(date(2026, 3, 8), 9)).reminders == 0
    result = run(db, at(date(2026, 3, 8), 20, 30))
    assert result.reminders == 1
    db.call(records.set_reminder_time, person.id, 9 * 3600, "Europe/Berlin")
    berlin = ZoneInfo("Europe/Berlin")
    # 2026-03-29: Europe switches to summer time; 09:00 in Berlin is then 07:00 UTC
    db.call(records.set_due, factories.admin(db), person.id, CareKind.REST, date(2026, 3, 30), CFG)
    run(db, at(date(2026, 3, 29), 8, 59, berlin))
    run(db, at(date(2026, 3, 29), 9, 0, berlin))
    rest = [
        m
        for m in outbox_rows(db, chat_id=person.telegram_id)
        if ":2026-03-30:-1" in m.idempotency_key
    ]
    assert len(rest) == 1
    assert rest[0].created_at.astimezone(berlin).hour == 9 and rest[0].created_at.hour == 7


def test_a_pass_killed_half_way_leaves_nothing_and_the_next_sends_each_once(db, clock, monkeypatch):
    people_ = [factories.person(db, 1001 + i) for i in range(5)]
    real = outbox.enqueue_many

    def dying(*args, **kwargs):
        real(*args, **kwargs)  # the rows are written, then the process dies before commit
        raise SystemExit("kill -9")

    monkeypatch.setattr(outbox, "enqueue_many", dying)
    with pytest.raises(SystemExit):
        run(db, at(date(2026, 3, 8)))
    assert outbox_rows(db) == []
    monkeypatch.setattr(outbox, "enqueue_many", real)
    assert run(db, at(date(2026, 3, 8), 9, 5)).reminders == 5
    assert run(db, at(date(2026, 3, 8), 9, 6)).reminders == 0
    assert sorted(m.chat_id for m in outbox_rows(db)) == [p.telegram_id for p in people_]


def test_acting_on_a_reminder_silences_the_reminders_of_that_moment(db, clock):
    person = factories.person(db)
    run(db, at(date(2026, 3, 14)))
    exam = db.call(records.schedule_for, person.id, CFG).items[CareKind.EXAM]
    clock.move_to(at(date(2026, 3, 14), 10))
    db.call(records.record_booked, person.id, exam.item_id, date(2026, 3, 15), CFG)
    assert run(db, at(date(2026, 3, 14), 10, 1)).reminders == 0  # no "due tomorrow" again
    assert run(db, at(date(2026, 3, 15))).reminders == 1
    clock.move_to(at(date(2026, 3, 15), 10))
    db.call(records.record_snoozed, person.id, exam.item_id, 3, CFG)
    for day in (16, 17):
        assert run(db, at(date(2026, 3, day))).reminders == 0
    assert run(db, at(date(2026, 3, 18))).reminders == 1


def test_deleting_a_person_deletes_their_care_data(db, clock):
    person = factories.person(db)
    run(db, at(date(2026, 3, 8)))
    exam = db.call(records.schedule_for, person.id, CFG).items[CareKind.EXAM]
    db.call(records.record_done, person.id, exam.item_id, date(2026, 3, 1), CFG, result="ok")
    db.call(records.set_reminder_time, person.id, 8 * 3600)
    assert db.call(records.export_for_person, person.id)["records"][0]["result"] == "ok"
    db.call(people.delete_own_data, person.telegram_id)
    with db.session() as s:
        assert s.exec(select(CareItem)).all() == [] and s.exec(select(CareRecord)).all() == []


# ---------------------------------------------------------------------------- reports


def test_area_reports_show_only_the_visible_prefectures_and_the_csv_has_no_results(db, clock):
    factories.person(db, 1001, real_name="=Wang Formula")
    factories.person(db, 1002, prefecture="aba", county="aba.barkam", posting_altitude_m=2615)
    clock.move_to(at(date(2026, 3, 20)))
    everything = db.call(areas.area_rows, CFG, None)
    ganzi = db.call(areas.area_rows, CFG, frozenset({"ganzi"}))
    assert {r.person.prefecture for r in everything} == {"ganzi", "aba"}
    assert {r.person.prefecture for r in ganzi} == {"ganzi"}
    assert db.call(areas.area_rows, CFG, frozenset()) == []
    overdue = [r for r in ganzi if r.overdue]
    assert [(r.due.kind, r.due.overdue_days(r.today)) for r in overdue] == [("exam", 5)]
    data = areas.rows_to_csv(everything, "en").decode("utf-8-sig")
    table = list(csv.reader(io.StringIO(data)))
    assert table[0] == list(areas.CSV_COLUMNS)
    assert any(row[2] == "'=Wang Formula" for row in table[1:])  # no formula injection


def test_creating_the_same_item_twice_at_once_does_not_fail(db, clock):
    person = factories.person(db)
    for _ in range(2):  # a pass and a /schedule racing: ON CONFLICT DO NOTHING
        db.call(care_items.create_items, [(person.id, CareKind.REST)])
    with db.session() as s:
        assert len(s.exec(select(CareItem)).all()) == 1


def test_overdue_and_upcoming_summaries_count_what_the_full_list_has(db, clock):
    """/overdue and /upcoming show 40 lines and counts built from area_summary: the same
    items, days and order as the full list (the CSV), whatever the item's situation."""
    factories.person(db, 1001, real_name="Plain")  # exam overdue from 2026-03-15
    factories.person(db, 1002, real_name="Aba", prefecture="aba", county="aba.barkam")
    factories.person(db, 1003, real_name="Ended", assignment_end="2026-04-01")
    factories.person(db, 1004, real_name="Early", assignment_start="2026-01-05")
    booked = factories.person(db, 1005, real_name="Booked")
    admin_set = factories.person(db, 1006, real_name="Set")
    abroad = factories.person(db, 1007, real_name="Abroad")
    before = factories.person(db, 1008, real_name="Before", assignment_start="2026-05-01")
    run(db, at(date(2026, 3, 20)))
    clock.move_to(at(date(2026, 3, 20), 10))
    items = {p.id: db.call(records.schedule_for, p.id, CFG).items for p in (booked, before)}
    exam = CareKind.EXAM
    db.call(
        records.record_booked, booked.id, items[booked.id][exam].item_id, date(2026, 3, 25), CFG
    )
    # an exam a month before arrival counts as the arrival exam
    db.call(records.record_done, before.id, items[before.id][exam].item_id, date(2026, 3, 2), CFG)
    db.call(records.set_due, factories.admin(db), admin_set.id, exam, date(2026, 3, 18), CFG)
    db.call(records.set_reminder_time, abroad.id, None, "Pacific/Kiritimati")
    for moment in (at(date(2026, 3, 20), 10), at(date(2026, 3, 31), 23, 30), at(date(2026, 6, 25))):
        clock.move_to(moment)
        for visible in (None, frozenset({"ganzi"}), frozenset()):
            rows = db.call(areas.area_rows, CFG, visible)
            for overdue in (True, False):
                wanted = [r for r in rows if r.overdue == overdue]
                for limit in (40, 2):
                    summary = db.call(
                        areas.area_summary, CFG, visible, overdue=overdue, limit=limit
                    )
                    assert summary.rows == wanted[:limit]
                    assert summary.total == len(wanted)
                    assert sum(summary.counts.values()) == len(wanted)
    clock.move_to(at(date(2026, 3, 20), 10))
    overdue = db.call(areas.area_summary, CFG, None, overdue=True, limit=40)
    names = {r.person.name for r in overdue.rows}
    assert {"Plain", "Ended", "Set", "Abroad"} <= names and "Booked" not in names
    assert "Early" in names  # its first exam, 14 days after arrival, is long past


@pytest.mark.parametrize(
    ("day", "told"),
    [
        (date(2026, 4, 20), "reminded 7 days and 1 day before"),
        (date(2026, 3, 5), "reminded the day before and on the day"),
        (date(2026, 3, 2), "to tomorrow, 2026-03-02"),
        (date(2026, 3, 1), "to today, 2026-03-01"),
        (date(2026, 2, 10), "which has passed: it is now overdue"),
    ],
)
def test_the_cadre_is_told_only_reminders_still_to_come(db, clock, day, told):
    """A date an admin sets may be near or past (the demo's overdue exam): the notice
    never promises a reminder whose day has gone (today is 2026-03-01)."""
    admin = factories.admin(db)
    person = factories.person(db, language="en")
    db.call(records.set_due, admin, person.id, CareKind.EXAM, day, CFG)
    notice = outbox_rows(db, chat_id=person.telegram_id)[-1].payload["text"]
    assert told in notice and day.isoformat() in notice
