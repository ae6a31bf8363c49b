"""Alerts beyond Telegram with the real `cadre-bot run` process: the SMS gateway configured
from the environment, duty groups from the database, Telegram failing completely."""

from __future__ import annotations

import json

import pytest
from sqlmodel import select

from emulator.faults import Fault
from models import Alert, Channel
from services.duty_channels import groups
from services.duty_channels import sms as duty_channels_sms
from services.duty_channels.groups import GroupRequest
from tests.support.channel_servers import running_services
from tests.support.sos_support import CADRE, BotProcess, process_env, staff, until

pytestmark = pytest.mark.e2e


async def test_the_real_process_sends_an_sos_to_wecom_dingtalk_and_sms_while_telegram_is_down(
    emulator, db, database_url, tmp_path
):
    people_ = staff(db)
    async with running_services() as (wecom, dingtalk, sms):
        admin = people_["admin"]
        db.call(
            groups.set_group,
            admin,
            GroupRequest("ganzi", Channel.WECOM, wecom.webhook(), name="甘孜值班群"),
        )
        db.call(
            groups.set_group,
            admin,
            GroupRequest(
                "ganzi", Channel.DINGTALK, dingtalk.webhook(), dingtalk.secret, "甘孜钉钉群"
            ),
        )
        db.call(duty_channels_sms.set_sms, people_["on"], "13800138001")
        env = process_env(
            emulator,
            database_url,
            CADRE_SMS_URL=sms.url("/sms"),
            CADRE_SMS_HEADERS=json.dumps({"X-Api-Key": sms.api_key}),
            CADRE_SMS_BODY_TEMPLATE='{"phone": "{phone}", "text": "{text}"}',
            CADRE_LOG_LEVEL="INFO",
        )
        process = BotProcess(env, tmp_path)
        await process.start()
        try:
            cadre = emulator.user(CADRE, "Li", language_code="en")
            await cadre.send("/help")
            await cadre.wait_for("/help", timeout=30)
            emulator.faults.add(Fault.server_error(), methods="sendMessage")
            await cadre.send("/sos")
            await until(lambda: wecom.received and dingtalk.received and sms.received, 30)
        finally:
            code, log = await process.stop()
        with db.session() as session:
            alert = session.exec(select(Alert)).one()
    assert code == 0, log
    assert "Traceback" not in log
    link = f"https://t.me/test_bot?start=ack_{alert.id}"
    assert link in wecom.texts[0] and link in dingtalk.texts[0] and link in sms.texts[0]
    assert sms.received[0].body["phone"] == "+8613800138001"
    for secret in (wecom.key, dingtalk.token, dingtalk.secret, sms.api_key, "13800138001"):
        assert secret not in log
