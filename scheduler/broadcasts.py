"""Scheduled work of broadcasts: starting scheduled ones, and the progress pass.

Jobs (ids):
    broadcast:start:<id>  date job at the broadcast's scheduled time. misfire_grace_time
                          None: a broadcast whose time passed while the bot was down starts
                          as soon as the bot is back (the admin chose to send it; the
                          report shows when it went out). coalesce: one start.
    broadcast:progress    interval job, every CADRE_BROADCAST_PROGRESS_INTERVAL seconds:
                          edits progress messages, finishes broadcasts and sends reports.
                          misfire_grace_time = the interval, coalesce: a late pass is
                          simply the next one.
Both are rebuilt from the broadcast table at start-up (`rebuild`).
"""

from __future__ import annotations

import logging

from telegram.ext import Application

from models import Broadcast
from scheduler import jobs
from services import broadcasts

log = logging.getLogger(__name__)

PROGRESS_JOB = "broadcast:progress"


def start_job_id(broadcast_id: int) -> str:
    return f"broadcast:start:{broadcast_id}"


async def start_broadcast(application: Application, broadcast_id: int) -> None:
    deps = application.bot_data["deps"]
    started = await deps.db.run(broadcasts.start, broadcast_id)
    if started is not None:
        log.info("scheduled broadcast %s started: %s recipients", broadcast_id, started.total)


async def progress(application: Application) -> None:
    deps = application.bot_data["deps"]
    await deps.db.run(broadcasts.report_progress)


def schedule_start(application: Application, broadcast: Broadcast) -> None:
    assert broadcast.id is not None and broadcast.scheduled_at is not None
    jobs.add_job(
        application,
        start_job_id(broadcast.id),
        start_broadcast,
        "date",
        run_date=broadcast.scheduled_at,
        misfire_grace_time=None,
        coalesce=True,
        args=(application, broadcast.id),
    )


def unschedule_start(application: Application, broadcast_id: int) -> None:
    jobs.remove_job(application, start_job_id(broadcast_id))


@jobs.on_startup
async def rebuild(application: Application) -> None:
    deps = application.bot_data["deps"]
    interval = deps.settings.broadcast_progress_interval
    jobs.add_job(
        application,
        PROGRESS_JOB,
        progress,
        "interval",
        seconds=interval,
        misfire_grace_time=max(1, int(interval)),
        coalesce=True,
    )
    for broadcast in await deps.db.run(broadcasts.scheduled):
        schedule_start(application, broadcast)
