"""What every persistent form (ConversationHandler) shares: its answers and state are
written before each question goes out, and each update is applied once.

A form keeps its working data in ``user_data[<form key>]``: the current step under
``<state key>`` and the id of the last update applied under ``update_id``.
"""

from __future__ import annotations

import copy
import functools
from collections.abc import Awaitable, Callable
from typing import Any

from telegram import Update
from telegram.ext import ConversationHandler

from handlers.common import Context, answer

Step = Callable[[Update, Context], Awaitable[Any]]


async def persist_now(update: Update, context: Context, conversation: str, state: object) -> None:
    """Write the form and the conversation state before the question goes out: if the bot
    is killed right after asking, the answer still finds the question it belongs to."""
    persistence = context.application.persistence
    chat, user = update.effective_chat, update.effective_user
    if persistence is None or chat is None or user is None:
        return
    data = copy.deepcopy(dict(context.user_data or {}))
    write_form = getattr(persistence, "write_form", None)
    if write_form is not None:  # bot.persistence: both rows in one transaction
        await write_form(conversation, (chat.id, user.id), state, user.id, data)
        return
    await persistence.update_conversation(conversation, (chat.id, user.id), state)
    await persistence.update_user_data(user.id, data)


def once_per_update(form_key: str, state_key: str) -> Callable[[Step], Step]:
    """After a crash Telegram may deliver an update again; an answer is applied only once
    (the repeat is answered, if a button, and the form stays where it is).

    A step that fails (the database went away mid-step) leaves the form as it was, so that
    the same update, run again once the database is back (bot/outage.py), is applied then
    instead of being taken for a repeat."""

    def decorate(fn: Step) -> Step:
        @functools.wraps(fn)
        async def wrapper(update: Update, context: Context) -> Any:
            form = context.user_data.setdefault(form_key, {})  # type: ignore[union-attr]
            if update.update_id <= form.get("update_id", -1):
                await answer(update.callback_query)
                return form.get(state_key) or ConversationHandler.END
            before = copy.deepcopy(form)
            form["update_id"] = update.update_id
            try:
                return await fn(update, context)
            except Exception:
                context.user_data[form_key] = before  # type: ignore[index]
                raise

        return wrapper

    return decorate
