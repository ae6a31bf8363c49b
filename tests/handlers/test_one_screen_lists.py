"""One screen per message for the lists (issue 16, point 7): /overdue, /upcoming, /history,
/oxygen (the cadre's requests and the duty officer's open ones) and /today, each measured
where it is sent, with long content (many people overdue, a long history, many oxygen
requests), in both languages. The first screen is a summary of at most 12 phone lines
(counts first); ◀️ n/m ▶️ edit it in place, page by page, and every person or entry is on
some page. A page button from an older list, or a forged one, gets a polite answer."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
import time_machine

from handlers.care import overdue
from models import Role
from services import clock, oxygen, people, roster
from services.health import checkins
from services.health.assessment import Readings
from services.i18n import t
from services.oxygen import OxygenConfig
from tests.handlers.test_checkin_reports import AMBER, RED, _population
from tests.handlers.test_one_screen_flows import too_long
from tests.support import factories
from tests.support.checkin_helpers import CONFIG, POLICY, make_person
from tests.support.screens import SCREEN, lines_on_phone

pytestmark = pytest.mark.asyncio

LANGS = ["en", "zh-Hans"]


async def walk(user, first) -> list[str]:
    """The text of every page from `first` to the last, pressing ▶️: each one screen, each
    press answered once, the message edited in place."""
    texts, page = [], first
    while True:
        assert lines_on_phone(page.text) <= SCREEN, page.text
        texts.append(page.text)
        if "▶️" not in [b["text"] for b in page.buttons]:
            return texts
        before = page.text
        query = await user.press("▶️", message=page)
        await user.callback_answer(query)
        page = await user.wait_edit(page, lambda m, before=before: m.text != before)
        assert page is first  # the same message, edited


def data_of(message, prefix: str) -> list[str]:
    return [b["callback_data"] for b in message.buttons if b["callback_data"].startswith(prefix)]


# ---------------------------------------------------------------------------- /overdue, /upcoming


def _care_cadre(bot, telegram_id: int, days_ago: int, **overrides):
    """A cadre at Litang (4014 m): 20 days in, the exam is 6 days overdue; 10 days in, it is
    due in 4 days."""
    local = clock.now().astimezone(bot.settings.zone).date()
    start = (local - timedelta(days=days_ago)).isoformat()
    return factories.person(
        bot.db, telegram_id, assignment_start=start, assignment_end="2030-01-01", **overrides
    )


@pytest.mark.parametrize("lang", LANGS)
@pytest.mark.parametrize("command", ["/overdue", "/upcoming"])
async def test_overdue_and_upcoming_are_pages_of_one_screen_with_everyone(bot, lang, command):
    days_ago = 20 if command == "/overdue" else 10
    ganzi = [f"Zhuoma Ciren Lhamo {i:02d}" for i in range(11)]
    aba = [f"Tenzin Norbu Dorje {i:02d}" for i in range(3)]
    for number, name in enumerate(ganzi):
        _care_cadre(bot, 1001 + number, days_ago, real_name=name, language=lang)
    for number, name in enumerate(aba):
        _care_cadre(
            bot,
            1101 + number,
            days_ago,
            real_name=name,
            language=lang,
            prefecture="aba",
            county="aba.barkam",
            posting_altitude_m=3600,
        )
    bot.db.call(people.set_language, factories.ADMIN_ID, lang)
    admin = bot.admin(language_code=lang)
    await admin.send(command)
    first = await admin.wait_for(lambda m: bool(data_of(m, "cs:csv:")))
    which = command[1]
    counts = first.text.splitlines()[1]  # counts first: each prefecture's, above the rows
    assert ("(11)" in counts or "（11 项）" in counts) and ("(3)" in counts or "（3 项）" in counts)
    assert data_of(first, f"cs:{which}:") == [f"cs:{which}:0", f"cs:{which}:1"]  # 1/4 ▶️
    assert data_of(first, "cs:p:")  # an admin's buttons for the people of the page
    pages = await walk(admin, first)
    assert len(pages) == -(-14 // overdue.AREA_LINES)
    for name in ganzi + aba:  # everyone on exactly one page
        assert sum(name in page for page in pages) == 1, name
    assert data_of(first, "cs:csv:") == [f"cs:csv:{which}"]  # the CSV stays at hand
    # a page gone since shows the last one; data of no button of ours is refused politely
    await admin.press_forged(f"cs:{which}:99", message=first)
    await admin.callback_answer()
    await admin.press_forged(f"cs:{which}:x", message=first)
    assert (await admin.callback_answer()).show_alert
    assert too_long(bot) == []


# ---------------------------------------------------------------------------- /history


def _long_history(bot, person, days: int) -> None:
    now = datetime.now(UTC)
    for ago in range(days, 0, -1):
        at = (now - timedelta(days=ago)).replace(hour=1, minute=0, second=0, microsecond=0)
        readings = (
            Readings(red_flags=frozenset({"breathless_rest", "confusion"}))
            if ago % 7 == 0
            else Readings(
                headache=2, gi=1, fatigue=1, dizziness=1, functional=1, spo2=84, heart_rate=104
            )
            if ago % 3 == 0
            else Readings(
                headache=0, gi=0, fatigue=0, dizziness=0, functional=0, spo2=90, heart_rate=76
            )
        )
        with time_machine.travel(at, tick=False):
            bot.db.call(checkins.submit, person.id, readings, config=CONFIG, policy=POLICY)


@pytest.mark.parametrize("lang", LANGS)
async def test_a_long_history_is_pages_of_one_screen_newest_first(bot, lang):
    person = make_person(bot.db, 1001, language=lang)
    _long_history(bot, person, 30)
    user = bot.user(1001, "Li", language_code=lang)
    await user.send("/history")
    first = await user.wait_for(lambda m: bool(data_of(m, "hs:")))
    assert "30" in first.text.splitlines()[0]  # how many, first
    pages = await walk(user, first)
    stamps = [
        stamp
        for page in pages
        for stamp in re.findall(r"^(\d\d-\d\d \d\d:\d\d) ", page, flags=re.MULTILINE)
    ]
    assert len(stamps) == 30 and stamps == sorted(stamps, reverse=True)  # all, newest first
    # what the abbreviations mean, and that this is not a diagnosis: a message of its own
    await user.wait_for(lambda m: t(lang, "health.disclaimer") in (m.text or ""))
    await user.press_forged("hs:99", message=first)
    await user.callback_answer()
    assert too_long(bot) == []


# ---------------------------------------------------------------------------- /oxygen

PLACE = "County guest house, building 3, room 305, behind the hospital"


def _requests(bot, person, urgencies, *, cancel_all_but: int | None = None) -> list[int]:
    """Requests of `person`, one per urgency; all but the last `cancel_all_but` cancelled
    as they go (at most oxygen.MAX_OPEN are in progress at once)."""
    config = OxygenConfig.from_settings(bot.settings)
    made = []
    for urgency in urgencies:
        request = bot.db.call(oxygen.create_request, person.id, "cylinder", PLACE, urgency, config)
        made.append(request.id)
        if cancel_all_but is not None and len(made) > cancel_all_but:
            bot.db.call(oxygen.cancel, person.id, made[-1 - cancel_all_but], config)
    return made


@pytest.mark.parametrize("lang", LANGS)
async def test_a_cadres_many_oxygen_requests_are_pages_of_one_screen(bot, lang):
    cadre = factories.person(bot.db, 1001, language=lang, assignment_start=None)
    made = _requests(bot, cadre, ["days", "today", "urgent"] * 3, cancel_all_but=2)
    user = bot.user(1001, "Li", language_code=lang)
    await user.send("/oxygen")
    first = await user.wait_for(lambda m: bool(data_of(m, "ox:m:")))
    assert f"#{made[-1]} " in first.text  # the newest first
    assert data_of(first, "ox:cxl:") == [f"ox:cxl:{made[-1]}", f"ox:cxl:{made[-2]}"]
    pages = await walk(user, first)
    for number in made:
        assert sum(f"#{number} " in page for page in pages) == 1, number
    assert data_of(first, "ox:new") == ["ox:new"]
    await user.press_forged("ox:m:99", message=first)  # past the end: the last page
    await user.callback_answer()
    assert too_long(bot) == []


@pytest.mark.parametrize("lang", LANGS)
async def test_an_officers_open_oxygen_requests_most_urgent_first_one_screen_each(bot, lang):
    duty = factories.person(
        bot.db, 2001, role=Role.DUTY_OFFICER, language=lang, assignment_start=None
    )
    bot.db.call(roster.go_on_duty, duty, 8)
    made: dict[int, str] = {}
    for number in range(4):
        cadre = factories.person(
            bot.db, 1001 + number, real_name=f"Zhuoma Ciren {number}", language=lang
        )
        urgencies = ["days", "today", "urgent"]
        made.update(zip(_requests(bot, cadre, urgencies), urgencies, strict=True))
    aba = factories.person(
        bot.db, 1101, prefecture="aba", county="aba.barkam", language=lang, real_name="Aba"
    )
    hidden = _requests(bot, aba, ["urgent"])
    officer = bot.user(2001, "Zhou", language_code=lang)
    await officer.send("/oxygen")
    first = await officer.wait_for(lambda m: bool(data_of(m, "ox:a:")))
    assert "12" in first.text.splitlines()[0]  # how many, first
    pages = await walk(officer, first)
    assert len(pages) == 12
    shown = [int(re.search(r"#(\d+)", page).group(1)) for page in pages]
    assert sorted(shown) == sorted(made) and hidden[0] not in shown
    assert [made[n] for n in shown] == ["urgent"] * 4 + ["today"] * 4 + ["days"] * 4
    # the request shown can be taken from the list
    await officer.press(f"{t(lang, 'care.ox.btn.ack')} #{shown[-1]}", message=first)
    assert (await officer.callback_answer()).text
    await officer.press_forged("ox:a:x", message=first)
    assert (await officer.callback_answer()).show_alert
    assert too_long(bot) == []


# ---------------------------------------------------------------------------- /today

LONG = "Zhuoma Ciren Lhamo"


def _more_areas(bot) -> dict[str, list[str]]:
    """Long-named RED and AMBER cadres in Aba and Liangshan (the admin sees them all)."""
    named: dict[str, list[str]] = {"red": [], "amber": []}
    with time_machine.travel(datetime.now(UTC) - timedelta(days=3), tick=False):
        made = [
            (state, make_person(bot.db, 3001 + n, f"{LONG} {n:02d}", prefecture=prefecture))
            for n, (state, prefecture) in enumerate(
                [("red", "aba"), ("amber", "aba"), ("amber", "aba")]
                + [("red", "liangshan")] * 2
                + [("amber", "liangshan")] * 3
            )
        ]
    with time_machine.travel(datetime.now(UTC) - timedelta(minutes=5), tick=False):
        for state, person in made:
            readings = RED if state == "red" else AMBER
            bot.db.call(checkins.submit, person.id, readings, config=CONFIG, policy=POLICY)
            named[state].append(person.real_name)
    return named


@pytest.mark.parametrize("lang", LANGS)
async def test_today_is_a_summary_of_one_screen_and_each_state_a_list_below(bot, lang):
    made = _population(bot, green=9, missing=23, lang=lang)
    officer = bot.user(5001, "Zhao", language_code=lang)
    await officer.send("/today")
    summary = await officer.wait_for(lambda m: bool(data_of(m, "td:all:")))
    assert lines_on_phone(summary.text) <= SCREEN, summary.text
    for name in made["red"] + made["amber"]:  # the most urgent by name
        assert name in summary.text
    # each state a button with its count; its list comes below, page by page
    assert data_of(summary, "td:missing:") == ["td:missing:0"]
    await officer.press("td:missing:0", message=summary)
    await officer.callback_answer()
    listing = await officer.wait_for(lambda m: m is not summary and bool(data_of(m, "td:")))
    listed = "\n".join(await walk(officer, listing))
    for name in made["missing"] + made["paused"] + made["checked"] + made["none"]:
        assert name in listed, name
    assert not summary.history  # the summary stays as it was

    more = _more_areas(bot)
    bot.db.call(people.set_language, factories.ADMIN_ID, lang)
    admin = bot.admin(language_code=lang)
    await admin.send("/today")
    board = await admin.wait_for(lambda m: bool(data_of(m, "td:all:")))
    assert lines_on_phone(board.text) <= SCREEN, board.text
    assert made["red"][0] in board.text and more["red"][0] in board.text  # RED first
    # (not too_long(bot): the RED check-ins' alert cards, escalated while nobody acknowledges
    # them here, are measured by test_one_screen_flows, not by this test of /today)
