"""A simulated week of the lone-worker timer with a controlled clock: the right reminders
at the right local times, nudges, twice-daily checks after arrival, pauses, Zhejiang
postings left alone, and the duty officer told exactly once per missed day."""

from __future__ import annotations

from collections import Counter
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
import time_machine
from sqlmodel import select

from models import MissedCheckin, OutboxMessage, Priority, Role
from services import people
from services.health import checkins, reminders
from services.health.assessment import Readings
from services.i18n import t
from tests.support.botfixtures import ADMIN_ID
from tests.support.checkin_helpers import CONFIG, POLICY, make_person

ZONE = ZoneInfo("Asia/Shanghai")
MONDAY = date(2026, 11, 30)
DAYS = [MONDAY + timedelta(days=i) for i in range(7)]
FINE = Readings(headache=0, gi=0, fatigue=0, dizziness=0, functional=0, spo2=86, heart_rate=75)


def local(day: date, hh: int, mm: int = 0) -> datetime:
    return datetime.combine(day, time(hh, mm), tzinfo=ZONE)


@pytest.fixture
def week(db):
    """Everyone registers on the Sunday before; returns the people."""
    with time_machine.travel(local(MONDAY - timedelta(days=1), 12), tick=False):
        a = make_person(db, 1001, "Anna")  # default 09:00, long at post
        b = make_person(db, 1002, "Bo")  # reminder at 07:30, never checks in
        c = make_person(db, 1003, "Chen", start=MONDAY)  # arrives Monday: twice a day
        d = make_person(db, 1004, "Dawa")  # paused Wednesday and Thursday
        e = make_person(db, 1005, "Emma", prefecture="zhejiang")  # low altitude
        duty = make_person(db, 5001, "Officer", role=Role.DUTY_OFFICER, prefecture="zhejiang")
        admin = db.call(people.find, ADMIN_ID)
        db.call(people.toggle_duty_area, admin, duty.id, "ganzi")
        db.call(checkins.set_reminder_time, b, time(7, 30))
        db.call(checkins.pause, d, DAYS[2], DAYS[3])
    return {"a": a, "b": b, "c": c, "d": d, "e": e, "duty": duty}


def test_a_week_of_reminders_nudges_and_missed_day_notices(db, week):
    a, c = week["a"], week["c"]
    check_ins = {
        local(DAYS[0], 8, 30): [a],  # before the reminder: no reminder at all
        local(DAYS[1], 10, 0): [a],  # after the reminder, before the nudge
        local(DAYS[3], 13, 0): [a],  # after the nudge, before the cut-off
        local(DAYS[5], 19, 0): [a],  # after the cut-off: the officer was told, then told again
    }
    for day in DAYS:
        check_ins.setdefault(local(day, 9, 30), []).append(c)  # Chen: mornings only
    moment = local(DAYS[0], 0, 0)
    end = local(DAYS[-1] + timedelta(days=1), 0, 0)
    with time_machine.travel(moment, tick=False) as traveller:
        while moment < end:
            traveller.move_to(moment)
            for person in check_ins.get(moment, []):
                db.call(checkins.submit, person.id, FINE, config=CONFIG, policy=POLICY)
            first = db.call(reminders.run_pass, CONFIG)
            if first.queued:  # a second pass at once changes nothing
                assert db.call(reminders.run_pass, CONFIG).queued == 0
            moment += timedelta(minutes=30)

    with db.session() as s:
        rows = s.exec(select(OutboxMessage).order_by(OutboxMessage.id)).all()
        missed = s.exec(select(MissedCheckin)).all()

    def sent(person, kind: str) -> list[datetime]:
        return [
            r.created_at.astimezone(ZONE)
            for r in rows
            if r.chat_id == person.telegram_id and r.idempotency_key.startswith(f"health:{kind}:")
        ]

    # Anna, 09:00: reminded only on the days she had not checked in by 09:00
    assert sent(a, "remind") == [local(d, 9) for d in DAYS[1:]]
    assert sent(a, "nudge") == [local(d, 12) for d in (DAYS[2], DAYS[3], DAYS[4], DAYS[5], DAYS[6])]
    # Bo, his own 07:30: every day, nudged at 10:30
    assert sent(week["b"], "remind") == [local(d, 7, 30) for d in DAYS]
    assert sent(week["b"], "nudge") == [local(d, 10, 30) for d in DAYS]
    # Chen arrived on Monday: the second check-in at 19:00 on the first five days, nudged at 21:00
    assert sent(c, "remind") == [local(d, 9) for d in DAYS]  # he checks in at 09:30
    assert sent(c, "second") == [local(d, 19) for d in DAYS[:5]]
    assert sent(c, "second-nudge") == [local(d, 21) for d in DAYS[:5]]
    # Dawa: nothing while paused
    assert sent(week["d"], "remind") == [local(d, 9) for d in DAYS if d not in DAYS[2:4]]
    # Emma in Zhejiang: nothing at all
    assert [r for r in rows if r.chat_id == week["e"].telegram_id] == []
    assert all(
        r.priority == Priority.REMINDER
        for r in rows
        if r.idempotency_key.startswith(("health:remind", "health:nudge", "health:second"))
    )

    # the officer: exactly once per missed day and person, at each person's cut-off
    by_person = Counter((m.person_id, m.local_date) for m in missed)
    assert set(by_person.values()) == {1}
    expected = (
        {(a.id, d) for d in (DAYS[2], DAYS[4], DAYS[5], DAYS[6])}
        | {(week["b"].id, d) for d in DAYS}
        | {(week["d"].id, d) for d in DAYS if d not in DAYS[2:4]}
    )
    assert set(by_person) == expected
    notices = [r for r in rows if r.chat_id == week["duty"].telegram_id]
    missed_notices = [r for r in notices if r.idempotency_key.startswith("health:missed:")]
    assert all(r.priority == Priority.URGENT for r in missed_notices)
    times = sorted({r.created_at.astimezone(ZONE).time() for r in missed_notices})
    assert times == [time(16, 30), time(18, 0)]  # Bo's cut-off, then everyone else's
    for day in DAYS:
        texts = [
            r.payload["text"] for r in missed_notices if r.created_at.astimezone(ZONE).date() == day
        ]
        names = Counter(n for t in texts for n in ("Anna", "Bo", "Dawa", "Chen") if n in t)
        assert names["Bo"] == 1 and names["Chen"] == 0
        assert names["Anna"] == (1 if day in (DAYS[2], DAYS[4], DAYS[5], DAYS[6]) else 0)
        assert names["Dawa"] == (0 if day in DAYS[2:4] else 1)
    late = [r for r in notices if r.idempotency_key.startswith("health:late:")]
    assert len(late) == 1 and "Anna" in late[0].payload["text"]
    assert late[0].created_at.astimezone(ZONE) == local(DAYS[5], 19)


