"""Example values that the catalog texts suggest ("type a date like 2026-12-08"), computed
from today so that an example typed back is always accepted (issue 16, point 4).

A catalog text names them as placeholders (`{example_date}`...); `services.i18n.t` fills
in the ones a caller does not pass. Dates are the local ones of the bot's time zone
(`CADRE_TIMEZONE`, set by bot.app when the Application is built).
"""

from __future__ import annotations

from datetime import date, timedelta
from zoneinfo import ZoneInfo

from config import Settings
from services import clock

_zone = ZoneInfo(Settings.model_fields["timezone"].default)

# placeholder -> days from today (dates) ; what each suits
DAY_OFFSETS = {
    "example_today": 0,  # any date question: valid whether a past or a future day is asked
    "example_date": 7,  # a day ahead: a booking, the start of a pause
    "example_date_later": 16,  # the end of a pause that starts on example_date
    "example_date_ago": -7,  # a day gone by: a rest or an examination done, a start
    "example_date_month_ago": -30,  # the start of a period that ends today
}
EXAMPLE_TIME = "18:30"  # example_when: tomorrow at this time


def set_zone(zone: ZoneInfo) -> None:
    global _zone
    _zone = zone


def today() -> date:
    return clock.now().astimezone(_zone).date()


def values() -> dict[str, str]:
    """Every example placeholder with today's value."""
    day = today()
    found = {name: (day + timedelta(days=n)).isoformat() for name, n in DAY_OFFSETS.items()}
    found["example_when"] = f"{(day + timedelta(days=1)).isoformat()} {EXAMPLE_TIME}"
    try:
        next_year = day.replace(year=day.year + 1)
    except ValueError:  # 29 February
        next_year = day.replace(year=day.year + 1, day=28)
    found["example_date_next_year"] = next_year.isoformat()
    return found
