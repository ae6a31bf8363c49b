"""The emergency channel through the emulator, as cadres, officers and admins use it."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
import time_machine
from sqlmodel import select

from emulator.faults import Fault
from handlers import menus
from models import Alert, AlertStatus, AuditEntry, DirectoryEntry, OutboxMessage, OutboxStatus, Role
from services import contact_links, directory, people, roster
from services.alerts import raising
from services.i18n import t
from tests.support import factories
from tests.support.sos_support import ABA, CADRE, OFF_DUTY, ON_DUTY, emergency_running, staff, until

pytestmark = pytest.mark.asyncio


def has_button(data: str):
    return lambda m: data in str(m.reply_markup)


async def open_keyboard(user):
    """An active person's chat shows the main keyboard (🆘 and check-in)."""
    await user.send("/help")
    await user.wait_for(lambda m: m.reply_markup is not None and "keyboard" in m.reply_markup)


def alert_of(bot, person_id: int) -> Alert:
    with bot.db.session() as s:
        return s.exec(select(Alert).where(Alert.person_id == person_id)).one()


def denied(bot) -> list[AuditEntry]:
    with bot.db.session() as s:
        return list(s.exec(select(AuditEntry).where(AuditEntry.outcome == "denied")))


# ---------------------------------------------------------------------------- the whole journey


async def test_sos_reaches_the_officer_at_once_with_location_and_is_taken_and_resolved(bot):
    people_ = staff(bot.db)
    cadre = bot.user(CADRE, "Li", language_code="en")
    officer = bot.user(ON_DUTY, "Zhang")
    other = bot.user(OFF_DUTY, "Wang")
    async with emergency_running(bot):
        await open_keyboard(cadre)
        await cadre.press_reply_button("🆘")
        # At once, not by a timer; the latency itself is benchmarks/sos_bench.py's figure.
        alert_message = await officer.wait_for("紧急求助", timeout=3)
        assert "Li Wei" in alert_message.text and "4014" in alert_message.text
        assert "理塘" in alert_message.text
        other.assert_no_unread()  # off duty: not in the first tier

        help_called = await cadre.wait_for("Help has been called")
        assert "1 duty officer or administrator alerted" in help_called.text
        assert "Call 120" in help_called.text  # what to do now comes first
        numbers = await cadre.wait_for("Emergency numbers")  # then the numbers
        steps = await cadre.wait_for("altitude illness")
        for expected in ("120", "110", "119", "122"):
            assert expected in numbers.text
        assert "not a diagnosis" in steps.text and "go down 500–1,000 m" in steps.text
        # a hospital without a number is for the admins to fill, never for a cadre
        assert "Ganzi Prefecture People's Hospital" not in numbers.text
        assert "not yet confirmed" not in numbers.text
        assert "checked 2026-11-26: national number, free from any phone" in numbers.text
        buttons = [b["text"] for row in cadre.reply_keyboard for b in row]
        assert buttons[0] == "📍 Send my location" and "🆘 SOS" in buttons

        await cadre.wait_for("What is wrong?")
        cadre.location = (30.0, 100.27)
        await cadre.press_reply_button("📍 Send my location")
        await cadre.wait_for("location was sent")
        pin = await officer.wait_for(lambda m: m.location is not None)
        assert pin.location["latitude"] == pytest.approx(30.0)

        await cadre.press("🏔 Altitude sickness")
        await officer.wait_for("高原反应")
        await cadre.wait_for("describe it in a few words")
        await cadre.send("headache and vomiting, in the dormitory")
        await cadre.wait_for("Passed on")
        relayed = await officer.wait_for("headache and vomiting")
        assert "Li Wei" in relayed.text

        await officer.press(
            f"sos:ack:{alert_of(bot, people_['cadre'].id).id}", message=alert_message
        )
        answer = await officer.callback_answer()
        assert "#" in answer.text
        await officer.wait_edit(alert_message, "Zhang On")
        told = await cadre.wait_for("is handling your call for help")
        assert "Zhang On" in told.text and "+8613800138000" in told.text

        await officer.press("✅ 结束处理", message=alert_message)
        await officer.callback_answer()
        await officer.wait_edit(alert_message, lambda m: "sos:out:" in str(m.reply_markup))
        await officer.press("已送医院", message=alert_message)
        await officer.wait_for("请简单写下处理经过")
        await officer.send("Taken to Litang county hospital by car")
        await officer.wait_for("备注已保存")
        closed = await cadre.wait_for("was closed by Zhang On")
        assert "Taken to hospital" in closed.text

    alert = alert_of(bot, people_["cadre"].id)
    assert alert.status == AlertStatus.RESOLVED and alert.outcome == "hospital"
    assert alert.category == "altitude" and "vomiting" in alert.details
    assert alert.resolution_note == "Taken to Litang county hospital by car"
    assert alert.latitude == pytest.approx(30.0)


