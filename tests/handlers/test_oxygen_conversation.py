"""Oxygen requests through the emulator: the cadre's form (with bad input), the duty
officer's buttons, everybody's copy kept up to date, escalation, forged buttons."""

from __future__ import annotations

from datetime import timedelta

from sqlmodel import select

from models import AuditEntry, OxygenRequest, OxygenStatus, Role
from services import clock, oxygen, people, roster
from services.oxygen import OxygenConfig
from tests.support import factories

NO_SCHEDULE = {"assignment_start": None}


def team(bot):
    bot.db.call(people.set_language, 9001, "en")
    cadre = factories.person(bot.db, 1001, real_name="Li Wei", language="en")
    duty = factories.person(
        bot.db, 2001, role=Role.DUTY_OFFICER, real_name="Zhou Duty", language="en", **NO_SCHEDULE
    )
    other = factories.person(
        bot.db,
        2002,
        role=Role.DUTY_OFFICER,
        real_name="Aba Duty",
        prefecture="aba",
        county="aba.barkam",
        language="en",
        **NO_SCHEDULE,
    )
    return cadre, duty, other


async def ask_for_oxygen(user, *, urgency: str = "Urgent: needed now"):
    await user.send("/oxygen")
    await user.wait_for("What do you need?")
    await user.press("Oxygen cylinder")
    await user.wait_for("Where?")
    await user.send("x" * 120)
    await user.wait_for("at most 100 characters")
    await user.wait_for("Where?")
    await user.send("County dormitory <b>3</b>")
    await user.wait_for("How urgent is it?")
    await user.press(urgency)
    check = await user.wait_for("Please check")
    assert "County dormitory <b>3</b>" in check.text  # user text shown as typed
    await user.press("📨 Send")
    return await user.wait_for("Oxygen request #")


async def test_a_request_is_acknowledged_and_delivered_and_the_cadre_sees_each_step(bot):
    _, duty_p, _ = team(bot)
    bot.db.call(roster.go_on_duty, duty_p, 8)
    user = bot.user(1001, "Li", language_code="en")
    duty = bot.user(2001, "Zhou", language_code="en")
    await duty.send("/help")
    await duty.next_message()
    sent = await ask_for_oxygen(user)
    assert "press 🆘 or call 120" in sent.text
    assert "schedule reminder" not in sent.text  # a request, not a reminder (#12 point 10)
    notice = await duty.wait_for("Oxygen request #", timeout=10)
    assert "Li Wei" in notice.text and "Oxygen cylinder" in notice.text
    assert "County dormitory <b>3</b>" in notice.text  # shown as typed, not as markup
    await duty.press("✅ Acknowledge", message=notice)
    assert "Acknowledged" in (await duty.callback_answer()).text
    await duty.wait_edit(notice, "acknowledged by Zhou Duty", timeout=10)
    labels = [b["text"] for row in notice.reply_markup["inline_keyboard"] for b in row]
    assert labels == ["📦 Delivered"]
    told = await user.wait_for("has been acknowledged", timeout=10)
    assert "Zhou Duty" in told.text
    await user.send("/oxygen")
    status = await user.wait_for("My oxygen requests")
    assert "acknowledged by Zhou Duty" in status.text
    await duty.press("📦 Delivered", message=notice)
    await duty.callback_answer()
    await user.wait_for("was marked delivered", timeout=10)
    await duty.wait_edit(notice, "marked delivered", timeout=10)
    with bot.db.session() as s:
        request = s.exec(select(OxygenRequest)).one()
    assert request.status == OxygenStatus.DELIVERED


async def test_an_urgent_request_nobody_takes_escalates_to_everyone(bot):
    _, duty_p, _ = team(bot)
    bot.db.call(roster.go_on_duty, duty_p, 8)
    user = bot.user(1001, "Li", language_code="en")
    admin = bot.admin(language_code="en")
    await admin.send("/help")
    await admin.next_message()
    await ask_for_oxygen(user)
    config = OxygenConfig.from_settings(bot.settings)
    later = clock.now() + config.escalation + timedelta(seconds=1)
    escalated = bot.db.call(oxygen.escalate_due, later, config)
    assert len(escalated) == 1
    shout = await admin.wait_for("nobody acknowledged it", timeout=10)
    assert "Li Wei" in shout.text
    await user.wait_for("every duty officer and administrator has been told", timeout=10)
    await admin.press("✅ Acknowledge", message=shout)
    assert "Acknowledged" in (await admin.callback_answer()).text
    # #12 point 10: once taken, the card no longer says nobody acknowledged it
    taken = await admin.wait_edit(shout, "acknowledged by", timeout=10)
    assert "nobody acknowledged" not in taken.text and taken.text.startswith("🫁")
    await admin.press("📦 Delivered", message=shout)
    await admin.callback_answer()
    done = await admin.wait_edit(shout, "✅ marked delivered", timeout=10)
    assert "nobody acknowledged" not in done.text and "⚠️" not in done.text


