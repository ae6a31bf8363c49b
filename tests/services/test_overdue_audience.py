"""A notice "to people with an overdue item" reaches those whose rest or exam is overdue."""

from __future__ import annotations

from models import Audience
from services import broadcasts
from services.care import areas, rules
from tests.support import factories


async def test_people_with_an_overdue_exam_form_the_overdue_audience(bot):
    # An exam is due on arrival: someone who arrived months ago and never had one is overdue;
    # someone posted in Zhejiang (low altitude) has no schedule at all.
    overdue = factories.person(bot.db, 1001, assignment_start="2026-03-01")
    factories.person(
        bot.db,
        1002,
        prefecture="zhejiang",
        county="zhejiang.hangzhou",
        posting_altitude_m=None,
        altitude_source=None,
    )
    config = rules.CareConfig.from_settings(bot.settings)
    assert overdue.id in bot.db.call(areas.overdue_people, config)
    people = bot.db.call(broadcasts.audience_people, Audience.OVERDUE, None)
    assert [p.telegram_id for p in people] == [1001]