@pytest.fixture
def settings(settings):
    """Telegram allows about one message a second per chat, with short bursts; these tests
    send many to the same officer, so the worker may go faster here (the emulator does not
    enforce the limit unless a test switches it on)."""
    return settings.model_copy(update={"delivery_chat_rate": 50.0, "delivery_chat_burst": 20})


# ---------------------------------------------------------------------------- who may do what


async def test_forged_and_replayed_buttons_of_a_cadre_a_contact_and_an_outsider_are_refused(bot):
    people_ = staff(bot.db)
    factories.person(bot.db, 1002, real_name="Other Cadre")
    invitation = bot.db.call(contact_links.create_invitation, people_["cadre"])
    bot.db.call(
        people.submit_registration, 3001, "Mum", factories.draft(invitation=invitation.code)
    )
    cadre = bot.user(CADRE, "Li", language_code="en")
    officer = bot.user(ON_DUTY, "Zhang")
    outsider = bot.user(ABA, "Aba")
    contact = bot.user(3001, "Mum", language_code="en")
    other_cadre = bot.user(1002, "Other", language_code="en")
    async with emergency_running(bot):
        for user in (outsider, other_cadre):
            await user.send("/help")
            await user.wait_for("/help")
        await cadre.send("/sos")
        alert_message = await officer.wait_for("紧急求助")
        await contact.wait_for("called for help")
        await cadre.wait_for("What is wrong?")
        alert_id = alert_of(bot, people_["cadre"].id).id
        attempts = [
            (cadre, f"sos:ack:{alert_id}"),  # nobody acknowledges their own alert
            (other_cadre, f"sos:ack:{alert_id}"),
            (contact, f"sos:res:{alert_id}"),
            (outsider, f"sos:ack:{alert_id}"),
            (outsider, f"sos:out:{alert_id}:false_alarm"),
            (other_cadre, f"sos:cxly:{alert_id}"),  # cancelling someone else's SOS
            (officer, "sos:ack:999999"),
            (officer, "sos:ack:1; DROP TABLE alert"),
        ]
        for user, data in attempts:
            await user.press_forged(data, message=user.last_message)
            answer = await user.callback_answer()
            assert answer.show_alert, (user.id, data, answer)
        assert alert_of(bot, people_["cadre"].id).status == AlertStatus.OPEN
        # the genuine press works, and a replay of it afterwards changes nothing
        await officer.press(f"sos:ack:{alert_id}", message=alert_message)
        await officer.callback_answer()
        await cadre.wait_for("is handling")
        await officer.press_forged(f"sos:ack:{alert_id}", message=alert_message)
        answer = await officer.callback_answer()
        assert "已经接手" in answer.text
    refused = denied(bot)
    assert len(refused) == 8
    by_actor = {(e.actor_telegram_id, e.detail.get("reason")) for e in refused}
    assert (CADRE, "role") in by_actor  # cadres cannot handle alerts, their own least of all
    assert (1002, "role") in by_actor and (3001, "role") in by_actor
    assert (ABA, "area") in by_actor
    assert (1002, "not_own") in by_actor
    assert (ON_DUTY, "not_found") in by_actor and (ON_DUTY, "forged") in by_actor


async def test_two_officers_pressing_at_the_same_moment_one_takes_it(bot):
    people_ = staff(bot.db, on_duty=False)  # nobody on duty: both Ganzi officers alerted
    cadre = bot.user(CADRE, "Li", language_code="en")
    first = bot.user(ON_DUTY, "Zhang")
    second = bot.user(OFF_DUTY, "Wang")
    admin = bot.admin()
    async with emergency_running(bot):
        await cadre.send("/sos")
        one = await first.wait_for("紧急求助")
        two = await second.wait_for("紧急求助")
        await admin.wait_for("紧急求助")
        alert_id = alert_of(bot, people_["cadre"].id).id
        q1 = await first.press(f"sos:ack:{alert_id}", message=one)
        q2 = await second.press(f"sos:ack:{alert_id}", message=two)
        answers = [await first.callback_answer(q1), await second.callback_answer(q2)]
        texts = sorted(a.text or "" for a in answers)
        assert sum("已经接手" in t for t in texts) == 1
        assert sum("您已接手" in t for t in texts) == 1
        told = await cadre.wait_for("is handling your call for help")
        winner = alert_of(bot, people_["cadre"].id).acknowledged_by
        name = "Zhang On" if winner == people_["on"].id else "Wang Off"
        assert name in told.text
        admin_copy = admin.last_message
        await admin.wait_edit(admin_copy, f"{name} 已于")


