"""Scheduled work on APScheduler, through python-telegram-bot's JobQueue scheduler.

Rules every feature follows (so that jobs behave the same after a restart):

* every job has an explicit, stable id (``<feature>:<what>[:<id>]``) and is added with
  ``replace_existing=True``: adding it again replaces it, never duplicates it;
* misfire_grace_time and coalesce are chosen deliberately for each job (`add_job` makes
  them required arguments);
* APScheduler keeps jobs in memory only: the database is the truth. Each feature's timers
  (scheduler/<feature>.py) have a `start()` that adds the jobs their tables call for (e.g.
  each scheduled broadcast's start); the composition root calls them at start-up, in the
  order `start_timers` in bot/app.py lists them.

Job functions are coroutines run on the bot's event loop; the Application is passed as
the only argument unless `args` say otherwise (the features' jobs are bound methods of
their timers, added with ``args=()``).

    from scheduler import jobs

    jobs.add_job(app, "sos:escalation", self.escalate, "interval", seconds=5,
                 misfire_grace_time=None, coalesce=True, args=())
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime, timedelta
from typing import Any, Protocol

from apscheduler.job import Job
from apscheduler.jobstores.base import JobLookupError
from apscheduler.schedulers.base import BaseScheduler
from apscheduler.triggers.interval import IntervalTrigger
from telegram.ext import Application

from services import clock
from services.db import database_unavailable

log = logging.getLogger(__name__)


def scheduler_of(application: Application) -> BaseScheduler:
    if application.job_queue is None:
        raise RuntimeError(
            "the Application has no JobQueue (install python-telegram-bot[job-queue])"
        )
    return application.job_queue.scheduler


def add_job(
    application: Application,
    job_id: str,
    func: Callable[..., Awaitable[None]],
    trigger: str,
    *,
    misfire_grace_time: int | None,
    coalesce: bool,
    args: Sequence[Any] | None = None,
    max_instances: int = 1,
    **trigger_args: Any,
) -> Job:
    """Add (or replace) the job `job_id`. `misfire_grace_time`: seconds a run may start
    late (None: however late); `coalesce`: run once for several missed runs."""
    run_args = list(args) if args is not None else [application]
    scheduler = scheduler_of(application)
    how: str | IntervalTrigger = trigger
    if trigger == "interval" and coalesce:
        job_options = {k: trigger_args.pop(k) for k in JOB_OPTIONS if k in trigger_args}
        trigger_args.setdefault("timezone", scheduler.timezone)
        how = CatchingUpInterval(**trigger_args)
        trigger_args = job_options
    return scheduler.add_job(
        _surviving_outages(application, job_id, func, trigger, run_args),
        how,
        id=job_id,
        name=job_id,
        args=run_args,
        replace_existing=True,
        misfire_grace_time=misfire_grace_time,
        coalesce=coalesce,
        max_instances=max_instances,
        **trigger_args,
    )


JOB_OPTIONS = ("next_run_time", "jobstore", "executor")  # add_job's, not the trigger's


class CatchingUpInterval(IntervalTrigger):
    """APScheduler's interval trigger, except that after a gap (the clock jumped forward,
    the host was suspended, the process paused) it goes straight to the last run time that
    is due instead of through every one missed.

    APScheduler 3 computes each missed run time in turn (`Job._get_run_times`), on the
    event loop, even when the job coalesces them into one run: after a 5-day jump, a
    0.5-second interval is 860,000 steps, seconds (minutes on a busy host) during which the
    bot answers nobody (upstream: agronholm/apscheduler#526, #1066). The run times are the
    same (the same phase, the last one due); only the ones a coalescing job skips anyway
    are never listed. Used for coalescing interval jobs only (`add_job`)."""

    __slots__ = ()

    def get_next_fire_time(self, previous_fire_time: Any, now: Any) -> Any:
        if previous_fire_time is not None and self.jitter is None:
            behind = now.timestamp() - previous_fire_time.timestamp()
            missed = int(behind // self.interval_length)
            if missed > 1:  # land on the last due run: previous + missed intervals <= now
                previous_fire_time = datetime.fromtimestamp(
                    previous_fire_time.timestamp() + self.interval_length * (missed - 1),
                    tz=previous_fire_time.tzinfo,
                )
        return super().get_next_fire_time(previous_fire_time, now)


DATABASE_RETRY_SECONDS = 10


def _surviving_outages(
    application: Application,
    job_id: str,
    func: Callable[..., Awaitable[None]],
    trigger: str,
    args: list[Any],
) -> Callable[..., Awaitable[None]]:
    """A run that fails because the database is unreachable is logged in one line; a
    one-off ("date") job is tried again `DATABASE_RETRY_SECONDS` later (an escalation must
    not be lost to an outage), a repeating one simply runs at its next time."""
    if getattr(func, "_survives_outages", False):
        return func

    @functools.wraps(func)
    async def run(*run_args: Any, **kwargs: Any) -> None:
        try:
            await func(*run_args, **kwargs)
        except Exception as exc:
            if not database_unavailable(exc):
                raise
            if trigger != "date":
                log.warning("job %s: database unreachable; it runs again at its next time", job_id)
                return
            log.warning(
                "job %s: database unreachable; trying again in %g s",
                job_id,
                DATABASE_RETRY_SECONDS,
            )
            add_job(
                application,
                job_id,
                func,
                "date",
                run_date=clock.now() + timedelta(seconds=DATABASE_RETRY_SECONDS),
                misfire_grace_time=None,
                coalesce=True,
                args=args,
            )

    run._survives_outages = True  # type: ignore[attr-defined]
    return run


def remove_job(application: Application, job_id: str) -> bool:
    try:
        scheduler_of(application).remove_job(job_id)
    except JobLookupError:
        return False
    return True


def get_job(application: Application, job_id: str) -> Job | None:
    return scheduler_of(application).get_job(job_id)


class Worker(Protocol):
    """A long-running task with a cooperative stop (the delivery and channel workers)."""

    def run(self) -> Awaitable[None]: ...

    def request_stop(self) -> None: ...


def run_with_scheduler(application: Application, job_id: str, worker: Worker, name: str) -> None:
    """Run `worker` with the Application. A job starts it once the scheduler runs (the
    Application is running then, so `Application.stop()` awaits it through `create_task`),
    and the scheduler's shutdown (the first step of `Application.stop()`, on SIGTERM or
    SIGINT too) asks it to stop: it drains before the process exits."""
    from apscheduler.events import EVENT_SCHEDULER_SHUTDOWN

    scheduler_of(application).add_listener(
        lambda _event: worker.request_stop(), EVENT_SCHEDULER_SHUTDOWN
    )
    add_job(
        application,
        job_id,
        _start_worker,
        "date",
        run_date=clock.now(),
        misfire_grace_time=None,
        coalesce=True,
        args=(application, worker, name),
    )


async def _start_worker(application: Application, worker: Worker, name: str) -> None:
    application.create_task(worker.run(), name=name)
