"""Policy questions' timers.

Jobs (ids):
    kb:handoff-reminders  interval, every 10 minutes: admins are reminded of the questions
                          still waiting for a person (services.kb.handoffs.remind_admins).
                          misfire grace 10 minutes, coalesce: a late run is simply the next.
"""

from __future__ import annotations

from telegram.ext import Application

from scheduler import jobs
from services.db import Database
from services.kb import handoffs

HANDOFF_REMINDER_JOB = "kb:handoff-reminders"


class KbTimers:
    def __init__(self, application: Application, db: Database) -> None:
        self.application = application
        self.db = db

    async def start(self) -> None:
        jobs.add_job(
            self.application,
            HANDOFF_REMINDER_JOB,
            self.remind,
            "interval",
            minutes=10,
            misfire_grace_time=600,
            coalesce=True,
            args=(),
        )

    async def remind(self) -> None:
        """Admins are reminded of the questions still waiting for a person."""
        await self.db.run(handoffs.remind_admins)
