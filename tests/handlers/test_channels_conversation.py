"""Alert channels beyond Telegram through the emulator: admins set the duty groups, officers
their SMS numbers, an SOS reaches WeCom, DingTalk and SMS even when Telegram fails
completely, and the link in those texts acknowledges."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator

import pytest_asyncio
from pydantic import SecretStr
from sqlmodel import select

from emulator.faults import Fault
from models import Alert, AlertStatus, Channel, DutyGroup, OutboxMessage, Person
from services import people
from services.alerts import raising
from services.alerts import timeline as alerts_timeline
from services.duty_channels import groups
from tests.support.channel_servers import DingTalkRobot, SmsGateway, WeComRobot, running_services
from tests.support.sos_support import ABA, CADRE, OFF_DUTY, ON_DUTY, emergency_running, staff, until

Services = tuple[WeComRobot, DingTalkRobot, SmsGateway]


@pytest_asyncio.fixture
async def services() -> AsyncIterator[Services]:
    async with running_services() as started:
        yield started


@pytest_asyncio.fixture
async def settings(settings, services):
    _, _, sms = services
    return settings.model_copy(
        update={
            "sms_url": sms.url("/sms"),
            "sms_headers": SecretStr(f'{{"X-Api-Key": "{sms.api_key}"}}'),
            "delivery_chat_rate": 50.0,
            "delivery_chat_burst": 20,
        }
    )


def channel_rows(bot) -> list[OutboxMessage]:
    with bot.db.session() as session:
        query = select(OutboxMessage).where(OutboxMessage.channel != "telegram")
        return list(session.exec(query))


def alert_of(bot, person_id: int) -> Alert:
    with bot.db.session() as session:
        return session.exec(select(Alert).where(Alert.person_id == person_id)).one()


async def test_an_sos_with_telegram_failing_completely_still_reaches_wecom_dingtalk_and_sms(
    bot, emulator, services
):
    wecom, dingtalk, sms = services
    people_ = staff(bot.db)
    admin = bot.admin()
    officer = bot.user(ON_DUTY, "Zhang")
    cadre = bot.user(CADRE, "Li", language_code="en")
    async with emergency_running(bot):
        typed = await admin.send(f"/dutygroup set 甘孜 wecom {wecom.webhook()} 甘孜值班群")
        saved = await admin.wait_for("已保存")
        assert "企业微信群「甘孜值班群」" in saved.text and "key=693a…5aaa" in saved.text
        assert wecom.key not in saved.text
        await until(lambda: typed.deleted)  # the message holding the key is gone
        await admin.send(
            f"/dutygroup set ganzi dingtalk {dingtalk.webhook()} {dingtalk.secret} 甘孜钉钉群"
        )
        saved = await admin.wait_for("钉钉群「甘孜钉钉群」")
        assert dingtalk.secret not in saved.text and dingtalk.token not in saved.text
        await officer.send("/sms 13800138001")
        await officer.wait_for("+8613800138001")

        emulator.faults.add(Fault.server_error(), methods="sendMessage")  # Telegram is down
        await cadre.send("/sos")
        await until(lambda: wecom.received and dingtalk.received and sms.received)
        await until(lambda: all(r.status == "sent" for r in channel_rows(bot)))
        alert = alert_of(bot, people_["cadre"].id)
        assert officer.unread == []  # nothing came through Telegram
        link = f"https://t.me/test_bot?start=ack_{alert.id}"
        assert link in wecom.texts[0] and link in dingtalk.texts[0] and link in sms.texts[0]
        assert sms.received[0].body["phone"] == "+8613800138001"
        shown = await bot.db.run(
            alerts_timeline.timeline_text, alert.id, "zh-Hans", bot.settings.zone
        )
        assert "正在发送给 Zhang On" in shown  # Telegram: still being retried

        emulator.faults.clear()
        await officer.send(f"/alert {alert.id}")
        timeline = await officer.wait_for("企业微信群「甘孜值班群」", timeout=15)
        (round_1,) = [line for line in timeline.text.splitlines() if "第 1 轮" in line]
        assert "已送达 3/4" in round_1 or "已送达 4/4" in round_1  # one line per round
        for name in ("钉钉群「甘孜钉钉群」", "企业微信群「甘孜值班群」", "短信 +86…8001"):
            assert name in round_1
    assert emulator.faults.count("server_error") > 0


async def test_the_link_in_a_channel_alert_acknowledges_for_an_officer_of_the_area(bot, services):
    people_ = staff(bot.db)
    officer = bot.user(ON_DUTY, "Zhang")
    other = bot.user(OFF_DUTY, "Wang")
    aba = bot.user(ABA, "Aba")
    cadre = bot.user(CADRE, "Li", language_code="en")
    alert_id = await bot.db.run(
        raising.raise_alert, person_id=people_["cadre"].id, cause="sos", policy=bot.policy
    )
    async with emergency_running(bot):
        await aba.send(f"/start ack_{alert_id}")
        await aba.wait_for("不在您负责的地区")
        await cadre.send(f"/start ack_{alert_id}")  # nobody acknowledges their own alert
        await cadre.wait_for("You cannot take or close your own alert")
        assert alert_of(bot, people_["cadre"].id).status == AlertStatus.OPEN

        await officer.send(f"/start ack_{alert_id}")
        taken = await officer.wait_for(f"您已接手求助 #{alert_id}")
        assert "Li Wei" in taken.text and "sos:res:" in str(taken.reply_markup)
        await cadre.wait_for("is handling your call for help")
        await other.send(f"/start ack_{alert_id}")
        await other.wait_for("Zhang On 已经接手了这条求助")
    alert = alert_of(bot, people_["cadre"].id)
    assert alert.status == AlertStatus.ACKNOWLEDGED and alert.acknowledged_by == people_["on"].id


async def test_admins_test_list_and_remove_duty_groups_and_see_a_bad_key(bot, services):
    wecom, _, _ = services
    staff(bot.db)
    admin = bot.admin()
    officer = bot.user(ON_DUTY, "Zhang")
    async with emergency_running(bot):
        await officer.send("/dutygroup")
        await officer.wait_for("这是管理员使用的功能")

        await admin.send(f"/dutygroup set 甘孜 wecom {wecom.webhook()} 甘孜值班群")
        saved = await admin.wait_for("已保存")
        await admin.press("🧪 测试 #1", message=saved)
        await admin.wait_for("测试消息已送达 企业微信群「甘孜值班群」")
        assert "测试消息" in wecom.texts[0]

        wrong = "deadbeef-0000-4bc4-97a0-0ec2sifa0000"
        await admin.send(f"/dutygroup set 甘孜 wecom {wecom.webhook(wrong)}")
        saved = await admin.wait_for("已保存")
        await admin.press("🧪 测试 #1", message=saved)
        failed = await admin.wait_for("未能送达")
        assert "errcode 93000" in failed.text and wrong not in failed.text
        told = await admin.wait_for("拒收告警消息")  # told once that the group refuses
        assert "/dutygroup set" in told.text

        await admin.send("/dutygroup")
        listing = await admin.wait_for("值班群（SOS")
        assert "key=dead…0000" in listing.text and "被拒收" in listing.text
        assert wrong not in listing.text
        assert "短信网关：已配置" in listing.text
        await admin.press("🗑 删除 #1", message=listing)
        await admin.wait_edit(listing, "删除 企业微信群「甘孜值班群」？")
        await admin.press("确认删除", message=listing)
        await admin.wait_edit(listing, "已删除")
    with bot.db.session() as session:
        assert session.exec(select(DutyGroup)).all() == []


async def test_an_officer_sets_and_stops_their_sms_number_and_a_cadre_cannot(bot, services):
    people_ = staff(bot.db)
    officer = bot.user(ON_DUTY, "Zhang")
    cadre = bot.user(CADRE, "Li", language_code="en")
    await cadre.send("/sms 13800138009")
    await cadre.wait_for("This is for duty officers and administrators.")
    await officer.send("/sms")
    shown = await officer.wait_for("告警短信")
    assert "还没有设置" in shown.text
    await officer.press("使用我资料里的号码 +8613800138000", message=shown)
    await officer.wait_edit(shown, "告警短信会发到 +8613800138000")
    with bot.db.session() as session:
        stored = session.get(Person, people_["on"].id)
        assert stored.sms_phone == "+8613800138000" and stored.sms_consented_at is not None
    await officer.send("/sms 12345")
    await officer.wait_for("/sms off")  # the usage, after the invalid-number message
    await officer.send("/sms off")
    await officer.wait_for("已停止告警短信")
    with bot.db.session() as session:
        assert session.get(Person, people_["on"].id).sms_phone is None


async def test_a_hanging_wecom_robot_does_not_hold_up_telegram(bot, services):
    wecom, _, _ = services
    people_ = staff(bot.db)
    officer = bot.user(ON_DUTY, "Zhang")
    cadre = bot.user(CADRE, "Li", language_code="en")
    await bot.db.run(
        groups.set_group,
        people_["admin"],
        groups.GroupRequest("ganzi", Channel.WECOM, wecom.webhook(), name="甘孜值班群"),
    )
    wecom.fail("hang")
    async with emergency_running(bot):
        await cadre.send("/sos")
        await until(lambda: wecom.hanging == 1)  # WeCom does not answer...
        await officer.wait_for("紧急求助")  # ...and Telegram goes on
        await cadre.wait_for("Help has been called")
        assert wecom.received == []
        wecom.release()
        await until(lambda: wecom.received)


async def test_group_and_sms_tests_report_within_a_minute_with_a_reason_to_act_on(bot, services):
    """#12 point 9: a duty-group test whose host does not exist, and an SMS test the
    gateway keeps failing, are reported after two attempts (not retried for ever), with
    what to do, and /dutygroup shows both."""
    _, _, sms = services
    staff(bot.db)
    bot.db.call(people.set_language, ON_DUTY, "en")
    admin = bot.admin()
    officer = bot.user(ON_DUTY, "Zhang", language_code="en")
    async with emergency_running(bot):
        bad = "https://qyapi.no-such-host.invalid/cgi-bin/webhook/send?key=0000-1111"
        await admin.send(f"/dutygroup set 甘孜 wecom {bad} 甘孜值班群")
        saved = await admin.wait_for("已保存")
        started = time.monotonic()
        await admin.press("🧪 测试 #1", message=saved)
        await admin.wait_for("一分钟内会告诉您结果")
        failed = await admin.wait_for("测试消息未能送达", timeout=60)
        assert time.monotonic() - started < 60
        assert "找不到主机：请检查 webhook 地址" in failed.text
        await admin.send("/dutygroup")
        listing = await admin.wait_for("值班群（SOS")
        assert "找不到主机" in listing.text

        await officer.send("/sms 13800138001")
        await officer.wait_for("+8613800138001")
        await officer.send("/sms")
        shown = await officer.wait_for("/sms off")
        sms.fail("server_error", times=2)
        await officer.press("🧪 Send me a test text", message=shown)
        await officer.wait_for("you will have the result within a minute")
        failed = await officer.wait_for("did not reach", timeout=60)
        assert "the service is busy or failing: try again later (HTTP 500" in failed.text
        await officer.press("🧪 Send me a test text", message=shown)
        ok = await officer.wait_for("reached", timeout=30)
        assert "+86…8001" in ok.text
        assert "测试短信" not in sms.texts[-1] and "Test" in sms.texts[-1]
        await admin.send("/dutygroup")
        listing = await admin.wait_for("值班群（SOS")
        assert "短信网关：已配置" in listing.text  # the last test went through
    with bot.db.session() as session:
        rows = session.exec(select(OutboxMessage).where(OutboxMessage.channel != "telegram"))
        assert all(r.status in ("sent", "failed") for r in rows)  # nothing left retrying
