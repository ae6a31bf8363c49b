"""/history, /trend, /reminders for the cadre; /today, /export and the chart button for
duty officers, always limited to their area."""

from __future__ import annotations

import csv
import io
import re
from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from openpyxl import load_workbook
from PIL import Image
from sqlmodel import select

from models import AuditEntry, ReminderPreference
from services.health import checkins, reports
from services.health.assessment import Readings
from services.health.charts import PNG_SIGNATURE
from services.i18n import t
from tests.support.checkin_helpers import CONFIG, POLICY, make_person, officer
from tests.support.screens import SCREEN, lines_on_phone, page_button

SPO2_LINE = (0x15, 0x65, 0xC0)  # the colour of the SpO2 series


def past_checkins(db, person, values):
    """Check-ins on the previous days (oldest first) at 09:00 local."""
    now = datetime.now(UTC)
    for days_ago, readings in values:
        at = (now - timedelta(days=days_ago)).replace(hour=1, minute=0, second=0, microsecond=0)
        with time_machine.travel(at, tick=False):
            db.call(checkins.submit, person.id, readings, config=CONFIG, policy=POLICY)


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
    assert "not a diagnosis" in (await user.wait_for("HR heart rate")).text
    for back in ("◀ 1/3", "◀ 2/3"):  # pages 2 and 3 of handlers.checkin.HISTORY_PAGE
        await user.press(page_button(history), message=history)
        await user.wait_edit(history, lambda m, b=back: b in [x["text"] for x in m.buttons])
    assert page_button(history) is None  # the last page
    assert "SpO2 88%" in history.text.splitlines()[-1]  # the oldest last
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
        bot.db.call(checkins.submit, ganzi.id, amber, config=CONFIG, policy=POLICY)
        bot.db.call(checkins.submit, aba.id, Readings(spo2=90), config=CONFIG, policy=POLICY)
    duty = officer(bot.db, 5001, prefecture="ganzi", language="en")
    return ganzi, aba, quiet, duty


async def test_today_shows_only_the_officers_area(bot):
    _, aba, quiet, _ = _area_setup(bot)
    user = bot.user(5001, "Zhao", language_code="en")
    await user.send("/today")
    today = await user.wait_for("Today's check-ins")
    assert "Ganzi" in today.text and "Aba" not in today.text
    assert "AMBER (1): Ganzi Gao" in today.text and "Aba An" not in today.text
    assert "checked in 1/3" in today.text
    # registered today: counted as not due today (monitored from tomorrow), and named in
    # that state's list, a button away (the summary names RED and AMBER only, issue 16)
    await user.press("td:none:0", message=today)
    listing = await user.wait_for("Not due today: 2 people")
    assert "1. Quiet Qu" in listing.text and "2. Officer Zhao" in listing.text
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


# ---------------------------------------------------------------------------- /today names

FINE = Readings(headache=0, gi=0, fatigue=0, dizziness=0, functional=0, spo2=90, heart_rate=76)
AMBER = Readings(headache=2, gi=1, fatigue=1, dizziness=0, functional=1, spo2=86, heart_rate=80)
RED = Readings(red_flags=frozenset({"breathless_rest"}))
GROUP_LINE = {
    "en": re.compile(
        r"^(?P<label>.+?) \((?P<count>\d+)\): (?P<names>.*?)"
        r"(?:,? ?and (?P<more>\d+) more (?P<noun>person|people))?$"
    ),
    "zh-Hans": re.compile(
        r"^(?P<label>.+?)（(?P<count>\d+)）：(?P<names>.*?)"
        r"(?:；?另有 (?P<more>\d+) 人)?$"
    ),
}
HEADER = {
    "en": re.compile(
        r"checked in (\d+)/(\d+) · 🟠 (\d+) · 🔴 (\d+) · missing (\d+) · paused (\d+)"
        r" · not due (\d+)"
    ),
    "zh-Hans": re.compile(
        r"已打卡 (\d+)/(\d+) · 🟠 (\d+) · 🔴 (\d+) · 未打卡 (\d+) · 暂停 (\d+) · 无需打卡 (\d+)"
    ),
}


