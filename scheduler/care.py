"""Care schedules' and oxygen requests' timers. Due dates are derived and watermarks
stored in the database, so these jobs are only alarm clocks, rebuilt at every start.

Jobs (ids):
    care:pass              interval, every CADRE_CARE_PASS_INTERVAL seconds, first run at
                           start-up: the safety net, and what sends the reminders missed
                           while the bot was down. coalesce, misfire grace = the interval:
                           a late pass is simply the next one (each pass catches up).
    care:next              date, the next reminder or escalation instant computed by the
                           last pass, so reminders go out on the minute. coalesce, misfire
                           grace = CADRE_CARE_GRACE_HOURS.
    oxygen:escalate:<id>   date, when an urgent oxygen request escalates if still
                           unacknowledged; one per waiting request. misfire_grace_time None:
                           however late.
None of them runs with CADRE_CARE_JOBS off (a second instance on the same database).
"""

from __future__ import annotations

import logging
from datetime import datetime

from telegram.ext import Application

from config import Settings
from scheduler import jobs
from services import clock, oxygen
from services.care import reminders
from services.care.rules import CareConfig
from services.db import Database
from services.oxygen import OxygenConfig

log = logging.getLogger(__name__)

PASS_JOB = "care:pass"
NEXT_JOB = "care:next"


def oxygen_job_id(request_id: int) -> str:
    return f"oxygen:escalate:{request_id}"


class CareTimers:
    def __init__(self, application: Application, db: Database, settings: Settings) -> None:
        self.application = application
        self.db = db
        self.settings = settings
        self.care_config = CareConfig.from_settings(settings)
        self.oxygen_config = OxygenConfig.from_settings(settings)

    @property
    def on(self) -> bool:
        return self.application.job_queue is not None and bool(self.settings.care_jobs)

    async def start(self) -> None:
        """At start-up: the pass (at once, then every CADRE_CARE_PASS_INTERVAL seconds) and
        one escalation job per urgent oxygen request still waiting. The first pass plans
        care:next."""
        if not self.on:
            log.warning("care reminders and oxygen escalations are off (CADRE_CARE_JOBS)")
            return
        interval = self.settings.care_pass_interval
        jobs.add_job(
            self.application,
            PASS_JOB,
            self.run_pass,
            "interval",
            seconds=interval,
            next_run_time=clock.now(),
            misfire_grace_time=max(interval, 60),
            coalesce=True,
            args=(),
        )
        pending = await self.db.run(oxygen.pending_escalations, self.oxygen_config)
        for request_id, at in pending:
            self.plan_oxygen_escalation(request_id, at)

    async def run_pass(self) -> None:
        """Queue the reminders and escalations due now, then plan the next run."""
        now = clock.now()
        result = await self.db.run(reminders.run_pass, now, self.care_config)
        escalated = await self.db.run(oxygen.escalate_due, now, self.oxygen_config)
        pending = await self.db.run(oxygen.pending_escalations, self.oxygen_config)
        if result.reminders or result.escalations or escalated:
            log.info(
                "care pass: %d reminders, %d escalation notices, %d oxygen escalations",
                result.reminders,
                result.escalations,
                len(escalated),
            )
        self._plan_next(result.next_wakeup, replace=True)
        for request_id, at in pending:
            self.plan_oxygen_escalation(request_id, at)

    async def replan(self, person_id: int | None) -> None:
        """After a change: send what is due for this person now and plan their next
        reminder (None: everybody, e.g. after a policy change)."""
        if not self.on:
            return
        ids = [person_id] if person_id is not None else None
        result = await self.db.run(
            reminders.run_pass, clock.now(), self.care_config, person_ids=ids
        )
        self._plan_next(result.next_wakeup, replace=person_id is None)

    def _plan_next(self, when: datetime | None, *, replace: bool) -> None:
        """Run the pass at `when`. With replace=False an earlier plan is kept."""
        if when is None or not self.on:
            return
        if not replace:
            existing = jobs.get_job(self.application, NEXT_JOB)
            planned = getattr(existing, "next_run_time", None) if existing is not None else None
            if planned is not None and planned <= when:
                return
        grace = int(self.settings.care_grace_hours * 3600) or 60
        jobs.add_job(
            self.application,
            NEXT_JOB,
            self.run_pass,
            "date",
            run_date=when,
            misfire_grace_time=grace,
            coalesce=True,
            args=(),
        )

    def plan_oxygen_escalation(self, request_id: int, at: datetime) -> None:
        if not self.on:
            return
        jobs.add_job(
            self.application,
            oxygen_job_id(request_id),
            self.escalate_oxygen,
            "date",
            run_date=max(at, clock.now()),
            misfire_grace_time=None,  # however late: an urgent request must escalate
            coalesce=True,
            args=(request_id,),
        )

    async def escalate_oxygen(self, request_id: int) -> None:
        escalated = await self.db.run(oxygen.escalate_due, clock.now(), self.oxygen_config)
        if escalated:
            log.info("oxygen requests escalated: %s", escalated)
