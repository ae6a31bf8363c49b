"""Health check-ins' timers. Every timer is derived from the database at each pass, so
nothing needs rebuilding after a restart: a pass missed while the bot was down is simply
the next pass.

Jobs (ids):
    health:pass       interval, every minute: reminders, nudges, cut-off notices, AMBER
                      rechecks and escalations due now. misfire grace = the interval (a
                      late pass is useless: the next one comes), coalesce.
    health:retention  cron, daily at 03:30 local time: readings past the retention period
                      are deleted. misfire grace 6 hours (a run delayed while the bot is
                      busy still happens), coalesce (several missed runs are one pass).
                      APScheduler keeps jobs in memory: a 03:30 that passed while the bot
                      was stopped is not a misfire at the next start, so the start-up asks
                      the audit log (each pass records a summary) and runs a missed pass
                      at once.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from telegram.ext import Application

from scheduler import jobs
from services import clock
from services.db import Database
from services.health import reminders
from services.health.config import HealthConfig

log = logging.getLogger(__name__)

PASS_JOB = "health:pass"
RETENTION_JOB = "health:retention"
RETENTION_RETRY = timedelta(minutes=5)
PASS_INTERVAL_SECONDS = 60


class HealthTimers:
    def __init__(self, application: Application, db: Database, config: HealthConfig) -> None:
        self.application = application
        self.db = db
        self.config = config

    async def start(self) -> None:
        jobs.add_job(
            self.application,
            PASS_JOB,
            self.run_pass,
            "interval",
            seconds=PASS_INTERVAL_SECONDS,
            misfire_grace_time=PASS_INTERVAL_SECONDS,  # a late pass is useless
            coalesce=True,
            args=(),
        )
        try:
            missed = await self.db.run(reminders.retention_missed, self.config)
            catch_up = {"next_run_time": clock.now()} if missed else {}
        except Exception:  # the database is not reachable yet: a pass when it may be
            log.warning("could not tell whether a retention pass was missed; one runs in 5 minutes")
            catch_up = {"next_run_time": clock.now() + RETENTION_RETRY}
        jobs.add_job(
            self.application,
            RETENTION_JOB,
            self.run_retention,
            "cron",
            hour=reminders.RETENTION_TIME.hour,
            minute=reminders.RETENTION_TIME.minute,
            timezone=self.config.zone,
            misfire_grace_time=6 * 3600,  # a run delayed while the bot is busy still happens
            coalesce=True,  # several missed runs are one pass: it deletes all that is due
            args=(),
            **catch_up,
        )

    async def run_pass(self) -> None:
        """Reminders, nudges, cut-off notices, AMBER rechecks and escalations due now. The
        outbox wakes the delivery worker when the pass commits."""
        result = await self.db.run(reminders.run_pass, self.config)
        if result.queued:
            log.info("health pass: %d message(s) queued", result.queued)

    async def run_retention(self) -> None:
        """Delete readings past the retention period; the pass audits a summary of each run."""
        expired = await self.db.run(reminders.retention_pass, self.config)
        log.info(
            "retention pass: %d check-in(s) and %d missed day(s) of %d person(s) deleted "
            "(assignments ended before %s)",
            expired.checkins,
            expired.missed_days,
            expired.people,
            expired.cutoff.isoformat(),
        )
