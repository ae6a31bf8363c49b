"""The emergency channel's timers. The alerts' own timers live in the database
(`Alert.next_escalation_at`); these jobs are the alarm clocks that look at them.

Jobs (ids):
    sos:escalation  interval, every CADRE_SOS_ACK_TIMEOUT / 4 seconds (0.5 to 5 s), first
                    run at start-up, so that timers that ran out while the bot was stopped
                    are handled first thing: alerts nobody acknowledged go to the next
                    stage. misfire_grace_time None (late is better than never), coalesce:
                    one check covers every missed one.
    sos:coverage    interval, every 10 minutes, first run 2 minutes after start-up (the
                    officers just restarted too): prefectures nobody covers and officers
                    who blocked the bot, told to the admins. coalesce.

At start-up, before the jobs: an SOS stored just before a crash whose caller was not yet
told that help is called is told now (services.sos.repair_cadre_notices).
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from telegram.ext import Application

from config import Settings
from scheduler import jobs
from services import sos
from services.alerts import coverage, raising
from services.alerts import policy as alerts_policy
from services.db import Database

log = logging.getLogger(__name__)

ESCALATION_JOB = "sos:escalation"
COVERAGE_JOB = "sos:coverage"
COVERAGE_INTERVAL = 600  # seconds between coverage checks
COVERAGE_FIRST = 120  # seconds after start-up before the first one


class SosTimers:
    def __init__(
        self,
        application: Application,
        db: Database,
        settings: Settings,
        cadre_keyboard: sos.Keyboard,
    ) -> None:
        self.application = application
        self.db = db
        self.settings = settings
        self.cadre_keyboard = cadre_keyboard  # the caller's reply keyboard (handlers/sos.py)

    @property
    def policy(self) -> alerts_policy.Policy:
        """From the settings and the bot's username (known once the bot has started)."""
        return alerts_policy.Policy.from_settings(self.settings, self.application.bot.username)

    async def start(self) -> None:
        """Rebuild the jobs at start-up (after the repair of interrupted SOS answers)."""
        settings = self.settings
        repaired = await self.db.run(sos.repair_cadre_notices, settings.zone, self.cadre_keyboard)
        if repaired:
            log.warning("SOS answers queued again after a restart: alerts %s", repaired)
        tick = max(0.5, min(5.0, settings.sos_ack_timeout / 4))
        now = datetime.now(settings.zone)
        jobs.add_job(
            self.application,
            ESCALATION_JOB,
            self.escalate,
            "interval",
            seconds=tick,
            next_run_time=now,
            misfire_grace_time=None,  # late is better than never
            coalesce=True,  # one check covers every missed one
            args=(),
        )
        jobs.add_job(
            self.application,
            COVERAGE_JOB,
            self.check_coverage,
            "interval",
            seconds=COVERAGE_INTERVAL,
            next_run_time=now + timedelta(seconds=COVERAGE_FIRST),  # officers just restarted
            misfire_grace_time=COVERAGE_INTERVAL,
            coalesce=True,
            args=(),
        )

    async def escalate(self) -> None:
        """Advance alerts nobody acknowledged (their timers live in the database)."""
        escalated = await self.db.run(raising.escalate_due, self.policy)
        if escalated:
            log.warning("alerts escalated: %s", escalated)

    async def check_coverage(self) -> None:
        """Warn the admins about prefectures nobody covers and officers who blocked the bot."""
        await self.db.run(coverage.coverage_warnings, self.policy)
