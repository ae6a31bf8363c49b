"""Care schedules and oxygen requests end to end: the real `cadre-bot run` process against
the emulator, its own scheduler firing the jobs, restarts and kill -9."""

from __future__ import annotations

import asyncio
import signal
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlmodel import select

from models import OutboxMessage, OxygenRequest, OxygenStatus, Role
from services import people, roster
from services.care import records
from tests.e2e.test_cli import BotProcess, env_for
from tests.support import factories

pytestmark = pytest.mark.e2e
ZONE = ZoneInfo("Asia/Shanghai")


@pytest.fixture
def care_env(emulator, database_url, engine):
    return env_for(
        database_url,
        CADRE_TELEGRAM_TOKEN=emulator.token,
        CADRE_TELEGRAM_BASE_URL=emulator.base_url,
        CADRE_ADMIN_IDS="9001",
        CADRE_CARE_JOBS="true",
        CADRE_CARE_PASS_INTERVAL="3",
        CADRE_OXYGEN_ESCALATION_MINUTES="0.05",  # 3 seconds
    )


def exam_due_today(db, telegram_id: int = 1001):
    """A cadre at Litang (high band: the first exam 14 days after arrival) arrived 14 days
    ago, so their exam is due today."""
    today = datetime.now(ZONE).date()
    return factories.person(
        db,
        telegram_id,
        language="en",
        assignment_start=(today - timedelta(days=14)).isoformat(),
        assignment_end="2030-01-01",
    )


def remind_at(db, person, moment: datetime) -> None:
    local = moment.astimezone(ZONE)
    db.call(
        records.set_reminder_time, person.id, local.hour * 3600 + local.minute * 60 + local.second
    )


async def stop(process: BotProcess) -> None:
    code, err = await process.stop()
    assert code == 0, err
    assert "Traceback" not in err, err


async def test_an_exam_due_in_a_moment_reminds_the_cadre_done_records_it_and_schedule_moves_on(
    emulator, db, care_env, tmp_path
):
    person = exam_due_today(db)
    planned = (datetime.now(ZONE) + timedelta(seconds=12)).replace(microsecond=0)
    remind_at(db, person, planned)
    user = emulator.user(1001, "Wei", language_code="en")
    process = BotProcess(care_env, tmp_path)
    await process.start()
    try:
        await user.send("/schedule")
        shown = await user.wait_for("My care schedule", timeout=15)
        assert "Next: today" in shown.text
        reminder = await user.wait_for("Due today", timeout=30)
        late = (datetime.now(ZONE) - planned).total_seconds()
        assert 0 <= late < 5, late  # on time, to the second
        assert "not a diagnosis" in reminder.text
        await user.press("✅ Done", message=reminder)
        await user.wait_for("On which day was the examination?", timeout=10)
        await user.press("Today")
        await user.wait_for("Where was it?", timeout=10)
        await user.press("Skip")
        await user.wait_for("The result in one line", timeout=10)
        await user.send("Haemoglobin 17.2, all normal")
        await user.wait_for("Recorded.", timeout=10)
        await user.send("/schedule")
        after = await user.wait_for("My care schedule", timeout=10)
        next_exam = (datetime.now(ZONE).date() + timedelta(days=180)).isoformat()
        assert f"Next: {next_exam}" in after.text and "Last done" in after.text
        await asyncio.sleep(4)  # another pass or two: nothing is sent again
    finally:
        await stop(process)
    assert len([m for m in user.bot_messages if "Due today" in m.text]) == 1


