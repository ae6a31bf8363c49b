"""Shared helpers of the health check-in tests (no tests here): people made through the
services, the health config of the test settings, and walking the check-in form."""

from __future__ import annotations

import asyncio
import contextlib
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
import time_machine

from models import Person, Role
from services import people
from services.alerts import policy
from services.health.config import HealthConfig
from services.people import Draft
from tests.support.botfixtures import ADMIN_ID

COUNTIES = {
    "ganzi": "ganzi.litang",  # 4014 m
    "aba": "aba.barkam",
    "liangshan": "liangshan.xichang",
    "zhejiang": "zhejiang.hangzhou",
}
CONFIG = HealthConfig()
POLICY = policy.Policy(zone=CONFIG.zone)  # what raising a RED result's alert needs
# Seconds to wait for a chart: the first one a process draws imports matplotlib and renders
# (about 1.5 s of CPU, 9 s measured on a 2-core machine at load 10). A deadline, not a
# benchmark: the wait ends when the photo arrives.
CHART_WAIT = 30


def make_person(
    db,
    telegram_id: int,
    name: str = "Li Wei",
    *,
    role: Role = Role.CADRE,
    language: str = "en",
    prefecture: str = "ganzi",
    county: str | None = None,
    start: date | None = date(2026, 3, 1),
    end: date | None = None,
    altitude: int | None = None,
) -> Person:
    """An active person, registered through the services (not the form)."""
    db.call(people.ensure_admins, [ADMIN_ID], "zh-Hans")
    county = county or COUNTIES[prefecture]
    draft = Draft(
        language=language,
        consent_version=people.CONSENT_VERSION,
        real_name=name,
        phone="+8613800138000",
        home_unit="Hangzhou Health Commission",
        prefecture=prefecture,
        county=county,
        posting_altitude_m=altitude or people.posting_altitude(prefecture, county),
        altitude_source="county",
        assignment_start=start.isoformat() if start else None,
        assignment_end=end.isoformat() if end else None,
        contact_name="Wang Fang",
        contact_phone="+8613900139000",
    )
    person = db.call(people.submit_registration, telegram_id, name, draft)
    admin = db.call(people.find, ADMIN_ID)
    db.call(people.decide, admin, person.id, True)
    if role != Role.CADRE:
        db.call(people.set_role, admin, person.id, role)
    return db.call(people.get, person.id)


def officer(db, telegram_id: int = 5001, prefecture: str = "ganzi", **kw: Any) -> Person:
    return make_person(
        db,
        telegram_id,
        kw.pop("name", "Officer Zhao"),
        role=Role.DUTY_OFFICER,
        prefecture=prefecture,
        **kw,
    )


GOOD_EN = [
    ("How do you feel", "ci:feeling:fine"),
    ("right now", "ci:flags:none"),
    ("cough", "ci:cough:no"),
    ("Headache", "ci:headache:0"),
    ("Stomach", "ci:gi:0"),
    ("Fatigue", "ci:fatigue:0"),
    ("Dizziness", "ci:dizziness:0"),
]


async def start_checkin(user, command: str = "/checkin") -> None:
    await user.send(command)
    await user.wait_for(lambda m: "ci:feeling:fine" in str(m.reply_markup))


async def walk_to_vitals(
    user, lls: tuple[int, int, int, int] = (0, 0, 0, 0), functional: int | None = None
) -> None:
    """From the feeling question to the SpO2 question."""
    await user.press("ci:feeling:fine")
    await user.wait_for(lambda m: "ci:flags:none" in str(m.reply_markup))
    await user.press("ci:flags:none")
    await user.wait_for(lambda m: "ci:cough:no" in str(m.reply_markup))
    await user.press("ci:cough:no")
    for item, level in zip(("headache", "gi", "fatigue", "dizziness"), lls, strict=True):
        await user.wait_for(lambda m, item=item: f"ci:{item}:0" in str(m.reply_markup))
        await user.press(f"ci:{item}:{level}")
    if sum(lls):
        await user.wait_for(lambda m: "ci:functional:0" in str(m.reply_markup))
        await user.press(f"ci:functional:{functional or 0}")
    await user.wait_for(lambda m: "ci:spo2:none" in str(m.reply_markup))


def markup_has(data: str):
    return lambda m: data in str(m.reply_markup)


@contextlib.asynccontextmanager
async def delivery_running(bot):
    """The delivery worker sending the outbox to the emulator: the application's own when
    bot/app.py runs one, else one started here on the same settings and database."""
    existing = getattr(bot.app.bot_data["deps"], "delivery", None)
    if existing is not None:
        yield existing
        return
    try:
        from bot.delivery import Delivery
    except ImportError:  # pragma: no cover - the delivery engine is not in this tree
        pytest.skip("the delivery engine (bot/delivery.py) is not available")
    worker = Delivery(bot.settings, bot.db)
    task = asyncio.create_task(worker.run())
    await asyncio.wait_for(worker.started.wait(), 10)
    try:
        yield worker
    finally:
        worker.request_stop()
        await asyncio.wait_for(task, 15)


@contextlib.asynccontextmanager
async def amber_tomorrow_at_0830(bot):
    """Li Wei (1006) checks in AMBER at 08:30 local tomorrow, before the daily reminder
    (09:00) that would arrive mid-form, with the delivery worker running; yields the duty
    officer's chat (5001), the time traveller and that moment."""
    make_person(bot.db, 1006, "Li Wei")
    officer(bot.db, 5001, language="en")
    officer_user = bot.user(5001, "Zhao", language_code="en")
    user = bot.user(1006, "Li", language_code="en")
    start = datetime.now(UTC).replace(hour=0, minute=30, second=0, microsecond=0) + timedelta(
        days=1
    )
    with time_machine.travel(start, tick=True) as traveller:
        async with delivery_running(bot):
            await start_checkin(user)
            await walk_to_vitals(user, lls=(2, 1, 0, 0), functional=1)
            await finish_vitals(user, spo2="88")
            await user.wait_for("Take care")
            yield officer_user, traveller, start


async def finish_vitals(
    user, spo2="93", hr="78", temp="ci:temp:36.5", bp="ci:bp:none", note="ci:note:none"
) -> None:
    """From the SpO2 question to the result."""
    for value, nxt in ((spo2, "ci:hr:none"), (hr, "ci:temp:none"), (temp, "ci:bp:none")):
        if value.startswith("ci:"):
            await user.press(value)
        else:
            await user.send(value)
        await user.wait_for(markup_has(nxt))
    if bp.startswith("ci:"):
        await user.press(bp)
    else:
        await user.send(bp)
    await user.wait_for(markup_has("ci:note:none"))
    if note.startswith("ci:"):
        await user.press(note)
    else:
        await user.send(note)
