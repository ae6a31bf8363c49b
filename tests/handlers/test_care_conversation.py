"""Care schedules through the emulator: /schedule, reminder buttons, /overdue, /upcoming,
CSV, admins moving a date, /carepolicy; as people on their phones would use them."""

from __future__ import annotations

import csv
import io
from datetime import date, timedelta

from sqlmodel import select

from models import AuditEntry, CareKind, CareRecord, Role
from services import clock, examples, people
from services.care import records, reminders
from services.care.rules import CareConfig
from services.i18n import t
from tests.support import factories

NO_SCHEDULE = {"assignment_start": None}


def cfg(bot) -> CareConfig:
    return CareConfig.from_settings(bot.settings)


def local_today(bot) -> date:
    return clock.now().astimezone(bot.settings.zone).date()


def cadre(bot, telegram_id: int = 1001, *, days_ago: int = 14, **overrides):
    """A cadre at Litang (4014 m, high band): with days_ago=14 the exam is due today."""
    start = (local_today(bot) - timedelta(days=days_ago)).isoformat()
    overrides.setdefault("assignment_end", "2030-01-01")
    return factories.person(bot.db, telegram_id, assignment_start=start, **overrides)


def remind_now(bot, person) -> reminders.PassResult:
    """Make the person's reminder time a minute ago and run the pass (as the job would)."""
    local = clock.now().astimezone(bot.settings.zone) - timedelta(minutes=1)
    seconds = local.hour * 3600 + local.minute * 60
    bot.db.call(records.set_reminder_time, person.id, seconds)
    return bot.db.call(reminders.run_pass, clock.now(), cfg(bot))


async def test_schedule_shows_the_next_rest_and_exam_and_days_at_altitude(bot):
    zh = cadre(bot, 1001, days_ago=30, language="zh-Hans")
    user = bot.user(1001, "小李")
    await user.send("/schedule")
    shown = await user.wait_for("我的关怀日程")
    start = local_today(bot) - timedelta(days=30)
    rest_due = (start + timedelta(days=120)).isoformat()
    assert "低海拔休整" in shown.text and rest_due in shown.text
    assert "在高原第 30 天" in shown.text
    assert "已逾期 16 天" in shown.text  # the exam was due 14 days after arrival
    assert "不是医学诊断" in shown.text
    labels = [b["text"] for row in shown.reply_markup["inline_keyboard"] for b in row]
    assert "✅ 体检已完成" in labels and "⏰ 提醒时间" in labels
    await user.press("ℹ️ 详情", message=shown)  # the policy behind the dates, one tap away
    details = await user.wait_for("3500–4500 米")
    assert "在高原：30 天" in details.text
    assert "血红蛋白" in details.text and "尚待管理员确认" in details.text
    assert zh.language == "zh-Hans"

    en = bot.user(1002, "Wei", language_code="en")
    factories.person(
        bot.db,
        1002,
        prefecture="zhejiang",
        county="zhejiang.hangzhou",
        posting_altitude_m=None,
        altitude_source=None,
    )
    await en.send("/schedule")
    await en.wait_for("Your posting is at low altitude")


async def test_a_reminder_leads_to_done_with_date_place_and_result_and_the_next_exam(bot):
    person = cadre(bot, language="en")
    user = bot.user(1001, "Wei", language_code="en")
    await user.send("/help")
    await user.next_message()
    result = remind_now(bot, person)
    assert result.reminders == 1
    reminder = await user.wait_for("Due today", timeout=10)
    assert "not a diagnosis" in reminder.text and "chest X-ray" in reminder.text
    await user.press("✅ Done", message=reminder)
    await user.wait_for("On which day was the examination?")
    await user.send("2099-01-01")  # in the future
    await user.wait_for("cannot be later than today")
    await user.wait_for("On which day was the examination?")
    await user.send("yesterday please")
    await user.wait_for(t("en", "invalid.date", **examples.values(bot.settings.zone))[:20])
    await user.wait_for("On which day was the examination?")
    await user.press("Today")
    await user.wait_for("Where was it?")
    await user.send("Kangding <Prefecture> People's Hospital")
    await user.wait_for("The result in one line")
    await user.press("Skip")
    saved = await user.wait_for("Recorded.")
    next_exam = (local_today(bot) + timedelta(days=180)).isoformat()
    assert next_exam in saved.text, saved.text
    with bot.db.session() as s:
        record = s.exec(select(CareRecord)).one()
    assert record.place == "Kangding <Prefecture> People's Hospital" and record.result is None
    await user.send("/schedule")
    shown = await user.wait_for("My care schedule")
    assert f"Next: {next_exam}" in shown.text and f"Last done: {local_today(bot)}" in shown.text
    # the old reminder's buttons are now out of date
    await user.press("💤 Remind me later", message=reminder)
    answer = await user.callback_answer()
    assert "out of date" in answer.text


