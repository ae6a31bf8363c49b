"""The real cadre-bot Application, running against the Bot API emulator over HTTP."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest_asyncio
from telegram import Update
from telegram.ext import Application

from bot.app import build_application
from config import Settings
from emulator.driver import FakeUser
from emulator.server import BotApiEmulator
from handlers.context import deps_of
from scheduler.timers import Timers
from services.alerts import policy as alerts_policy
from services.db import Database

ADMIN_ID = 9001


@dataclass
class RunningBot:
    """What a conversation test needs: the emulator, the database and the running bot."""

    emulator: BotApiEmulator
    db: Database
    settings: Settings
    app: Application | None = None

    async def start(self) -> None:
        self.app = build_application(self.settings, self.db)
        await self.app.initialize()
        if self.app.post_init:
            await self.app.post_init(self.app)
        assert self.app.updater is not None
        await self.app.updater.start_polling(
            poll_interval=0, timeout=10, allowed_updates=Update.ALL_TYPES
        )
        await self.app.start()

    async def stop(self) -> None:
        if self.app is None:
            return
        assert self.app.updater is not None
        if self.app.updater.running:
            await self.app.updater.stop()
        if self.app.running:
            await self.app.stop()
        await self.app.shutdown()
        self.app = None

    async def restart(self) -> None:
        """A clean stop and a new Application on the same database (as after a redeploy)."""
        await self.stop()
        await self.start()

    @property
    def timers(self) -> Timers:
        """The Application's timers (scheduler/timers.py): tests run a job's pass directly."""
        assert self.app is not None
        timers: Timers = deps_of(self.app).timers  # type: ignore[assignment]
        return timers

    @property
    def policy(self) -> alerts_policy.Policy:
        """The alert policy the running bot uses (its settings and username)."""
        assert self.app is not None
        return alerts_policy.Policy.from_settings(self.settings, self.app.bot.username)

    def user(
        self, user_id: int, first_name: str = "User", language_code: str = "zh-hans", **kwargs
    ) -> FakeUser:
        return self.emulator.user(user_id, first_name, language_code=language_code, **kwargs)

    def admin(self, language_code: str = "zh-hans") -> FakeUser:
        return self.user(ADMIN_ID, "Admin", language_code=language_code)


@pytest_asyncio.fixture
async def bot(
    emulator: BotApiEmulator, db: Database, settings: Settings
) -> AsyncIterator[RunningBot]:
    running = RunningBot(
        emulator=emulator,
        db=db,
        settings=settings.model_copy(update={"telegram_base_url": emulator.base_url}),
    )
    await running.start()
    try:
        yield running
    finally:
        await running.stop()