# ---------------------------------------------------------------------------- escalation


async def test_unacknowledged_alerts_escalate_at_the_timeout_and_then_repeat(bot):
    cadre_id = staff(bot.db)["cadre"].id
    cadre = bot.user(CADRE, "Li", language_code="en")
    officer = bot.user(ON_DUTY, "Zhang")
    second = bot.user(OFF_DUTY, "Wang")
    aba = bot.user(ABA, "Aba")
    admin = bot.admin()
    start = datetime.now(UTC)
    with time_machine.travel(start, tick=True) as clock:
        async with emergency_running(bot):
            await cadre.send("/sos")
            await officer.wait_for("紧急求助")
            clock.shift(170)
            await bot.timers.sos.escalate()
            second.assert_no_unread()
            clock.shift(11)
            await bot.timers.sos.escalate()
            round2 = await second.wait_for("已升级（第 2 轮）")
            await officer.wait_for("已升级（第 2 轮）")
            await admin.wait_for("已升级（第 2 轮）")
            assert "Li Wei" in round2.text
            aba.assert_no_unread()  # another prefecture: not yet
            clock.shift(181)
            await bot.timers.sos.escalate()
            await aba.wait_for("已升级（第 3 轮）")
            clock.shift(301)
            await bot.timers.sos.escalate()
            repeat = await aba.wait_for("已升级（第 4 轮）")
            await aba.press("✋ 我来处理", message=repeat)
            await aba.callback_answer()
            await cadre.wait_for("Aba Officer")
            clock.shift(3600)
            await bot.timers.sos.escalate()
    alert = alert_of(bot, cadre_id)
    assert alert.stage == 4 and alert.status == AlertStatus.ACKNOWLEDGED


# ---------------------------------------------------------------------------- cancel, live location


async def test_the_cadre_cancels_a_false_alarm_and_everyone_alerted_is_told(bot):
    cadre_id = staff(bot.db)["cadre"].id
    cadre = bot.user(CADRE, "Li", language_code="en")
    officer = bot.user(ON_DUTY, "Zhang")
    async with emergency_running(bot):
        await cadre.send("/sos")
        alert_message = await officer.wait_for("紧急求助")
        await cadre.wait_for("What is wrong?")
        await cadre.press("↩️ False alarm: cancel")
        confirm = await cadre.wait_for("Is it a false alarm?")
        await cadre.press("No, I need help")
        await cadre.wait_edit(confirm, "stays open")
        await cadre.press("↩️ False alarm: cancel")
        confirm = await cadre.wait_for("Is it a false alarm?")
        await cadre.press("Yes, false alarm: cancel")
        await cadre.wait_edit(confirm, "is cancelled")
        notice = await officer.wait_for("已取消")
        assert "Li Wei" in notice.text
        await officer.wait_edit(alert_message, "求助人于")
        assert "sos:ack" not in str(alert_message.reply_markup)
    assert alert_of(bot, cadre_id).status == AlertStatus.CANCELLED


async def test_a_live_location_keeps_the_officer_informed_without_flooding(bot):
    cadre_id = staff(bot.db)["cadre"].id
    cadre = bot.user(CADRE, "Li", language_code="en")
    officer = bot.user(ON_DUTY, "Zhang")
    with time_machine.travel(datetime.now(UTC), tick=True) as clock:
        async with emergency_running(bot):
            await cadre.send("/sos")
            await officer.wait_for("紧急求助")
            live = await cadre.send_location(30.0, 100.0, live_period=3600)
            await officer.wait_for(lambda m: m.location is not None)
            await cadre.update_location(live, 30.001, 100.0)  # seconds later: stored only
            await until(lambda: alert_of(bot, cadre_id).latitude == pytest.approx(30.001))
            clock.shift(121)
            await cadre.update_location(live, 30.01, 100.0)
            pin = await officer.wait_for(lambda m: m.location is not None)
            assert pin.location["latitude"] == pytest.approx(30.01)
    with bot.db.session() as s:
        pins = s.exec(select(OutboxMessage).where(OutboxMessage.kind == "location")).all()
        assert len(pins) == 2
    assert alert_of(bot, cadre_id).live_location is True


