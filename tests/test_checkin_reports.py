"""/history, /trend, /reminders for the cadre; /today, /export and the chart button for
duty officers, always limited to their area."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta

import time_machine
from openpyxl import load_workbook
from PIL import Image
from sqlmodel import select

from models import AuditEntry, ReminderPreference
from services.health import checkins
from services.health.assessment import Readings
from services.health.charts import PNG_SIGNATURE
from tests.test_checkin_helpers import CONFIG, make_person, officer

SPO2_LINE = (0x15, 0x65, 0xC0)  # the colour of the SpO2 series


def past_checkins(db, person, values):
    """Check-ins on the previous days (oldest first) at 09:00 local."""
    now = datetime.now(UTC)
    for days_ago, readings in values:
        at = (now - timedelta(days=days_ago)).replace(hour=1, minute=0, second=0, microsecond=0)
        with time_machine.travel(at, tick=False):
            db.call(checkins.submit, person.id, readings, config=CONFIG)


def week_of_readings():
    return [
        (
            6 - i,
            Readings(
                headache=i % 2,
                gi=0,
                fatigue=i % 3,
                dizziness=0,
                functional=0,
                spo2=88 - i,
                heart_rate=70 + 3 * i,
                temperature_c=36.4 + i / 10,
            ),
        )
        for i in range(7)
    ]


async def test_history_shows_the_last_check_ins_compactly(bot):
    person = make_person(bot.db, 1001)
    past_checkins(bot.db, person, week_of_readings())
    user = bot.user(1001, "Li", language_code="en")
    await user.send("/history")
    history = await user.wait_for("last 7 check-ins")
    lines = history.text.splitlines()
    assert "SpO2 82%" in lines[1] and "HR 88/min" in lines[1]  # the newest first
    assert "SpO2 88%" in lines[7]
    assert "not a diagnosis" in history.text
    stranger = bot.user(1002, "Other", language_code="en")
    await stranger.send("/history")
    assert "SpO2" not in (await stranger.next_message()).text


async def test_trend_sends_a_png_chart_that_shows_data(bot):
    person = make_person(bot.db, 1001, language="zh-Hans")
    user = bot.user(1001, "Li")
    await user.send("/trend")
    assert "还画不出" in (await user.next_message()).text
    past_checkins(bot.db, person, week_of_readings())
    await user.send("/trend")
    message = await user.wait_for(lambda m: m.photo is not None)
    assert "这不是医学诊断" in message.caption and "7" in message.caption
    png = user.files[-1].data
    assert png.startswith(PNG_SIGNATURE)
    image = Image.open(io.BytesIO(png)).convert("RGB")
    assert image.size[0] >= 600 and image.size[1] >= 600
    colours = image.getcolors(maxcolors=1_000_000)
    assert len(colours) > 50  # not a blank picture
    line_pixels = sum(count for count, rgb in colours if rgb == SPO2_LINE)
    assert line_pixels > 100  # the SpO2 series is drawn


async def test_reminders_time_pause_and_resume(bot):
    person = make_person(bot.db, 1001)
    user = bot.user(1001, "Li", language_code="en")
    await user.send("/reminders")
    status = await user.wait_for("Daily check-in reminder")
    assert (
        "<b>09:00</b>" in status.raw_text if hasattr(status, "raw_text") else "09:00" in status.text
    )
    await user.press("08:00")
    assert (await user.callback_answer()).text == "Saved"
    edited = await user.wait_edit(status, "08:00")
    assert "08:00" in edited.text
    await user.press("Pause 7 days")
    await user.wait_edit(status, "Paused from")
    await user.press("▶️ Resume reminders")
    await user.wait_edit(status, lambda m: "Paused" not in m.text)
    await user.send("/reminders 25:00")
    assert "between 05:00 and 13:59" in (await user.next_message()).text
    await user.next_message()
    await user.send("/reminders pause 2099-01-01 2099-01-10")
    assert "Paused from 2099-01-01 to 2099-01-10" in (await user.wait_for("Paused")).text
    with bot.db.session() as s:
        pref = s.get(ReminderPreference, person.id)
        audits = [a.action for a in s.exec(select(AuditEntry)) if a.action.startswith("checkin.")]
    assert pref.local_time == "08:00" and pref.paused_until.isoformat() == "2099-01-10"
    assert audits.count("checkin.paused") == 2 and "checkin.resumed" in audits


async def test_zhejiang_postings_have_no_altitude_reminders(bot):
    make_person(bot.db, 1001, prefecture="zhejiang")
    user = bot.user(1001, "Li", language_code="en")
    await user.send("/reminders")
    message = await user.next_message()
    assert "Zhejiang" in message.text and not message.inline_keyboard


def _area_setup(bot):
    ganzi = make_person(bot.db, 1001, "Ganzi Gao", prefecture="ganzi")
    aba = make_person(bot.db, 1002, "Aba An", prefecture="aba")
    quiet = make_person(bot.db, 1003, "Quiet Qu", prefecture="ganzi")
    amber = Readings(headache=1, gi=1, fatigue=1, dizziness=0, functional=0, spo2=84)
    now = datetime.now(UTC)
    with time_machine.travel(now - timedelta(minutes=5), tick=False):
        bot.db.call(checkins.submit, ganzi.id, amber, config=CONFIG)
        bot.db.call(checkins.submit, aba.id, Readings(spo2=90), config=CONFIG)
    duty = officer(bot.db, 5001, prefecture="ganzi", language="en")
    return ganzi, aba, quiet, duty


async def test_today_shows_only_the_officers_area(bot):
    _, aba, quiet, _ = _area_setup(bot)
    user = bot.user(5001, "Zhao", language_code="en")
    await user.send("/today")
    today = await user.wait_for("Today's check-ins")
    assert "Ganzi" in today.text and "Aba" not in today.text
    assert "AMBER: Ganzi Gao" in today.text and "Aba An" not in today.text
    assert "checked in 1/" in today.text
    cadre = bot.user(1001, "Gao", language_code="en")
    await cadre.send("/today")
    refusal = await cadre.next_message()
    assert "Ganzi Gao" not in refusal.text and "Aba" not in refusal.text
    with bot.db.session() as s:
        assert s.exec(select(AuditEntry).where(AuditEntry.action == "denied.view_area")).all()
    assert quiet.id and aba.id


async def test_export_csv_and_xlsx_limited_to_the_area_and_audited(bot):
    _, aba, _, duty = _area_setup(bot)
    user = bot.user(5001, "Zhao", language_code="en")
    await user.send("/export")
    await user.wait_for("Export check-ins")
    await user.press("Last 7 days")
    await user.wait_for(lambda m: m.document is not None and m.document.file_name.endswith(".xlsx"))
    csv_file, xlsx_file = user.files[-2:]
    assert csv_file.filename.endswith(".csv") and xlsx_file.filename.endswith(".xlsx")
    rows = list(csv.DictReader(io.StringIO(csv_file.data.decode("utf-8-sig"))))
    assert [r["name"] for r in rows] == ["Ganzi Gao"]
    assert rows[0]["tier"] == "amber" and rows[0]["spo2"] == "84"
    sheet = load_workbook(io.BytesIO(xlsx_file.data)).active
    values = list(sheet.values)
    assert values[0][:3] == ("checkin_id", "local_time", "name") and len(values) == 2
    assert values[1][2] == "Ganzi Gao"
    await user.send("/export 2026-13-01 2026-12-01")
    assert "year-month-day" in (await user.next_message()).text
    with bot.db.session() as s:
        (entry,) = s.exec(select(AuditEntry).where(AuditEntry.action == "checkin.exported")).all()
    assert entry.detail["rows"] == 1 and entry.detail["prefectures"] == ["ganzi"]
    assert "84" not in str(entry.detail)
    assert aba.id and duty.id


async def test_the_chart_button_refuses_people_outside_the_area(bot):
    ganzi, aba, _, _ = _area_setup(bot)
    user = bot.user(5001, "Zhao", language_code="en")
    await user.send("/help")
    await user.next_message()
    await user.press_forged(f"ct:{aba.id}")
    answer = await user.callback_answer()
    assert answer.show_alert and "may not see" in answer.text
    await user.press_forged(f"ct:{ganzi.id}")
    await user.wait_for(lambda m: m.photo is not None)
    cadre = bot.user(1002, "An", language_code="en")
    await cadre.send("/help")
    await cadre.next_message()
    await cadre.press_forged(f"ct:{ganzi.id}")
    assert (await cadre.callback_answer()).show_alert
    with bot.db.session() as s:
        denied = s.exec(select(AuditEntry).where(AuditEntry.action == "denied.view_area")).all()
    assert {d.actor_telegram_id for d in denied} == {5001, 1002}
