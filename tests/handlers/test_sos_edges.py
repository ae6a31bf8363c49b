"""The emergency channel at its edges, through the emulator (issue #12, points 1-4): anyone
can call for help, nothing untrue after an SOS, 📍 until the alert is closed, and what the
cadre writes after the close reaches whoever handled it."""

from __future__ import annotations

import time

import pytest
from sqlmodel import select

from models import Alert, AlertEvent, AlertStatus, Person, Status
from services import people
from services.alerts import timeline as alerts_timeline
from tests.support import factories
from tests.support.checkin_helpers import markup_has, start_checkin
from tests.support.sos_support import ABA, CADRE, ON_DUTY, emergency_running, staff

pytestmark = pytest.mark.asyncio

GUEST = 1101
PENDING = 1102
SUSPENDED = 1103


@pytest.fixture
def settings(settings):
    """Many messages to the same officer: the worker may go faster here (the emulator does
    not enforce the per-chat limit unless a test switches it on)."""
    return settings.model_copy(update={"delivery_chat_rate": 50.0, "delivery_chat_burst": 20})


def alert_of(bot, telegram_id: int) -> Alert:
    with bot.db.session() as s:
        person = people.find_caller(s, telegram_id)
        assert person is not None
        return s.exec(select(Alert).where(Alert.person_id == person.id)).one()


def keyboard_texts(user) -> list[str]:
    return [b["text"] for row in user.reply_keyboard or [] for b in row]


async def open_keyboard(user) -> None:
    await user.send("/help")
    await user.wait_for(lambda m: m.reply_markup is not None and "keyboard" in m.reply_markup)


# ---------------------------------------------------------------------------- 1. anyone


async def test_a_guest_a_pending_registrant_and_a_suspended_cadre_each_reach_an_admin(bot):
    people_ = staff(bot.db)
    factories.person(
        bot.db,
        PENDING,
        approve=False,
        language="zh-Hans",
        prefecture="aba",
        county="aba.barkam",
        real_name="陈新",
    )
    suspended = factories.person(bot.db, SUSPENDED, real_name="Sun Su", language="en")
    bot.db.call(people.set_status, people_["admin"], suspended.id, Status.SUSPENDED)
    admin = bot.user(factories.ADMIN_ID, "Admin")
    aba = bot.user(ABA, "Aba")
    callers = {
        GUEST: (
            bot.user(GUEST, "Gao", last_name="Guest", username="gao_g", language_code="en"),
            "Help has been called",
        ),
        PENDING: (bot.user(PENDING, "Chen"), "已呼叫救援"),
        SUSPENDED: (bot.user(SUSPENDED, "Sun", language_code="en"), "Help has been called"),
    }
    async with emergency_running(bot):
        for user, _ in callers.values():
            await user.send("/help")  # the bot is up and has answered each of them once
            await user.wait_for("/help")
        for telegram_id, (user, called) in callers.items():
            started = time.monotonic()
            await user.send("/sos" if telegram_id != PENDING else "🆘 紧急求助")
            card = await admin.wait_for("身份未核实", timeout=3)
            latency = time.monotonic() - started
            assert latency < 1.0, f"the admin got the alert after {latency:.2f} s"
            assert "sos:ack:" in str(card.reply_markup)
            told = await user.wait_for(called)
            assert "120" in told.text
            assert ("not active" in told.text) or ("尚未生效" in told.text)
            alert_id = alert_of(bot, telegram_id).id
            await admin.press(f"sos:ack:{alert_id}", message=card)
            answer = await admin.callback_answer()
            assert f"#{alert_id}" in answer.text
            taken = "is handling your call" if telegram_id != PENDING else "正在处理您的求助"
            await user.wait_for(taken)
            if telegram_id == GUEST:
                assert "Gao Guest (@gao_g)" in card.text and "未注册" in card.text
            if telegram_id == PENDING:
                assert "注册待审核" in card.text and "陈新" in card.text
                await aba.wait_for("陈新")  # the prefecture they gave: its duty officers
            if telegram_id == SUSPENDED:
                assert "账号已停用" in card.text and "Sun Su" in card.text
    for telegram_id in callers:
        alert = alert_of(bot, telegram_id)
        assert alert.unverified and alert.status == AlertStatus.ACKNOWLEDGED
    with bot.db.session() as s:
        guest = people.find_caller(s, GUEST)
        assert guest is not None and guest.status == Status.GUEST
        assert people.find(s, GUEST) is None  # everywhere else: not registered


