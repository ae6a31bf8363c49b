"""What the emergency channel's handlers share (handlers/sos.py, roster.py, directory.py):
the escalation policy from the settings, the answer to a forged button (`forged`), and
typed answers the channel waits for.

A typed answer the channel asked for (the cadre's description of what is wrong, a
resolution note, a directory field) is remembered per Telegram user in the bot_state table
(kind ``sos_pending``), so it survives restarts, and is picked up in handler group -10,
before any form could take the text for itself.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from telegram import Update

from handlers.common import Context, refuse_forged
from models import Person
from services import clock, state
from services.alerts import policy as alerts_policy
from services.permissions import Action
from services.sos import waiting_for

PENDING = alerts_policy.WAIT_KIND  # bot_state kind, and the bot_data key of its in-memory copy
# "after": what a cadre writes after their alert closed goes to whoever handled it
PENDING_MINUTES = {
    "details": 30,
    "note": 15,
    "dir": 15,
    "diradd": 15,
    "after": alerts_policy.FOLLOW_UP_HOURS * 60,
}


def policy(context: Context) -> alerts_policy.Policy:
    """What the alert services need of the settings (and of the bot: its username, for the
    acknowledgement link in WeCom, DingTalk and SMS texts)."""
    return alerts_policy.Policy.from_settings(context.settings, context.bot.username)


async def forged(update: Update, context: Context, person: Person) -> None:
    """A forged press of the emergency channel's buttons (SOS, roster, directory, contacts):
    `refuse_forged`, audited as denied.handle_alerts."""
    await refuse_forged(update, context, person, Action.HANDLE_ALERTS)


# ---------------------------------------------------------------------------- typed answers


async def pending_all(context: Context) -> dict[int, dict[str, Any]]:
    """Typed answers the emergency channel waits for, by Telegram user id (cached)."""
    cache = context.application.bot_data.get(PENDING)
    if cache is None:
        rows = await context.db.run(state.load_all, PENDING)
        cache = {int(key): value for key, value in rows.items() if isinstance(value, dict)}
        context.application.bot_data[PENDING] = cache
    return cache


async def set_pending(context: Context, user_id: int, value: dict[str, Any] | None) -> None:
    """Wait for a typed answer from `user_id` (``{"what": ..., ...}``), or stop waiting."""
    cache = await pending_all(context)
    if value is None:
        if user_id not in cache:
            return
        cache.pop(user_id, None)
    else:
        value = waiting_for(**value)
        cache[user_id] = value
    await context.db.run(state.put, PENDING, str(user_id), value)


async def reload_wait(context: Context, user_id: int) -> None:
    """Read one user's wait again from the database, after a service changed it (closing
    an alert starts the cadre's "after" wait: services.alerts.respond._wait_for_follow_up)."""
    cache = await pending_all(context)
    value = await context.db.run(state.get, PENDING, str(user_id))
    if isinstance(value, dict):
        cache[user_id] = value
    else:
        cache.pop(user_id, None)


async def pending(context: Context, user_id: int) -> dict[str, Any] | None:
    """What the channel waits for from this user, unless it has expired."""
    value = (await pending_all(context)).get(user_id)
    if value is None:
        return None
    minutes = PENDING_MINUTES.get(str(value.get("what", "")), 15)
    since = datetime.fromisoformat(str(value["since"]))
    if clock.now() - since > timedelta(minutes=minutes):
        await set_pending(context, user_id, None)
        return None
    return value