async def test_a_location_without_an_open_alert_gets_a_polite_answer(bot):
    staff(bot.db)
    cadre = bot.user(CADRE, "Li", language_code="en")
    await cadre.send_location(30.0, 100.0)
    await cadre.wait_for("no call for help open")


# ---------------------------------------------------------------------------- failures


async def test_with_failing_sends_and_429s_every_recipient_gets_the_alert(bot, emulator):
    staff(bot.db, on_duty=False)
    extra = [2010 + i for i in range(6)]
    from tests.support.sos_support import officer as make_officer

    for telegram_id in extra:
        make_officer(bot.db, telegram_id, name=f"Officer {telegram_id}")
    recipients = [ON_DUTY, OFF_DUTY, factories.ADMIN_ID, *extra]
    users = {i: bot.user(i, f"U{i}") for i in recipients}
    cadre = bot.user(CADRE, "Li", language_code="en")
    async with emergency_running(bot):
        emulator.faults.add(Fault.retry_after(1), methods="sendMessage", times=3)
        emulator.faults.add(Fault.server_error(), methods="sendMessage", probability=0.3)
        emulator.faults.add(Fault.lost_reply(), methods="sendMessage", probability=0.05)
        await cadre.send("/sos")
        for telegram_id in recipients:
            await users[telegram_id].wait_for("紧急求助", timeout=20)
        await cadre.wait_for("Help has been called", timeout=20)
        emulator.faults.clear()
    assert emulator.faults.count("retry_after") == 3
    assert emulator.faults.count("server_error") > 0


# ---------------------------------------------------------------------------- lists


def sent_to(bot, chat_id: int) -> bool:
    """Whether the delivery worker has recorded a message to this chat as sent."""
    with bot.db.session() as session:
        rows = session.exec(select(OutboxMessage).where(OutboxMessage.chat_id == chat_id))
        return any(row.status == OutboxStatus.SENT for row in rows)


async def test_alerts_and_the_timeline_are_shown_in_the_viewers_area_and_admins_get_a_csv(bot):
    people_ = staff(bot.db)
    cadre = bot.user(CADRE, "Li", language_code="en")
    officer = bot.user(ON_DUTY, "Zhang")
    aba = bot.user(ABA, "Aba")
    admin = bot.admin()
    async with emergency_running(bot):
        await cadre.send("/sos")
        await officer.wait_for("紧急求助")
        alert_id = alert_of(bot, people_["cadre"].id).id
        await officer.send("/alerts")
        listing = await officer.wait_for("进行中和最近")
        assert f"#{alert_id} Li Wei" in listing.text and "等待接手" in listing.text
        # The officer can see the message a moment before the worker records it as sent.
        await until(lambda: sent_to(bot, ON_DUTY))
        await officer.send(f"/alert {alert_id}")
        timeline = await officer.wait_for("时间线")
        assert "Li Wei 发起" in timeline.text and "第 1 轮：已送达 1/1：Zhang On" in timeline.text
        await aba.send("/alerts")
        await aba.wait_for("没有进行中的警报")
        await aba.send(f"/alert {alert_id}")
        await aba.wait_for(f"找不到您可以查看的警报 #{alert_id}")
        await aba.send("/alert abc")
        await aba.wait_for("用法")
        await admin.send("/alerts")
        await admin.wait_for("进行中和最近")
        await admin.press("sos:csv")
        document = await admin.wait_for(lambda m: m.document is not None)
        data = admin.files[-1].data.decode("utf-8-sig")
        assert data.startswith("id,cause,status") and "Li Wei" in data
        assert document.document.file_name.endswith(".csv")
    assert any(e.detail.get("reason") == "area" for e in denied(bot))


# ---------------------------------------------------------------------------- roster and duty