async def test_a_guest_who_called_can_still_register_and_delete_everything(bot):
    staff(bot.db)
    guest = bot.user(GUEST, "Gao", language_code="en")
    async with emergency_running(bot):
        await guest.send("/sos")
        await guest.wait_for("Help has been called")
        await guest.send("/start")  # still unregistered: the form starts
        await guest.wait_for(markup_has("f:lang:"))
        await guest.send("/cancel")
        await guest.wait_for(lambda m: True)
    created = factories.person(bot.db, GUEST, approve=False, real_name="Gao Ming")
    alert = alert_of(bot, GUEST)
    assert alert.person_id == created.id  # the call stays theirs once they register
    async with emergency_running(bot):
        await guest.send("/deleteme")
        await guest.wait_for(markup_has("del:yes"))
        await guest.press("del:yes")
        await guest.wait_for(lambda m: "deleted" in m.text.lower() or "删除" in m.text)
    with bot.db.session() as s:
        assert s.exec(select(Person).where(Person.telegram_id == GUEST)).first() is None
        (kept,) = s.exec(select(Alert)).all()  # the officers' record: "a deleted person"
    assert kept.person_id is None and kept.caller is None and kept.unverified


async def test_a_guest_deletes_their_call_with_deleteme(bot):
    staff(bot.db)
    guest = bot.user(GUEST, "Gao", language_code="en")
    async with emergency_running(bot):
        await guest.send("/sos")
        await guest.wait_for("Help has been called")
        await guest.send("/deleteme")
        await guest.wait_for(markup_has("del:yes"))
        await guest.press("del:yes")
        await guest.wait_for(lambda m: "deleted" in m.text.lower())
    with bot.db.session() as s:
        assert s.exec(select(Person).where(Person.telegram_id == GUEST)).first() is None
        (kept,) = s.exec(select(Alert)).all()  # the officers' record: "a deleted person"
    assert kept.person_id is None and kept.caller is None and kept.unverified


# ---------------------------------------------------------------------------- 2. nothing untrue


@pytest.mark.parametrize(
    ("lang", "still_open", "cancelled_text"),
    [("en", "is still open", "next 24 hours"), ("zh-Hans", "仍然有效", "24 小时内")],
)
async def test_cancel_during_the_questions_stops_the_questions_not_the_alert(
    bot, lang, still_open, cancelled_text
):
    staff(bot.db)
    bot.db.call(people.set_language, CADRE, lang)
    cadre = bot.user(CADRE, "Li")
    officer = bot.user(ON_DUTY, "Zhang")
    async with emergency_running(bot):
        await cadre.send("/sos")
        await officer.wait_for("紧急求助")
        await cadre.wait_for(markup_has("sos:cat:"))
        await cadre.send("/cancel")
        kept = await cadre.wait_for(still_open)
        assert "sos:cxl:" in str(kept.reply_markup)
        assert alert_of(bot, CADRE).status == AlertStatus.OPEN
        await cadre.send("just typing")  # no longer taken as a description
        # no question left to stop: /cancel is still about the open call for help, never
        # "nothing to cancel" (it was, before this was fixed)
        await cadre.send("/cancel")
        kept = await cadre.wait_for(still_open)
        assert "sos:cxl:" in str(kept.reply_markup)
        await cadre.press("sos:cxl:" + str(alert_of(bot, CADRE).id), message=kept)
        await cadre.wait_for(markup_has("sos:cxly:"))
        await cadre.press(f"sos:cxly:{alert_of(bot, CADRE).id}")
        await cadre.wait_for(cancelled_text)
    assert alert_of(bot, CADRE).status == AlertStatus.CANCELLED
    assert alert_of(bot, CADRE).details is None


