"""Scheduled work after the clock jumps forward (a host resumed from suspension, a clock
corrected by NTP): the bot goes on answering at once, and each repeating job simply runs
at its next time. Time is moved with time-machine, never slept through."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
import time_machine

from scheduler import broadcasts as broadcast_jobs
from services import clock, people
from tests.support.botfixtures import ADMIN_ID


@pytest.fixture
def settings(settings):
    # A short interval, as the broadcast tests use: many runs missed per day.
    return settings.model_copy(update={"broadcast_progress_interval": 0.5})


async def test_the_bot_answers_at_once_after_the_clock_jumps_thirty_days(bot):
    bot.db.call(people.set_language, ADMIN_ID, "en")
    admin = bot.admin(language_code="en")
    await admin.send("/broadcasts")
    await admin.wait_for("No broadcasts yet")
    scheduler = bot.app.job_queue.scheduler
    with time_machine.travel(clock.now() + timedelta(days=30), tick=True):
        jumped = clock.now()
        async with asyncio.timeout(10):  # from before the scheduler catches up
            # What the scheduler's timer does within the interval, made certain here.
            # APScheduler used to list the 5 million runs of the progress job that the
            # jump skipped, on the event loop, before anything else could happen.
            asyncio.get_running_loop().call_soon(scheduler.wakeup)
            await admin.send("/broadcasts")
            await admin.wait_for("No broadcasts yet")
        progress = scheduler.get_job(broadcast_jobs.PROGRESS_JOB)
        # It goes on every 0.5 s from now: neither stuck in the past nor pushed ahead.
        assert jumped < progress.next_run_time <= clock.now() + timedelta(seconds=0.5)