async def test_an_officer_goes_on_and_off_duty_and_the_admins_hear_of_the_gap(bot):
    staff(bot.db, on_duty=False)
    bot.db.call(people.set_language, OFF_DUTY, "en")
    officer = bot.user(OFF_DUTY, "Wang", language_code="en")
    admin = bot.admin()
    async with emergency_running(bot):
        await officer.send("/onduty")
        question = await officer.wait_for("On duty for how long?")
        assert "nobody" in question.text
        await officer.press("duty:on:8")
        await officer.wait_edit(question, "You are on duty (until")
        await officer.send("/offduty")
        off = await officer.wait_for("You are off duty")
        assert "on duty now: nobody" in off.text
        gap = await admin.wait_for("值班缺口")
        assert "甘孜州" in gap.text
    with bot.db.session() as s:
        assert roster.on_duty_now(s, "ganzi", datetime.now(UTC), bot.settings.zone) == []


async def test_an_admin_builds_the_weekly_roster_with_buttons(bot):
    people_ = staff(bot.db, on_duty=False)
    admin = bot.admin(language_code="en")
    bot.user(OFF_DUTY, "Wang")  # reachable: told of the shift added for them
    bot.db.call(people.set_language, factories.ADMIN_ID, "en")
    async with emergency_running(bot):
        await admin.send("/roster")
        await admin.wait_for("whose roster")
        await admin.press("ros:p:ganzi")
        await admin.wait_edit(admin.last_message, "weekly duty roster")
        await admin.press("➕ Add a shift")
        await admin.wait_edit(admin.last_message, "choose the duty officer")
        await admin.press("Wang Off")
        await admin.wait_edit(admin.last_message, "choose the days")
        await admin.press("Next ▶")
        answer = await admin.callback_answer()
        assert "at least one day" in answer.text
        await admin.press("Mon–Fri")
        await admin.wait_edit(admin.last_message, "Mon Tue Wed Thu Fri")
        await admin.press("Sat")
        await admin.wait_edit(admin.last_message, "Fri Sat")
        await admin.press("Next ▶")
        await admin.wait_edit(admin.last_message, "choose the hours")
        await admin.press("All day 00:00–24:00")
        await admin.wait_edit(admin.last_message, "Sat 00:00–24:00 · Wang Off")
        view = admin.last_message
        assert "On duty now" in view.text
        # a forged step for a prefecture that does not exist is refused and audited
        await admin.press_forged("ros:a:atlantis")
        assert (await admin.callback_answer()).show_alert
    with bot.db.session() as s:
        shifts = roster.shifts_of(s, "ganzi")
        assert sorted(shift.weekday for shift, _ in shifts) == [0, 1, 2, 3, 4, 5]
        assert all(officer.id == people_["off"].id for _, officer in shifts)
    async with emergency_running(bot):
        await admin.press(f"ros:rm:{shifts[0][0].id}")
        assert "removed" in (await admin.callback_answer()).text
    with bot.db.session() as s:
        assert len(roster.shifts_of(s, "ganzi")) == 5


async def test_cadres_and_officers_cannot_manage_the_roster_or_the_directory(bot):
    staff(bot.db)
    cadre = bot.user(CADRE, "Li", language_code="en")
    officer = bot.user(ON_DUTY, "Zhang")
    for user, command in ((cadre, "/roster"), (officer, "/directory"), (cadre, "/onduty")):
        await user.send(command)
        await user.wait_for(lambda m: "This is for" in m.text or "使用的功能" in m.text)
    await officer.press_forged("dir:rmy:1", message=officer.last_message)
    assert (await officer.callback_answer()).show_alert
    actions = sorted(e.action for e in denied(bot))
    assert actions == [
        "denied.go_on_duty",
        "denied.go_on_duty",
        "denied.manage_directory",
        "denied.manage_directory",
    ]


async def test_an_officer_reads_the_roster_of_their_area_and_hears_of_their_shifts(bot):
    """#12 point 11: /roster read-only for a duty officer (their areas, no buttons; a
    forged edit refused), and a shift added or removed for them is told through the
    outbox, in their language."""
    people_ = staff(bot.db)
    admin_p = people_["admin"]
    bot.db.call(people.set_language, OFF_DUTY, "en")
    officer = bot.user(OFF_DUTY, "Wang", language_code="en")
    zhang = bot.user(ON_DUTY, "Zhang")
    async with emergency_running(bot):
        added = bot.db.call(roster.add_shifts, admin_p, people_["off"].id, "ganzi", [0, 2], "day")
        told = await officer.wait_for("gave you duty shifts in Ganzi")
        # the admin of CADRE_ADMIN_IDS never registered: no name, never "- gave you"
        assert told.text.startswith("🗓 An administrator gave you")
        assert "Mon 08:00–20:00, Wed 08:00–20:00" in told.text and "/roster" in told.text
        zhang.assert_no_unread()  # only the officer concerned

        await officer.send("/roster")
        view = await officer.wait_for("weekly duty roster")
        assert "Mon 08:00–20:00 · Wang Off" in view.text and "ask one of them" in view.text
        assert view.reply_markup is None  # read-only
        await officer.press_forged(f"ros:rm:{added[0].id}", message=view)
        assert (await officer.callback_answer()).show_alert
        await zhang.send("/roster")
        shown = await zhang.wait_for("每周值班表")
        assert "甘孜" in shown.text and "Wang Off" in shown.text

        bot.db.call(roster.remove_shift, admin_p, added[0].id)
        removed = await officer.wait_for("removed your duty shift in Ganzi")
        assert "Mon 08:00–20:00" in removed.text
    with bot.db.session() as s:
        assert len(roster.shifts_of(s, "ganzi")) == 1


