"""Broadcasts' timers: starting scheduled ones, and the progress pass.

Jobs (ids):
    broadcast:start:<id>  date job at the broadcast's scheduled time. misfire_grace_time
                          None: a broadcast whose time passed while the bot was down starts
                          as soon as the bot is back (the admin chose to send it; the
                          report shows when it went out). coalesce: one start.
    broadcast:progress    interval job, every CADRE_BROADCAST_PROGRESS_INTERVAL seconds:
                          edits progress messages, finishes broadcasts and sends reports.
                          misfire_grace_time = the interval, coalesce: a late pass is
                          simply the next one.
Both are rebuilt from the broadcast table at start-up (`start`).
"""

from __future__ import annotations

import logging

from telegram.ext import Application

from config import Settings
from models import Broadcast
from scheduler import jobs
from services import broadcasts
from services.db import Database

log = logging.getLogger(__name__)

PROGRESS_JOB = "broadcast:progress"


def start_job_id(broadcast_id: int) -> str:
    return f"broadcast:start:{broadcast_id}"


class BroadcastTimers:
    def __init__(self, application: Application, db: Database, settings: Settings) -> None:
        self.application = application
        self.db = db
        self.settings = settings

    async def start(self) -> None:
        interval = self.settings.broadcast_progress_interval
        jobs.add_job(
            self.application,
            PROGRESS_JOB,
            self.progress,
            "interval",
            seconds=interval,
            misfire_grace_time=max(1, int(interval)),
            coalesce=True,
            args=(),
        )
        for broadcast in await self.db.run(broadcasts.scheduled):
            self.plan_start(broadcast)

    def plan_start(self, broadcast: Broadcast) -> None:
        assert broadcast.id is not None and broadcast.scheduled_at is not None
        jobs.add_job(
            self.application,
            start_job_id(broadcast.id),
            self.start_broadcast,
            "date",
            run_date=broadcast.scheduled_at,
            misfire_grace_time=None,
            coalesce=True,
            args=(broadcast.id,),
        )

    def cancel_start(self, broadcast_id: int) -> None:
        jobs.remove_job(self.application, start_job_id(broadcast_id))

    async def start_broadcast(self, broadcast_id: int) -> None:
        started = await self.db.run(broadcasts.start, broadcast_id)
        if started is not None:
            log.info("scheduled broadcast %s started: %s recipients", broadcast_id, started.total)

    async def progress(self) -> None:
        await self.db.run(broadcasts.report_progress)