async def test_a_reminder_due_while_the_process_was_killed_is_sent_once_on_start(
    emulator, db, care_env, tmp_path
):
    person = exam_due_today(db)
    user = emulator.user(1001, "Wei", language_code="en")
    # Set before the first start: with the default time (09:00) already past, that process
    # would send the reminder itself.
    remind_at(db, person, datetime.now(ZONE) + timedelta(seconds=60))
    process = BotProcess(care_env, tmp_path)
    await process.start()
    await user.send("/help")
    await user.wait_for("/schedule", timeout=15)
    await process.stop(signal.SIGKILL)
    assert not [m for m in user.bot_messages if "Due today" in m.text]
    remind_at(db, person, datetime.now(ZONE) - timedelta(seconds=2))  # passed while down
    restarted = BotProcess(care_env, tmp_path)
    await restarted.start()
    try:
        await user.wait_for("Due today", timeout=20)
    finally:
        await stop(restarted)
    again = BotProcess(care_env, tmp_path)
    await again.start()
    try:
        await user.send("/help")
        await user.wait_for("/schedule", timeout=15)
        await asyncio.sleep(4)
    finally:
        await stop(again)
    assert len([m for m in user.bot_messages if "Due today" in m.text]) == 1
    with db.session() as s:
        rows = s.exec(select(OutboxMessage).where(OutboxMessage.chat_id == 1001)).all()
    assert len([r for r in rows if r.idempotency_key.startswith("care:")]) == 1


async def test_an_oxygen_request_escalates_is_acknowledged_and_delivered(
    emulator, db, care_env, tmp_path
):
    db.call(people.ensure_admins, [9001], "en")
    db.call(people.set_language, 9001, "en")
    factories.person(db, 1001, real_name="Li Wei", language="en")
    duty_p = factories.person(
        db,
        2001,
        role=Role.DUTY_OFFICER,
        real_name="Zhou Duty",
        language="en",
        assignment_start=None,
    )
    db.call(roster.go_on_duty, duty_p, 8)
    user = emulator.user(1001, "Li", language_code="en")
    duty = emulator.user(2001, "Zhou", language_code="en")
    admin = emulator.user(9001, "Admin", language_code="en")
    process = BotProcess(care_env, tmp_path)
    await process.start()
    try:
        for who in (duty, admin):
            await who.send("/help")
            await who.wait_for("/help", timeout=15)  # the "more, by task" line
        await user.send("/oxygen")
        # Each button is pressed on its question: the day's care reminder (after 09:00 it
        # is sent at start) has buttons of its own.
        what = await user.wait_for("What do you need?", timeout=15)
        await user.send("I need oxygen")  # typing where a button is expected
        await user.wait_for("Please tap a button", timeout=10)
        await user.press("Oxygen room access", message=what)
        where = await user.wait_for("Where?", timeout=10)
        await user.send("   ")
        await user.wait_for("Please type something", timeout=10)
        await user.press("Office", message=where)
        urgency = await user.wait_for("How urgent is it?", timeout=10)
        await user.press("Urgent: needed now", message=urgency)
        check = await user.wait_for("Please check", timeout=10)
        await user.press("📨 Send", message=check)
        await user.wait_for("Oxygen request #", timeout=10)
        first = await duty.wait_for("Oxygen request #", timeout=15)
        shout = await admin.wait_for("nobody acknowledged it", timeout=20)  # after 3 s
        await user.wait_for("every duty officer and administrator has been told", timeout=15)
        await admin.press("✅ Acknowledge", message=shout)
        await admin.callback_answer(timeout=10)
        await user.wait_for("has been acknowledged", timeout=15)
        await duty.wait_edit(first, "acknowledged by", timeout=15)
        await duty.press("📦 Delivered", message=first)
        await duty.callback_answer(timeout=10)
        await user.wait_for("was marked delivered", timeout=15)
    finally:
        await stop(process)
    with db.session() as s:
        request = s.exec(select(OxygenRequest)).one()
    assert request.status == OxygenStatus.DELIVERED and request.escalated_at is not None
    # escalated once: one card in the admin's chat, its "nobody acknowledged" header gone
    # once the request was taken (the card matches its status)
    cards = [m for m in admin.bot_messages if "Oxygen request #" in m.text]
    assert [m.message_id for m in cards] == [shout.message_id]
    assert "nobody acknowledged it" not in cards[0].text
