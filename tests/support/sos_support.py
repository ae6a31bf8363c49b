"""Shared by the emergency channel's tests: people on the roster, and a bot whose delivery
worker and scheduled jobs run (bot/app.py's own; the jobs started here when they are not)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

from bot.app import start_timers
from handlers.context import deps_of
from models import Person, Role
from scheduler import jobs
from services import people, roster
from services.i18n import t
from tests.support import factories
from tests.support.botfixtures import RunningBot

CADRE = 1001
ON_DUTY = 2001
OFF_DUTY = 2002
ABA = 2003
CONTACT = 3001


def officer(
    db: Any,
    telegram_id: int,
    *,
    prefecture: str = "ganzi",
    county: str = "ganzi.kangding",
    name: str = "Officer",
    language: str = "zh-Hans",
) -> Person:
    return factories.person(
        db,
        telegram_id,
        role=Role.DUTY_OFFICER,
        prefecture=prefecture,
        county=county,
        real_name=name,
        language=language,
    )


def staff(db: Any, *, on_duty: bool = True) -> dict[str, Person]:
    """A cadre in Litang (Ganzi, 4014 m), two Ganzi officers (the first on duty unless
    `on_duty` is False), an Aba officer, and the admin (9001)."""
    cadre = factories.person(db, CADRE, real_name="Li Wei", language="en")
    first = officer(db, ON_DUTY, name="Zhang On")
    second = officer(db, OFF_DUTY, name="Wang Off")
    aba = officer(db, ABA, prefecture="aba", county="aba.barkam", name="Aba Officer")
    if on_duty:
        db.call(roster.go_on_duty, first, None)
    admin = db.call(people.find, factories.ADMIN_ID)
    return {"cadre": cadre, "on": first, "off": second, "aba": aba, "admin": admin}


@contextlib.asynccontextmanager
async def emergency_running(bot: RunningBot) -> AsyncIterator[Any]:
    """The delivery worker and the emergency channel's jobs, as `cadre-bot run` has them."""
    assert bot.app is not None
    worker = deps_of(bot.app).delivery
    if jobs.get_job(bot.app, "sos:escalation") is None:
        await start_timers(bot.app, bot.timers)
    yield worker


async def sos_described(caller: Any, officer: Any, lang: str, category: str, text: str) -> None:
    """`caller` presses SOS, shares their location, picks `category` and describes it in
    `text`; `officer` has received the map pin and the description."""
    await caller.send("/sos")
    await caller.wait_for(lambda m: "sos:cat:" in str(m.reply_markup))
    caller.location = (30.0, 100.27)
    await caller.press_reply_button(t(lang, "sos.btn.share_location"))
    await officer.wait_for(lambda m: m.location is not None, timeout=10)
    await caller.press(f"sos:cat:1:{category}")
    await caller.send(text)
    await officer.wait_for(lambda m: text in (m.text or ""), timeout=10)


async def until(condition: Any, within: float = 15.0) -> None:
    """Wait for something the bot does without sending a message (store a live location,
    store an alert); checked every 20 ms."""
    deadline = asyncio.get_running_loop().time() + within
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, "condition not met in time"
        await asyncio.sleep(0.02)


class BotProcess:
    """`cadre-bot run` as a child process pointed at the emulator; stderr goes to a file
    (a pipe nobody reads could fill up and stall the bot)."""

    def __init__(self, env: dict[str, str], cwd: Any, *options: str) -> None:
        self.env, self.cwd, self.options = env, cwd, options  # options of `run`, e.g. --webhook
        self.process: asyncio.subprocess.Process | None = None
        self.log_path = cwd / f"cadre-bot-{id(self)}.log"

    async def start(self) -> None:
        import sys
        from pathlib import Path

        exe = str(Path(sys.executable).with_name("cadre-bot"))
        self._log = self.log_path.open("ab")  # closed in stop()
        self.process = await asyncio.create_subprocess_exec(
            exe,
            "run",
            *self.options,
            env=self.env,
            cwd=self.cwd,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=self._log,
        )

    async def stop(self, sig: int = 15) -> tuple[int, str]:
        assert self.process is not None
        if self.process.returncode is None:
            self.process.send_signal(sig)
        code = await asyncio.wait_for(self.process.wait(), 30)
        self._log.close()
        return code, self.log_path.read_text(errors="replace")


def process_env(emulator: Any, database_url: str, **extra: str) -> dict[str, str]:
    import os

    env = {k: v for k, v in os.environ.items() if not k.startswith("CADRE_")}
    env.update(
        {
            "CADRE_DATABASE_URL": database_url,
            "CADRE_LOG_LEVEL": "WARNING",
            "CADRE_TELEGRAM_TOKEN": emulator.token,
            "CADRE_TELEGRAM_BASE_URL": emulator.base_url,
            "CADRE_ADMIN_IDS": str(factories.ADMIN_ID),
            "CADRE_CARE_JOBS": "false",
            "CADRE_HTTP_LISTEN": "",  # tests that need /healthz pass a free port
        }
    )
    env.update(extra)
    return env