async def test_an_sos_during_a_red_check_in_alert_is_its_own_cause_on_the_cards(bot):
    people_ = staff(bot.db)
    cadre = bot.user(CADRE, "Li", language_code="en")
    officer = bot.user(ON_DUTY, "Zhang", language_code="en")
    bot.db.call(people.set_language, ON_DUTY, "en")
    async with emergency_running(bot):
        await start_checkin(cadre)
        await cadre.press("ci:feeling:unwell")
        await cadre.wait_for(markup_has("ci:flags:none"))
        await cadre.press("Breathless even at rest")
        await cadre.wait_for("act now")
        red_card = await officer.wait_for("RED health check-in")
        await cadre.press_reply_button("🆘 SOS")
        relayed = await officer.wait_for("pressed SOS")
        assert "again" not in relayed.text and "opened by a RED health check-in" in relayed.text
        joined = await cadre.wait_for("added to alert")
        assert "Call 120" in joined.text
        await cadre.wait_for(markup_has("sos:cat:"))
        await cadre.press("🩹 Injury")
        await cadre.wait_for("describe it in a few words")
        await cadre.send("fell on ice <b>")
        await cadre.wait_for("Passed on")
        await officer.wait_for("fell on ice")
        alert_id = alert_of(bot, CADRE).id
        await officer.send(f"/alert {alert_id}")
        card = await officer.wait_for("What happened")
    assert red_card.text
    text = card.text
    line = next(x for x in text.splitlines() if x.startswith("What happened"))
    assert "RED check-in at" in line and "; SOS pressed at" in line
    assert line.endswith("🩹 Injury, fell on ice <b>")
    assert "RED check-in reasons:" in text and "SOS #" in text
    assert "again" not in text
    with bot.db.session() as s:
        kinds = [e.kind for e in s.exec(select(AlertEvent).where(AlertEvent.alert_id == alert_id))]
    assert "cause_added" in kinds and "raised_again" not in kinds
    assert people_["cadre"].id == alert_of(bot, CADRE).person_id


# ---------------------------------------------------------------------------- 3. location


async def test_location_stays_on_the_keyboard_until_closed_and_updates_every_card(bot):
    staff(bot.db)
    cadre = bot.user(CADRE, "Li", language_code="en")
    officer = bot.user(ON_DUTY, "Zhang")
    async with emergency_running(bot):
        await open_keyboard(cadre)
        await cadre.press_reply_button("🆘 SOS")
        card = await officer.wait_for("紧急求助")
        await cadre.wait_for(markup_has("sos:cat:"))
        await cadre.press("🩹 Injury")
        await cadre.wait_for("describe it in a few words")
        await cadre.send("twisted ankle")
        await cadre.wait_for("Passed on")
        assert keyboard_texts(cadre)[0] == "📍 Send my location"
        cadre.location = (29.99, 100.29)
        await cadre.press_reply_button("📍 Send my location")
        await cadre.wait_for("location was sent")
        assert keyboard_texts(cadre)[0] == "📍 Send my location"
        edited = await officer.wait_edit(card, "29.99000")
        assert "sos:ack:" in str(edited.reply_markup)  # still open: ✋ stays
        await officer.send(f"/alert {alert_of(bot, CADRE).id}")
        # the card, then its timeline (one screen each)
        await officer.wait_for(lambda m: "29.99000" in (m.text or ""))
        await officer.wait_for("时间线")
        asked = next(m for m in reversed(cadre.bot_messages) if "sos:cxl:" in str(m.reply_markup))
        await cadre.press(f"sos:cxl:{alert_of(bot, CADRE).id}", message=asked)
        await cadre.wait_for(markup_has("sos:cxly:"))
        await cadre.press(f"sos:cxly:{alert_of(bot, CADRE).id}")
        await cadre.wait_for("Tap 🆘")
        assert "📍 Send my location" not in keyboard_texts(cadre)