# ---------------------------------------------------------------------------- directory


async def test_an_admin_fills_a_hospital_number_and_cadres_see_when_it_was_confirmed(bot):
    staff(bot.db)
    bot.db.call(people.set_language, factories.ADMIN_ID, "en")
    admin = bot.admin(language_code="en")
    cadre = bot.user(CADRE, "Li", language_code="en")
    async with emergency_running(bot):
        await admin.send("/directory")
        await admin.wait_for("choose the area")
        await admin.press("dir:p:ganzi")
        await admin.wait_edit(admin.last_message, "Emergency directory: Ganzi")
        await admin.press("✏️ Ganzi Prefecture People's Hospital (Kangding)")
        card = await admin.wait_edit(admin.last_message, "Phone: -")
        # no number, nothing to confirm: no button, and a forged press is refused
        assert "✅ Still correct" not in [b["text"] for b in card.buttons]
        hospital = next(b for b in card.buttons if b["text"] == "✏️ Phone")
        entry_id = hospital["callback_data"].split(":")[2]
        await admin.press_forged(f"dir:ok:{entry_id}", message=card)
        refused = await admin.callback_answer()
        assert refused.show_alert and "has no phone number" in refused.text
        with bot.db.session() as s:
            assert s.get(DirectoryEntry, int(entry_id)).confirmed_at is None
        await cadre.send("/sos")
        before = await cadre.wait_for("Emergency numbers")
        assert "Ganzi Prefecture People's Hospital" not in before.text
        await admin.press("✏️ Phone", message=card)
        await admin.wait_for("Type the phone number")
        await admin.send("call the switchboard")
        await admin.wait_for("may only hold digits")
        await admin.send("0836-2822 120")
        saved = await admin.wait_for("Saved")
        assert "0836-2822 120" in saved.text and "confirmed" in saved.text
        await admin.press("◀ Back", message=saved)
        await admin.wait_edit(saved, "0836-2822 120 Ganzi Prefecture")
        await admin.press("dir:add:ganzi", message=saved)
        await admin.wait_for("name of the new entry")
        await admin.send("/cancel")
        await admin.wait_for("cancelled")
        await cadre.send("/sos")
        help_called = await cadre.wait_for("Emergency numbers")
        today = datetime.now(bot.settings.zone).strftime("%Y-%m-%d")
        assert "0836-2822 120" in help_called.text
        assert f"confirmed {today} by" in help_called.text
        assert "Ganzi Prefecture People's Hospital" in help_called.text
        await admin.press("✏️ Ganzi Prefecture People's Hospital (Kangding)", message=saved)
        card = await admin.wait_edit(saved, lambda m: "✅ Still correct" in str(m.reply_markup))
        await admin.press("✅ Still correct", message=card)
        assert "confirmed this entry" in (await admin.callback_answer()).text


async def test_the_shipped_numbers_say_where_and_when_they_were_checked_in_chinese(bot):
    """#12 point 8: the national numbers carry their source in the reader's language
    (a database seeded by an older data file is mended), and hospitals without a number
    stay out of what a cadre reads."""
    staff(bot.db)
    with bot.db.session() as s:  # as an older data file left it
        for entry in directory.entries_of(s, None):
            entry.confirmed_by = "national number"
            s.add(entry)
        s.commit()
    bot.db.call(people.set_language, CADRE, "zh-Hans")
    cadre = bot.user(CADRE, "Li")
    async with emergency_running(bot):
        await cadre.send("/sos")
        help_called = await cadre.wait_for("急救电话")
    text = help_called.text
    assert "☎️ 120 急救（救护车、医疗急救）\n☎️ 110 报警\n" in text
    assert "（以上号码核对：全国统一号码，中国大陆任何电话均可免费拨打，2026-11-26）" in text
    for untrue in ("national number", "电话待管理员核实", "甘孜藏族自治州人民医院"):
        assert untrue not in text