async def test_booked_and_snooze_from_a_reminder(bot):
    person = cadre(bot, days_ago=7, language="en")  # exam due in 7 days
    user = bot.user(1001, "Wei", language_code="en")
    await user.send("/help")
    await user.next_message()
    remind_now(bot, person)
    reminder = await user.wait_for("in 7 days", timeout=10)
    await user.press("📅 Booked for…", message=reminder)
    await user.wait_for("For which day is it booked?")
    await user.send("2020-01-01")
    await user.wait_for("cannot be before today")
    await user.press("In 3 days")
    booked_day = (local_today(bot) + timedelta(days=3)).isoformat()
    await user.wait_for(f"Booking recorded: {booked_day}")
    await user.press("💤 Remind me later", message=reminder)
    answer = await user.callback_answer()
    assert "out of date" in answer.text  # the due day moved with the booking
    await user.send("/schedule")
    shown = await user.wait_for("My care schedule")
    assert f"Booked for {booked_day}" in shown.text


async def test_snooze_pauses_the_reminders(bot):
    person = cadre(bot, language="en")
    user = bot.user(1001, "Wei", language_code="en")
    await user.send("/help")
    await user.next_message()
    remind_now(bot, person)
    reminder = await user.wait_for("Due today", timeout=10)
    await user.press("💤 Remind me later", message=reminder)
    await user.wait_for("Pause the reminders for how long?")
    await user.press("3 days")
    until = (local_today(bot) + timedelta(days=3)).isoformat()
    await user.wait_for(f"remind you again on {until}")


async def test_forged_buttons_are_refused_and_audited(bot):
    mine = cadre(bot, 1001, language="en")
    other = cadre(bot, 1002, language="en")
    their = bot.db.call(records.schedule_for, other.id, cfg(bot)).items[CareKind.EXAM]
    user = bot.user(1001, "Wei", language_code="en")
    await user.send("/schedule")
    await user.wait_for("My care schedule")
    compact = their.due.strftime("%Y%m%d")
    await user.press_forged(f"cs:d:{their.item_id}:{compact}")  # someone else's
    assert "not valid" in (await user.callback_answer()).text
    # Data no button carries stops at the grammar of button data (handlers.callbacks).
    for data in ("cs:d:99999999999999999999:1", "cs:zz:1:x:9"):
        await user.press_forged(data)
        answer = await user.callback_answer()
        assert answer.text == t("en", "form.stale")
    with bot.db.session() as s:
        denied = s.exec(select(AuditEntry).where(AuditEntry.outcome == "denied")).all()
    assert len(denied) == 3 and all(d.target_person_id == mine.id for d in denied)
    assert bot.db.call(records.schedule_for, other.id, cfg(bot)).items[CareKind.EXAM] == their


async def test_the_reminder_time_is_chosen_with_buttons(bot):
    person = cadre(bot, language="en")
    user = bot.user(1001, "Wei", language_code="en")
    await user.send("/schedule")
    await user.wait_for("My care schedule")
    await user.press("⏰ Reminder time")
    await user.wait_for("At what time should I remind you?")
    await user.press("20:00")
    await user.wait_for("reminders will come at 20:00")
    schedule = bot.db.call(records.schedule_for, person.id, cfg(bot))
    assert schedule.timing.seconds == 20 * 3600


async def test_overdue_and_upcoming_show_an_officer_only_their_area_with_a_csv(bot):
    factories.person(bot.db, 2001, role=Role.DUTY_OFFICER, real_name="Zhou Duty", **NO_SCHEDULE)
    cadre(bot, 1001, days_ago=20, real_name="Ganzi Overdue")
    cadre(bot, 1002, days_ago=10, real_name="Ganzi Soon")
    cadre(
        bot,
        1003,
        days_ago=20,
        real_name="Aba Person",
        prefecture="aba",
        county="aba.barkam",
        posting_altitude_m=3600,
    )
    duty = bot.user(2001, "Zhou", language_code="en")
    await duty.send("/overdue")
    shown = await duty.wait_for("Overdue rests and examinations")
    assert "Ganzi Overdue" in shown.text and "6 days overdue" in shown.text
    assert "Aba Person" not in shown.text and "Ganzi Soon" not in shown.text
    labels = [b["text"] for row in shown.reply_markup["inline_keyboard"] for b in row]
    assert labels == ["⬇️ Export CSV"]  # officers cannot move dates
    await duty.press("⬇️ Export CSV")
    document = await duty.wait_for(lambda m: m.document is not None)
    rows = list(csv.reader(io.StringIO(duty.files[-1].data.decode("utf-8-sig"))))
    assert rows[0][:3] == ["prefecture", "county", "name"] and [r[2] for r in rows[1:]] == [
        "Ganzi Overdue"
    ]
    assert "No examination results" in document.caption
    await duty.send("/upcoming")
    upcoming = await duty.wait_for("due in the next 14 days")
    assert "Ganzi Soon" in upcoming.text and "Ganzi Overdue" not in upcoming.text
    with bot.db.session() as s:
        export = s.exec(select(AuditEntry).where(AuditEntry.action == "schedule.export")).one()
    assert export.detail["area"] == ["ganzi"]

    user = bot.user(1001, "Li", language_code="en")
    await user.send("/overdue")
    await user.wait_for(t("en", "deny.role.duty_officer"))


