"""The logs of a whole scenario through the real `cadre-bot run` process, at DEBUG and as
JSON: every line is a JSON object naming its level, logger and message (and the update and
alert it is about), and no line carries the token, a phone number or a health reading."""

from __future__ import annotations

import json
import re

import pytest
from sqlmodel import select

from models import Alert, CheckIn
from tests.flows import begin_in_english
from tests.sos_support import CADRE, ON_DUTY, BotProcess, process_env, staff, until
from tests.test_checkin_helpers import markup_has

pytestmark = pytest.mark.e2e

NEWCOMER = 5005
SHARED_PHONE = "8613912345678"  # what Telegram puts in a shared contact
TYPED_CONTACT_PHONE = "139-8765-4321"
PHONES = ("13912345678", "13987654321", "13800138000", "13900139000")  # + the factories'
READINGS = ("81", "117", "38.7")  # SpO2, heart rate, temperature, typed by the cadre


async def register_sharing_the_phone(emulator) -> None:
    user = emulator.user(NEWCOMER, "Chen", language_code="en", phone_number=SHARED_PHONE)
    await begin_in_english(user)
    await user.send("Chen Jie")
    await user.wait_for("phone number")
    await user.share_contact()
    await user.wait_for("home unit")
    await user.send("Hangzhou Health Commission")
    await user.wait_for("Where are you posted?")
    await user.press("f:pref:ganzi")
    await user.wait_for("choose your county")
    await user.press("f:cty:ganzi.litang")
    await user.wait_for("county seat")
    await user.press("f:alt:seat")
    await user.wait_for("assignment start")
    await user.press("f:start:today")
    await user.wait_for("due to end")
    await user.press("f:end:1")
    await user.wait_for("emergency contact")
    await user.send("Wang Fang")
    await user.wait_for("emergency contact's phone")
    await user.send(TYPED_CONTACT_PHONE)
    await user.wait_for("check your details")
    await user.press("f:ok:submit")


async def check_in_with_readings(user) -> None:
    await user.send("/checkin")
    await user.wait_for(markup_has("ci:feeling:fine"), timeout=15)
    await user.press("ci:feeling:unwell")
    await user.wait_for(markup_has("ci:flags:none"))
    await user.press("ci:flags:none")
    await user.wait_for(markup_has("ci:cough:no"))
    await user.press("ci:cough:no")
    for item in ("headache", "gi", "fatigue", "dizziness"):
        await user.wait_for(markup_has(f"ci:{item}:"))
        await user.press(f"ci:{item}:0")
    await user.wait_for(markup_has("ci:spo2:"))
    await user.send(READINGS[0])
    await user.wait_for(markup_has("ci:hr:none"))
    await user.send(READINGS[1])
    await user.wait_for(markup_has("ci:temp:none"))
    await user.send(READINGS[2])
    await user.wait_for(markup_has("ci:bp:none"))
    await user.press("ci:bp:none")
    await user.wait_for(markup_has("ci:note:none"))
    await user.press("ci:note:none")


def joined_digits(text: str) -> str:
    """'+86 139-1234 (5678)' -> '+8613912345678': phone numbers in any formatting."""
    return re.sub(r"(?<=\d)[\s()-]+(?=\d)", "", text)


async def test_a_full_scenario_logs_json_lines_without_secrets_phones_or_readings(
    emulator, db, database_url, tmp_path
):
    staff(db)
    env = process_env(emulator, database_url, CADRE_LOG_LEVEL="DEBUG", CADRE_LOG_FORMAT="json")
    process = BotProcess(env, tmp_path)
    await process.start()
    try:
        admin = emulator.user(9001, "Admin", language_code="en")
        await admin.send("/help")
        await admin.wait_for("/help", timeout=30)  # the process has started
        await register_sharing_the_phone(emulator)
        # a bootstrapped admin is answered in their Telegram app's language (English)
        request = await admin.wait_for("New registration request", timeout=15)
        await admin.press("✅ Approve", message=request)
        await emulator.user(NEWCOMER).wait_for("has been approved", timeout=15)

        cadre = emulator.user(CADRE, "Li", language_code="en")
        officer = emulator.user(ON_DUTY, "Zhang")
        await check_in_with_readings(cadre)
        await until(lambda: db.call(lambda s: s.exec(select(CheckIn)).first()) is not None)
        await cadre.send("/sos")
        await until(lambda: db.call(lambda s: s.exec(select(Alert)).first()) is not None)
        alert = db.call(lambda s: s.exec(select(Alert)).first())
        notice = await officer.wait_for(
            lambda m: f"sos:ack:{alert.id}" in str(m.reply_markup), timeout=15
        )
        await officer.press(f"sos:ack:{alert.id}", message=notice)
        await officer.callback_answer()
        await cadre.wait_for("is handling your call for help", timeout=15)
    finally:
        code, log = await process.stop()
    assert code == 0, log
    checkin = db.call(lambda s: s.exec(select(CheckIn)).first())
    assert checkin.spo2 == 81 and checkin.heart_rate == 117  # the readings did reach the bot

    lines = log.splitlines()
    assert len(lines) > 5
    records = []
    for line in lines:
        record = json.loads(line)  # every line is one JSON object
        assert {"time", "level", "logger", "message"} <= record.keys(), line
        records.append(record)
    sos_line = next(r for r in records if r["message"].startswith("SOS alert"))
    assert sos_line["update_id"] > 0 and sos_line["alert_id"] == alert.id
    assert any(r["level"] == "DEBUG" or r["level"] == "INFO" for r in records)

    token_secret = emulator.token.split(":", 1)[1]
    for record in records:
        text = " ".join(str(v) for k, v in record.items() if k != "time")
        assert token_secret not in text, text
        digits = joined_digits(text)
        for phone in PHONES:
            assert phone not in digits, text
        # Readings as numbers of their own (not inside ids, nor a latency in ms).
        for reading in READINGS:
            pattern = rf"(?<![\d.]){re.escape(reading)}(?![\d.])(?! ?ms)"
            assert not re.search(pattern, record["message"] + record.get("exception", "")), text