async def test_help_start_and_a_cancelled_check_in_keep_location_while_the_alert_is_open(bot):
    """What a frightened cadre may well send after 🆘 (/help, /start, a check-in begun and
    cancelled) brings the main keyboard back: with 📍 first while the alert is open (they
    took it away before), without it once it is closed."""
    staff(bot.db)
    cadre = bot.user(CADRE, "Li", language_code="en")
    officer = bot.user(ON_DUTY, "Zhang")
    async with emergency_running(bot):
        await open_keyboard(cadre)  # 🆘 and check-in, no 📍: nothing is open yet
        assert "📍 Send my location" not in keyboard_texts(cadre)
        await cadre.send("/sos")
        card = await officer.wait_for("紧急求助")
        await cadre.wait_for(markup_has("sos:cat:"))
        for command, answer in (("/help", "/help"), ("/start", "already registered")):
            await cadre.send(command)
            await cadre.wait_for(answer)
            assert keyboard_texts(cadre)[0] == "📍 Send my location", command
        await start_checkin(cadre)
        await cadre.send("/cancel")
        await cadre.wait_for("cancelled")
        assert keyboard_texts(cadre)[0] == "📍 Send my location"
        await cadre.send("/oxygen")  # an oxygen request begun and cancelled
        await cadre.wait_for("What do you need?")
        await cadre.send("/cancel")
        await cadre.wait_for(lambda m: m.reply_markup is not None and "keyboard" in m.reply_markup)
        assert keyboard_texts(cadre)[0] == "📍 Send my location"
        await officer.press("✅ 结束处理", message=card)
        await officer.wait_edit(card, markup_has("sos:out:"))
        await officer.press("已现场处理", message=card)
        await cadre.wait_for("was closed by")
        await cadre.send("/help")
        await cadre.wait_for("/help")
        assert "📍 Send my location" not in keyboard_texts(cadre)


async def test_approval_and_suspension_notices_keep_location_while_the_alert_is_open(bot):
    """A pending registrant who pressed 🆘 and is then approved, and a cadre suspended
    while their alert is open: the keyboard the notice brings keeps 📍 first."""
    from handlers import admin as admin_handlers
    from handlers import approvals as approvals_handlers

    staff(bot.db)
    newcomer = factories.person(bot.db, PENDING, approve=False, language="en")
    admin_p = bot.db.call(people.find, factories.ADMIN_ID)
    callers = bot.user(PENDING, "Pending", language_code="en"), bot.user(CADRE, "Li")
    async with emergency_running(bot):
        for caller in callers:
            await caller.send("/sos")
            await caller.wait_for(markup_has("sos:cat:"))
        approved = bot.db.call(people.decide, admin_p, newcomer.id, True)
        await approvals_handlers.announce_decision(bot.app.bot, bot.db, admin_p, approved, None)
        await callers[0].wait_for("Your registration has been approved")
        assert keyboard_texts(callers[0]) == ["📍 Send my location", "🆘 SOS", "📝 Check-in"]
        cadre_id = people_id(bot, CADRE)
        suspended = bot.db.call(people.set_status, admin_p, cadre_id, Status.SUSPENDED)
        await admin_handlers.tell(bot.db, suspended, "people.told.suspended")
        await callers[1].wait_for("suspended your account")
        assert keyboard_texts(callers[1]) == ["📍 Send my location", "🆘 SOS"]


async def test_a_profile_edit_and_a_guests_registration_keep_location_while_the_alert_is_open(
    bot,
):
    """A cadre who edits their profile after 🆘, and a guest who calls for help and then
    starts registering (and gives up): the forms' keyboards keep 📍 (and 🆘) first while
    the alert is open; they used to take them away."""
    staff(bot.db)
    cadre = bot.user(CADRE, "Li", language_code="en")
    guest = bot.user(GUEST, "Gao", language_code="en")
    async with emergency_running(bot):
        for caller in (cadre, guest):
            await caller.send("/sos")
            await caller.wait_for(markup_has("sos:cat:"))
        await cadre.send("/me")
        await cadre.wait_for(markup_has("me:edit:unit"))
        await cadre.press("me:edit:unit")
        await cadre.wait_for("home unit")
        assert keyboard_texts(cadre)[0] == "📍 Send my location"
        await cadre.send("Ningbo Health Commission")
        await cadre.wait_for("Saved")
        assert keyboard_texts(cadre) == ["📍 Send my location", "🆘 SOS", "📝 Check-in"]
        await guest.send("/start")
        await guest.wait_for(markup_has("f:lang:"))
        await guest.press("f:lang:en")
        await guest.wait_for(markup_has("f:consent:yes"))
        await guest.press("f:consent:yes")
        await guest.wait_for("real name")  # a typed answer: the form sets the keyboard
        assert keyboard_texts(guest) == ["📍 Send my location", "🆘 SOS"]
        await guest.send("/cancel")
        await guest.wait_for("nothing was stored")
        assert keyboard_texts(guest) == ["📍 Send my location", "🆘 SOS"]


