"""Example values that the catalog texts suggest ("type a date like 2026-12-08"), computed
from today so that an example typed back is always accepted (issue 16, point 4).

A catalog text names them as placeholders (`{example_date}`...); the caller of
`services.i18n.t` passes them, `**examples.values(zone)` with the bot's time zone
(`CADRE_TIMEZONE`, `settings.zone`), so the dates are local ones. `t` refuses a text whose
example placeholders were not passed (`i18n.MissingExample`): no caller can forget them.
"""

from __future__ import annotations

from datetime import date, timedelta
from zoneinfo import ZoneInfo

from services import clock

# placeholder -> days from today (dates) ; what each suits
DAY_OFFSETS = {
    "example_today": 0,  # any date question: valid whether a past or a future day is asked
    "example_date": 7,  # a day ahead: a booking, the start of a pause
    "example_date_later": 16,  # the end of a pause that starts on example_date
    "example_date_ago": -7,  # a day gone by: a rest or an examination done, a start
    "example_date_month_ago": -30,  # the start of a period that ends today
}
EXAMPLE_TIME = "18:30"  # example_when: tomorrow at this time


def today(zone: ZoneInfo) -> date:
    return clock.now().astimezone(zone).date()


def values(zone: ZoneInfo) -> dict[str, str]:
    """Every example placeholder with today's value in `zone` (pass them all to `t`: it
    uses those its text names)."""
    day = today(zone)
    found = {name: (day + timedelta(days=n)).isoformat() for name, n in DAY_OFFSETS.items()}
    found["example_when"] = f"{(day + timedelta(days=1)).isoformat()} {EXAMPLE_TIME}"
    try:
        next_year = day.replace(year=day.year + 1)
    except ValueError:  # 29 February
        next_year = day.replace(year=day.year + 1, day=28)
    found["example_date_next_year"] = next_year.isoformat()
    return found
