"""Examples that are always valid (issue 16, point 4): the dates and times the bot suggests
are computed from today, so an example typed back is accepted, whatever the day."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
import time_machine

from services import examples
from services.i18n import LANGUAGES, MissingExample, catalog, t
from tests.handlers.test_broadcast import admin_in, compose
from tests.handlers.test_care_conversation import cadre, remind_now

# Two days far apart; the second one late in the UTC day, early the next day in Shanghai.
DAYS = [datetime(2027, 1, 15, 2, 0, tzinfo=UTC), datetime(2027, 6, 30, 20, 0, tzinfo=UTC)]
A_DATE = re.compile(r"\b20\d\d-\d\d-\d\d\b")
ZONE = ZoneInfo("Asia/Shanghai")  # the tests' CADRE_TIMEZONE (tests/conftest.py)


@pytest.fixture(params=DAYS, ids=["2027-01-15", "2027-07-01"])
def moment(request):
    """The day the test runs on, travelled to before the bot starts (listed before `bot`)."""
    with time_machine.travel(request.param, tick=True):
        yield request.param


def test_no_catalog_text_suggests_a_fixed_date():
    for lang in LANGUAGES:
        fixed = {key: text for key, text in catalog(lang).items() if A_DATE.search(text)}
        assert fixed == {}, lang


@pytest.mark.parametrize("moment", DAYS, ids=["2027-01-15", "2027-07-01"])
def test_the_examples_are_counted_from_the_local_today(moment):
    with time_machine.travel(moment, tick=False):
        local = moment.astimezone(ZONE)
        values = examples.values(ZONE)
        suggested = datetime.strptime(values["example_when"], "%Y-%m-%d %H:%M")
        assert suggested.date() == local.date() + timedelta(days=1)
        assert suggested.replace(tzinfo=ZONE) > moment
        assert values["example_date"] == (local.date() + timedelta(days=7)).isoformat()
        assert values["example_date_ago"] < values["example_today"] < values["example_date"]
        assert values["example_date"] < values["example_date_later"]
        for lang in LANGUAGES:
            when = t(lang, "broadcast.ask.when", zone="Asia/Shanghai", **values)
            assert values["example_when"] in when
            assert values["example_date"] in t(lang, "care.ask.book_date", **values)
        # a value the caller passes is the one shown
        assert "2099-01-01" in t("en", "care.ask.book_date", example_date="2099-01-01")


def test_a_text_that_suggests_a_date_needs_its_caller_to_pass_the_examples():
    """The examples are local to the bot's time zone, which only the caller knows: a caller
    that forgets them fails here, in the tests, rather than showing «{example_date}»."""
    for key in ("care.ask.book_date", "invalid.date", "health.export.choose"):
        with pytest.raises(MissingExample, match="example_"):
            t("en", key)
    assert "{" not in t("en", "invalid.date", **examples.values(ZONE))


async def test_the_suggested_broadcast_time_typed_back_is_accepted(moment, bot):
    admin = admin_in(bot, "en")
    await compose(admin, "Oxygen delivery on Friday.")
    await admin.press("bw:a:all")
    summary = await admin.wait_for("Ready to send")
    await admin.press("bw:w", message=summary)
    prompt = await admin.wait_for("When should it go out?")
    (suggested,) = re.findall(r"\d{4}-\d\d-\d\d \d\d:\d\d", prompt.text)
    at = datetime.strptime(suggested, "%Y-%m-%d %H:%M").replace(tzinfo=bot.settings.zone)
    assert moment < at < moment + timedelta(days=2)
    await admin.send(suggested)
    summary = await admin.wait_for("Ready to send")
    assert f"at {suggested}" in summary.text


async def test_the_suggested_booking_date_typed_back_is_accepted(moment, bot):
    person = cadre(bot, days_ago=7, language="zh-Hans")  # exam due in 7 days
    user = bot.user(1001, "小明", language_code="zh-hans")
    await user.send("/help")
    await user.next_message()
    remind_now(bot, person)
    reminder = await user.wait_for("7 天", timeout=10)
    await user.press(t("zh-Hans", "care.btn.booked"), message=reminder)
    prompt = await user.wait_for("约在哪天")
    (suggested,) = A_DATE.findall(prompt.text)
    assert suggested > moment.astimezone(bot.settings.zone).date().isoformat()
    await user.send(suggested)
    recorded = await user.wait_for(suggested)
    assert "已记录" in recorded.text or "预约" in recorded.text, recorded.text