def people_id(bot, telegram_id: int) -> int:
    found = bot.db.call(people.find, telegram_id)
    assert found is not None and found.id is not None
    return found.id


@pytest.mark.parametrize(
    ("lang", "ask"), [("en", "Share live location"), ("zh-Hans", "共享实时位置")]
)
async def test_a_red_check_in_asks_for_the_location_like_an_sos(bot, lang, ask):
    staff(bot.db)
    bot.db.call(people.set_language, CADRE, lang)
    cadre = bot.user(CADRE, "Li")
    officer = bot.user(ON_DUTY, "Zhang")
    async with emergency_running(bot):
        await start_checkin(cadre)
        await cadre.press("ci:feeling:unwell")
        await cadre.wait_for(markup_has("ci:flags:none"))
        await cadre.press("ci:flags:breathless_rest")
        result = await cadre.wait_for(ask)
        assert keyboard_texts(cadre)[0] in ("📍 Send my location", "📍 发送我的位置")
        card = await officer.wait_for("健康打卡红色警报")
        cadre.location = (30.01, 100.1)
        await cadre.press_reply_button(keyboard_texts(cadre)[0])
        await officer.wait_for(lambda m: m.location is not None)
        await officer.wait_edit(card, "30.01000")
    assert result.text
    assert alert_of(bot, CADRE).latitude == pytest.approx(30.01)


# ---------------------------------------------------------------------------- 4. after close


@pytest.mark.parametrize(
    ("lang", "closed", "passed"),
    [
        ("en", "next 24 hours goes to Zhang On", "Passed on to Zhang On"),
        ("zh-Hans", "24 小时内", "已转给"),
    ],
)
async def test_after_the_close_the_cadres_message_reaches_whoever_handled_it(
    bot, lang, closed, passed
):
    staff(bot.db)
    bot.db.call(people.set_language, CADRE, lang)
    cadre = bot.user(CADRE, "Li")
    officer = bot.user(ON_DUTY, "Zhang")
    async with emergency_running(bot):
        await open_keyboard(cadre)
        await cadre.send("/sos")
        card = await officer.wait_for("紧急求助")
        await officer.press(f"sos:ack:{alert_of(bot, CADRE).id}", message=card)
        await officer.press("✅ 结束处理", message=card)
        await officer.wait_edit(card, lambda m: "sos:out:" in str(m.reply_markup))
        await officer.press("已现场处理", message=card)
        await officer.wait_for("请简单写下处理经过")
        await officer.press("sos:nskip:" + str(alert_of(bot, CADRE).id))
        await cadre.wait_for(closed)
        await cadre.send("Ankle is swollen now <i>thank you</i>")
        told = await cadre.wait_for(passed)
        assert "🆘" in told.text and any("🆘" in b for b in keyboard_texts(cadre))
        relayed = await officer.wait_for("Ankle is swollen now")
        assert f"#{alert_of(bot, CADRE).id}" in relayed.text
        assert "<i>thank you</i>" in relayed.text  # shown as typed: escaped, not markup
        assert "<i>" in relayed.raw_text.replace("&lt;i&gt;", "<i>")
        assert "&lt;i&gt;" in relayed.raw_text
    with bot.db.session() as s:
        kinds = [e.kind for e in s.exec(select(AlertEvent))]
    assert "followup" in kinds
    timeline = bot.db.call(
        alerts_timeline.timeline_text, alert_of(bot, CADRE).id, "en", bot.settings.zone
    )
    assert "wrote after the close" in timeline
