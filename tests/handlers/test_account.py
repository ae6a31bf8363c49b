"""A registered person's own account: /me and its edits, /language, /mydata, /deleteme."""

from __future__ import annotations

import json
from datetime import timedelta

import time_machine
from sqlmodel import select

from models import AuditEntry, Consent, EmergencyContact
from services import clock, people
from tests.support import factories


def registered(bot, telegram_id: int = 1001, language: str = "en", approve: bool = True):
    return factories.person(
        bot.db, telegram_id, approve=approve, language=language, assignment_end=None
    )


async def test_me_shows_the_profile_with_edit_buttons(bot):
    registered(bot)
    user = bot.user(1001, "Li", language_code="en")
    await user.send("/me")
    card = await user.next_message()
    for expected in ("Li Wei", "+8613800138000", "Litang", "4014 m", "Wang Fang", "cadre"):
        assert expected in card.text
    assert "me:edit:posting" in str(card.reply_markup)


async def test_editing_the_name_refuses_bad_input_then_saves(bot):
    registered(bot)
    user = bot.user(1001, "Li", language_code="en")
    await user.send("/me")
    await user.next_message()
    await user.press("me:edit:name")
    await user.wait_for("real name")
    await user.send("<script>")
    assert "A name can contain" in (await user.next_message()).text
    await user.wait_for("real name")
    await user.send("Li Xiaowei")
    saved = await user.wait_for("Saved")
    assert "SOS" in str(saved.reply_markup)  # the main keyboard stays at hand
    assert bot.db.call(people.find, 1001).real_name == "Li Xiaowei"


async def test_moving_to_another_posting_updates_the_altitude(bot):
    registered(bot)
    user = bot.user(1001, "Li", language_code="en")
    await user.send("/me")
    await user.next_message()
    await user.press("me:edit:posting")
    await user.wait_for("Where are you posted?")
    await user.press("f:pref:aba")
    await user.wait_for("choose your county")
    await user.press("f:cty:aba.hongyuan")
    await user.wait_for("no reliable altitude")
    await user.press("f:alt:4000")
    await user.wait_for("Saved")
    person = bot.db.call(people.find, 1001)
    assert (person.prefecture, person.county, person.posting_altitude_m) == (
        "aba",
        "aba.hongyuan",
        4000,
    )


async def test_cancelling_an_edit_changes_nothing(bot):
    person = registered(bot)
    user = bot.user(1001, "Li", language_code="en")
    await user.send("/me")
    await user.next_message()
    await user.press("me:edit:contact")
    await user.wait_for("emergency contact")
    await user.send("/cancel")
    await user.wait_for("unchanged")
    await user.send("/cancel")
    await user.wait_for("nothing to cancel")
    assert bot.db.call(people.emergency_contacts, person.id)[0].name == "Wang Fang"


async def test_switching_language_switches_replies_and_menu(bot):
    registered(bot)
    user = bot.user(1001, "Li", language_code="en")
    await user.send("/language")
    await user.next_message()
    await user.press("中文")
    switched = await user.next_message()
    assert "中文" in switched.text
    # the reply keyboard comes again, in Chinese (it kept its English labels)
    keys = [b["text"] for row in switched.reply_markup["keyboard"] for b in row]
    assert keys == ["🆘 紧急求助", "📝 健康打卡"]
    await user.send("/help")
    assert "派驻干部" in (await user.next_message()).text
    assert "导出我的数据" in [c["description"] for c in user.commands()]


async def test_mydata_sends_everything_stored_as_json(bot):
    registered(bot)
    user = bot.user(1001, "Li", language_code="en")
    await user.send("/mydata")
    message = await user.next_message()
    data = json.loads(message.document.data.decode("utf-8"))
    assert data["person"]["real_name"] == "Li Wei"
    assert data["emergency_contacts"][0]["name"] == "Wang Fang"
    assert data["consents"][0]["purpose"] == "health_data"
    for feature in (
        "health_check_ins",
        "care_schedules",
        "policy_questions",
        "broadcasts_and_messages",
    ):
        assert feature in data


async def test_deleteme_after_confirmation_erases_everything(bot):
    person = registered(bot)
    user = bot.user(1001, "Li", language_code="en")
    await user.send("/deleteme")
    await user.wait_for("Delete all your data?")
    await user.press("Cancel")
    await user.wait_for("nothing was deleted")
    assert bot.db.call(people.find, 1001) is not None
    await user.send("/deleteme")
    await user.wait_for("Delete all your data?")
    await user.press("del:yes")
    await user.wait_for("has been deleted")
    assert bot.db.call(people.find, 1001) is None
    with bot.db.session() as s:
        assert s.exec(select(Consent)).all() == []
        assert s.exec(select(EmergencyContact)).all() == []
        actions = [e.action for e in s.exec(select(AuditEntry))]
    assert "person.deleted" in actions
    await user.send("/me")
    assert "not registered" in (await user.next_message()).text
    assert person.id is not None


async def test_an_abandoned_form_expires_with_a_message(bot):
    registered(bot)
    user = bot.user(1001, "Li", language_code="en")
    await user.send("/me")
    await user.next_message()
    await user.press("me:edit:unit")
    await user.wait_for("home unit")
    later = clock.now() + timedelta(seconds=bot.settings.form_timeout + 60)
    with time_machine.travel(later, tick=True):
        await user.send("Ningbo Health Commission")
        await user.wait_for("has expired")
    assert bot.db.call(people.find, 1001).home_unit == "Hangzhou Health Commission"


async def test_an_admin_from_the_settings_speaks_their_telegram_language_until_they_choose(bot):
    """CADRE_ADMIN_IDS makes an admin before anyone knows their language: their Telegram
    app's language decides (replies and menu) until they pick one with /language."""
    admin = bot.admin(language_code="en")
    await admin.send("/help")
    assert "You are an administrator" in (await admin.next_message()).text
    assert bot.db.call(people.find, 9001).language == "en"
    assert "Export my data" in [c["description"] for c in admin.commands()]
    await admin.send("/language")
    await admin.wait_for(lambda m: "lang:zh-Hans" in str(m.reply_markup))
    await admin.press("中文")
    await admin.wait_for("中文")
    await admin.send("/help")  # chosen: the Telegram app's English no longer decides
    assert "您是管理员" in (await admin.next_message()).text
    assert bot.db.call(people.find, 9001).language == "zh-Hans"
