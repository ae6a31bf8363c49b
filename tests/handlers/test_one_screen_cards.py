"""One screen per message (issue 16, point 7) for the duty officer's alert card at its
longest: a RED check-in with its reasons, readings and note, an SOS pressed after it with a
category, a description and a location, two emergency contacts, escalated to round 2 while
nobody acknowledges; and an unverified caller's SOS, which starts escalated. The card is one phone
screen in both languages, keeps who, where, what, the phone and ✋, and «ℹ️ Details» sends
what it leaves out (the emergency contacts, the last check-in with its readings)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
import time_machine

from models import EmergencyContact
from services import people
from services.i18n import plain_text, t
from tests.support import factories
from tests.support.checkin_helpers import finish_vitals, start_checkin, walk_to_vitals
from tests.support.screens import SCREEN, lines_on_phone, page_button, too_long
from tests.support.sos_support import (
    CADRE,
    OFF_DUTY,
    ON_DUTY,
    emergency_running,
    sos_described,
    staff,
)

pytestmark = pytest.mark.asyncio

GUEST = 4242
NOTE = "dizzy since the pass, headache all night"
WHAT = "fell on the ice behind the dormitory, cannot stand up, left leg"


def _with_second_contact(bot) -> None:
    with bot.db.session() as s:
        cadre = people.find(s, CADRE)
        assert cadre is not None and cadre.id is not None
        s.add(EmergencyContact(person_id=cadre.id, name="Li Ming", phone="+8613700137000"))
        s.commit()


def _speaking(bot, lang: str) -> None:
    for telegram_id in (CADRE, ON_DUTY, OFF_DUTY, factories.ADMIN_ID):
        bot.db.call(people.set_language, telegram_id, lang)


async def _escalate(bot, clock, officer, lang: str):
    """Past the first round's timeout: round 2 reaches the on-duty officer again."""
    clock.shift(181)
    await bot.timers.sos.escalate()
    round2 = plain_text(t(lang, "sos.alert.escalated", stage=2))
    return await officer.wait_for(lambda m: round2 in (m.text or ""), timeout=10)


async def _details(officer, card):
    data = next(
        b["callback_data"] for b in card.buttons if b["callback_data"].startswith("sos:info:")
    )
    await officer.press(data, message=card)
    await officer.callback_answer()
    title = card.text.split("\n")[0]
    return await officer.wait_for(
        lambda m: m is not card and not m.buttons and (m.text or "").startswith(title), timeout=10
    )


async def _timeline(officer, card) -> list[str]:
    """🕑 under the card: the timeline, then each page through «More ▶», in place."""
    data = next(
        b["callback_data"] for b in card.buttons if b["callback_data"].startswith("sos:tl:")
    )
    await officer.press(data, message=card)
    await officer.callback_answer()
    shown = await officer.wait_for(lambda m: "sos:tlcsv:" in str(m.reply_markup), timeout=10)
    pages = [shown.text]
    while (more := page_button(shown)) is not None:
        await officer.press(more, message=shown)
        await officer.callback_answer()
        shown = await officer.wait_edit(shown)
        pages.append(shown.text)
        assert len(pages) <= 10
    return pages


@pytest.mark.parametrize("lang", ["en", "zh-Hans"])
async def test_an_escalated_red_check_in_then_sos_card_is_one_screen_details_one_tap_away(
    bot, lang
):
    staff(bot.db)
    _with_second_contact(bot)
    _speaking(bot, lang)
    cadre = bot.user(CADRE, "Li", language_code=lang)
    officer = bot.user(ON_DUTY, "Zhang", language_code=lang)
    with time_machine.travel(datetime.now(UTC), tick=True) as clock:
        async with emergency_running(bot):
            await start_checkin(cadre)
            await walk_to_vitals(cadre, lls=(2, 1, 1, 0), functional=1)
            await finish_vitals(cadre, spo2="70", hr="124", note=NOTE)
            await officer.wait_for(lambda m: "Li Wei" in (m.text or ""), timeout=10)
            await sos_described(cadre, officer, lang, "injury", WHAT)
            card = await _escalate(bot, clock, officer, lang)
            details = await _details(officer, card)
            timeline = await _timeline(officer, card)
    assert too_long(bot) == []
    assert len(timeline) >= 2  # this journey makes a long timeline: paged
    everything = "\n".join(timeline)
    assert all(lines_on_phone(page) <= SCREEN for page in timeline), timeline
    for event in ("sos.tl.details", "sos.tl.location"):  # every event, page by page
        assert plain_text(t(lang, event, actor="Li Wei")) in everything
    assert all(page.startswith(card.text.split("\n")[0]) for page in timeline)  # each headed
    shown = card.text
    assert lines_on_phone(shown) <= SCREEN, shown
    # who, where, what, the phone, and ✋
    for needed in ("Li Wei", "4014", WHAT, "+8613800138000", "30.00000"):
        assert needed in shown, needed
    assert any(b["callback_data"].startswith("sos:ack:") for b in card.buttons)
    assert plain_text(t(lang, "sos.category.injury")) in shown
    assert plain_text(t(lang, "health.reason.lls_mild")) in shown  # the first reason
    # nothing lost: the contacts and the last check-in (its readings, its note) follow
    assert lines_on_phone(details.text) <= SCREEN, details.text
    for needed in ("Wang Fang +8613900139000", "Li Ming +8613700137000", "70%", "124", NOTE):
        assert needed in details.text, needed
    # the cadre's RED result: what to do first, every reason in the follow-up (Why:)
    told = "\n".join(m.text or "" for m in cadre.bot_messages)
    for reason in ("lls_mild", "spo2_very_low", "hr_high"):
        assert plain_text(t(lang, f"health.reason.{reason}")) in told
    for reason in ("lls_mild", "spo2_very_low", "hr_high"):  # every reason
        assert plain_text(t(lang, f"health.reason.{reason}")) in details.text
    assert "+8613900139000" not in shown


@pytest.mark.parametrize("lang", ["en", "zh-Hans"])
async def test_an_unverified_callers_card_is_one_screen(bot, lang):
    staff(bot.db)
    _speaking(bot, lang)
    officer = bot.user(ON_DUTY, "Zhang", language_code=lang)
    guest = bot.user(GUEST, "Stranger Danger", language_code=lang, username="stranger_danger")
    async with emergency_running(bot):
        await sos_described(guest, officer, lang, "altitude", WHAT)
        # a caller the bot does not know reaches every officer and admin at once
        escalated = plain_text(t(lang, "sos.alert.escalated", stage=3))
        (card,) = [m for m in officer.bot_messages if escalated in (m.text or "")]
        details = await _details(officer, card)
    assert too_long(bot) == []
    assert lines_on_phone(card.text) <= SCREEN, card.text
    assert any(b["callback_data"].startswith("sos:ack:") for b in card.buttons)
    for needed in ("Stranger Danger", "@stranger_danger", "30.00000"):
        assert needed in card.text, needed  # (what they wrote is relayed below the card)
    assert plain_text(t(lang, "sos.alert.no_details")) in details.text