def test_a_missed_cut_off_while_the_bot_was_down_is_reported_once_after_start(db, week):
    """The bot was down from Monday 17:00 to Tuesday 08:00: Monday's miss is reported at
    the first pass, and the 09:00 reminder of Monday is not sent late."""
    b = week["b"]
    with time_machine.travel(local(DAYS[0], 7, 30), tick=False) as traveller:
        db.call(reminders.run_pass, CONFIG)
        traveller.move_to(local(DAYS[1], 8, 0))
        db.call(reminders.run_pass, CONFIG)
        db.call(reminders.run_pass, CONFIG)
    with db.session() as s:
        missed = s.exec(select(MissedCheckin).where(MissedCheckin.person_id == b.id)).all()
        keys = [
            r.idempotency_key for r in s.exec(select(OutboxMessage)) if r.chat_id == b.telegram_id
        ]
    assert [m.local_date for m in missed] == [DAYS[0]]
    assert keys == [f"health:remind:{b.id}:{DAYS[0]}", f"health:remind:{b.id}:{DAYS[1]}"]


def test_monitoring_starts_the_day_after_joining_and_stops_after_the_assignment(db):
    with time_machine.travel(local(MONDAY, 8), tick=False):
        person = make_person(db, 1001, end=DAYS[2])
    assert reminders.first_day(person, CONFIG) == DAYS[1]
    assert not reminders.is_monitored(person, None, DAYS[0], CONFIG)
    assert reminders.is_monitored(person, None, DAYS[2], CONFIG)
    assert not reminders.is_monitored(person, None, DAYS[3], CONFIG)


def test_close_monitoring_restarts_after_a_return_from_rest(db, monkeypatch):
    from services.care import records

    with time_machine.travel(local(MONDAY - timedelta(days=1), 12), tick=False):
        person = make_person(db, 1001, start=date(2026, 3, 1))
    monkeypatch.setattr(records, "last_rest_return", lambda session, person_id: DAYS[2])
    monkeypatch.setattr(records, "last_rest_returns", lambda session: {person.id: DAYS[2]})
    with time_machine.travel(local(DAYS[1], 19, 0), tick=False):
        assert db.call(reminders.run_pass, CONFIG).second == 0
    for day in DAYS[2:7]:
        with time_machine.travel(local(day, 19, 0), tick=False):
            assert db.call(reminders.run_pass, CONFIG).second == 1, day
    assert reminders.close_monitoring(person, DAYS[2], DAYS[6], CONFIG)
    assert not reminders.close_monitoring(person, DAYS[2], DAYS[6] + timedelta(days=1), CONFIG)


def test_a_cut_off_notice_names_fifty_people_and_counts_the_rest(db):
    """A big area's cut-off: the officer gets one notice, not hundreds of Telegram
    messages, naming the first 50 and pointing to /today for the others."""
    with time_machine.travel(local(MONDAY - timedelta(days=1), 12), tick=False):
        cadres = [make_person(db, 3000 + i, f"Cadre{i:02d}") for i in range(60)]
        duty = make_person(db, 5001, "Officer", role=Role.DUTY_OFFICER, prefecture="zhejiang")
        db.call(people.toggle_duty_area, db.call(people.find, ADMIN_ID), duty.id, "ganzi")
    with time_machine.travel(local(MONDAY, 18, 0), tick=False):
        result = db.call(reminders.run_pass, CONFIG)
    assert len(result.missed) == 60
    with db.session() as s:
        notices = [
            r
            for r in s.exec(select(OutboxMessage))
            if r.chat_id == duty.telegram_id and r.idempotency_key.startswith("health:missed:")
        ]
    assert len(notices) == 1
    text = notices[0].payload["text"]
    assert "60" in text
    named = [c for c in cadres if f"{c.real_name} " in text or f"{c.real_name}<" in text]
    assert [c.real_name for c in named] == [f"Cadre{i:02d}" for i in range(50)]
    assert t("en", "health.officer.missed_more", count=10) in text
