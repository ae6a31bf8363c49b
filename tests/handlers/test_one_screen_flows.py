"""One screen per message, measured where the bot builds a message from several catalog
texts (issue 16, point 7): an SOS and the officer's card, a RED and an AMBER check-in and
what the officer gets, /help for every role with every task page, the consent, the care
schedule and the oxygen requests. Every message the bot sends in these journeys, to anyone,
is at most 12 phone lines; the full consent text, sent only on request, is the one
exception."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from handlers import menus
from models import Role, Status
from services import people, roster
from services.i18n import plain_text, t
from tests.support import factories
from tests.support.checkin_helpers import finish_vitals, markup_has, start_checkin, walk_to_vitals
from tests.support.screens import SCREEN, lines_on_phone, too_long
from tests.support.sos_support import CADRE, ON_DUTY, emergency_running, sos_described, staff

pytestmark = pytest.mark.asyncio


@pytest.mark.parametrize("lang", ["en", "zh-Hans"])
async def test_an_sos_and_the_officers_card_each_fit_one_screen(bot, lang):
    staff(bot.db)
    bot.db.call(people.set_language, CADRE, lang)
    cadre = bot.user(CADRE, "Li", language_code=lang)
    officer = bot.user(ON_DUTY, "Zhang", language_code=lang)
    async with emergency_running(bot):
        what = "headache and vomiting since the pass, in the dormitory"
        await sos_described(cadre, officer, lang, "altitude", what)
        guest = bot.user(4242, "Stranger Danger", language_code=lang)  # unverified
        await guest.send("/sos")
        await bot.emulator.world.signal.wait_for(
            lambda: any(
                "4242" in (m.content or "") or "Stranger" in (m.content or "")
                for m in bot.emulator.world.chats[ON_DUTY].messages.values()
            ),
            10,
        )
    assert too_long(bot) == []


@pytest.mark.parametrize("lang", ["en", "zh-Hans"])
async def test_red_and_amber_check_ins_fit_one_screen(bot, lang):
    staff(bot.db)
    bot.db.call(people.set_language, CADRE, lang)
    cadre = bot.user(CADRE, "Li", language_code=lang)
    bot.user(ON_DUTY, "Zhang", language_code=lang)
    async with emergency_running(bot):
        await start_checkin(cadre)
        await cadre.press("ci:feeling:unwell")
        await cadre.wait_for(markup_has("ci:flags:none"))
        await cadre.press("ci:flags:breathless_rest")
        await cadre.wait_for("120")
        await bot.emulator.world.signal.wait_for(
            lambda: len(bot.emulator.world.chats[ON_DUTY].messages) >= 2, 10
        )
        await start_checkin(cadre)
        await cadre.press("ci:feeling:not_well")
        await walk_to_vitals(cadre, lls=(2, 1, 1, 0), functional=1)
        await finish_vitals(cadre, spo2="84", hr="104", note="dizzy since the pass")
        await cadre.wait_for("🟠")
    assert too_long(bot) == []


@pytest.mark.parametrize("lang", ["en", "zh-Hans"])
@pytest.mark.parametrize("role", [Role.CADRE, Role.DUTY_OFFICER, Role.ADMIN, Role.CONTACT])
async def test_help_is_one_screen_and_every_task_page_too(bot, role, lang):
    if role == Role.ADMIN:
        bot.db.call(people.set_language, factories.ADMIN_ID, lang)
        user = bot.admin(language_code=lang)
    else:
        factories.person(bot.db, 1001, role=role, language=lang)
        user = bot.user(1001, "Li", language_code=lang)
    await user.send("/help")
    first = await user.next_message()
    assert "keyboard" in (first.reply_markup or {})  # 🆘 and 📝 stay at hand
    tasks = menus.help_tasks(SimpleNamespace(status=Status.ACTIVE, role=role))
    if len(tasks) > 1:
        more = await user.next_message()
        pages = [b["callback_data"] for b in more.buttons]
        assert pages == [f"hp:{task}" for task in tasks] + ["hp:terms"]
        shown = set()
        for page in pages:
            await user.press(page, message=more)
            await user.callback_answer()
            edited = await user.wait_edit(more)
            shown |= {word[1:] for word in edited.text.split() if word.startswith("/")}
            await user.press("hp:home", message=edited)
            await user.callback_answer()
            await user.wait_edit(more)
            assert lines_on_phone(edited.text) <= SCREEN, page
        assert set(menus.commands_for(SimpleNamespace(status=Status.ACTIVE, role=role))) <= shown
    assert too_long(bot) == []


async def test_a_forged_help_page_shows_only_the_persons_own_commands(bot):
    factories.person(bot.db, 1001, language="en")
    user = bot.user(1001, "Li", language_code="en")
    await user.send("/help")
    await user.next_message()
    more = await user.next_message()
    await user.press_forged("hp:people", message=more)  # an admin's task
    await user.callback_answer()
    await user.press("hp:health", message=more)
    await user.callback_answer()
    health = await user.wait_edit(more)
    assert "/checkin" in health.text
    assert all("/people" not in m.content for m in user.bot_messages)


async def test_the_consent_is_one_screen_and_its_full_text_one_tap_away(bot):
    user = bot.user(1002, "Wei", language_code="en")
    await user.send("/start")
    await user.wait_for("choose your language")
    await user.press("English")
    consent = await user.wait_for("Separate consent")
    await user.press("f:consent:full", message=consent)
    full = await user.wait_for("PIPL")
    assert "retention period" in full.text
    await user.press("f:consent:yes", message=consent)
    await user.wait_for("real name")
    assert too_long(bot) == []


async def test_the_care_schedule_and_the_oxygen_requests_fit_one_screen(bot):
    factories.person(bot.db, 1001, language="en", assignment_start="2026-10-27")
    duty = factories.person(bot.db, 2001, role=Role.DUTY_OFFICER, language="en")
    bot.db.call(roster.go_on_duty, duty, 8)
    user = bot.user(1001, "Li", language_code="en")
    await user.send("/schedule")
    await user.wait_for("My care schedule")
    for number in range(3):
        await user.send("/oxygen")
        if number:  # the requests so far, and a button for a new one
            await user.press("ox:new", message=await user.wait_for("My oxygen requests"))
        await user.wait_for("What do you need?")
        await user.press("cf:ox:w:cylinder")
        await user.wait_for("Where?")
        await user.send("County guest house, building 3, room 305")
        await user.wait_for("How urgent")
        await user.press("cf:ox:u:today")
        await user.wait_for("Please check")
        await user.press("cf:ox:ok")
        await user.wait_for("Oxygen request #")
    await user.send("/oxygen")
    await user.wait_for("My oxygen requests")
    assert too_long(bot) == []


@pytest.mark.parametrize("lang", ["en", "zh-Hans"])
async def test_the_care_policy_table_is_one_screen_and_each_band_opens_in_full(bot, lang):
    bot.db.call(people.set_language, factories.ADMIN_ID, lang)
    admin = bot.admin(language_code=lang)
    await admin.send("/carepolicy")
    table = await admin.wait_for(t(lang, "care.band.high"))
    assert lines_on_phone(table.text) <= SCREEN, table.text
    assert all(t(lang, f"care.band.{band}") in table.text for band in ("low", "mid", "high"))
    await admin.press(t(lang, "care.band.high"))
    card = await admin.wait_edit(table)
    assert lines_on_phone(card.text) <= SCREEN, card.text
    # what the table leaves out is on the band's card: the rest's length, the first exam
    days = t(lang, "care.policy.days", count=14)
    assert card.text.count(plain_text(days)) >= 2
    assert too_long(bot) == []


@pytest.mark.parametrize("lang", ["en", "zh-Hans"])
async def test_a_persons_card_and_the_suspend_question_are_one_screen(bot, lang):
    cadre = factories.person(
        bot.db,
        2101,
        real_name="Zhuoma Ciren Lhamo",
        home_unit="杭州市卫生健康委员会（办公室）"
        if lang == "zh-Hans"
        else "Hangzhou Health Commission",
    )
    bot.db.call(people.set_language, factories.ADMIN_ID, lang)
    admin = bot.admin(language_code=lang)
    await admin.send("/people")
    listing = await admin.wait_for(lambda m: bool(m.buttons))
    await admin.press(f"ppl:c:{cadre.id}", message=listing)
    card = await admin.wait_edit(listing, lambda m: "ppl:back" in str(m.reply_markup))
    assert plain_text(t(lang, "people.card.areas", areas="-")) not in card.text  # a cadre's
    await admin.press(f"ppl:sus:{cadre.id}", message=card)
    asked = await admin.wait_edit(card, lambda m: "ppl:susy" in str(m.reply_markup))
    assert lines_on_phone(asked.text) <= SCREEN, asked.text
    assert "Zhuoma Ciren Lhamo" in asked.text and "🆘" in asked.text
    assert too_long(bot) == []
