"""The context every handler receives: python-telegram-bot's CallbackContext with the bot's
own dependencies typed on it (as in PTB's examples/contexttypesbot.py).

    async def handler(update: Update, context: Context) -> None:
        person = await context.db.run(people.find, update.effective_user.id)
        zone = context.settings.zone
        await context.timers.replan_care(person.id)

The composition root (bot/app.py) builds the `Deps` once per Application and hands
`CONTEXT_TYPES` to the ApplicationBuilder. Handlers never import scheduler/: what they may
ask of the timers is the `Timers` interface below, which scheduler/timers.py implements.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from telegram.ext import Application, CallbackContext, ContextTypes, ExtBot

from config import Settings
from models import Broadcast
from services.db import Database


class Timers(Protocol):
    """What a handler may ask of the scheduled work after a change it made."""

    async def replan_care(self, person_id: int | None) -> None:
        """Send the care reminders due now for this person (None: everybody, after a policy
        change) and plan the next reminder."""

    def plan_oxygen_escalation(self, request_id: int, at: datetime) -> None:
        """Escalate an urgent oxygen request at `at` if nobody has taken it by then."""

    def plan_broadcast(self, broadcast: Broadcast) -> None:
        """Start a scheduled broadcast at its time."""

    def cancel_broadcast(self, broadcast_id: int) -> None:
        """Forget a scheduled broadcast's start."""


class Outbound(Protocol):
    """The delivery worker, as handlers see it."""

    def forget(self, source: str) -> int:
        """Drop the messages of `source` it holds but has not started to send (after they
        were cancelled in the table)."""


@dataclass(frozen=True)
class Deps:
    """The Application's dependencies, built once by the composition root."""

    settings: Settings
    db: Database
    timers: Timers
    delivery: Outbound | None = None  # None when this process runs no delivery worker


DEPS = "deps"  # the bot_data key (bot_data is not persisted)


def deps_of(application: Application[Any, Any, Any, Any, Any, Any]) -> Deps:
    deps: Deps = application.bot_data[DEPS]
    return deps


class CadreContext(CallbackContext[ExtBot[None], dict[Any, Any], dict[Any, Any], dict[Any, Any]]):
    """`context` in every handler, error handler and job callback of the bot."""

    @property
    def deps(self) -> Deps:
        return deps_of(self.application)

    @property
    def db(self) -> Database:
        return self.deps.db

    @property
    def settings(self) -> Settings:
        return self.deps.settings

    @property
    def timers(self) -> Timers:
        return self.deps.timers


CONTEXT_TYPES = ContextTypes(context=CadreContext)
Context = CadreContext