async def test_the_request_confirmation_carries_no_schedule_disclaimer_in_chinese(bot):
    team(bot)
    bot.db.call(people.set_language, 1001, "zh-Hans")
    user = bot.user(1001, "Li")
    await user.send("/oxygen")
    await user.wait_for(lambda m: "cf:ox:w:" in str(m.reply_markup))
    await user.press("氧气瓶")
    await user.wait_for(lambda m: "cf:ox:p:" in str(m.reply_markup))
    await user.send("县委宿舍 3 号楼")
    await user.wait_for(lambda m: "cf:ox:u:" in str(m.reply_markup))
    await user.press("今天内")
    await user.wait_for(lambda m: "cf:ox:ok" in str(m.reply_markup))
    await user.press("📨 发送")
    sent = await user.wait_for("已发送供氧申请")
    assert "随时可以下撤到低海拔处" in sent.text and "🆘" in sent.text
    assert "日程提醒" not in sent.text and "不构成" not in sent.text


async def test_other_areas_and_forged_buttons_are_refused_and_bad_input_changes_nothing(bot):
    team(bot)
    user = bot.user(1001, "Li", language_code="en")
    other = bot.user(2002, "Aba", language_code="en")
    await ask_for_oxygen(user, urgency="Today")
    with bot.db.session() as s:
        request = s.exec(select(OxygenRequest)).one()
    await other.send("/oxygen")
    await other.wait_for("What do you need?")  # nothing of theirs and nothing in Aba
    await other.send("/cancel")
    await other.wait_for("Cancelled")
    await other.press_forged(f"ox:ack:{request.id}")
    assert "not valid" in (await other.callback_answer()).text
    await user.press_forged(f"ox:ack:{request.id}")  # a cadre cannot handle requests
    await user.callback_answer()
    await other.press_forged(f"ox:cxl:{request.id}")  # nor cancel someone else's
    assert "not valid" in (await other.callback_answer()).text
    with bot.db.session() as s:
        assert s.get(OxygenRequest, request.id).status == OxygenStatus.OPEN
        denied = s.exec(select(AuditEntry).where(AuditEntry.outcome == "denied")).all()
    assert len(denied) >= 3

    await user.send("/oxygen")
    mine = await user.wait_for("My oxygen requests")
    await user.press(f"✖️ Cancel #{request.id}", message=mine)
    await user.wait_for(f"Oxygen request #{request.id} cancelled")
    await user.send("/oxygen")  # nothing in progress: a new request starts at once
    await user.wait_for("My oxygen requests")
    await user.press("🫁 New oxygen request")
    await user.wait_for("What do you need?")
    await user.send("a cylinder please")
    await user.wait_for("Please tap a button")
    await user.send_photo(b"\x89PNG\r\n\x1a\n" + b"0" * 64)
    await user.wait_for("Please tap a button")
    await user.send("/cancel")
    await user.wait_for("Cancelled; nothing was changed")
    with bot.db.session() as s:
        assert len(s.exec(select(OxygenRequest)).all()) == 1


async def test_a_fourth_request_in_progress_is_refused_politely(bot):
    cadre_p, _, _ = team(bot)
    config = OxygenConfig.from_settings(bot.settings)
    for _ in range(oxygen.MAX_OPEN):
        bot.db.call(oxygen.create_request, cadre_p.id, "cylinder", "Office", "days", config)
    user = bot.user(1001, "Li", language_code="en")
    await user.send("/oxygen")
    mine = await user.wait_for("My oxygen requests")
    await user.press("🫁 New oxygen request", message=mine)
    await user.wait_for("What do you need?")
    await user.press("Oxygen cylinder")
    await user.wait_for("Where?")
    await user.press("Office")
    await user.wait_for("How urgent is it?")
    await user.press("Today")
    await user.wait_for("Please check")
    await user.press("📨 Send")
    await user.wait_for("You already have 3 oxygen requests in progress")
    with bot.db.session() as s:
        assert len(s.exec(select(OxygenRequest)).all()) == oxygen.MAX_OPEN
