"""The logs of a whole scenario through the real `cadre-bot run` process, at DEBUG and as
JSON: every line is a JSON object naming its level, logger and message (and the update and
alert it is about), and no line carries the token, a phone number or a health reading."""

from __future__ import annotations

import json
import re

import pytest
from sqlmodel import select

from models import Alert, CheckIn
from tests.support.checkin_helpers import markup_has
from tests.support.flows import begin_in_english
from tests.support.sos_support import CADRE, ON_DUTY, BotProcess, process_env, staff, until

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


# What a failing database says when it refuses a check-in (a trigger stands in for it):
# readings by their names, a phone number and something shaped like a bot token.
REFUSAL = (
    "SpO2 86 out of range; HR 101; heart rate 130; 血氧 86; call 13712340000; "
    "5123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsawq"
)
REFUSAL_LEAKS = ("86", "101", "130", "13712340000", "AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsawq")


def _refuse_checkins(engine, on: bool) -> None:
    with engine.begin() as connection:
        if engine.dialect.name == "postgresql":
            if on:
                connection.exec_driver_sql(
                    "CREATE FUNCTION refuse_checkin() RETURNS trigger AS $$ BEGIN "
                    f"RAISE EXCEPTION '{REFUSAL}'; END $$ LANGUAGE plpgsql"
                )
                connection.exec_driver_sql(
                    "CREATE TRIGGER refuse_checkin BEFORE INSERT ON health_checkin "
                    "FOR EACH ROW EXECUTE FUNCTION refuse_checkin()"
                )
            else:
                connection.exec_driver_sql(
                    "DROP TRIGGER IF EXISTS refuse_checkin ON health_checkin"
                )
                connection.exec_driver_sql("DROP FUNCTION IF EXISTS refuse_checkin()")
        elif on:
            connection.exec_driver_sql(
                "CREATE TRIGGER refuse_checkin BEFORE INSERT ON health_checkin "
                f"BEGIN SELECT RAISE(ABORT, '{REFUSAL}'); END"
            )
        else:
            connection.exec_driver_sql("DROP TRIGGER IF EXISTS refuse_checkin")


@pytest.mark.parametrize("log_format", ["plain", "json"])
async def test_a_handler_error_carrying_readings_is_logged_masked(
    emulator, db, engine, database_url, tmp_path, log_format
):
    """The database refuses a cadre's check-in with a text naming readings, a phone and a
    token, and the statement it refused carries the readings the cadre typed. The real
    process's error handler logs the error with its traceback, plain or JSON, and none of
    it reaches the log; the cadre is told that something went wrong."""
    staff(db)
    _refuse_checkins(engine, True)
    try:
        env = process_env(emulator, database_url, CADRE_LOG_FORMAT=log_format)
        process = BotProcess(env, tmp_path)
        await process.start()
        try:
            cadre = emulator.user(CADRE, "Li", language_code="en")
            await check_in_with_readings(cadre)
            await cadre.wait_for("something went wrong", timeout=15)
        finally:
            code, log = await process.stop()
    finally:
        _refuse_checkins(engine, False)
    assert code == 0, log
    if log_format == "json":
        records = [json.loads(line) for line in log.splitlines()]
        error = next(r for r in records if r["message"] == "error while handling an update")
        text = error["message"] + "\n" + error["exception"]
    else:
        text = log[log.index("error while handling an update") :]
    # The error and where it happened are there to read; the data is not.
    assert "Traceback" in text and "health_checkin" in text and "SpO2 <reading>" in text, text
    assert "<phone>" in text and "<token>" in text, text
    checked = re.sub(r", line \d+,", ", line N,", log)  # a traceback's line numbers
    for leaked in (*REFUSAL_LEAKS, *READINGS):
        pattern = rf"(?<![\d.]){re.escape(leaked)}(?![\d.])"
        assert not re.search(pattern, checked), f"{leaked} in the log:\n{log}"
