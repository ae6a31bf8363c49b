"""The check-in through the emulator, as a cadre on a phone does it: in Chinese and
English, with bad input at every step, a red flag mid-form and a restart mid-form."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from sqlmodel import select

from models import Alert, AuditEntry, CheckIn, OutboxMessage, Role
from models.health import Tier
from services.health import reminders
from services.i18n import t
from tests.support.checkin_helpers import (
    CHART_WAIT,
    CONFIG,
    amber_tomorrow_at_0830,
    delivery_running,
    finish_vitals,
    make_person,
    markup_has,
    officer,
    start_checkin,
    walk_to_vitals,
)


def stored(db) -> list[CheckIn]:
    with db.session() as s:
        return list(s.exec(select(CheckIn).order_by(CheckIn.id)))


async def test_an_english_check_in_with_buttons_and_typed_values_is_green(bot):
    make_person(bot.db, 1001)
    user = bot.user(1001, "Li", language_code="en")
    await start_checkin(user)
    first = user.bot_messages[-1]
    assert "under a minute" in first.text and "/cancel" in first.text
    await walk_to_vitals(user)
    await finish_vitals(user, spo2="ci:spo2:88", hr="76", temp="36.6", bp="118/76", note="all good")
    result = await user.wait_for("Thank you")
    assert "This is not a diagnosis" in result.text
    assert "at 4014 m, healthy newcomers usually have about 84%" in result.text
    assert [b["text"] for b in user.reply_keyboard[0]] == ["🆘 SOS", "📝 Check-in"]
    (row,) = stored(bot.db)
    assert (row.spo2, row.heart_rate, row.temperature_c, row.systolic, row.diastolic) == (
        88,
        76,
        36.6,
        118,
        76,
    )
    assert (row.note, row.tier, row.feeling, row.lls_total) == ("all good", Tier.GREEN, "fine", 0)


async def test_a_chinese_check_in_from_the_keyboard_button_is_amber_with_advice(bot):
    arrived = datetime.now(UTC).date() - timedelta(days=2)  # a recent ascent: AMS can apply
    make_person(bot.db, 1002, "王小明", language="zh-Hans", start=arrived)
    user = bot.user(1002, "小明")
    await user.send("📝 健康打卡")
    question = await user.wait_for("今天您感觉怎么样")
    assert "这不是医学诊断" not in question.text
    labels = [b["text"] for row in question.inline_keyboard for b in row]
    assert labels == ["😊 感觉良好", "😐 有点不舒服", "🤒 很不舒服"]
    await user.press("😐 有点不舒服")
    flags = await user.wait_for("现在")
    assert "走不了直线（脚跟贴脚尖走路不稳）" in str(flags.inline_keyboard)
    await user.press("✅ 以上都没有")
    await user.wait_for("咳嗽")
    await user.press("没有")
    levels = await user.wait_for("头痛")
    assert [b["text"] for row in levels.inline_keyboard for b in row] == [
        "0 无",
        "1 轻度",
        "2 中度",
        "3 重度（无法正常活动）",
    ]
    await user.press("ci:headache:1")
    gi = await user.wait_for("胃肠道症状")
    assert "1 食欲差或恶心" in str(gi.inline_keyboard)
    await user.press("ci:gi:1")
    await user.wait_for("疲乏和/或无力")
    await user.press("ci:fatigue:1")
    await user.wait_for("头晕/头重脚轻")
    await user.press("ci:dizziness:0")
    functional = await user.wait_for("影响有多大")
    assert "2 不得不停下来，自己下撤" in str(functional.inline_keyboard)
    await user.press("ci:functional:1")
    await user.wait_for(markup_has("ci:spo2:none"))
    await finish_vitals(user, spo2="８６", hr="ci:hr:80", temp="36.7℃", bp="ci:bp:none")
    result = await user.wait_for("需要注意")  # what it means and what to do: one screen
    for expected in ("轻度高原反应症状（有头痛）", "吸氧", "120"):
        assert expected in result.text
    figures = await user.next_message()  # then when to check again, and the figures
    for expected in ("再测一次", "这不是医学诊断", "急性高原病"):
        assert expected in figures.text
    (row,) = stored(bot.db)
    assert (row.tier, row.lls_total, row.spo2, row.temperature_c, row.ams) == (
        Tier.AMBER,
        3,
        86,
        36.7,
        True,
    )


BUTTON_STEPS = ["feeling", "flags", "cough", "headache", "gi", "fatigue", "dizziness", "functional"]


@pytest.mark.parametrize("lang", ["en", "zh-Hans"])
async def test_bad_input_at_every_step_is_refused_politely_and_asked_again(bot, lang):
    make_person(bot.db, 1003, language=lang)
    user = bot.user(1003, "Bad", language_code="en" if lang == "en" else "zh-hans")
    await start_checkin(user)
    answers = {
        "feeling": "ci:feeling:not_well",
        "flags": "ci:flags:none",
        "cough": "ci:cough:yes",
        "headache": "ci:headache:1",
        "gi": "ci:gi:0",
        "fatigue": "ci:fatigue:1",
        "dizziness": "ci:dizziness:0",
        "functional": "ci:functional:1",
    }
    for step in BUTTON_STEPS:
        await user.send("<b>hello</b> & 😀")
        refusal = await user.next_message()
        assert refusal.text == t(lang, "health.use_buttons")
        again = await user.next_message()
        assert f"ci:{step}:" in str(again.reply_markup)
        await user.press(answers[step])
        await user.wait_for(
            markup_has(f"ci:{BUTTON_STEPS[BUTTON_STEPS.index(step) + 1]}:")
            if step != "functional"
            else markup_has("ci:spo2:none")
        )
    typed = [
        ("spo2", ["abc", "49", "101", "9 3", "-5"], {"low": 50, "high": 100}, "91", "hr"),
        ("hr", ["fast", "29", "221", "7.5"], {"low": 30, "high": 220}, "96", "temp"),
        (
            "temp",
            ["98.6", "36.55", "hot", "33.9", "43.1"],
            {"low": 34.0, "high": 43.0},
            "37.0",
            "bp",
        ),
        ("bp", ["80/90", "300/100", "120", "120/35", "abc/def"], {}, "125/82", "note"),
    ]
    for step, bad_values, values, good, following in typed:
        for bad in bad_values:
            await user.send(bad)
            refusal = await user.next_message()
            assert refusal.text == t(lang, f"health.invalid.{step}", **values), bad
            again = await user.next_message()
            assert f"ci:{step}:none" in str(again.reply_markup)
        await user.send(good)
        await user.wait_for(markup_has(f"ci:{following}:none"))
    await user.send("x" * 201)
    refusal = await user.next_message()
    assert refusal.text == t(lang, "health.invalid.note_long", max=200)
    await user.next_message()
    assert stored(bot.db) == []  # nothing is stored before the end
    await user.send("<script>alert(1)</script> & more")
    result = await user.wait_for(lambda m: t(lang, "health.disclaimer") in m.text)
    (row,) = stored(bot.db)
    assert (row.spo2, row.heart_rate, row.temperature_c, row.systolic) == (91, 96, 37.0, 125)
    assert row.note == "<script>alert(1)</script> & more"
    assert result.text  # the emulator parsed the reply as valid HTML


async def test_stale_and_forged_buttons_change_nothing(bot):
    make_person(bot.db, 1004)
    user = bot.user(1004, "Li", language_code="en")
    await start_checkin(user)
    first = user.bot_messages[-1]
    await user.press("ci:feeling:fine")
    await user.wait_for(markup_has("ci:flags:none"))
    await user.press_forged("ci:feeling:unwell", message=first)  # an old question
    answer = await user.callback_answer()
    assert answer.show_alert and "out of date" in answer.text
    await user.press_forged("ci:flags:nonsense")
    assert "out of date" in (await user.callback_answer()).text
    await user.press_forged("ci:spo2:55")  # not the current question
    assert "out of date" in (await user.callback_answer()).text
    await user.press("ci:flags:none")
    await user.wait_for(markup_has("ci:cough:no"))
    assert stored(bot.db) == []
    with bot.db.session() as s:
        (forged,) = s.exec(select(AuditEntry).where(AuditEntry.action == "denied.checkin")).all()
    assert forged.detail == {"reason": "forged", "attempted": "ci:flags:nonsense"}


async def test_a_red_flag_mid_form_ends_it_and_the_on_duty_officer_receives_the_alert(bot):
    cadre = make_person(bot.db, 1005, "Li Wei")
    duty = officer(bot.db, 5001, language="en")
    officer_user = bot.user(5001, "Zhao", language_code="en")
    user = bot.user(1005, "Li", language_code="en")
    async with delivery_running(bot):
        await start_checkin(user)
        await user.press("ci:feeling:unwell")
        await user.wait_for(markup_has("ci:flags:none"))
        await user.press("Breathless even at rest")
        result = await user.wait_for("act now")
        for expected in (
            "Breathless at rest",
            "120",
            "oxygen",
            "Go down",
            "SOS",
            "duty officer has been alerted",
        ):
            assert expected in result.text
        assert "not a diagnosis" in (await user.next_message()).text
        alert = await officer_user.wait_for(lambda m: "Li Wei" in m.text, timeout=10)
        assert alert.text
    (row,) = stored(bot.db)
    assert (row.tier, row.complete, row.red_flags) == (Tier.RED, False, ["breathless_rest"])
    assert row.spo2 is None and row.lls_total is None  # nothing else was asked
    with bot.db.session() as s:
        (raised,) = s.exec(select(Alert)).all()
    assert (raised.person_id, raised.cause) == (cadre.id, "checkin_red")
    assert duty.id != cadre.id


async def test_amber_does_not_alert_the_officer_until_it_persists_24_hours(bot):
    async with amber_tomorrow_at_0830(bot) as (officer_user, traveller, start):
        traveller.move_to(start + timedelta(hours=23))
        await bot.db.run(reminders.run_pass, CONFIG)
        traveller.move_to(start + timedelta(hours=24, minutes=1))
        await bot.db.run(reminders.run_pass, CONFIG)
        notice = await officer_user.wait_for("AMBER for 24 hours", timeout=10)
        assert "Li Wei" in notice.text and "not a diagnosis" in notice.text
        earlier = [m for m in officer_user.bot_messages if "AMBER" in m.text]
        assert earlier == [notice]  # nothing before the 24 hours
        await officer_user.press("📈 30-day chart", message=notice)
        chart = await officer_user.wait_for(lambda m: m.photo is not None, timeout=CHART_WAIT)
        assert "Li Wei" in chart.caption


async def test_a_restart_mid_form_loses_nothing(bot):
    make_person(bot.db, 1007)
    user = bot.user(1007, "Li", language_code="en")
    await start_checkin(user)
    await walk_to_vitals(user, lls=(1, 0, 0, 0))
    await user.send("90")
    await user.wait_for(markup_has("ci:hr:none"))
    await bot.restart()
    await user.send("72")
    await user.wait_for(markup_has("ci:temp:none"))
    await user.press("ci:temp:36.3")
    await user.wait_for(markup_has("ci:bp:none"))
    await bot.restart()
    await user.press("ci:bp:none")
    await user.wait_for(markup_has("ci:note:none"))
    await user.press("ci:note:none")
    await user.wait_for("Thank you")
    (row,) = stored(bot.db)
    assert (row.headache, row.spo2, row.heart_rate, row.temperature_c) == (1, 90, 72, 36.3)


async def test_checkin_again_mid_form_resumes_and_cancel_saves_nothing(bot):
    make_person(bot.db, 1008)
    user = bot.user(1008, "Li", language_code="en")
    await start_checkin(user)
    await user.press("ci:feeling:fine")
    await user.wait_for(markup_has("ci:flags:none"))
    await user.send("/checkin")
    await user.wait_for("Continuing your check-in")
    assert "ci:flags:none" in str((await user.next_message()).reply_markup)
    await user.send("/cancel")
    cancelled = await user.wait_for("cancelled")
    assert "nothing was saved" in cancelled.text
    assert stored(bot.db) == []


async def test_an_abandoned_check_in_expires_with_a_message(bot):
    make_person(bot.db, 1009)
    user = bot.user(1009, "Li", language_code="en")
    await start_checkin(user)
    await user.press("ci:feeling:fine")
    await user.wait_for(markup_has("ci:flags:none"))
    await bot.stop()  # the in-memory timeout is gone: the stored time decides
    with time_machine.travel(datetime.now(UTC) + timedelta(hours=1), tick=True):
        await bot.start()
        await user.press("ci:flags:none")
        expired = await user.wait_for("expired")
        assert "nothing was saved" in expired.text
    assert stored(bot.db) == []


async def test_people_who_may_not_check_in_are_refused_and_audited(bot):
    contact = make_person(bot.db, 1010, role=Role.CONTACT)
    user = bot.user(1010, "Contact", language_code="en")
    for command in ("/checkin", "/history", "/trend", "/reminders"):
        await user.send(command)
        refusal = await user.next_message()
        assert "ci:" not in str(refusal.reply_markup)
    stranger = bot.user(1011, "Stranger", language_code="en")
    await stranger.send("/checkin")
    await stranger.next_message()
    with bot.db.session() as s:
        denied = s.exec(select(AuditEntry).where(AuditEntry.action == "denied.checkin")).all()
    assert {d.actor_telegram_id for d in denied} == {1010, 1011}
    assert contact.role == Role.CONTACT


async def test_the_cadre_menu_offers_the_health_commands(bot):
    make_person(bot.db, 1012, language="zh-Hans")
    user = bot.user(1012, "Li")
    await user.send("/checkin")
    await user.wait_for(markup_has("ci:feeling:fine"))
    from handlers import menus
    from services import people

    person = bot.db.call(people.find, 1012)
    await menus.set_person_menu(bot.app.bot, person, bot.settings.webapp_url)
    menu = {c["command"]: c["description"] for c in user.commands()}
    assert menu["checkin"] == "每日健康打卡（不到一分钟）"
    assert {"history", "trend", "reminders"} <= set(menu) and "today" not in menu


async def test_the_reminder_button_starts_the_check_in(bot):
    make_person(bot.db, 1013, start=None)
    user = bot.user(1013, "Li", language_code="en")
    await user.send("/help")  # a bot can only write to people who started it
    await user.next_message()
    day_after = datetime.now(UTC) + timedelta(days=2)  # monitoring starts the day after joining
    tomorrow_nine = day_after.replace(hour=1, minute=0, second=0, microsecond=0)  # 09:00 local
    with time_machine.travel(tomorrow_nine + timedelta(minutes=1), tick=True):
        async with delivery_running(bot):
            await bot.timers.health.run_pass()
            reminder = await user.wait_for("Time for today's health check-in", timeout=10)
            await user.press("📝 Check in now", message=reminder)
            await user.wait_for(markup_has("ci:feeling:fine"))
    with bot.db.session() as s:
        keys = [m.idempotency_key for m in s.exec(select(OutboxMessage))]
    assert len([k for k in keys if k.startswith("health:remind:")]) == 1
