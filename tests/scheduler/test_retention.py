"""The daily retention job in the running bot, on a controlled clock (PIPL art. 19): a day
passing deletes the readings of people whose assignment ended more than
CADRE_HEALTH_RETENTION_DAYS ago and audits it, nothing in the retention window is
touched, and a pass missed while the bot was stopped runs once at the next start."""

from __future__ import annotations

import asyncio
from datetime import date, datetime, time
from zoneinfo import ZoneInfo

import time_machine
from sqlmodel import col, select

from models import AuditEntry, CheckIn, MissedCheckin
from scheduler import jobs
from services.health import checkins, reminders
from services.health.assessment import Readings
from tests.support.checkin_helpers import CONFIG, POLICY, make_person
from tests.support.sos_support import until

ZONE = ZoneInfo("Asia/Shanghai")
FINE = Readings(headache=0, gi=0, fatigue=0, dizziness=0, functional=0, spo2=88, heart_rate=76)
# CADRE_HEALTH_RETENTION_DAYS is 90: on 2026-11-11 readings of assignments that ended
# before 2026-08-13 are due; on 2026-11-12, those that ended before 2026-08-14.
ENDED_EARLIER = date(2026, 8, 12)
ENDED_LATER = date(2026, 8, 13)


def local(day: date, hour: int, minute: int = 0) -> datetime:
    return datetime.combine(day, time(hour, minute), tzinfo=ZONE)


def summaries(db) -> list[AuditEntry]:
    with db.session() as s:
        return list(
            s.exec(
                select(AuditEntry)
                .where(AuditEntry.action == reminders.RETENTION_AUDIT)
                .order_by(col(AuditEntry.id))
            )
        )


async def fresh_start(bot) -> None:
    """The bot's first start ever runs the pass at once (it had never run); then the log of
    runs is emptied, so the tests do not depend on the real date of that first run."""
    await passes(bot, 1)
    with bot.db.session() as s:
        for entry in s.exec(select(AuditEntry).where(AuditEntry.action == "health.retention")):
            s.delete(entry)
        s.commit()


def scheduled_work_running() -> bool:
    """Whether a scheduler job is still running on this event loop (APScheduler's asyncio
    executor runs each coroutine job as a task of `run_coroutine_job`)."""
    return any(
        getattr(task.get_coro(), "__qualname__", "") == "run_coroutine_job"
        for task in asyncio.all_tasks()
        if not task.done()
    )


async def passes(bot, count: int) -> None:
    """Wait until `count` retention passes are recorded and the job has finished, so that
    the next run is not skipped as overlapping the previous one."""
    await until(lambda: len(summaries(bot.db)) == count and not scheduled_work_running())
    await asyncio.sleep(0)  # the finished job's bookkeeping (its done-callback) runs


def readings_of(db, person_id: int) -> tuple[int, int]:
    with db.session() as s:
        stored = s.exec(select(CheckIn).where(CheckIn.person_id == person_id)).all()
        missed = s.exec(select(MissedCheckin).where(MissedCheckin.person_id == person_id)).all()
    return len(stored), len(missed)


def deletions(db) -> list[AuditEntry]:
    with db.session() as s:
        return list(
            s.exec(select(AuditEntry).where(AuditEntry.action == "checkin.readings_deleted"))
        )


async def test_a_day_passing_deletes_expired_readings_audits_them_and_spares_the_rest(bot):
    await fresh_start(bot)
    with time_machine.travel(local(date(2026, 11, 10), 12), tick=True) as traveller:
        earlier = make_person(bot.db, 1001, "Early", start=date(2026, 2, 1), end=ENDED_EARLIER)
        later = make_person(bot.db, 1002, "Late", start=date(2026, 2, 1), end=ENDED_LATER)
        serving = make_person(bot.db, 1003, "Serving", start=date(2026, 2, 1), end=None)
        for person in (earlier, later, serving):
            bot.db.call(checkins.submit, person.id, FINE, config=CONFIG, policy=POLICY)
        with bot.db.session() as s:
            s.add(MissedCheckin(person_id=earlier.id, local_date=date(2026, 8, 1)))
            s.commit()
        await bot.restart()  # never ran: it runs at once, then daily at 03:30
        await passes(bot, 1)
        assert summaries(bot.db)[0].detail["people"] == 0  # everyone is within 90 days
        job = jobs.get_job(bot.app, "health:retention")
        assert job is not None and job.next_run_time == local(date(2026, 11, 11), 3, 30)

        traveller.shift(local(date(2026, 11, 11), 3, 31) - local(date(2026, 11, 10), 12))
        bot.app.job_queue.scheduler.wakeup()
        await passes(bot, 2)

    assert readings_of(bot.db, earlier.id) == (0, 0)
    assert readings_of(bot.db, later.id) == (1, 0)  # its 90 days end tomorrow
    assert readings_of(bot.db, serving.id) == (1, 0)
    summary = summaries(bot.db)[-1]
    assert summary.actor_telegram_id is None and summary.target_person_id is None
    assert summary.detail == {
        "retention_days": 90,
        "assignments_ended_before": "2026-08-13",
        "people": 1,
        "checkins": 1,
        "missed_days": 1,
        "outbox_sent_days": 30,
        "messages_cleared": 0,
    }
    (per_person,) = deletions(bot.db)
    assert per_person.target_person_id == earlier.id and per_person.detail["checkins"] == 1
    for entry in (summary, per_person):  # counts and dates, never a reading
        assert not {"spo2", "heart_rate", "88", "76"} & set(map(str, entry.detail.values()))
        assert not {"spo2", "heart_rate"} & set(entry.detail)


async def test_a_pass_missed_while_the_bot_was_stopped_runs_once_at_the_next_start(bot):
    await fresh_start(bot)
    with time_machine.travel(local(date(2026, 11, 10), 12), tick=True) as traveller:
        later = make_person(bot.db, 1002, "Late", start=date(2026, 2, 1), end=ENDED_LATER)
        bot.db.call(checkins.submit, later.id, FINE, config=CONFIG, policy=POLICY)
        await bot.restart()
        await passes(bot, 1)
        traveller.shift(local(date(2026, 11, 11), 3, 31) - local(date(2026, 11, 10), 12))
        bot.app.job_queue.scheduler.wakeup()
        await passes(bot, 2)
        assert readings_of(bot.db, later.id) == (1, 0)

        await bot.stop()  # down from 11-11 04:00 to 11-13 10:00: two 03:30 runs missed
        traveller.shift(local(date(2026, 11, 13), 10) - local(date(2026, 11, 11), 3, 31))
        await bot.start()
        await passes(bot, 3)
        assert readings_of(bot.db, later.id) == (0, 0)
        job = jobs.get_job(bot.app, "health:retention")
        assert job is not None and job.next_run_time == local(date(2026, 11, 14), 3, 30)

        await bot.restart()  # started again the same day: the pass already ran
        job = jobs.get_job(bot.app, "health:retention")
        assert job is not None and job.next_run_time == local(date(2026, 11, 14), 3, 30)
    assert len(summaries(bot.db)) == 3  # once for the two missed days, not twice
    assert summaries(bot.db)[-1].detail["assignments_ended_before"] == "2026-08-15"