# ---------------------------------------------------------------------------- contacts


async def test_a_cadre_invites_a_contact_who_then_hears_of_their_sos_and_nothing_else(bot):
    from tests.support.flows import register_contact_in_english

    staff(bot.db)
    cadre = bot.user(CADRE, "Li", language_code="en")
    officer = bot.user(ON_DUTY, "Zhang")
    async with emergency_running(bot):
        await cadre.send("/contacts")
        await cadre.wait_for("My emergency contacts")
        await cadre.press("➕ Invite a contact")
        created = await cadre.wait_for("Send this link to your emergency contact")
        code = created.text.split("start=")[1].split()[0]
        mum = bot.user(3001, "Mum", language_code="en")
        await register_contact_in_english(mum, name="Wang Fang", payload=code)
        await mum.wait_for("You are registered")
        joined = bot.db.call(people.find, 3001)  # a short form: no posting, no health consent
        assert (joined.role, joined.prefecture, joined.home_unit) == ("contact", None, None)
        await cadre.send("/contacts")
        listing = await cadre.wait_for("My emergency contacts")
        assert "Wang Fang has joined" in listing.text
        await mum.send("/alerts")  # a contact sees alerts of their cadre only, no lists
        await mum.wait_for("This is for duty officers and administrators.")
        await cadre.send("/sos")
        told = await mum.wait_for("called for help")
        assert "Li Wei" in told.text and "sos:ack" not in str(told.reply_markup)
        alert_message = await officer.wait_for("紧急求助")
        await cadre.wait_for("1 of your emergency contacts has been told")
        await officer.press("✋ 我来处理", message=alert_message)
        handled = await mum.wait_for("is being handled by Zhang On")
        assert "Li Wei" in handled.text


async def test_after_an_sos_moving_on_to_another_command_ends_the_wait_for_a_description(bot):
    cadre_id = staff(bot.db)["cadre"].id
    cadre = bot.user(CADRE, "Li", language_code="en")
    officer = bot.user(ON_DUTY, "Zhang")
    await cadre.send("/sos")
    await officer.wait_for("紧急求助")
    await cadre.wait_for("What is wrong?")
    await cadre.send("I slipped on ice")  # taken as the description
    await cadre.wait_for("Passed on")
    await officer.wait_for("I slipped on ice")
    await cadre.send("/me")
    await cadre.wait_for("Li Wei")
    await cadre.send("85")  # e.g. typed for another feature: not the SOS description
    answer = await cadre.next_message()  # whatever another feature says to it
    assert "Passed on" not in answer.text
    assert alert_of(bot, cadre_id).details == "I slipped on ice"
    officer.assert_no_unread()


async def test_admins_are_warned_when_a_duty_officer_blocks_the_bot(bot):
    staff(bot.db)
    officer = bot.user(ON_DUTY, "Zhang")
    admin = bot.admin()
    await officer.send("/help")
    await officer.wait_for("/help")
    officer.block()  # Telegram tells the bot (my_chat_member: kicked)
    await until(lambda: bot.db.call(people.find, ON_DUTY).unreachable_since is not None)
    await bot.timers.sos.check_coverage()

    def warnings():
        texts = [m.text for m in admin.bot_messages]
        blocked = [t for t in texts if "值班人员无法联系" in t]
        gap = [t for t in texts if "值班缺口" in t]  # the only one on duty is unreachable
        return (blocked, gap) if blocked and gap else None

    blocked, gap = await admin.wait_until(warnings)
    assert "Zhang On" in blocked[0] and "+8613800138000" in blocked[0]
    assert "甘孜州" in gap[0]


async def test_if_the_alert_cannot_be_stored_the_cadre_is_told_to_call_120_at_once(
    bot, monkeypatch
):
    staff(bot.db)
    cadre = bot.user(CADRE, "Li", language_code="en")

    def broken(*args, **kwargs):
        raise RuntimeError("database unavailable")

    monkeypatch.setattr(raising, "raise_alert", broken)
    await cadre.send("/sos")
    told = await cadre.wait_for("Call 120 now")
    assert "☎️ <b>120</b>" in told.raw_text and "☎️ <b>122</b>" in told.raw_text
    with pytest.raises(AssertionError):
        await cadre.next_message(timeout=0.5)  # nothing else: no "something went wrong"


