"""Oxygen requests after the form (handlers/care/forms.py): a duty officer or an admin takes
one (ox:ack:<id>) or marks it delivered (ox:dlv:<id>); the cadre cancels their own
(ox:cxl:<id>). Escalation is a timer (scheduler/care.py)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from telegram import Update
from telegram.ext import BaseHandler, CallbackQueryHandler

from handlers.callbacks import pressed
from handlers.care.common import forged, oxygen_config
from handlers.common import Context, answer, drop_keyboard, guarded, reply
from models import Person
from services import oxygen
from services.i18n import t
from services.people import name_of
from services.permissions import Action

Callback = Callable[[Update, Context], Awaitable[Any]]


# ---------------------------------------------------------------------------- oxygen buttons


@guarded(Action.HANDLE_OXYGEN)
async def on_oxygen_handle(update: Update, context: Context, person: Person) -> None:
    press = pressed(update)
    request_id = press.number(2)
    lang = person.language
    if request_id is None:
        await forged(update, context, person, Action.HANDLE_OXYGEN)
        return
    fn = oxygen.acknowledge if press.step == "ack" else oxygen.deliver
    change = await context.db.run(fn, person, request_id, oxygen_config(context))
    if change.outcome == "refused":
        await answer(update.callback_query, t(lang, "care.forged"), alert=True)
        return
    if change.outcome == "won":
        key = "care.ox.ack.won" if press.step == "ack" else "care.ox.dlv.won"
        await answer(update.callback_query, t(lang, key))
        return
    if change.outcome == "taken":
        name = name_of(change.by, "-")
        await answer(update.callback_query, t(lang, "care.ox.ack.taken", name=name), True)
        return
    await answer(update.callback_query, t(lang, "care.ox.closed"), alert=True)


@guarded(Action.REQUEST_OXYGEN)
async def on_oxygen_cancel(update: Update, context: Context, person: Person) -> None:
    press = pressed(update)
    request_id = press.number(2)
    lang = person.language
    assert person.id is not None
    if request_id is None:
        await forged(update, context, person, Action.REQUEST_OXYGEN)
        return
    change = await context.db.run(oxygen.cancel, person.id, request_id, oxygen_config(context))
    if change.outcome == "refused":
        await answer(update.callback_query, t(lang, "care.forged"), alert=True)
        return
    if change.outcome != "won":
        await answer(update.callback_query, t(lang, "care.ox.closed"), alert=True)
        return
    await answer(update.callback_query)
    await drop_keyboard(update)
    await reply(update, t(lang, "care.ox.cancelled", id=request_id))


def build() -> list[BaseHandler[Any, Any, Any]]:
    return [
        CallbackQueryHandler(on_oxygen_handle, pattern=r"^ox:(ack|dlv):"),
        CallbackQueryHandler(on_oxygen_cancel, pattern=r"^ox:cxl:"),
    ]