def _population(bot, *, green=7, missing=5, lang="en"):
    """Ganzi, registered three days ago: 1 RED, 2 AMBER, `green` GREEN (one of them with the
    same readings five days running), `missing` without a check-in, 2 paused, and one
    registered today (not due); Aba: 3 people the Ganzi officer must never see. Returns
    {state: names} of Ganzi as the officer's /today should count them."""
    now = datetime.now(UTC)
    today = checkins.local_date(now, CONFIG.zone)
    made: dict[str, list[str]] = {}
    with time_machine.travel(now - timedelta(days=3), tick=False):
        duty = officer(bot.db, 5001, prefecture="ganzi", language=lang, name="Officer Zhao")
        tid = iter(range(1001, 2000))
        for state, n in (
            ("red", 1),
            ("amber", 2),
            ("checked", green),
            ("missing", missing),
            ("paused", 2),
        ):
            made[state] = [f"{state.title()} {i}" for i in range(n)]
        people_of = {
            state: [make_person(bot.db, next(tid), name) for name in names]
            for state, names in made.items()
        }
        aba = [make_person(bot.db, next(tid), f"Aba {i}", prefecture="aba") for i in range(3)]
    made["missing"].append("Officer Zhao")
    gamer = people_of["checked"][0]
    past_checkins(bot.db, gamer, [(days, FINE) for days in range(4, 0, -1)])
    with time_machine.travel(now - timedelta(minutes=5), tick=False):
        for state, readings in (("red", RED), ("amber", AMBER), ("checked", FINE)):
            for person in people_of[state]:
                bot.db.call(checkins.submit, person.id, readings, config=CONFIG, policy=POLICY)
        for person in people_of["paused"]:
            bot.db.call(checkins.pause, person, today, today + timedelta(days=2))
        bot.db.call(checkins.submit, aba[0].id, AMBER, config=CONFIG, policy=POLICY)
    make_person(bot.db, 1999, "New Today")
    made["none"] = ["New Today"]
    made["suspicious"] = [gamer.real_name]
    assert duty.id
    return made


def _groups(text: str, lang: str) -> dict[str, tuple[int, list[str], int]]:
    """The /today screen's group lines: label -> (count, names shown, "more" number)."""
    found = {}
    for line in text.splitlines():
        match = GROUP_LINE[lang].match(line)
        if match:
            names = [n for n in match["names"].split(", ") if n]
            more = int(match["more"] or 0)
            if match.groupdict().get("noun"):  # the English plural follows the number
                assert match["noun"] == ("person" if more == 1 else "people"), line
            found[match["label"]] = (int(match["count"]), names, more)
    return found


LABELS = {
    "en": {
        "red": "🔴 RED",
        "amber": "🟠 AMBER",
        "missing": "⏰ Not yet",
        "paused": "⏸ Paused",
        "checked": "🟢 Checked in, fine",
        "none": "➖ Not due today",
        "suspicious": "❓ Identical readings day after day, please verify",
    },
    "zh-Hans": {
        "red": "🔴 危险",
        "amber": "🟠 需关注",
        "missing": "⏰ 未打卡",
        "paused": "⏸ 暂停",
        "checked": "🟢 已打卡，正常",
        "none": "➖ 今日无需打卡",
        "suspicious": "❓ 连续多天读数完全相同，请核实",
    },
}


@pytest.mark.parametrize("lang", ["en", "zh-Hans"])
async def test_today_names_the_most_urgent_and_counts_every_state(bot, lang):
    made = _population(bot, lang=lang)
    user = bot.user(5001, "Zhao", language_code=lang)
    await user.send("/today")
    today = await user.wait_for(lambda m: "/" in m.text and HEADER[lang].search(m.text))
    found = HEADER[lang].search(today.text)
    checked, total, amber, red, missing, paused, not_due = map(int, found.groups())
    groups = _groups(today.text, lang)
    # RED, AMBER and the identical readings by name (issue 16: the most urgent, on one
    # screen); every state a button with its count, its names in the list it opens
    named = ("red", "amber", "suspicious")
    by_state = {state: groups.get(LABELS[lang][state]) for state in named}
    assert None not in by_state.values(), today.text
    for state, (count, names, more) in by_state.items():
        # every count: the names it counts, and an honest "and N more" for the rest
        assert count == len(made[state]), (state, today.text)
        assert len(names) + more == count, (state, today.text)
        assert set(names) <= set(made[state]), (state, names)
    assert (red, amber) == (by_state["red"][0], by_state["amber"][0])
    assert (missing, paused) == (len(made["missing"]), len(made["paused"]))
    assert not_due == len(made["none"])  # the line adds up to the total (issue 16)
    assert checked + missing + paused + not_due == total
    counted = {b["callback_data"].split(":")[1]: b["text"] for b in today.buttons}
    for state in reports.LISTED:
        icon = LABELS[lang][state].split(" ")[0]
        assert counted[state] == f"{icon} {len(made[state])}", state
    assert checked == sum(len(made[s]) for s in ("red", "amber", "checked"))
    assert total == sum(len(made[s]) for s in reports.LISTED)
    assert "Aba" not in today.text
    assert lines_on_phone(today.text) <= SCREEN  # one phone screen
    button = t(lang, "health.today.all.button")
    assert button in [b["text"] for b in today.buttons]