# ---------------------------------------------------------------------------- acting from anywhere


async def test_officers_take_and_close_alerts_from_the_list_and_by_command(bot):
    """#12 point 5: ✋ and ✅ under /alerts and /alert, /ack and /resolve (the same checks
    and the same first-wins rule as the card), closed cards without a call to action, a
    timeline of one line per round and its full CSV."""
    people_ = staff(bot.db)
    second = people_["off"]
    bot.db.call(roster.go_on_duty, second, None)
    bot.db.call(people.set_language, ON_DUTY, "en")
    cadre = bot.user(CADRE, "Li", language_code="en")
    officer = bot.user(ON_DUTY, "Zhang", language_code="en")
    colleague = bot.user(OFF_DUTY, "Wang")
    aba = bot.user(ABA, "Aba")
    async with emergency_running(bot):
        for role in (Role.DUTY_OFFICER, Role.ADMIN):  # in both languages' menus
            assert {"ack", "resolve"} <= set(menus.ROLE_COMMANDS[role])
        assert t("en", "cmd.ack").startswith("Take an alert") and "接手" in t("zh-Hans", "cmd.ack")
        await cadre.send("/sos")
        card = await colleague.wait_for("紧急求助")
        await officer.wait_for("SOS #")
        alert_id = alert_of(bot, people_["cadre"].id).id
        await until(lambda: sent_to(bot, OFF_DUTY) and sent_to(bot, ON_DUTY))

        await officer.send("/alerts")
        listing = await officer.wait_for("Open alerts")
        row = [b["text"] for b in listing.buttons]
        assert row[:3] == [f"✋ #{alert_id}", f"✅ #{alert_id}", f"🕑 #{alert_id}"]
        await officer.send(f"/alert {alert_id}")
        view = await officer.wait_for("Timeline")
        assert "round 1: delivered 2/2, " in view.text
        assert "Zhang On" in view.text and "Wang Off" in view.text
        assert "delivered to" not in view.text  # one line per round, not per message
        assert "✋ I'm on it" in [b["text"] for b in view.buttons]

        await aba.send(f"/ack {alert_id}")  # another area: as if it did not exist
        await aba.wait_for(f"找不到您可以查看的警报 #{alert_id}")
        await officer.press(f"✋ #{alert_id}", message=listing)
        taken = await officer.wait_edit(listing, "taken by Zhang On")
        assert "I'm on it" not in taken.text  # the call to action left with the status
        await cadre.wait_for("Zhang On (duty officer) is handling your call for help")
        # the colleague's card is brought up to date, without "press I'm on it"
        edited = await colleague.wait_edit(card, "Zhang On")
        assert "我来处理" not in edited.text
        await colleague.send(f"/ack {alert_id}")
        await colleague.wait_for("Zhang On 已经接手了这条求助")

        await colleague.send(f"/resolve {alert_id}")
        choose = await colleague.wait_for(f"警报 #{alert_id} 的结果是")
        await colleague.press("已现场处理", message=choose)
        await colleague.wait_for("请简单写下处理经过")
        await cadre.wait_for("Handled on site")
        await officer.send(f"/ack {alert_id}")
        await officer.wait_for("already closed")
        await officer.send(f"/resolve {alert_id}")
        await officer.wait_for("already closed")
        await officer.send("/ack ²")  # a superscript is not an id (full-width digits are)
        await officer.wait_for("Usage: /ack number")

        await officer.send(f"/alert {alert_id}")
        closed = await officer.wait_for(lambda m: "Timeline" in m.text and "closed by" in m.text)
        assert "I'm on it" not in closed.text
        # closed: only the CSV, and the row that turns the timeline's pages
        assert [b["text"] for b in closed.buttons] == ["⬇️ Full timeline (CSV)", "More ▶ 2/2"]
        await officer.press("⬇️ Full timeline (CSV)", message=closed)
        await officer.wait_for(lambda m: m.document is not None)
        data = officer.files[-1].data.decode("utf-8-sig")
        assert data.startswith("time,event")
        assert "delivered to Zhang On" in data and "delivered to Wang Off" in data
        assert "✋ taken by Zhang On" in data and "closed by Wang Off" in data