async def test_an_admin_moves_a_date_and_the_cadre_is_told(bot):
    person = cadre(bot, 1001, days_ago=20, real_name="Ganzi Overdue", language="en")
    bot.db.call(people.set_language, 9001, "en")
    user = bot.user(1001, "Li", language_code="en")
    await user.send("/help")
    await user.next_message()
    admin = bot.admin(language_code="en")
    await admin.send("/overdue")
    await admin.wait_for("Overdue rests and examinations")
    await admin.press("✏️ Ganzi Overdue")
    card = await admin.wait_for("Care schedule of Ganzi Overdue")
    await admin.press("📅 Set/move the exam date", message=card)
    await admin.wait_for("Set the physical examination date of Ganzi Overdue")
    await admin.send("31.02.2026")
    await admin.wait_for(t("en", "invalid.date", **examples.values(bot.settings.zone))[:20])
    new_day = local_today(bot) + timedelta(days=10)
    await admin.send(new_day.isoformat())
    await admin.wait_for(f"now due on {new_day.isoformat()}")
    notice = await user.wait_for("An administrator set the date", timeout=10)
    assert new_day.isoformat() in notice.text
    assert (
        bot.db.call(records.schedule_for, person.id, cfg(bot)).items[CareKind.EXAM].due == new_day
    )


async def test_admins_change_and_confirm_the_policy_and_officers_cannot(bot):
    bot.db.call(people.set_language, 9001, "en")
    admin = bot.admin(language_code="en")
    await admin.send("/carepolicy")
    table = await admin.wait_for("Care schedule policy")
    assert table.text.count("; proposal") == 4
    await admin.press("3,500–4,500 m")
    await admin.wait_edit(table, "Low-altitude rest: every 120 days")
    await admin.press("Rest interval")
    await admin.wait_edit(table, "Choose the Rest interval")
    await admin.press("90 days")
    await admin.wait_edit(table, "every 90 days")
    assert "confirmed" in table.text
    await admin.press_forged("cs:ps:high:re:5")
    assert "not valid" in (await admin.callback_answer()).text
    from services import care_policy
    from services.care_policy import Band

    assert bot.db.call(care_policy.effective_policy, {})[Band.HIGH].rest_every_days == 90

    factories.person(bot.db, 2001, role=Role.DUTY_OFFICER, **NO_SCHEDULE)
    duty = bot.user(2001, "Zhou", language_code="en")
    await duty.send("/carepolicy")
    await duty.wait_for(t("en", "deny.role.admin"))


async def test_the_jobs_are_rebuilt_with_fixed_ids_and_never_doubled(bot):
    from bot.app import start_timers
    from scheduler import care as care_timers

    bot.settings = bot.settings.model_copy(update={"care_jobs": True})
    await bot.restart()
    await start_timers(bot.app, bot.timers)
    await start_timers(bot.app, bot.timers)
    ids = [job.id for job in bot.app.job_queue.scheduler.get_jobs()]
    assert ids.count(care_timers.PASS_JOB) == 1
    await bot.restart()
    ids = [job.id for job in bot.app.job_queue.scheduler.get_jobs()]
    assert ids.count(care_timers.PASS_JOB) == 1 and len(ids) == len(set(ids))

    bot.settings = bot.settings.model_copy(update={"care_jobs": False})  # a second instance
    await bot.restart()
    ids = [job.id for job in bot.app.job_queue.scheduler.get_jobs()]
    assert not [i for i in ids if i.startswith(("care:", "oxygen:"))]


async def test_a_guest_pressing_a_forged_care_button_is_told_to_register(bot):
    """Someone who only called for help (a guest row) and sends care button data: the
    refusal a person who is not registered gets, never an unanswered button."""
    bot.db.call(people.record_caller, 1301, "Gao", "en", None)
    guest = bot.user(1301, "Gao", language_code="en")
    await guest.send("/help")
    await guest.wait_for("/start")
    for data in ("cs:z:1:20260101", "cs:d:1:20260101"):
        await guest.press_forged(data)
        answer = await guest.callback_answer()
        assert answer.text == t("en", "deny.unregistered")
