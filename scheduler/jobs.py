"""Scheduled work on APScheduler, through python-telegram-bot's JobQueue scheduler.

Rules every feature follows (so that jobs behave the same after a restart):

* every job has an explicit, stable id (``<feature>:<what>[:<id>]``) and is added with
  ``replace_existing=True``: adding it again replaces it, never duplicates it;
* misfire_grace_time and coalesce are chosen deliberately for each job (`add_job` makes
  them required arguments);
* APScheduler keeps jobs in memory only: the database is the truth. Each feature
  registers a *rebuilder* with `on_startup`; at start-up `rebuild_all` calls them and they
  add the jobs their tables call for (e.g. each scheduled broadcast's start).

Job functions are ``async def job(application) -> None`` (the Application is passed as the
only argument unless `args` say otherwise); they run on the bot's event loop.

    from scheduler import jobs

    jobs.add_job(app, "sos:escalate:12", escalate, "date", run_date=when,
                 misfire_grace_time=None, coalesce=True, args=(app, 12))
    jobs.on_startup(rebuild_escalations)   # async def rebuild_escalations(app) -> None
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from apscheduler.job import Job
from apscheduler.jobstores.base import JobLookupError
from apscheduler.schedulers.base import BaseScheduler
from telegram.ext import Application

log = logging.getLogger(__name__)

Rebuilder = Callable[[Application], Awaitable[None]]
_rebuilders: list[Rebuilder] = []


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
    return scheduler_of(application).add_job(
        func,
        trigger,
        id=job_id,
        name=job_id,
        args=list(args) if args is not None else [application],
        replace_existing=True,
        misfire_grace_time=misfire_grace_time,
        coalesce=coalesce,
        max_instances=max_instances,
        **trigger_args,
    )


def remove_job(application: Application, job_id: str) -> bool:
    try:
        scheduler_of(application).remove_job(job_id)
    except JobLookupError:
        return False
    return True


def get_job(application: Application, job_id: str) -> Job | None:
    return scheduler_of(application).get_job(job_id)


def on_startup(rebuilder: Rebuilder) -> Rebuilder:
    """Register a function that re-creates a feature's jobs from the database at start-up
    (usable as a decorator). Registering the same function twice has no effect."""
    if rebuilder not in _rebuilders:
        _rebuilders.append(rebuilder)
    return rebuilder


async def rebuild_all(application: Application) -> None:
    """Called once at start-up (post_init), before the scheduler starts."""
    for rebuilder in list(_rebuilders):
        try:
            await rebuilder(application)
        except Exception:
            log.exception("rebuilding the jobs of %s failed", getattr(rebuilder, "__name__", "?"))