async def _walk_pages(user, first) -> dict[str, list[str]]:
    """Press More ▶ from `first` to the last page: {state label line: names, in order}."""
    seen: dict[str, list[str]] = {}
    page = first
    while True:
        title, *lines = page.text.splitlines()
        assert len(page.text.splitlines()) <= 13  # one screen
        names = [
            re.sub(r"^\d+\. ", "", line).split(" · ")[0].removesuffix(" ❓")
            for line in lines
            if re.match(r"^\d+\. ", line)
        ]
        assert len(names) <= reports.PAGE_SIZE
        seen.setdefault(title, []).extend(names)
        more = page_button(page)
        if more is None:
            return seen
        before = page.text
        await user.press(more, message=page)
        page = await user.wait_edit(page, lambda m, before=before: m.text != before)


@pytest.mark.parametrize("lang", ["en", "zh-Hans"])
async def test_today_all_pages_through_everyone_of_the_area_only(bot, lang):
    made = _population(bot, green=4, missing=23, lang=lang)
    user = bot.user(5001, "Zhao", language_code=lang)
    await user.send("/today all")
    first = await user.wait_for(lambda m: re.search(r"(page|第) 1/\d", m.text or ""))
    people = "1 person" if lang == "en" else "1 人"
    assert people in first.text.splitlines()[0]
    seen = await _walk_pages(user, first)
    listed = {state: [] for state in reports.LISTED}
    for title, names in seen.items():
        (state,) = [s for s in reports.LISTED if LABELS[lang][s] in title]
        listed[state] += names
    for state in reports.LISTED:
        assert sorted(listed[state]) == sorted(made[state]), state
    assert not any(name.startswith("Aba") for names in listed.values() for name in names)
    missing_titles = [title for title in seen if LABELS[lang]["missing"] in title]
    assert (
        len(missing_titles) == 1 and ("24 people" if lang == "en" else "24 人") in missing_titles[0]
    )
    assert [len(seen[title]) for title in missing_titles] == [24]  # over pages of PAGE_SIZE


async def test_today_button_opens_the_list_below_the_summary(bot):
    made = _population(bot, missing=12)
    user = bot.user(5001, "Zhao", language_code="en")
    await user.send("/today")
    summary = await user.wait_for("Today's check-ins")
    await user.press("📋 Everyone, by name", message=summary)
    listing = await user.wait_for("page 1/1")
    assert "🔴 RED: 1 person" in listing.text and "1. Red 0" in listing.text
    await user.press("⏰ 13", message=listing)  # jump to the missing: 13 people, two pages
    page = await user.wait_edit(listing, "page 1/2")
    assert "⏰ Not yet: 13 people" in page.text
    names = [line for line in page.text.splitlines() if re.match(r"^\d+\. ", line)]
    assert len(names) == reports.PAGE_SIZE and names[0].startswith("1. ")
    await user.press(page_button(page), message=page)
    page = await user.wait_edit(page, "page 2/2")
    rest = [str(n) for n in range(reports.PAGE_SIZE + 1, 14)]  # the 13 missing, on 2 pages
    assert [line.split(". ", 1)[0] for line in page.text.splitlines()[2:]] == rest
    await user.press(page_button(page, "back"), message=page)
    page = await user.wait_edit(page, "page 1/2")
    await user.press(page_button(page, "back"), message=page)  # back across states: the AMBER
    page = await user.wait_edit(page, "AMBER")
    assert "🟠 AMBER: 2 people" in page.text
    all_named = {line.split(". ", 1)[1] for line in page.text.splitlines() if ". " in line}
    assert all_named == set(made["amber"])
    # a forged page past the end shows the last page; a forged state is refused
    await user.press_forged("td:missing:99", message=page)
    await user.wait_edit(page, "page 2/2")
    await user.press_forged("td:everyone:0", message=page)
    assert (await user.callback_answer()).show_alert
