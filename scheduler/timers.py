"""Every timer of the bot, one object per feature (scheduler/<feature>.py), and the few
things handlers may ask of them after a change they made (handlers.context.Timers:
`context.timers.replan_care(person_id)`...). The composition root (bot/app.py) builds one
per Application and starts the features' jobs at start-up, in the order `start_timers` in
bot/app.py lists.
"""

from __future__ import annotations

from datetime import datetime

from telegram.ext import Application

from config import Settings
from models import Broadcast
from scheduler.broadcasts import BroadcastTimers
from scheduler.care import CareTimers
from scheduler.health import HealthTimers
from scheduler.kb import KbTimers
from scheduler.sos import SosTimers
from services import sos
from services.db import Database
from services.health.config import HealthConfig


class Timers:
    def __init__(
        self,
        application: Application,
        db: Database,
        settings: Settings,
        *,
        cadre_keyboard: sos.Keyboard,
    ) -> None:
        self.sos = SosTimers(application, db, settings, cadre_keyboard)
        self.health = HealthTimers(application, db, HealthConfig.from_settings(settings))
        self.care = CareTimers(application, db, settings)
        self.broadcasts = BroadcastTimers(application, db, settings)
        self.kb = KbTimers(application, db)

    # --- what handlers may ask (handlers.context.Timers) ------------------------------

    async def replan_care(self, person_id: int | None) -> None:
        await self.care.replan(person_id)

    def plan_oxygen_escalation(self, request_id: int, at: datetime) -> None:
        self.care.plan_oxygen_escalation(request_id, at)

    def plan_broadcast(self, broadcast: Broadcast) -> None:
        self.broadcasts.plan_start(broadcast)

    def cancel_broadcast(self, broadcast_id: int) -> None:
        self.broadcasts.cancel_start(broadcast_id)
